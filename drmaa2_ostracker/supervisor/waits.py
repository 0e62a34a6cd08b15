"""Waits: threads sleeping until jobs reach a state, or reaping one job themselves.

Waiting threads sleep on one condition variable, woken only when a job they watch changes
(see :meth:`~drmaa2_ostracker.supervisor.states.States._note`).
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Sequence

from drmaa2.backend import WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException, TimeoutException
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor.jobs import JobKey, TrackedJob
from drmaa2_ostracker.supervisor.reaper import MAX_SLEEP
from drmaa2_ostracker.supervisor.recovery import Recovery

__all__ = ["CHECK_EVERY", "Waits"]

#: How often (seconds) a wait calls its ``check`` while it goes on.
CHECK_EVERY = 1.0
#: How long terminate() waits for the killed job to be reaped before returning.
_TERMINATE_CONFIRM_SECONDS = 10.0


class Waits(Recovery):
    """The supervisor's waits for jobs' states."""

    def _await_end(self, job: TrackedJob) -> None:
        """Wait until a killed job is reaped, for a while: terminate returns once it ended."""
        deadline = time.monotonic() + _TERMINATE_CONFIRM_SECONDS
        with self._lock:
            while job.key in self._active and job.spawned is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._sleep([job.key], remaining)

    def interrupt_waits(self) -> None:
        """Wake every wait, now and from now on, so that each calls its ``check`` at once
        (the keeper is stopping: the checks end the waits of clients it hung up on)."""
        if self._interrupt_fd >= 0:
            os.eventfd_write(self._interrupt_fd, 1)  # stays readable: _reap_here's pollers
        with self._lock:
            self._cond.notify_all()

    def _sleep(self, keys: Sequence[JobKey], timeout: float | None) -> None:
        """Wait (lock held) until one of the jobs ``keys`` changes state, or the timeout."""
        self._watched.update(keys)
        try:
            self._cond.wait(MAX_SLEEP if timeout is None else min(timeout, MAX_SLEEP))
        finally:
            self._watched.subtract(keys)
            for key in keys:
                if self._watched[key] <= 0:
                    del self._watched[key]

    def wait(
        self,
        store: Store,
        session: str,
        job_ids: Sequence[str],
        condition: WaitFor,
        wait_all: bool,
        timeout: float,
        check: Callable[[], None] | None = None,
    ) -> list[str]:
        """Block until one or all jobs reach ``condition`` (see the backend contract).

        ``check``, when given, is called about every ``CHECK_EVERY`` seconds while the wait
        goes on, and may end it by raising (the keeper: its client hung up). The wait goes
        on where it was: a long list of jobs is not looked up again each time."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        pending = list(job_ids)
        if (
            condition is WaitFor.TERMINATED
            and len(pending) == 1
            and self._reap_here(store, session, pending[0], deadline, check)
        ):
            self.observed()
            return list(job_ids)
        with self._lock:
            states = self._states(store, session, pending)  # unknown ids fail at once
            if wait_all:
                pending = [
                    job_id
                    for job_id, (state, _) in zip(pending, states, strict=True)
                    if not condition.reached(state)
                ]
            while True:
                if wait_all:
                    # Started and terminated are final: drop the satisfied jobs for good,
                    # from the end, and sleep on the last unsatisfied one (an array runs in
                    # index order, so it likely ends last): the wait cannot be over before
                    # it is. Each job is looked up about once, however long the wait.
                    self._drop_reached(store, session, pending, condition)
                    if not pending:
                        self.observed()
                        return list(job_ids)
                    watch = pending[-1:]
                else:
                    states = states or self._states(store, session, pending)
                    for job_id, (state, _) in zip(pending, states, strict=True):
                        if condition.reached(state):
                            self.observed()
                            return [job_id]
                    watch = list(pending)
                    states = []  # looked up again after the sleep
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if len(job_ids) == 1:
                        what = f"job {job_ids[0]}"
                    else:
                        what = f"{'all' if wait_all else 'any'} of {len(job_ids)} jobs"
                    raise TimeoutException(
                        f"timed out after {timeout:g} s waiting for {what} to be {condition.value}"
                    )
                if check is not None:
                    check()
                    remaining = CHECK_EVERY if remaining is None else min(remaining, CHECK_EVERY)
                self._sleep([(store.path, session, job_id) for job_id in watch], remaining)

    def _drop_reached(
        self, store: Store, session: str, pending: list[str], condition: WaitFor
    ) -> None:
        """Drop from the end of ``pending`` the jobs that reached ``condition``, up to the
        last that has not (lock held). The states are looked up a growing chunk at a time:
        a wake-up that drops nothing costs a few lookups, a long list of finished jobs a
        few statements."""
        chunk = 8
        while pending:
            ids = pending[: -chunk - 1 : -1]  # the last ``chunk``, last first
            reached = 0
            for state, _ in self._states(store, session, ids):
                if not condition.reached(state):
                    break
                reached += 1
            del pending[len(pending) - reached :]
            if reached < len(ids):
                return
            chunk = min(chunk * 8, 4096)

    def _states(
        self, store: Store, session: str, job_ids: Sequence[str]
    ) -> list[tuple[JobState, str]]:
        """(state, sub-state) of each job (lock held), as :meth:`_state` gives them: from
        memory, from the array's record for untouched tasks (never in the store), and with
        one store query per 500 of the others; InvalidArgumentException naming the first
        unknown id."""
        found: list[tuple[JobState, str] | None] = []
        missing: list[str] = []
        unwritten = self._unwritten.get(store.path)
        ending = store.ends.pending
        for job_id in job_ids:
            key = (store.path, session, job_id)
            job = self._active.get(key)
            if job is not None:
                found.append((job.record.state, job.record.sub_state))
            elif ending and (session, job_id) in ending:  # ended, its row not written yet
                record = ending[(session, job_id)][0]
                found.append((record.state, record.sub_state))
            elif unwritten is not None and key in unwritten[1]:
                record = unwritten[1][key]
                found.append((record.state, record.sub_state))
            else:
                state = self._untouched_state(store, session, job_id)
                found.append(state)
                if state is None:
                    missing.append(job_id)
        if not missing:
            return [state for state in found if state is not None]
        stored = store.job_states(session, missing)
        states: list[tuple[JobState, str]] = []
        for job_id, state in zip(job_ids, found, strict=True):
            if state is None:
                state = stored.get(job_id)
                if state is None:
                    raise InvalidArgumentException(
                        f"job {job_id!r}: no such job in session {session!r}"
                    )
            states.append(state)
        return states

    def _untouched_state(
        self, store: Store, session: str, job_id: str
    ) -> tuple[JobState, str] | None:
        """The state of an array task not touched yet (see :mod:`.lazy`), None if
        ``job_id`` names none (no record made: a wait may look up a million of them)."""
        task = self._untouched_task(store, session, job_id)
        if task is None:
            return None
        return (JobState.QUEUED_HELD if task[1].held else JobState.QUEUED), ""

    def _reap_here(
        self,
        store: Store,
        session: str,
        job_id: str,
        deadline: float | None,
        check: Callable[[], None] | None,
    ) -> bool:
        """Wait for one running job of ours in this thread, and reap it here.

        It saves the hand-over from the reaper thread to the waiting one, the slowest part of
        a wait. Meanwhile the reaper thread does not watch the job (so it is not woken to
        compete for it); reaping happens under the lock, so the job is reaped once whoever
        does it. True if this thread saw the job end.
        """
        with self._lock:
            job = self._active.get((store.path, session, job_id))
            if job is None or job.spawned is None or not job.spawned.child:
                return False
            # While a thread polls it, the pidfd stays open (see Reaper._unwatch).
            pidfd = job.spawned.pidfd
            if not job.helpers and self._epoll is not None:
                self._epoll.unregister(pidfd)
            job.helpers += 1
        ready: list[tuple[int, int]] = []
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if self._interrupt_fd >= 0:
                poller.register(self._interrupt_fd, select.POLLIN)
            step = MAX_SLEEP if check is None else CHECK_EVERY
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = poller.poll((step if left is None else min(left, step)) * 1000)
                if ready or (left is not None and left <= step):
                    break
                if check is not None:
                    check()
            # Interrupted (the keeper stops): the wait goes on below, and its check ends it.
            ready = [event for event in ready if event[0] == pidfd]
        finally:
            # Not lazy: the waiting thread shows the end to its caller at once.
            with self._changing() as changes:
                try:
                    if ready and job.key in self._active and job.spawned is not None:
                        self._reaped(changes, job)
                finally:
                    job.helpers -= 1
                    if not job.helpers:
                        if job.spawned is not None and self._epoll is not None:
                            # Still running: back to the reaper.
                            self._epoll.register(job.spawned.pidfd, select.EPOLLIN)
                        elif job.orphan_fd >= 0:
                            os.close(job.orphan_fd)
                            job.orphan_fd = -1
        return job.key not in self._active
