"""Room on the store's file system: refusing work before the disk is full, and telling a
full disk (or quota) from a damaged store.

A submission is accepted only while the store's file system has :data:`RESERVE` bytes free,
so that a job that starts can always have its start and its end written. When the space runs
low anyway (another program filled the disk), the write-ahead log is first cut back to what
it holds; a write that still fails is kept in the keeper's memory and retried (see the
supervisor's ``unwritten`` records).
"""

from __future__ import annotations

import errno
import os
import sqlite3

from drmaa2.errors import Drmaa2Exception, InternalException, OutOfResourceException

__all__ = ["RESERVE", "free_bytes", "is_out_of_space", "no_space", "storage_error"]

#: The free space a submission needs on the store's file system (bytes): room for the
#: start and end of many jobs, and for the write-ahead log to grow until its checkpoint.
RESERVE = 256 * 1024

_SQLITE_FULL = 13
_SQLITE_IOERR = 10


def free_bytes(directory: str) -> int:
    """Bytes an unprivileged writer may still use on the file system of ``directory``."""
    found = os.statvfs(directory)
    return found.f_bavail * found.f_frsize


def is_out_of_space(error: BaseException, directory: str) -> bool:
    """Whether a failed write failed for want of space (a full disk, or the quota)."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if not isinstance(error, sqlite3.Error):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    if code == _SQLITE_FULL:
        return True
    # An I/O error while writing: out of space if the file system says so.
    if code is not None and code & 0xFF == _SQLITE_IOERR:
        try:
            return free_bytes(directory) < RESERVE
        except OSError:
            return False
    return False


def no_space(path: str, directory: str, what: str) -> OutOfResourceException:
    """The error for a store that cannot be written for want of space."""
    try:
        free = f"{free_bytes(directory)} bytes free"
    except OSError as error:
        free = f"free space unknown: {error.strerror}"
    return OutOfResourceException(
        f"no space left for the store {path} ({free} on its file system, at least {RESERVE} "
        f"needed, or the disk quota is used up): {what}; free some space and try again"
    )


def storage_error(error: BaseException, path: str, directory: str) -> Drmaa2Exception:
    """The DRMAA2 error for a store write that failed: out of space, or internal."""
    if is_out_of_space(error, directory):
        return no_space(path, directory, "nothing was changed")
    return InternalException(f"writing the store {path} failed: {error}")
