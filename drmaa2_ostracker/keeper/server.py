"""The keeper: the one process per state directory that owns its jobs and its store.

It is the parent of every job of the state directory, runs the supervisor (reaping, arrays
and ``max_parallel``, hold/release, start times, deadlines, wallclock limits, event
notifications) and is the only writer of the store. Clients (API sessions, the CLI) talk to it
over the Unix socket ``keeper.sock`` in the state directory, mode 0600; it serves each
connection in a thread of its own and accepts only connections of its own user.

It starts on demand (:mod:`drmaa2_ostracker.keeper.client`) and exits on its own once it has
had no unfinished job and no client for ``$DRMAA2_OS_KEEPER_IDLE`` seconds (default
:data:`DEFAULT_IDLE_SECONDS`). On SIGTERM it answers the requests it has read and exits,
leaving its jobs running: the next keeper adopts them.

This module is the keeper's life: its lock, its socket, accepting and checking connections,
the greeting, the idle exit (its signals are set in :mod:`drmaa2_ostracker.keeper.__main__`,
which starts it). A connection's thread is in :mod:`~drmaa2_ostracker.keeper.connection`,
its answers to requests in :mod:`~drmaa2_ostracker.keeper.session_requests` and
:mod:`~drmaa2_ostracker.keeper.requests`, its event streams in
:mod:`~drmaa2_ostracker.keeper.events`, the care of its socket in
:mod:`~drmaa2_ostracker.keeper.listening`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from drmaa2_ostracker import __version__, faults
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.keeper.connection import Connection
from drmaa2_ostracker.keeper.events import EventStreams
from drmaa2_ostracker.keeper.listening import Listening
from drmaa2_ostracker.keeper.lock import KeeperLock
from drmaa2_ostracker.keeper.protocol import (
    MAGIC,
    PROTOCOL,
    Channel,
    ConnectionLost,
    version_refusal,
)
from drmaa2_ostracker.keeper.requests import Requests
from drmaa2_ostracker.keeper.sessions import SessionEngine
from drmaa2_ostracker.plan import Plan
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.orphans import Lineage
from drmaa2_ostracker.supervisor import Supervisor

__all__ = ["DEFAULT_IDLE_SECONDS", "IDLE_ENV", "Keeper"]

_log = logging.getLogger(__name__)

#: Environment variable: seconds the keeper stays without jobs and clients before it exits.
IDLE_ENV = "DRMAA2_OS_KEEPER_IDLE"
#: The default of ``$DRMAA2_OS_KEEPER_IDLE``.
DEFAULT_IDLE_SECONDS = 10.0
#: How often the keeper looks whether it is idle (seconds).
_IDLE_CHECK = 0.25
#: How long a stopping keeper lets its connections finish the requests they read (seconds).
HANG_UP_SECONDS = 10.0
_PEERCRED = struct.Struct("3i")


def idle_seconds() -> float:
    """``$DRMAA2_OS_KEEPER_IDLE`` (seconds), else the default."""
    value = os.environ.get(IDLE_ENV)
    if not value:
        return DEFAULT_IDLE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_IDLE_SECONDS
    return max(0.0, seconds)


class Keeper(Requests, EventStreams, Listening):
    """The keeper of one state directory (see the module docstring)."""

    def __init__(
        self, state_dir: str, idle: float | None = None, anchor: int | None = None
    ) -> None:
        self.state_dir = os.path.abspath(state_dir)
        #: This keeper and its anchor (the parent that keeps its jobs' ends if it is
        #: killed: see :mod:`~drmaa2_ostracker.keeper.anchor`), and the keepers before it.
        self.lineage = Lineage.of(os.getpid(), anchor)
        self.lineages_before: list[Lineage] = []
        self.idle = idle_seconds() if idle is None else idle
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._subscribers: set[Connection] = set()
        self._streams_lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._engines: dict[str, SessionEngine] = {}
        self._destroying: collections.Counter[str] = collections.Counter()
        self._plans: collections.OrderedDict[tuple[int, int], Plan] = collections.OrderedDict()
        self._retire = False
        #: SIGTERM came: the keeper hangs up and exits, leaving its jobs running.
        self._stopping = False
        #: A pipe written to by the SIGTERM handler, so that the main thread's poll returns.
        self._stop_pipe = (-1, -1)
        self._dir_fd = -1
        #: A descriptor kept free to turn away connections when the keeper is out of them.
        self._spare_fd = -1
        self._listener: socket.socket | None = None
        #: Why the state directory is no longer safe to use (its mode or owner changed
        #: since: looked at every quarter of a second), or None: while it is not, every
        #: request is refused saying why (its jobs go on).
        self.unsafe: str | None = None
        self.store: Store | None = None
        self.supervisor = Supervisor()
        self.handlers: dict[str, Callable[..., Any]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_do_")
        }

    # -- life ------------------------------------------------------------------------------

    def run(self, ready: Callable[[str], None]) -> None:
        """Take the keeper lock, open and recover the store, listen, call ``ready("ready")``,
        and serve until idle or told to stop. If it cannot start, it raises (and the caller
        reports why)."""
        files.check_state_dir(self.state_dir)
        lock = KeeperLock(self.state_dir)
        try:
            lock.take(lambda: self._stopping, served=self._served_already)
            self.lineages_before = lock.before
            self.store = store = Store(self.state_dir)
            # The anchor's file is made before the keeper notes itself (see settle_in): a
            # keeper killed in between is noted nowhere, and forked nothing. (Noted first,
            # such a keeper left its jobs' starts undecided: FAILED start_unconfirmed.)
            if not store.orphans.settle_in(self.lineage.anchor, self.lineages_before):
                self.lineage = dataclasses.replace(self.lineage, anchor=None)
            lock.note(self.lineage)
            self._open()
            if self.supervisor.all_written():  # what the keepers before left is decided
                self.lineage = dataclasses.replace(self.lineage, recovered=True)
                lock.note(self.lineage)
            ready("ready")
            if not self._serve():
                self._close()
        finally:
            lock.close()

    def _open(self) -> None:
        store = self.store
        assert store is not None
        _ = store.launches  # read before recovery, before this keeper starts a job
        store.open_ends()  # the ends a killed keeper did not store yet, stored before recovery
        self.supervisor.session_opened()  # the reaper stays ready while the keeper lives
        self.start_replay()  # what recovery changes reaches the streams that follow
        for name in store.session_names():
            self._engine(name).recover()
        if not self.supervisor.has_unfinished() and not self.replaying():
            self.end_replay(now=True)  # nothing was recovered: no stream has anything to get
        store.orphans.clear_stale(self.lineage.anchor)
        self._dir_fd = os.open(self.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        files.clear_socket(os.path.join(self.state_dir, files.SOCKET))
        self._listener = self._listen()

    def _serve(self) -> bool:
        """Serve until idle (True: the keeper closed) or stopped (False)."""
        listener = self._listener
        assert listener is not None
        self._spare_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        poller = select.poll()
        poller.register(listener.fileno(), select.POLLIN)
        self._stop_pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        poller.register(self._stop_pipe[0], select.POLLIN)
        idle_since: float | None = None
        checked = time.monotonic()
        while not self._stopping:
            ready = poller.poll(_IDLE_CHECK * 1000)
            if time.monotonic() - checked >= _IDLE_CHECK:
                checked = time.monotonic()
                self._keep_socket(poller)
                self.unsafe = files.unsafe_state_dir(self.state_dir)
                self.end_replay()
            if ready:
                listener = self._listener
                if not self._stopping and listener is not None:
                    self._accept(listener)
                idle_since = None
                continue
            if not self._idle():
                idle_since = None
                continue
            now = time.monotonic()
            if idle_since is None:
                idle_since = now
            if (self._retire or now - idle_since >= self.idle) and self._exit_if_idle(poller):
                return True
        return False

    def _idle(self) -> bool:
        if self._retire:
            if not self.supervisor.has_unfinished():
                return True
            # Held jobs of a removed or replaced directory: nobody can release them any more.
            return self.supervisor.only_held_left() and not self._same_directory()
        if self.supervisor.has_unfinished():
            return False
        with self._lock:
            return not self._connections

    def _exit_if_idle(self, poller: select.poll) -> bool:
        """Exit unless a client came meanwhile: under the start lock, so that nobody starts a
        keeper while this one is going; a client that connects in between sees the
        connection closed and starts anew. (A keeper whose state directory was removed or
        replaced touches nothing there: it is another keeper's now, or none.)"""
        if not self._same_directory():
            self.supervisor.flush()
            if not self._idle():
                return False
            self._close()
            return True
        fd = files.open_private(os.path.join(self.state_dir, files.START_LOCK))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # A client is starting a keeper (it found no socket to connect to): the one
                # it starts waits for this one's lock, and steps aside once this one listens;
                # waiting for the client here, this one would let neither go on.
                return False
            if self._stopping or (poller.poll(0) and not self._retire):
                return False
            # Job ends still in the ring are written now: if that fails (a full disk), the
            # keeper holds them unwritten, and stays until it has written them.
            self.supervisor.flush()
            if self.supervisor.has_unfinished():
                return False
            try:
                os.unlink(os.path.join(self.state_dir, files.SOCKET))
            except FileNotFoundError:
                pass
            except OSError as error:  # (the directory made read-only): a socket left behind
                _log.warning("cannot remove the socket as it exits: %s", error)
            self._close()
            return True
        finally:
            os.close(fd)

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._hang_up()
        pipe, self._stop_pipe = self._stop_pipe, (-1, -1)  # forgotten first: see stop()
        for fd in pipe:
            if fd >= 0:
                os.close(fd)
        for engine in self._engines.values():
            with contextlib.suppress(Exception):
                engine.close()
        self.supervisor.closing()
        self.supervisor.flush()
        if self.store is not None:
            self.store.close()

    def stop(self, signum: int, frame: object) -> None:
        """SIGTERM: stop serving (jobs keep running; the next keeper adopts them). The main
        thread hangs up on its clients and exits once the requests it read are answered."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._stop_pipe[1], b"x")

    def _hang_up(self) -> None:
        """Before the store closes: every request a client sent is answered, or never read.

        The keeper stops reading: a client's requests already in its connection are
        handled and answered as usual, one it sends from now on fails to send (and the
        client sends it to the next keeper), and waits end unanswered (the client waits
        again, with the next keeper). Event streams are left to end with the process."""
        with self._lock:
            connections = [c for c in self._connections if c.events is None]
        for connection in connections:
            connection.channel.shutdown_reading()
        self.supervisor.interrupt_waits()
        deadline = time.monotonic() + HANG_UP_SECONDS
        for connection in connections:
            thread = connection.thread
            while thread is not None and thread.is_alive() and connection.events is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    _log.warning(
                        "stopping with a request of process %d still in hand",
                        connection.peer_pid,
                    )
                    break
                thread.join(min(left, 0.05))  # not for one that became an event stream

    # -- connections -------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                self._turn_away(listener, error)
            return
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        if uid != os.geteuid():
            _log.warning("refused a connection of user id %d (process %d)", uid, pid)
            sock.close()
            return
        connection = Connection(self, Channel(sock), pid)
        with self._lock:
            self._connections.add(connection)
        try:
            connection.thread = threading.Thread(
                target=connection.serve, name=f"client-{pid}", daemon=True
            )
            connection.thread.start()
        except RuntimeError:  # "can't start new thread": the process or thread limit
            with self._lock:
                self._connections.discard(connection)
            limit = faults.limit_text(resource.getrlimit(resource.RLIMIT_NPROC)[0])
            _refuse(
                connection.channel,
                f"the keeper of {self.state_dir} cannot start a thread for this connection: "
                f"the limit on processes or threads is reached (RLIMIT_NPROC = {limit}, or "
                f"the system's kernel.threads-max); try again once jobs have ended",
            )

    def _turn_away(self, listener: socket.socket, error: OSError) -> None:
        """Out of descriptors: take the waiting connection with the spare one, tell it why,
        and close it (left waiting, the client would hang and the keeper spin on it)."""
        if self._spare_fd < 0:
            time.sleep(0.01)  # no spare: do not spin while the client waits
            return
        os.close(self._spare_fd)
        self._spare_fd = -1
        try:
            sock, _ = listener.accept()
        except OSError:
            sock = None
        if sock is not None:
            limit = faults.limit_text(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            why = (
                f"the keeper has too many open files (RLIMIT_NOFILE = {limit})"
                if error.errno == errno.EMFILE
                else "the system has too many open files (fs.file-max)"
            )
            _refuse(
                Channel(sock),
                f"the keeper of {self.state_dir} cannot take this connection: {why}; try "
                f"again once jobs have ended",
            )
        with contextlib.suppress(OSError):
            self._spare_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def greet(self, channel: Channel) -> bool:
        """Answer a client's hello; False (and the reason sent) if it cannot be served."""
        (hello, _fds) = channel.receive()
        try:
            method, (magic, protocol, version) = hello
        except (TypeError, ValueError):
            return False
        if method != "hello" or magic != MAGIC:
            return False
        if protocol != PROTOCOL or version != __version__:
            unfinished = self.supervisor.unfinished_count()
            self._retire = True
            refusal = version_refusal(
                self.state_dir, (__version__, PROTOCOL), (version, protocol), unfinished
            )
            channel.send((False, ("SessionManagementException", refusal)))
            return False
        channel.send((True, (PROTOCOL, __version__, os.getpid())))
        return True

    def disconnected(self, connection: Connection) -> None:
        """A connection ended."""
        with self._lock:
            self._connections.discard(connection)
        if connection.events is not None:
            self.unsubscribe(connection)


def _refuse(channel: Channel, message: str) -> None:
    """Answer a client's hello with OutOfResourceException, and hang up."""
    try:
        channel.send((False, ("OutOfResourceException", message)))
    except (ConnectionLost, OSError):
        pass
    finally:
        channel.close()
