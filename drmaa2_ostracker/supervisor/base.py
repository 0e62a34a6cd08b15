"""The supervisor's shared fields, and the methods its parts call before they are defined.

The parts of :class:`~drmaa2_ostracker.supervisor.Supervisor` are mixins in one chain, each
using what the ones before it define: the state changes, timers, the reaper, dispatch,
recovery, waits, control. This base is the start of the chain: it declares the fields every
part shares (set in ``Supervisor.__init__``) and the methods that are called from an
earlier part than the one that defines them.
"""

from __future__ import annotations

import collections
import select
import threading
from typing import TYPE_CHECKING

from drmaa2.backend import NotificationCallback
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.jobs import Group, JobKey, TrackedJob

if TYPE_CHECKING:
    from drmaa2_ostracker.supervisor.lazy import Untouched
    from drmaa2_ostracker.supervisor.states import Changes
    from drmaa2_ostracker.supervisor.timers import Timer

__all__ = ["SupervisorBase"]


class SupervisorBase:
    """The fields shared by the supervisor's parts, one lock guarding them all."""

    _lock: threading.RLock
    #: Waiting threads sleep on it until a job they watch changes (see Waits._sleep).
    _cond: threading.Condition
    #: The jobs that have not finished, by (store path, session, job id).
    _active: dict[JobKey, TrackedJob]
    #: The started jobs, by pidfd.
    _by_fd: dict[int, TrackedJob]
    #: When the sleeping reaper thread wakes at the latest (monotonic; 0.0 while it is
    #: awake: it looks at every deadline before it sleeps again).
    _reaper_until: float
    #: A heap, the earliest first.
    _timers: list[Timer]
    _callbacks: list[NotificationCallback]
    _epoll: select.epoll | None
    #: An eventfd in the epoll set, written to wake the reaper thread.
    _wake_fd: int
    #: An eventfd that every thread reaping a job itself polls too: written once, when the
    #: keeper stops, so that every wait calls its check at once (see Waits.interrupt_waits).
    _interrupt_fd: int
    _thread: threading.Thread | None
    #: The keeper is closing its stores: the reaper thread ends at its next round.
    _closing: bool
    #: The outermost change under way (see States._changing).
    _changes: Changes | None
    #: How many sessions are open: while any is, the reaper thread stays.
    _sessions: int
    #: When the last job was submitted (monotonic).
    _last_submit: float
    #: Jobs some thread waits for (key → number of waiting threads).
    _watched: collections.Counter[JobKey]
    #: Stores whose open transaction waits to be committed, and by when (monotonic).
    _deferred: dict[str, Store]
    #: Stores with job ends in their ring not yet written to their rows (see store.ends).
    _ending: dict[str, Store]
    _flush_at: float | None
    #: Array tasks started in the reaper's rounds whose RUNNING record waits to be written:
    #: with their next change (a task that ends first is written once), or by the next
    #: flush (see States._transition).
    _behind: dict[JobKey, TrackedJob]
    #: Records changed since their store's last commit, by store path (see States._commit).
    _dirty: dict[str, dict[JobKey, JobRecord]]
    #: Records whose change a failed write lost (a full disk), by store path: kept here,
    #: shown to readers, and written again every RETRY_INTERVAL until it works.
    _unwritten: dict[str, tuple[Store, dict[JobKey, JobRecord]]]
    #: Why the unwritten records could not be written, by store path.
    _unwritten_reason: dict[str, str]
    #: Ended jobs' processes left uncollected (zombies) until their ends are stored, by
    #: store path (see FailedWrites._collect_later).
    _uncollected: dict[str, list[int]]
    #: When to try writing them again (monotonic).
    _retry_at: float | None
    #: Groups whose jobs were not started because their start could not be written.
    _held_back: set[Group]
    #: Groups with more jobs to start than one change starts (see DISPATCH_BATCH): the
    #: reaper thread starts the rest, a batch a round, reaping between the batches.
    _continuing: set[Group]
    #: The groups of arrays with untouched tasks, by (store path, session, array id).
    _unfolding: dict[tuple[str, str, str], Group]

    # Called by the state changes and the timers; defined by later parts.

    def _dispatch(self, changes: Changes, group: Group) -> None:
        """Mark as many of the group's queued jobs as its limit allows for starting."""
        raise NotImplementedError

    def _touch_next(self, changes: Changes, group: Group, rest: Untouched) -> TrackedJob | None:
        """Write and track the task at an array's cursor, marked as starting (None: it
        cannot start, and was written as failed)."""
        raise NotImplementedError

    def _launch(self, jobs: list[TrackedJob], lazy: bool) -> None:
        """Start jobs marked as starting (outside the lock)."""
        raise NotImplementedError

    def _ensure_thread(self) -> None:
        """Start the reaper thread unless it runs."""
        raise NotImplementedError
