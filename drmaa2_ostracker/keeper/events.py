"""The keeper's event streams: a client subscribes, and gets every job state change in order
until it asks for the end."""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from drmaa2.types import Notification
from drmaa2_ostracker.supervisor import Supervisor

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.connection import Connection
    from drmaa2_ostracker.keeper.sessions import SessionEngine

__all__ = ["REPLAY_MOST", "REPLAY_SECONDS", "EventStreams"]

#: How long a keeper keeps the changes since its start for the event streams of a killed
#: keeper's clients (they follow within moments: their reading thread subscribes anew as soon
#: as the old keeper's stream ends), and how many at most.
REPLAY_SECONDS = 10.0
REPLAY_MOST = 100_000

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
    _engines: dict[str, SessionEngine]
    #: The changes published since this keeper started, kept for the streams that follow a
    #: killed keeper to this one (see :meth:`start_replay`); None once the window is over.
    _replay: collections.deque[tuple[Any, ...]] | None = None
    _replay_until = 0.0

    def start_replay(self) -> None:
        """Keep every change from now on (before recovery) for the event streams of a
        killed keeper's clients, which subscribe to this keeper moments after it started:
        what its recovery changed (jobs that ended while no keeper ran, tasks it started)
        reaches them too. Kept for :data:`REPLAY_SECONDS` at most."""
        with self._switch_lock:
            with self._streams_lock:
                self._replay = collections.deque(maxlen=REPLAY_MOST)
                self._replay_until = time.monotonic() + REPLAY_SECONDS
            self.supervisor.set_callback(self._publish)

    def replaying(self) -> bool:
        """Whether changes were kept for the streams still to follow (recovery made some)."""
        with self._streams_lock:
            return bool(self._replay)

    def end_replay(self, now: bool = False) -> None:
        """Stop keeping changes for streams still to follow: ``now``, or once the window is
        over (called now and then)."""
        if self._replay is None or (not now and time.monotonic() < self._replay_until):
            return
        with self._switch_lock:
            with self._streams_lock:
                self._replay = None
                none_left = not self._subscribers
            if none_left:
                self.supervisor.set_callback(None)

    def subscribe(self, connection: Connection, before: int | None = None) -> None:
        """Turn a connection into an event stream: every job state change, in order, until
        the client asks for the end (``flush``: what was queued before it is sent first).
        ``before``: the pid of the keeper the stream followed until it was killed; the
        changes this keeper kept since it started come first."""
        events: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        connection.events = events
        with self._switch_lock:
            with self._streams_lock:
                if before is not None and before != os.getpid() and self._replay:
                    for kept in self._replay:
                        events.put(kept)
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
                none_left = not self._subscribers and self._replay is None
            if none_left:
                self.supervisor.set_callback(None)

    def _publish(self, note: Notification) -> None:
        # With when the session was made: a client that opened a session destroyed since,
        # and made again under its name, gets no event of the new one.
        engine = self._engines.get(note.session_name)
        made = None if engine is None else engine.created_us
        event = (note.job_id, note.session_name, int(note.job_state), made)
        with self._streams_lock:
            if self._replay is not None:
                self._replay.append(event)
            for connection in self._subscribers:
                if connection.events is not None:
                    connection.events.put(event)
