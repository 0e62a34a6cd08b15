"""Arrays that unfold: submitted whole in a moment, their tasks touched one by one.

The submission writes the array's record only (with its tasks' places reserved in the
session's order) and starts the first tasks. Later tasks are written when dispatch reaches
them, or when a task is controlled by its id before that (see :mod:`.lazy`). A deadline, or
the end of the session, ends the tasks never touched all at once, in the store.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from drmaa2.enums import JobState
from drmaa2.errors import Drmaa2Exception
from drmaa2_ostracker.faults import storage_error
from drmaa2_ostracker.process import boot_ticks
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import ArrayRecord, JobRecord
from drmaa2_ostracker.supervisor.dispatch import Dispatcher
from drmaa2_ostracker.supervisor.jobs import (
    AT_DEADLINE,
    DEADLINE,
    START_FAILED,
    STARTING,
    Group,
    TrackedJob,
    now_us,
)
from drmaa2_ostracker.supervisor.lazy import Untouched
from drmaa2_ostracker.supervisor.states import Changes

__all__ = ["Unfolding"]


class Unfolding(Dispatcher):
    """The supervisor's arrays whose tasks are written only once touched."""

    def submit_array(self, store: Store, array: ArrayRecord, group: Group) -> None:
        """Record an array (none of its tasks yet) and start its first tasks.

        The array's record is committed before any task starts: a submission that cannot be
        written raises (OutOfResourceException for a full disk) and starts nothing.
        """
        self._last_submit = time.monotonic()
        key = (store.path, array.session, array.array_id)
        with self._changing() as changes:
            try:
                self._begin(changes, store)
                if array.first_seq is None:  # (given with its id by a keeper's session)
                    array.first_seq = store.reserve_seq(array.tasks)
                array.next_index = array.begin_index
                store.insert_array(array)
                store.commit()
                self._dirty.pop(store.path, None)
            except sqlite3.Error as error:
                self._write_failed(store, error)
                raise storage_error(error, store.path, store.state_dir) from None
            rest = group.untouched = Untouched.of(store, array)
            self._unfolding[key] = group
            if self._callbacks:  # every task is QUEUED (or held) at submission, as a job is
                changes.notes.extend(
                    rest.notes(JobState.QUEUED_HELD if array.held else JobState.QUEUED)
                )
            self._dispatch(changes, group)
            self._add_group_timers(group, list(changes.to_start))

    def _add_group_timers(self, group: Group, jobs: list[TrackedJob]) -> None:
        """The start time and deadline of an array with untouched tasks (its timers stay due
        while any task is unfinished, touched or not)."""

        def alive() -> bool:
            rest = group.untouched
            return rest is not None and not rest.exhausted

        if group.start_at is not None and not group.ready():
            self._add_timer(group.start_at, jobs, lambda ch: self._dispatch(ch, group), alive)
        if group.deadline is not None:

            def deadline(changes: Changes) -> None:
                tracked = [job for job in self._active.values() if job.group is group]
                self._deadline(changes, tracked)
                self._end_untouched(changes, group, DEADLINE, AT_DEADLINE)

            self._add_timer(group.deadline, jobs, deadline, alive)

    def _touch_next(self, changes: Changes, group: Group, rest: Untouched) -> TrackedJob | None:
        index = rest.advance()
        if rest.exhausted:
            self._unfolding.pop((rest.store.path, rest.session, rest.array_id), None)
            group.untouched = None
        record = rest.record(index)
        probe = TrackedJob(rest.store, record, group)
        reason = self._prepare(probe)
        if reason is not None:  # written as failed at once
            record.state = JobState.FAILED
            record.sub_state = START_FAILED
            record.annotation = reason
            record.finish_us = now_us()
            changes.must_commit = True  # before any later task's start (see _dispatch)
            job = self._write_touched(changes, rest, record, group)
            del self._active[job.key]
            self._note(changes, job)
            return None
        record.sub_state = STARTING
        record.pid_start = boot_ticks()
        job = self._write_touched(changes, rest, record, group)
        job.spec = probe.spec
        if job.key in self._watched:  # a thread waits for it to start
            changes.changed = True
        return job

    def _write_touched(
        self, changes: Changes, rest: Untouched, record: JobRecord, group: Group
    ) -> TrackedJob:
        """Write a task being touched, and the array's cursor; track it."""
        store = rest.store
        job = TrackedJob(store, record, group)
        self._begin(changes, store)
        try:
            store.insert_jobs([record])
            # Stored as None once every task is touched (the cursor may lie beyond 2**63 - 1);
            # before that, only now and then (see .lazy).
            if rest.exhausted or rest.lagging():
                self._store_cursor(rest)
        except sqlite3.Error as error:  # kept, written later (see FailedWrites)
            self._write_failed(store, error)
        self._active[job.key] = job
        self._track(job)
        return job

    @staticmethod
    def _store_cursor(rest: Untouched) -> None:
        """Write an array's cursor to the store (sqlite3.Error if that fails)."""
        cursor = None if rest.exhausted else rest.cursor
        rest.store.update_array(rest.session, rest.array_id, next_index=cursor)
        rest.stored = cursor

    def store_cursors(self, store: Store, session: str, job_ids: Sequence[str]) -> None:
        """Before the rows of tasks among ``job_ids`` are deleted (lock held), write the
        cursor of each array of theirs whose stored cursor lags, and record those of them
        touched ahead of the cursor as gone: a deleted task past the stored cursor would look
        untouched to the next keeper, which would run it again."""
        unfolding = {
            key[2]: group.untouched
            for key, group in self._unfolding.items()
            if key[:2] == (store.path, session) and group.untouched is not None
        }
        if not unfolding:
            return
        gone: dict[str, list[int]] = {}
        for job_id in job_ids:
            array_id, _, index = job_id.rpartition(".")
            rest = unfolding.get(array_id)
            if rest is None:
                continue
            if rest.stored != rest.cursor:
                self._store_cursor(rest)
            if index.isdigit() and int(index) > rest.cursor:
                gone.setdefault(array_id, []).append(int(index))
        for array_id, indices in gone.items():
            store.add_gone(session, array_id, indices)

    def touch(self, changes: Changes, store: Store, session: str, job_id: str) -> TrackedJob | None:
        """Write and track an untouched task that is about to be controlled by its id; None
        if ``job_id`` names no untouched task."""
        task = self._untouched_task(store, session, job_id)
        if task is None:
            return None
        group, rest, index = task
        rest.touch(index)
        job = self._write_touched(changes, rest, rest.record(index), group)
        if job.record.state == JobState.QUEUED:
            group.push(job)
        if rest.exhausted:
            self._unfolding.pop((store.path, session, rest.array_id), None)
            group.untouched = None
        return job

    def _end_untouched(
        self, changes: Changes, group: Group, sub_state: str, reason: str, refuse: bool = False
    ) -> None:
        """Fail every untouched task of an array at once (its deadline came, or the user
        terminated the array), annotated as a job ended before it started (see
        ``Timers._kill``). Committed at once: no record in memory stands for the untouched
        tasks, and a next keeper would start them. If that fails, ``refuse`` (the user
        asked) raises with nothing changed; otherwise their records are kept in memory, as
        unwritten, and written later."""
        annotation = f"{reason} before it started"
        rest = group.untouched
        if rest is None or rest.exhausted:
            return
        store = rest.store
        finished = now_us()

        def write() -> None:
            assert rest is not None
            store.fail_untouched(
                rest.array,
                rest.cursor,
                sub_state,
                annotation,
                finished,
                rest.job_name,
                touched=rest.touched,
            )
            store.update_array(rest.session, rest.array_id, next_index=None)

        try:
            self._commit_now(changes, store, write)
        except Drmaa2Exception:
            if refuse:
                raise
            # Kept in memory instead: as tracked records, written with the others later.
            for index in rest.indices():
                record = rest.record(index)
                record.state = JobState.FAILED
                record.sub_state = sub_state
                record.annotation = annotation
                record.finish_us = finished
                self._track(TrackedJob(store, record, group))
        if self._callbacks:
            changes.notes.extend(rest.notes(JobState.FAILED))
        changes.changed = True  # whoever waits on one of them
        rest.cursor = rest.array.end_index + 1
        rest.touched.clear()
        self._unfolding.pop((store.path, rest.session, rest.array_id), None)
        group.untouched = None

    def untouched_of(self, store: Store, session: str) -> list[Untouched]:
        """Snapshots of the untouched tasks of a session's arrays (lock held by the caller,
        with the store read under it, for a consistent listing)."""
        return [
            group.untouched.snapshot()
            for key, group in self._unfolding.items()
            if key[0] == store.path and key[1] == session and group.untouched is not None
        ]
