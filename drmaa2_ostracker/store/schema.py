"""The store's schema, its migrations, and opening a store file safely."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat

from drmaa2.errors import SessionManagementException

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "connect"]

STORE_FILE = "store.sqlite3"
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


def connect(path: str) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) and migrate the store at ``path``;
    SessionManagementException, naming it and what to do, for a file that is not one."""
    if os.path.lexists(path):
        _check_existing_file(path)
    else:
        # Create the file 0600 ourselves (sqlite would honour the umask), never through a
        # symlink planted meanwhile.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
        _check_existing_file(path)
    for companion in (f"{path}-wal", f"{path}-shm"):
        if os.path.lexists(companion):
            _check_existing_file(companion, header=False)
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        # Checked (and made, for a new store) before anything is changed: a file of another
        # program is left exactly as it was.
        _migrate(path, conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as error:
        raise SessionManagementException(
            f"{path} is not a usable drmaa2-ostracker store ({error}); it was left "
            f"untouched: move it away or choose another state directory"
        ) from error
    return conn


def _check_existing_file(path: str, header: bool = True) -> None:
    found = os.lstat(path)
    if not stat.S_ISREG(found.st_mode):
        raise SessionManagementException(
            f"{path} is not a regular file; move it away or choose another state directory"
        )
    if found.st_uid != os.geteuid():
        raise SessionManagementException(
            f"{path} belongs to user id {found.st_uid}, not to this user; move it away or "
            f"choose another state directory"
        )
    if not header:
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise SessionManagementException(
            f"the store {path} is not readable and writable by this user; fix its "
            f"permissions or choose another state directory"
        )
    with open(path, "rb") as existing:
        start = existing.read(16)
    if start and start != b"SQLite format 3\x00":
        raise SessionManagementException(
            f"{path} is not an SQLite database; it was left untouched: move it away "
            f"or choose another state directory"
        )


def _migrate(path: str, conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise SessionManagementException(
                    f"{path} is an SQLite database but not a drmaa2-ostracker store; "
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
                f"{path} has schema version {version}, newer than the {SCHEMA_VERSION} "
                f"this drmaa2-ostracker understands; upgrade drmaa2-ostracker (the store "
                f"was left untouched)"
            )
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            version += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
