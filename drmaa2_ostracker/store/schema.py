"""The store's schema, its migrations, and opening a store file safely.

An existing store is looked at read-only before anything is written to it. A file that is not
a store this code can use — not a database, another program's database, a damaged store (no
readable schema version, a table or a column missing), a newer one, an older one that no
migration leads from — raises SessionManagementException naming it and what to do, and is left
byte for byte as it was: no journal, -wal or -shm file is made for it or left behind. The
store is never moved or replaced, except an empty database, which holds nothing.

A new store is built under a temporary name and put in place whole, so a store is never half
made. A -wal, -shm or -journal file that cannot be used (a directory or FIFO in its place, a
-wal that is no write-ahead log) is set aside with a warning. A resource that runs out while
opening (space, quota, descriptors) raises OutOfResourceException instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
import stat
import struct
import urllib.parse

from drmaa2.errors import SessionManagementException
from drmaa2_ostracker.keeper import files

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "connect"]

STORE_FILE = "store.sqlite3"
#: Version of the schema this code writes; older stores are migrated, newer ones refused.
SCHEMA_VERSION = 2

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
_MIGRATIONS: dict[int, str] = {
    # Arrays whose tasks are written only once touched (see supervisor.lazy): the places of
    # their tasks in the session's order, the next index to start, when they were
    # submitted, whether their untouched tasks are held.
    1: """
ALTER TABLE arrays ADD COLUMN first_seq INTEGER;
ALTER TABLE arrays ADD COLUMN next_index INTEGER;
ALTER TABLE arrays ADD COLUMN submission_us INTEGER;
ALTER TABLE arrays ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
""",
}

#: The schema of a new store: version 1, then every migration.
_SCHEMA = _SCHEMA_V1 + "".join(_MIGRATIONS[version] for version in sorted(_MIGRATIONS))


#: The files SQLite keeps beside a database.
_COMPANIONS = ("-wal", "-shm", "-journal")
#: Where a new store is built before it is put in place.
_BUILDING = ".new"
#: What a refused store's message ends with.
_LEFT = (
    "it was left untouched: move it away (keep it if it holds jobs you need) or choose "
    "another state directory"
)
#: How a write-ahead log starts: its magic (for either byte order of its checksums), its
#: format version.
_WAL_STARTS = tuple(struct.pack(">II", magic, 3007000) for magic in (0x377F0682, 0x377F0683))


def connect(path: str) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) and migrate the store at ``path``;
    SessionManagementException, naming it and what to do, for a file that is not one;
    OutOfResourceException when space, quota or descriptors ran out."""
    try:
        _tidy_companions(path)
        if not os.path.lexists(path):
            _create(path, replace=False)
        _check_existing_file(path)
        if _inspect(path) is None:
            _create(path, replace=True)
        _check_wal(path)
        return _open(path)
    except (OSError, sqlite3.Error) as error:
        fault = files.resource_fault(path, error)
        if fault is not None:
            raise fault from error
        if isinstance(error, OSError):
            raise SessionManagementException(
                f"cannot open the store {path}: {error.strerror or error}; check the state "
                f"directory or choose another one"
            ) from error
        raise SessionManagementException(
            f"{path} is not a usable drmaa2-ostracker store ({error}); {_LEFT}"
        ) from error


def _check_existing_file(path: str, header: bool = True) -> None:
    found = os.lstat(path)
    if not stat.S_ISREG(found.st_mode):
        raise SessionManagementException(
            f"{path} is a {files.kind_of(found.st_mode)}, not a regular file; move it away "
            f"or choose another state directory"
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
        raise SessionManagementException(f"{path} is not an SQLite database; {_LEFT}")


def _tidy_companions(path: str) -> None:
    """Set aside a companion file that is no file (it holds nothing of the store, and SQLite
    would fail or block on it); refuse one of another user, which may hold the store's data."""
    for suffix in _COMPANIONS:
        companion = path + suffix
        try:
            found = os.lstat(companion)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode):
            raise SessionManagementException(
                f"{companion} is a symbolic link; remove it (its target is not touched)"
            )
        if not stat.S_ISREG(found.st_mode):
            files.set_aside(companion, f"is a {files.kind_of(found.st_mode)}, not a file")
        else:
            _check_existing_file(companion, header=False)


def _check_wal(path: str) -> None:
    """Set aside a -wal of the store that is no write-ahead log (SQLite would ignore it and
    then overwrite it: kept, it can be looked at)."""
    with contextlib.suppress(FileNotFoundError), open(path + "-wal", "rb") as wal:
        start = wal.read(8)
        if start and start not in _WAL_STARTS:
            files.set_aside(path + "-wal", "is not an SQLite write-ahead log")


# -- looking at a store, read-only --------------------------------------------------------


def _inspect(path: str) -> int | None:
    """The schema version of the store at ``path``, None for an empty database;
    SessionManagementException for one this code cannot use. Read-only: a database whose
    log or journal holds nothing is read as it lies on disk (``immutable``), so that SQLite
    makes no -wal and -shm for it; a companion made by the look is removed if it fails."""
    before = {suffix for suffix in _COMPANIONS if os.path.lexists(path + suffix)}
    pending = any(_size(path + suffix) for suffix in ("-wal", "-journal"))
    mode = "mode=ro" if pending else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(path)}?{mode}"
    usable = False
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
        try:
            version = _version_of(path, conn)
            if version == SCHEMA_VERSION:
                _check_tables(path, conn, version)
        finally:
            conn.close()
        usable = True
        return version
    finally:
        if not usable:
            for suffix in set(_COMPANIONS) - before:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _version_of(path: str, conn: sqlite3.Connection) -> int | None:
    """The schema version recorded in the store (None: an empty database), checked to be
    one this code can use, or migrate from."""
    tables = _tables(conn)
    if not tables and not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        return None
    if "meta" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise SessionManagementException(
            f"{path} is an SQLite database but not a drmaa2-ostracker store, or a damaged one "
            f"(it has no meta "
            f"table; its tables: {shown or 'none'}); {_LEFT}"
        )
    _check_tables(path, conn, None, only=("meta",))
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise SessionManagementException(
            f"{path} is a damaged drmaa2-ostracker store: it records no schema version (its "
            f"meta table has no schema_version row); {_LEFT}"
        )
    value = row[0]
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,9}", value):
        raise SessionManagementException(
            f"{path} is a damaged drmaa2-ostracker store: its schema version {value!r} is not "
            f"a number; {_LEFT}"
        )
    version = int(value)
    if version > SCHEMA_VERSION:
        raise SessionManagementException(
            f"{path} has schema version {version}, newer than the {SCHEMA_VERSION} "
            f"this drmaa2-ostracker understands; upgrade drmaa2-ostracker (the store "
            f"was left untouched)"
        )
    if not all(step in _MIGRATIONS for step in range(version, SCHEMA_VERSION)):
        raise SessionManagementException(
            f"{path} has schema version {version}, which no migration of this "
            f"drmaa2-ostracker (schema version {SCHEMA_VERSION}) leads from: it is damaged or "
            f"was written by another program; {_LEFT}"
        )
    return version


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@functools.cache
def _expected() -> dict[str, dict[str, str]]:
    """The columns (name: declared type) of each table of the current schema."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        return {table: _columns(conn, table) for table in sorted(_tables(conn))}
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """The columns of ``table``: name → declared type (upper case)."""
    # The table names are the schema's own, never input: safe to put into the statement.
    return {str(row[1]): str(row[2]).upper() for row in conn.execute(f"PRAGMA table_info({table})")}


def _check_tables(
    path: str, conn: sqlite3.Connection, version: int | None, only: tuple[str, ...] = ()
) -> None:
    """SessionManagementException naming what is missing if a table or column of the
    current schema is not in the store (or has another type)."""
    present = _tables(conn)
    missing: list[str] = []
    for table, expected in _expected().items():
        if only and table not in only:
            continue
        if table not in present:
            missing.append(f"table {table}")
            continue
        found = _columns(conn, table)
        missing.extend(
            f"column {table}.{name} {kind}"
            for name, kind in expected.items()
            if found.get(name) != kind
        )
    if missing:
        of = f" (schema version {version})" if version is not None else ""
        raise SessionManagementException(
            f"{path} is a damaged drmaa2-ostracker store{of}: it lacks "
            f"{', '.join(missing)}; {_LEFT}"
        )


# -- making and opening a store ----------------------------------------------------------


def _create(path: str, replace: bool) -> None:
    """Build a new store beside ``path`` and put it in place whole (over an empty database
    if ``replace``; its companions, holding nothing, are set aside first)."""
    building = path + _BUILDING
    for leftover in (building, *(building + suffix for suffix in _COMPANIONS)):
        # What a creation cut short left behind: never anyone's data.
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(leftover).st_mode):
                os.unlink(leftover)
            else:
                files.set_aside(leftover, "is not a file")
    # Created 0600 here (sqlite would honour the umask), never through a symlink.
    os.close(os.open(building, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    try:
        _build(building)
    except BaseException:
        for made in (building, *(building + suffix for suffix in _COMPANIONS)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(made)
        raise
    if replace:
        for suffix in _COMPANIONS:
            if os.path.lexists(path + suffix):
                files.set_aside(path + suffix, "belongs to an empty database, replaced by a store")
        os.replace(building, path)
    else:
        # Only a keeper makes a store, under its lock: the name is free.
        os.link(building, path)
        os.unlink(building)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _build(building: str) -> None:
    """Write the schema into the new file ``building``, WAL mode, on disk."""
    conn = sqlite3.connect(building, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    fd = os.open(building, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        _migrate(path, conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(path: str, conn: sqlite3.Connection) -> None:
    """Bring a store looked at by :func:`_inspect` to the current schema, all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version_of(path, conn)
        if version is None:
            raise SessionManagementException(f"{path} was emptied while it was opened")
        if version < SCHEMA_VERSION:
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            _check_tables(path, conn, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
