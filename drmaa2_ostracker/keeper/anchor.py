"""The keeper's anchor: its parent, which keeps the ends of its jobs if the keeper is killed.

The process that starts a keeper makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``),
forks the keeper, and execs this file (``python -I -S anchor.py STATE_DIR KEEPER_PID``: the
standard library only, so that it starts in a few milliseconds beside the keeper). It does
nothing while the keeper lives. If the keeper dies (killed), its jobs become the anchor's
children instead of init's, and the anchor reaps each one as it ends and writes its wait
status, resource usage and end time to ``orphans/<pid>.<start tick>`` in the state
directory (read by :mod:`drmaa2_ostracker.store.orphans`): the next keeper records the job's
exact end from there. The anchor exits once it has no child left: at once when the keeper
exits with no job running.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import struct
import sys
import time

__all__ = ["DIGEST", "ORPHANS", "RECORD", "become_subreaper", "main", "write_orphan"]

#: The directory of orphans' ends, in the state directory.
ORPHANS = "orphans"
#: pid, wait status, start tick, user and system time (s), max RSS (KiB), swaps, blocks in,
#: blocks out, end time (µs since the epoch); then a digest of those (:data:`DIGEST` bytes).
RECORD = struct.Struct("<iiqdd5q")
DIGEST = 8
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process a child subreaper: orphans among its descendants become its
    children. False if the system refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def write_orphan(directory_fd: int, pid: int, start_ticks: int, status: int, usage: object) -> None:
    """Record the end of a reaped orphan (``usage``: its ``resource.struct_rusage``): written
    whole, then renamed into place, so that a reader never sees half of it."""
    body = RECORD.pack(
        pid,
        status,
        start_ticks,
        getattr(usage, "ru_utime"),  # noqa: B009
        getattr(usage, "ru_stime"),  # noqa: B009
        getattr(usage, "ru_maxrss"),  # noqa: B009
        getattr(usage, "ru_nswap"),  # noqa: B009
        getattr(usage, "ru_inblock"),  # noqa: B009
        getattr(usage, "ru_oublock"),  # noqa: B009
        time.time_ns() // 1000,
    )
    data = body + hashlib.blake2b(body, digest_size=DIGEST).digest()
    name = f"{pid}.{start_ticks}"
    part = f".{name}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(part, flags, 0o600, dir_fd=directory_fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(part, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)


def _start_ticks(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), from /proc (a zombie's too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    return int(raw[raw.rindex(b")") + 2 :].split()[19])


def _orphans_directory(state_dir: str) -> int:
    """The directory of orphans' ends (made 0700 if needed), opened without following a
    symbolic link; refused if another user owns it or the state directory."""
    parent = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(parent).st_uid != os.geteuid():
            raise PermissionError(f"{state_dir} belongs to another user")
        with contextlib.suppress(FileExistsError):
            os.mkdir(ORPHANS, 0o700, dir_fd=parent)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(ORPHANS, flags, dir_fd=parent)
    finally:
        os.close(parent)
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{state_dir}/{ORPHANS} belongs to another user")
    return fd


def main(argv: list[str]) -> int:
    """Reap the keeper ``argv[2]`` and, once it is gone, its jobs (see the module
    docstring); return when no child is left."""
    state_dir, keeper = argv[1], int(argv[2])
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    become_subreaper()  # (kept across exec; set again all the same)
    directory: int | None = None
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if found is None:
            continue
        pid = found.si_pid
        start = _start_ticks(pid)  # a zombie's: its start time is still there
        _, status, usage = os.wait4(pid, 0)
        if pid == keeper or start is None:
            continue
        try:
            if directory is None:
                directory = _orphans_directory(state_dir)
            write_orphan(directory, pid, start, status, usage)
        except OSError as error:
            print(f"anchor: cannot record the end of process {pid}: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
