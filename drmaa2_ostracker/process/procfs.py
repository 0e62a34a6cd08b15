"""Reading a process's fixed-format files in /proc directly: its ``stat`` line, owner and
memory (see :mod:`drmaa2_ostracker.monitoring_session` for why not through psutil).

Each reader returns None (or nothing) for what the user may not read, and raises
``psutil.NoSuchProcess`` when the process has ended.
"""

from __future__ import annotations

import datetime
import os

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

from drmaa2.enums import JobState
from drmaa2_ostracker import extension
from drmaa2_ostracker.host import user_name

__all__ = [
    "CLOCK_TICKS",
    "COMM_LENGTH",
    "STATES",
    "UNKNOWN_STATE",
    "UTC",
    "Stat",
    "read_memory",
    "read_owner",
    "read_proc",
    "read_stat",
]

#: Clock ticks per second (the unit of /proc/<pid>/stat times).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# psutil's memory_info as JSON: the same text json.dumps writes, several times faster.
_MEMORY_JSON = (
    '{"rss": %d, "vms": %d, "shared": %d, "text": %d, "lib": %d, "data": %d, "dirty": %d}'
)
#: UTC, for times made from /proc values.
UTC = datetime.timezone.utc

_RUNNING, _SUSPENDED = JobState.RUNNING, JobState.SUSPENDED
#: Process state letter of /proc/<pid>/stat → (job state, sub-state); the texts are psutil's.
#: "X"/"x" (dead) are absent on purpose: such a process is gone.
STATES: dict[bytes, tuple[JobState, str]] = {
    b"R": (_RUNNING, "running"),
    b"S": (_RUNNING, "sleeping"),
    b"D": (_RUNNING, "disk-sleep"),
    b"I": (_RUNNING, "idle"),
    b"W": (_RUNNING, "waking"),
    b"K": (_RUNNING, "wake-kill"),
    b"P": (_RUNNING, "parked"),
    b"Z": (_RUNNING, "zombie"),
    b"T": (_SUSPENDED, "stopped"),
    b"t": (_SUSPENDED, "tracing-stop"),
}
#: The state of a process whose state letter is not known.
UNKNOWN_STATE = (_RUNNING, "?")

#: The kernel truncates process names to 15 characters (TASK_COMM_LEN - 1).
COMM_LENGTH = 15


class Stat:
    """What one read of ``/proc/<pid>/stat`` says."""

    __slots__ = ("cpu", "name", "start", "state")

    def __init__(self, name: str, state: bytes, cpu: float, start: int) -> None:
        self.name = name
        self.state = state
        #: User + system CPU seconds.
        self.cpu = cpu
        #: Start time in clock ticks since boot: with the pid, the process's identity.
        self.start = start


def read_proc(pid: int, name: str) -> bytes | None:
    """The start of ``/proc/<pid>/<name>`` (4 KiB, enough for every field read from it);
    None if the user may not read it.

    Raises psutil.NoSuchProcess when the process has ended.
    """
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
        try:
            return os.read(fd, 4096)
        finally:
            os.close(fd)
    except PermissionError:
        return None
    except OSError:
        raise psutil.NoSuchProcess(pid) from None


def read_stat(pid: int) -> Stat | None:
    """Read a process's stat line; None if the user may not read it.

    Raises psutil.NoSuchProcess when the process has ended.
    """
    data = read_proc(pid, "stat")
    if data is None:
        return None
    # The name sits between the first "(" and the last ")" and may itself hold either.
    close = data.rfind(b")")
    fields = data[close + 2 :].split()
    if len(fields) < 20 or fields[0] in (b"X", b"x"):
        raise psutil.NoSuchProcess(pid)
    return Stat(
        name=os.fsdecode(data[data.find(b"(") + 1 : close]),
        state=fields[0],
        cpu=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        start=int(fields[19]),
    )


def read_owner(pid: int) -> str | None:
    """The user name of the process's real uid; None if unreadable.

    Raises psutil.NoSuchProcess when the process has ended.
    """
    status = read_proc(pid, "status")
    if status is None:
        return None
    # "Uid:" lists the real, effective, saved and filesystem uids; the owner is the real one.
    start = status.find(b"\nUid:\t") + len(b"\nUid:\t")
    end = status.find(b"\t", start)
    if start < len(b"\nUid:\t") or end < 0:
        return None
    return user_name(int(status[start:end]))


def read_memory(pid: int) -> dict[str, str]:
    """The memory extension keys of the process (none if unreadable).

    Raises psutil.NoSuchProcess when the process has ended.
    """
    statm = read_proc(pid, "statm")
    if statm is None:
        return {}
    # statm counts pages in the order size resident shared text lib data dirty; psutil's
    # memory_info names them vms, rss, shared, text, lib, data, dirty and lists rss first.
    vms, rss, shared, text, lib, data, dirty = (
        int(pages) * _PAGE_SIZE for pages in statm.split()[:7]
    )
    return {
        extension.MSESSION_MEMORY_USAGE: _MEMORY_JSON % (rss, vms, shared, text, lib, data, dirty),
        extension.MSESSION_MEMORY_USAGE_RSS: str(rss),
        extension.MSESSION_MEMORY_USAGE_VMS: str(vms),
    }
