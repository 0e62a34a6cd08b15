"""The SQLite session store: sessions, jobs, arrays, templates and job infos.

One database file (``store.sqlite3``) per state directory, in WAL mode so that several
processes may open the same sessions at once. The directory is created 0700 and the files
0600. A job row is written before ``run_job`` returns and every state transition is written
through; finished jobs live only here, not in the controlling process's memory.

The two writes on every job's way — its start and its end — go to the *journal* first: a file
per controlling process (and store) in the state directory, ``journal-<pid>-<start>-<n>.log``,
allocated at its full size and mapped into memory, so a record is a copy into the page cache:
durable against a crash of the process exactly like a commit of the WAL database
(``synchronous = NORMAL``), without a system call. Journaled records are applied to the
database (*folded*) in batches: before this process reads or writes anything else in the
store, within milliseconds otherwise (the supervisor asks for it), by any other process before
it reads, and by the next process that opens the store when the writer died. The database
notes, in the same transaction, how far each journal was folded: every record is applied
exactly once.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import marshal
import mmap
import operator
import os
import sqlite3
import stat
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException, SessionManagementException
from drmaa2.types import JobTemplate
from drmaa2_ostracker.process import ProcessIdentity, identity_of, is_running

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "ArrayRecord", "JobRecord", "Store"]

_log = logging.getLogger(__name__)

STORE_FILE = "store.sqlite3"
_JOURNAL_PREFIX = "journal-"
_JOURNAL_SUFFIX = ".log"
#: A journal's size, allocated when it is made (so writing it never runs out of space).
_JOURNAL_SIZE = 1 << 20
#: A journal record: the payload's length and CRC-32, then the payload (marshal of
#: (sequence number, operation)). A length of 0 ends the records.
_FRAME = struct.Struct("<II")
#: A directory listing made this long after the directory's last change misses nothing (its
#: modification time has clock-tick resolution).
_LISTING_SETTLED_NS = 50_000_000
#: Version of the schema this code writes; older stores are migrated, newer ones refused.
SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (
    name TEXT PRIMARY KEY,
    created_us INTEGER NOT NULL,
    next_id INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE arrays (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    array_id TEXT NOT NULL,
    begin_index INTEGER NOT NULL,
    end_index INTEGER NOT NULL,
    step INTEGER NOT NULL,
    max_parallel INTEGER,
    template TEXT NOT NULL,
    launch TEXT,
    PRIMARY KEY (session, array_id)
);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    array_id TEXT,
    task_index INTEGER,
    job_name TEXT,
    state INTEGER NOT NULL,
    sub_state TEXT NOT NULL DEFAULT '',
    annotation TEXT,
    exit_status INTEGER,
    terminating_signal TEXT,
    submission_us INTEGER NOT NULL,
    dispatch_us INTEGER,
    finish_us INTEGER,
    cpu_time REAL,
    pid INTEGER,
    pid_start INTEGER,
    rusage TEXT,
    template TEXT,
    launch TEXT,
    owner_pid INTEGER,
    owner_start INTEGER,
    UNIQUE (session, job_id)
);
CREATE INDEX jobs_by_array ON jobs (session, array_id, task_index) WHERE array_id IS NOT NULL;
"""

# No index on state or exit status: a transition would then dirty index pages too, doubling
# the cost of every commit (and of the WAL checkpoints), while a filter scans 100,000 rows in
# a few tens of milliseconds anyway. The array index changes only when jobs are inserted.

#: Migrations from version N to N + 1, applied in order.
_MIGRATIONS: dict[int, str] = {}


@dataclasses.dataclass
class JobRecord:
    """One job (or array task) as stored."""

    session: str
    job_id: str
    state: JobState
    submission_us: int
    array_id: str | None = None
    task_index: int | None = None
    job_name: str | None = None
    sub_state: str = ""
    annotation: str | None = None
    exit_status: int | None = None
    terminating_signal: str | None = None
    dispatch_us: int | None = None
    finish_us: int | None = None
    cpu_time: float | None = None
    pid: int | None = None
    pid_start: int | None = None
    #: Extension keys of a finished job's rusage, JSON.
    rusage: str | None = None
    #: The job's template as JSON (None for array tasks: the array's template is used).
    template: str | None = None
    #: What a job that has not started needs to start later (environment snapshot …), JSON.
    launch: str | None = None
    owner_pid: int | None = None
    owner_start: int | None = None

    def to_values(self) -> tuple[Any, ...]:
        """The record as plain values, in field order (the state as its int code)."""
        return _row(self)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> JobRecord:
        """Read :meth:`to_values`'s form back."""
        return _record(values)


_JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(JobRecord))
_JOB_SELECT = f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
_JOB_INSERT = (
    f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in _JOB_COLUMNS)})"
)
_UPDATABLE = frozenset(_JOB_COLUMNS) - {"session", "job_id"}
_fields = operator.attrgetter(*_JOB_COLUMNS)
_STATE_AT = _JOB_COLUMNS.index("state")


def _row(record: JobRecord) -> tuple[Any, ...]:
    # A plain int for the state: sqlite3 binds an IntEnum through its slow adapter path.
    row = list(_fields(record))
    row[_STATE_AT] = int(row[_STATE_AT])
    return tuple(row)


@functools.lru_cache(maxsize=64)
def _update_sql(columns: tuple[str, ...], guarded: bool) -> str:
    unknown = set(columns) - _UPDATABLE
    if unknown:
        raise KeyError(f"not job columns: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in columns)
    sql = f"UPDATE jobs SET {assignments} WHERE session = ? AND job_id = ?"
    return sql + " AND state = ? AND sub_state = ?" if guarded else sql


def _record(row: Sequence[Any]) -> JobRecord:
    record = JobRecord(*row)
    record.state = JobState(record.state)
    return record


@dataclasses.dataclass
class ArrayRecord:
    """One job array as stored."""

    session: str
    array_id: str
    begin_index: int
    end_index: int
    step: int
    max_parallel: int | None
    template: str
    launch: str | None


class _Rows:
    """The rows of a statement, fetched."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class Store:
    """The session store of one state directory. Thread-safe; shareable between processes."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.path = os.path.join(self.state_dir, STORE_FILE)
        self._lock = threading.RLock()
        self._data_version = -1
        self._deferred = False
        #: Journaled writes not yet applied to the database: (seq, record), in order.
        self._pending: list[tuple[int, tuple[Any, ...]]] = []
        #: Journaled writes applied in the open transaction, not committed yet: back to
        #: ``_pending`` if it is rolled back.
        self._uncommitted: list[tuple[int, tuple[Any, ...]]] = []
        #: Other processes' journals in the state directory, as of its modification time.
        self._journals: list[str] = []
        self._dir_mtime = -1
        self._listed_ns = 0
        #: Sequence number of the last record appended to this process's journal.
        self._seq = 0
        #: This process's journal, mapped (None until the first record), and where the next
        #: record goes.
        self._journal_map: mmap.mmap | None = None
        self._journal_end = 0
        self._journal_name = _journal_name()
        #: The journal could not be made: writes go straight to the database.
        self._no_journal = False
        self._closed = False
        self._prepare_directory()
        self._conn = self._connect()
        self.replay_dead_journals()
        _open_stores.add(self)

    # -- opening --------------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        except OSError as error:
            raise SessionManagementException(
                f"cannot create the state directory {self.state_dir}: {error.strerror}; "
                f"choose another one with the contact argument or $DRMAA2_OS_STATE_DIR"
            ) from error
        if not os.access(self.state_dir, os.W_OK | os.X_OK):
            raise SessionManagementException(
                f"the state directory {self.state_dir} is not writable; fix its permissions "
                f"or choose another one with the contact argument or $DRMAA2_OS_STATE_DIR"
            )

    def _connect(self) -> sqlite3.Connection:
        existed = os.path.exists(self.path)
        if existed:
            self._check_existing_file()
        else:
            # Create the file 0600 ourselves: sqlite would honour the umask instead.
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                existed = True
        try:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except sqlite3.DatabaseError as error:
            raise SessionManagementException(
                f"{self.path} is not a usable drmaa2-ostracker store ({error}); it was left "
                f"untouched: move it away or choose another state directory"
            ) from error
        return conn

    def _check_existing_file(self) -> None:
        mode = os.stat(self.path).st_mode
        if not stat.S_ISREG(mode):
            raise SessionManagementException(
                f"{self.path} is not a regular file; move it away or choose another state directory"
            )
        if not os.access(self.path, os.R_OK | os.W_OK):
            raise SessionManagementException(
                f"the store {self.path} is not readable and writable by this user; fix its "
                f"permissions or choose another state directory"
            )
        with open(self.path, "rb") as existing:
            header = existing.read(16)
        if header and header != b"SQLite format 3\x00":
            raise SessionManagementException(
                f"{self.path} is not an SQLite database; it was left untouched: move it away "
                f"or choose another state directory"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            if not has_meta:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise SessionManagementException(
                        f"{self.path} is an SQLite database but not a drmaa2-ostracker store; "
                        f"it was left untouched: move it away or choose another state directory"
                    )
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            version = int(
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            )
            if version > SCHEMA_VERSION:
                raise SessionManagementException(
                    f"{self.path} has schema version {version}, newer than the {SCHEMA_VERSION} "
                    f"this drmaa2-ostracker understands; upgrade drmaa2-ostracker (the store "
                    f"was left untouched)"
                )
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version += 1
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Fold the journal, remove it, and close the database connection."""
        with self._lock:
            if self._closed:
                return
            self.retire_journal()
            self._conn.close()
            self._closed = True

    # -- the journal ----------------------------------------------------------------------

    def journal_insert(self, record: JobRecord) -> None:
        """Record a new job through the journal (durable when this returns)."""
        self._journal(("i", _row(record)))

    def journal_update(self, session: str, job_id: str, **columns: Any) -> None:
        """Update some columns of a job through the journal (durable when this returns)."""
        self._journal(("u", tuple(columns), (*columns.values(), session, job_id)))

    def _journal(self, op: tuple[Any, ...]) -> None:
        # The journal is a shared mapping of a file: a record written into it is in the page
        # cache at once, durable against a crash of this process exactly like write(2), and
        # costs no system call.
        with self._lock:
            journal = self._journal_map
            if journal is None and not self._no_journal:
                try:
                    journal = self._open_journal()
                except (OSError, ValueError):
                    # No journal (disk full, a file system without fallocate or shared
                    # mappings): every write goes straight to the database.
                    self._no_journal = True
            self._seq += 1
            seq = self._seq
            payload = marshal.dumps((seq, op))
            end = self._journal_end + _FRAME.size + len(payload)
            self._pending.append((seq, op))
            if journal is None:
                self.commit()
                return
            try:
                if end + _FRAME.size > _JOURNAL_SIZE:  # full: into the database with the rest
                    self.commit()
                    return
                journal[self._journal_end : end] = (
                    _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
                )
                self._journal_end = end
            except (OSError, ValueError):
                self.commit()

    def _open_journal(self) -> mmap.mmap:
        """Make a journal for this store (lock held): a new name, numbered from 1, so that
        any process can fold it from its start. What was journaled before goes to the
        database first, under the old name."""
        if self._pending or self._uncommitted:
            self.commit()
        self._journal_name, self._seq = _journal_name(), 0
        path = os.path.join(self.state_dir, self._journal_name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, _JOURNAL_SIZE)
            journal = mmap.mmap(fd, _JOURNAL_SIZE)
        finally:
            os.close(fd)
        self._journal_map, self._journal_end = journal, 0
        return journal

    def _forked(self) -> None:
        """In a child forked from this process: the connection, the journal and what it
        holds are the parent's. The child never touches them (not even at its exit); the
        lock may have been held by a thread that does not exist in the child."""
        self._lock = threading.RLock()
        self._journal_map = None
        self._journal_end = 0
        self._pending = []
        self._uncommitted = []
        self._closed = True

    def _fold(self) -> None:
        """Apply this process's pending journaled writes (lock held): in the open transaction
        if there is one (its commit commits them), else in one of their own. Records another
        process folded already (see :meth:`_fold_journal`) are skipped."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        own = not self._conn.in_transaction
        if own:
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            done = self._folded_through(self._journal_name)
            _apply(self._conn, _statements([op for seq, op in pending if seq > done]))
            self._set_folded(self._journal_name, pending[-1][0])
            if own:
                self._conn.execute("COMMIT")
                self._journal_committed()
            else:
                self._uncommitted.extend(pending)
        except BaseException:
            if own and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._pending[:0] = pending
            raise

    def _ended(self, committed: bool) -> None:
        """The open transaction ended (lock held): the journaled writes it held are in the
        database, or, rolled back, pending again."""
        if committed:
            self._uncommitted.clear()
            self._journal_committed()
        elif self._uncommitted:
            self._pending[:0] = self._uncommitted
            self._uncommitted = []

    def _folded_through(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _set_folded(self, name: str, seq: int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (name, str(seq))
        )

    def _journal_committed(self) -> None:
        """Everything journaled is in the database: empty the journal (lock held)."""
        if (
            self._journal_end
            and not self._pending
            and not self._uncommitted
            and self._journal_map is not None
        ):
            self._journal_map[: self._journal_end] = bytes(self._journal_end)
            self._journal_end = 0

    def retire_journal(self) -> None:
        """Fold and commit everything, then remove this process's journal and its note."""
        with self._lock:
            self.commit()
            if self._journal_map is None:
                return
            self._journal_map.close()
            self._journal_map = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.state_dir, self._journal_name))
            self._conn.execute("DELETE FROM meta WHERE key = ?", (self._journal_name,))

    def _catch_up(self) -> None:
        """Before a statement (lock held): apply every journaled write, this process's and
        other processes' (a write is durable once journaled, so every reader must see it)."""
        if self._pending:
            self._fold()
        try:
            mtime = os.stat(self.state_dir).st_mtime_ns
        except OSError:
            return
        # Journals came or went, or the listing was made so soon after the last change that
        # a journal made in the same clock tick (same modification time) may be missing.
        if mtime != self._dir_mtime or self._listed_ns - mtime < _LISTING_SETTLED_NS:
            self._dir_mtime, self._listed_ns = mtime, time.time_ns()
            self._journals = [
                name
                for name in os.listdir(self.state_dir)
                if name != self._journal_name and _journal_owner(name) is not None
            ]
        for name in self._journals:
            if _read_journal(os.path.join(self.state_dir, name), _FRAME.size).strip(b"\0"):
                self._fold_journal(name)  # it holds records

    def replay_dead_journals(self) -> None:
        """Fold the journals of controlling processes that died, and remove them."""
        with self._lock:
            try:
                names = os.listdir(self.state_dir)
            except OSError:
                return
            if self._conn.in_transaction:
                return  # at the next opportunity: a journal goes only after a commit
            for name in names:
                owner = _journal_owner(name)
                if owner is None or name == self._journal_name or is_running(owner):
                    continue
                self._fold_journal(name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.state_dir, name))
                self._conn.execute("DELETE FROM meta WHERE key = ?", (name,))
            # Notes of journals that are gone (a crash between the unlink and the delete).
            for (key,) in self._conn.execute(
                "SELECT key FROM meta WHERE key LIKE ?", (f"{_JOURNAL_PREFIX}%",)
            ).fetchall():
                owner = _journal_owner(key)
                if (
                    owner is not None
                    and key != self._journal_name
                    and not os.path.exists(os.path.join(self.state_dir, key))
                    and not is_running(owner)
                ):
                    self._conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    def _fold_journal(self, name: str) -> None:
        """Apply another process's journal up to its last complete record, exactly once
        (lock held): the database notes how far each journal was folded, in the same
        transaction. Only a gapless run of records after that is applied."""
        own = not self._conn.in_transaction
        if own:
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            data = _read_journal(os.path.join(self.state_dir, name), _JOURNAL_SIZE)
            following = self._folded_through(name)
            ops = []
            for seq, op in _parse_journal(data):
                if seq <= following:
                    continue
                if seq != following + 1:
                    break  # not contiguous: the owner folds the rest itself
                ops.append(op)
                following = seq
            if ops:
                _apply(self._conn, _statements(ops))
                self._set_folded(name, following)
            if own:
                self._conn.execute("COMMIT")
        except BaseException:
            if own and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    # -- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (nested uses join the outer one)."""
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
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._ended(committed=False)
                raise
            self.commit()

    def begin(self, fold: bool = True) -> None:
        """Open a transaction unless one is open (closed by :meth:`commit`). A deferred
        transaction is taken over: its writes commit with this one's. The journaled writes
        go first into it (``fold`` False: unless they may come later, as for a change that
        touches no job)."""
        with self._lock:
            self._deferred = False
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            if fold:
                self._fold()

    def commit(self, fold: bool = True) -> None:
        """Commit the open transaction, if any, with the journaled writes (``fold`` False:
        without those not in it yet; they are durable already)."""
        with self._lock:
            self._deferred = False
            if self._uncommitted and not self._conn.in_transaction:
                self._ended(committed=False)  # SQLite rolled it back on an error
            if not fold:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
                    self._ended(committed=True)
                return
            if self._conn.in_transaction:
                self._fold()
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    if not self._conn.in_transaction:
                        self._ended(committed=False)
                    raise
                self._ended(committed=True)
            else:
                self._fold()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store's connection."""
        return self._conn.in_transaction

    def defer(self) -> None:
        """Leave the open transaction open, for a later :meth:`commit` (or the next writer)
        to commit: writes that may wait a few milliseconds share one commit."""
        with self._lock:
            self._deferred = self._conn.in_transaction

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> _Rows:
        # Rows are fetched under the lock too: no other thread's statement interleaves.
        with self._lock:
            self._catch_up()
            return _Rows(self._conn.execute(sql, args).fetchall())

    # -- sessions -------------------------------------------------------------------------

    def create_session(self, name: str, now_us: int) -> None:
        """Record a new session; InvalidArgumentException if the name exists."""
        try:
            self._execute("INSERT INTO sessions (name, created_us) VALUES (?, ?)", (name, now_us))
        except sqlite3.IntegrityError:
            raise InvalidArgumentException(
                f"a job session named {name!r} exists already in {self.state_dir}"
            ) from None

    def session_exists(self, name: str) -> bool:
        """Whether a session of this name exists."""
        return (
            self._execute("SELECT 1 FROM sessions WHERE name = ?", (name,)).fetchone() is not None
        )

    def session_names(self) -> list[str]:
        """Names of all sessions, oldest first."""
        rows = self._execute("SELECT name FROM sessions ORDER BY created_us, name").fetchall()
        return [row[0] for row in rows]

    def destroy_session(self, name: str) -> None:
        """Forget a session and all its records; InvalidArgumentException if unknown."""
        with self.transaction():
            if not self.session_exists(name):
                raise InvalidArgumentException(
                    f"there is no job session named {name!r} in {self.state_dir}"
                )
            self._execute("DELETE FROM jobs WHERE session = ?", (name,))
            self._execute("DELETE FROM arrays WHERE session = ?", (name,))
            self._execute("DELETE FROM sessions WHERE name = ?", (name,))

    def allocate_id(self, session: str, count: int = 1) -> int:
        """Reserve the session's next ``count`` job id numbers (never handed out again, to
        any process); returns the first."""
        with self._lock:
            own = not self._conn.in_transaction or self._deferred
            if own:
                self.begin(fold=False)  # ids and jobs' records do not depend on each other
            row = self._conn.execute(
                "UPDATE sessions SET next_id = next_id + ? WHERE name = ? RETURNING next_id - ?",
                (count, session, count),
            ).fetchone()
            if own:
                self.commit(fold=False)
        if row is None:
            raise InvalidArgumentException(f"the job session {session!r} no longer exists")
        return int(row[0])

    def release_ids(self, session: str, first: int, end: int) -> None:
        """Give back the reserved ids ``first`` … ``end - 1`` if nobody reserved any after
        them (so a session's ids stay contiguous when one process uses it)."""
        self._execute(
            "UPDATE sessions SET next_id = ? WHERE name = ? AND next_id = ?", (first, session, end)
        )

    # -- jobs -----------------------------------------------------------------------------

    def insert_jobs(self, records: Sequence[JobRecord]) -> None:
        """Write new job records."""
        rows = [_row(record) for record in records]
        with self._lock:
            if self._pending:
                self._fold()
            if len(rows) == 1:
                self._conn.execute(_JOB_INSERT, rows[0])
            elif rows:
                self._conn.executemany(_JOB_INSERT, rows)

    def insert_array(self, array: ArrayRecord) -> None:
        """Write a new array record."""
        self._execute(
            "INSERT INTO arrays VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dataclasses.astuple(array)
        )

    def update_job(
        self,
        session: str,
        job_id: str,
        expect: tuple[JobState, str] | None = None,
        **columns: Any,
    ) -> bool:
        """Update some columns of a job; with ``expect``, only if its (state, sub-state) is
        that (another process may have changed it). True if the row was updated."""
        sql = _update_sql(tuple(columns), expect is not None)
        args: tuple[Any, ...] = (*columns.values(), session, job_id)
        if expect is not None:
            args = (*args, int(expect[0]), expect[1])
        with self._lock:
            if self._pending:
                self._fold()
            return self._conn.execute(sql, args).rowcount == 1

    def changed_elsewhere(self) -> bool:
        """Whether another connection (another process) committed since the last call."""
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            changed = version != self._data_version
            self._data_version = version
            return bool(changed)

    def job(self, session: str, job_id: str) -> JobRecord | None:
        """One job's record, None if unknown."""
        row = self._execute(
            f"{_JOB_SELECT} WHERE session = ? AND job_id = ?", (session, job_id)
        ).fetchone()
        return None if row is None else _record(row)

    def job_state(self, session: str, job_id: str) -> tuple[JobState, str] | None:
        """One job's (state, sub-state), None if unknown."""
        row = self._execute(
            "SELECT state, sub_state FROM jobs WHERE session = ? AND job_id = ?",
            (session, job_id),
        ).fetchone()
        return None if row is None else (JobState(row[0]), row[1])

    def jobs(self, session: str, where: dict[str, Any] | None = None) -> list[JobRecord]:
        """Records of a session's jobs matching the equality conditions, oldest first."""
        clauses, args = self._where(session, where)
        rows = self._execute(f"{_JOB_SELECT} WHERE {clauses} ORDER BY seq", args).fetchall()
        return [_record(row) for row in rows]

    def job_ids(self, session: str, where: dict[str, Any] | None = None) -> list[str]:
        """Ids of a session's jobs matching the equality conditions, oldest first."""
        clauses, args = self._where(session, where)
        rows = self._execute(f"SELECT job_id FROM jobs WHERE {clauses} ORDER BY seq", args)
        return [row[0] for row in rows.fetchall()]

    @staticmethod
    def _where(session: str, where: dict[str, Any] | None) -> tuple[str, list[Any]]:
        clauses = ["session = ?"]
        args: list[Any] = [session]
        for name, value in (where or {}).items():
            if name not in _JOB_COLUMNS:
                raise KeyError(name)
            clauses.append(f"{name} = ?")
            args.append(value)
        return " AND ".join(clauses), args

    def unfinished_jobs(self, session: str) -> list[JobRecord]:
        """Records of a session's jobs that are not DONE or FAILED, oldest first."""
        rows = self._execute(
            f"{_JOB_SELECT} WHERE session = ? AND state NOT IN (?, ?) ORDER BY seq",
            (session, int(JobState.DONE), int(JobState.FAILED)),
        ).fetchall()
        return [_record(row) for row in rows]

    def delete_job(self, session: str, job_id: str) -> None:
        """Forget a job."""
        self._execute("DELETE FROM jobs WHERE session = ? AND job_id = ?", (session, job_id))

    # -- arrays ---------------------------------------------------------------------------

    def array(self, session: str, array_id: str) -> ArrayRecord | None:
        """One array's record, None if unknown."""
        row = self._execute(
            "SELECT * FROM arrays WHERE session = ? AND array_id = ?", (session, array_id)
        ).fetchone()
        return None if row is None else ArrayRecord(*row)

    def array_task_ids(self, session: str, array_id: str) -> list[str]:
        """Ids of an array's tasks that were not reaped, in index order."""
        rows = self._execute(
            "SELECT job_id FROM jobs WHERE session = ? AND array_id = ? ORDER BY task_index",
            (session, array_id),
        ).fetchall()
        return [row[0] for row in rows]


def dumps(value: Any) -> str:
    """Compact JSON, as stored."""
    return json.dumps(value, separators=(",", ":"))


_TEMPLATE_FIELDS = tuple(field.name for field in dataclasses.fields(JobTemplate))
# Fields whose values are not JSON as they are (times, enums, ResourceLimit keys).
_ENCODED_FIELDS = frozenset(
    {"start_time", "deadline_time", "machine_os", "machine_arch", "resource_limits"}
)


def template_document(template: JobTemplate) -> str:
    """A template as stored: compact JSON of its set fields (``JobTemplate.from_json`` reads
    it back; small rows make every write of the job cheaper)."""
    data = {}
    for name in _TEMPLATE_FIELDS:
        value = getattr(template, name)
        if value is not None:
            if name in _ENCODED_FIELDS:  # rare: let the type encode all of it
                data = template.to_dict()
                return dumps({key: val for key, val in data.items() if val is not None})
            data[name] = value
    return dumps(data)


_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _retire_journals() -> None:
    """At exit, fold what this process journaled and remove its journals."""
    for store in list(_open_stores):
        with contextlib.suppress(Exception):
            if not store._closed:
                store.retire_journal()


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._forked()
    _open_stores.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _journal_owner(name: str) -> ProcessIdentity | None:
    """The process whose journal (or journal note) ``name`` is, None if it is not one."""
    if not (name.startswith(_JOURNAL_PREFIX) and name.endswith(_JOURNAL_SUFFIX)):
        return None
    parts = name[len(_JOURNAL_PREFIX) : -len(_JOURNAL_SUFFIX)].split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return ProcessIdentity(int(parts[0]), int(parts[1]))


_journal_serials = itertools.count(1)


def _journal_name() -> str:
    """A new journal's name: the process (pid and start time), and which of its stores."""
    me = identity_of(os.getpid()) or ProcessIdentity(os.getpid(), 0)
    return f"{_JOURNAL_PREFIX}{me.pid}-{me.start_ticks}-{next(_journal_serials)}{_JOURNAL_SUFFIX}"


def _read_journal(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a journal (b"" if it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    try:
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _parse_journal(data: bytes) -> list[tuple[int, tuple[Any, ...]]]:
    """The complete records of a journal, in order; the records end at the first that is not
    whole (a crash in the middle of writing it) or at the end marker."""
    records = []
    at = 0
    while at + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, at)
        payload = data[at + _FRAME.size : at + _FRAME.size + length]
        if not length or len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            seq, op = marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            break
        records.append((int(seq), op))
        at += _FRAME.size + length
    return records


_COLUMN_AT = {name: at for at, name in enumerate(_JOB_COLUMNS)}


def _statements(ops: list[tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements of journal records, in order. Updates of a job inserted earlier in the
    same records go into its inserted row: one statement per job (its start and its end)."""
    statements: list[tuple[str, list[Any] | tuple[Any, ...]]] = []
    inserted: dict[tuple[str, str], list[Any]] = {}
    for op in ops:
        if op[0] == "i":
            row = list(op[1])
            inserted[(row[0], row[1])] = row
            statements.append((_JOB_INSERT, row))
            continue
        names, args = op[1], op[2]
        target = inserted.get((args[-2], args[-1]))
        if target is None:
            statements.append((_update_sql(tuple(names), False), tuple(args)))
        else:
            for name, value in zip(names, args[:-2], strict=True):  # then session, job id
                target[_COLUMN_AT[name]] = value
    return [(sql, tuple(args)) for sql, args in statements]


def _apply(conn: sqlite3.Connection, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Execute journaled writes in order; one whose job or session is gone is skipped."""
    for sql, group in itertools.groupby(ops, key=operator.itemgetter(0)):
        rows = [args for _, args in group]
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError:  # e.g. the session was destroyed meanwhile
            for args in rows:
                try:
                    conn.execute(sql, args)
                except sqlite3.IntegrityError as error:
                    _log.warning("journal record not applied (%s): %.200r", error, args)
