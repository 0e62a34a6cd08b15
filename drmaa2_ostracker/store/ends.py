"""Job ends not yet in the store: what lets the keeper answer a wait before its SQL write.

When a job ends, the keeper must record its exit status, signal and resource usage before
anyone is shown the end, so that a keeper killed right after still has it. A SQLite
transaction (BEGIN, UPDATE, COMMIT) costs about 50 µs there, on the way from the job's exit
to the wait that returns it. Instead, the keeper writes the end as one record here with a
plain ``pwrite``: once the write returns, the record survives the keeper's death (it is in
the kernel's page cache, as a committed transaction in WAL mode without fsync is). The
job's row is updated later, with other writes: before anything reads the store's jobs, or
within :data:`~drmaa2_ostracker.supervisor.writes.ENDS_DELAY` (half a second). A reader of
the store file other than the keeper may see a job's end that late; the keeper's answers
never are.

A keeper that starts applies the records it finds to the rows they name, where those still
show the same process (its pid's start) unfinished, then clears the ring. Records go round a
ring of :data:`SLOTS`; the store writes no more of them once half the ring holds ends not
committed yet (those ends take the SQL way until a commit), so a slot is never written
again before the end it holds is committed. (A machine that crashes loses its page cache,
and its jobs with it: they are found ended, as after any crash.)

A record holds data only (the :mod:`marshal` form of plain values, with a checksum); it is
never executed, and the state directory is its owner's alone.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import sqlite3
import struct
from typing import Any

from drmaa2.enums import JobState
from drmaa2_ostracker.faults import is_out_of_space
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.store.records import JobRecord, update_sql

__all__ = ["ENDS", "SLOTS", "End", "Ends", "PendingEnds"]

_log = logging.getLogger(__name__)

#: The file of ends not yet in the store, in the state directory.
ENDS = "ends"
#: Records in the ring.
SLOTS = 2048
#: A record's size: an end that does not fit (a very long session name or annotation) is
#: written to the store at once instead.
SLOT_SIZE = 512
_HEADER = struct.Struct("<H")
_DIGEST = 16
_ROOM = SLOT_SIZE - _HEADER.size - _DIGEST

#: An end: (session, job id, the process's start tick, {column: value}).
End = tuple[str, str, int, dict[str, Any]]
#: The columns an end writes.
END_COLUMNS = frozenset(
    {
        "state",
        "sub_state",
        "annotation",
        "exit_status",
        "terminating_signal",
        "finish_us",
        "cpu_time",
        "rusage",
    }
)
_FINISHED = (int(JobState.DONE), int(JobState.FAILED))
#: The key of a pending end: (session, job id).
Key = tuple[str, str]


class Ends:
    """The ring of job ends not yet in the store, of one state directory."""

    def __init__(self, state_dir: str) -> None:
        path = os.path.join(state_dir, ENDS)
        # (On a disk full already, the ends take the SQL way, and wait for space there.)
        self._fd, self._found = files.open_ring(path, SLOTS * SLOT_SIZE)
        self._next = 0

    def left(self) -> list[End]:
        """The ends this ring held from an earlier keeper when it was opened."""
        data = self._found
        found = []
        for start in range(0, len(data) - SLOT_SIZE + 1, SLOT_SIZE):
            end = _decode(data[start : start + SLOT_SIZE])
            if end is not None:
                found.append(end)
        return found

    def clear(self) -> None:
        """Empty the ring (once every end it holds is in the store)."""
        os.pwrite(self._fd, bytes(SLOTS * SLOT_SIZE), 0)
        self._next = 0
        self._found = b""

    def write(self, end: End) -> bool:
        """Record an end; False if it does not fit a slot or cannot be written."""
        payload = marshal.dumps(end, 4)
        if len(payload) > _ROOM:
            return False
        body = _HEADER.pack(len(payload)) + payload
        record = body + hashlib.blake2b(body, digest_size=_DIGEST).digest()
        try:
            os.pwrite(self._fd, record, self._next * SLOT_SIZE)
        except OSError:
            return False
        self._next = (self._next + 1) % SLOTS
        return True

    def close(self) -> None:
        """Close the ring's file."""
        os.close(self._fd)


def _decode(slot: bytes) -> End | None:
    """The end a slot holds; None for an empty or damaged slot."""
    (length,) = _HEADER.unpack_from(slot)
    if length == 0 or length > _ROOM:
        return None
    body = slot[: _HEADER.size + length]
    digest = slot[_HEADER.size + length : _HEADER.size + length + _DIGEST]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        return None
    try:
        value = marshal.loads(body[_HEADER.size :])
    except (EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(value, tuple)
        or len(value) != 4
        or not isinstance(value[0], str)
        or not isinstance(value[1], str)
        or not isinstance(value[2], int)
        or not isinstance(value[3], dict)
    ):
        return None
    return value


class PendingEnds:
    """The ends of one store that are in the ring and not yet in their rows (see the module
    docstring). The store calls it with its lock held."""

    def __init__(self) -> None:
        self._ring: Ends | None = None
        #: Ends not yet written to their rows: their records (the supervisor's own, which do
        #: not change once ended) and the columns to write.
        self.pending: dict[Key, tuple[JobRecord, tuple[str, ...]]] = {}
        #: Ends written to their rows in the open transaction, not yet committed.
        self._settled: dict[Key, tuple[JobRecord, tuple[str, ...]]] = {}
        #: Ends written to the ring since every end it held was last committed.
        self._in_ring = 0
        #: Ends an earlier keeper left in the ring that could not be stored when it was
        #: opened (a full disk): (pid start tick, {column: value}) by job, for recovery to
        #: apply (see :meth:`settle_left`). The ring keeps them until a keeper stores them.
        self.left: dict[Key, tuple[int, dict[str, Any]]] = {}
        #: Why they could not be stored.
        self.left_error = ""

    def open(self, state_dir: str, conn: sqlite3.Connection) -> int:
        """Open the ring (the keeper does, once, before it recovers its sessions) and write
        to their rows the ends an earlier keeper left in it; how many rows that changed."""
        ring = Ends(state_dir)
        left = ring.left()
        changed = 0
        if left:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for session, job_id, pid_start, values in left:
                    changed += _apply(conn, session, job_id, pid_start, values)
                conn.execute("COMMIT")
            except sqlite3.Error as error:  # a full disk: kept, for recovery to apply
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                _log.warning("the job ends in %s could not be stored yet: %s", state_dir, error)
                ring.close()  # not cleared: a keeper killed before they are stored has them
                self.left = {
                    (session, job_id): (pid_start, values)
                    for session, job_id, pid_start, values in left
                    if _valid(values)
                }
                full = is_out_of_space(error, state_dir)
                self.left_error = "no space left on its file system" if full else str(error)
                return 0
            ring.clear()
        self._ring = ring
        return changed

    def settle_left(self, record: JobRecord) -> bool:
        """Give an unfinished record read from the store the end an earlier keeper left in
        the ring for it, if any (the same process): whether it did. The caller keeps the
        record in memory and writes it once it can."""
        found = self.left.get((record.session, record.job_id))
        if found is None or found[0] != record.pid_start or int(record.state) in _FINISHED:
            return False
        del self.left[(record.session, record.job_id)]
        for name, value in found[1].items():
            setattr(record, name, JobState(value) if name == "state" else value)
        return True

    def add(self, record: JobRecord, columns: tuple[str, ...]) -> bool:
        """Put a job's end in the ring, to be written to its row later: False (nothing
        done) when the ring is not open, is half full of ends not committed, or the end
        does not fit; the caller then writes the row itself."""
        ring = self._ring
        if ring is None or record.pid_start is None or self._in_ring >= SLOTS // 2:
            return False
        end = (record.session, record.job_id, record.pid_start, _values(record, columns))
        if not ring.write(end):
            return False
        self._in_ring += 1
        self.pending[(record.session, record.job_id)] = (record, columns)
        return True

    def write(self, conn: sqlite3.Connection) -> None:
        """Write the pending ends to their rows, in the open transaction. If that fails, they
        stay pending (writing one twice writes the same values)."""
        pending, self.pending = self.pending, {}
        try:
            for (session, job_id), (record, columns) in pending.items():
                _apply(conn, session, job_id, record.pid_start, _values(record, columns), False)
        except BaseException:
            pending.update(self.pending)
            self.pending = pending
            raise
        self._settled.update(pending)

    def committed(self) -> None:
        """The open transaction was committed: the ends it wrote are stored."""
        self._settled.clear()
        if not self.pending:
            self._in_ring = 0  # every end the ring holds is stored: its slots are free

    def rolled_back(self) -> None:
        """The open transaction was undone: the ends it wrote are pending again."""
        self._settled.update(self.pending)
        self.pending, self._settled = self._settled, {}

    def take(self) -> list[JobRecord]:
        """Give up the pending ends (a write failed: the supervisor keeps them in memory)."""
        self.rolled_back()
        records = [record for record, _ in self.pending.values()]
        self.pending = {}
        return records

    def close(self) -> None:
        """Close the ring (its pending ends were written)."""
        if self._ring is not None:
            self._ring.close()
            self._ring = None


def _values(record: JobRecord, columns: tuple[str, ...]) -> dict[str, Any]:
    """The values an ended record's row takes: ``columns`` and its state (as its code)."""
    values = {name: getattr(record, name) for name in columns}
    values["state"] = int(record.state)
    return values


def _apply(
    conn: sqlite3.Connection,
    session: str,
    job_id: str,
    pid_start: int | None,
    values: dict[str, Any],
    check: bool = True,
) -> int:
    """Write an end to its row, if the row still shows the same process unfinished (a
    session made again under the same name has other processes); rows changed."""
    columns = tuple(values)
    if check and not _valid(values):
        return 0
    sql = update_sql(columns, False) + " AND pid_start = ? AND state NOT IN (?, ?)"
    return conn.execute(sql, (*values.values(), session, job_id, pid_start, *_FINISHED)).rowcount


def _valid(values: dict[str, Any]) -> bool:
    """Whether a record read from the ring holds an end: only an end's columns, plain values,
    a finished state."""
    return (
        bool(values)
        and END_COLUMNS.issuperset(values)
        and values.get("state") in _FINISHED
        and all(value is None or type(value) in (int, float, str) for value in values.values())
    )
