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
    state changes to the connections subscribed to them.

    Locks: the supervisor publishes with its own lock held, so publishing takes only
    ``_streams_lock``, which is held for nothing else than the set of subscribers; the
    supervisor's callback is switched on and off under ``_switch_lock``, never with the
    keeper's lock or ``_streams_lock`` held (the keeper's lock taken inside the supervisor's,
    and the supervisor's inside the keeper's, deadlocked the keeper)."""

    # Set by the keeper.
    _subscribers: set[Connection]
    _streams_lock: threading.Lock
    _switch_lock: threading.Lock
    supervisor: Supervisor

    def subscribe(self, connection: Connection) -> None:
        """Turn a connection into an event stream: every job state change, in order, until
        the client asks for the end (``flush``: what was queued before it is sent first)."""
        events: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        connection.events = events
        with self._switch_lock:
            with self._streams_lock:
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
        self.unsubscribe(connection)
        assert connection.events is not None
        connection.events.put(None if asked else _GONE)

    def unsubscribe(self, connection: Connection) -> None:
        """The connection's stream ends (or the connection did): it gets no more events, and
        the supervisor publishes none once no stream is left."""
        with self._switch_lock:
            with self._streams_lock:
                self._subscribers.discard(connection)
                none_left = not self._subscribers
            if none_left:
                self.supervisor.set_callback(None)

    def _publish(self, note: Notification) -> None:
        event = (note.job_id, note.session_name, int(note.job_state))
        with self._streams_lock:
            for connection in self._subscribers:
                if connection.events is not None:
                    connection.events.put(event)
