"""Knowing a process by identity: ``(pid, start time)``, read from /proc.

A pid alone may be reused after the process is gone; its start time in clock ticks since boot
tells the process that had it from any later one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable

__all__ = [
    "ProcessIdentity",
    "boot_ticks",
    "find_job_process",
    "identity_of",
    "identity_of_new_child",
    "in_user_namespace",
    "is_running",
    "process_state",
    "stat_fields",
    "ticks_at",
    "wall_us_at",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_NS_PER_TICK = 1_000_000_000 // _CLOCK_TICKS


@dataclasses.dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be recognised later: pid plus start time in clock ticks since boot.

    A negative ``start_ticks`` ``-(t + 1)`` says "tick t or t + 1" (a child forked across a
    tick boundary, see :func:`~drmaa2_ostracker.process.launch.spawn`): a pid is not handed
    out again within two ticks.
    """

    pid: int
    start_ticks: int

    def started_at(self, ticks: int) -> bool:
        """Whether a process of this pid that started at ``ticks`` is this one."""
        if self.start_ticks >= 0:
            return ticks == self.start_ticks
        return 0 <= ticks + self.start_ticks + 1 <= 1


class ProcessSet:
    """Processes known by pid and start ticks (as in :class:`ProcessIdentity`, a start may
    say "one of two ticks"): which of them a process of a pid and a start tick is."""

    def __init__(self, known: Iterable[tuple[int, int]] = ()) -> None:
        self._by_pid: dict[int, list[ProcessIdentity]] = {}
        for pid, start in known:
            self._by_pid.setdefault(pid, []).append(ProcessIdentity(pid, start))

    def has(self, pid: int, ticks: int) -> bool:
        """Whether the process ``pid`` that started at ``ticks`` is one of these."""
        return any(known.started_at(ticks) for known in self._by_pid.get(pid, ()))


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state letter)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(b")") + 2 :].decode().split()


def in_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the initial one (a rootless
    container): user ids outside it show as the overflow id, and its capabilities hold in it
    only."""
    try:
        with open("/proc/self/uid_map") as mapping:
            return mapping.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def identity_of(pid: int) -> ProcessIdentity | None:
    """The identity of a live (or zombie) process, None if there is no such pid."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return ProcessIdentity(pid, int(fields[19]))


def is_running(identity: ProcessIdentity) -> bool:
    """True if the very process ``identity`` names still runs (a zombie has ended)."""
    fields = stat_fields(identity.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return identity.started_at(int(fields[19]))


def boot_ticks() -> int:
    """Now, in clock ticks since boot (the unit of a process's start time)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // _NS_PER_TICK


def wall_us_at(ticks: int) -> int:
    """Boot tick ``ticks`` (as a process's start time counts), in µs since the epoch."""
    ago_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - ticks * _NS_PER_TICK
    return (time.time_ns() - max(0, ago_ns)) // 1000


def ticks_at(wall_us: int) -> int:
    """The boot tick of a wall-clock time in µs (1 s earlier, for a clock that was set
    meanwhile): a lower bound of the start of a process started after ``wall_us``."""
    since_ns = time.time_ns() - wall_us * 1000 + 1_000_000_000
    return max(0, (time.clock_gettime_ns(time.CLOCK_BOOTTIME) - since_ns) // _NS_PER_TICK)


def find_job_process(
    job_id: str,
    not_before: int,
    taken: Iterable[tuple[int, int]] = (),
    state_dir: str | None = None,
) -> ProcessIdentity | None:
    """A live process that looks like the job ``job_id`` started at or after tick
    ``not_before``: a session leader of this user, started since then, whose initial
    environment has ``JOB_ID=<job_id>``, which is not one of the processes ``taken``
    (pid, start ticks, as in :class:`ProcessIdentity`: known to be another job's), and
    whose parent is no keeper or anchor of a state directory other than ``state_dir`` (the
    job of another state directory's keeper, whose ids are counted apart); the earliest
    such. For a job whose start was not recorded because its keeper died while starting it
    (job ids are counted per session: another session's job of the same id may have started
    then too)."""
    others = ProcessSet(taken)
    marker = b"\0JOB_ID=" + job_id.encode() + b"\0"
    me = os.geteuid()
    found: ProcessIdentity | None = None
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        fields = stat_fields(pid)
        # fields: 0 state, 1 ppid, 2 pgrp, 3 session … 19 start time
        if fields is None or fields[0] in ("Z", "X") or int(fields[3]) != pid:
            continue
        ticks = int(fields[19])
        if ticks < not_before or (found is not None and ticks >= found.start_ticks):
            continue
        if others.has(pid, ticks):
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != me:
                continue
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if marker not in b"\0" + environ.read():
                    continue
        except OSError:
            continue
        if state_dir is not None and _of_another(int(fields[1]), state_dir):
            continue
        found = ProcessIdentity(pid, ticks)
    return found


#: The keeper's command line: ``python -m drmaa2_ostracker.keeper STATE_DIR …``; its
#: anchor's: ``python -I -S …/drmaa2_ostracker/keeper/anchor.py STATE_DIR …``.
_KEEPER_MODULE = b"drmaa2_ostracker.keeper"
_ANCHOR_SCRIPT = b"/drmaa2_ostracker/keeper/anchor.py"


def _state_dir_served_by(pid: int) -> str | None:
    """The state directory of which process ``pid`` is the keeper or the keeper's anchor, as
    its command line names it; None if it is neither (or is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:
        return None
    for at, arg in enumerate(args[1:-1], start=1):
        if (arg == _KEEPER_MODULE and args[at - 1] == b"-m") or arg.endswith(_ANCHOR_SCRIPT):
            return os.fsdecode(args[at + 1]) if args[at + 1] else None
    return None


def _of_another(parent: int, state_dir: str) -> bool:
    """Whether ``parent`` is the keeper or anchor of a state directory other than
    ``state_dir`` (one removed since counts as another)."""
    served = _state_dir_served_by(parent)
    if served is None:
        return False
    try:
        theirs, ours = os.stat(served), os.stat(state_dir)
    except OSError:
        return True
    return (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino)


def process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat ("R", "S", "T", "Z" …), None if gone."""
    fields = stat_fields(pid)
    return None if fields is None else fields[0]


def identity_of_new_child(pid: int, before_ns: int, after_ns: int) -> ProcessIdentity:
    """The identity of a child forked between two CLOCK_BOOTTIME readings.

    The kernel's start time of a process is the boot-time clock at fork, in clock ticks. When
    both readings fall in one tick, so did the fork; when they fall in two, the identity says
    "one of the two" (/proc/<pid>/stat, which would tell, blocks until the exec is over: half
    a millisecond).
    """
    tick, after = before_ns // _NS_PER_TICK, after_ns // _NS_PER_TICK
    if after == tick:
        return ProcessIdentity(pid, tick)
    if after == tick + 1:
        return ProcessIdentity(pid, -(tick + 1))
    return identity_of(pid) or ProcessIdentity(pid, 0)  # the spawn took ticks: ask
