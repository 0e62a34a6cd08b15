"""The submitting process's own streams, opened again by a keeper that did not receive them.

"/dev/stdin", "/dev/stdout" and "/dev/stderr" in a template mean the submitting process's own
streams: the client sends their descriptors with the job, and the keeper keeps them until the
job starts. A keeper that is killed (or stopped by SIGTERM) takes them with it; the next
keeper, starting a queued task or a held job of that submission, opens the stream again from
its *origin*, recorded with the job's launch document:

- from the submitting process, while that very process (pid and start time) still has the
  same file as that stream: its very descriptor (``pidfd_getfd``, Linux 5.6: the same open
  file, its offset shared, a socket too), else the file opened again through
  ``/proc/PID/fd/N`` (a pipe, a terminal, a file: where ptrace rules keep the first);
- else, for a regular file, by its path, as long as the path is still that file (device,
  inode and owner);
- else the job cannot start (:class:`LaunchError`, naming the field and the stream): it never
  gets the keeper's own streams in their place.

Output is appended to a regular file, after what it holds, as the offset the job shared with
its submitter would have had it. A socket cannot be opened again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
import sys
from typing import Any

from drmaa2_ostracker.process.identity import ProcessIdentity, identity_of, is_running

__all__ = ["OWN_FDS", "origin_of", "reopen"]

#: The descriptor each own-stream path stands for in the submitting process.
OWN_FDS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_OPEN = os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def origin_of(name: str, fd: int, submitter: int | None) -> dict[str, Any]:
    """What finds the stream ``name`` (``/dev/stdout`` …), received as ``fd`` from the
    process ``submitter`` (None: unknown), again: plain data for the launch document."""
    info = os.fstat(fd)
    what = ""
    with contextlib.suppress(OSError):
        what = os.readlink(f"/proc/self/fd/{fd}")
    origin: dict[str, Any] = {"dev": info.st_dev, "ino": info.st_ino, "what": what}
    if stat.S_ISREG(info.st_mode) and what.startswith("/"):
        origin["path"], origin["uid"] = what, info.st_uid
    identity = None if not submitter else identity_of(submitter)
    if identity is not None:
        origin["pid"], origin["ticks"] = identity.pid, identity.start_ticks
    return origin


def _same_file(fd: int, origin: dict[str, Any]) -> bool:
    """Whether ``fd`` is the file of ``origin``: its device and inode, and for a regular file
    its owner too (an inode number freed is given again at once: a file another user made
    in its place, with the same number, is not taken for it)."""
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) != (origin.get("dev"), origin.get("ino")):
        return False
    return "uid" not in origin or info.st_uid == origin["uid"]


#: pidfd_getfd(2): the same number on every architecture (the kernel's unified table).
_PIDFD_GETFD = 438


def _taken_from(identity: ProcessIdentity, target: int, origin: dict[str, Any]) -> int | None:
    """A duplicate of the descriptor ``target`` of the process ``identity`` if it is still
    the file of ``origin`` (close-on-exec; its flags and offset are the process's); None
    where it cannot be had (an older kernel, ptrace rules, the process gone)."""
    if not sys.platform.startswith("linux") or sys.maxsize < 2**63 - 1:
        return None
    try:
        pidfd = os.pidfd_open(identity.pid)
    except (OSError, AttributeError):
        return None
    try:
        if not is_running(identity):  # (the pidfd holds the pid: no other process has it)
            return None
        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.syscall(_PIDFD_GETFD, pidfd, target, 0))
    except (OSError, AttributeError):
        return None
    finally:
        os.close(pidfd)
    if fd < 0:
        return None
    if _same_file(fd, origin):
        return fd
    os.close(fd)
    return None


def _open_checked(path: str, flags: int, origin: dict[str, Any]) -> int | None:
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    if _same_file(fd, origin):
        return fd
    os.close(fd)
    return None


def reopen(name: str, origin: dict[str, Any] | None, write: bool) -> int | str:
    """Open the stream ``name`` again from its ``origin`` (see the module docstring): a
    blocking descriptor, or why it cannot be had (for the job's annotation)."""
    stream = name.rpartition("/")[2]
    if origin is None:
        return (
            f"the submitting process's {stream} was held for the job by a keeper that was "
            f"stopped, and nothing was recorded to open it again"
        )
    flags = _OPEN | (os.O_WRONLY if write else os.O_RDONLY)
    if write and "path" in origin:  # a regular file: after what it holds, never over it
        flags |= os.O_APPEND
    fd = None
    pid, ticks = origin.get("pid"), origin.get("ticks")
    identity = (
        ProcessIdentity(pid, ticks) if isinstance(pid, int) and isinstance(ticks, int) else None
    )
    if identity is not None:
        taken = _taken_from(identity, OWN_FDS[name], origin)
        if taken is not None:
            return taken  # (its blocking mode is the submitter's: left as it is)
        if is_running(identity):
            fd = _open_checked(f"/proc/{pid}/fd/{OWN_FDS[name]}", flags, origin)
    path = origin.get("path")
    if fd is None and isinstance(path, str):
        fd = _open_checked(path, flags | os.O_NOFOLLOW, origin)
    if fd is None:
        what = origin.get("what") or "?"
        if what.startswith("socket:"):
            why = "a socket cannot be opened again, and the submitter's own was not had"
        elif "path" in origin:
            why = "its file was moved or removed since"
        else:
            why = "that process has exited or no longer has it"
        return (
            f"the submitting process's {stream} ({what}) was held for the job by a keeper "
            f"that was stopped, and can no longer be opened: {why}"
        )
    os.set_blocking(fd, True)
    return fd
