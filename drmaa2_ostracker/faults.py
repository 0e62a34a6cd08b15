"""What ran out, in words: the limits of the machine and the free space a failed call ran
into, told apart from damaged files and bad input.

A resource that ran out is never the job's or the user's fault: it is reported as
:class:`~drmaa2.errors.OutOfResourceException` naming the limit and its value, or the path and
the space it needs, and what waits for it (a queued task, a state not yet written) goes on once
the resource is there again.

The store's room: a submission is accepted only while the store's file system has
:data:`RESERVE` bytes free, so that a job that starts can always have its start and its end
written. When the space runs low anyway (another program filled the disk), the write-ahead log
is first cut back to what it holds; a write that still fails is kept in the keeper's memory
and retried (see the supervisor's ``unwritten`` records).
"""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
import time

from drmaa2.errors import Drmaa2Exception, InternalException, OutOfResourceException

__all__ = [
    "FD_HEADROOM",
    "OPEN_SPACE",
    "PER_BYTE",
    "PROCESS_HEADROOM",
    "RESERVE",
    "free_bytes",
    "headroom",
    "is_out_of_space",
    "limit_reached",
    "limit_text",
    "no_space",
    "resource_fault",
    "storage_error",
]

#: Descriptors this process must have left under its RLIMIT_NOFILE, and the RLIMIT_NPROC a
#: user other than root must have at least, for :func:`headroom`: a burst of submissions sent
#: ahead is never refused for these limits (each running job holds a descriptor of the keeper,
#: and is a process of the user).
FD_HEADROOM = 1024
PROCESS_HEADROOM = 16384
#: Seconds an answer of :func:`headroom` is used again.
_HEADROOM_TTL = 0.05
_headroom: tuple[float, bool] = (0.0, False)

#: The free space opening the store may take (its -wal and -shm files, a new store's pages).
OPEN_SPACE = 1 << 20

#: The free space a submission needs on the store's file system (bytes): room for the
#: start and end of many jobs, and for the write-ahead log to grow until its checkpoint.
RESERVE = 256 * 1024
#: What a submission needs on top of :data:`RESERVE`, per byte of what it writes (its
#: template and launch document): a row is written to the write-ahead log and then to the
#: database, a page at a time.
PER_BYTE = 4

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


def no_space(path: str, directory: str, what: str, needed: int = RESERVE) -> OutOfResourceException:
    """The error for a store that cannot be written for want of space (``needed`` bytes
    free)."""
    try:
        free = f"{free_bytes(directory)} bytes free"
    except OSError as error:
        free = f"free space unknown: {error.strerror}"
    return OutOfResourceException(
        f"no space left for the store {path} ({free} on its file system, at least {needed} "
        f"needed, or the disk quota is used up): {what}; free some space and try again"
    )


def storage_error(error: BaseException, path: str, directory: str) -> Drmaa2Exception:
    """The DRMAA2 error for a store write that failed: out of space, or internal."""
    if is_out_of_space(error, directory):
        return no_space(path, directory, "nothing was changed")
    return InternalException(f"writing the store {path} failed: {error}")


def limit_reached(error: OSError) -> str | None:
    """The limit a failed start ran into, named with its value; None if it was no limit."""
    if error.errno == errno.EAGAIN:
        soft = limit_text(resource.getrlimit(resource.RLIMIT_NPROC)[0])
        return (
            f"no process can be created: the limit on processes or threads is reached "
            f"(RLIMIT_NPROC = {soft} for the keeper, from the process that started it; or "
            f"the system's kernel.threads-max or kernel.pid_max)"
        )
    if error.errno == errno.EMFILE:
        soft = limit_text(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return f"the keeper has too many open files (RLIMIT_NOFILE = {soft})"
    if error.errno == errno.ENFILE:
        return "the system has too many open files (fs.file-max)"
    if error.errno == errno.ENOMEM:
        return "out of memory"
    return None


def limit_text(value: int) -> str:
    """A resource limit's value as a user reads it ("unlimited" for RLIM_INFINITY)."""
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def resource_fault(
    path: str, error: BaseException, doing: str = ""
) -> OutOfResourceException | None:
    """The :class:`~drmaa2.errors.OutOfResourceException` that ``error``, met while opening
    or writing ``path`` (or ``doing`` it: "start the keeper of"), stands for if a resource ran
    out (space, quota, open files) rather than the file being unusable; else None. SQLite's
    "unable to open database file" and "disk I/O error" do not say why: then the descriptors
    and the free space are looked at."""
    number = getattr(error, "errno", None)
    text = str(error).lower()
    if number in (errno.ENOSPC, errno.EDQUOT) or "database or disk is full" in text:
        return _no_space(path, doing or "write", quota=number == errno.EDQUOT)
    if number in (errno.EMFILE, errno.ENFILE):
        return _no_descriptors(path, doing or "open", number)
    if "unable to open database file" in text or "disk i/o error" in text:
        number = _descriptors_exhausted()
        if number is not None:
            return _no_descriptors(path, doing or "open", number)
        if _free_space(path) < OPEN_SPACE:
            return _no_space(path, doing or "write", quota=False)
    return None


def _free_space(path: str) -> int:
    try:
        return free_bytes(os.path.dirname(path) or ".")
    except OSError:
        return OPEN_SPACE


def _no_space(path: str, doing: str, quota: bool) -> OutOfResourceException:
    free = _free_space(path)
    what = "the disk quota of this user is exhausted" if quota else "its file system is full"
    return OutOfResourceException(
        f"cannot {doing} {path}: {what} ({free} bytes free; the state directory needs at least "
        f"{OPEN_SPACE} bytes, 1 MiB, free): free some space and try again"
    )


def _descriptors_exhausted() -> int | None:
    """EMFILE or ENFILE if a few descriptors (what SQLite needs to open a store) cannot be
    had now, else None."""
    opened: list[int] = []
    try:
        for _ in range(4):
            opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE):
            return error.errno
    finally:
        for fd in opened:
            os.close(fd)
    return None


def _no_descriptors(path: str, doing: str, number: int) -> OutOfResourceException:
    if number == errno.ENFILE:
        return OutOfResourceException(
            f"cannot {doing} {path}: the system has run out of open files (ENFILE, limit "
            f"fs.file-max = {_file_max()}); close files elsewhere or raise the limit and try "
            f"again"
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OutOfResourceException(
        f"cannot {doing} {path}: the process reached its limit of open files (RLIMIT_NOFILE = "
        f"{soft}); raise it (ulimit -n, up to the hard limit {hard}) or close files, and try "
        f"again"
    )


def _file_max() -> str:
    try:
        with open("/proc/sys/fs/file-max") as found:
            return found.read().strip()
    except OSError:
        return "unknown"


def headroom() -> bool:
    """Whether this process is far from its descriptor and process limits (looked at every
    50 ms at most): the keeper then lets a client send its next submissions ahead, since
    none of them will be refused for these limits (see :mod:`drmaa2_ostracker.keeper.ahead`).
    A user other than root whose process limit is below :data:`PROCESS_HEADROOM` never does:
    the user's other processes count against it too."""
    global _headroom
    now = time.monotonic()
    until, answer = _headroom
    if now < until:
        return answer
    answer = _far_from_limits()
    _headroom = (now + _HEADROOM_TTL, answer)
    return answer


def _far_from_limits() -> bool:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        try:
            used = len(os.listdir("/proc/self/fd"))
        except OSError:
            return False
        if soft - used < FD_HEADROOM:
            return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
    return soft == resource.RLIM_INFINITY or os.geteuid() == 0 or soft >= PROCESS_HEADROOM
