"""Requests sent ahead: a burst of submissions without a round trip each.

A client normally sends a request and reads its answer before it sends the next. A burst of
``run_job`` calls pays that round trip (client → keeper → client, and the wake-ups of both on
the way) once per job. :class:`Pipeline` sends such requests on one connection without
waiting: the keeper handles a connection's requests in order and answers them in order (several
answers in one write when the next requests were already read, see
:meth:`Channel.hold <drmaa2_ostracker.keeper.protocol.Channel.hold>`); each request's answer
is read later into its :class:`Ahead`, at the latest when the answer is asked for, when
:data:`WINDOW` requests are unanswered, or before the client's next other call.

A request sent ahead is in the keeper's socket once :meth:`Pipeline.send` returns: it is
handled even if the client exits or is killed before its answer is read (the keeper goes on
reading a connection whose client is gone, see
:class:`~drmaa2_ostracker.keeper.connection.Connection`). If the keeper dies first, the
requests whose answers did not come are made again, in order, each with the key it was sent
with: the next keeper answers each with the job it got, if it got one, and makes the others
(see :class:`~drmaa2_ostracker.keeper.sessions.SessionEngine`). Only a keeper that does not
answer within a settle's timeout (stopped) leaves them in doubt: each :class:`Ahead` then
raises DrmCommunicationException saying so.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drmaa2 import errors
from drmaa2_ostracker.keeper.protocol import Channel, ConnectionLost, PlanUnknown, decode_error

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.client import KeeperClient

__all__ = ["LOW", "WINDOW", "Ahead", "Pipeline"]


def _window() -> int:
    """32, or fewer if this machine's sockets buffer less than 4 KiB for each (a small
    message takes about 1 KiB of a socket's send buffer, whatever its length)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            buffer = probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    except OSError:
        return 1
    return max(1, min(32, buffer // 4096))


#: Requests unanswered at most: the requests of a window, and their answers, fit in the
#: sockets' send buffers, so neither side blocks writing while the other writes too.
WINDOW = _window()
#: Unanswered requests left after the window filled (answers are read in batches).
LOW = WINDOW // 4


class Ahead:
    """The answer of a request sent ahead, read when asked for (:meth:`result`)."""

    __slots__ = ("_error", "_pipeline", "_redo", "_value", "done", "method")

    def __init__(self, pipeline: Pipeline, method: str, redo: Callable[[], Any]) -> None:
        self._pipeline = pipeline
        self.method = method
        self._redo = redo
        #: Whether the answer was read (or the keeper went away without one).
        self.done = False
        self._value: Any = None
        self._error: errors.Drmaa2Exception | None = None

    def result(self) -> Any:
        """The request's answer (read now if it was not yet); raises the DRMAA2 exception
        the keeper answered with, or DrmCommunicationException if it went away first."""
        if not self.done:
            self._pipeline.settle(self)
        if self._error is not None:
            raise self._error
        if not self.done:  # never: every request sent is answered, failed or in doubt
            raise errors.DrmCommunicationException(f"no answer to {self.method} was read")
        return self._value

    def _answer(self, ok: bool, value: Any) -> None:
        try:
            if ok:
                self._value = value
                return
            error = decode_error(value)
            if not isinstance(error, PlanUnknown):
                self._error = error
                return
            # The keeper forgot the plan the request named (or is a new keeper): made again
            # now, as a call with the plan whole.
            self._make_again()
        finally:
            self.done = True

    def _make_again(self) -> None:
        """Make the request again, as a call with its key and its plan whole: its answer,
        or the error it raises, is this request's."""
        try:
            self._value = self._redo()
        except errors.Drmaa2Exception as again:
            self._error = again
        except BaseException:  # interrupted: whether it was made again is unknown
            self._error = errors.DrmCommunicationException(
                f"interrupted while making {self.method} again: whether it was done is "
                f"unknown, look at the session's jobs"
            )
            raise
        finally:
            self.done = True

    def _fail(self, error: errors.Drmaa2Exception) -> None:
        self._error = error
        self.done = True


class Pipeline:
    """A client's requests sent ahead, and the connection that carries them while any is
    unanswered (it goes back to the client's idle connections once all are answered)."""

    def __init__(self, client: KeeperClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._channel: Channel | None = None
        self._pending: collections.deque[Ahead] = collections.deque()

    def __bool__(self) -> bool:
        """Whether a request sent ahead is unanswered."""
        return bool(self._pending)

    def send(self, method: str, *args: Any, keeper: int | None, redo: Callable[[], Any]) -> Ahead:
        """Send a request (without descriptors) to the keeper ``keeper`` and return at once;
        its answer is read later. ``redo`` makes the request as a call instead: at once if
        it cannot be sent (the keeper went away) or the keeper reached is another one, and
        when read, if the keeper answered that it does not know the plan it names."""
        with self._lock:
            channel = self._channel
            if channel is None:
                channel = self._channel = self._client.take()
            ahead = Ahead(self, method, redo)
            try:
                if self._client.keeper_pid != keeper:
                    raise ConnectionLost("another keeper")
                channel.send((method, args))
            except (ConnectionLost, OSError) as error:
                # Not sent: read what earlier requests got, then make this one a call, which
                # reaches a keeper again (and sends the plan whole to a new one). A connection
                # that could not be sent on is closed (its keeper closed it), not kept.
                self._read(0, keep=not isinstance(error, OSError))
                ahead._answer(True, redo())
                return ahead
            self._pending.append(ahead)
            if len(self._pending) >= WINDOW:
                self._read(LOW)
        return ahead

    def settle(self, until: Ahead | None = None, timeout: float | None = None) -> None:
        """Read answers: up to ``until``'s, or all of them (``timeout``: seconds for each,
        after which the requests not answered are in doubt)."""
        with self._lock:
            pending = self._pending
            channel = self._channel
            if timeout is not None and channel is not None:
                channel.sock.settimeout(timeout)
            try:
                if until is None:
                    self._read(0)
                    return
                while not until.done and pending:
                    self._read(len(pending) - 1)
            finally:
                if timeout is not None and channel is not None:
                    with contextlib.suppress(OSError):
                        channel.sock.settimeout(None)

    def _read(self, left: int, keep: bool = True) -> None:
        """Read answers in order until ``left`` are unanswered (lock held); then, if none
        is, the connection goes back to the client's idle ones (``keep``) or is closed."""
        pending = self._pending
        channel = self._channel
        while len(pending) > left:
            assert channel is not None
            try:
                (ok, value), _ = channel.receive()
            except TimeoutError:
                self._lose(f"did not answer within {channel.sock.gettimeout():g} s")
                return
            except (ConnectionLost, OSError) as error:
                self._make_again_all(f"went away before answering: {error}")
                return
            except BaseException:
                # Interrupted while reading: the connection may be out of step.
                self._lose("was not heard out: this process was interrupted while reading")
                raise
            pending.popleft()._answer(ok, value)
        if not pending and channel is not None:
            self._channel = None
            if not keep:
                channel.close()
                return
            if channel.sock.gettimeout() is not None:  # a settle's: not for the next user
                channel.sock.settimeout(None)
            self._client.give(channel)

    def _make_again_all(self, why: str) -> None:
        """The keeper went away with answers unread: those requests are made again, in
        order, with their keys, which the next keeper answers with what each got, if it was
        made (see :class:`~drmaa2_ostracker.keeper.sessions.SessionEngine`). Interrupted,
        the rest are in doubt (``why``)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.close()
        pending = self._pending
        try:
            while pending:
                pending[0]._make_again()
                pending.popleft()
        except BaseException:
            pending.popleft()
            self._lose(why)
            raise

    def _lose(self, why: str) -> None:
        """The connection ended with answers unread: each of those requests is in doubt."""
        client = self._client
        self._drop(
            lambda ahead: (
                f"the keeper of {client.state_dir} (process {client.keeper_pid}) {why}; "
                f"whether its {ahead.method} was done is unknown, look at the session's jobs"
            )
        )

    def forked(self) -> None:
        """In a forked child: the connection and the requests are the parent's."""
        self._lock = threading.Lock()
        self._drop(
            lambda ahead: (
                "this request was sent by the parent process before it forked: its answer "
                "went there"
            )
        )

    def _drop(self, why: Callable[[Ahead], str]) -> None:
        """Close the connection; every request unanswered fails, saying ``why(request)``."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.close()
        while self._pending:
            ahead = self._pending.popleft()
            ahead._fail(errors.DrmCommunicationException(why(ahead)))
