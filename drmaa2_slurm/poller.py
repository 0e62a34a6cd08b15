"""The one poller of a process: it asks squeue about the unfinished jobs of the open sessions
while someone waits or a notification callback is registered, and wakes the waiters.

Each round is one ``squeue -j`` call per cluster listing only the unfinished jobs of the open
sessions (an array counts once). The interval starts at :data:`MIN_INTERVAL` and grows by
:data:`BACKOFF` each round in which nothing changed, up to :data:`MAX_INTERVAL`; a change or a
new waiter brings it back to the minimum. So a job's end is seen at most ``MAX_INTERVAL`` after
Slurm shows it, and an idle wait costs at most ``1 / MAX_INTERVAL`` squeue calls a second.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from drmaa2.backend import NotificationCallback
from drmaa2.enums import Event, JobState
from drmaa2.errors import Drmaa2Exception, TimeoutException
from drmaa2.types import Notification
from drmaa2_slurm.commands import Slurm
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob

__all__ = ["BACKOFF", "MAX_INTERVAL", "MIN_INTERVAL", "Poller", "Watched"]

#: Seconds between two squeue calls while jobs change.
MIN_INTERVAL = 0.05
#: Seconds between two squeue calls at most, once nothing changes.
MAX_INTERVAL = 0.5
#: Growth of the interval per round without a change.
BACKOFF = 1.5

#: Seconds unregistering a callback waits at most for the events it is being given.
_DELIVERY_TIMEOUT = 30.0
#: How many jobs' last published state the poller remembers, to publish each change once.
_LAST_PUBLISHED_KEPT = 100_000
#: Seconds between a waiter's checks when nothing changes: a wait notices within this that
#: another process destroyed its session. (Also the longest single sleep of a wait, which
#: goes on after it: a condition's wait longer than threading.TIMEOUT_MAX is not valid.)
_RECHECK_INTERVAL = 1.0

_log = logging.getLogger(__name__)
T = TypeVar("T")


class Watched(Protocol):
    """An open job session, as the poller sees it."""

    @property
    def slurm(self) -> Slurm:
        """The commands of the session's cluster."""
        ...

    def query_ids(self) -> list[str]:
        """The squeue ids of the session's unfinished jobs."""
        ...

    def observe(self, rows: list[SlurmJob], queried: list[str]) -> bool:
        """Take what squeue said about ``queried``; True if a job's state changed."""
        ...


class Poller:
    """Polls squeue for every open session of the process; one thread, started on demand."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sessions: list[Watched] = []
        self._waiters = 0
        self._callback: NotificationCallback | None = None
        #: Publications begun (:meth:`publishing`) and not yet delivered, and the threads
        #: delivering them now; under ``_delivered``, which also guards ``_callback``'s changes.
        self._undelivered = 0
        self._delivering: set[int] = set()
        self._delivered = threading.Condition(threading.Lock())
        #: The last state published of each job (by session and id), the newest last.
        self._last_published: collections.OrderedDict[tuple[str, str], JobState] = (
            collections.OrderedDict()
        )
        self._thread: threading.Thread | None = None
        self._kick = threading.Event()
        #: squeue calls made, for the benchmarks.
        self.calls = 0

    # -- sessions and callbacks --------------------------------------------------------------

    def register(self, session: Watched) -> None:
        """Watch an opened session's jobs."""
        with self._cond:
            self._sessions.append(session)
            if self._callback is not None:
                self._ensure_thread()

    def unregister(self, session: Watched) -> None:
        """Stop watching a closed session; the thread ends with the last one."""
        with self._cond:
            self._sessions = [s for s in self._sessions if s is not session]
            thread = self._thread if not self._sessions else None
        if thread is not None and thread is not threading.current_thread():
            self._kick.set()
            thread.join()

    def set_callback(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` on every state change of a job of this process's sessions.

        Changes a caller could see before this call (a control call or a wait returned) reach
        the callback registered then before this returns, so that unregistering after, say,
        ``terminate()`` never loses its event (unless this is called by that callback)."""
        with self._delivered:
            self._callback = callback
            if threading.get_ident() not in self._delivering:
                self._delivered.wait_for(lambda: self._undelivered == 0, _DELIVERY_TIMEOUT)
        with self._cond:
            if callback is not None and self._sessions:
                self._ensure_thread()

    def publishing(self) -> NotificationCallback | None:
        """Begin publishing state changes, where they are made visible (under the session's
        lock): the callback registered now is the one to get them; :meth:`publish` must
        follow, with it."""
        with self._delivered:
            self._undelivered += 1
            return self._callback

    def publish(
        self,
        session: str,
        changes: list[tuple[str, JobState]],
        callback: NotificationCallback | None,
    ) -> None:
        """Tell waiters, and ``callback`` (from :meth:`publishing`), that jobs changed state
        (the one place that does)."""
        me = threading.get_ident()
        try:
            if not changes:
                return
            with self._cond:
                self._cond.notify_all()  # every object's waiters look at their own states
            changes = self._not_published_yet(session, changes)
            if callback is None or not changes:
                return
            with self._delivered:
                self._delivering.add(me)
            for job_id, state in changes:
                try:
                    callback(Notification(Event.NEW_STATE, job_id, session, state))
                except Exception:  # a user's callback must not stop the poller
                    _log.exception("drmaa2 slurm: the event notification callback raised")
        finally:
            with self._delivered:
                self._delivering.discard(me)
                self._undelivered -= 1
                self._delivered.notify_all()

    def _not_published_yet(
        self, session: str, changes: list[tuple[str, JobState]]
    ) -> list[tuple[str, JobState]]:
        """The changes not published already: two objects of one session in this process
        see each job's changes alike, and the callback gets each once."""
        fresh = []
        with self._delivered:
            last = self._last_published
            for job_id, state in changes:
                before = last.get((session, job_id))
                if before is not None and (before is state or before.is_terminal):
                    continue  # published already (an end is final)
                last[(session, job_id)] = state
                last.move_to_end((session, job_id))
                fresh.append((job_id, state))
            while len(last) > _LAST_PUBLISHED_KEPT:
                last.popitem(last=False)
        return fresh

    # -- waiting -----------------------------------------------------------------------------

    def wait_until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Block until ``check()`` returns something else than None (re-checked after each
        change, and every :data:`_RECHECK_INTERVAL`; whatever it raises ends the wait);
        TimeoutException, saying ``what``, after ``timeout`` seconds (-1: never)."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            self._ensure_thread()
            self._kick.set()
            try:
                while True:
                    result = check()
                    if result is not None:
                        return result
                    if deadline is None:
                        self._cond.wait(_RECHECK_INTERVAL)
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutException(f"{what}: timed out after {timeout:g} s")
                    self._cond.wait(min(remaining, _RECHECK_INTERVAL))
            finally:
                self._waiters -= 1

    # -- the thread --------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="drmaa2-slurm-poller", daemon=True
            )
            self._thread.start()

    def _busy(self) -> bool:
        return bool(self._sessions) and (self._waiters > 0 or self._callback is not None)

    def _loop(self) -> None:
        interval = MIN_INTERVAL
        while True:
            with self._cond:
                if not self._busy():
                    self._thread = None
                    return
                sessions = list(self._sessions)
            self._kick.clear()
            try:
                changed = self.poll(sessions)
            except Exception:  # one session's trouble (its store, say) must not stop the rest
                _log.exception("drmaa2 slurm: a poll round failed; going on")
                changed = False
            interval = MIN_INTERVAL if changed else min(interval * BACKOFF, MAX_INTERVAL)
            if self._kick.wait(interval):
                interval = MIN_INTERVAL

    def poll(self, sessions: list[Watched]) -> bool:
        """One round: one squeue call per cluster; True if any job changed state."""
        by_cluster: dict[str, tuple[Slurm, list[tuple[Watched, list[str]]]]] = {}
        for session in sessions:
            ids = session.query_ids()
            if ids:
                slurm = session.slurm
                by_cluster.setdefault(slurm.conf, (slurm, []))[1].append((session, ids))
        changed = False
        for slurm, members in by_cluster.values():
            wanted = sorted({i for _, ids in members for i in ids})
            try:
                self.calls += 1
                rows = [SlurmJob(row) for row in slurm.squeue(JOB_FIELDS, wanted)]
            except Drmaa2Exception as error:
                _log.warning("drmaa2 slurm: polling %s failed: %s", slurm.conf, error)
                continue
            for session, ids in members:
                changed |= session.observe(rows, ids)
        return changed
