"""Waits: threads sleeping until jobs reach a state, or reaping one job themselves.

Waiting threads sleep on one condition variable, woken only when a job they watch changes
(see :meth:`~drmaa2_ostracker.supervisor.states.States._note`).
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Sequence

from drmaa2.backend import WaitFor
from drmaa2.errors import TimeoutException
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor.jobs import JobKey, TrackedJob
from drmaa2_ostracker.supervisor.reaper import MAX_SLEEP
from drmaa2_ostracker.supervisor.recovery import Recovery

__all__ = ["Waits"]

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

    def _sleep(self, keys: Sequence[JobKey], timeout: float | None) -> None:
        """Wait (lock held) until one of the jobs ``keys`` changes state, or the timeout."""
        self._register_pending()  # the reaper must see every end at once now
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
    ) -> list[str]:
        """Block until one or all jobs reach ``condition`` (see the backend contract)."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        pending = list(job_ids)
        if (
            condition is WaitFor.TERMINATED
            and len(pending) == 1
            and self._reap_here(store, session, pending[0], deadline)
        ):
            self.observed()
            return list(job_ids)
        with self._lock:
            for job_id in pending:  # unknown ids fail at once
                self._state(store, session, job_id)
            while True:
                if wait_all:
                    # Started and terminated are final: drop the satisfied jobs for good. The
                    # first unsatisfied job is what blocks the wait.
                    while pending and condition.reached(self._state(store, session, pending[0])[0]):
                        pending.pop(0)
                    if not pending:
                        self.observed()
                        return list(job_ids)
                    while condition.reached(self._state(store, session, pending[-1])[0]):
                        pending.pop()
                    # Sleep on the last unsatisfied job (an array runs in index order, so it
                    # likely ends last): the wait cannot be over before it is.
                    watch = pending[-1:]
                else:
                    for job_id in pending:
                        if condition.reached(self._state(store, session, job_id)[0]):
                            self.observed()
                            return [job_id]
                    watch = list(pending)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    what = "all of" if wait_all else "any of"
                    raise TimeoutException(
                        f"timed out after {timeout:g} s waiting for {what} "
                        f"{len(job_ids)} job(s) to be {condition.value}"
                    )
                self._sleep([(store.path, session, job_id) for job_id in watch], remaining)

    def _reap_here(self, store: Store, session: str, job_id: str, deadline: float | None) -> bool:
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
            if not job.helpers:
                self._stop_watching(pidfd)
            job.helpers += 1
        ready: list[tuple[int, int]] = []
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = poller.poll(
                    MAX_SLEEP * 1000 if left is None else min(left, MAX_SLEEP) * 1000
                )
                if ready or (left is not None and left <= MAX_SLEEP):
                    break
        finally:
            # Not lazy: the waiting thread shows the end to its caller at once.
            with self._changing() as changes:
                try:
                    if ready and job.key in self._active and job.spawned is not None:
                        self._reaped(changes, job)
                finally:
                    job.helpers -= 1
                    if not job.helpers:
                        if job.spawned is not None:  # still running: back to the reaper
                            self._unregistered.add(job.spawned.pidfd)
                            self._register_pending()
                        elif job.orphan_fd >= 0:
                            os.close(job.orphan_fd)
                            job.orphan_fd = -1
        return job.key not in self._active
