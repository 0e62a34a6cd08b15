"""The keeper's message framing over a real socket pair: whole messages come out however the
bytes arrive (one message alone, several at once, split anywhere), with the descriptors
passed along; a damaged stream ends the connection."""

from __future__ import annotations

import marshal
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from drmaa2_ostracker.keeper.protocol import MAX_MESSAGE, Channel, ConnectionLost

_MESSAGES = [
    ("run_job", (("s", 1), b"k" * 16, 3, None)),
    (True, "7"),
    ("x" * 70_000, list(range(1000))),  # longer than one read
    (),
    None,
]


def _framed(value: object) -> bytes:
    payload = marshal.dumps(value, 4)
    return struct.pack("<I", len(payload)) + payload


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, Channel]]:
    writer, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        yield writer, Channel(reader)
    finally:
        writer.close()
        reader.close()


def _send_in_thread(sock: socket.socket, parts: list[bytes]) -> threading.Thread:
    """Send each part with its own system call (the reader sees them one at a time)."""

    def send() -> None:
        for part in parts:
            sock.sendall(part)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("with_fds", [False, True])
def test_each_message_alone_comes_out_whole(
    pair: tuple[socket.socket, Channel], with_fds: bool
) -> None:
    writer, channel = pair
    for value in _MESSAGES:
        thread = _send_in_thread(writer, [_framed(value)])
        assert channel.receive(with_fds=with_fds) == (value, [])
        thread.join()
    assert not channel.has_message()


@pytest.mark.parametrize("with_fds", [False, True])
def test_messages_sent_together_or_split_anywhere_come_out_whole_in_order(
    pair: tuple[socket.socket, Channel], with_fds: bool
) -> None:
    writer, channel = pair
    stream = b"".join(_framed(value) for value in _MESSAGES)
    # All at once, then split after every byte of the first 40 and in odd places after.
    cuts = sorted({*range(1, 40), 41, 97, 1000, 50_000, len(stream) - 3})
    parts = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for sends in ([stream], parts):
        thread = _send_in_thread(writer, sends)
        received = [channel.receive(with_fds=with_fds)[0] for _ in _MESSAGES]
        thread.join()
        assert received == _MESSAGES
        assert not channel.has_message()


def test_descriptors_come_with_their_message(pair: tuple[socket.socket, Channel]) -> None:
    writer, channel = pair
    read_end, write_end = os.pipe()
    try:
        socket.send_fds(writer, [_framed(("run_job", 1))], [write_end])
        value, fds = channel.receive(with_fds=True)
        assert value == ("run_job", 1) and len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        os.close(fds[0])
        assert os.read(read_end, 100) == b"through the passed descriptor"
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(
    "damaged",
    [
        struct.pack("<I", MAX_MESSAGE + 1) + b"x",  # a length no message has
        struct.pack("<I", 3) + b"\xff\xff\xff",  # not a marshal document
        struct.pack("<I", 100) + b"short",  # cut off by the end of the connection
    ],
)
def test_a_damaged_stream_ends_the_connection(
    pair: tuple[socket.socket, Channel], damaged: bytes
) -> None:
    writer, channel = pair
    writer.sendall(damaged)
    writer.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionLost):
        channel.receive(with_fds=True)
