"""Collecting a job's end: its exit status and resource usage, and a pidfd to wait on.

Reaping is by explicit pid (``wait4(pid, WNOHANG)``), never ``wait4(-1)``, which would steal
the exit status of the host application's other children.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple

from drmaa2_ostracker.process.identity import ProcessIdentity, is_running

__all__ = [
    "WHOLE_PEEK",
    "ExitStatus",
    "collect",
    "decode_wait_status",
    "open_pidfd",
    "peek",
    "peek_end",
    "reap",
]


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


#: waitid(2)'s system call number, by machine (64-bit only: see _waitid).
_WAITID_NUMBERS = {"x86_64": 247, "aarch64": 95}
#: The siginfo_t waitid fills (si_signo, si_errno, si_code, a pad, si_pid, si_uid,
#: si_status), and struct rusage (two timevals, then 14 longs), on a 64-bit machine.
_SIGINFO = struct.Struct("<7i")
_RUSAGE = struct.Struct("<18q")
_SIGINFO_SIZE = 128


def _waitid() -> Callable[[int, int, int, int, int], int] | None:
    """The waitid system call itself, which gives the resource usage of an exited child
    without collecting it (WNOWAIT; libc's waitid does not pass it on); None where it is not
    known (another machine, a 32-bit Python)."""
    number = _WAITID_NUMBERS.get(platform.machine())
    if number is None or sys.platform != "linux" or ctypes.sizeof(ctypes.c_long) != 8:
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    call.restype = ctypes.c_long
    call.argtypes = [
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    return functools.partial(call, number)


_WAITID = _waitid()
#: Whether :func:`peek_end` can be used here (else :func:`peek`, then :func:`reap`).
WHOLE_PEEK = _WAITID is not None
_PEEK_OPTIONS = os.WEXITED | os.WNOHANG | os.WNOWAIT


class _Buffers(threading.local):
    """The siginfo and rusage buffers :func:`peek_end` hands to waitid, one pair per thread
    (made once, not per end), with their addresses."""

    def __init__(self) -> None:
        self.info = ctypes.create_string_buffer(_SIGINFO_SIZE)
        self.usage = ctypes.create_string_buffer(_RUSAGE.size)
        self.info_at = ctypes.addressof(self.info)
        self.usage_at = ctypes.addressof(self.usage)


_buffers = _Buffers()
_SIGNO = struct.Struct("<i")


def peek_end(pid: int) -> ExitStatus | None:
    """The whole end of an exited child, resource usage included, left to collect
    (``WNOWAIT``: see :func:`collect`); None if it has not exited yet. ChildProcessError if
    it is not (or no longer) our child. Only where :data:`WHOLE_PEEK`. (The kernel gives the
    same usage as when the child is collected: that of the ended process, with its own
    collected children.)"""
    assert _WAITID is not None
    buffers = _buffers
    info = buffers.info
    _SIGNO.pack_into(info, 0, 0)  # si_signo: stays 0 if the child has not exited
    if _WAITID(os.P_PID, pid, buffers.info_at, _PEEK_OPTIONS, buffers.usage_at) < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))  # (ECHILD: ChildProcessError)
    signo, _, code, _, _, _, status = _SIGINFO.unpack_from(info)
    if signo == 0:
        return None
    if code == os.CLD_EXITED:
        exit_status, signal_name = status, ""
    else:
        try:
            signal_name = signal.Signals(status).name
        except ValueError:
            signal_name = f"SIG{status}"
        exit_status = 128 + status
    used = _RUSAGE.unpack_from(buffers.usage)
    return ExitStatus(
        exit_status,
        signal_name,
        used[0] + used[1] * 0.000001,  # (as wait4's: the same float)
        used[2] + used[3] * 0.000001,
        used[4],
        used[10],
        used[11],
        used[12],
    )


def collect(pid: int) -> None:
    """Collect an exited child whose end :func:`peek_end` gave (its pid is free again)."""
    os.waitpid(pid, os.WNOHANG)


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
