"""The CLI's session keeper: the background process that owns the jobs ``drmaa2 run`` submits.

A job needs a live controlling process for its exit status to be recorded, for a queued array
task or a held job to start, and for suspend, resume, hold, release and terminate to reach it.
``drmaa2 run`` exits at once, so it hands the job to the session's keeper: a small background
process, one per (user, backend, contact, session), that submits it through the API from the
submitting shell's environment and directory and stays its controlling process until every job
it submitted has ended (then it exits). Control commands go to the keeper when one is running.

The commands use it through :func:`submit`, :func:`refuse_terminal_paths` and :func:`control`
only; a keeper process is ``python -m drmaa2.cli __keeper__ CONFIG`` (see
``drmaa2/cli/__main__.py``), started by :func:`submit`.

A keeper is found at an abstract Unix socket address derived from its key (Linux: no file to
leave behind; binding the address is the lock that makes the keeper unique). Both ends check
the peer's uid. A request is one JSON line; the reply is one JSON object: ``{"ok": true, ...}``
or ``{"ok": false, "error": class name, "message": text}``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import drmaa2
from drmaa2.cli.errors import UsageError
from drmaa2.cli.targets import act_on

#: The first argument of ``python -m drmaa2.cli`` that makes the process a keeper.
COMMAND = "__keeper__"

# A keeper with nothing left to keep exits after this many idle seconds.
_LINGER = 0.5
# How long a client tries to reach (or start) a session's keeper.
_REACH_SECONDS = 30.0
# How often a keeper looks for ended jobs while no client connects (seconds).
_TICK = 0.1

# Paths naming the submitting process's own streams, which a kept job cannot reach.
_TERMINAL_STREAMS = frozenset({"/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty"})


def refuse_terminal_paths(paths: Mapping[str, str | None]) -> None:
    """UsageError if a path (by option: ``{"--output": path}``) names this terminal's
    streams, which a job started by the keeper cannot reach."""
    for option, path in paths.items():
        if path is not None and (path in _TERMINAL_STREAMS or path.startswith("/dev/fd/")):
            raise UsageError(
                f"{option} {path}: the job runs in the background, not on this terminal; "
                f"give a file"
            )


def submit(
    session: drmaa2.JobSession,
    template: dict[str, Any],
    array: tuple[int, int, int] | None,
    max_parallel: int | None,
) -> str:
    """Have the session's keeper (started if none runs) submit a job, or a job array of
    ``(begin, end, step)``, from this process's environment and working directory; its id."""
    request = {
        "op": "run",
        "template": template,
        "array": array,
        "max_parallel": max_parallel,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
    }
    reply = _call(session, request, start=True)
    assert reply is not None
    return str(reply["id"])


def control(
    session: drmaa2.JobSession, action: str, job_ids: Sequence[str]
) -> list[str | None] | None:
    """Have the session's keeper apply ``action`` to each id, as
    :func:`~drmaa2.cli.targets.act_on` does; None if no keeper runs."""
    reply = _call(session, {"op": "control", "action": action, "ids": list(job_ids)}, start=False)
    return None if reply is None else list(reply["errors"])


def main(argv: Sequence[str]) -> int:
    """Entry of a keeper process (started by :func:`submit`, never by a user)."""
    config = json.loads(argv[0])
    ready = int(config["fd"])
    if os.fork():
        os._exit(0)  # the launcher: its parent waits for it; the keeper is reparented
    os.setsid()
    os.chdir("/")
    address = _address(config["backend"], config["contact"], config["session"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        os.write(ready, b"busy\n")  # another keeper holds the address
        return 0
    listener.listen(64)
    os.write(ready, b"ready\n")
    os.close(ready)
    with listener:
        _Keeper(config["backend"], config["contact"], config["session"]).serve(listener)
    return 0


# -- the client side -------------------------------------------------------------------------


class _KeeperLost(Exception):
    """The keeper closed the connection without replying (it was exiting): try again."""


def _address(backend: str, contact: str | None, session: str) -> str:
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


def _start(backend: str, contact: str | None, session: str) -> None:
    """Start a keeper and wait until it listens (or finds that another one does)."""
    read_end, write_end = os.pipe()
    try:
        config = {"backend": backend, "contact": contact, "session": session, "fd": write_end}
        launcher = subprocess.Popen(
            [sys.executable, "-m", "drmaa2.cli", COMMAND, json.dumps(config)],
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
        deadline = time.monotonic() + _REACH_SECONDS
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


def _call(
    session: drmaa2.JobSession, request: dict[str, Any], *, start: bool
) -> dict[str, Any] | None:
    """Send ``request`` to the session's keeper (started first if ``start``); None if there
    is no keeper and ``start`` is false."""
    address = _address(session.backend, session.contact, session.name)
    deadline = time.monotonic() + _REACH_SECONDS
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
            _start(session.backend, session.contact, session.name)
        if time.monotonic() > deadline:
            raise drmaa2.DrmCommunicationException(
                f"could not reach the keeper of session {session.name!r}"
            )
        if lost:
            time.sleep(0.01)


# -- the keeper process ----------------------------------------------------------------------


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
                if not self._owned and not self._active and idle >= _LINGER:
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
                conn.settimeout(_REACH_SECONDS)
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
            return {"ok": True, "errors": act_on(session, request["action"], request["ids"])}

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
