"""The supervisor, assembled from its parts, and its life across sessions and forks."""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import threading

from drmaa2.enums import JobState
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor.control import Control

__all__ = ["Supervisor"]


#: How long closing waits for the reaper thread's round to end (seconds).
_CLOSING_JOIN = 10.0


class Supervisor(Control):
    """Owns the jobs of this process that have not finished, across sessions and stores."""

    def __init__(self) -> None:
        self._start_afresh()
        self._callbacks = []
        self._interrupt_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._closing = False
        self._sessions = 0
        self._last_submit = 0.0
        self._watched = collections.Counter()
        atexit.register(self.flush)
        os.register_at_fork(after_in_child=self._forked)

    def _start_afresh(self) -> None:
        """Locks, and no job, reaper, timer nor anything waiting to be written."""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._active = {}
        self._by_fd = {}
        self._reaper_until = 0.0
        self._timers = []
        self._epoll = None
        self._wake_fd = -1
        self._thread = None
        self._changes = None
        self._deferred = {}
        self._ending = {}
        self._behind = {}
        self._flush_at = None
        self._dirty = {}
        self._unwritten = {}
        self._unwritten_reason = {}
        self._uncollected = {}
        self._retry_at = None
        self._held_back = set()
        self._continuing = set()
        self._unfolding = {}

    def _forked(self) -> None:
        """In a child forked from this process: the jobs, the reaper and what waits to be
        committed are the parent's; the locks may have been held by its other threads."""
        for fd in [*self._by_fd, self._wake_fd, self._interrupt_fd]:  # the parent's, copied
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._start_afresh()
        self._interrupt_fd = -1  # a job's child about to exec: nothing waits here

    @property
    def lock(self) -> threading.RLock:
        """The supervisor's lock: held, nothing changes (for a consistent listing)."""
        return self._lock

    def has_unfinished(self) -> bool:
        """Whether any job is queued, held or running, or has changes not yet written."""
        return bool(self._active) or bool(self._unwritten) or bool(self._unfolding)

    def only_held_left(self) -> bool:
        """Whether every unfinished job is held, with no process (a single job, a task, or an
        array's untouched tasks while it is held): only a client's release moves them."""
        with self._lock:
            if any(
                job.record.state is not JobState.QUEUED_HELD
                or job.spawned is not None
                or job.starting
                for job in self._active.values()
            ):
                return False
            return all(
                group.untouched is None or group.untouched.held or not group.untouched.count()
                for group in self._unfolding.values()
            )

    def all_written(self) -> bool:
        """Whether every change is in the store (committed, none kept in memory)."""
        with self._lock:
            return not self._unwritten and not self._dirty

    def unfinished_count(self) -> int:
        """How many jobs are queued, held or running."""
        untouched = sum(g.untouched.count() for g in self._unfolding.values() if g.untouched)
        return len(self._active) + untouched

    def forget_session(self, store: Store, session: str) -> None:
        """A session is being destroyed: its jobs that have not started never will; those
        running are still reaped (their records go with the session). They are detached:
        known under a key no request names, never written, so that the jobs of a session
        made again under the same name, which get the same ids, are not taken for them."""
        with self._lock:
            for key, job in list(self._active.items()):
                if key[0] != store.path or key[1] != session or job.detached:
                    continue
                del self._active[key]
                if job.spawned is not None or job.starting:
                    job.detached = True
                    job.key = (key[0], key[1], f"{key[2]} (of a destroyed session)")
                    self._active[job.key] = job
            for key, group in list(self._unfolding.items()):
                if key[0] == store.path and key[1] == session:
                    del self._unfolding[key]
                    group.untouched = None
            self._drop_void_timers()
            self._cond.notify_all()

    def closing(self) -> None:
        """The keeper is about to close its stores (it exits): the reaper thread ends at its
        next round, so that it never starts a job nor writes a store once they are closed
        (jobs keep running: the next keeper adopts them)."""
        with self._lock:
            self._closing = True
            thread = self._thread
        if self._wake_fd >= 0:
            os.eventfd_write(self._wake_fd, 1)
        if thread is not None and thread is not threading.current_thread():
            thread.join(_CLOSING_JOIN)  # its round's changes are then flushed with the rest

    def session_opened(self) -> None:
        """Keep the reaper thread for as long as this supervisor lives (the keeper calls this
        once: restarting the thread per job would cost more than the job)."""
        with self._lock:
            self._sessions += 1
            # Its epoll set and thread now, while descriptors and threads are there to have:
            # a job must never start without a reaper to see it end.
            self._ensure_thread()
