"""Reaching the keeper: a new connection to it, checked to be this user's, greeted, and the
keeper started first if nobody listens (see :mod:`~drmaa2_ostracker.keeper.starting`)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drmaa2.errors import (
    Drmaa2Exception,
    DrmCommunicationException,
    SessionManagementException,
)
from drmaa2_ostracker import __version__, faults
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.keeper.protocol import (
    HANDING_OVER,
    MAGIC,
    PROTOCOL,
    Channel,
    ConnectionLost,
    decode_error,
)
from drmaa2_ostracker.keeper.starting import KeeperVanished, spawn_keeper
from drmaa2_ostracker.keeper.stream import peer_pid

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.stream import EventStream

__all__ = ["Connecting"]

_CRED = struct.Struct("3i")

_log = logging.getLogger(__name__)


#: Keepers a connection starts that go away before it reaches them, at most.
_VANISHED_AT_MOST = 5
#: Seconds a client waits for a keeper of another version that hands over (it has no
#: unfinished job) to exit, before it reports the keeper's answer.
HANDOVER_WAIT = 10.0


class Connecting:
    """The part of the :class:`~drmaa2_ostracker.keeper.client.KeeperClient` that makes new
    connections to the keeper."""

    # Set by the client.
    state_dir: str
    keeper_pid: int | None
    _address: str
    _events: EventStream | None
    _event_callback: Callable[[tuple[Any, ...]], None] | None

    def _events_after_fork(self) -> None:
        raise NotImplementedError  # the client's: a forked child's event stream

    def _receive(self, channel: Channel) -> tuple[Any, list[int]]:
        raise NotImplementedError  # the client's: an answer, within its call's limit

    def connect(self, follow: bool = True) -> Channel:
        """A new connection to the keeper, started if it does not run. ``follow``: the event
        stream, if any, is subscribed to this keeper before this returns (a new keeper: the
        one it was subscribed to died)."""
        problem = ""
        vanished = 0
        for _ in range(10):
            channel = self._try_connect()
            if channel is None:
                try:
                    channel = self._start()
                except KeeperVanished:
                    # Killed while it started (say, by whoever kills keepers at random):
                    # start another, a few times (a keeper that dies of a bug each time
                    # says so after them).
                    vanished += 1
                    if vanished < _VANISHED_AT_MOST:
                        continue
                    raise
            try:
                self._hello(channel)
                stream = self._events
                if follow and stream is not None:
                    stream.follow(peer_pid(channel))
                elif follow and self._event_callback is not None:
                    try:
                        self._events_after_fork()
                    except (Drmaa2Exception, OSError) as error:
                        # The request goes on; the next connection subscribes again.
                        _log.warning("cannot subscribe to the keeper's events: %s", error)
                return channel
            except (ConnectionLost, ConnectionError) as error:
                # The keeper was exiting, or was killed: start anew.
                channel.close()
                problem = str(error)
                time.sleep(0.01)
        raise DrmCommunicationException(f"cannot reach the keeper of {self.state_dir}: {problem}")

    def _try_connect(self) -> Channel | None:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            if sock.fileno() <= 2:  # never in the place of a closed stdin, stdout or stderr
                sock = socket.socket(fileno=files.above_standard(sock.detach()))
        except OSError as error:
            fault = faults.resource_fault(self._address, error, "connect to the keeper at")
            if fault is not None:
                raise fault from None
            raise
        try:
            sock.connect(self._address)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except OSError as error:
            sock.close()
            raise DrmCommunicationException(
                f"cannot connect to the keeper of {self.state_dir}: {error.strerror}"
            ) from None
        pid, uid, _gid = _CRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
        )
        if uid != os.geteuid():
            sock.close()
            raise SessionManagementException(
                f"the keeper socket of {self.state_dir} belongs to user id {uid} (process "
                f"{pid}), not to this user: the state directory is not safe to use"
            )
        return Channel(sock)

    def _hello(self, channel: Channel) -> Channel:
        # A keeper that closed at once may have said why (out of descriptors): read that.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            channel.send(("hello", (MAGIC, PROTOCOL, __version__)))
        (ok, value), _ = self._receive(channel)
        if not ok:
            error = decode_error(value)
            if HANDING_OVER in str(error):
                # A keeper of another version with nothing unfinished: it exits at once.
                # Wait for that, then start this version's (the caller connects again).
                pid = peer_pid(channel)
                channel.close()
                if _wait_gone(pid, HANDOVER_WAIT):
                    raise ConnectionLost(f"the keeper {pid} of another version handed over")
                raise error
            channel.close()
            raise error
        self.keeper_pid = int(value[2])
        return channel

    def _start(self) -> Channel:
        """Start the keeper (unless another process just did) and connect to it."""
        lock = files.open_private(os.path.join(self.state_dir, files.START_LOCK))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            channel = self._try_connect()
            if channel is not None:
                return channel
            spawn_keeper(self.state_dir)  # the real path checked (a link may change since)
            channel = self._try_connect()
            if channel is None:  # it said it serves, then went away (killed)
                raise KeeperVanished(
                    f"the keeper of {self.state_dir} started but does not listen (see "
                    f"{os.path.join(self.state_dir, files.KEEPER_LOG)})"
                )
            return channel
        finally:
            os.close(lock)


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` exits within ``timeout`` seconds (or is gone already); False
    at once for a pid not to be seen here (0: the keeper is in another pid namespace)."""
    if pid <= 0:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:  # no pidfd here: look now and then
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:  # another user's process now: the keeper is gone
                return True
            time.sleep(0.01)
        return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(pidfd)
