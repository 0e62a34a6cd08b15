"""The supervisor: every job state transition, one reaper thread, array throttling and timers.

- :meth:`Supervisor._transition` is the one place that changes a job's state: it updates the
  in-memory record, writes it to the store, and queues the notification. Every operation runs
  inside :meth:`Supervisor._changing`, which commits the store once (or, for the reaper's
  bookkeeping, within ``_FLUSH_DELAY``, and always before anyone is shown the result), wakes
  the waiters that watch a changed job (one condition variable), and then calls the event
  callbacks and starts the jobs it marked as starting, outside the lock.
- One reaper thread waits on the pidfds of all running jobs and on its timers with one epoll
  set, and reaps by explicit pid. A thread waiting for one job of ours takes that job's pidfd
  out of the set and reaps it itself (saving the hand-over). There is no per-job thread and
  no polling for this process's jobs; the thread exits when no session is open and nothing is
  left to watch, and is started again when needed.
- Jobs are started in *groups*: an array's tasks form one group with its ``max_parallel``
  limit, a single job is a group of one. A group dispatches its queued tasks in index order
  whenever a slot frees, a task is released, or the group's start time arrives.
- It runs in the keeper, the only process that writes the store: a keeper that starts adopts
  the unfinished jobs of the one before it (``recover``).
- Finished jobs leave memory: their records live in the store only.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import functools
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from drmaa2.backend import Action, NotificationCallback, WaitFor
from drmaa2.enums import Event, JobState
from drmaa2.errors import (
    InvalidArgumentException,
    InvalidStateException,
    TimeoutException,
)
from drmaa2.types import Notification
from drmaa2_ostracker import extension
from drmaa2_ostracker.process import (
    ExitStatus,
    LaunchSpec,
    ProcessIdentity,
    Spawned,
    continue_job,
    kill_job,
    open_pidfd,
    reap,
    spawn,
    stop_job,
)
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord

__all__ = ["Group", "LaunchError", "Supervisor"]

_log = logging.getLogger(__name__)

# Sub-states (the job_sub_state text) set by the supervisor.
STARTING = "starting"
TERMINATED = "terminated"
DEADLINE = "deadline_reached"
WALLCLOCK = "wallclock_limit_exceeded"
START_FAILED = "start_failed"
UNOBSERVED = "exit_status_unobserved"
START_UNCONFIRMED = "start_unconfirmed"

_UNOBSERVED_NOTE = (
    "the job ended while no session watched it (its controlling process had died): "
    "its exit status could not be observed"
)
_UNCONFIRMED_NOTE = (
    "the controlling process died while starting the job: whether it ran is unknown, "
    "so it is not started again"
)
#: While jobs were submitted this recently (seconds), the reaper gathers exits for as long.
_BURST_WINDOW = 0.01
#: The longest single sleep (seconds): longer timeouts are slept in slices.
_MAX_SLEEP = 3600.0
#: How long the bookkeeping of an exit may wait to share a commit with later changes (s).
_FLUSH_DELAY = 0.01

#: A finished job's rusage extension keys as stored: a JSON object of strings.
_USAGE = (
    "{{"
    + ",".join(
        f'"{key}":"{{}}"'
        for key in (
            extension.JSESSION_MAX_RSS,
            extension.JSESSION_SWAP,
            extension.JSESSION_IN_BLOCK,
            extension.JSESSION_OUT_BLOCK,
            extension.JSESSION_SYSTEM_TIME,
            extension.JSESSION_USER_TIME,
        )
    )
    + "}}"
)
_TERMINAL = frozenset({JobState.DONE, JobState.FAILED})

#: Why a job that was to start did not: the start was interrupted (KeyboardInterrupt …).
_INTERRUPTED = "not started: the start was interrupted"
#: How long terminate() waits for the killed job to be reaped before returning.
_TERMINATE_CONFIRM_SECONDS = 10.0


class _ReaperDone(Exception):
    """The reaper thread has nothing left to watch."""


class LaunchError(Exception):
    """A job cannot be started; the message is the reason, for the job's annotation."""


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
    pending: list[tuple[int, int, _Job]] = dataclasses.field(default_factory=list)

    def push(self, job: _Job) -> None:
        heapq.heappush(self.pending, (job.record.task_index or 0, job.serial, job))

    def ready(self) -> bool:
        return self.start_at is None or time.time() >= self.start_at


class _Job:
    """A job that has not finished, as the supervisor tracks it."""

    __slots__ = (
        "group",
        "helpers",
        "holds_slot",
        "key",
        "kill_reason",
        "orphan_fd",
        "record",
        "serial",
        "spawned",
        "store",
        "unsaved",
    )

    _serials = itertools.count()

    def __init__(self, store: Store, record: JobRecord, group: Group) -> None:
        self.store = store
        self.record = record
        self.group = group
        self.key = (store.path, record.session, record.job_id)
        self.serial = next(self._serials)
        self.spawned: Spawned | None = None
        self.holds_slot = False
        #: Threads waiting for this job's exit on its pidfd themselves (see _reap_here); while
        #: there are any, the reaper thread does not watch it.
        self.helpers = 0
        #: The pidfd of a job reaped while threads still polled it (the last one closes it).
        self.orphan_fd = -1
        #: Not in the store yet: a single job is written with its start (see submit).
        self.unsaved = False
        #: (sub-state, annotation) once the supervisor decided to kill the job.
        self.kill_reason: tuple[str, str] | None = None

    @property
    def starting(self) -> bool:
        return self.record.state == JobState.QUEUED and self.record.sub_state == STARTING


class _Changes:
    """What one locked operation changed: stores to commit, jobs to start, notifications."""

    __slots__ = (
        "changed",
        "lazy",
        "must_commit",
        "notes",
        "stores",
        "to_start",
    )

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self.to_start: list[_Job] = []
        self.notes: list[Notification] = []
        self.changed = False
        #: The changes may wait a few milliseconds to be committed with later ones.
        self.lazy = False
        #: Something in the changes must be committed now (a job marked as starting).
        self.must_commit = False


class _Timer:
    """An action due at a wall-clock time, on behalf of some jobs (void once they all ended)."""

    __slots__ = ("action", "jobs", "serial", "when")
    _serials = itertools.count()

    def __init__(
        self, when: float, jobs: Sequence[_Job], action: Callable[[_Changes], None]
    ) -> None:
        self.when = when
        self.serial = next(self._serials)
        self.jobs = jobs
        self.action = action

    def __lt__(self, other: _Timer) -> bool:
        return (self.when, self.serial) < (other.when, other.serial)


class _Changing:
    """The context of :meth:`Supervisor._changing` (a class: it runs several times per job)."""

    __slots__ = ("changes", "lazy", "nested", "supervisor")

    def __init__(self, supervisor: Supervisor, lazy: bool) -> None:
        self.supervisor = supervisor
        self.lazy = lazy
        self.nested = False
        self.changes: _Changes | None = None

    def __enter__(self) -> _Changes:
        supervisor = self.supervisor
        supervisor._lock.acquire()
        outer = supervisor._changes
        if outer is not None:  # nested: the outer change finishes the work
            self.nested = True
            return outer
        changes = self.changes = supervisor._changes = _Changes()
        changes.lazy = self.lazy
        return changes

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        supervisor = self.supervisor
        changes = self.changes
        if self.nested or changes is None:
            supervisor._lock.release()
            return
        try:
            supervisor._end_change(changes)
        finally:
            supervisor._lock.release()
        supervisor._after_change(changes)


class Supervisor:
    """Owns the jobs of this process that have not finished, across sessions and stores."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._active: dict[tuple[str, str, str], _Job] = {}
        self._by_fd: dict[int, _Job] = {}
        #: Pidfds of ``_by_fd`` not yet in the epoll set (see _watch).
        self._unregistered: set[int] = set()
        self._timers: list[_Timer] = []
        self._callbacks: list[NotificationCallback] = []
        self._epoll: select.epoll | None = None
        self._wake_fd = -1
        self._thread: threading.Thread | None = None
        self._changes: _Changes | None = None
        self._sessions = 0
        self._last_submit = 0.0
        #: Jobs some thread waits for (key → number of waiting threads).
        self._watched: collections.Counter[tuple[str, str, str]] = collections.Counter()
        #: Stores whose open transaction waits to be committed, and by when (monotonic).
        self._deferred: dict[str, Store] = {}
        self._flush_at: float | None = None
        atexit.register(self.flush)
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """In a child forked from this process: the jobs, the reaper and what waits to be
        committed are the parent's; the locks may have been held by its other threads."""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        for fd in [*self._by_fd, self._wake_fd]:  # the child's copies of the parent's
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._active = {}
        self._by_fd = {}
        self._unregistered = set()
        self._timers = []
        self._epoll = None
        self._wake_fd = -1
        self._thread = None
        self._changes = None
        self._deferred = {}
        self._flush_at = None

    # -- the one place of change -----------------------------------------------------------

    def _changing(self, lazy: bool = False) -> _Changing:
        """Run a change under the lock; then commit, wake waiters, start jobs, notify.

        ``lazy`` (the reaper's bookkeeping of exits): the commit may wait up to
        ``_FLUSH_DELAY`` to share one commit with later changes — unless a job was marked as
        starting, which must be in the store before it starts.
        """
        return _Changing(self, lazy)

    def _end_change(self, changes: _Changes) -> None:
        """The end of the outermost change, lock held: commit and wake the waiters."""
        try:
            # Never a rollback: every transition changed memory with the store, and the
            # connection's transaction may hold other operations' writes too. An operation
            # that fails (its DRMAA2 error) fails before it writes.
            if changes.lazy and not changes.must_commit:
                self._defer_commit(changes.stores.values())
            else:
                for store in changes.stores.values():
                    store.commit()
        finally:
            self._changes = None
            if changes.changed:
                self._cond.notify_all()

    def _after_change(self, changes: _Changes) -> None:
        """After the outermost change, lock released: callbacks, then the starts it marked."""
        try:
            if changes.notes:
                self.observed()  # a callback sees only what survives a crash
                self._notify(changes.notes)
        finally:
            if changes.to_start:  # marked as starting: they start, whatever else failed
                self._launch(changes.to_start, lazy=changes.lazy)

    def _defer_commit(self, stores: Iterable[Store]) -> None:
        for store in stores:
            store.defer()
            self._deferred[store.path] = store
        if self._deferred:
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._thread is None:  # nobody to commit later: now then
            self.flush()
        elif self._flush_at is None:
            self._flush_at = time.monotonic() + _FLUSH_DELAY
            os.eventfd_write(self._wake_fd, 1)

    def observed(self) -> None:
        """What the user is about to see must survive a crash of this process: commit what
        waits to be committed (a no-op when nothing does)."""
        if self._deferred:
            self.flush()

    def flush(self) -> None:
        """Commit what waits to be committed."""
        with self._lock:
            self._flush_at = None
            deferred, self._deferred = self._deferred, {}
            for store in deferred.values():
                store.commit()

    def _transition(
        self,
        changes: _Changes,
        job: _Job,
        state: JobState,
        sub_state: str = "",
        **fields: object,
    ) -> None:
        """Change a job's state: the record, the store, the waiters, the notifications. (The
        change holds even when the row is gone: its session was destroyed.)"""
        record = job.record
        store = job.store
        self._begin(changes, store)
        if not job.unsaved:
            store.update_job(
                record.session, record.job_id, state=int(state), sub_state=sub_state, **fields
            )
        changed = record.state != state
        record.state = state
        record.sub_state = sub_state
        for name, value in fields.items():
            setattr(record, name, value)
        if job.unsaved:  # first written now, with its start
            store.insert_jobs([record])
            job.unsaved = False
        if state in _TERMINAL:
            del self._active[job.key]
            if job.holds_slot:
                job.holds_slot = False
                job.group.running -= 1
                self._dispatch(changes, job.group)
        if changed:
            self._note(changes, job)

    def _note(self, changes: _Changes, job: _Job) -> None:
        # Waiters sleep until a job they watch changes: no wake-up for every other job.
        if job.key in self._watched:
            changes.changed = True
        record = job.record
        if self._callbacks:
            changes.notes.append(
                Notification(
                    event=Event.NEW_STATE,
                    job_id=record.job_id,
                    session_name=record.session,
                    job_state=record.state,
                )
            )

    def _notify(self, notes: Sequence[Notification]) -> None:
        if not notes or not self._callbacks:
            return
        for callback in list(self._callbacks):
            for note in notes:
                try:
                    callback(note)
                except Exception:
                    _log.exception("drmaa2 event callback %r failed", callback)

    def set_callback(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` for every state change from now on (None: stop)."""
        with self._lock:
            self._callbacks = [] if callback is None else [callback]

    # -- submission and dispatch -----------------------------------------------------------

    def submit(
        self,
        store: Store,
        make_records: Callable[[], Sequence[JobRecord]],
        group: Group,
        *,
        commit_after_start: bool = False,
    ) -> list[JobRecord]:
        """Record new jobs (already validated) and start what may start.

        ``make_records`` runs inside the store transaction that inserts its records, so ids
        it allocates and records it writes commit together. Records are QUEUED or
        QUEUED_HELD; queued ones start as their group allows, in index order. The records are
        in the store when this returns.

        ``commit_after_start``: record a job that starts at once with its start, after the
        spawn (nothing is written before the job starts; the record is committed before this
        returns). Right for a single job: if the process dies
        while starting it, the job was never accepted and is not in the store. Wrong for array
        tasks, whose records must say "starting" before they start, so that a task is never
        started twice.
        """
        self._last_submit = time.monotonic()
        with self._changing() as changes:
            if not commit_after_start:
                self._begin(changes, store)
            records = list(make_records())
            jobs = [_Job(store, record, group) for record in records]
            for job in jobs:  # those that start now are recorded as starting right away
                if (
                    job.record.state == JobState.QUEUED
                    and group.ready()
                    and (group.max_parallel is None or group.running < group.max_parallel)
                ):
                    job.record.sub_state = STARTING
                    group.running += 1
                    job.holds_slot = True
                    job.unsaved = commit_after_start
                    changes.to_start.append(job)
            saved = [job.record for job in jobs if not job.unsaved]
            if saved:
                self._begin(changes, store)
                store.insert_jobs(saved)
            for job in jobs:
                self._active[job.key] = job
                self._note(changes, job)
                if job.record.state == JobState.QUEUED and not job.holds_slot:
                    group.push(job)
            if group.start_at is not None and not group.ready():
                self._add_timer(group.start_at, jobs, lambda ch: self._dispatch(ch, group))
            if group.deadline is not None:
                self._add_timer(group.deadline, jobs, lambda ch: self._deadline(ch, jobs))
        return records

    def reserve_ids(self, store: Store, session: str, count: int) -> int:
        """Reserve ``count`` job ids of a session, committed before this returns (under the
        lock no change's transaction is open, so the reservation is its own); the first."""
        with self._lock:
            return store.allocate_id(session, count)

    def start_now(self, store: Store, record: JobRecord, group: Group) -> None:
        """Start a single job at once, then record it with its start (committed when this
        returns). The fast way of :meth:`submit` for a job with no start
        time, deadline or hold: nothing is written before the spawn, and nobody knows the job
        before it is recorded, so nothing can change it meanwhile."""
        self._last_submit = time.monotonic()
        job = _Job(store, record, group)
        job.unsaved = True
        job.holds_slot = True
        group.running += 1
        spawned, reason, interrupted = self._spawn(job)
        with self._changing() as changes:
            self._active[job.key] = job
            self._note(changes, job)
            self._started(changes, job, spawned, reason)
        if interrupted is not None:
            raise interrupted

    @staticmethod
    def _spawn(job: _Job) -> tuple[Spawned | None, str, BaseException | None]:
        """Spawn a job: (its process, or None and why not, and an interruption to re-raise
        once the failure is recorded)."""
        try:
            return spawn(job.group.prepare(job.record)), "", None
        except LaunchError as error:
            return None, str(error), None
        except Exception as error:  # the job fails, the supervisor goes on
            reason = getattr(error, "strerror", None) or str(error)
            return None, f"could not start the job: {reason}", None
        except BaseException as error:  # KeyboardInterrupt: record, then re-raise
            return None, _INTERRUPTED, error

    def _started(self, changes: _Changes, job: _Job, spawned: Spawned | None, reason: str) -> None:
        """Record how a job's start went: running, or failed to start for ``reason``."""
        if spawned is not None:
            self._running(changes, job, spawned)
            return
        self._transition(
            changes,
            job,
            JobState.FAILED,
            START_FAILED,
            annotation=reason,
            finish_us=now_us(),
            launch=None,
        )

    @staticmethod
    def _begin(changes: _Changes, store: Store) -> None:
        if store.path not in changes.stores:
            store.begin()
            changes.stores[store.path] = store

    def _dispatch(self, changes: _Changes, group: Group) -> None:
        """Mark as many of the group's queued jobs as its limit allows for starting."""
        if not group.ready():
            return
        while group.pending and (group.max_parallel is None or group.running < group.max_parallel):
            _, _, job = heapq.heappop(group.pending)
            if job.key not in self._active or job.record.state != JobState.QUEUED or job.starting:
                continue  # held, terminated or started since it was queued
            self._transition(changes, job, JobState.QUEUED, STARTING)
            changes.must_commit = True
            group.running += 1
            job.holds_slot = True
            changes.to_start.append(job)

    def _launch(self, jobs: list[_Job], lazy: bool) -> None:
        """Start jobs marked STARTING (outside the lock: spawning is the slow part)."""
        interrupted: BaseException | None = None
        while jobs:
            started: list[tuple[_Job, Spawned | None, str]] = []
            for job in jobs:
                if interrupted is not None:
                    started.append((job, None, _INTERRUPTED))
                    continue
                spawned, reason, interrupted = self._spawn(job)
                started.append((job, spawned, reason))
            with self._changing(lazy) as changes:
                for job, spawned, reason in started:
                    self._started(changes, job, spawned, reason)
                jobs = changes.to_start
                changes.to_start = []
                changes.must_commit = changes.must_commit or bool(jobs)
        if interrupted is not None:
            raise interrupted

    def _running(self, changes: _Changes, job: _Job, spawned: Spawned) -> None:
        job.spawned = spawned
        self._watch(job)
        self._transition(
            changes,
            job,
            JobState.RUNNING,
            dispatch_us=now_us(),
            pid=spawned.identity.pid,
            pid_start=spawned.identity.start_ticks,
            launch=None,
        )
        limit = job.group.wallclock_limit
        if limit is not None:
            self._add_timer(
                time.time() + limit,
                [job],
                lambda ch: self._kill(
                    ch, job, WALLCLOCK, f"wallclock limit of {limit:g} s exceeded"
                ),
            )
        if job.kill_reason is not None:  # terminated while it was starting
            kill_job(spawned.identity.pid, spawned.pidfd)

    def _deadline(self, changes: _Changes, jobs: list[_Job]) -> None:
        for job in jobs:
            self._kill(changes, job, DEADLINE, "terminated at its deadline_time")

    def _kill(self, changes: _Changes, job: _Job, sub_state: str, annotation: str) -> None:
        """Terminate a job for a reason (no-op if it has finished meanwhile)."""
        if job.key not in self._active:
            return
        state = job.record.state
        if job.spawned is not None:
            if job.kill_reason is None:
                job.kill_reason = (sub_state, annotation)
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

    # -- the reaper ------------------------------------------------------------------------

    def _watch(self, job: _Job) -> None:
        """Watch a started job's pidfd. A single job's joins the reaper's epoll set when the
        reaper next wakes (within ``_FLUSH_DELAY``), or before any thread sleeps on a job's
        change: the common ``run_job`` then wait makes no epoll call at all (the waiting
        thread reaps). An array task's joins at once (its end frees a slot)."""
        assert job.spawned is not None
        self._ensure_thread()
        assert self._epoll is not None
        self._by_fd[job.spawned.pidfd] = job
        if job.group.pending:
            self._epoll.register(job.spawned.pidfd, select.EPOLLIN)
        else:
            self._unregistered.add(job.spawned.pidfd)
            self._flush_soon()

    def _register_pending(self) -> None:
        """Put every watched pidfd into the reaper's epoll set (lock held)."""
        while self._unregistered:
            fd = self._unregistered.pop()
            job = self._by_fd.get(fd)
            if job is not None and not job.helpers and self._epoll is not None:
                self._epoll.register(fd, select.EPOLLIN)

    def _stop_watching(self, fd: int) -> None:
        """Take a pidfd out of the reaper's epoll set (lock held)."""
        if fd in self._unregistered:
            self._unregistered.discard(fd)
        elif self._epoll is not None:
            self._epoll.unregister(fd)

    def _add_timer(
        self, when: float, jobs: Sequence[_Job], action: Callable[[_Changes], None]
    ) -> None:
        self._ensure_thread()
        if len(self._timers) > 2 * len(self._active) + 64:
            self._drop_void_timers()  # timers of ended jobs must not pile up in memory
        heapq.heappush(self._timers, _Timer(when, jobs, action))
        os.eventfd_write(self._wake_fd, 1)

    def _drop_void_timers(self) -> None:
        live = [t for t in self._timers if any(job.key in self._active for job in t.jobs)]
        if len(live) != len(self._timers):
            heapq.heapify(live)
            self._timers = live

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        if self._epoll is None:
            self._epoll = select.epoll()
            self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread = threading.Thread(target=self._reaper, name="drmaa2-os-reaper", daemon=True)
        self._thread.start()

    def _reaper(self) -> None:
        try:
            while self._reaper_round():
                pass
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _reaper_round(self) -> bool:
        """One round of the reaper thread; False when it has nothing left to do."""
        try:
            self._reap_round()
        except _ReaperDone:
            return False
        except Exception:  # keep reaping whatever went wrong with one job or the store
            _log.exception("drmaa2 os backend: the reaper thread hit an error; going on")
            time.sleep(0.01)
        return True

    def _reap_round(self) -> None:
        epoll = self._epoll
        assert epoll is not None
        with self._lock:
            # Stay while sessions are open: restarting a thread per job costs more than
            # the job. With no session open, end once nothing is left to watch.
            self._register_pending()
            if not self._by_fd and not self._sessions:
                self._drop_void_timers()
                if not self._timers:
                    self.flush()
                    self._thread = None
                    raise _ReaperDone
            timeout = -1.0
            if self._timers:
                timeout = max(0.0, self._timers[0].when - time.time())
            if self._flush_at is not None:
                due = max(0.0, self._flush_at - time.monotonic())
                timeout = due if timeout < 0 else min(timeout, due)
        events = epoll.poll(min(timeout, _MAX_SLEEP) if timeout >= 0 else _MAX_SLEEP)
        if events and time.monotonic() - self._last_submit < _BURST_WINDOW:
            # Jobs are being submitted right now: let the exits gather and handle them in one
            # round, instead of taking the interpreter from the submitting thread for each.
            time.sleep(_BURST_WINDOW)
            events = epoll.poll(0)
        if self._flush_at is not None and time.monotonic() >= self._flush_at:
            self.flush()
        with self._changing(lazy=True) as changes:
            for fd, _ in events:
                if fd == self._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(fd)
                    continue
                job = self._by_fd.get(fd)
                if job is not None:
                    self._reaped(changes, job)
            now = time.time()
            while self._timers and self._timers[0].when <= now:
                heapq.heappop(self._timers).action(changes)

    def _reaped(self, changes: _Changes, job: _Job) -> None:
        spawned = job.spawned
        assert spawned is not None
        if not spawned.child:  # adopted: not our child, its status is not ours to see
            self._unwatch(job)
            self._unobserved(changes, job)
            return
        try:
            status = reap(spawned.identity.pid)
        except ChildProcessError:  # the host application reaped it (SIGCHLD ignored, wait(-1))
            self._unwatch(job)
            self._unobserved(changes, job)
            return
        if status is None:
            return
        self._unwatch(job)
        self._finish(changes, job, status)

    def _unobserved(self, changes: _Changes, job: _Job) -> None:
        sub_state, annotation = job.kill_reason or (UNOBSERVED, _UNOBSERVED_NOTE)
        if job.kill_reason is not None:
            annotation = f"{annotation}; {_UNOBSERVED_NOTE}"
        self._transition(
            changes,
            job,
            JobState.FAILED,
            sub_state,
            annotation=annotation,
            exit_status=None,
            finish_us=now_us(),
        )

    def _unwatch(self, job: _Job) -> None:
        """Forget an ended job's process: from now on nothing may signal its pid."""
        spawned = job.spawned
        assert self._epoll is not None and spawned is not None
        job.spawned = None
        del self._by_fd[spawned.pidfd]
        if job.helpers:  # threads poll it (see _reap_here): the last of them closes it
            job.orphan_fd = spawned.pidfd
        else:
            self._stop_watching(spawned.pidfd)
            os.close(spawned.pidfd)
        if spawned.popen is not None:
            # Tell subprocess the child is reaped, so it never waits for it nor warns about it.
            spawned.popen.returncode = -1

    def _finish(self, changes: _Changes, job: _Job, status: ExitStatus) -> None:
        ok = status.exit_status == 0 and not status.terminating_signal
        sub_state, annotation = job.kill_reason or ("", None)
        if annotation is None and not ok:
            annotation = (
                f"killed by {status.terminating_signal}"
                if status.terminating_signal
                else f"exited with status {status.exit_status}"
            )
        # The extension keys as a JSON object of strings, written out directly: this runs
        # once per job, on the way from its exit to the wait that returns it.
        usage = _USAGE.format(
            status.max_rss_kib,
            status.swaps,
            status.in_blocks,
            status.out_blocks,
            round(status.system_time * 1000),
            round(status.user_time * 1000),
        )
        self._transition(
            changes,
            job,
            JobState.DONE if ok and job.kill_reason is None else JobState.FAILED,
            sub_state,
            annotation=annotation,
            exit_status=status.exit_status,
            terminating_signal=status.terminating_signal,
            finish_us=now_us(),
            cpu_time=status.user_time + status.system_time,
            rusage=usage,
        )

    # -- recovery --------------------------------------------------------------------------

    def recover(self, store: Store, session: str, group_for: Callable[[JobRecord], Group]) -> None:
        """Take over the unfinished jobs of a session (the keeper before this one is gone).

        A job still running (same pid *and* start time) is adopted: tracked, controllable,
        suspended stays suspended. A job that ended meanwhile is FAILED with its exit status
        unobserved, never invented. One caught while starting is FAILED, never run twice.
        Queued jobs queue again under their array's limit; held jobs stay held.
        """
        groups: list[Group] = []
        with self._changing() as changes:
            self._begin(changes, store)
            for record in store.unfinished_jobs(session):
                key = (store.path, session, record.job_id)
                if key in self._active:
                    continue
                group = group_for(record)
                if all(g is not group for g in groups):
                    groups.append(group)
                job = _Job(store, record, group)
                self._active[key] = job
                self._take_over(changes, job)
            for group in groups:
                self._dispatch(changes, group)
                jobs = [j for j in self._active.values() if j.group is group]
                if group.start_at is not None and not group.ready():
                    self._add_timer(
                        group.start_at, jobs, functools.partial(self._dispatch, group=group)
                    )
                if group.deadline is not None:
                    self._add_timer(
                        group.deadline, jobs, functools.partial(self._deadline, jobs=jobs)
                    )

    def _take_over(self, changes: _Changes, job: _Job) -> None:
        record = job.record
        if record.state in (JobState.RUNNING, JobState.SUSPENDED):
            identity = ProcessIdentity(record.pid or 0, record.pid_start or 0)
            pidfd = open_pidfd(identity) if record.pid else None
            if pidfd is None:
                self._unobserved(changes, job)
                return
            job.spawned = Spawned(identity, pidfd, None, child=False)
            job.holds_slot = True
            job.group.running += 1
            self._watch(job)
            limit = job.group.wallclock_limit
            if limit is not None and record.dispatch_us is not None:
                self._add_timer(
                    record.dispatch_us / 1e6 + limit,
                    [job],
                    lambda ch: self._kill(
                        ch, job, WALLCLOCK, f"wallclock limit of {limit:g} s exceeded"
                    ),
                )
        elif job.starting:
            self._transition(
                changes,
                job,
                JobState.FAILED,
                START_UNCONFIRMED,
                annotation=_UNCONFIRMED_NOTE,
                finish_us=now_us(),
            )
        elif record.state == JobState.QUEUED:
            job.group.push(job)

    # -- queries ---------------------------------------------------------------------------

    def active_record(self, store: Store, session: str, job_id: str) -> JobRecord | None:
        """A copy of the record of a job this process tracks, None if it does not track it."""
        with self._lock:
            job = self._active.get((store.path, session, job_id))
            return None if job is None else dataclasses.replace(job.record)

    def state(self, store: Store, session: str, job_id: str) -> tuple[JobState, str]:
        """A job's (state, sub-state); InvalidArgumentException if unknown."""
        with self._lock:
            found = self._state(store, session, job_id)
            self.observed()
            return found

    def _state(self, store: Store, session: str, job_id: str) -> tuple[JobState, str]:
        with self._lock:
            job = self._active.get((store.path, session, job_id))
            if job is not None:
                return job.record.state, job.record.sub_state
            found = store.job_state(session, job_id)
        if found is None:
            raise InvalidArgumentException(f"job {job_id!r}: no such job in session {session!r}")
        return found

    # -- control ---------------------------------------------------------------------------

    def control(self, store: Store, session: str, job_id: str, action: Action) -> None:
        """Apply a job control action (see :meth:`drmaa2.backend.JobSessionBackend.control`)."""
        with self._changing() as changes:
            job = self._active.get((store.path, session, job_id))
            if job is None:
                state, _ = self._state(store, session, job_id)  # unknown ids raise here
                raise InvalidStateException(
                    f"cannot {action.value} job {job_id}: it has finished ({state.name})"
                )
            getattr(self, f"_{action.value}")(changes, job)
        if action is Action.TERMINATE:
            self._await_end(job)

    def _not_allowed(self, job: _Job, action: str, why: str) -> InvalidStateException:
        return InvalidStateException(
            f"cannot {action} job {job.record.job_id}: it {why} ({job.record.state.name})"
        )

    def _suspend(self, changes: _Changes, job: _Job) -> None:
        if job.record.state == JobState.SUSPENDED:
            return
        if job.spawned is None or job.record.state != JobState.RUNNING:
            raise self._not_allowed(job, "suspend", "has not started")
        stop_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.SUSPENDED)

    def _resume(self, changes: _Changes, job: _Job) -> None:
        if job.record.state == JobState.RUNNING:
            return
        if job.spawned is None or job.record.state != JobState.SUSPENDED:
            raise self._not_allowed(job, "resume", "has not started")
        continue_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.RUNNING)

    def _hold(self, changes: _Changes, job: _Job) -> None:
        if job.record.state == JobState.QUEUED_HELD:
            return
        if job.spawned is not None or job.starting:
            raise self._not_allowed(job, "hold", "has started")
        self._transition(changes, job, JobState.QUEUED_HELD)

    def _release(self, changes: _Changes, job: _Job) -> None:
        if job.record.state == JobState.QUEUED:
            return
        if job.record.state != JobState.QUEUED_HELD:
            raise self._not_allowed(job, "release", "has started")
        self._transition(changes, job, JobState.QUEUED)
        job.group.push(job)
        self._dispatch(changes, job.group)

    def _terminate(self, changes: _Changes, job: _Job) -> None:
        self._kill(changes, job, TERMINATED, "terminated by the user")

    def _await_end(self, job: _Job) -> None:
        deadline = time.monotonic() + _TERMINATE_CONFIRM_SECONDS
        with self._lock:
            while job.key in self._active and job.spawned is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._sleep([job.key], remaining)

    def _sleep(self, keys: Sequence[tuple[str, str, str]], timeout: float | None) -> None:
        """Wait (lock held) until one of the jobs ``keys`` changes state, or the timeout."""
        self._register_pending()  # the reaper must see every end at once now
        self._watched.update(keys)
        try:
            self._cond.wait(_MAX_SLEEP if timeout is None else min(timeout, _MAX_SLEEP))
        finally:
            self._watched.subtract(keys)
            for key in keys:
                if self._watched[key] <= 0:
                    del self._watched[key]

    # -- waiting ---------------------------------------------------------------------------

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
            # While a thread polls it, the pidfd stays open (see _unwatch).
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
                    _MAX_SLEEP * 1000 if left is None else min(left, _MAX_SLEEP) * 1000
                )
                if ready or (left is not None and left <= _MAX_SLEEP):
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

    def reap_job(self, store: Store, session: str, job_id: str) -> None:
        """Forget a finished job; InvalidStateException while it has not finished."""
        with self._lock:
            state, _ = self.state(store, session, job_id)
            if not state.is_terminal:
                raise InvalidStateException(
                    f"cannot reap job {job_id}: it has not finished ({state.name})"
                )
            store.delete_job(session, job_id)

    def has_unfinished(self) -> bool:
        """Whether any job is queued, held or running."""
        return bool(self._active)

    def unfinished_count(self) -> int:
        """How many jobs are queued, held or running."""
        return len(self._active)

    def forget_session(self, store: Store, session: str) -> None:
        """A session is being destroyed: its jobs that have not started never will; those
        running are still reaped (their records go with the session)."""
        with self._lock:
            for key, job in list(self._active.items()):
                ours = key[0] == store.path and key[1] == session
                if ours and job.spawned is None and not job.starting:
                    del self._active[key]
            self._drop_void_timers()
            self._cond.notify_all()

    def session_opened(self) -> None:
        """A session of this process opened: keep the reaper ready."""
        with self._lock:
            self._sessions += 1

    def session_closed(self, timeout: float = 5.0) -> None:
        """A session closed; after the last one, let the reaper end once it has nothing to
        watch, and wait for it (no thread left over)."""
        self.flush()
        with self._lock:
            self._sessions -= 1
            if self._sessions:
                return
            thread = self._thread
            if thread is None or self._by_fd:
                return
            self._drop_void_timers()
            if self._timers:
                return
            os.eventfd_write(self._wake_fd, 1)
        if thread is not threading.current_thread():  # a callback may close the last session
            thread.join(timeout)
