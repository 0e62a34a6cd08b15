"""The keeper's event streams: a client subscribes, and gets every job state change in order
until it asks for the end."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import TYPE_CHECKING, Any

from drmaa2.types import Notification
from drmaa2_ostracker.supervisor import Supervisor

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.connection import Connection

__all__ = ["EventStreams"]

#: Queued on an event stream when its client asks for a flush.
_FLUSH: tuple[Any, ...] = ("flush",)
#: Queued when the client hung up, or the keeper stopped reading (it is stopping): the stream
#: ends without "end", which would tell the client it asked for the end (it follows the next
#: keeper instead).
_GONE: tuple[Any, ...] = ("gone",)


class EventStreams:
    """The part of the :class:`~drmaa2_ostracker.keeper.server.Keeper` that publishes job
    state changes to the connections subscribed to them."""

    # Set by the keeper; its lock also guards its connections and sessions.
    _lock: threading.Lock
    _subscribers: set[Connection]
    supervisor: Supervisor

    def subscribe(self, connection: Connection) -> None:
        """Turn a connection into an event stream: every job state change, in order, until
        the client asks for the end (``flush``: what was queued before it is sent first)."""
        events: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        connection.events = events
        with self._lock:
            self._subscribers.add(connection)
            self.supervisor.set_callback(self._publish)
        connection.channel.send((True, None))
        stopper = threading.Thread(target=self._await_unsubscribe, args=(connection,), daemon=True)
        stopper.start()
        while True:
            event = events.get()
            if event is None:
                connection.channel.send(("end", ()))
                return
            if event is _GONE:
                return
            if event is _FLUSH:
                connection.channel.send(("flushed", ()))
            else:
                connection.channel.send(("event", event))

    def _await_unsubscribe(self, connection: Connection) -> None:
        """The client of an event stream asks for flushes (``flushed`` comes once the events
        queued before are sent); any other message, or hanging up, is the end."""
        assert connection.events is not None
        asked = False
        with contextlib.suppress(Exception):
            while True:
                (method, _), _ = connection.channel.receive()
                if method != "flush":
                    asked = True
                    break
                connection.events.put(_FLUSH)
        with self._lock:
            self._subscribers.discard(connection)
            if not self._subscribers:
                self.supervisor.set_callback(None)
        assert connection.events is not None
        connection.events.put(None if asked else _GONE)

    def _publish(self, note: Notification) -> None:
        event = (note.job_id, note.session_name, int(note.job_state))
        with self._lock:
            for connection in self._subscribers:
                if connection.events is not None:
                    connection.events.put(event)
