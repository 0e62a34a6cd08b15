"""Signalling a job: stop, continue and kill every process of it, those that left its
process group included."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

from drmaa2_ostracker.process.identity import process_state, stat_fields

__all__ = ["continue_job", "is_stopped", "kill_job", "signal_group", "stop_job"]


def signal_group(pgid: int, signum: int) -> bool:
    """Send a signal to a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    """Direct children of a process, from /proc/<pid>/task/*/children (no full scan)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return found


def _descendants(pid: int, freeze: bool) -> list[int]:
    """Every descendant of ``pid``; with ``freeze``, each is stopped before its children are
    listed, so none can fork behind our back."""
    result: list[int] = []
    pending = _children(pid)
    seen = set(pending)
    while pending:
        child = pending.pop()
        if freeze:
            _kill(child, signal.SIGSTOP)
        result.append(child)
        for grandchild in _children(child):
            if grandchild not in seen:
                seen.add(grandchild)
                pending.append(grandchild)
    return result


def _session_members(sid: int) -> Iterable[int]:
    """Processes whose session id is ``sid`` (catches orphans that stayed in the job's session)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(int(entry))
        if fields is not None and int(fields[3]) == sid:
            yield int(entry)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _first_signal(pidfd: int | None, signum: int) -> bool:
    """Signal the job's leader through its pidfd (``signum`` 0: only look whether it lives):
    False if that very process has ended (its pid may be someone else's by now, so nothing
    may be sent by pid)."""
    if pidfd is None:
        return True
    try:
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return False
    return True


def kill_job(leader: int, pidfd: int | None = None) -> None:
    """SIGKILL the job's process group, its session and every descendant, even one that
    left the group with setsid. The job's processes are stopped first, so none can fork
    while they are being collected.

    The caller guarantees ``leader`` has not been reaped (so its pid is still the job's), or
    passes its ``pidfd``: a leader that is not our child may be reaped by someone else at
    any moment, but once stopped through its pidfd it lives on, and so do its group and
    session ids.
    """
    if not _first_signal(pidfd, signal.SIGSTOP):
        return
    signal_group(leader, signal.SIGSTOP)
    victims: set[int] = set()
    try:
        victims.update(_descendants(leader, freeze=True))
        victims.update(_session_members(leader))
    except OSError:  # no descriptor left to read /proc: the group and the leader at least
        _kill(leader, signal.SIGKILL)
    signal_group(leader, signal.SIGKILL)
    for pid in victims:
        _kill(pid, signal.SIGKILL)


def continue_job(leader: int, pidfd: int | None = None) -> None:
    """SIGCONT the job's process group, and every descendant that left the group: each
    process gets one SIGCONT (a job that handles it sees one per resume)."""
    if not _first_signal(pidfd, 0):
        return
    signal_group(leader, signal.SIGCONT)
    try:
        descendants = _descendants(leader, freeze=False)
    except OSError:  # no descriptor left to read /proc: the group only
        descendants = []
    for pid in descendants:
        fields = stat_fields(pid)
        if fields is not None and int(fields[2]) != leader:  # (the group's have theirs)
            _kill(pid, signal.SIGCONT)


#: How long a suspension waits for a job that handles SIGTSTP to take it before SIGSTOP.
TSTP_GRACE = 0.1


def _let_handle(pid: int, signum: int, timeout: float = TSTP_GRACE) -> None:
    """If process ``pid`` handles ``signum`` and does not block it, wait until it has taken
    the signal sent to it (no longer pending), up to ``timeout``: a stop that came first would
    keep its handler from running, and the SIGCONT that ends the stop discards a pending
    SIGTSTP."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    delay = 0.00005
    while True:
        masks = _signal_masks(pid)
        if masks is None or not masks[b"SigCgt"] & bit or masks[b"SigBlk"] & bit:
            return
        if not (masks[b"SigPnd"] | masks[b"ShdPnd"]) & bit or time.monotonic() > deadline:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def _signal_masks(pid: int) -> dict[bytes, int] | None:
    """The signal masks of /proc/<pid>/status (SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt);
    None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            text = status.read()
    except OSError:
        return None
    masks: dict[bytes, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(b":")
        if name in _MASKS:
            masks[name] = int(value, 16)
    return masks if len(masks) == len(_MASKS) else None


_MASKS = (b"SigPnd", b"ShdPnd", b"SigBlk", b"SigIgn", b"SigCgt")
_STOP_PENDING = 1 << (signal.SIGSTOP - 1)


def is_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped, or cannot run until it stops: in uninterruptible
    sleep with SIGSTOP pending. That is a shell in vfork whose child was stopped before it
    exec'd: the parent waits for the child, which waits for a SIGCONT, that also cancels the
    parent's stop."""
    state = process_state(pid)
    if state in ("T", "t"):
        return True
    if state != "D":
        return False
    masks = _signal_masks(pid)
    return masks is not None and bool((masks[b"SigPnd"] | masks[b"ShdPnd"]) & _STOP_PENDING)


def stop_job(leader: int, pidfd: int, confirm_timeout: float = 5.0) -> None:
    """Stop every process of the job and return once they are stopped.

    SIGTSTP goes first, so a job that handles it hears about the suspension: SIGSTOP
    follows once the job's first process (its leader) has taken it, if it handles it (up to
    :data:`TSTP_GRACE`); SIGSTOP, because a job may catch or ignore SIGTSTP, and the kernel
    discards SIGTSTP sent to an orphaned process group, which every setsid job is, unless it
    is handled. Each process of the job's process group gets one SIGTSTP; a descendant that
    left the group gets SIGSTOP only.
    """
    if not _first_signal(pidfd, 0):
        return
    signal_group(leader, signal.SIGTSTP)
    _let_handle(leader, signal.SIGTSTP)
    if not _first_signal(pidfd, signal.SIGSTOP):
        return
    signal_group(leader, signal.SIGSTOP)
    try:
        descendants = _descendants(leader, freeze=True)
    except OSError:  # no descriptor left to read /proc: the group only
        descendants = []
    # Confirmed from /proc for every process: it works for children and adopted jobs alike,
    # and a process stuck in uninterruptible sleep cannot block us beyond the deadline (one
    # with the stop pending, as a shell in vfork, counts as stopped: see is_stopped). The
    # stop itself takes microseconds; the checks back off from 50 µs.
    deadline = time.monotonic() + confirm_timeout
    for pid in (leader, *descendants):
        delay = 0.00005
        while process_state(pid) not in (None, "Z", "X") and not is_stopped(pid):
            if time.monotonic() > deadline:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.005)
