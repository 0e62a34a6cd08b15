"""Timers: actions due at a wall-clock time (start times, deadlines, wallclock limits), and
the kill they usually lead to.

The reaper thread sleeps until the earliest timer is due (see
:mod:`~drmaa2_ostracker.supervisor.reaper`). A timer acts on behalf of some jobs and is void
once they have all finished; void timers are dropped so they never pile up in memory.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
from collections.abc import Callable, Sequence

from drmaa2.enums import JobState
from drmaa2_ostracker.process import kill_job
from drmaa2_ostracker.supervisor.jobs import AT_DEADLINE, DEADLINE, TrackedJob, now_us
from drmaa2_ostracker.supervisor.queries import Queries
from drmaa2_ostracker.supervisor.states import Changes

__all__ = ["Timer", "Timers"]


class Timer:
    """An action due at a wall-clock time, on behalf of some jobs (void once they all ended)."""

    __slots__ = ("action", "alive", "jobs", "serial", "when")
    _serials = itertools.count()

    def __init__(
        self,
        when: float,
        jobs: Sequence[TrackedJob],
        action: Callable[[Changes], None],
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.when = when
        self.serial = next(self._serials)
        self.jobs = jobs
        self.action = action
        #: Whether the timer is due on behalf of more than ``jobs`` (an array's untouched
        #: tasks).
        self.alive = alive

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.serial) < (other.when, other.serial)


class Timers(Queries):
    """The supervisor's timers, deadlines and kills."""

    def _add_timer(
        self,
        when: float,
        jobs: Sequence[TrackedJob],
        action: Callable[[Changes], None],
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self._ensure_thread()
        if len(self._timers) > 2 * len(self._active) + 64:
            self._drop_void_timers()  # timers of ended jobs must not pile up in memory
        heapq.heappush(self._timers, Timer(when, jobs, action, alive))
        os.eventfd_write(self._wake_fd, 1)

    def _drop_void_timers(self) -> None:
        live = [
            t
            for t in self._timers
            if any(job.key in self._active for job in t.jobs) or (t.alive and t.alive())
        ]
        if len(live) != len(self._timers):
            heapq.heapify(live)
            self._timers = live

    def _deadline(self, changes: Changes, jobs: list[TrackedJob]) -> None:
        for job in jobs:
            self._kill(changes, job, DEADLINE, AT_DEADLINE)

    def _kill(self, changes: Changes, job: TrackedJob, sub_state: str, annotation: str) -> None:
        """Terminate a job for a reason (no-op if it has finished meanwhile)."""
        if job.key not in self._active:
            return
        state = job.record.state
        if job.spawned is not None:
            if job.kill_reason is None:
                job.kill_reason = (sub_state, annotation)
                if not job.detached:
                    with contextlib.suppress(OSError):
                        job.store.killing(job.record, sub_state, annotation)
            kill_job(job.spawned.identity.pid, job.spawned.pidfd)
        elif job.starting:
            job.kill_reason = (sub_state, annotation)
        elif state in (JobState.QUEUED, JobState.QUEUED_HELD):
            self._transition(
                changes,
                job,
                JobState.FAILED,
                sub_state,
                annotation=f"{annotation} before it started",
                finish_us=now_us(),
                launch=None,
            )
