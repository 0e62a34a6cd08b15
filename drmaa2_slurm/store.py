"""The session store: which Slurm jobs belong to which DRMAA2 job session (SQLite).

Slurm owns the jobs; the store keeps what Slurm does not: sessions, the templates, the arrays'
index ranges, and each job's last state seen (a finished job's JobInfo stays here after Slurm
forgets it). One database file per cluster, in the state directory; several processes may use
it at once (WAL, busy timeout).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException

__all__ = ["ArrayRecord", "JobRecord", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    slurm_id TEXT NOT NULL,
    array_id TEXT,
    task_index INTEGER,
    job_name TEXT,
    submitted REAL NOT NULL,
    submission_machine TEXT NOT NULL,
    template TEXT,
    state INTEGER NOT NULL,
    sub_state TEXT NOT NULL DEFAULT '',
    info TEXT,
    UNIQUE (session, job_id)
);
CREATE TABLE IF NOT EXISTS arrays (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    array_id TEXT NOT NULL,
    template TEXT NOT NULL,
    begin_index INTEGER NOT NULL,
    end_index INTEGER NOT NULL,
    step INTEGER NOT NULL,
    max_parallel INTEGER,
    PRIMARY KEY (session, array_id)
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (session, state);
"""

_JOB_COLUMNS = (
    "job_id, slurm_id, array_id, task_index, job_name, submitted, submission_machine, "
    "template, state, sub_state, info"
)


@dataclasses.dataclass
class JobRecord:
    """One job or array task of a session."""

    job_id: str
    #: The id squeue is asked for: the job's own, or its array's for a task.
    slurm_id: str
    array_id: str | None
    task_index: int | None
    job_name: str | None
    submitted: float
    submission_machine: str
    template: str | None
    state: JobState
    sub_state: str = ""
    #: The last JobInfo seen, as JSON.
    info: str | None = None


@dataclasses.dataclass
class ArrayRecord:
    """An array of a session: its template and index range."""

    array_id: str
    template: str
    begin_index: int
    end_index: int
    step: int
    max_parallel: int | None


def _job_row(session: str, job: JobRecord) -> tuple[object, ...]:
    """The jobs row of a record (``dataclasses.astuple`` deep-copies every field: slower)."""
    return (
        session,
        job.job_id,
        job.slurm_id,
        job.array_id,
        job.task_index,
        job.job_name,
        job.submitted,
        job.submission_machine,
        job.template,
        int(job.state),
        job.sub_state,
        job.info,
    )


def _job(row: Sequence[object]) -> JobRecord:
    record = JobRecord(*row)  # type: ignore[arg-type]
    record.state = JobState(record.state)
    return record


class Store:
    """The sessions of one cluster, in ``<state_dir>/<cluster>.sqlite``."""

    def __init__(self, state_dir: str, cluster: str) -> None:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(state_dir, f"{cluster}.sqlite")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        with self._lock, self._db:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, name: str) -> None:
        """Record a new session; InvalidArgumentException if the name exists."""
        try:
            self._write("INSERT INTO sessions VALUES (?, ?)", (name, time.time()))
        except sqlite3.IntegrityError:
            raise InvalidArgumentException(
                f"a job session named {name!r} exists already in {self.path}"
            ) from None

    def session_exists(self, name: str) -> bool:
        """Whether the session exists."""
        return bool(self._read("SELECT 1 FROM sessions WHERE name = ?", (name,)))

    def session_names(self) -> list[str]:
        """Every session's name, oldest first."""
        return [str(r[0]) for r in self._read("SELECT name FROM sessions ORDER BY created")]

    def session_created(self, name: str) -> float | None:
        """When the session was made (seconds since the epoch), None if there is none: a
        session made again under its name after it was destroyed is another."""
        rows = self._read("SELECT created FROM sessions WHERE name = ?", (name,))
        return float(rows[0][0]) if rows else None  # type: ignore[arg-type]

    def destroy_session(self, name: str, created: float | None = None) -> list[str]:
        """Forget a session and its jobs; InvalidArgumentException if unknown. ``created``:
        only the session made then (nothing is done if another has its name now).

        Returns the Slurm ids of its unfinished jobs, read in the same transaction: a job
        another process recorded before is among them, one it records after fails (its
        session is gone), so the caller can cancel every pending job the session had."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT DISTINCT slurm_id FROM jobs WHERE session = ? AND state NOT IN (7, 8) "
                "AND slurm_id != '' ORDER BY slurm_id",
                (name,),
            ).fetchall()
            if created is None:
                cursor = self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            else:
                cursor = self._db.execute(
                    "DELETE FROM sessions WHERE name = ? AND created = ?", (name, created)
                )
            if cursor.rowcount == 0:
                raise InvalidArgumentException(
                    f"there is no job session named {name!r} in {self.path}"
                )
        return [str(row[0]) for row in rows]

    # -- jobs --------------------------------------------------------------------------------

    def add(self, session: str, jobs: Iterable[JobRecord], array: ArrayRecord | None) -> None:
        """Record a submission: its jobs (or tasks) and its array, in one transaction."""
        with self._lock, self._db:
            if array is not None:
                self._db.execute(
                    "INSERT INTO arrays VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        session,
                        array.array_id,
                        array.template,
                        array.begin_index,
                        array.end_index,
                        array.step,
                        array.max_parallel,
                    ),
                )
            self._db.executemany(
                f"INSERT INTO jobs (session, {_JOB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [_job_row(session, job) for job in jobs],
            )

    def job(self, session: str, job_id: str) -> JobRecord | None:
        """One job, None if the session has no such job."""
        rows = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE session = ? AND job_id = ?", (session, job_id)
        )
        return _job(rows[0]) if rows else None

    def last_seq(self, session: str) -> int:
        """The place in the order of the session's last job (0 if it has none)."""
        rows = self._read("SELECT max(seq) FROM jobs WHERE session = ?", (session,))
        found = rows[0][0]
        return found if isinstance(found, int) else 0

    def jobs_since(self, session: str, seq: int) -> tuple[list[JobRecord], int]:
        """The session's jobs recorded after the place ``seq`` in the order (submitted since,
        by any process), and the place of the last one (``seq`` if there is none)."""
        rows = self._read(
            f"SELECT seq, {_JOB_COLUMNS} FROM jobs WHERE session = ? AND seq > ? ORDER BY seq",
            (session, seq),
        )
        last = rows[-1][0] if rows else seq
        assert isinstance(last, int)
        return [_job(row[1:]) for row in rows], last

    def jobs(self, session: str, unfinished_only: bool = False) -> list[JobRecord]:
        """The session's jobs, oldest first (submission order, tasks in index order)."""
        where = " AND state NOT IN (7, 8)" if unfinished_only else ""
        rows = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE session = ?{where} ORDER BY seq", (session,)
        )
        return [_job(row) for row in rows]

    def update(
        self, session: str, changes: Iterable[tuple[str, JobState, str, str | None]]
    ) -> None:
        """Record (job_id, state, sub_state, info JSON) of jobs seen."""
        with self._lock, self._db:
            self._db.executemany(
                "UPDATE jobs SET state = ?, sub_state = ?, info = COALESCE(?, info) "
                "WHERE session = ? AND job_id = ?",
                [(int(state), sub, info, session, job_id) for job_id, state, sub, info in changes],
            )

    def delete_job(self, session: str, job_id: str) -> None:
        """Forget one job."""
        self._write("DELETE FROM jobs WHERE session = ? AND job_id = ?", (session, job_id))

    # -- arrays ------------------------------------------------------------------------------

    def array(self, session: str, array_id: str) -> ArrayRecord | None:
        """One array, None if the session has no such array."""
        rows = self._read(
            "SELECT array_id, template, begin_index, end_index, step, max_parallel FROM arrays "
            "WHERE session = ? AND array_id = ?",
            (session, array_id),
        )
        return ArrayRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def array_task_ids(self, session: str, array_id: str) -> list[str]:
        """The ids of an array's tasks not reaped, in index order."""
        rows = self._read(
            "SELECT job_id FROM jobs WHERE session = ? AND array_id = ? ORDER BY task_index",
            (session, array_id),
        )
        return [str(r[0]) for r in rows]
