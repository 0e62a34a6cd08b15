"""Looking at a store file before it is used: read-only, and leaving nothing behind.

A file that is not a store this code can use — not a database, another program's database, a
damaged store (no readable schema version, a table or a column missing), a newer one, an older
one that no migration leads from — raises SessionManagementException naming it and what to do,
and is left byte for byte as it was. Companion files (-wal, -shm, -journal) that are no files
are set aside; one of another user is refused.
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
from drmaa2_ostracker.store.versions import MIGRATIONS, SCHEMA, SCHEMA_VERSION

__all__ = [
    "COMPANIONS",
    "LEFT",
    "check_existing_file",
    "check_tables",
    "check_wal",
    "inspect",
    "tidy_companions",
    "version_of",
]

#: The files SQLite keeps beside a database.
COMPANIONS = ("-wal", "-shm", "-journal")
#: What a refused store's message ends with.
LEFT = (
    "it was left untouched: move it away (keep it if it holds jobs you need) or choose "
    "another state directory"
)
#: How a write-ahead log starts: its magic (for either byte order of its checksums), its
#: format version.
_WAL_STARTS = tuple(struct.pack(">II", magic, 3007000) for magic in (0x377F0682, 0x377F0683))


def check_existing_file(path: str, header: bool = True) -> None:
    """SessionManagementException unless ``path`` is a regular file of this user (and, with
    ``header``, readable, writable and an SQLite database or empty)."""
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
        raise SessionManagementException(f"{path} is not an SQLite database; {LEFT}")


def tidy_companions(path: str) -> None:
    """Set aside a companion file that is no file (it holds nothing of the store, and SQLite
    would fail or block on it); refuse one of another user, which may hold the store's data."""
    for suffix in COMPANIONS:
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
            check_existing_file(companion, header=False)


def check_wal(path: str) -> None:
    """Set aside a -wal of the store that is no write-ahead log (SQLite would ignore it and
    then overwrite it: kept, it can be looked at)."""
    with contextlib.suppress(FileNotFoundError), open(path + "-wal", "rb") as wal:
        start = wal.read(8)
        if start and start not in _WAL_STARTS:
            files.set_aside(path + "-wal", "is not an SQLite write-ahead log")


# -- looking at a store, read-only --------------------------------------------------------


def inspect(path: str) -> int | None:
    """The schema version of the store at ``path``, None for an empty database;
    SessionManagementException for one this code cannot use. Read-only: a database whose
    log or journal holds nothing is read as it lies on disk (``immutable``), so that SQLite
    makes no -wal and -shm for it; a companion made by the look is removed if it fails."""
    before = {suffix for suffix in COMPANIONS if os.path.lexists(path + suffix)}
    pending = any(_size(path + suffix) for suffix in ("-wal", "-journal"))
    mode = "mode=ro" if pending else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(path)}?{mode}"
    usable = False
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
        try:
            version = version_of(path, conn)
            if version == SCHEMA_VERSION:
                check_tables(path, conn, version)
        finally:
            conn.close()
        usable = True
        return version
    finally:
        if not usable:
            for suffix in set(COMPANIONS) - before:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def version_of(path: str, conn: sqlite3.Connection) -> int | None:
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
            f"table; its tables: {shown or 'none'}); {LEFT}"
        )
    check_tables(path, conn, None, only=("meta",))
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise SessionManagementException(
            f"{path} is a damaged drmaa2-ostracker store: it records no schema version (its "
            f"meta table has no schema_version row); {LEFT}"
        )
    value = row[0]
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,9}", value):
        raise SessionManagementException(
            f"{path} is a damaged drmaa2-ostracker store: its schema version {value!r} is not "
            f"a number; {LEFT}"
        )
    version = int(value)
    if version > SCHEMA_VERSION:
        raise SessionManagementException(
            f"{path} has schema version {version}, newer than the {SCHEMA_VERSION} "
            f"this drmaa2-ostracker understands; upgrade drmaa2-ostracker (the store "
            f"was left untouched)"
        )
    if not all(step in MIGRATIONS for step in range(version, SCHEMA_VERSION)):
        raise SessionManagementException(
            f"{path} has schema version {version}, which no migration of this "
            f"drmaa2-ostracker (schema version {SCHEMA_VERSION}) leads from: it is damaged or "
            f"was written by another program; {LEFT}"
        )
    return version


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@functools.cache
def _expected() -> dict[str, dict[str, str]]:
    """The columns (name: declared type) of each table of the current schema."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        return {table: _columns(conn, table) for table in sorted(_tables(conn))}
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """The columns of ``table``: name → declared type (upper case)."""
    # The table names are the schema's own, never input: safe to put into the statement.
    return {str(row[1]): str(row[2]).upper() for row in conn.execute(f"PRAGMA table_info({table})")}


def check_tables(
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
            f"{path} is a damaged drmaa2-ostracker store{of}: it lacks {', '.join(missing)}; {LEFT}"
        )
