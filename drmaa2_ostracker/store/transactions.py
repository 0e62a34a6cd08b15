"""The store's transactions: one SQLite connection, used by one thread at a time (under the
store's lock), its writes shared between changes (deferred commits), and the job ends kept in
the ring (see :mod:`.ends`) written to their rows before anything reads the store's jobs.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from drmaa2_ostracker.faults import PER_BYTE, RESERVE, free_bytes, no_space
from drmaa2_ostracker.store.checkpoints import Checkpointer
from drmaa2_ostracker.store.ends import PendingEnds

__all__ = ["Transactions"]

#: Free space far from full (see Transactions.ensure_space).
_ROOMY = 16 * RESERVE


class Transactions:
    """The transactions of a store's connection (mixed into ``Store``, which opens it)."""

    state_dir: str
    path: str
    ends: PendingEnds
    _lock: threading.RLock
    _conn: sqlite3.Connection
    _checkpoints: Checkpointer | None
    _deferred: bool
    _roomy_until: float

    def write_ends(self) -> None:
        """Write the pending job ends to their rows, in the open transaction (opened if
        none is): committed with it."""
        with self._lock:
            if self.ends.pending:
                self.begin()
                self.ends.write(self._conn)

    def _sync(self) -> None:
        """Before a read: write the pending job ends (lock held). If that fails (a full
        disk), the read goes on without them: they stay pending, and the supervisor's next
        write of them fails too and keeps them (``FailedWrites._write_failed``)."""
        began = not self._conn.in_transaction
        try:
            if began:
                self._conn.execute("BEGIN IMMEDIATE")
            self.ends.write(self._conn)
            if began:
                self.commit()
        except sqlite3.Error:
            if began:
                self.rollback()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for the block (joining one that is open already): committed at
        its end, rolled back if it raises."""
        with self._lock:
            if self._conn.in_transaction and not self._deferred:
                yield
                return
            # Deferred writes are committed first: a failure here must not undo them.
            self.commit()
            self.begin()
            try:
                yield
            except BaseException:
                self.rollback()
                raise
            self.commit()

    def begin(self) -> None:
        """Open a transaction unless one is open (closed by :meth:`commit`). A deferred
        transaction is taken over: its writes commit with this one's."""
        with self._lock:
            self._deferred = False
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        with self._lock:
            self._deferred = False
            if self._conn.in_transaction:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    # A COMMIT that fails for a full disk makes SQLite undo the transaction
                    # itself: the ends it wrote are pending again.
                    if not self._conn.in_transaction:
                        self.ends.rolled_back()
                    raise
                if self._checkpoints is not None:
                    self._checkpoints.committed()
            self.ends.committed()

    def has_reserve(self) -> bool:
        """Whether the store's file system has ``RESERVE`` bytes free (looked up at most
        every 50 ms while it has many times that, as :meth:`ensure_space` does)."""
        now = time.monotonic()
        if now < self._roomy_until:
            return True
        try:
            free = free_bytes(self.state_dir)
        except OSError:
            return False
        if free >= _ROOMY:
            self._roomy_until = now + 0.05
        return free >= RESERVE

    def ensure_space(self, what: str, size: int = 0) -> bool:
        """OutOfResourceException (saying ``what`` did not happen) unless the store's file
        system has ``RESERVE`` bytes free and ``PER_BYTE`` times ``size`` (to be written) more,
        after cutting the write-ahead log back. Whether it has many times that."""
        needed = RESERVE + PER_BYTE * size
        now = time.monotonic()
        if now < self._roomy_until and needed <= _ROOMY // 2:  # a statvfs per job costs
            return True
        free = free_bytes(self.state_dir)
        if free >= needed:
            roomy = free >= _ROOMY and free >= 4 * needed
            if roomy:
                self._roomy_until = now + 0.05
            return roomy
        with self._lock:
            if not self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if free_bytes(self.state_dir) < needed:
            raise no_space(self.path, self.state_dir, what, needed)
        return False

    def rollback(self) -> None:
        """Undo the open transaction, if any (after a write that failed), or what is left
        of one SQLite undid itself (a statement or a COMMIT that failed for a full disk):
        the ends it wrote are pending again either way."""
        with self._lock:
            self._deferred = False
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            finally:
                self.ends.rolled_back()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store's connection."""
        return self._conn.in_transaction

    def defer(self) -> None:
        """Leave the open transaction open, for a later :meth:`commit` (or the next writer)
        to commit: writes that may wait a few milliseconds share one commit."""
        with self._lock:
            self._deferred = self._conn.in_transaction

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        # Rows are fetched under the lock too: no other thread's statement interleaves.
        with self._lock:
            if self.ends.pending:
                self._sync()
            return self._conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self._lock:
            if self.ends.pending:
                self._sync()
            return self._conn.execute(sql, args).fetchone()
