"""The keeper's files in a state directory, and the checks that make it safe to use.

A state directory must belong to the user and be writable by nobody else, as ssh demands of
``~/.ssh``: another user who could write it could plant a socket, a lock or a store, and run
commands as this user. Files in it are opened without following symlinks and refused if
another user owns them.
"""

from __future__ import annotations

import os
import stat

from drmaa2.errors import SessionManagementException

__all__ = [
    "KEEPER_LOCK",
    "KEEPER_LOG",
    "SOCKET",
    "START_LOCK",
    "check_state_dir",
    "open_private",
    "socket_address",
]

#: The keeper's socket.
SOCKET = "keeper.sock"
#: Held (flock) by the running keeper for its whole life; holds its pid.
KEEPER_LOCK = "keeper.lock"
#: Held (flock) by whoever starts a keeper, and by a keeper while it exits.
START_LOCK = "keeper-start.lock"
#: What the keeper reports (appended; errors and adopted jobs).
KEEPER_LOG = "keeper.log"

#: The longest path a Unix socket address takes (sun_path, with its terminating NUL).
_SUN_PATH_MAX = 107


def check_state_dir(path: str, create: bool = True) -> None:
    """Create the state directory 0700 if needed; refuse one that is not safe to use."""
    if create:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as error:
            raise SessionManagementException(
                f"cannot create the state directory {path}: {error.strerror}; choose another "
                f"one with the contact argument or $DRMAA2_OS_STATE_DIR"
            ) from error
    try:
        found = os.stat(path)
    except OSError as error:
        raise SessionManagementException(
            f"cannot use the state directory {path}: {error.strerror}"
        ) from error
    if not stat.S_ISDIR(found.st_mode):
        raise SessionManagementException(
            f"the state directory {path} is not a directory; choose another one with the "
            f"contact argument or $DRMAA2_OS_STATE_DIR"
        )
    mode = stat.S_IMODE(found.st_mode)
    if found.st_uid != os.geteuid():
        raise SessionManagementException(
            f"the state directory {path} belongs to user id {found.st_uid}, not to this user "
            f"({os.geteuid()}); use a directory of your own"
        )
    if mode & 0o022:
        raise SessionManagementException(
            f"the state directory {path} has mode {mode:04o}: other users may write to it, so "
            f"it is not safe to use; make it private with: chmod 700 {path}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise SessionManagementException(
            f"the state directory {path} is not writable; fix its permissions or choose "
            f"another one with the contact argument or $DRMAA2_OS_STATE_DIR"
        )


def open_private(path: str, flags: int = os.O_RDWR) -> int:
    """Open (creating it 0600) a file of the state directory, never through a symlink, and
    refuse one another user owns."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise SessionManagementException(
            f"cannot open {path}: {error.strerror}"
            + ("; it is a symbolic link: remove it" if os.path.islink(path) else "")
        ) from error
    found = os.fstat(fd)
    if found.st_uid != os.geteuid() or not stat.S_ISREG(found.st_mode):
        os.close(fd)
        raise SessionManagementException(f"{path} is not a regular file of this user; move it away")
    return fd


def socket_address(state_dir: str, dir_fd: int | None) -> str:
    """The address of the keeper's socket: its path, or (when that is longer than a socket
    address may be) the same file reached through ``/proc/self/fd`` and ``dir_fd``."""
    path = os.path.join(state_dir, SOCKET)
    if len(os.fsencode(path)) <= _SUN_PATH_MAX or dir_fd is None:
        return path
    return f"/proc/self/fd/{dir_fd}/{SOCKET}"
