"""A client's event stream: the job state changes its keeper publishes, read by a thread of
its own and handed to a callback (see :meth:`KeeperClient.subscribe
<drmaa2_ostracker.keeper.client.KeeperClient.subscribe>`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drmaa2 import errors
from drmaa2_ostracker.keeper.protocol import Channel, ConnectionLost, decode_error

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.client import KeeperClient

__all__ = ["FLUSH_TIMEOUT", "RESUBSCRIBE_TIMEOUT", "EventStream"]

_log = logging.getLogger(__name__)


class EventStream:
    """A connection turned into a stream of events, read by a thread of its own.

    If the keeper dies, the stream subscribes again to the next one: the client's first
    connection to a new keeper waits until the stream follows it (:meth:`follow`), so every
    change made through this client afterwards is delivered; the reading thread also
    subscribes again by itself. Only the changes published by the dead keeper and not yet
    sent are lost.
    """

    def __init__(
        self,
        client: KeeperClient,
        callback: Callable[[tuple[Any, ...]], None],
        after: EventStream | None = None,
    ) -> None:
        self._client = client
        self._callback = callback
        #: The stream this one follows (stopped, and maybe still delivering what was
        #: published before): this one delivers once its thread has ended, so a callback
        #: never runs in two threads at once, and a job's changes come in order.
        self._after = after
        self._stopped = False
        self._cond = threading.Condition()
        #: Held while subscribing: one subscription at a time.
        self._subscribing = threading.Lock()
        #: Flush requests sent, and their answers received (on the current connection).
        self._asked = 0
        self._answered = 0
        self._keeper_pid: int | None = None
        self._channel, self._keeper_pid = self._subscribe()
        self._thread = threading.Thread(target=self._read, name="drmaa2-events", daemon=True)
        self._thread.start()

    def _subscribe(self) -> tuple[Channel, int]:
        """A new connection subscribed to the keeper's events, and the keeper's pid. A
        stream that follows a killed keeper names it: the new keeper sends first what it
        changed since it started (its recovery, before the stream could subscribe)."""
        channel = self._client.connect(follow=False)
        try:
            pid = peer_pid(channel)
            before = self._keeper_pid
            channel.send(("subscribe", () if before is None else (before,)))
            (ok, value), _ = channel.receive()
        except BaseException:
            channel.close()
            raise
        if not ok:
            channel.close()
            raise decode_error(value)
        return channel, pid

    def _replace(self) -> None:
        """Subscribe anew and read from there on (``_subscribing`` held)."""
        channel, pid = self._subscribe()
        with self._cond:
            old, self._channel, self._keeper_pid = self._channel, channel, pid
            self._answered = self._asked  # nothing more comes for the flushes sent on old
            self._cond.notify_all()
            stopped = self._stopped
        with contextlib.suppress(OSError):
            old.sock.shutdown(socket.SHUT_RDWR)  # the reading thread leaves it
        if stopped:  # stop() sent its end on the old connection
            with contextlib.suppress(OSError):
                channel.send(("unsubscribe", ()))

    def follow(self, keeper_pid: int) -> None:
        """The client reached the keeper ``keeper_pid``: subscribe to it if the stream is
        still on another one (a keeper that died), before the client's request is sent."""
        if self._thread is threading.current_thread():
            return  # a callback's call: the reading thread subscribes again itself
        with self._subscribing:
            with self._cond:
                if self._stopped or self._keeper_pid == keeper_pid:
                    return
            try:
                self._replace()
            except (errors.Drmaa2Exception, ConnectionLost, OSError) as error:
                # The reading thread tries again when it sees the old connection end.
                _log.warning("cannot subscribe to the keeper %d's events: %s", keeper_pid, error)

    def _read(self) -> None:
        try:
            if self._after is not None:
                self._after.thread.join()
                self._after = None  # (the chain of streams waited for ends here)
            self._deliver()
        finally:
            with self._cond:
                self._answered = self._asked
                self._cond.notify_all()
                stopped = self._stopped
                channel = self._channel
            if stopped:  # (closed here when its stop could not wait for this thread)
                channel.close()

    def _waited_for_by_current(self) -> bool:
        """Whether the calling thread is this stream's, or one this stream waits for before
        it delivers (a callback of a stream before it): waiting for this stream there would
        wait for itself."""
        current = threading.current_thread()
        stream: EventStream | None = self
        while stream is not None:
            if stream._thread is current:
                return True
            stream = stream._after
        return False

    def _deliver(self) -> None:
        while True:
            channel = self._channel
            try:
                (kind, value), _ = channel.receive()
            except (ConnectionLost, OSError):
                if not self._again(channel):
                    return
                continue
            if kind == "end":
                return
            if kind == "flushed":
                with self._cond:
                    self._answered += 1
                    self._cond.notify_all()
            else:
                self._callback(value)

    def _again(self, broken: Channel) -> bool:
        """The connection ``broken`` ended: go on with the one that replaced it, or subscribe
        again, unless the stream was stopped; whether it goes on."""
        with self._subscribing:
            with self._cond:
                if self._channel is not broken:
                    broken.close()
                    return True  # follow() subscribed already
                self._answered = self._asked
                self._cond.notify_all()
                if self._stopped:
                    return False
            _log.warning(
                "the keeper of %s went away; subscribing again to its job state changes",
                self._client.state_dir,
            )
            delay = 0.05
            deadline = time.monotonic() + RESUBSCRIBE_TIMEOUT
            while True:
                with self._cond:
                    if self._stopped:
                        return False
                try:
                    self._replace()
                except (errors.Drmaa2Exception, ConnectionLost, OSError) as error:
                    if time.monotonic() + delay > deadline:
                        _log.error(
                            "no more job state changes of %s: %s", self._client.state_dir, error
                        )
                        return False
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                broken.close()
                return True

    def flush(self) -> None:
        """Wait until the events published before this call were delivered."""
        if self._waited_for_by_current():
            return  # a callback closing a session: it would wait for itself
        with self._cond:
            if self._stopped:
                return
            try:
                self._channel.send(("flush", ()))
            except OSError:
                return
            self._asked += 1
            asked = self._asked
            self._cond.wait_for(lambda: self._answered >= asked, FLUSH_TIMEOUT)

    @property
    def running(self) -> bool:
        """Whether the stream still delivers (not stopped, its reading thread alive)."""
        with self._cond:
            return not self._stopped and self._thread.is_alive()

    def set_callback(self, callback: Callable[[tuple[Any, ...]], None]) -> None:
        """Deliver the events from the next one on to ``callback`` instead (none is lost)."""
        self._callback = callback

    @property
    def thread(self) -> threading.Thread:
        """The thread that reads and delivers the stream's events."""
        return self._thread

    def ask_stop(self) -> None:
        """Ask for the end (the keeper sends what was published before, then ends; see
        :meth:`wait_stopped`)."""
        with self._cond:
            self._stopped = True
            channel = self._channel
        with contextlib.suppress(OSError):
            channel.send(("unsubscribe", ()))

    def wait_stopped(self) -> None:
        """Wait until the events published before :meth:`ask_stop` were delivered (at once
        in the delivering thread itself: a callback that unsubscribes; and in the thread of
        a stream this one waits for, whose callback would wait for itself: this stream's
        thread then delivers them, and closes its connection)."""
        if self._thread is not threading.current_thread():
            if self._waited_for_by_current():
                return
            self._thread.join(30.0)
        with self._cond:
            channel = self._channel
        channel.close()


def peer_pid(channel: Channel) -> int:
    """The pid of the process at the other end of a connection (the keeper that listens)."""
    pid, _uid, _gid = _CRED.unpack(
        channel.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
    )
    return int(pid)


_CRED = struct.Struct("3i")


#: Seconds an event stream whose keeper died tries to subscribe again.
RESUBSCRIBE_TIMEOUT = 30.0
#: Seconds a flush of the event stream waits at most (a keeper that stopped answering).
FLUSH_TIMEOUT = 30.0
