"""Starting a job with subprocess's own fork-and-exec, called directly (vfork): what ``Popen``
does without its Python work, for a job that needs no code between fork and exec; and the
pipes its children report a failed exec on, kept for the next starts where vfork makes that
safe (see :func:`find_out_vfork`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drmaa2_ostracker.process.launch import LaunchSpec

__all__ = ["AVAILABLE", "encode_command", "find_out_vfork", "fork_exec"]


def _checked_fork_exec() -> Callable[..., int] | None:
    """subprocess's own fork-and-exec, if this Python calls it exactly as :func:`fork_exec`
    does (checked in its source): it saves ``Popen``'s Python work on every job start, about
    a third of the keeper's time per job. Otherwise None, and ``Popen`` is used."""
    try:
        source = inspect.getsource(getattr(subprocess.Popen, "_execute_child"))  # noqa: B009
        fork_exec = getattr(subprocess, "_fork_exec")  # noqa: B009
        vfork = bool(getattr(subprocess, "_USE_VFORK"))  # noqa: B009
    except (AttributeError, OSError, TypeError):
        return None
    expected = (
        "args, executable_list, close_fds, tuple(sorted(map(int, fds_to_keep))), cwd, "
        "env_list, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, errpipe_read, "
        "errpipe_write, restore_signals, start_new_session, process_group, gid, gids, uid, "
        "umask, preexec_fn, _USE_VFORK)"
    )
    if expected not in " ".join(source.split()):
        return None
    return functools.partial(_call_fork_exec, fork_exec, vfork)


def _call_fork_exec(fork_exec: Callable[..., int], vfork: bool, *args: Any) -> int:
    return fork_exec(*args, vfork)


def fork_exec(
    spec: LaunchSpec,
    executable: str,
    argv: list[str],
    streams: tuple[int, int, int],
    umask: int,
    before: int,
) -> int:
    """What ``Popen`` does for a job, without its Python work: the environment arrives as
    the ``K=V`` list exec takes (made once per plan). ``spec.forked`` is called as soon as
    the fork returned (``before``: CLOCK_BOOTTIME before it, ns)."""
    assert _FORK_EXEC is not None
    env_list = spec.env_list
    if env_list is None:
        env_list = [key + b"=" + value for key, value in spec.env.items()]
    encoded = spec.encoded
    if encoded is not None and argv is spec.argv and executable == spec.executable:
        args, encoded_executable = encoded
    else:  # run by /bin/sh, or not encoded yet
        args, encoded_executable = encode_command(argv, executable)
    executables = (encoded_executable,)
    # A kept pipe where a failed exec is in it when fork_exec returns, else one of its own.
    kept = _VFORK_WAITS
    read_end, write_end = _pipes.take() if kept else os.pipe()
    try:
        try:
            if spec.announce is not None:
                spec.announce()  # nothing but the fork itself lies between the two
            pid = _exec_child(
                args, executables, spec.cwd, env_list, streams, (read_end, write_end), True, umask
            )
        finally:
            if not kept:
                os.close(write_end)
        if spec.forked is not None:
            spec.forked(pid, before, time.clock_gettime_ns(time.CLOCK_BOOTTIME))
        failure = _exec_failure(read_end)  # empty once the exec succeeded
    except BaseException:
        if kept:  # it may not be empty
            os.close(read_end)
            os.close(write_end)
        raise
    finally:
        if not kept:
            os.close(read_end)
    if kept:
        _pipes.give((read_end, write_end))
    if not failure:
        return pid
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    name, _, rest = bytes(failure).partition(b":")
    number, _, message = rest.partition(b":")
    try:
        code = int(number, 16)
    except ValueError:
        code = 0
    if name == b"OSError" and code:
        where = spec.cwd if message == b"noexec" else executable
        raise OSError(code, os.strerror(code), where)
    raise subprocess.SubprocessError(message.decode(errors="replace") or "the job did not start")


def encode_command(argv: list[str], executable: str) -> tuple[list[bytes], bytes]:
    """A command's argv and executable as exec takes them."""
    return [os.fsencode(arg) for arg in argv], os.fsencode(executable)


def _exec_child(
    args: list[bytes],
    executables: tuple[bytes, ...],
    cwd: str | None,
    env_list: list[bytes],
    streams: tuple[int, int, int],
    pipe: tuple[int, int],
    new_session: bool,
    umask: int,
) -> int:
    """subprocess's fork_exec with what a job start decides (-1 for a stream: this
    process's own); the child's pid. Every descriptor but its streams and the write end of
    the error pipe is closed in the child, and its signals are restored."""
    assert _FORK_EXEC is not None
    read_end, write_end = pipe
    return _FORK_EXEC(
        args,
        executables,
        True,  # close_fds
        (write_end,),
        cwd,
        env_list,
        streams[0],
        -1,
        -1,
        streams[1],
        -1,
        streams[2],
        read_end,
        write_end,
        True,  # restore_signals
        new_session,
        -1,  # process_group
        None,  # gid
        None,  # extra groups
        None,  # uid
        umask,
        None,  # preexec_fn
    )


def _exec_failure(read_end: int) -> bytes:
    """What the child wrote into the error pipe before it gave up: read to the end (a pipe
    of its own: its end, once the child exec'd or died) or until it is empty (a pipe kept
    for the next start, non-blocking: nothing is left in it for that start)."""
    failure = bytearray()
    while True:
        try:
            part = os.read(read_end, 50000)
        except BlockingIOError:
            break
        if not part:
            break
        if len(failure) <= 50000:
            failure += part
    return bytes(failure)


class _ErrorPipes:
    """Pipes for the exec errors of the jobs the keeper starts, kept for the next starts: a
    pipe less to make and close per job. A start takes one for itself while it runs (threads
    may start jobs at once); a few are kept idle, whatever the number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[int, int]] = []

    def take(self) -> tuple[int, int]:
        """An empty pipe (read end, write end): close-on-exec, so a job keeps neither end
        (its exec closes the write end it was given to report a failure on); non-blocking,
        so an empty pipe is read as a start that succeeded."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def give(self, pipe: tuple[int, int]) -> None:
        """A pipe taken is empty again (read until empty): kept, or closed."""
        with self._lock:
            if len(self._idle) < _IDLE_PIPES:
                self._idle.append(pipe)
                return
        for fd in pipe:
            os.close(fd)


#: Error pipes kept idle at most (more are made while more threads start jobs at once).
_IDLE_PIPES = 4

_pipes = _ErrorPipes()


def find_out_vfork() -> None:
    """Find out whether ``fork_exec`` starts a job by vfork here, so that it returns only once
    the child has exec'd or died (then error pipes are kept for the next starts, see
    :class:`_ErrorPipes`). The keeper's starter calls this before it forks the keeper: the
    children it starts to find out are never the keeper's, nor its anchor's."""
    global _VFORK_WAITS
    _VFORK_WAITS = _vfork_waits()


def _vfork_waits() -> bool:
    """Whether ``fork_exec`` starts a job by vfork here: CPython on Linux, vfork allowed,
    and a start of a program that does not exist, tried three times, finds its failure in
    the pipe at once each time."""
    if (
        _FORK_EXEC is None
        or sys.platform != "linux"
        or sys.implementation.name != "cpython"
        or not getattr(subprocess, "_USE_VFORK", False)
    ):
        return False
    missing = b"/nonexistent/drmaa2-ostracker-vfork-probe"
    for _ in range(3):
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            pid = _exec_child(
                [missing], (missing,), None, [], (-1, -1, -1), (read_end, write_end), False, -1
            )
            try:
                found = os.read(read_end, 1000)
            except BlockingIOError:
                found = b""
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if not found.startswith(b"OSError:"):
                return False
        except OSError:
            return False
        finally:
            os.close(read_end)
            os.close(write_end)
    return True


_FORK_EXEC = _checked_fork_exec()
#: Whether subprocess's fork_exec can be called directly here (else ``Popen`` starts jobs).
AVAILABLE = _FORK_EXEC is not None
#: Whether ``fork_exec`` returns only once the child has exec'd or died (see
#: :func:`find_out_vfork`; until then, a pipe per start).
_VFORK_WAITS = False
