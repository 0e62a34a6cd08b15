"""Opening a store file safely: making a new one, migrating an older one.

The tables, version by version, are in :mod:`.versions`. An existing store is looked at
read-only (:mod:`.inspection`) before anything is written to it. A file that is not
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
import os
import sqlite3
import stat

from drmaa2.errors import SessionManagementException
from drmaa2_ostracker import faults
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.store.inspection import (
    COMPANIONS,
    LEFT,
    check_existing_file,
    check_tables,
    check_wal,
    inspect,
    tidy_companions,
    version_of,
)
from drmaa2_ostracker.store.versions import MIGRATIONS, SCHEMA, SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "connect"]

#: The store's file name in the state directory.
STORE_FILE = "store.sqlite3"

#: Where a new store is built before it is put in place.
_BUILDING = ".new"


def connect(path: str) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) and migrate the store at ``path``;
    SessionManagementException, naming it and what to do, for a file that is not one;
    OutOfResourceException when space, quota or descriptors ran out."""
    try:
        tidy_companions(path)
        if not os.path.lexists(path):
            _create(path, replace=False)
        check_existing_file(path)
        if inspect(path) is None:
            _create(path, replace=True)
        check_wal(path)
        return _open(path)
    except (OSError, sqlite3.Error) as error:
        fault = faults.resource_fault(path, error)
        if fault is not None:
            raise fault from error
        if isinstance(error, OSError):
            raise SessionManagementException(
                f"cannot open the store {path}: {error.strerror or error}; check the state "
                f"directory or choose another one"
            ) from error
        raise SessionManagementException(
            f"{path} is not a usable drmaa2-ostracker store ({error}); {LEFT}"
        ) from error


# -- making and opening a store ----------------------------------------------------------


def _create(path: str, replace: bool) -> None:
    """Build a new store beside ``path`` and put it in place whole (over an empty database
    if ``replace``; its companions, holding nothing, are set aside first)."""
    building = path + _BUILDING
    for leftover in (building, *(building + suffix for suffix in COMPANIONS)):
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
        for made in (building, *(building + suffix for suffix in COMPANIONS)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(made)
        raise
    if replace:
        for suffix in COMPANIONS:
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
        for statement in SCHEMA.split(";"):
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
    """Bring a store looked at by :func:`inspect` to the current schema, all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = version_of(path, conn)
        if version is None:
            raise SessionManagementException(f"{path} was emptied while it was opened")
        if version < SCHEMA_VERSION:
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            check_tables(path, conn, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
