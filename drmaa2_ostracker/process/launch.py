"""Starting a job: its streams, its limits and nice value, and the fork and exec.

A job runs in its own session and process group (``setsid``), so it survives the controlling
process, and signals reach every process of the job at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from drmaa2_ostracker.process.identity import ProcessIdentity, identity_of_new_child
from drmaa2_ostracker.process.settings import ProcessSettingsLike, setup_for
from drmaa2_ostracker.process.streams import LaunchError, open_streams

__all__ = [
    "LaunchError",
    "LaunchSpec",
    "ProcessSettingsLike",
    "Spawned",
    "find_out_vfork",
    "spawn",
]


@dataclasses.dataclass
class LaunchSpec:
    """Everything needed to start one job, resolved and checked."""

    executable: str
    argv: list[str]
    cwd: str
    env: dict[bytes, bytes]
    #: None: /dev/null. "/dev/stdin": the controller's own stdin. Else a file to read.
    input_path: str | None
    #: None: discarded. "/dev/stdout" / "/dev/stderr": the controller's own stream. Else a file.
    output_path: str | None
    error_path: str | None
    join_files: bool = False
    #: (resource.RLIMIT_*, value) pairs, applied as soft and hard limit.
    rlimits: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    nice: int = 0
    #: The submitting process's umask, limits and nice value (None: this process's own),
    #: the base the job's own limits and nice increment apply to.
    settings: ProcessSettingsLike | None = None
    #: Descriptors standing for "/dev/stdin", "/dev/stdout" and "/dev/stderr" (those not
    #: given: this process's own streams).
    streams: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Called once the job was started (or could not be): the descriptors it got are its own.
    launched: Callable[[], None] | None = None
    #: ``env`` as the ``K=V`` list exec takes, if made already.
    env_list: list[bytes] | None = None
    #: Called immediately before the fork (or in the child, before ``exec``, for a job that
    #: is set up there): the launch is recorded as begun (see ``store.launches``).
    announce: Callable[[], object] | None = None
    #: Called with the job's pid and CLOCK_BOOTTIME before and after its fork (ns) as soon
    #: as its pid is known: for a job started without code between fork and exec, once the
    #: fork returned, before its exec is known to have succeeded; else once it started.
    forked: Callable[[int, int, int], object] | None = None


@dataclasses.dataclass
class Spawned:
    """A started job process."""

    identity: ProcessIdentity
    #: Readable when the process has exited (Linux pidfd).
    pidfd: int
    #: Kept until the process is reaped, so subprocess never waits for it itself (None when
    #: the job was started without subprocess, or adopted).
    popen: subprocess.Popen[bytes] | None
    #: False for a job adopted from a controller that died: not our child, not ours to reap.
    child: bool = True


def _child_setup(spec: LaunchSpec) -> Callable[[], None] | None:
    """What must run in the child before ``exec`` for it to start with the submitter's limits
    and nice value and the job's own: None when that is nothing."""
    return setup_for(spec.settings, tuple(spec.rlimits), spec.nice)


def spawn(spec: LaunchSpec) -> Spawned:
    """Start a job in its own session; OSError if it cannot be started.

    Files opened for the job are closed before this returns. The job starts with the
    submitting process's umask, limits and nice value (``spec.settings``) and the template's
    limits and nice increment, set in the child before ``exec`` so they hold from its first
    instruction; every signal at its default disposition and none blocked (``posix_spawn``
    would leave glibc's internal signals 32 and 33 ignored, so it is not used); only its
    stdin, stdout and stderr open. An executable file without a ``#!`` line is run by
    ``/bin/sh``, as execvp(3) does.
    """
    try:
        opened, streams = open_streams(spec)
    except BaseException:
        if spec.launched is not None:
            spec.launched()
        raise
    before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    try:
        try:
            pid, popen = _start(spec, spec.executable, spec.argv, streams, before)
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise _interpreter_missing(spec.executable) or error from None
            if error.errno != errno.ENOEXEC:
                raise
            argv = [_SHELL, spec.executable, *spec.argv[1:]]
            pid, popen = _start(spec, _SHELL, argv, streams, before)
    finally:
        for fd in opened:
            os.close(fd)
        if spec.launched is not None:
            spec.launched()
    after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    # The pid cannot be reused before we reap it, so the pidfd and the identity are its own.
    try:
        pidfd = os.pidfd_open(pid)
    except BaseException:  # out of descriptors: a job nobody could watch must not run
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if popen is not None:
            popen.returncode = -1
        raise
    if popen is not None and spec.forked is not None:
        spec.forked(pid, before, after)
    return Spawned(identity_of_new_child(pid, before, after), pidfd, popen, child=True)


_SHELL = "/bin/sh"


def _interpreter_missing(executable: str) -> OSError | None:
    """For an exec that failed with ENOENT although ``executable`` exists: the error naming
    the interpreter its ``#!`` line names (missing, or spelled with a carriage return, as in
    a script edited on Windows); None if that is not the cause."""
    try:
        with open(executable, "rb") as script:
            first = script.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].rstrip(b"\n").split(None, 1)
    if not words:
        return None
    interpreter = os.fsdecode(words[0])
    if first.endswith(b"\r\n"):
        reason = f"its #! line ends in a carriage return (CRLF line ends): {first!r}"
    elif os.path.exists(interpreter):
        return None
    else:
        reason = f"the interpreter its #! line names, {interpreter}, does not exist"
    return OSError(errno.ENOENT, f"cannot run {executable}: {reason}", executable)


def _start(
    spec: LaunchSpec,
    executable: str,
    argv: list[str],
    streams: tuple[int, int, int],
    before: int,
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """Fork and exec one job (``before``: CLOCK_BOOTTIME before the fork, ns): (its pid, the
    Popen object if subprocess made it)."""
    umask = -1 if spec.settings is None else spec.settings.umask
    setup = _child_setup(spec)
    if _FORK_EXEC is not None and setup is None:
        return _fork_exec(spec, executable, argv, streams, umask, before), None
    announce = spec.announce
    if announce is not None:
        # In the child: the record exists only if the child does (Popen's own work lies
        # between its call and the fork).
        setup = _announced(announce, setup)
    popen = subprocess.Popen(
        argv,
        executable=executable,
        cwd=spec.cwd,
        env=spec.env,
        stdin=streams[0],
        stdout=streams[1],
        stderr=streams[2],
        start_new_session=True,
        umask=umask,
        preexec_fn=setup,
    )
    return popen.pid, popen


def _announced(
    announce: Callable[[], object], setup: Callable[[], None] | None
) -> Callable[[], None]:
    def in_child() -> None:
        announce()
        if setup is not None:
            setup()

    return in_child


def _checked_fork_exec() -> Callable[..., int] | None:
    """subprocess's own fork-and-exec, if this Python calls it exactly as :func:`_fork_exec`
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


def _fork_exec(
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
    args = [os.fsencode(arg) for arg in argv]
    executables = (os.fsencode(executable),)
    # A kept pipe where a failed exec is in it when fork_exec returns, else one of its own.
    kept = _VFORK_WAITS
    read_end, write_end = _pipes.take() if kept else os.pipe()
    try:
        try:
            if spec.announce is not None:
                spec.announce()  # nothing but the fork itself lies between the two
            pid = _FORK_EXEC(
                args,
                executables,
                True,  # close_fds
                (write_end,),
                spec.cwd,
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
                True,  # start_new_session
                -1,  # process_group
                None,
                None,
                None,
                umask,
                None,  # preexec_fn
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
            pid = _FORK_EXEC(
                [missing],
                (missing,),
                True,
                (write_end,),
                None,
                [],
                -1,
                -1,
                -1,
                -1,
                -1,
                -1,
                read_end,
                write_end,
                True,
                False,
                -1,
                None,
                None,
                None,
                -1,
                None,
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
#: Whether ``fork_exec`` returns only once the child has exec'd or died (see
#: :func:`find_out_vfork`; until then, a pipe per start).
_VFORK_WAITS = False
