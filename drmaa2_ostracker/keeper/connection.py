"""A client's connection to the keeper: one thread per connection, reading requests and
sending each its answer (a refusal as the DRMAA2 exception that fits, a bug logged as one).

Requests are handled in order. A client may send requests ahead, before the answers of
earlier ones (:mod:`~drmaa2_ostracker.keeper.ahead`): answers whose next request was read
already are sent together with the next answer, and once the client is gone its requests
still on the connection are handled, unanswered, until the connection ends.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import queue
import select
import sqlite3
import termios
import threading
from typing import TYPE_CHECKING, Any

from drmaa2.errors import Drmaa2Exception, InvalidArgumentException, SessionManagementException
from drmaa2_ostracker import faults
from drmaa2_ostracker.keeper.protocol import Channel, ConnectionLost, encode_error
from drmaa2_ostracker.store.schema import STORE_FILE

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.server import Keeper

__all__ = ["Connection"]

#: Requests that submit jobs (see :meth:`Connection.left_behind`).
_SUBMISSIONS = frozenset({"run_job", "run_bulk_jobs", "again"})

_log = logging.getLogger("drmaa2_ostracker.keeper.server")


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class Connection:
    """One client connection, served by a thread of its own."""

    def __init__(self, keeper: Keeper, channel: Channel, peer_pid: int) -> None:
        self.keeper = keeper
        self.channel = channel
        self.peer_pid = peer_pid
        self.events: queue.SimpleQueue[tuple[Any, ...] | None] | None = None
        #: The thread serving it (None until started).
        self.thread: threading.Thread | None = None
        #: The request being handled, None between requests (see :meth:`left_behind`).
        self.handling: str | None = None

    def gone(self) -> bool:
        """Whether the client hung up (or sent more: it never does while it waits)."""
        poller = select.poll()
        poller.register(self.channel.fileno(), select.POLLIN | select.POLLRDHUP)
        return bool(poller.poll(0))

    def left_behind(self) -> bool:
        """Whether its client hung up leaving submissions still to handle: sent ahead of
        their answers (:mod:`~drmaa2_ostracker.keeper.ahead`), each made once sent, so its
        ``run_job`` may have returned already."""
        try:
            poller = select.poll()
            poller.register(self.channel.fileno(), select.POLLRDHUP)
            if not poller.poll(0):
                return False  # the client is there
            if self.handling in _SUBMISSIONS or self.channel.has_message():
                return True
            unread = array.array("i", [0])
            fcntl.ioctl(self.channel.fileno(), termios.FIONREAD, unread)
            return unread[0] > 0
        except (OSError, ValueError):  # closed meanwhile: nothing is left
            return False

    def serve(self) -> None:
        channel = self.channel
        try:
            if not self.keeper.greet(channel):
                return
            deaf = False
            while True:
                (method, args), fds = channel.receive(with_fds=True)
                if method == "subscribe":
                    self.keeper.subscribe(self, *args[:1])
                    return
                handler = self.keeper.handlers.get(method)
                self.handling = method
                try:
                    if handler is None:
                        raise InvalidArgumentException(f"unknown keeper request {method!r}")
                    if self.keeper.unsafe is not None:
                        raise SessionManagementException(self.keeper.unsafe)
                    answer: tuple[bool, Any] = (True, handler(self, *args, fds=fds))
                except ConnectionLost:
                    raise
                except Exception as error:
                    _close_fds(fds)
                    if isinstance(error, sqlite3.Error):  # a full disk …: say so
                        store = os.path.join(self.keeper.state_dir, STORE_FILE)
                        error = faults.storage_error(error, store, self.keeper.state_dir)
                    if not isinstance(error, Drmaa2Exception):  # a bug, not a refusal
                        _log.exception("request %s failed", method)
                    answer = (False, encode_error(error))
                self.handling = None
                if deaf:
                    continue
                if channel.has_message():
                    channel.hold(answer)  # sent ahead: answered with the next request
                    continue
                try:
                    channel.send(answer)
                except OSError:
                    # The client is gone: the requests it sent ahead are handled all the
                    # same (each was submitted once sent), unanswered.
                    deaf = True
        except (ConnectionLost, OSError, ValueError, TypeError):
            pass
        finally:
            channel.close()
            self.keeper.disconnected(self)
