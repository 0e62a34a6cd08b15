"""The keeper's wire protocol: framed messages over a Unix stream socket.

A message is a frame: its payload's length (4 bytes, little-endian), then the payload, the
:mod:`marshal` form (version 4, stable across Python versions since 3.4) of a tuple of plain
values (None, bool, int, float, str, bytes, tuples, lists, dicts). A message is only ever
used as data, never executed, and the keeper accepts connections only from its own user.

- A client opens with ``HELLO``: ``(MAGIC, PROTOCOL, package version)``. The keeper answers
  ``(True, (PROTOCOL, package version, keeper pid))``, or ``(False, (error class, message))``
  when the versions differ (see :mod:`drmaa2_ostracker.keeper.server`).
- Then requests ``(method, args)``, each answered by ``(True, result)`` or
  ``(False, (DRMAA2 exception class name, message))``, in order. A request may carry file
  descriptors (SCM_RIGHTS): the client's own streams for "/dev/stdin" … in a template. A
  client may send requests without descriptors before it read the answers of earlier ones
  (:mod:`~drmaa2_ostracker.keeper.ahead`).
- A connection that asked for ``subscribe`` receives events instead: ``("event", values)``,
  values ``(job id, session name, state, when the session was made)`` (the last tells a
  session from one destroyed and made again under its name; None if not known).
  Its client may then send ``("flush", ())``, answered in the stream by ``("flushed", ())``
  once every event queued before it was sent; any other message ends the stream
  (``("end", ())``, after the events queued before).
"""

from __future__ import annotations

import array
import contextlib
import marshal
import os
import socket
import struct
from typing import Any

from drmaa2 import errors

__all__ = [
    "HANDING_OVER",
    "MAGIC",
    "PROTOCOL",
    "RECORDS_AT_ONCE",
    "Channel",
    "ConnectionLost",
    "PlanUnknown",
    "decode_error",
    "encode_error",
    "loads",
    "version_refusal",
]

#: The first value of a client's hello: what speaks to a keeper is a drmaa2-ostracker client.
MAGIC = "drmaa2-ostracker-keeper"
#: The protocol's version; a client and a keeper of different versions never talk further.
PROTOCOL = 9
#: What a keeper of another version says when it hands over at once (nothing unfinished):
#: the client waits for it to exit (every release so far has said it so).
HANDING_OVER = "it is handing over now"


def version_refusal(
    state_dir: str, keeper: tuple[str, int], client: tuple[str, int], unfinished: int
) -> str:
    """What a keeper (its version and protocol) answers a client of another (``client``):
    when it hands over, and how to make it do so at once."""
    version, protocol = client
    pid = os.getpid()
    said = (
        f"the keeper of {state_dir} (process {pid}) runs drmaa2-ostracker {keeper[0]} "
        f"(keeper protocol {keeper[1]}), this program {version} (protocol {protocol}): "
    )
    if not unfinished:
        return said + HANDING_OVER + "; try again"
    return said + (
        f"it hands over once its {unfinished} unfinished job(s) have ended; until then, use "
        f"the program it runs with this state directory, or another state directory; or make "
        f"it hand over now with: kill {pid} (its running jobs go on, adopted by the next "
        f"keeper; its queued and held jobs too)"
    )


_HEADER = struct.Struct("<I")
#: The largest message accepted (a listing of a million job ids fits).
MAX_MESSAGE = 1 << 30
#: The most job records one ``job_records`` request asks for.
RECORDS_AT_ONCE = 2000
#: The most descriptors one message carries.
MAX_FDS = 3
_FD_SPACE = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)


class PlanUnknown(errors.InvalidArgumentException):
    """The keeper does not know the plan a request names by its token: send it whole."""


class ConnectionLost(Exception):
    """The other side closed the connection, or sent something that is not a message."""


def loads(payload: bytes) -> Any:
    """A message's value; ConnectionLost for anything that is not a marshal document."""
    try:
        return marshal.loads(payload)
    except (EOFError, ValueError, TypeError) as error:
        raise ConnectionLost(f"unreadable message: {error}") from None


def _frame(value: Any) -> bytes:
    """A message as sent: its payload's length, then the payload."""
    payload = marshal.dumps(value, 4)
    return _HEADER.pack(len(payload)) + payload


class Channel:
    """One end of a connection: sends and receives whole messages (buffered)."""

    __slots__ = ("_buffer", "_held", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        #: Messages framed but not sent yet (see :meth:`hold`).
        self._held = bytearray()

    def fileno(self) -> int:
        """The socket's descriptor (for poll)."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def shutdown_reading(self) -> None:
        """Read no more than the peer has sent: its next send fails (EPIPE), a receive
        returns what was sent before, then the end (already closed: nothing to do)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    def send(self, value: Any, fds: list[int] | None = None) -> None:
        """Send one message (with ``fds`` passed along, if any)."""
        data = _frame(value)
        if self._held:
            data = bytes(self._held) + data
            self._held.clear()
        # MSG_NOSIGNAL: a peer gone is an error (EPIPE), never a SIGPIPE, whatever the
        # program's disposition of it.
        if fds:
            sent = socket.send_fds(self.sock, [data], fds, socket.MSG_NOSIGNAL)
            if sent < len(data):
                self.sock.sendall(data[sent:], socket.MSG_NOSIGNAL)
        else:
            self.sock.sendall(data, socket.MSG_NOSIGNAL)

    def has_message(self) -> bool:
        """Whether a whole message was received already (the next :meth:`receive` returns it
        without reading the socket)."""
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            return False
        length: int = _HEADER.unpack_from(buffer)[0]
        return len(buffer) >= _HEADER.size + length

    def hold(self, value: Any) -> None:
        """Frame a message to send with the next :meth:`send` (one system call for both)."""
        self._held += _frame(value)

    def receive(self, with_fds: bool = False) -> tuple[Any, list[int]]:
        """Receive one message and the descriptors that came with it (only if ``with_fds``)."""
        fds: list[int] = []
        buffer = self._buffer
        try:
            while True:
                if len(buffer) >= _HEADER.size:
                    (length,) = _HEADER.unpack_from(buffer)
                    if length > MAX_MESSAGE:
                        raise ConnectionLost(f"a message of {length} bytes is too large")
                    end = _HEADER.size + length
                    if len(buffer) >= end:
                        payload = bytes(buffer[_HEADER.size : end])
                        del buffer[:end]
                        return loads(payload), fds
                if with_fds:
                    data, ancillary, _flags, _addr = self.sock.recvmsg(_CHUNK, _FD_SPACE)
                    for level, kind, body in ancillary:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            received = array.array("i")
                            received.frombytes(body[: len(body) - len(body) % received.itemsize])
                            fds.extend(received)
                else:
                    data = self.sock.recv(_CHUNK)
                if not data:
                    raise ConnectionLost("the connection was closed")
                if not buffer and len(data) >= _HEADER.size:
                    # The usual case: one whole message, alone; taken as it came, without
                    # going through the buffer.
                    (length,) = _HEADER.unpack_from(data)
                    if length == len(data) - _HEADER.size and length <= MAX_MESSAGE:
                        return loads(data[_HEADER.size :]), fds
                buffer += data
        except BaseException:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise


_CHUNK = 1 << 16


_ERRORS: dict[str, type[errors.Drmaa2Exception]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type)
    and issubclass(cls, errors.Drmaa2Exception)
    and name.endswith("Exception")
}
_ERRORS["PlanUnknown"] = PlanUnknown


def encode_error(error: BaseException) -> tuple[str, str]:
    """The wire form of an exception raised by a request: its DRMAA2 class name and message
    (anything else is an InternalException)."""
    if isinstance(error, PlanUnknown):
        return "PlanUnknown", str(error)
    if isinstance(error, errors.Drmaa2Exception):
        for cls in type(error).__mro__:
            if cls.__name__ in _ERRORS:
                return cls.__name__, str(error)
    return "InternalException", f"the keeper failed: {type(error).__name__}: {error}"


def decode_error(value: Any) -> errors.Drmaa2Exception:
    """The exception a keeper's error answer stands for."""
    try:
        name, message = value
        cls = _ERRORS.get(str(name), errors.InternalException)
    except (TypeError, ValueError):
        cls, message = errors.InternalException, f"the keeper sent an unreadable error: {value!r}"
    return cls(str(message))
