"""The ``drmaa2`` command line: run, watch and control DRMAA2 jobs from a shell.

In the spirit of qsub/qstat/qdel for one machine, written only against the ``drmaa2`` API, so
it works with every backend (``--backend``)::

    drmaa2 run --array 1-4 --wait --output 'task-$DRMAA2_INDEX$.out' -- sh -c 'echo $TASK_ID'
    drmaa2 jobs
    drmaa2 info 1.2 --json

Jobs submitted by ``drmaa2 run`` belong to a *keeper*: a small background process, one per
session, that submits them through the API and stays their controlling process until every
one has finished (then it exits). A job must have a live controlling process for its exit
status to be recorded, for a queued array task or a held job to start, and for suspend,
resume, hold, release and terminate to reach it; the keeper is that process, whichever
shell ran ``drmaa2 run``. Control commands go to the session's keeper when one is running and
straight to the API otherwise. Waiting and every listing read the session through the API.

See ``docs/cli.md`` for the commands, the ``--json`` formats and the exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import hashlib
import json
import math
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TextIO

import drmaa2

__all__ = ["main"]

#: Exit statuses (a job's own exit status is passed on by ``run --wait`` and ``wait``).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: The session used when ``--session`` is not given.
DEFAULT_SESSION = "default"

_PROG = "drmaa2"
# Progress lines are redrawn, and job states polled, at most this often (seconds).
_TICK = 0.1
# A keeper with nothing left to keep exits after this many idle seconds.
_KEEPER_LINGER = 0.5
# How long a client tries to reach (or start) a session's keeper.
_KEEPER_REACH_SECONDS = 30.0
_KEEPER_COMMAND = "__keeper__"
# Extension keys read by name, so the CLI depends on no backend package.
_MAX_RSS_KIB = "ru_maxrss"
_CPU_USAGE = "cpu_usage"
_MEMORY_RSS = "memory_usage_rss"
_PROCESS_NAME = "name"
_COMMAND_LINE = "commandline"

# Paths naming the submitting process's own streams, which a kept job cannot reach.
_TERMINAL_STREAMS = frozenset({"/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty"})

_CONTROL_ACTIONS = ("suspend", "resume", "hold", "release", "terminate", "reap")
_CONTROL_HELP = {
    "suspend": "stop running jobs (SUSPENDED) until they are resumed",
    "resume": "continue suspended jobs",
    "hold": "keep queued jobs from starting (QUEUED_HELD)",
    "release": "let held jobs start",
    "terminate": "end jobs (queued ones end without starting)",
    "reap": "forget finished jobs (afterwards they are unknown)",
}


class _UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


# -- argument parsing ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, with a pointer to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _key_value(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected {what}=VALUE, got {text!r}")
    return key, value


def _env_arg(text: str) -> tuple[str, str]:
    """``K=V`` of ``--env``."""
    return _key_value(text, "NAME")


_LIMIT_NAMES = ", ".join(limit.name for limit in drmaa2.ResourceLimit)


def _limit_arg(text: str) -> tuple[str, int | float]:
    """``NAME=VALUE`` of ``--limit``: a ResourceLimit name (any case) and a number."""
    name, value = _key_value(text, "LIMIT")
    limit = drmaa2.ResourceLimit.__members__.get(name.upper())
    if limit is None:
        raise argparse.ArgumentTypeError(
            f"unknown resource limit {name!r} in {text!r}; expected one of {_LIMIT_NAMES}"
        )
    amount: int | float
    try:
        amount = int(value)
    except ValueError:
        try:
            amount = float(value)
        except ValueError:
            amount = -1
    if not (math.isfinite(amount) and amount >= 0):
        raise argparse.ArgumentTypeError(
            f"the value of {limit.name} must be a non-negative number "
            f"(KiB or seconds), got {value!r}"
        )
    return limit.name, amount


def _array_arg(text: str) -> tuple[int, int, int]:
    """``BEGIN-END[:STEP]`` of ``--array``."""
    span, _, step_text = text.partition(":")
    begin_text, dash, end_text = span.partition("-")
    try:
        begin, end = int(begin_text), int(end_text)
        step = int(step_text) if step_text else 1
    except ValueError:
        begin = end = step = 0
    if not dash or begin < 1 or end < begin or step < 1:
        raise argparse.ArgumentTypeError(
            f"expected BEGIN-END[:STEP] with 1 <= BEGIN <= END and STEP >= 1, got {text!r}"
        )
    return begin, end, step


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


_STATE_NAMES = ", ".join(state.name for state in drmaa2.JobState)


def _state_arg(text: str) -> drmaa2.JobState:
    state = drmaa2.JobState.__members__.get(text.upper())
    if state is None:
        raise argparse.ArgumentTypeError(
            f"unknown job state {text!r}; expected one of {_STATE_NAMES}"
        )
    return state


# -- formatting ------------------------------------------------------------------------------


def _duration(value: datetime.timedelta | None, *, millis: bool = True) -> str:
    """``H:MM:SS.mmm`` ("-" for None)."""
    if value is None:
        return "-"
    total_ms = round(value.total_seconds() * 1000)
    seconds, ms = divmod(total_ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{ms:03d}" if millis else text


def _size(kib: float | None) -> str:
    """A size given in KiB, human-readable with binary units ("-" for None)."""
    if kib is None:
        return "-"
    value, unit = float(kib), "K"
    for bigger in "MGT":
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f}{unit}" if unit == "K" or value >= 100 else f"{value:.1f}{unit}"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# A command line may hold newlines and tabs: one table row stays one line.
_CONTROL_CHARACTERS = dict.fromkeys([*range(32), 127], " ")


def _table(
    out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> None:
    """Print aligned columns (those listed in ``right`` right-aligned), cut to a terminal."""
    rows = [[cell.translate(_CONTROL_CHARACTERS) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    limit = shutil.get_terminal_size().columns if out.isatty() else None
    for row in (headers, *rows):
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        line = "  ".join(cells).rstrip()
        out.write((line[:limit] if limit else line) + "\n")


def _print_json(out: TextIO, data: object) -> None:
    out.write(json.dumps(data, indent=2) + "\n")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# -- sessions and ids ------------------------------------------------------------------------


def _open_session(args: argparse.Namespace) -> drmaa2.JobSession:
    """The ``--session`` job session, which must exist."""
    return drmaa2.open_job_session(args.session, args.contact, backend=args.backend)


def _find(session: drmaa2.JobSession, job_id: str) -> drmaa2.Job | drmaa2.JobArray:
    """The job, array task or job array with this id."""
    found = session.get_jobs({"job_id": job_id})
    if found:
        return found[0]
    with contextlib.suppress(drmaa2.InvalidArgumentException):
        return session.get_job_array(job_id)
    raise drmaa2.InvalidArgumentException(
        f"no job or job array {job_id!r} in session {session.name!r}"
    )


def _jobs_of(target: drmaa2.Job | drmaa2.JobArray) -> list[drmaa2.Job]:
    if isinstance(target, drmaa2.JobArray):
        tasks = target.job_list
        if not tasks:
            raise drmaa2.InvalidArgumentException(f"job array {target.id} has no tasks left")
        return tasks
    return [target]


def _exit_status(target: drmaa2.Job | drmaa2.JobArray) -> int:
    """0 for a DONE job or an array whose tasks are all DONE; a failed job's exit status."""
    if isinstance(target, drmaa2.JobArray):
        states = [job.get_state()[0] for job in target.job_list]
        return EXIT_OK if all(state is drmaa2.JobState.DONE for state in states) else EXIT_ERROR
    info = target.get_info()
    if info.job_state is drmaa2.JobState.DONE:
        return EXIT_OK
    status = info.exit_status
    return status if status is not None and 0 < status <= 255 else EXIT_ERROR


def _control(session: drmaa2.JobSession, action: str, job_ids: Sequence[str]) -> list[str | None]:
    """Apply ``action`` to each id; per id, None or the one-line error."""
    results: list[str | None] = []
    for job_id in job_ids:
        try:
            getattr(_find(session, job_id), action)()
        except drmaa2.Drmaa2Exception as error:
            results.append(_one_line(error))
        else:
            results.append(None)
    return results


# -- waiting and the progress line -----------------------------------------------------------


class _ProgressLine:
    """A line redrawn in place on a terminal: done / failed / running / queued, elapsed, rate."""

    def __init__(self, out: TextIO, label: str) -> None:
        self._out = out
        self._label = label
        self._width = 0

    def update(self, done: int, failed: int, running: int, queued: int, elapsed: float) -> None:
        rate = (done + failed) / elapsed if elapsed > 0 else 0.0
        since = (
            f"{elapsed:.1f}s"
            if elapsed < 60
            else _duration(datetime.timedelta(seconds=elapsed), millis=False)
        )
        text = (
            f"{self._label}: {done} done, {failed} failed, {running} running, {queued} queued"
            f" | {since} elapsed | {rate:.1f} tasks/s"
        )
        self._out.write("\r" + text.ljust(self._width))
        self._out.flush()
        self._width = len(text)

    def finish(self) -> None:
        if self._width:
            self._out.write("\n")
            self._out.flush()
            self._width = 0


def _wait_terminated(
    jobs: Sequence[drmaa2.Job], timeout: float | None, progress: _ProgressLine | None
) -> None:
    """Wait until every job is DONE or FAILED, polling their states (cheap: finished jobs
    are not asked again). TimeoutException after ``timeout`` seconds (None: forever)."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    pending = list(jobs)
    done = failed = 0
    while True:
        polled = time.monotonic()
        running = 0
        still: list[drmaa2.Job] = []
        for job in pending:
            state = job.get_state()[0]
            if state is drmaa2.JobState.DONE:
                done += 1
            elif state is drmaa2.JobState.FAILED:
                failed += 1
            else:
                still.append(job)
                running += state in (drmaa2.JobState.RUNNING, drmaa2.JobState.SUSPENDED)
        pending = still
        now = time.monotonic()
        if progress is not None:
            progress.update(done, failed, running, len(pending) - running, now - started)
        if not pending:
            return
        if deadline is not None and now >= deadline:
            named = ", ".join(job.id for job in pending[:3]) + (", ..." if len(pending) > 3 else "")
            raise drmaa2.TimeoutException(
                f"timed out after {timeout:g} s: {len(pending)} of {len(jobs)} job(s) have not "
                f"finished ({named})"
            )
        # Polling a big array costs time: never spend more than half of it polling.
        pause = max(_TICK, 2 * (now - polled))
        time.sleep(pause if deadline is None else min(pause, deadline - now))


def _wait_for(
    targets: Sequence[drmaa2.Job | drmaa2.JobArray], timeout: float | None, out: TextIO
) -> int:
    """Wait for jobs and arrays; the exit status of the last one."""
    jobs = [job for target in targets for job in _jobs_of(target)]
    progress = None
    if out.isatty() and any(isinstance(target, drmaa2.JobArray) for target in targets):
        ids = ", ".join(target.id for target in targets)
        progress = _ProgressLine(out, f"{'array' if len(targets) == 1 else 'jobs'} {ids}")
    try:
        _wait_terminated(jobs, timeout, progress)
    finally:
        if progress is not None:
            progress.finish()
    return _exit_status(targets[-1])


# -- the keeper ------------------------------------------------------------------------------
#
# One per (user, backend, contact, session), found at an abstract Unix socket address derived
# from them (Linux: no file to leave behind; binding the address is the lock that makes the
# keeper unique). Both ends check the peer's uid. A request is one JSON line; the reply is
# one JSON object: {"ok": true, ...} or {"ok": false, "error": class name, "message": text}.


class _KeeperLost(Exception):
    """The keeper closed the connection without replying (it was exiting): try again."""


def _keeper_address(backend: str, contact: str | None, session: str) -> str:
    key = json.dumps([os.getuid(), backend, contact, session])
    return "\0drmaa2-cli/" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _exchange(address: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """Send a request to the keeper at ``address``; None if no keeper listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        if _peer_uid(sock) != os.getuid():
            raise drmaa2.SessionManagementException(
                "the session keeper's address is held by a process of another user"
            )
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        except (ConnectionResetError, BrokenPipeError):
            raise _KeeperLost from None
    if not data:
        raise _KeeperLost
    reply: dict[str, Any] = json.loads(data)
    return reply


def _raise_reply(reply: dict[str, Any]) -> None:
    if reply.get("ok"):
        return
    cls = getattr(drmaa2, str(reply.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, drmaa2.Drmaa2Exception)):
        cls = drmaa2.InternalException
    raise cls(str(reply.get("message")))


def _start_keeper(backend: str, contact: str | None, session: str) -> None:
    """Start a keeper and wait until it listens (or finds that another one does)."""
    read_end, write_end = os.pipe()
    try:
        config = {"backend": backend, "contact": contact, "session": session, "fd": write_end}
        launcher = subprocess.Popen(
            [sys.executable, "-m", "drmaa2.cli", _KEEPER_COMMAND, json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    status = launcher.wait()  # it forks the keeper and exits at once
    chunks = []
    try:
        deadline = time.monotonic() + _KEEPER_REACH_SECONDS
        while (left := deadline - time.monotonic()) > 0 and select.select([read_end], [], [], left)[
            0
        ]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    answer = b"".join(chunks).decode(errors="replace").strip()
    if answer not in ("ready", "busy"):  # "busy": another keeper won the race; connect to it
        raise drmaa2.InternalException(
            f"could not start the keeper of session {session!r}: "
            f"'{sys.executable} -m drmaa2.cli' exited with status {status} and said nothing"
        )


def _keeper_call(
    session: drmaa2.JobSession, request: dict[str, Any], *, start: bool
) -> dict[str, Any] | None:
    """Send ``request`` to the session's keeper (started first if ``start``); None if there
    is no keeper and ``start`` is false."""
    address = _keeper_address(session.backend, session.contact, session.name)
    deadline = time.monotonic() + _KEEPER_REACH_SECONDS
    while True:
        try:
            reply = _exchange(address, request)
        except _KeeperLost:
            reply = None
            lost = True
        else:
            lost = False
        if reply is not None:
            _raise_reply(reply)
            return reply
        if not lost:
            if not start:
                return None
            _start_keeper(session.backend, session.contact, session.name)
        if time.monotonic() > deadline:
            raise drmaa2.DrmCommunicationException(
                f"could not reach the keeper of session {session.name!r}"
            )
        if lost:
            time.sleep(0.01)


class _Keeper:
    """Submits and controls the jobs of one session, and lives until they have all ended."""

    def __init__(self, backend: str, contact: str | None, session: str) -> None:
        self._backend = backend
        self._contact = contact
        self._session = session
        self._lock = threading.Lock()
        # os.environ and the working directory are per process: one submission at a time.
        self._submit_lock = threading.Lock()
        self._owned: deque[drmaa2.Job] = deque()
        self._current: drmaa2.JobSession | None = None
        self._active = 0
        self._last_activity = time.monotonic()

    def serve(self, listener: socket.socket) -> None:
        """Answer requests until no job is left and no client came for a while."""
        listener.settimeout(_TICK)
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                pass
            else:
                with self._lock:
                    self._active += 1
                    self._last_activity = time.monotonic()
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
            self._prune()
            with self._lock:
                idle = time.monotonic() - self._last_activity
                if not self._owned and not self._active and idle >= _KEEPER_LINGER:
                    return

    def _prune(self) -> None:
        """Forget the owned jobs that have ended (oldest first; one query per call mostly)."""
        while True:
            with self._lock:
                if not self._owned:
                    return
                job = self._owned[0]
            try:
                ended = job.get_state()[0].is_terminal
            except drmaa2.Drmaa2Exception:  # reaped, or its session destroyed
                ended = True
            if not ended:
                return
            with self._lock:
                self._owned.popleft()

    def _handle(self, conn: socket.socket) -> None:
        """Answer one client: read its request line, act, send the reply."""
        try:
            with conn:
                # A client that never finishes its request must not keep the keeper alive.
                conn.settimeout(_KEEPER_REACH_SECONDS)
                if _peer_uid(conn) != os.getuid():
                    return
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                try:
                    reply = self._answer(json.loads(data))
                except drmaa2.Drmaa2Exception as error:
                    reply = {"ok": False, "error": type(error).__name__, "message": str(error)}
                except Exception as error:
                    reply = {
                        "ok": False,
                        "error": "InternalException",
                        "message": f"session keeper: {type(error).__name__}: {error}",
                    }
                conn.sendall(json.dumps(reply).encode())
        except OSError:
            pass  # the client went away (or stalled): nobody is left to tell
        finally:
            with self._lock:
                self._active -= 1
                self._last_activity = time.monotonic()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "run":
            return self._run(request)
        with drmaa2.open_job_session(
            self._session, self._contact, backend=self._backend
        ) as session:
            return {"ok": True, "errors": _control(session, request["action"], request["ids"])}

    def _job_session(self) -> drmaa2.JobSession:
        """The session to submit to, opened once (again if it was destroyed meanwhile)."""
        names = drmaa2.get_job_session_names(self._contact, backend=self._backend)
        if self._current is None or self._session not in names:
            # Create-or-open; the session object an owned job refers to is never closed.
            self._current = drmaa2.JobSession(
                self._session, self._contact, destroy_on_exit=False, backend=self._backend
            )
        return self._current

    def _run(self, request: dict[str, Any]) -> dict[str, Any]:
        template = drmaa2.JobTemplate.from_dict(request["template"])
        with self._submit_lock:
            saved_env = dict(os.environ)
            try:
                # The job starts from the submitting shell's environment and directory.
                os.environ.clear()
                os.environ.update(request["env"])
                os.chdir(request["cwd"])
                session = self._job_session()
                array = request["array"]
                if array is None:
                    jobs = [session.run_job(template)]
                    job_id = jobs[0].id
                else:
                    begin, end, step = array
                    bulk = session.run_bulk_jobs(
                        template, begin, end, step, request["max_parallel"]
                    )
                    jobs, job_id = bulk.job_list, bulk.id
            finally:
                os.environ.clear()
                os.environ.update(saved_env)
                os.chdir("/")
        with self._lock:
            self._owned.extend(jobs)
        return {"ok": True, "id": job_id}


def _keeper_main(argv: Sequence[str]) -> int:
    """Entry of a keeper process (started by :func:`_start_keeper`, never by a user)."""
    config = json.loads(argv[0])
    ready = int(config["fd"])
    if os.fork():
        os._exit(0)  # the launcher: its parent waits for it; the keeper is reparented
    os.setsid()
    os.chdir("/")
    address = _keeper_address(config["backend"], config["contact"], config["session"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        os.write(ready, b"busy\n")  # another keeper holds the address
        return EXIT_OK
    listener.listen(64)
    os.write(ready, b"ready\n")
    os.close(ready)
    with listener:
        _Keeper(config["backend"], config["contact"], config["session"]).serve(listener)
    return EXIT_OK


# -- commands --------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise _UsageError("a command to run is required: drmaa2 run [OPTIONS] -- COMMAND [ARG...]")
    if args.max_parallel is not None and args.array is None:
        raise _UsageError("--max-parallel needs --array")
    for option, path in (
        ("--output", args.output),
        ("--error", args.error),
        ("--input", args.input),
    ):
        if path is not None and (path in _TERMINAL_STREAMS or path.startswith("/dev/fd/")):
            raise _UsageError(
                f"{option} {path}: the job runs in the background, not on this terminal; "
                f"give a file"
            )
    template: dict[str, Any] = {"remote_command": command[0], "args": command[1:]}
    optional = {
        "job_name": args.name,
        "working_directory": args.cwd,
        "output_path": args.output,
        "error_path": args.error,
        "input_path": args.input,
        "join_files": True if args.join else None,
        "submit_as_hold": True if args.hold else None,
        "job_environment": dict(args.env) if args.env else None,
        "resource_limits": dict(args.limit) if args.limit else None,
    }
    template.update({key: value for key, value in optional.items() if value is not None})
    # Create-or-open, so that the keeper finds the session and we learn where it lives.
    session = drmaa2.JobSession(
        args.session, args.contact, destroy_on_exit=False, backend=args.backend
    )
    with session:
        request = {
            "op": "run",
            "template": template,
            "array": args.array,
            "max_parallel": args.max_parallel,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
        }
        reply = _keeper_call(session, request, start=True)
        assert reply is not None
        job_id = str(reply["id"])
        try:
            out.write(job_id + "\n")
            out.flush()
            if not args.wait:
                return EXIT_OK
            target = session.get_job_array(job_id) if args.array else _find(session, job_id)
            return _wait_for([target], None, out)
        except KeyboardInterrupt:
            sys.stderr.write(
                f"{_PROG}: interrupted; job {job_id} keeps running "
                f"('{_PROG} terminate {job_id}' ends it)\n"
            )
            return EXIT_INTERRUPTED


def _info_rows(info: drmaa2.JobInfo) -> Iterator[tuple[str, str]]:
    data = info.to_dict()
    for key, value in data.items():
        if key == "implementation_specific":
            continue
        if key == "wallclock_time":
            text = _duration(info.wallclock_time)
        elif value is None or value == "":
            text = "-"
        elif isinstance(value, list):
            text = ", ".join(map(str, value)) or "-"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        yield key, text
    extension = info.implementation_specific or {}
    yield "implementation_specific", "" if extension else "-"
    for key, value in sorted(extension.items()):
        yield f"  {key}", value


def _cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    with _open_session(args) as session:
        target = _find(session, args.job)
        infos = [job.get_info() for job in _jobs_of(target)]
    if args.json:
        data = [info.to_dict() for info in infos]
        _print_json(out, data if isinstance(target, drmaa2.JobArray) else data[0])
        return EXIT_OK
    for number, info in enumerate(infos):
        if number:
            out.write("\n")
        rows = list(_info_rows(info))
        width = max(len(key) for key, _ in rows) + 1
        for key, text in rows:
            out.write(f"{key + ':':<{width}} {text}".rstrip() + "\n")
    return EXIT_OK


def _job_row(info: drmaa2.JobInfo) -> list[str]:
    state = info.job_state.name if info.job_state is not None else "-"
    rss = _number((info.implementation_specific or {}).get(_MAX_RSS_KIB))
    return [
        info.job_id or "-",
        info.job_name or "-",
        state,
        "-" if info.exit_status is None else str(info.exit_status),
        info.terminating_signal or "-",
        _duration(info.wallclock_time),
        _size(rss),
    ]


def _cmd_jobs(args: argparse.Namespace, out: TextIO) -> int:
    infos: list[drmaa2.JobInfo] = []
    never_used = args.session == DEFAULT_SESSION and DEFAULT_SESSION not in (
        drmaa2.get_job_session_names(args.contact, backend=args.backend)
    )
    if not never_used:
        with _open_session(args) as session:
            job_filter = None if args.state is None else {"job_state": args.state.name}
            for job in session.get_jobs(job_filter):
                with contextlib.suppress(drmaa2.InvalidArgumentException):  # reaped meanwhile
                    infos.append(job.get_info())
    if args.json:
        _print_json(out, [info.to_dict() for info in infos])
        return EXIT_OK
    headers = ["ID", "NAME", "STATE", "EXIT", "SIGNAL", "WALLCLOCK", "MAXRSS"]
    _table(out, headers, [_job_row(info) for info in infos], right=(3, 5, 6))
    return EXIT_OK


def _cmd_wait(args: argparse.Namespace, out: TextIO) -> int:
    with _open_session(args) as session:
        targets = [_find(session, job_id) for job_id in args.jobs]
        return _wait_for(targets, args.timeout, out)


def _cmd_control(args: argparse.Namespace, out: TextIO) -> int:
    with _open_session(args) as session:
        request = {"op": "control", "action": args.action, "ids": args.jobs}
        reply = _keeper_call(session, request, start=False)
        errors = _control(session, args.action, args.jobs) if reply is None else reply["errors"]
    for error in errors:
        if error is not None:
            sys.stderr.write(f"{_PROG}: error: {error}\n")
    return EXIT_ERROR if any(error is not None for error in errors) else EXIT_OK


def _cmd_sessions(args: argparse.Namespace, out: TextIO) -> int:
    names = drmaa2.get_job_session_names(args.contact, backend=args.backend)
    if args.json:
        _print_json(out, names)
    else:
        out.writelines(name + "\n" for name in names)
    return EXIT_OK


def _cmd_destroy(args: argparse.Namespace, out: TextIO) -> int:
    drmaa2.destroy_job_session(args.name, args.contact, backend=args.backend)
    return EXIT_OK


def _process(info: drmaa2.JobInfo) -> dict[str, Any]:
    """One ``ps --json`` object: its keys are documented in docs/cli.md."""
    ext = info.implementation_specific or {}
    rss = _number(ext.get(_MEMORY_RSS))
    return {
        "job_id": info.job_id,
        "user": info.job_owner,
        "state": None if info.job_state is None else info.job_state.name,
        "sub_state": info.job_sub_state,
        "cpu_percent": _number(ext.get(_CPU_USAGE)),
        "rss_bytes": None if rss is None else int(rss),
        "name": ext.get(_PROCESS_NAME, info.job_name),
        "command": ext.get(_COMMAND_LINE),
    }


def _cmd_ps(args: argparse.Namespace, out: TextIO) -> int:
    job_filter = None if args.user is None else {"job_owner": args.user}
    with drmaa2.open_monitoring_session(None, args.contact, backend=args.backend) as monitor:
        processes = []
        for job in monitor.get_all_jobs(job_filter):
            with contextlib.suppress(drmaa2.InvalidArgumentException):  # ended meanwhile
                processes.append(_process(job.get_info()))
    key = {"cpu": "cpu_percent", "mem": "rss_bytes"}.get(args.sort or "")
    if key is None:
        processes.sort(key=lambda p: (len(p["job_id"] or ""), p["job_id"] or ""))
    else:
        processes.sort(key=lambda p: -1 if p[key] is None else p[key], reverse=True)
    if args.json:
        _print_json(out, processes)
        return EXIT_OK
    rows = [
        [
            p["job_id"] or "-",
            p["user"] or "-",
            p["sub_state"] or p["state"] or "-",
            "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}",
            _size(None if p["rss_bytes"] is None else p["rss_bytes"] / 1024),
            p["name"] or "-",
            p["command"] or "-",
        ]
        for p in processes
    ]
    _table(out, ["PID", "USER", "STATE", "%CPU", "RSS", "NAME", "COMMAND"], rows, right=(0, 3, 4))
    return EXIT_OK


def _cmd_machines(args: argparse.Namespace, out: TextIO) -> int:
    with drmaa2.open_monitoring_session(None, args.contact, backend=args.backend) as monitor:
        machines = monitor.get_all_machines()
    if args.json:
        _print_json(out, [machine.to_dict() for machine in machines])
        return EXIT_OK
    rows = []
    for m in machines:
        topology = (m.sockets, m.cores_per_socket, m.threads_per_core)
        cpus = "-" if None in topology else str(math.prod(n for n in topology if n is not None))
        rows.append(
            [
                m.name or "-",
                {True: "yes", False: "no", None: "-"}[m.available],
                cpus,
                "-" if m.load is None else f"{m.load:.2f}",
                _size(m.phys_memory),
                _size(m.virt_memory),
                "-" if m.architecture is None else m.architecture.name,
                "-" if m.os is None else m.os.name,
                "-" if m.os_version is None else str(m.os_version),
            ]
        )
    headers = ["NAME", "AVAILABLE", "CPUS", "LOAD", "MEMORY", "VIRTUAL", "ARCH", "OS", "VERSION"]
    _table(out, headers, rows, right=(2, 3, 4, 5))
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------------

_EPILOG = """\
exit status: 0 ok; 1 DRMAA2 error, timeout, or a failed job without exit status (or a failed
array task); 2 usage error; 130 interrupted; with run --wait and wait: the job's exit status.
Jobs are kept running by a background keeper process per session. See docs/cli.md."""


_RUN_EPILOG = """\
examples:
  drmaa2 run -- sleep 60
  drmaa2 run --wait --output out.txt -- ./build.sh --fast
  drmaa2 run --array 1-100 --max-parallel 4 --wait -o 'log.$DRMAA2_INDEX$' -- sh -c 'work $TASK_ID'

The job is handed to the session's keeper, a background process that starts it from this
shell's environment and directory and stays its controlling process until it ends."""


def _global_options(parser: _Parser, default: object) -> None:
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--backend",
        metavar="NAME",
        default=default,
        help="DRMAA2 backend (default: $DRMAA2_BACKEND, else the only installed one)",
    )
    group.add_argument(
        "--contact",
        metavar="PATH",
        default=default,
        help="backend contact string; for the os backend, the state directory "
        "(default: $DRMAA2_OS_STATE_DIR, else $XDG_STATE_HOME/drmaa2-ostracker)",
    )


def _parser() -> _Parser:
    # The commands' copies of the global options set them only when given, so that a value
    # given before the command stands unless the same option follows it.
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    in_session = _Parser(add_help=False)
    in_session.add_argument(
        "--session",
        "-s",
        metavar="S",
        default=DEFAULT_SESSION,
        help=f"job session (default: {DEFAULT_SESSION!r}, created by the first run)",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON (see docs/cli.md)")

    top = _Parser(
        prog=_PROG,
        description="Run, watch and control DRMAA2 jobs from a shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(top, None)
    top.add_argument("--version", action="version", version=f"%(prog)s {drmaa2.__version__}")
    commands = top.add_subparsers(title="commands", dest="command_name", metavar="COMMAND")
    commands.required = True

    def command(
        name: str,
        handler: Callable[[argparse.Namespace, TextIO], int],
        summary: str,
        *extra: _Parser,
        epilog: str | None = None,
    ) -> _Parser:
        parents = [common, *extra]
        sub: _Parser = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
            parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    run = command(
        "run",
        _cmd_run,
        "submit a job or job array and print its id",
        in_session,
        epilog=_RUN_EPILOG,
    )
    run.add_argument("--name", "-N", metavar="N", help="job name")
    run.add_argument(
        "--array",
        "-a",
        metavar="BEGIN-END[:STEP]",
        type=_array_arg,
        help="submit a job array; each task gets $TASK_ID, and $DRMAA2_INDEX$ in paths "
        "is replaced by its index",
    )
    run.add_argument(
        "--max-parallel", metavar="N", type=_positive_int, help="run at most N tasks at once"
    )
    run.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    run.add_argument(
        "--env",
        "-e",
        metavar="K=V",
        action="append",
        type=_env_arg,
        help="set an environment variable (repeatable); the job inherits this shell's too",
    )
    run.add_argument("--output", "-o", metavar="PATH", help="file for the job's stdout")
    run.add_argument("--error", metavar="PATH", help="file for the job's stderr")
    run.add_argument("--join", "-j", action="store_true", help="send stderr to --output too")
    run.add_argument("--input", "-i", metavar="PATH", help="file for the job's stdin")
    run.add_argument("--hold", action="store_true", help="submit held (start with 'release')")
    run.add_argument(
        "--limit",
        "-l",
        metavar="NAME=VALUE",
        action="append",
        type=_limit_arg,
        help=f"resource limit (repeatable; sizes in KiB, times in seconds): {_LIMIT_NAMES}",
    )
    run.add_argument(
        "--wait",
        "-w",
        action="store_true",
        help="wait and exit with the job's exit status (array: 0 only if every task is "
        "DONE); shows progress on a terminal",
    )
    run.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]", help="what to run"
    )

    jobs = command(
        "jobs", _cmd_jobs, "list the jobs of a session (a table, or JSON)", in_session, as_json
    )
    jobs.add_argument("--state", metavar="STATE", type=_state_arg, help=f"only: {_STATE_NAMES}")

    info = command("info", _cmd_info, "show everything known about a job", in_session, as_json)
    info.add_argument("job", metavar="JOB", help="job id, array task id (3.2) or array id")

    wait = command("wait", _cmd_wait, "wait until jobs have finished", in_session)
    wait.add_argument("jobs", metavar="JOB", nargs="+", help="job, task or array ids")
    wait.add_argument(
        "--timeout",
        "-t",
        metavar="SECONDS",
        type=_seconds_arg,
        help="give up after this long (exit status 1)",
    )

    for action in _CONTROL_ACTIONS:
        control = command(action, _cmd_control, _CONTROL_HELP[action], in_session)
        control.add_argument("jobs", metavar="JOB", nargs="+", help="job, task or array ids")
        control.set_defaults(action=action)

    command("sessions", _cmd_sessions, "list the job sessions", as_json)
    destroy = command("destroy", _cmd_destroy, "forget a job session and its jobs' records")
    destroy.add_argument("name", metavar="SESSION")

    ps = command("ps", _cmd_ps, "list the machine's processes (monitoring session)", as_json)
    ps.add_argument("--user", "-u", metavar="U", help="only processes of this user")
    ps.add_argument("--sort", choices=("cpu", "mem"), help="largest first by CPU or memory")

    command("machines", _cmd_machines, "list the machines (monitoring session)", as_json)
    return top


# -- entry point -----------------------------------------------------------------------------


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings (a broken backend plugin, say) as one ``drmaa2: warning:`` line."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        sys.stderr.write(f"{_PROG}: warning: {' '.join(str(message).split())}\n")

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def main(argv: list[str] | None = None) -> int:
    """Run the ``drmaa2`` command line with ``argv`` (default: ``sys.argv[1:]``); return the
    exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == [_KEEPER_COMMAND]:
        return _keeper_main(arguments[1:])
    parser = _parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    out = sys.stdout
    try:
        with _one_line_warnings():
            status: int = args.handler(args, out)
        out.flush()
        return status
    except _UsageError as error:
        sys.stderr.write(
            f"{_PROG} {args.command_name}: error: {error} "
            f"(see '{_PROG} {args.command_name} --help')\n"
        )
        return EXIT_USAGE
    except drmaa2.Drmaa2Exception as error:
        sys.stderr.write(f"{_PROG}: error: {_one_line(error)}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped reading: say nothing more, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as error:
        sys.stderr.write(f"{_PROG}: error: {_one_line(error)}\n")
        return EXIT_ERROR
    except Exception as error:  # a bug: still one line, naming it
        sys.stderr.write(f"{_PROG}: internal error: {type(error).__name__}: {_one_line(error)}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
