"""The keeper's anchor: its parent, which keeps the ends of its jobs if the keeper is killed.

The process that starts a keeper makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``),
forks the keeper, and execs this file (``python -I -S anchor.py STATE_DIR KEEPER_PID``: the
standard library only, so that it starts in a few milliseconds beside the keeper). It does
nothing while the keeper lives. If the keeper dies (killed), its jobs become the anchor's
children instead of init's, and the anchor reaps each one as it ends and writes its wait
status, resource usage and end time to ``orphans/<pid>.<start tick>`` in the state
directory (read by :mod:`drmaa2_ostracker.store.orphans`): the next keeper records the job's
exact end from there. The file is made (as ``.<pid>.<start tick>.part``) before the process is
reaped, so that a process of the dead keeper is always to be seen: running, a child of the
anchor, or in a file. The anchor exits once it has no child left (at once when the keeper
exits with no job running). If it recorded every end, it then writes "exited" into the file
``anchor.<pid>.<start tick>`` that its keeper made for it (never making one itself, so that
nothing appears in a state directory being removed): the next keeper knows from it that
every process the dead keeper forked and did not record has a file (see
:meth:`~drmaa2_ostracker.store.orphans.Orphans.launched_since`).
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

__all__ = [
    "ANCHOR",
    "DIGEST",
    "EXITED",
    "ORPHANS",
    "RECORD",
    "become_subreaper",
    "main",
    "orphans_directory",
    "write_orphan",
]

#: The directory of orphans' ends, in the state directory.
ORPHANS = "orphans"
#: pid, wait status, start tick, user and system time (s), max RSS (KiB), swaps, blocks in,
#: blocks out, end time (µs since the epoch); then a digest of those (:data:`DIGEST` bytes).
RECORD = struct.Struct("<iiqdd5q")
DIGEST = 8
#: The prefix of an anchor's file (``anchor.<pid>.<start tick>``, made by its keeper).
ANCHOR = "anchor."
#: What an anchor writes into its file when it exits having recorded every end.
EXITED = b"exited\n"
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process a child subreaper: orphans among its descendants become its
    children. False if the system refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def pending(directory_fd: int, pid: int, start_ticks: int) -> int:
    """Make the file of an orphan's end, before it is reaped: its descriptor (see
    :func:`write_orphan`)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(f".{pid}.{start_ticks}.part", flags, 0o600, dir_fd=directory_fd)


def write_orphan(
    directory_fd: int, pid: int, start_ticks: int, status: int, usage: object, fd: int = -1
) -> None:
    """Record the end of a reaped orphan (``usage``: its ``resource.struct_rusage``; ``fd``:
    its file from :func:`pending`, else made now): written whole, then renamed into place,
    so that a reader never sees half of it."""
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
    if fd < 0:
        fd = pending(directory_fd, pid, start_ticks)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    name = f"{pid}.{start_ticks}"
    os.rename(f".{name}.part", name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)


def _start_ticks(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), from /proc (a zombie's too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    return int(raw[raw.rindex(b")") + 2 :].split()[19])


def orphans_directory(state_dir: str, make: bool = True) -> int:
    """The directory of orphans' ends (made 0700 if needed and ``make``), opened without
    following a symbolic link; refused if another user owns it or the state directory. (The
    state directory itself may be reached through a symbolic link, as everywhere else: it
    is its owner that counts.)"""
    parent = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.fstat(parent).st_uid != os.geteuid():
            raise PermissionError(f"{state_dir} belongs to another user")
        with contextlib.suppress(FileExistsError):
            if make:
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
    whole = True  # every end recorded
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if found is None:
            continue
        pid = found.si_pid
        if pid == keeper:
            os.wait4(pid, 0)
            continue
        start = _start_ticks(pid)  # a zombie's: its start time is still there
        try:
            if start is None:
                raise OSError(f"its start time is gone from /proc/{pid}")
            if directory is None:
                directory = orphans_directory(state_dir)
            fd = pending(directory, pid, start)
        except OSError as error:
            fd = -1
            whole = False
            print(f"anchor: cannot record the end of process {pid}: {error}", file=sys.stderr)
        _, status, usage = os.wait4(pid, 0)
        if fd < 0:
            continue
        assert directory is not None and start is not None
        try:
            write_orphan(directory, pid, start, status, usage, fd)
        except OSError as error:
            whole = False
            print(f"anchor: cannot record the end of process {pid}: {error}", file=sys.stderr)
    if whole:
        _leave_exit_mark(state_dir, directory)
    return 0


def _leave_exit_mark(state_dir: str, directory: int | None) -> None:
    """Write "exited" into this anchor's file: it recorded every end."""
    try:
        if directory is None:
            directory = orphans_directory(state_dir, make=False)
        name = f"{ANCHOR}{os.getpid()}.{_start_ticks(os.getpid())}"
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return  # its keeper did not make it (or the state directory is being removed)
    except OSError as error:
        print(f"anchor: cannot leave its mark: {error}", file=sys.stderr)
        return
    try:
        os.write(fd, EXITED)
    except OSError as error:
        print(f"anchor: cannot leave its mark: {error}", file=sys.stderr)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
