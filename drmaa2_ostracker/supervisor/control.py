"""Control: suspend, resume, hold, release, terminate and reap a job, or every task of an array.

Whether an action applies in the job's state is decided by one table,
:data:`~drmaa2_ostracker.supervisor.states.CONTROL`; the functions here only carry it out. An
array is controlled in one locked change: its touched tasks one by one, its untouched tasks
(see :mod:`.lazy`) all at once, without writing them one by one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from drmaa2.backend import Action, ArrayOperation, ArrayOutcome
from drmaa2.enums import JobState
from drmaa2.errors import Drmaa2Exception, InvalidStateException
from drmaa2_ostracker.faults import storage_error
from drmaa2_ostracker.process import continue_job, stop_job
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor.jobs import BY_USER, STARTING, TERMINATED, Group, TrackedJob
from drmaa2_ostracker.supervisor.lazy import Untouched, split_task_id
from drmaa2_ostracker.supervisor.states import FINISHED, Changes, allows, refusal
from drmaa2_ostracker.supervisor.waits import Waits

__all__ = ["Control"]


class Control(Waits):
    """The supervisor's job control actions."""

    def control(self, store: Store, session: str, job_id: str, action: Action) -> None:
        """Apply a job control action (see :meth:`drmaa2.backend.JobSessionBackend.control`)."""
        with self._changing() as changes:
            job = self._control_one(changes, store, session, job_id, action)
        if job is not None and action is Action.TERMINATE:
            self._await_end(job)

    def _control_one(
        self,
        changes: Changes,
        store: Store,
        session: str,
        job_id: str,
        action: Action,
        finished: JobState | None = None,
    ) -> TrackedJob | None:
        """Apply ``action`` to one job (lock held); the job it acted on, if any.
        ``finished``: the state the store gives a job this process does not track, if the
        caller read it already."""
        job = self._active.get((store.path, session, job_id))
        untouched = None if job is not None else self._untouched_record(store, session, job_id)
        if untouched is not None:  # an array task not written yet: written now
            if not allows(action, job_id, untouched.state, untouched.state):
                return None
            job = self.touch(changes, store, session, job_id)
            assert job is not None
        elif job is None:  # no longer tracked: its record is in the store only
            # Unknown ids raise here.
            state = finished if finished is not None else self._state(store, session, job_id)[0]
            allows(action, job_id, FINISHED, state)  # raises: nothing applies once finished
            return None
        else:
            row = STARTING if job.starting else job.record.state
            if not allows(action, job_id, row, job.record.state):
                return None
        getattr(self, f"_{action.value}")(changes, job)
        return job

    # Each action below runs only in the states where CONTROL says DO: a job RUNNING or
    # SUSPENDED has been spawned.

    def _suspend(self, changes: Changes, job: TrackedJob) -> None:
        assert job.spawned is not None
        stop_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.SUSPENDED)

    def _resume(self, changes: Changes, job: TrackedJob) -> None:
        assert job.spawned is not None
        continue_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.RUNNING)

    def _hold(self, changes: Changes, job: TrackedJob) -> None:
        self._transition(changes, job, JobState.QUEUED_HELD)

    def _release(self, changes: Changes, job: TrackedJob) -> None:
        self._transition(changes, job, JobState.QUEUED)
        job.group.push(job)
        self._dispatch(changes, job.group)

    def _terminate(self, changes: Changes, job: TrackedJob) -> None:
        self._kill(changes, job, TERMINATED, BY_USER)

    def reap_job(self, store: Store, session: str, job_id: str) -> None:
        """Forget a finished job; InvalidStateException while it has not finished."""
        with self._lock:
            self._reapable(store, session, job_id)
            try:
                self.store_cursors(store, session, [job_id])
                store.delete_job(session, job_id)
            except sqlite3.Error as error:
                raise storage_error(error, store.path, store.state_dir) from None
            self._forget_unwritten(store, session, job_id)

    def _reapable(
        self, store: Store, session: str, job_id: str, finished: JobState | None = None
    ) -> None:
        """InvalidStateException unless the job has finished (lock held)."""
        state = finished if finished is not None else self._state(store, session, job_id)[0]
        if not state.is_terminal:
            raise InvalidStateException(_unfinished(job_id, state))

    def _forget_unwritten(self, store: Store, session: str, job_id: str) -> None:
        unwritten = self._unwritten.get(store.path)
        if unwritten is not None:
            unwritten[1].pop((store.path, session, job_id), None)

    # -- arrays ----------------------------------------------------------------------------

    def control_array(
        self,
        store: Store,
        session: str,
        array_id: str,
        tasks: range | Sequence[str],
        operation: ArrayOperation,
    ) -> ArrayOutcome:
        """Apply an operation to tasks of an array in one change (see
        :meth:`drmaa2.backend.ArrayControlBackend.control_array`). ``tasks``: their ids, or
        a range of their indices. When the range covers the whole array, its untouched tasks
        are acted on all at once: terminated in one statement, held or released by the
        array's ``held`` flag (kept in the store), and counted as not started for suspend,
        resume and reap."""
        action = None if operation == "reap" else Action(operation)
        release = action is Action.RELEASE
        tally = _Tally()
        killed: list[TrackedJob] = []
        with self._changing() as changes:
            group = self._unfolding.get((store.path, session, array_id))
            rest = None if group is None else group.untouched
            others = None if rest is None else _others_if_all_untouched(rest, tasks)
            # Read before the untouched tasks are ended: then a million more rows.
            stored = store.task_states(session, array_id)
            before = None
            if group is not None and rest is not None and others is not None:
                before = rest.snapshot()
                if release:  # stored first (or raises); released after the touched ones
                    if rest.held:
                        self._commit_now(changes, store, lambda: self._store_held(rest, False))
                else:
                    self._untouched_all(changes, group, rest, action, tally, before)
            for task in tasks if others is None else others:
                job_id = task if isinstance(task, str) else f"{array_id}.{task}"
                finished = None
                key = (store.path, session, job_id)
                if key not in self._active and not self._is_unwritten(key):
                    found = split_task_id(job_id)
                    if found is not None and found[0] == array_id:
                        finished = stored.get(found[1])
                try:
                    if action is None:
                        self._reapable(store, session, job_id, finished)
                        tally.reaped.append(job_id)
                    else:
                        job = self._control_one(changes, store, session, job_id, action, finished)
                        if job is not None and action is Action.TERMINATE:
                            killed.append(job)
                except InvalidStateException as error:
                    tally.skipped.append((job_id, str(error)))
                except Drmaa2Exception as error:
                    tally.failed.append((job_id, error))
                else:
                    tally.applied += 1
            if group is not None and rest is not None and before is not None and release:
                self._untouched_all(changes, group, rest, action, tally, before)
            if tally.reaped:
                self._reap_all(changes, store, session, tally.reaped)
        for job in killed:
            self._await_end(job)
        return tally.outcome(tasks)

    def _is_unwritten(self, key: tuple[str, str, str]) -> bool:
        unwritten = self._unwritten.get(key[0])
        return unwritten is not None and key in unwritten[1]

    def _untouched_all(
        self,
        changes: Changes,
        group: Group,
        rest: Untouched,
        action: Action | None,
        tally: _Tally,
        before: Untouched,
    ) -> None:
        """Apply an action to every untouched task of an array at once (``before``: them,
        as they were)."""
        if action is None or action in (Action.SUSPEND, Action.RESUME):
            tally.untouched_skipped = (before, action)  # none has started or finished
            return
        tally.applied += before.count()
        if action is Action.TERMINATE:
            self._end_untouched(changes, group, TERMINATED, BY_USER, refuse=True)
            return
        held = action is Action.HOLD
        if bool(rest.held) != held:
            self._set_held(changes, rest, held)
        if not held:
            self._dispatch(changes, group)

    def _set_held(self, changes: Changes, rest: Untouched, held: bool) -> None:
        """Hold or release an array's untouched tasks: its ``held`` flag, committed first
        (a change that cannot be written raises, and is not made; a release's flag was
        committed before the touched tasks were released, see :meth:`control_array`)."""
        if held:
            self._commit_now(changes, rest.store, lambda: self._store_held(rest, held))
        rest.array.held = held
        state = JobState.QUEUED_HELD if held else JobState.QUEUED
        if self._callbacks:
            changes.notes.extend(rest.notes(state))

    @staticmethod
    def _store_held(rest: Untouched, held: bool) -> None:
        rest.store.update_array(rest.session, rest.array_id, held=held)

    def _reap_all(self, changes: Changes, store: Store, session: str, job_ids: list[str]) -> None:
        """Forget finished jobs (their records) at once."""
        self._begin(changes, store)
        try:
            self.store_cursors(store, session, job_ids)
            store.delete_jobs(session, job_ids)
        except sqlite3.Error as error:
            self._write_failed(store, error)
            raise storage_error(error, store.path, store.state_dir) from None
        for job_id in job_ids:
            self._forget_unwritten(store, session, job_id)


def _unfinished(job_id: str, state: JobState) -> str:
    """Why a job cannot be reaped yet."""
    return f"cannot reap job {job_id}: it has not finished ({state.name})"


def _others_if_all_untouched(rest: Untouched, tasks: range | Sequence[str]) -> list[Any] | None:
    """The tasks (indices of a range, else ids) that are not untouched, in the order given,
    if ``tasks`` holds every untouched task of the array; None if it does not."""
    array = rest.array
    if isinstance(tasks, range):
        ascending = tasks if tasks.step > 0 else tasks[::-1]
        last = array.end_index - (array.end_index - array.begin_index) % array.step
        if (
            rest.cursor not in ascending
            or last not in ascending
            or (len(ascending) > 1 and ascending.step != array.step)
        ):
            return None
        below = range(ascending.start, rest.cursor, array.step)
        found = [*below, *sorted(rest.touched)]
        return found if tasks.step > 0 else found[::-1]
    others: list[Any] = []
    covered = 0
    for job_id in tasks:
        task = split_task_id(job_id)
        if task is not None and task[0] == rest.array_id and rest.has(task[1]):
            covered += 1
        else:
            others.append(job_id)
    return others if covered == rest.count() else None


class _Tally:
    """How an array-wide operation went, task by task."""

    def __init__(self) -> None:
        self.applied = 0
        self.skipped: list[tuple[str, str]] = []
        self.failed: list[tuple[str, Drmaa2Exception]] = []
        self.reaped: list[str] = []
        #: The untouched tasks passed over all at once, and the action (None: reap).
        self.untouched_skipped: tuple[Untouched, Action | None] | None = None

    def outcome(self, tasks: range | Sequence[str]) -> ArrayOutcome:
        """The outcome; the tasks passed over are named only when none was acted on (then
        in the order given)."""
        if self.applied or self.untouched_skipped is None:
            return ArrayOutcome(self.applied, () if self.applied else self.skipped, self.failed)
        rest, action = self.untouched_skipped
        state = JobState.QUEUED_HELD if rest.held else JobState.QUEUED
        skipped = list(self.skipped)
        for index in rest.indices():
            job_id = f"{rest.array_id}.{index}"
            if action is None:
                skipped.append((job_id, _unfinished(job_id, state)))
            else:
                skipped.append((job_id, refusal(action, job_id, state, state)))
        if isinstance(tasks, range):
            sign = 1 if tasks.step > 0 else -1
            skipped.sort(key=lambda entry: sign * int(entry[0].rpartition(".")[2]))
        else:
            place = {job_id: number for number, job_id in enumerate(tasks)}
            skipped.sort(key=lambda entry: place[entry[0]])
        return ArrayOutcome(0, skipped, self.failed)
