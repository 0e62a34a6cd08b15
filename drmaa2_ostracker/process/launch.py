"""Starting a job: its streams, its limits and nice value, and the fork and exec.

A job runs in its own session and process group (``setsid``), so it survives the controlling
process, and signals reach every process of the job at once.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from drmaa2_ostracker.process import forkexec
from drmaa2_ostracker.process.identity import ProcessIdentity, identity_of_new_child
from drmaa2_ostracker.process.settings import ProcessSettings, setup_for
from drmaa2_ostracker.process.streams import LaunchError, open_streams

__all__ = [
    "LaunchError",
    "LaunchSpec",
    "ProcessSettings",
    "Spawned",
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
    settings: ProcessSettings | None = None
    #: Descriptors standing for "/dev/stdin", "/dev/stdout" and "/dev/stderr" (those not
    #: given: this process's own streams).
    streams: dict[str, int] = dataclasses.field(default_factory=dict)
    #: For a job of a submission an earlier keeper received (None otherwise): where each of
    #: those streams came from, to open it again (see :mod:`~drmaa2_ostracker.process.origins`).
    origins: dict[str, dict[str, Any]] | None = None
    #: Called once the job was started (or could not be): the descriptors it got are its own.
    launched: Callable[[], None] | None = None
    #: ``env`` as the ``K=V`` list exec takes, if made already.
    env_list: list[bytes] | None = None
    #: ``argv`` and ``executable`` encoded as exec takes them, if made already (a plan's
    #: jobs share them).
    encoded: tuple[list[bytes], bytes] | None = None
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
    #: When the fork returned (µs since the epoch; None: not known, an adopted process):
    #: the job's dispatch time, whenever its start is recorded.
    started_us: int | None = None


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
            if _binary(spec.executable):
                raise OSError(
                    errno.ENOEXEC,
                    f"cannot run {spec.executable}: a binary this machine cannot execute "
                    f"(for another architecture, or damaged)",
                    spec.executable,
                ) from None
            argv = [_SHELL, spec.executable, *spec.argv[1:]]
            pid, popen = _start(spec, _SHELL, argv, streams, before)
    finally:
        for fd in opened:
            os.close(fd)
        if spec.launched is not None:
            spec.launched()
    after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    started_us = time.time_ns() // 1000
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
    identity = identity_of_new_child(pid, before, after)
    if _NO_CPU_TIME in spec.rlimits:
        # CPU_TIME 0: used up as it starts. The kernel checks CPU time only at a clock tick
        # that finds the job running, or at none: it would end the job at random, or never.
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    return Spawned(identity, pidfd, popen, child=True, started_us=started_us)


_NO_CPU_TIME = (resource.RLIMIT_CPU, 0)


_SHELL = "/bin/sh"


def _binary(executable: str) -> bool:
    """Whether a file exec refused (ENOEXEC) is a binary rather than a script without a
    ``#!`` line: an ELF header, or a NUL byte in its first line (as bash tells them apart).
    Only a script is run by ``/bin/sh``."""
    try:
        with open(executable, "rb") as program:
            start = program.read(256)
    except OSError:
        return False
    return start.startswith(b"\x7fELF") or b"\0" in start.split(b"\n", 1)[0]


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
    if forkexec.AVAILABLE and setup is None:
        return forkexec.fork_exec(spec, executable, argv, streams, umask, before), None
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
