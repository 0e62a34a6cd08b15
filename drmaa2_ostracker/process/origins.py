"""The submitting process's own streams, opened again by a keeper that did not receive them.

"/dev/stdin", "/dev/stdout" and "/dev/stderr" in a template mean the submitting process's own
streams: the client sends their descriptors with the job, and the keeper keeps them until the
job starts. A keeper that is killed (or stopped by SIGTERM) takes them with it; the next
keeper, starting a queued task or a held job of that submission, opens the stream again from
its *origin*, recorded with the job's launch document:

- through the submitting process, ``/proc/PID/fd/N``, while that very process (pid and start
  time) still has the same file open as that stream: a pipe, a terminal or a file;
- else, for a regular file, by its path, as long as the path is still that file (device and
  inode); output is appended to it;
- else the job cannot start (:class:`LaunchError`, naming the field and the stream): it never
  gets the keeper's own streams in their place.
"""

from __future__ import annotations

import contextlib
import os
import stat
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
        origin["path"] = what
    identity = None if not submitter else identity_of(submitter)
    if identity is not None:
        origin["pid"], origin["ticks"] = identity.pid, identity.start_ticks
    return origin


def _same_file(fd: int, origin: dict[str, Any]) -> bool:
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino) == (origin.get("dev"), origin.get("ino"))


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
    fd = None
    pid, ticks = origin.get("pid"), origin.get("ticks")
    identity = (
        ProcessIdentity(pid, ticks) if isinstance(pid, int) and isinstance(ticks, int) else None
    )
    if identity is not None and is_running(identity):
        fd = _open_checked(f"/proc/{pid}/fd/{OWN_FDS[name]}", flags, origin)
    path = origin.get("path")
    if fd is None and isinstance(path, str):
        fd = _open_checked(path, flags | os.O_NOFOLLOW | (os.O_APPEND if write else 0), origin)
    if fd is None:
        what = origin.get("what") or "?"
        return (
            f"the submitting process's {stream} ({what}) was held for the job by a keeper "
            f"that was stopped, and can no longer be opened: "
            + (
                "that process has exited or no longer has it"
                if "path" not in origin
                else "its file was moved or removed since"
            )
        )
    os.set_blocking(fd, True)
    return fd
