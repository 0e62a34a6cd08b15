"""The signals Python cannot reach: glibc keeps 32 and 33 (between SIGSYS and SIGRTMIN) for
itself, and its ``sigaction`` refuses them, so ``signal.signal`` cannot set them. An ignored
signal stays ignored across fork and exec: a keeper started by a process that ignored one
would pass it on to every job. :func:`default_reserved_signals` sets them back to their
default with the kernel's own call.
"""

from __future__ import annotations

import ctypes
import platform
import signal
import sys

__all__ = ["default_reserved_signals", "ignored_reserved_signals", "set_reserved_signal"]

#: The number of the ``rt_sigaction`` system call, by machine (64-bit Linux).
_RT_SIGACTION = {
    "x86_64": 13,
    "aarch64": 134,
    "arm64": 134,
    "riscv64": 134,
    "loongarch64": 134,
    "ppc64": 173,
    "ppc64le": 173,
    "s390x": 174,
}
#: The kernel's sigset size on those machines (64 signals).
_SIGSET_SIZE = 8
#: Room for the kernel's ``struct sigaction`` on any of them; all zeros is SIG_DFL, no flags,
#: nothing blocked, whatever the order of its fields.
_ACTION_SIZE = 64
_SIG_IGN = 1


def _reserved() -> list[int]:
    """The signal numbers below NSIG that Python cannot set (32 and 33 with glibc)."""
    valid = signal.valid_signals()
    return [signum for signum in range(1, signal.NSIG) if signum not in valid]


def _rt_sigaction() -> tuple[ctypes.CDLL, int] | None:
    number = _RT_SIGACTION.get(platform.machine())
    # (The machine is the kernel's: a 32-bit program on it makes other system calls.)
    if number is None or not sys.platform.startswith("linux") or sys.maxsize < 2**63 - 1:
        return None
    try:
        return ctypes.CDLL(None, use_errno=True), number
    except OSError:
        return None


def _handler(libc: ctypes.CDLL, number: int, signum: int) -> int | None:
    """The handler of ``signum`` as the kernel has it (0 SIG_DFL, 1 SIG_IGN), None if it
    cannot be read."""
    old = ctypes.create_string_buffer(_ACTION_SIZE)
    if libc.syscall(number, signum, None, old, _SIGSET_SIZE) != 0:
        return None
    # The handler comes first in every layout of the kernel's struct sigaction.
    return int.from_bytes(old.raw[: ctypes.sizeof(ctypes.c_void_p)], sys.byteorder)


def ignored_reserved_signals() -> list[int]:
    """The signals Python cannot set that this process ignores (for the tests, and logs)."""
    found = _rt_sigaction()
    if found is None:
        return []
    libc, number = found
    return [signum for signum in _reserved() if _handler(libc, number, signum) == _SIG_IGN]


def default_reserved_signals() -> None:
    """Set every signal Python cannot set that this process ignores back to its default
    (a handler glibc installed for itself is left alone: exec resets it anyway). Nothing on a
    machine whose system call number is not known here."""
    found = _rt_sigaction()
    if found is None:
        return
    libc, number = found
    for signum in _reserved():
        if _handler(libc, number, signum) == _SIG_IGN:
            _set(libc, number, signum, ignored=False)


def set_reserved_signal(signum: int, ignored: bool) -> bool:
    """Ignore a signal Python cannot set, or set it to its default (as a process that
    started a keeper may have: the tests do it); False where that cannot be done here."""
    found = _rt_sigaction()
    return found is not None and _set(*found, signum, ignored=ignored)


def _set(libc: ctypes.CDLL, number: int, signum: int, ignored: bool) -> bool:
    action = ctypes.create_string_buffer(_ACTION_SIZE)  # SIG_DFL
    if ignored:
        ctypes.memmove(
            action, ctypes.byref(ctypes.c_void_p(_SIG_IGN)), ctypes.sizeof(ctypes.c_void_p)
        )
    result: int = libc.syscall(number, signum, action, None, _SIGSET_SIZE)
    return result == 0
