"""Collecting a job's end: its exit status and resource usage, and a pidfd to wait on.

Reaping is by explicit pid (``wait4(pid, WNOHANG)``), never ``wait4(-1)``, which would steal
the exit status of the host application's other children.
"""

from __future__ import annotations

import os
import signal
from typing import NamedTuple

from drmaa2_ostracker.process.identity import ProcessIdentity, is_running

__all__ = ["ExitStatus", "decode_wait_status", "open_pidfd", "peek", "reap"]


class ExitStatus(NamedTuple):
    """How a reaped job ended, with its own resource usage (a tuple: made once per job, on
    the way from its exit to the wait that returns it)."""

    exit_status: int
    #: "SIGKILL" etc. for a job killed by a signal, "" for a normal exit.
    terminating_signal: str
    user_time: float
    system_time: float
    max_rss_kib: int
    swaps: int
    in_blocks: int
    out_blocks: int


def decode_wait_status(status: int) -> tuple[int, str]:
    """(exit status, signal name) of a wait status; killed by N → (128 + N, "SIG…")."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"SIG{number}"
        return 128 + number, name
    return os.WEXITSTATUS(status), ""


def peek(pid: int) -> tuple[int, str] | None:
    """(exit status, signal name) of an exited child, left to reap (``WNOWAIT``); None if it
    has not exited yet. ChildProcessError if it is not (or no longer) our child."""
    found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if found is None:
        return None
    if found.si_code == os.CLD_EXITED:
        return found.si_status, ""
    number = found.si_status
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"SIG{number}"
    return 128 + number, name


def reap(pid: int) -> ExitStatus | None:
    """Collect an exited child's status and rusage; None if it has not exited yet.

    ChildProcessError if it is not (or no longer) our child to reap: the host application
    reaped it (``wait(-1)``, SIGCHLD ignored).
    """
    found, status, usage = os.wait4(pid, os.WNOHANG)
    if found == 0:
        return None
    if os.WIFEXITED(status):
        exit_status, signal_name = os.WEXITSTATUS(status), ""
    else:
        exit_status, signal_name = decode_wait_status(status)
    return ExitStatus(
        exit_status,
        signal_name,
        usage.ru_utime,
        usage.ru_stime,
        usage.ru_maxrss,
        usage.ru_nswap,
        usage.ru_inblock,
        usage.ru_oublock,
    )


def open_pidfd(identity: ProcessIdentity) -> int | None:
    """A pidfd of the process ``identity`` names, None if that process has ended."""
    try:
        pidfd = os.pidfd_open(identity.pid)
    except OSError:
        return None
    # Checked after opening: if the identity still matches, the pidfd is that process's.
    if not is_running(identity):
        os.close(pidfd)
        return None
    return pidfd
