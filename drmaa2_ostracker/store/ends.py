"""Job ends (and starts) not yet in the store: what lets the keeper answer a wait, or
``run_job``, before its SQL write.

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

A single job that starts at once has its first record written here the same way (a *start*:
RUNNING, its process, its template, and when its session was made), so that ``run_job``
answers without a transaction; its row is inserted with the ends. A keeper that starts
inserts the starts it finds first (a job's end may lie in an earlier slot), only where the job
has no row and its session is the one made at that instant (never a session made again under
the same name). A start is a running process, never something to launch.

A job's exit status is collected (``wait4``) in the instant before its end is written here;
a keeper killed in that instant would lose it, as nobody else can collect it then. So the
keeper first looks at the end without collecting it (``WNOWAIT``): where that gives the
resource usage too (see :func:`~drmaa2_ostracker.process.exits.peek_end`) it writes the whole
end here, then collects it; elsewhere it writes a *provisional* end here (its state, exit
status and signal, not its resource usage), then collects it and writes the end. A keeper
that starts applies a provisional end only where no end follows it and the job's process is
gone (otherwise the dead keeper's anchor collects its whole end).

A record holds data only (the :mod:`marshal` form of plain values, with a checksum); it is
never executed, and the state directory is its owner's alone.
"""

from __future__ import annotations

import logging
import operator
import sqlite3
from collections.abc import Callable
from typing import Any

from drmaa2.enums import JobState
from drmaa2_ostracker.faults import is_out_of_space
from drmaa2_ostracker.process.identity import ProcessIdentity
from drmaa2_ostracker.store.leftovers import FINISHED, START_COLUMNS, Leftovers, apply_end
from drmaa2_ostracker.store.records import (
    JOB_COLUMNS,
    JOB_UPSERT,
    JobRecord,
    row_of,
)
from drmaa2_ostracker.store.ring import ENDS, KILLED, PROVISIONAL, REAPED, SLOTS, End, Ends, Start

__all__ = ["ENDS", "SLOTS", "End", "Ends", "PendingEnds", "Start"]

_log = logging.getLogger(__name__)

#: The start's columns in the record's order, and a getter of their values.
_START_ORDER = tuple(name for name in JOB_COLUMNS if name in START_COLUMNS)
_start_values = operator.attrgetter(*_START_ORDER)
#: The key of a pending end: (session, job id).
Key = tuple[str, str]
#: A pending write: the record (the supervisor's own) and the columns an end changed, or
#: None: the whole record is written (its row may not exist yet: a start in the ring).
Pending = tuple[JobRecord, tuple[str, ...] | None]


class PendingEnds:
    """The ends (and starts) of one store that are in the ring and not yet in their rows (see
    the module docstring). The store calls it with its lock held."""

    def __init__(self) -> None:
        self._ring: Ends | None = None
        #: Writes not yet made to their rows: ends (the columns they change) and starts
        #: (None: the whole record, whose row may not exist yet).
        self.pending: dict[Key, Pending] = {}
        #: Writes made to their rows in the open transaction, not yet committed.
        self._settled: dict[Key, Pending] = {}
        #: Records written to the ring since every one it held was last committed.
        self._in_ring = 0
        #: Ends an earlier keeper left in the ring that could not be stored when it was
        #: opened (a full disk): (pid start tick, {column: value}) by job, for recovery to
        #: apply (see :meth:`settle_left`). The ring keeps them until a keeper stores them.
        self.left: dict[Key, tuple[int, dict[str, Any]]] = {}
        #: Starts left so: the records of jobs not in the store, for recovery to take over
        #: (see :meth:`left_starts`).
        self._left_starts: dict[Key, tuple[int, dict[str, Any], int]] = {}
        #: Why they could not be stored.
        self.left_error = ""
        #: Why an earlier keeper was killing jobs when it died, by (session, job id, process
        #: start tick): their (sub-state, annotation), for recovery (see :meth:`killing`).
        self.kill_reasons: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def open(
        self,
        state_dir: str,
        conn: sqlite3.Connection,
        kept: Callable[[ProcessIdentity], bool] = lambda identity: False,
    ) -> int:
        """Open the ring (the keeper does, once, before it recovers its sessions) and write
        to their rows the starts, then the ends, an earlier keeper left in it; how many rows
        that changed. ``kept``: whether a dead keeper's anchor kept the whole end of a
        process (a provisional end of it is then left to recovery, which takes that)."""
        ring = Ends(state_dir)
        found = ring.left()
        left = Leftovers.sort(found, kept)
        self.kill_reasons = left.kill_reasons
        changed = 0
        if found:
            try:
                changed = left.store(conn)
            except sqlite3.Error as error:  # a full disk: kept, for recovery to apply
                _log.warning("the job ends in %s could not be stored yet: %s", state_dir, error)
                ring.close()  # not cleared: a keeper killed before they are stored has them
                self.left = left.valid_ends()
                self._left_starts = left.valid_starts()
                full = is_out_of_space(error, state_dir)
                self.left_error = "no space left on its file system" if full else str(error)
                return 0
            ring.clear()
            # Why jobs were being killed is in no row: written again at once, so that it holds
            # if this keeper is killed too before recovery gives it to their ends.
            for reason in left.killing:
                if ring.write(reason):
                    self._in_ring += 1
        self._ring = ring
        return changed

    def left_starts(self, session: str, created_us: int | None) -> list[JobRecord]:
        """The records of a session's jobs whose start an earlier keeper left in the ring,
        that could not be stored when it was opened (a full disk); given once. The caller
        takes them over, keeps them in memory and writes them once it can."""
        found = []
        for key, (_, values, created) in list(self._left_starts.items()):
            if key[0] == session and created == created_us:
                del self._left_starts[key]
                record = JobRecord(session=session, job_id=key[1], **values)
                record.state = JobState(record.state)
                found.append(record)
        return sorted(found, key=lambda record: record.seq or 0)

    def settle_left(self, record: JobRecord) -> bool:
        """Give an unfinished record read from the store the end an earlier keeper left in
        the ring for it, if any (the same process): whether it did. The caller keeps the
        record in memory and writes it once it can."""
        found = self.left.get((record.session, record.job_id))
        if found is None or found[0] != record.pid_start or int(record.state) in FINISHED:
            return False
        del self.left[(record.session, record.job_id)]
        for name, value in found[1].items():
            setattr(record, name, JobState(value) if name == "state" else value)
        return True

    @property
    def crowded(self) -> bool:
        """Whether a quarter of the ring holds records not committed: time to commit."""
        return self._in_ring >= SLOTS // 4

    def add(self, record: JobRecord, columns: tuple[str, ...]) -> bool:
        """Put a job's end in the ring, to be written to its row later: False (nothing
        done) when the ring is not open, is half full of ends not committed, or the end
        does not fit; the caller then writes the row itself."""
        if record.pid_start is None:
            return False
        end = (record.session, record.job_id, record.pid_start, _values(record, columns))
        return self._add(end, record, columns)

    def provisional(self, record: JobRecord, values: dict[str, Any]) -> bool:
        """Put a job's provisional end in the ring (see the module docstring): ``values``
        are an end's columns, its state among them; not pending (the end follows). False if
        the ring cannot take it."""
        return self._aside(record, values, PROVISIONAL)

    def killing(self, record: JobRecord, sub_state: str, annotation: str) -> bool:
        """Put in the ring why a running job is being killed, before it is: a keeper killed
        before it records the job's end leaves its reason to the next one, which gives it
        to the end the dead keeper's anchor keeps (and finishes the kill). False if the
        ring cannot take it."""
        return self._aside(record, {"sub_state": sub_state, "annotation": annotation}, KILLED)

    def reaped(self, session: str, job_id: str, pid_start: int, pid: int) -> bool:
        """Put in the ring that a single job (its process ``pid`` started at ``pid_start``)
        is being reaped, before its row is deleted: its start, which the ring may still
        hold, is then never inserted again by a keeper that opens the ring (a reaped job
        would come back). False if the ring cannot take it."""
        return self._write_aside((session, job_id, pid_start, {}, pid, REAPED))

    def _aside(self, record: JobRecord, values: dict[str, Any], mark: str) -> bool:
        """Write a record of a running process's job that is not pending (``mark``: what
        it is); counted among the ring's records not committed, so its slot is kept."""
        if record.pid_start is None or record.pid is None:
            return False
        return self._write_aside(
            (record.session, record.job_id, record.pid_start, values, record.pid, mark)
        )

    def _write_aside(self, found: tuple[str, str, int, dict[str, Any], int, str]) -> bool:
        ring = self._ring
        if ring is None or self._in_ring >= SLOTS // 2 or not ring.write(found):
            return False
        self._in_ring += 1
        return True

    def add_start(self, record: JobRecord, created_us: int) -> bool:
        """Put a single job's first record (it started: RUNNING, its process known) in the
        ring, its row to be inserted later, as an end's is written; False as :meth:`add`.
        ``created_us``: when its session was made (a record is never given to another session
        made under the same name). The record must have its place in the order (``seq``)."""
        if record.pid_start is None or record.seq is None:
            return False
        values = {
            name: value
            for name, value in zip(_START_ORDER, _start_values(record), strict=True)
            if value is not None
        }
        values["state"] = int(record.state)  # a plain int, as in a row
        start = (record.session, record.job_id, record.pid_start, values, created_us)
        return self._add(start, record, None)

    def _add(self, entry: End | Start, record: JobRecord, columns: tuple[str, ...] | None) -> bool:
        ring = self._ring
        if ring is None or self._in_ring >= SLOTS // 2 or not ring.write(entry):
            return False
        self._in_ring += 1
        _merge_one(self.pending, (record.session, record.job_id), record, columns)
        return True

    def write(self, conn: sqlite3.Connection) -> None:
        """Write the pending ends and starts to their rows, in the open transaction. If that
        fails, they stay pending (writing one twice writes the same values)."""
        pending, self.pending = self.pending, {}
        try:
            whole = []
            for (session, job_id), (record, columns) in pending.items():
                if columns is None:
                    whole.append((*row_of(record), session))
                else:
                    values = _values(record, columns)
                    apply_end(conn, session, job_id, record.pid_start, values, False)
            conn.executemany(JOB_UPSERT, whole)
        except BaseException:
            _merge(pending, self.pending)
            self.pending = pending
            raise
        _merge(self._settled, pending)

    def committed(self) -> None:
        """The open transaction was committed: the writes it made are stored."""
        self._settled.clear()
        if not self.pending:
            self._in_ring = 0  # every record the ring holds is stored: its slots are free

    def rolled_back(self) -> None:
        """The open transaction was undone: the writes it made are pending again."""
        _merge(self._settled, self.pending)
        self.pending, self._settled = self._settled, {}

    def take(self) -> list[JobRecord]:
        """Give up the pending writes (a write failed: the supervisor keeps the records in
        memory, and writes them whole)."""
        self.rolled_back()
        records = [record for record, _ in self.pending.values()]
        self.pending = {}
        return records

    def close(self) -> None:
        """Close the ring (its pending ends were written)."""
        if self._ring is not None:
            self._ring.close()
            self._ring = None


def _merge(into: dict[Key, Pending], newer: dict[Key, Pending]) -> None:
    """Add pending writes to others (see :func:`_merge_one`)."""
    for key, (record, columns) in newer.items():
        _merge_one(into, key, record, columns)


def _merge_one(
    into: dict[Key, Pending], key: Key, record: JobRecord, columns: tuple[str, ...] | None
) -> None:
    """Add a pending write to others: a job whose whole record is to be written (its start)
    stays so, with whatever changed since (the record is the same object)."""
    before = into.get(key)
    if before is not None and before[1] is None:
        columns = None
    into[key] = (record, columns)


def _values(record: JobRecord, columns: tuple[str, ...]) -> dict[str, Any]:
    """The values an ended record's row takes: ``columns`` and its state (as its code)."""
    values = {name: getattr(record, name) for name in columns}
    values["state"] = int(record.state)
    return values
