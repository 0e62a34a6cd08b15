"""State changes: the one place that changes a job's state, and what each state allows.

Every operation runs inside :meth:`States._changing`, which commits the store once (or, for the
reaper's bookkeeping, within ``FLUSH_DELAY``, and always before anyone is shown the result),
wakes the waiters that watch a changed job (one condition variable), and then calls the event
callbacks and starts the jobs it marked as starting, outside the lock.
:meth:`States._transition` changes a job's state: the in-memory record, the store, the
notification. :data:`CONTROL` says which control action each state allows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType

from drmaa2.backend import Action, NotificationCallback
from drmaa2.enums import Event, JobState
from drmaa2.errors import InvalidStateException
from drmaa2.types import Notification
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.orphans import Orphans
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.jobs import STARTING, TrackedJob
from drmaa2_ostracker.supervisor.writes import ENDS_DELAY, FLUSH_DELAY, FailedWrites

#: The most jobs one change marks as starting. An array without ``max_parallel`` (or with a
#: large one) starts its tasks in batches of this many, from the reaper thread, which reaps
#: the ended ones between batches; the call that submitted it returns after the first.
DISPATCH_BATCH = 64

__all__ = [
    "CONTROL",
    "DISPATCH_BATCH",
    "DO",
    "ENDS_DELAY",
    "FINISHED",
    "FLUSH_DELAY",
    "NOTHING",
    "Changes",
    "States",
    "allows",
    "refusal",
]

_log = logging.getLogger(__name__)

#: The fields a job's start sets (see Dispatcher._running).
_RUNNING_FIELDS = ("dispatch_us", "pid", "pid_start", "launch", "annotation")


def _started_fields(record: JobRecord) -> dict[str, object]:
    """A started job's values of the fields its start set, to write them."""
    return {name: getattr(record, name) for name in _RUNNING_FIELDS}


# The verdicts of CONTROL: do the action, do nothing, or refuse it because the job …
DO = "do"
NOTHING = "nothing"
_NOT_STARTED = "has not started"
_STARTED = "has started"
_BEING_STARTED = "is being started"
_FINISHED = "has finished"

#: The row of a job the supervisor no longer tracks: it has finished (its record is in the
#: store only), whatever state the store gives it.
FINISHED = "finished"

#: The columns of the control table.
_ACTIONS = (Action.SUSPEND, Action.RESUME, Action.HOLD, Action.RELEASE, Action.TERMINATE)

#: Which control action each state of a job allows: DO it, do NOTHING (the job already is
#: where the action would take it), or refuse it, for the reason its error gives ("cannot hold
#: job 3: it has started (RUNNING)"). A job being spawned (QUEUED, sub-state STARTING) has a
#: row of its own: it counts as started for hold, as not started for suspend and resume.
#: Terminating a job that has not started fails it without starting it.
# fmt: off
_ROWS: dict[JobState | str, tuple[str, str, str, str, str]] = {
    #                      suspend        resume         hold       release    terminate
    JobState.QUEUED:      (_NOT_STARTED,  _NOT_STARTED,  DO,        NOTHING,   DO),
    STARTING:             (_NOT_STARTED,  _NOT_STARTED,  _BEING_STARTED, NOTHING, DO),
    JobState.QUEUED_HELD: (_NOT_STARTED,  _NOT_STARTED,  NOTHING,   DO,        DO),
    JobState.RUNNING:     (DO,            NOTHING,       _STARTED,  _STARTED,  DO),
    JobState.SUSPENDED:   (NOTHING,       DO,            _STARTED,  _STARTED,  DO),
    FINISHED:             (_FINISHED,     _FINISHED,     _FINISHED, _FINISHED, _FINISHED),
}
# fmt: on

#: The control table by (action, row), as :func:`allows` looks it up.
CONTROL: dict[tuple[Action, JobState | str], str] = {
    (action, row): verdict
    for row, verdicts in _ROWS.items()
    for action, verdict in zip(_ACTIONS, verdicts, strict=True)
}


def allows(action: Action, job_id: str, row: JobState | str, state: JobState) -> bool:
    """Whether to apply ``action`` to a job in :data:`CONTROL`'s ``row`` (False: there is
    nothing to do); InvalidStateException naming the job's ``state`` if the row refuses it."""
    verdict = CONTROL[action, row]
    if verdict == DO:
        return True
    if verdict == NOTHING:
        return False
    raise InvalidStateException(refusal(action, job_id, row, state))


def refusal(action: Action, job_id: str, row: JobState | str, state: JobState) -> str:
    """Why :data:`CONTROL`'s ``row`` refuses ``action`` ("cannot hold job 3: it has started
    (RUNNING)"): the message of the InvalidStateException :func:`allows` raises."""
    shown = f"{state.name}, {STARTING}" if row == STARTING else state.name
    return f"cannot {action.value} job {job_id}: it {CONTROL[action, row]} ({shown})"


class Changes:
    """What one locked operation changed: stores to commit, jobs to start, notifications."""

    __slots__ = (
        "budget",
        "changed",
        "forget",
        "lazy",
        "must_commit",
        "notes",
        "stores",
        "to_start",
        "write_failed",
    )

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self.to_start: list[TrackedJob] = []
        self.notes: list[Notification] = []
        self.changed = False
        #: The changes may wait a few milliseconds to be committed with later ones.
        self.lazy = False
        #: Something in the changes must be committed now (a job marked as starting).
        self.must_commit = False
        #: Stores a write of these changes failed on (what it wrote is kept to write later).
        self.write_failed: set[str] = set()
        #: How many more jobs these changes may mark as starting (see Dispatcher._dispatch).
        self.budget = DISPATCH_BATCH
        #: Files of ends a dead keeper's anchor kept, recorded by these changes: (their
        #: Orphans, the store, the file), removed once the changes are committed.
        self.forget: list[tuple[Orphans, str, str]] = []


class Changing:
    """The context of :meth:`States._changing` (a class: it runs several times per job)."""

    __slots__ = ("changes", "lazy", "nested", "supervisor")

    def __init__(self, supervisor: States, lazy: bool) -> None:
        self.supervisor = supervisor
        self.lazy = lazy
        self.nested = False
        self.changes: Changes | None = None

    def __enter__(self) -> Changes:
        supervisor = self.supervisor
        supervisor._lock.acquire()
        outer = supervisor._changes
        if outer is not None:  # nested: the outer change finishes the work
            self.nested = True
            return outer
        changes = self.changes = supervisor._changes = Changes()
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


class States(FailedWrites):
    """The supervisor's state changes, commits, notifications and state queries."""

    def _changing(self, lazy: bool = False) -> Changing:
        """Run a change under the lock; then commit, wake waiters, start jobs, notify.

        ``lazy`` (the reaper's bookkeeping of exits): the commit may wait up to
        ``FLUSH_DELAY`` to share one commit with later changes — unless a job was marked as
        starting, which must be in the store before it starts.
        """
        return Changing(self, lazy)

    def _end_change(self, changes: Changes) -> None:
        """The end of the outermost change, lock held: commit and wake the waiters."""
        try:
            # Never a rollback: every transition changed memory with the store, and the
            # connection's transaction may hold other operations' writes too. An operation
            # that fails (its DRMAA2 error) fails before it writes.
            if changes.lazy and not changes.must_commit:
                self._defer_commit(changes.stores.values())
            else:
                failed = {
                    store.path for store in list(changes.stores.values()) if not self._commit(store)
                }
                failed |= changes.write_failed
                if failed and changes.to_start:
                    self._hold_back(changes, failed)
                for orphans, store_path, path in changes.forget:
                    if store_path not in failed:  # (else kept, for the next keeper)
                        orphans.forget(path)
        finally:
            self._changes = None
            try:
                if changes.notes:
                    # Published before any waiter wakes, so that a client that saw the change
                    # (a wait or a control call returned) has its event queued before it can
                    # unsubscribe. The keeper's callbacks only queue the event.
                    self.observed()  # a callback sees only what survives a crash
                    self._notify(changes.notes)
            finally:
                if changes.changed:
                    self._cond.notify_all()

    def _after_change(self, changes: Changes) -> None:
        """After the outermost change, lock released: start the jobs it marked."""
        if changes.to_start:  # marked as starting: they start, whatever else failed
            self._launch(changes.to_start, lazy=changes.lazy)

    def _transition(
        self,
        changes: Changes,
        job: TrackedJob,
        state: JobState,
        sub_state: str = "",
        *,
        ended: bool = False,
        **fields: object,
    ) -> None:
        """Change a job's state: the record, the store, the waiters, the notifications. (The
        change holds even when the row is gone: its session was destroyed.)

        ``ended``: the job's process ended. Its end goes to the store's ring of ends (see
        :mod:`~drmaa2_ostracker.store.ends`) at once, and its row is written later: it is
        safe from then on, whether or not the keeper lives to commit (its exit status was
        collected: no one else could know it); a waiter need not wait for a transaction;
        and a task's end is safe though the commit of the reaper's round (with the next
        tasks' starts, see ``Dispatcher._dispatch``) comes after those starts. (If the ring
        cannot take it, the row is written now.)
        """
        record = job.record
        store = job.store
        behind = bool(self._behind) and self._behind.pop(job.key, None) is not None
        if behind:
            # Its RUNNING record was not written: written with this change (not through the
            # ring of ends, whose records name the row by the process's start, and hold only
            # an end's columns).
            fields = {**_started_fields(record), **fields}
        changed = record.state != state
        record.state = state
        record.sub_state = sub_state
        for name, value in fields.items():
            setattr(record, name, value)
        if job.detached:
            pass  # its session was destroyed: its id may be a new job's now
        elif (
            ended
            and not job.unsaved
            and not behind
            and store.end_later(record, ("sub_state", *fields))
        ):
            # Also while writes fail (a full disk): the ring, made in advance, is then the
            # one place where the end survives this keeper (its row is written with the
            # other unwritten records once there is space).
            self._ending[store.path] = store
            self._flush_soon(FLUSH_DELAY if store.ends.crowded else ENDS_DELAY)
        elif (
            state is JobState.RUNNING
            and job.unsaved
            and record.array_id is None
            and store.path not in self._unwritten
            and store.start_later(record)
        ):
            # A single job that started: its first record goes to the ring too (as an end
            # does, and as durable), its row inserted later. run_job answers without a
            # transaction; a keeper killed meanwhile leaves the next one to insert the row
            # from the ring, and adopt the job's process.
            job.unsaved = False
            self._ending[store.path] = store
            self._flush_soon(FLUSH_DELAY if store.ends.crowded else ENDS_DELAY)
        elif (
            state is JobState.RUNNING
            and changes.lazy
            and record.array_id is not None
            and not job.unsaved
            and store.path not in self._unwritten
        ):
            # An array task started in the reaper's round: most end before the next flush,
            # and their record is then written once, with the end. Meanwhile its row says
            # it is starting, and a keeper killed meanwhile leaves the next one to find its
            # process by its launch, as between the fork and any commit (Recovery).
            self._behind[job.key] = job
            self._flush_soon()
        else:
            self._write(changes, job, fields)
        if state.is_terminal:
            del self._active[job.key]
            if job.holds_slot:
                job.holds_slot = False
                job.group.running -= 1
                self._dispatch(changes, job.group)
        if changed and not job.detached:
            self._note(changes, job)

    def flush(self) -> None:
        """Write the records that wait to be written (see :meth:`_transition`), then commit
        what waits to be committed."""
        with self._lock:
            if self._behind:
                behind, self._behind = self._behind, {}
                changes = Changes()
                for job in behind.values():
                    if job.key in self._active and not job.detached:
                        self._write(
                            changes,
                            job,
                            _started_fields(job.record),
                        )
                for store in changes.stores.values():
                    self._deferred[store.path] = store
            super().flush()

    def _note(self, changes: Changes, job: TrackedJob) -> None:
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
        """Call ``callback`` for every state change from now on (None: stop). It is called
        with the supervisor's lock held, before waiters wake: it must only hand the event on
        (the keeper queues it for its subscribers), never block nor call the supervisor."""
        with self._lock:
            self._callbacks = [] if callback is None else [callback]
