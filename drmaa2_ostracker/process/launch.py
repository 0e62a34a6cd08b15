"""The small OS process core: spawn a job, signal it, reap it, and know a process by identity.

Everything here is Linux-specific and free of DRMAA2 state: the supervisor decides *when*, this
module knows *how*.

- A job runs in its own session and process group (``setsid``), so it survives the controlling
  process, and signals reach every process of the job at once.
- A process is identified by ``(pid, start time)``: a pid alone may be reused after the
  process is gone.
- Reaping is by explicit pid (``wait4(pid, WNOHANG)``), never ``wait4(-1)``, which would steal
  the exit status of the host application's other children.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import inspect
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

__all__ = [
    "ExitStatus",
    "LaunchSpec",
    "ProcessIdentity",
    "Spawned",
    "boot_ticks",
    "continue_job",
    "decode_wait_status",
    "find_job_process",
    "identity_of",
    "is_running",
    "kill_job",
    "open_pidfd",
    "reap",
    "signal_group",
    "spawn",
    "stop_job",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be recognised later: pid plus start time in clock ticks since boot.

    A negative ``start_ticks`` ``-(t + 1)`` says "tick t or t + 1" (a child forked across a
    tick boundary, see :func:`spawn`): a pid is not handed out again within two ticks.
    """

    pid: int
    start_ticks: int

    def started_at(self, ticks: int) -> bool:
        """Whether a process of this pid that started at ``ticks`` is this one."""
        if self.start_ticks >= 0:
            return ticks == self.start_ticks
        return 0 <= ticks + self.start_ticks + 1 <= 1


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state letter)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(b")") + 2 :].decode().split()


def identity_of(pid: int) -> ProcessIdentity | None:
    """The identity of a live (or zombie) process, None if there is no such pid."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return ProcessIdentity(pid, int(fields[19]))


def is_running(identity: ProcessIdentity) -> bool:
    """True if the very process ``identity`` names still runs (a zombie has ended)."""
    fields = _stat_fields(identity.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return identity.started_at(int(fields[19]))


def boot_ticks() -> int:
    """Now, in clock ticks since boot (the unit of a process's start time)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // _NS_PER_TICK


def find_job_process(
    job_id: str, not_before: int, exclude: set[int] | frozenset[int] = frozenset()
) -> ProcessIdentity | None:
    """A live process that looks like the job ``job_id`` started at or after tick
    ``not_before``: a session leader of this user, started since then, whose initial
    environment has ``JOB_ID=<job_id>``, and not one of ``exclude``; the earliest such.
    For a job whose start was not recorded because its keeper died while starting it."""
    marker = b"\0JOB_ID=" + job_id.encode() + b"\0"
    me = os.geteuid()
    found: ProcessIdentity | None = None
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in exclude:
            continue
        fields = _stat_fields(pid)
        # fields: 0 state, 1 ppid, 2 pgrp, 3 session … 19 start time
        if fields is None or fields[0] in ("Z", "X") or int(fields[3]) != pid:
            continue
        ticks = int(fields[19])
        if ticks < not_before or (found is not None and ticks >= found.start_ticks):
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != me:
                continue
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if marker not in b"\0" + environ.read():
                    continue
        except OSError:
            continue
        found = ProcessIdentity(pid, ticks)
    return found


def process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat ("R", "S", "T", "Z" …), None if gone."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]


class ProcessSettingsLike(Protocol):
    """A process's umask, limits and nice value (see ``template.ProcessSettings``)."""

    @property
    def umask(self) -> int: ...

    @property
    def rlimits(self) -> tuple[tuple[int, int, int], ...]: ...

    @property
    def nice(self) -> int: ...


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


_OWN_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_devnull_fd = -1


def _devnull() -> int:
    """One /dev/null descriptor for every job (opened once, close-on-exec)."""
    global _devnull_fd
    if _devnull_fd < 0:
        _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull_fd


def _open_streams(spec: LaunchSpec) -> tuple[list[int], tuple[int, int, int]]:
    """Open the job's stdin/stdout/stderr; returns the descriptors to close after the spawn
    and the three the job gets."""
    opened: list[int] = []

    def open_file(path: str, flags: int) -> int:
        if path in spec.streams:
            return spec.streams[path]
        if path in _OWN_STREAMS:
            return _OWN_STREAMS[path]
        fd = os.open(path, flags, 0o666)
        opened.append(fd)
        return fd

    try:
        stdin = (
            _devnull()
            if spec.input_path is None
            else open_file(spec.input_path, os.O_RDONLY | os.O_CLOEXEC)
        )
        stdout = _devnull() if spec.output_path is None else open_file(spec.output_path, _WRITE)
        if spec.join_files or (spec.error_path is not None and spec.error_path == spec.output_path):
            # One open file for both: they share the offset, so neither clobbers the other.
            stderr = stdout
        elif spec.error_path is None:
            stderr = _devnull()
        else:
            stderr = open_file(spec.error_path, _WRITE)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return opened, (stdin, stdout, stderr)


def _own_settings() -> tuple[dict[int, tuple[int, int]], int]:
    """This process's limits and nice value (read once: the keeper never changes them)."""
    global _own
    if _own is None:
        limits = {}
        for name in dir(resource):
            if name.startswith("RLIMIT_"):
                which = getattr(resource, name)
                limits[which] = resource.getrlimit(which)
        _own = (limits, os.getpriority(os.PRIO_PROCESS, 0))
    return _own


_own: tuple[dict[int, tuple[int, int]], int] | None = None


def _child_setup(spec: LaunchSpec) -> Callable[[], None] | None:
    """What must run in the child before ``exec`` for it to start with the submitter's limits
    and nice value and the job's own: None when that is nothing."""
    own_limits, own_nice = _own_settings()
    limits: dict[int, tuple[int, int]] = {}
    nice = own_nice
    if spec.settings is not None:
        nice = spec.settings.nice
        for which, soft, hard in spec.settings.rlimits:
            if own_limits.get(which) != (soft, hard):
                limits[which] = (soft, hard)
    for which, value in spec.rlimits:
        limits[which] = (value, value)
    nice += spec.nice
    if not limits and nice == own_nice:
        return None

    def apply() -> None:  # runs in the child between fork and exec
        for which, (soft, hard) in limits.items():
            _, own_hard = resource.getrlimit(which)
            if own_hard != resource.RLIM_INFINITY and (
                hard == resource.RLIM_INFINITY or hard > own_hard
            ):
                hard = own_hard  # only a privileged process may raise a hard limit
            if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
                soft = hard
            resource.setrlimit(which, (soft, hard))
        if nice != own_nice:
            with contextlib.suppress(OSError):  # below ours needs privilege
                os.setpriority(os.PRIO_PROCESS, 0, nice)

    return apply


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
        opened, streams = _open_streams(spec)
    except BaseException:
        if spec.launched is not None:
            spec.launched()
        raise
    before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    try:
        try:
            pid, popen = _start(spec, spec.executable, spec.argv, streams)
        except OSError as error:
            if error.errno != errno.ENOEXEC:
                raise
            argv = [_SHELL, spec.executable, *spec.argv[1:]]
            pid, popen = _start(spec, _SHELL, argv, streams)
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
    return Spawned(_identity_of_new_child(pid, before, after), pidfd, popen, child=True)


_SHELL = "/bin/sh"


def _start(
    spec: LaunchSpec, executable: str, argv: list[str], streams: tuple[int, int, int]
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """Fork and exec one job: (its pid, the Popen object if subprocess made it)."""
    umask = -1 if spec.settings is None else spec.settings.umask
    setup = _child_setup(spec)
    if _FORK_EXEC is not None and setup is None:
        return _fork_exec(spec, executable, argv, streams, umask), None
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
) -> int:
    """What ``Popen`` does for a job, without its Python work: the environment arrives as
    the ``K=V`` list exec takes (made once per plan)."""
    assert _FORK_EXEC is not None
    env_list = spec.env_list
    if env_list is None:
        env_list = [key + b"=" + value for key, value in spec.env.items()]
    read_end, write_end = os.pipe()
    try:
        try:
            pid = _FORK_EXEC(
                [os.fsencode(arg) for arg in argv],
                (os.fsencode(executable),),
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
            os.close(write_end)
        failure = bytearray()
        while True:  # empty once the exec succeeded
            part = os.read(read_end, 50000)
            failure += part
            if not part or len(failure) > 50000:
                break
    finally:
        os.close(read_end)
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


_FORK_EXEC = _checked_fork_exec()


_NS_PER_TICK = 1_000_000_000 // _CLOCK_TICKS


def _identity_of_new_child(pid: int, before_ns: int, after_ns: int) -> ProcessIdentity:
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
        fields = _stat_fields(int(entry))
        if fields is not None and int(fields[3]) == sid:
            yield int(entry)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _first_signal(pidfd: int | None, signum: int) -> bool:
    """Signal the job's leader through its pidfd: False if that very process has ended (its
    pid may be someone else's by now, so nothing may be sent by pid)."""
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
    victims = set(_descendants(leader, freeze=True))
    victims.update(_session_members(leader))
    signal_group(leader, signal.SIGKILL)
    for pid in victims:
        _kill(pid, signal.SIGKILL)


def continue_job(leader: int, pidfd: int | None = None) -> None:
    """SIGCONT the job's process group and every descendant (those that left the group too)."""
    if not _first_signal(pidfd, signal.SIGCONT):
        return
    signal_group(leader, signal.SIGCONT)
    for pid in _descendants(leader, freeze=False):
        _kill(pid, signal.SIGCONT)


def stop_job(leader: int, pidfd: int, confirm_timeout: float = 5.0) -> None:
    """Stop every process of the job and return once they are stopped.

    SIGTSTP goes first, so a job that handles it hears about the suspension; it is followed by
    SIGSTOP because a job may catch or ignore SIGTSTP, and the kernel discards SIGTSTP sent to
    an orphaned process group, which every setsid job is.
    """
    if not _first_signal(pidfd, signal.SIGTSTP):
        return
    signal_group(leader, signal.SIGTSTP)
    signal_group(leader, signal.SIGSTOP)
    descendants = _descendants(leader, freeze=True)
    # Confirmed from /proc for every process: it works for children and adopted jobs alike,
    # and a process stuck in uninterruptible sleep cannot block us beyond the deadline. The
    # stop itself takes microseconds; the checks back off from 50 µs.
    deadline = time.monotonic() + confirm_timeout
    for pid in (leader, *descendants):
        delay = 0.00005
        while process_state(pid) not in (None, "T", "t", "Z", "X"):
            if time.monotonic() > deadline:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.005)
