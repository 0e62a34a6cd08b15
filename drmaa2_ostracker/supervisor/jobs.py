"""What the supervisor tracks: groups of jobs, the unfinished jobs themselves, their sub-states.

A job the supervisor tracks has not finished; a finished job lives in the store only.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import time
from collections.abc import Callable
from typing import TypeAlias

from drmaa2.enums import JobState
from drmaa2_ostracker.process import LaunchError, LaunchSpec, Spawned
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.lazy import Untouched

__all__ = [
    "ADOPTED_NOTE",
    "AT_DEADLINE",
    "BY_USER",
    "DEADLINE",
    "STARTING",
    "START_FAILED",
    "START_UNCONFIRMED",
    "TERMINATED",
    "UNCONFIRMED_NOTE",
    "UNOBSERVED",
    "UNOBSERVED_NOTE",
    "WALLCLOCK",
    "Group",
    "JobKey",
    "LaunchError",
    "TrackedJob",
    "launch_marks",
    "now_us",
]

#: A job's key: (store path, session, job id).
JobKey: TypeAlias = tuple[str, str, str]

# Sub-states (the job_sub_state text) set by the supervisor.
STARTING = "starting"
TERMINATED = "terminated"
DEADLINE = "deadline_reached"
WALLCLOCK = "wallclock_limit_exceeded"
START_FAILED = "start_failed"
UNOBSERVED = "exit_status_unobserved"
START_UNCONFIRMED = "start_unconfirmed"

#: Why a job was ended, in its annotation ("… before it started" for one that had not).
BY_USER = "terminated by the user"
AT_DEADLINE = "terminated at its deadline_time"

UNOBSERVED_NOTE = (
    "the job ended while no keeper ran (the keeper that started it was killed): its exit "
    "status could not be observed"
)
ADOPTED_NOTE = (
    "the job was adopted after the keeper that started it was killed: only that keeper, its "
    "parent, could have seen its exit status"
)
UNCONFIRMED_NOTE = (
    "the keeper was killed while starting the job, and no process of it was found: whether "
    "it ran is unknown, so it is not started again"
)


def now_us() -> int:
    """Wall-clock time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


@dataclasses.dataclass(eq=False)
class Group:
    """Jobs started together under one limit: an array's tasks, or a single job."""

    #: Builds the launch spec of one of the group's jobs; raises LaunchError.
    prepare: Callable[[JobRecord], LaunchSpec]
    max_parallel: int | None = None
    #: Wall-clock epoch seconds before which nothing starts.
    start_at: float | None = None
    #: Wall-clock epoch seconds at which unfinished jobs are terminated.
    deadline: float | None = None
    #: Seconds a started job may run before it is terminated.
    wallclock_limit: float | None = None
    running: int = 0
    pending: list[tuple[int, int, TrackedJob]] = dataclasses.field(default_factory=list)
    #: An array's tasks that are not in the store yet (see :mod:`.lazy`), None for none.
    untouched: Untouched | None = None

    def push(self, job: TrackedJob) -> None:
        """Queue a job to start when the group allows, in index order."""
        heapq.heappush(self.pending, (job.record.task_index or 0, job.serial, job))

    def ready(self) -> bool:
        """Whether the group's start time has come (or it has none)."""
        return self.start_at is None or time.time() >= self.start_at

    def past_deadline(self) -> bool:
        """Whether the group's deadline has come: a job of it that has not started never
        does (it fails at its deadline, "before it started")."""
        return self.deadline is not None and time.time() >= self.deadline


def launch_marks(record: JobRecord) -> tuple[int | None, ...]:
    """What names a job's launch in the ring of launches begun, with its session and id
    (see :mod:`~drmaa2_ostracker.store.launches`), the first of them what a launch is
    recorded by. An array task's is its array's submission time, which the next keeper
    knows from the array's record even when the task's own row was not committed before its
    start (see ``Dispatcher._dispatch``); a single job's, the tick it was marked STARTING at
    (an array task's too, as keepers of earlier releases recorded it)."""
    if record.array_id is not None and record.submission_us:
        return record.submission_us, record.pid_start
    return (record.pid_start,)


class TrackedJob:
    """A job that has not finished, as the supervisor tracks it."""

    __slots__ = (
        "detached",
        "group",
        "helpers",
        "holds_slot",
        "key",
        "kill_reason",
        "orphan_fd",
        "record",
        "serial",
        "spawned",
        "spec",
        "store",
        "submission",
        "unsaved",
    )

    _serials = itertools.count()

    def __init__(self, store: Store, record: JobRecord, group: Group) -> None:
        self.store = store
        self.record = record
        self.group = group
        self.key: JobKey = (store.path, record.session, record.job_id)
        self.serial = next(self._serials)
        self.spawned: Spawned | None = None
        #: Its launch spec, prepared before it was marked as starting (see Dispatcher).
        self.spec: LaunchSpec | None = None
        self.holds_slot = False
        #: Threads waiting for this job's exit on its pidfd themselves (see Waits._reap_here);
        #: while there are any, the reaper thread does not watch it.
        self.helpers = 0
        #: The pidfd of a job reaped while threads still polled it (the last one closes it).
        self.orphan_fd = -1
        #: Not in the store yet: a single job is written with its start (see Dispatcher.submit).
        self.unsaved = False
        #: The key its client gave its submission, while it is to be started before it is
        #: recorded (see :meth:`~drmaa2_ostracker.store.launches.Launches.forking`).
        self.submission: bytes | None = None
        #: (sub-state, annotation) once the supervisor decided to kill the job.
        self.kill_reason: tuple[str, str] | None = None
        #: Its session was destroyed: tracked until it ends, never written nor shown (a
        #: session made again under the same name gives its ids to new jobs).
        self.detached = False

    @property
    def starting(self) -> bool:
        """Whether the job is being spawned: marked as starting, not running yet."""
        return self.record.state == JobState.QUEUED and self.record.sub_state == STARTING
