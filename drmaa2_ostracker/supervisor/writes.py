"""The supervisor's writes: commits now or deferred, job ends kept in the store's ring of ends
(see :mod:`~drmaa2_ostracker.store.ends`) until their rows are written, and writes that fail
(a full disk, a used-up quota), where nothing the supervisor did is lost.

A commit that fails is rolled back, and every record it held stays in memory as *unwritten*:
readers are shown it (its annotation says it is not in the store yet), and it is written
again every :data:`RETRY_INTERVAL` until that works. Meanwhile no queued job starts: a job is
started only once its start is in the store, so that a keeper killed meanwhile never starts
it twice. Submissions are refused before that (see
:meth:`~drmaa2_ostracker.store.Store.ensure_space`); a job that runs always has its end
recorded, with its exact status, once there is space again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from drmaa2_ostracker.faults import is_out_of_space, storage_error
from drmaa2_ostracker.process.exits import collect
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.base import SupervisorBase
from drmaa2_ostracker.supervisor.jobs import TrackedJob

if TYPE_CHECKING:
    from drmaa2_ostracker.supervisor.states import Changes

__all__ = ["ENDS_DELAY", "FLUSH_DELAY", "RETRY_INTERVAL", "FailedWrites"]

_log = logging.getLogger(__name__)

#: How often records a failed write lost are written again (s).
RETRY_INTERVAL = 1.0
#: How long the bookkeeping of an exit may wait to share a commit with later changes (s).
FLUSH_DELAY = 0.01
#: Seconds within which job ends kept in the store's ring are written to their rows (see
#: :mod:`~drmaa2_ostracker.store.ends`): they are safe there meanwhile, and a read of the
#: store writes them first. Writing them in larger batches, while fewer jobs are in flight,
#: keeps the writes off the path of the next job (sequential jobs: ratio 1.40 → 1.36).
ENDS_DELAY = 0.5


class FailedWrites(SupervisorBase):
    """The supervisor's writes and commits (deferred ones, job ends kept in the store's ring
    meanwhile), and what it does when one fails."""

    def _defer_commit(self, stores: Iterable[Store]) -> None:
        for store in stores:
            store.defer()
            self._deferred[store.path] = store
        if self._deferred:
            self._flush_soon()

    def _flush_soon(self, delay: float = FLUSH_DELAY) -> None:
        if self._thread is None:  # nobody to commit later: now then
            self.flush()
            return
        at = time.monotonic() + delay
        if self._flush_at is None or at < self._flush_at:
            self._flush_at = at
            if self._reaper_until > at:  # it sleeps longer: wake it
                os.eventfd_write(self._wake_fd, 1)

    def observed(self) -> None:
        """What the user is about to see must survive a crash of this process: commit what
        waits to be committed (a no-op when nothing does)."""
        if self._deferred or self._behind:
            self.flush()

    def flush(self) -> None:
        """Commit what waits to be committed."""
        with self._lock:
            self._flush_at = None
            ending, self._ending = self._ending, {}
            for store in ending.values():
                try:
                    store.write_ends()
                except sqlite3.Error as error:
                    self._write_failed(store, error)
                    continue
                self._deferred[store.path] = store
            deferred, self._deferred = self._deferred, {}
            for store in deferred.values():
                self._commit(store)

    def _write_ends_first(self, store: Store, job: tuple[str, str] | None = None) -> None:
        """Before a read that may show a job whose end is in the ring only (``job``: its
        session and id; None: any job), lock held: write the ring's ends to their rows and
        commit, as a read of the store would (``Store._sync``). Here, though, a write that
        fails (a full disk) hands them to the unwritten records at once: the read shows them
        annotated, and they are written again until that works. Not within a change, whose
        transaction must not be committed halfway: that reads them from memory."""
        pending = store.ends.pending
        if not pending or self._changes is not None or (job is not None and job not in pending):
            return
        self._ending.pop(store.path, None)
        try:
            store.write_ends()
        except sqlite3.Error as error:
            self._write_failed(store, error)
            return
        self._deferred.pop(store.path, None)
        self._commit(store)

    def _write(self, changes: Changes, job: TrackedJob, fields: dict[str, object]) -> None:
        """Write a job's changed record (its state, sub-state and ``fields``) in the change's
        transaction; if that fails, it is kept in memory and written later."""
        record = job.record
        store = job.store
        self._begin(changes, store)
        try:
            if job.unsaved:  # first written now, with its start
                job.unsaved = False
                store.insert_jobs([record])
            else:
                if (record.session, record.job_id) in store.ends.pending:
                    store.write_ends()  # its start is in the ring only: its row first
                store.update_job(
                    record.session,
                    record.job_id,
                    state=int(record.state),
                    sub_state=record.sub_state,
                    **fields,
                )
        except sqlite3.Error as error:  # kept in memory, written later (see _write_failed)
            job.unsaved = False
            self._write_failed(store, error)
        self._track(job)

    @staticmethod
    def _begin(changes: Changes, store: Store) -> None:
        if store.path not in changes.stores:
            store.begin()
            changes.stores[store.path] = store

    def _commit_now(self, changes: Changes, store: Store, write: Callable[[], object]) -> None:
        """Write and commit at once a change that no record in memory stands for (an
        array's ``held`` flag, its untouched tasks ended), before it is made in memory: if
        that fails, it raises (OutOfResourceException for a full disk) with nothing changed
        (the writes the transaction held before are kept in memory, as for any failed
        write)."""
        self._begin(changes, store)
        try:
            write()
            store.commit()
        except sqlite3.Error as error:
            self._write_failed(store, error)
            raise storage_error(error, store.path, store.state_dir) from None
        changes.stores.pop(store.path, None)
        self._dirty.pop(store.path, None)
        if store.path in self._uncollected:
            self._collect_stored(store)

    def _commit(self, store: Store) -> bool:
        """Commit a store's open transaction; if that fails (a full disk), keep what it
        held in memory to write later. Whether it was written."""
        try:
            store.commit()
        except sqlite3.Error as error:
            self._write_failed(store, error)
            return False
        self._dirty.pop(store.path, None)
        if store.path in self._uncollected:
            self._collect_stored(store)
        return True

    def _collect_later(self, store: Store, pid: int) -> None:
        """Leave an ended job's process uncollected (a zombie, its pid not reused) until
        its end is stored: the end is in the store's open transaction, or in memory while
        writes fail (a full disk), and a keeper killed meanwhile would lose its exit status
        if the process were collected. Left so, the process becomes the dead keeper's
        anchor's child, and the anchor keeps its end for the next keeper (see
        :mod:`~drmaa2_ostracker.keeper.anchor`)."""
        self._uncollected.setdefault(store.path, []).append(pid)

    def _collect_stored(self, store: Store) -> None:
        """Collect the processes whose ends are stored now (a commit succeeded, and no
        record waits in memory)."""
        if store.path in self._unwritten:
            return
        for pid in self._uncollected.pop(store.path, ()):
            with contextlib.suppress(ChildProcessError):
                collect(pid)

    def _write_failed(self, store: Store, error: sqlite3.Error) -> None:
        """A write to ``store`` failed: undo its transaction, and keep every record it held
        (and every one it will hold until a retry succeeds) to write again later."""
        _log.warning("writing the store %s failed (%s): retrying", store.path, error)
        with contextlib.suppress(sqlite3.Error):
            store.rollback()
        self._deferred.pop(store.path, None)
        if self._changes is not None:
            self._changes.stores.pop(store.path, None)  # the next write begins anew
            self._changes.write_failed.add(store.path)
        lost = self._dirty.pop(store.path, {})
        _, records = self._unwritten.setdefault(store.path, (store, {}))
        records.update(lost)
        for record in store.ends.take():  # ends in the ring, not in their rows yet
            records[(store.path, record.session, record.job_id)] = record
        self._ending.pop(store.path, None)
        full = is_out_of_space(error, store.state_dir)
        why = "no space left on its file system" if full else str(error)
        self._unwritten_reason[store.path] = why
        self._retry_soon()

    def _retry_soon(self) -> None:
        if self._retry_at is None:
            self._retry_at = time.monotonic() + RETRY_INTERVAL
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)

    def _keep_unwritten(self, store: Store, record: JobRecord, why: str) -> None:
        """Keep a record the store could not be given (``why``) in memory, as unwritten:
        shown to readers, written again until that works."""
        _, records = self._unwritten.setdefault(store.path, (store, {}))
        records[(store.path, record.session, record.job_id)] = record
        self._unwritten_reason.setdefault(store.path, why)
        self._retry_soon()

    def retry_unwritten(self) -> None:
        """Write the records failed writes lost; those that still cannot be written stay."""
        with self._lock:
            self._retry_at = None
            for path, (store, records) in list(self._unwritten.items()):
                try:
                    store.begin()
                    store.upsert_jobs(list(records.values()))
                    store.commit()
                except sqlite3.Error as error:
                    self._write_failed(store, error)
                    continue
                self._dirty.pop(path, None)
                if self._unwritten.get(path, (None, None))[1] is records:
                    del self._unwritten[path]
                    self._unwritten_reason.pop(path, None)
                    _log.warning("the store %s is written again", path)
                    self._collect_stored(store)

    def _unwritten_note(self, store: Store, record: JobRecord) -> JobRecord:
        """A copy of an unwritten record, its annotation saying so."""
        why = self._unwritten_reason.get(store.path, "")
        note = f"this state is not yet in the store ({why}): written as soon as it can be"
        annotation = f"{record.annotation}; {note}" if record.annotation else note
        return dataclasses.replace(record, annotation=annotation)

    def unwritten_records(self, store: Store, session: str) -> list[JobRecord]:
        """Copies of a session's records that a failed write lost (annotated), oldest first."""
        with self._lock:
            self._write_ends_first(store)
            found = self._unwritten.get(store.path)
            if found is None:
                return []
            return [
                self._unwritten_note(store, record)
                for record in found[1].values()
                if record.session == session
            ]

    def _track(self, job: TrackedJob) -> None:
        """Note a record changed in its store's open transaction (or lost with it)."""
        store = job.store
        pending = self._unwritten.get(store.path)
        if pending is not None:  # writes fail: this one is retried with the others
            pending[1][job.key] = job.record
        else:
            self._dirty.setdefault(store.path, {})[job.key] = job.record

    def _hold_back(self, changes: Changes, failed: set[str]) -> None:
        """Jobs marked as starting whose mark could not be written do not start: they are
        queued again, and dispatched once the store takes writes again."""
        keep = []
        for job in changes.to_start:
            if job.store.path not in failed or job.unsaved or job.spawned is not None:
                keep.append(job)
                continue
            job.record.sub_state = ""
            job.record.pid_start = None
            if job.holds_slot:
                job.holds_slot = False
                job.group.running -= 1
            job.group.push(job)
            self._held_back.add(job.group)
        changes.to_start = keep
