"""A client of the keeper: starts it on demand and sends it requests.

The first call that needs the keeper of a state directory starts it (a fresh interpreter,
``python -m drmaa2_ostracker.keeper``, detached from the caller: see
:mod:`~drmaa2_ostracker.keeper.starting`); any number of processes
starting at once get one keeper, because starting happens under a lock file of the state
directory and the keeper itself holds another for its whole life.

Each call takes a connection of its own (one idle connection is kept for the next call), so a
thread blocked in a wait never delays another thread's call. The idle connection is kept while
the process has a session of the state directory open, and closed after the last one closes,
so that an idle keeper can exit.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from drmaa2.errors import (
    DrmCommunicationException,
    SessionManagementException,
    TimeoutException,
)
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.keeper.ahead import Ahead, Pipeline
from drmaa2_ostracker.keeper.connecting import Connecting
from drmaa2_ostracker.keeper.protocol import (
    Channel,
    ConnectionLost,
    decode_error,
)
from drmaa2_ostracker.keeper.starting import START_TIMEOUT
from drmaa2_ostracker.keeper.stream import EventStream
from drmaa2_ostracker.process.identity import process_state

__all__ = ["ANSWER_GRACE", "SETTLE_TIMEOUT", "START_TIMEOUT", "KeeperClient"]

#: Seconds a process about to fork or exit waits for each answer to a request sent ahead.
SETTLE_TIMEOUT = 10.0
#: Seconds a keeper has, beyond a wait's own timeout, to answer it: a keeper that is stopped
#: or hung must not hold a wait that has a timeout forever.
ANSWER_GRACE = 1.0
#: Limits longer than this (s) are no limit (a socket's timeout has a range).
_NO_LIMIT = 366 * 86400.0
#: What the state letter of a keeper that does not answer says of it.
_SILENT = {"T": "stopped", "t": "stopped by a debugger", "D": "blocked in the kernel"}
#: Requests that change nothing: safe to send again to a new keeper if the old one died.
_RETRYABLE = frozenset(
    {
        "open_session",
        "session_names",
        "job_ids",
        "array_task_ids",
        "array_template",
        "job_state",
        "job_record",
        "job_records",
        "job_template",
        "wait",
        "ping",
        # A submission made again with its key: answered with what it got, if it was made.
        "again",
    }
)
#: Requests made again as ``again`` if the keeper died while handling one: a submission,
#: with the key it was sent with, which the next keeper answers with what it got then (see
#: SessionEngine.run_job), never making it twice; a control of a job, or of an array's tasks,
#: which succeeds where a job is where the action led it; a reap or a session's destruction,
#: which succeeds where the job or session is no longer known; a session's creation, which
#: succeeds where the session was made since it was asked (see Requests._do_again).
_AGAIN = frozenset(
    {
        "run_job",
        "run_bulk_jobs",
        "control",
        "control_array",
        "reap",
        "create_session",
        "destroy_session",
    }
)
#: Connections kept open while no thread uses them (more are opened while threads need them).
_IDLE_CONNECTIONS = 1
#: The most tries of one call, whatever the number of keepers it met (each gets three).
_MOST_TRIES = 100

_clients: weakref.WeakSet[KeeperClient] = weakref.WeakSet()


class KeeperClient(Connecting):
    """The connection of this process to the keeper of one state directory."""

    def __init__(self, state_dir: str) -> None:
        #: The state directory's real path, checked (see files.check_state_dir): its files
        #: are opened by it, whatever becomes of a link or a directory on the path given.
        self.state_dir = files.check_state_dir(os.path.abspath(state_dir))
        #: (device, inode) of the state directory checked.
        self._identity = files.identity(self.state_dir)
        if self._identity is None:  # (removed this instant)
            raise SessionManagementException(f"cannot use the state directory {state_dir}")
        self._lock = threading.Lock()
        self._pool: list[Channel] = []
        self._sessions = 0
        self._address = os.path.join(self.state_dir, files.SOCKET)
        if files.socket_address(self.state_dir, -1) != self._address:
            # Too long for a socket address: reached through a descriptor of the directory,
            # held for as long as this client lives (only then: it keeps the file system
            # from being unmounted).
            self._dir_fd = files.above_standard(
                os.open(self.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            )
            self._address = files.socket_address(self.state_dir, self._dir_fd)
        #: The pid of the keeper last talked to.
        self.keeper_pid: int | None = None
        self._events: EventStream | None = None
        #: The last stream begun (a new one delivers after its thread has ended).
        self._last_stream: EventStream | None = None
        #: Held while the event stream is changed: one subscription at a time.
        self._events_lock = threading.Lock()
        #: What the stream calls (kept across a fork: the child subscribes anew).
        self._event_callback: Callable[[tuple[Any, ...]], None] | None = None
        #: Requests sent ahead (a burst of submissions), answered later.
        self._ahead = Pipeline(self)
        #: Calls made so far (a submission is sent ahead only right after another).
        self.calls = 0
        self._keys = itertools.count()
        self._key_prefix = os.urandom(8)
        #: This thread's call's limit, if it has one: (monotonic deadline, its seconds).
        self._limit = threading.local()
        _clients.add(self)

    def still_there(self) -> bool:
        """Whether the state directory's real path still leads to the directory this client
        checked (not moved away, nor replaced): its keeper is that directory's."""
        return files.identity(self.state_dir) == self._identity

    # -- sessions keep connections -----------------------------------------------------------

    def session_opened(self) -> None:
        """A session of this state directory opened in this process."""
        with self._lock:
            self._sessions += 1

    def session_closed(self) -> None:
        """A session closed; after the last one, the connections close too. The answers of
        requests sent ahead are read first (for a while, if the keeper does not answer)."""
        self.settle(timeout=SETTLE_TIMEOUT)
        with self._lock:
            self._sessions -= 1
            if self._sessions > 0:
                return
            pool, self._pool = self._pool, []
        for channel in pool:
            channel.close()

    # -- calls -------------------------------------------------------------------------------

    def submission_key(self) -> bytes:
        """A new key for a submission: unique to it among every process's submissions (the
        keeper records it before it makes the submission, see
        :mod:`~drmaa2_ostracker.store.launches`)."""
        return self._key_prefix + next(self._keys).to_bytes(8, "little")

    def call(
        self, method: str, *args: Any, fds: list[int] | None = None, within: float | None = None
    ) -> Any:
        """Send a request and return its answer; raises the DRMAA2 exception it raised.

        Requests sent ahead are answered first: a call is handled after them. ``within``:
        the seconds the keeper has to answer (a wait's timeout and :data:`ANSWER_GRACE`);
        if it does not, TimeoutException (the connection is closed: its answer, if it
        comes, is not read). None (or over a year): no limit."""
        if within is None or within > _NO_LIMIT:
            self.settle()
            return self.call_now(method, *args, fds=fds)
        self._limit.at = (time.monotonic() + within, within)
        try:
            self.settle(timeout=within)
            return self.call_now(method, *args, fds=fds)
        finally:
            self._limit.at = None

    def _receive(self, channel: Channel) -> tuple[Any, list[int]]:
        """An answer, within this thread's call's limit if it has one."""
        limit = getattr(self._limit, "at", None)
        if limit is None:
            return channel.receive()
        deadline, seconds = limit
        channel.sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            return channel.receive()
        except TimeoutError:
            channel.close()
            pid = self.keeper_pid
            how = _SILENT.get(process_state(pid) or "", "busy") if pid else "starting"
            raise TimeoutException(
                f"the keeper of {self.state_dir} (process {pid}, {how}) did not answer "
                f"within {seconds:g} s ({ANSWER_GRACE:g} s beyond the wait's timeout): the "
                f"jobs' states are not known"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                channel.sock.settimeout(None)

    def send_ahead(
        self,
        method: str,
        *args: Any,
        keeper: int | None,
        redo: Callable[[], Any],
    ) -> Ahead:
        """Send a request to the keeper ``keeper`` (the pid of the one that knows its plan)
        and return at once; its answer is read later (see
        :mod:`~drmaa2_ostracker.keeper.ahead`). ``redo`` makes it as a call instead: when
        the keeper reached is another, or does not know the plan."""
        return self._ahead.send(method, *args, keeper=keeper, redo=redo)

    def settle(self, timeout: float | None = None) -> None:
        """Read the answers of every request sent ahead (``timeout``: seconds the keeper
        has for each, after which the unanswered are in doubt)."""
        if self._ahead:
            self._ahead.settle(timeout=timeout)

    def call_now(self, method: str, *args: Any, fds: list[int] | None = None) -> Any:
        """A call, not waiting for requests sent ahead to be answered."""
        self.calls += 1
        request = (method, args)
        # Each keeper that goes away gets a few tries: a wait that outlives several keepers
        # (each killed or stopped in turn, a new one adopting the jobs) goes on with the next.
        tries: dict[int | None, int] = {}
        while True:
            channel = self.take()
            pid = self.keeper_pid
            tries[pid] = tried = tries.get(pid, 0) + 1
            again = tried < 3 and sum(tries.values()) < _MOST_TRIES
            try:
                channel.send(request, fds)
            except (BrokenPipeError, ConnectionResetError) as error:
                # Not sent: the keeper closed the connection (it exited or was killed since
                # the connection's last call), so the request was not done: send it again,
                # on a new connection (the idle ones are to the same keeper).
                channel.close()
                self._drop_idle()
                if again:
                    continue
                raise DrmCommunicationException(
                    f"cannot send {method} to the keeper of {self.state_dir}: {error}"
                ) from None
            except BaseException:
                channel.close()
                raise
            try:
                (ok, value), _ = self._receive(channel)
            except (ConnectionLost, ConnectionError) as error:
                channel.close()
                self._drop_idle()  # to the same keeper, gone or going
                # Reset: the keeper ended with the request unread (Linux resets a Unix
                # socket's peer only then), so it was not done: send it again.
                unread = isinstance(error, ConnectionResetError)
                if (unread or method in _RETRYABLE) and again:
                    continue  # the keeper died: a new one adopted its jobs
                if method in _AGAIN and again:
                    # Done or not: made again, which the next keeper answers with what the
                    # first one did, if it did it.
                    request = ("again", (method, *args))
                    continue
                raise DrmCommunicationException(
                    f"the keeper of {self.state_dir} (process {self.keeper_pid}) went away "
                    f"while handling {method}: {error}; whether it was done is unknown, look "
                    f"at the session's jobs"
                ) from None
            except BaseException:
                channel.close()  # interrupted mid-call: the connection is out of step
                raise
            self.give(channel)
            if ok:
                return value
            raise decode_error(value)

    def take(self) -> Channel:
        """A connection for this thread's use (an idle one, else a new one). An idle one may
        have been closed by its keeper since (it exited or was killed): sending on it then
        fails, with nothing sent, and the caller takes another."""
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return self.connect()

    def _drop_idle(self) -> None:
        """Close the idle connections (their keeper is gone, or going)."""
        with self._lock:
            pool, self._pool = self._pool, []
        for channel in pool:
            channel.close()

    def give(self, channel: Channel) -> None:
        """A connection taken is idle again: kept for the next call, or closed."""
        with self._lock:
            if self._sessions > 0 and len(self._pool) < _IDLE_CONNECTIONS:
                self._pool.append(channel)
                return
        channel.close()

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[tuple[Any, ...]], None] | None) -> None:
        """Call ``callback`` with every job state change the keeper publishes (None: stop;
        what was published before this call is delivered first). A stream that runs is
        kept, its callback replaced: no change is lost in between. One subscription at a
        time, whatever the threads."""
        with self._events_lock:
            self._event_callback = callback
            with self._lock:
                old = self._events
            if callback is not None and old is not None and old.running:
                old.set_callback(callback)
                return
            if old is not None:
                old.ask_stop()
                self._last_stream = old
            stream = None
            if callback is not None:
                # It delivers once the last stream's thread has delivered what it has.
                stream = EventStream(self, callback, after=self._last_stream)
                self._last_stream = stream
            with self._lock:
                self._events = stream
        # Waited for outside the lock: the old stream's thread may be in a callback that
        # registers one (waiting for the lock) while this thread waits for it.
        if old is not None:
            old.wait_stopped()

    def _events_after_fork(self) -> None:
        """A forked child's first connection: its event stream, if the parent had one (the
        parent's stream stays the parent's)."""
        with self._events_lock:
            callback = self._event_callback
            with self._lock:
                missing = self._events is None
            if callback is not None and missing:
                stream = EventStream(self, callback)
                with self._lock:
                    self._events = stream

    def flush_events(self) -> None:
        """Return once every event the keeper published before this call was delivered (at
        once if no callback is subscribed, or when called from the delivering thread)."""
        with self._lock:
            stream = self._events
        if stream is not None:
            stream.flush()

    def forked(self) -> None:
        """In a forked child: the connections are the parent's."""
        self._lock = threading.Lock()
        for channel in self._pool:
            with contextlib.suppress(OSError):
                channel.close()
        self._pool = []
        self._sessions = 0
        self._events = None  # the parent's; the child's starts with its first connection
        self._last_stream = None
        self._events_lock = threading.Lock()
        self._ahead.forked()
        self._keys = itertools.count()
        self._key_prefix = os.urandom(8)
        #: This thread's call's limit, if it has one: (monotonic deadline, its seconds).
        self._limit = threading.local()


def _settle_all() -> None:
    # Requests sent ahead are answered before a fork (their answers come to the parent) and
    # at exit (one the keeper could not handle is made again); a keeper that does not answer
    # (stopped) leaves them in doubt after a while rather than hang this process.
    for client in list(_clients):
        with contextlib.suppress(Exception):
            client.settle(timeout=SETTLE_TIMEOUT)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client.forked()


os.register_at_fork(before=_settle_all, after_in_child=_after_fork_in_child)
# At exit, the answers of requests sent ahead are read: a plan the keeper forgot is sent again.
atexit.register(_settle_all)
