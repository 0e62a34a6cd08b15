"""The keeper's socket: made 0600, made again if removed, and given up if the state directory
itself was removed or replaced.

A keeper holds the keeper lock for its whole life, so no other keeper starts while it lives.
If a cleaner of /tmp or a user removes ``keeper.sock``, or puts something else in its place (a
directory, a FIFO, a file, a link), no client could reach it: it sets aside what is there
(see :func:`~drmaa2_ostracker.keeper.files.set_aside`) and binds the socket again within a
quarter of a second, and a keeper started meanwhile sees the socket answer and steps aside.
If the state directory's path no longer leads to the directory it opened, what it holds (its
store, its lock) is not what a client finds there: it serves none there, and exits once its
jobs ended.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import stat

from drmaa2_ostracker.keeper import files

__all__ = ["Listening"]

_log = logging.getLogger(__name__)


class Listening:
    """The part of the :class:`~drmaa2_ostracker.keeper.server.Keeper` that keeps its
    listening socket (see the module docstring)."""

    # Set by the keeper.
    state_dir: str
    _dir_fd: int
    _listener: socket.socket | None
    _retire: bool
    #: (device, inode) of the socket file this keeper bound.
    _socket_file: tuple[int, int] | None = None

    def _listen(self) -> socket.socket:
        """A listening socket at the socket's path, made 0600."""
        address = files.socket_address(self.state_dir, self._dir_fd)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # (single-threaded still, or on the serving thread)
        try:
            listener.bind(address)
        finally:
            os.umask(old)
        listener.listen(128)
        found = os.lstat(os.path.join(self.state_dir, files.SOCKET))
        self._socket_file = (found.st_dev, found.st_ino)
        return listener

    def _keep_socket(self, poller: select.poll) -> None:
        """Listen again if the socket's file was removed (a cleaner of /tmp, a user): no
        client could reach this keeper, and none could start another while it holds the
        keeper lock."""
        path = os.path.join(self.state_dir, files.SOCKET)
        if self._retire:
            return
        try:
            found = os.lstat(path)
        except OSError:  # gone; or the directory is (replaced by a file, made unreadable)
            found = None
        if found is not None and (found.st_dev, found.st_ino) == self._socket_file:
            return  # its own
        if not self._same_directory():
            # Removed, or replaced by another: what this keeper holds (its store, its lock)
            # is not what a client finds there now. It serves none there, and goes once
            # its jobs ended.
            _log.warning(
                "the state directory %s was removed or replaced: this keeper leaves it to a "
                "new one, and exits once its jobs have ended",
                self.state_dir,
            )
            self._retire = True
            return
        old = self._listener
        try:
            if found is not None:  # something else in its place
                what = "socket" if stat.S_ISSOCK(found.st_mode) else files.kind_of(found.st_mode)
                files.set_aside(path, f"is a {what}, not this keeper's socket")
            listener = self._listen()
        except OSError as error:
            _log.warning("the socket %s was removed and cannot be made again: %s", path, error)
            return
        _log.warning("the socket %s was removed: listening there again", path)
        if old is not None:
            poller.unregister(old.fileno())
            old.close()
        poller.register(listener.fileno(), select.POLLIN)
        self._listener = listener

    def _same_directory(self) -> bool:
        """Whether the state directory's path still leads to the directory this keeper
        opened."""
        try:
            now = os.stat(self.state_dir)
        except OSError:
            return False
        opened = os.fstat(self._dir_fd)
        return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)

    def _served_already(self) -> bool:
        """Whether the keeper that holds the lock listens (again: see :meth:`_keep_socket`),
        so that this one need not start."""
        try:  # (a path too long for a socket address is reached through a descriptor)
            directory = os.open(self.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
                probe.connect(files.socket_address(self.state_dir, directory))
        except OSError:
            return False
        finally:
            os.close(directory)
        return True
