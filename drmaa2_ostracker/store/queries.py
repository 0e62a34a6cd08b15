"""The session store of one state directory: sessions, jobs and arrays in SQLite.

One database file (``store.sqlite3``, WAL mode, 0600) per state directory. The keeper is its
only writer; every state transition is written through it (see the supervisor for when a
change is committed). Finished jobs live only here, not in the keeper's memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2_ostracker.store.arrays import ArrayQueries
from drmaa2_ostracker.store.checkpoints import FALLBACK_PAGES, Checkpointer
from drmaa2_ostracker.store.ends import PendingEnds
from drmaa2_ostracker.store.launches import Launches
from drmaa2_ostracker.store.orphans import Orphans
from drmaa2_ostracker.store.records import (
    JOB_COLUMNS,
    JOB_INSERT,
    JOB_SELECT,
    JOB_UPSERT,
    JobRecord,
    record_of,
    row_of,
    update_sql,
)
from drmaa2_ostracker.store.schema import STORE_FILE, connect
from drmaa2_ostracker.store.transactions import Transactions

__all__ = ["Store"]

_log = logging.getLogger(__name__)

#: Ids per ``IN (...)`` list: well below SQLite's oldest limit of bound parameters (999).
_IDS_PER_STATEMENT = 500


class Store(Transactions, ArrayQueries):
    """The session store of one state directory (thread-safe)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.path = os.path.join(self.state_dir, STORE_FILE)
        self._lock = threading.RLock()
        self._deferred = False
        self._closed = False
        #: The next place in the sessions' order (see reserve_seq); read when first needed.
        self._next_seq: int | None = None
        self._conn = connect(self.path)
        self._checkpoints = self._checkpointer()
        self._launches: Launches | None = None
        #: Ends of jobs reaped by a dead keeper's anchor (see :mod:`.orphans`).
        self.orphans = Orphans(self.state_dir)
        #: Job ends in the ring and not yet in their rows (the keeper's; see :mod:`.ends`).
        self.ends = PendingEnds()
        #: When each session a job was started in was made (see start_later).
        self._created: dict[str, int] = {}
        #: Until when free space need not be measured again (see ensure_space).
        self._roomy_until = 0.0

    def _checkpointer(self) -> Checkpointer | None:
        """The thread that checkpoints the store off the request path (see :mod:`.checkpoints`);
        None, and SQLite's own checkpoints in the COMMIT, if it cannot be had."""
        try:
            checkpoints = Checkpointer(self.path)
        except (sqlite3.Error, OSError, RuntimeError) as error:
            _log.warning("checkpoints of %s stay in its commits: %s", self.path, error)
            return None
        self._conn.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_PAGES}")
        return checkpoints

    @property
    def launches(self) -> Launches:
        """The launches begun in this state directory (see :mod:`.launches`), opened when
        first needed: by the keeper, which is the only one to start jobs."""
        with self._lock:
            if self._launches is None:
                self._launches = Launches(self.state_dir)
            return self._launches

    def open_ends(self) -> int:
        """Open the ring of job ends (the keeper does, before it recovers its sessions): the
        ends an earlier keeper left there are written to their rows; how many."""
        with self._lock:
            return self.ends.open(
                self.state_dir,
                self._conn,
                kept=lambda identity: self.orphans.end_of(identity) is not None,
            )

    def end_later(self, record: JobRecord, columns: tuple[str, ...]) -> bool:
        """Record a job's end in the ring, its row to be written later (before anything
        reads the store's jobs, or by :meth:`write_ends`); False if it must be written now."""
        with self._lock:
            return self.ends.add(record, columns)

    def provisional_end(self, record: JobRecord, values: dict[str, Any]) -> bool:
        """Record a job's end in the ring before its exit status is collected (see
        :meth:`PendingEnds.provisional <drmaa2_ostracker.store.ends.PendingEnds.provisional>`)."""
        with self._lock:
            return self.ends.provisional(record, values)

    def killing(self, record: JobRecord, sub_state: str, annotation: str) -> bool:
        """Record in the ring why a running job is being killed (see
        :meth:`PendingEnds.killing <drmaa2_ostracker.store.ends.PendingEnds.killing>`)."""
        with self._lock:
            return self.ends.killing(record, sub_state, annotation)

    def start_later(self, record: JobRecord) -> bool:
        """Record a single job that started (RUNNING, its process known) in the ring, its row
        to be inserted later, as an end's is written (see :mod:`.ends`); False if it must be
        written now. Its place in the order is given now."""
        with self._lock:
            created = self._created.get(record.session)
            if created is None:  # once per session
                created = self.session_created(record.session)
                if created is None:
                    return False
                self._created[record.session] = created
            if record.seq is None:
                record.seq = self.reserve_seq(1)
            return self.ends.add_start(record, created)

    def close(self) -> None:
        """Commit what is open and close the database connection."""
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(sqlite3.Error):
                self.write_ends()
            self.commit()
            if self._checkpoints is not None:
                self._checkpoints.close()
            self._conn.close()
            if self._launches is not None:
                self._launches.close()
            self.ends.close()
            self._closed = True

    # -- sessions -------------------------------------------------------------------------

    def create_session(self, name: str, now_us: int) -> None:
        """Record a new session; InvalidArgumentException if the name exists."""
        try:
            self._rows("INSERT INTO sessions (name, created_us) VALUES (?, ?)", (name, now_us))
        except sqlite3.IntegrityError:
            raise InvalidArgumentException(
                f"a job session named {name!r} exists already in {self.state_dir}"
            ) from None

    def session_exists(self, name: str) -> bool:
        """Whether a session of this name exists."""
        return self.session_created(name) is not None

    def session_created(self, name: str) -> int | None:
        """When the session of this name was made (µs; None: there is none)."""
        row = self._one("SELECT created_us FROM sessions WHERE name = ?", (name,))
        return None if row is None else int(row[0])

    def session_names(self) -> list[str]:
        """Names of all sessions, oldest first."""
        rows = self._rows("SELECT name FROM sessions ORDER BY created_us, name")
        return [row[0] for row in rows]

    def destroy_session(self, name: str) -> None:
        """Forget a session and all its records; InvalidArgumentException if unknown."""
        with self.transaction():
            if not self.session_exists(name):
                raise InvalidArgumentException(
                    f"there is no job session named {name!r} in {self.state_dir}"
                )
            self._rows("DELETE FROM jobs WHERE session = ?", (name,))
            self._rows("DELETE FROM arrays WHERE session = ?", (name,))
            self._rows("DELETE FROM sessions WHERE name = ?", (name,))
            self._created.pop(name, None)

    def allocate_id(self, session: str, count: int = 1) -> int:
        """Reserve the session's next ``count`` job id numbers (never handed out again);
        returns the first. Committed with the change it is part of, if one is under way,
        else at once. The job ends pending in the ring stay pending: they are not read here
        (a read of the jobs would write them first), and their write stays off the path of
        the submission that needed the ids."""
        with self.transaction():
            row = self._conn.execute(
                "UPDATE sessions SET next_id = next_id + ? WHERE name = ? RETURNING next_id - ?",
                (count, session, count),
            ).fetchone()
        if row is None:
            raise InvalidArgumentException(f"the job session {session!r} no longer exists")
        return int(row[0])

    def release_ids(self, session: str, first: int, end: int) -> None:
        """Give back the reserved ids ``first`` … ``end - 1`` if none was reserved after
        them (so a session's ids stay contiguous)."""
        self._rows(
            "UPDATE sessions SET next_id = ? WHERE name = ? AND next_id = ?", (first, session, end)
        )

    # -- jobs -----------------------------------------------------------------------------

    def reserve_seq(self, count: int) -> int:
        """Reserve ``count`` consecutive places in the sessions' order (never given twice,
        even when the transaction that used them is rolled back); the first."""
        with self._lock:
            if self._next_seq is None:
                top = self._one("SELECT max(seq) FROM jobs")[0] or 0
                reserved = self._one(
                    "SELECT max(first_seq + (end_index - begin_index) / step) FROM arrays"
                )[0]
                self._next_seq = max(top, reserved or 0) + 1
            first = self._next_seq
            self._next_seq += count
            return first

    def insert_jobs(self, records: Sequence[JobRecord]) -> None:
        """Write new job records (a record without its place in the order gets the next)."""
        with self._lock:
            for record in records:
                if record.seq is None:
                    record.seq = self.reserve_seq(1)
            rows = [row_of(record) for record in records]
            if len(rows) == 1:
                self._conn.execute(JOB_INSERT, rows[0])
            elif rows:
                self._conn.executemany(JOB_INSERT, rows)

    def upsert_jobs(self, records: Sequence[JobRecord]) -> None:
        """Write job records whole, whether or not they are in the store (rewriting the
        changes a failed commit lost); a row keeps its place in the session's order."""
        with self._lock:
            for record in records:
                if record.seq is None:
                    record.seq = self.reserve_seq(1)
            rows = [(*row_of(record), record.session) for record in records]
            self._conn.executemany(JOB_UPSERT, rows)

    def job_seqs(self, session: str, where: dict[str, Any] | None = None) -> list[tuple[int, str]]:
        """(place, id) of a session's jobs matching the equality conditions, oldest first."""
        clauses, args = self._where(session, where)
        return self._rows(f"SELECT seq, job_id FROM jobs WHERE {clauses} ORDER BY seq", args)

    def update_job(self, session: str, job_id: str, **columns: Any) -> bool:
        """Update some columns of a job. True if the row was updated (it is gone once its
        session was destroyed)."""
        sql = update_sql(tuple(columns), False)
        args: tuple[Any, ...] = (*columns.values(), session, job_id)
        with self._lock:
            return self._conn.execute(sql, args).rowcount == 1

    def job(self, session: str, job_id: str) -> JobRecord | None:
        """One job's record, None if unknown."""
        row = self._one(f"{JOB_SELECT} WHERE session = ? AND job_id = ?", (session, job_id))
        return None if row is None else record_of(row)

    def job_state(self, session: str, job_id: str) -> tuple[JobState, str] | None:
        """One job's (state, sub-state), None if unknown."""
        row = self._one(
            "SELECT state, sub_state FROM jobs WHERE session = ? AND job_id = ?",
            (session, job_id),
        )
        return None if row is None else (JobState(row[0]), row[1])

    def job_states(self, session: str, job_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        """(state, sub-state) of each of ``job_ids`` in the store, by id (unknown ids left out):
        one statement per 500 ids, not one per job."""
        found: dict[str, tuple[JobState, str]] = {}
        for start in range(0, len(job_ids), _IDS_PER_STATEMENT):
            chunk = job_ids[start : start + _IDS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                "SELECT job_id, state, sub_state FROM jobs "
                f"WHERE session = ? AND job_id IN ({marks})",
                (session, *chunk),
            )
            for job_id, state, sub_state in rows:
                found[job_id] = (JobState(state), sub_state)
        return found

    def jobs(self, session: str, where: dict[str, Any] | None = None) -> list[JobRecord]:
        """Records of a session's jobs matching the equality conditions, oldest first."""
        clauses, args = self._where(session, where)
        rows = self._rows(f"{JOB_SELECT} WHERE {clauses} ORDER BY seq", args)
        return [record_of(row) for row in rows]

    def job_ids(self, session: str, where: dict[str, Any] | None = None) -> list[str]:
        """Ids of a session's jobs matching the equality conditions, oldest first."""
        clauses, args = self._where(session, where)
        rows = self._rows(f"SELECT job_id FROM jobs WHERE {clauses} ORDER BY seq", args)
        return [row[0] for row in rows]

    @staticmethod
    def _where(session: str, where: dict[str, Any] | None) -> tuple[str, list[Any]]:
        clauses = ["session = ?"]
        args: list[Any] = [session]
        for name, value in (where or {}).items():
            if name not in JOB_COLUMNS:
                raise KeyError(name)
            clauses.append(f"{name} = ?")
            args.append(value)
        return " AND ".join(clauses), args

    def unfinished_jobs(self, session: str) -> list[JobRecord]:
        """Records of a session's jobs that are not DONE or FAILED, oldest first."""
        rows = self._rows(
            f"{JOB_SELECT} WHERE session = ? AND state NOT IN (?, ?) ORDER BY seq",
            (session, int(JobState.DONE), int(JobState.FAILED)),
        )
        return [record_of(row) for row in rows]

    def running_processes(self) -> set[tuple[int, int]]:
        """The processes (pid, start ticks) recorded for jobs of any session that are RUNNING
        or SUSPENDED."""
        rows = self._rows(
            "SELECT pid, pid_start FROM jobs WHERE pid IS NOT NULL AND state IN (?, ?)",
            (int(JobState.RUNNING), int(JobState.SUSPENDED)),
        )
        return {(int(row[0]), int(row[1] or 0)) for row in rows}

    def processes_of(self, pids: Sequence[int]) -> set[tuple[int, int]]:
        """The processes (pid, start ticks) recorded for jobs, of any session and state,
        among those of ``pids``."""
        marks = ", ".join("?" * len(pids))
        rows = self._rows(f"SELECT pid, pid_start FROM jobs WHERE pid IN ({marks})", tuple(pids))
        return {(int(row[0]), int(row[1] or 0)) for row in rows}

    def delete_job(self, session: str, job_id: str) -> None:
        """Forget a job. A single job's start may still be in the ring of ends: a mark that
        it was reaped goes there first (committing what the ring holds, if it is too full to
        take it), so that no keeper inserts it again from there."""
        with self._lock:
            row = self._one(
                "SELECT pid, pid_start FROM jobs WHERE session = ? AND job_id = ? "
                "AND array_id IS NULL AND pid_start IS NOT NULL",
                (session, job_id),
            )
            if row is not None and row[0] is not None:
                mark = (session, job_id, int(row[1]), int(row[0]))
                if not self.ends.reaped(*mark):
                    self.commit()  # (the ring's records stored: its slots are free)
                    self.ends.reaped(*mark)
            self._rows("DELETE FROM jobs WHERE session = ? AND job_id = ?", (session, job_id))

    def delete_jobs(self, session: str, job_ids: Sequence[str]) -> None:
        """Forget jobs."""
        with self._lock:
            self._conn.executemany(
                "DELETE FROM jobs WHERE session = ? AND job_id = ?",
                ((session, job_id) for job_id in job_ids),
            )
