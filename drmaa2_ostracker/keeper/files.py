"""The keeper's files in a state directory, and the checks that make it safe to use.

A state directory must belong to the user and be writable by nobody else, as ssh demands of
``~/.ssh``: another user who could write it could plant a socket, a lock or a store, and run
commands as this user. Files in it are opened without following symlinks; a symlink is refused.

A lock or log file that cannot be used (a directory in its place, a FIFO, a file of another
user) is set aside as ``<name>.damaged-<UTC time>`` and made anew, with a warning: it holds
nothing that would be lost, and it must not make every later call fail. The store is never
set aside (see :mod:`drmaa2_ostracker.store.schema`). A resource that ran out (space, quota,
descriptors) is an :class:`~drmaa2.errors.OutOfResourceException`, not a damaged file (see
:mod:`drmaa2_ostracker.faults`).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import logging
import os
import pwd
import stat
import time

from drmaa2.errors import SessionManagementException
from drmaa2_ostracker.faults import resource_fault
from drmaa2_ostracker.process.identity import in_user_namespace

__all__ = [
    "KEEPER_LOCK",
    "KEEPER_LOG",
    "SOCKET",
    "START_LOCK",
    "check_state_dir",
    "clear_socket",
    "identity",
    "kind_of",
    "open_private",
    "open_ring",
    "set_aside",
    "socket_address",
    "unsafe_state_dir",
]

_log = logging.getLogger(__name__)

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


def check_state_dir(path: str, create: bool = True) -> str:
    """Create the state directory 0700 if needed (and the directories above it that are
    missing, 0700 too); refuse one that is not safe to use; return its real path.

    The real path (symbolic links resolved once, here) is the one to open its files by: no
    other user can replace a directory on it (see :func:`_unsafe_above`), so the directory
    checked is the one used, whatever becomes of a link or a directory on ``path`` that
    another user may change."""
    if create and not os.path.isdir(path):
        # Nothing is made below a directory that is not safe (it would be left there).
        existing = path
        while not os.path.lexists(existing) and existing != os.path.dirname(existing):
            existing = os.path.dirname(existing)
        unsafe = None
        if os.path.isdir(existing):
            unsafe = _unsafe_above(path, os.path.join(os.path.realpath(existing), "."))
        if unsafe is not None:
            raise SessionManagementException(unsafe)
        try:
            _make_dirs(path)
        except OSError as error:
            raise SessionManagementException(
                f"cannot create the state directory {path}: {error.strerror}; choose another "
                f"one with the contact argument or $DRMAA2_OS_STATE_DIR"
            ) from error
    real = os.path.realpath(path)
    try:
        found = os.lstat(real)
    except OSError as error:
        raise SessionManagementException(
            f"cannot use the state directory {path}: {error.strerror}"
        ) from error
    if not stat.S_ISDIR(found.st_mode):
        raise SessionManagementException(
            f"the state directory {path} is not a directory; choose another one with the "
            f"contact argument or $DRMAA2_OS_STATE_DIR"
        )
    unsafe = _unsafe(path, found) or _unsafe_above(path, real)
    if unsafe is not None:
        raise SessionManagementException(unsafe)
    if not os.access(real, os.W_OK | os.X_OK):
        raise SessionManagementException(
            f"the state directory {path} is not writable; fix its permissions or choose "
            f"another one with the contact argument or $DRMAA2_OS_STATE_DIR"
        )
    return real


def _private_group(found: os.stat_result, mode: int) -> bool:
    """Whether a directory writable by its group only is this user's, and its group this
    user's own (the user's primary group, with no other member): nobody else may write to
    it (as Debian's ssh allows, under umask 002)."""
    if mode & 0o002 or found.st_uid != os.geteuid() or found.st_gid != os.getegid():
        return False
    try:
        members = grp.getgrgid(found.st_gid).gr_mem
        name = pwd.getpwuid(found.st_uid).pw_name
    except KeyError:
        return False
    return all(member == name for member in members)


def _outside_namespace(uid: int) -> bool:
    """Whether ``uid`` is the overflow id of a user namespace this process runs in: the
    owner is not mapped into it (root of the host, as a rule, for ``/``, ``/home``, ``/tmp``
    seen from a rootless container)."""
    try:
        with open("/proc/sys/kernel/overflowuid") as overflow:
            return uid == int(overflow.read()) and in_user_namespace()
    except (OSError, ValueError):
        return False


def _make_dirs(path: str) -> None:
    """``mkdir -p`` with 0700 for every directory made (os.makedirs gives the ones above the
    last the umask's mode: group-writable under umask 002, which :func:`_unsafe_above`
    refuses)."""
    if os.path.isdir(path):
        return
    above = os.path.dirname(path)
    if above != path:
        _make_dirs(above)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file a path leads to now; None if it leads nowhere."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def unsafe_state_dir(path: str) -> str | None:
    """Why the state directory is not safe to use (another user owns it, or may write to
    it or replace it), or None (also if it cannot be looked at: other checks say why)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return _unsafe(path, found) or _unsafe_above(path, os.path.realpath(path))


def _unsafe(path: str, found: os.stat_result) -> str | None:
    if found.st_uid != os.geteuid():
        return (
            f"the state directory {path} belongs to user id {found.st_uid}, not to this user "
            f"({os.geteuid()}); use a directory of your own"
        )
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o022:
        return (
            f"the state directory {path} has mode {mode:04o}: other users may write to it, so "
            f"it is not safe to use; make it private with: chmod 700 {path}"
        )
    return None


def _unsafe_above(path: str, real: str) -> str | None:
    """Why a directory above the state directory (``real``: its real path) would let another
    user replace it — rename it away and put one of theirs in its place between a check and
    an open, so that this user's keeper would read their store: a directory of another user
    (root aside), or one others may write to that is not sticky (in a sticky one, such as
    ``/tmp``, only the owner of an entry, of the directory, or root may rename the entry).
    As ssh checks the directories above a key. None if no directory does."""
    uid = os.geteuid()
    above = os.path.dirname(real)
    while True:
        try:
            found = os.lstat(above)
        except OSError as error:
            # It was to be seen a moment ago (the state directory was reached through it):
            # moved away meanwhile, by its owner or by another user, who may put one of theirs
            # in its place. Never taken for safe.
            return (
                f"the directory {above} above the state directory {path} changed while it "
                f"was looked at ({error.strerror})"
            )
        mode = stat.S_IMODE(found.st_mode)
        where = f"the directory {above} above the state directory {path}"
        if not stat.S_ISDIR(found.st_mode):
            return f"{where} changed while it was looked at (it is a {kind_of(found.st_mode)})"
        if found.st_uid not in (0, uid) and not _outside_namespace(found.st_uid):
            return (
                f"{where} belongs to user id {found.st_uid}, who could replace the state "
                f"directory in it: choose a state directory below directories of your own"
            )
        if mode & 0o022 and not mode & stat.S_ISVTX and not _private_group(found, mode):
            return (
                f"{where} has mode {mode:04o}: other users may replace the state directory "
                f"in it, so it is not safe to use; make it private with: chmod go-w {above}"
            )
        parent = os.path.dirname(above)
        if parent == above:
            return None
        above = parent


def open_private(path: str, flags: int = os.O_RDWR) -> int:
    """Open (creating it 0600) a lock or log file of the state directory, never through a
    symlink; one that cannot be used is set aside first (see the module docstring)."""
    _set_aside_unusable(path)
    try:
        # O_NONBLOCK: a FIFO planted meanwhile must not block the open (refused below).
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as error:
        fault = resource_fault(path, error)
        if fault is not None:
            raise fault from error
        raise SessionManagementException(
            f"cannot open {path}: {error.strerror}"
            + ("; it is a symbolic link: remove it" if os.path.islink(path) else "")
        ) from error
    found = os.fstat(fd)
    if found.st_uid != os.geteuid() or not stat.S_ISREG(found.st_mode):
        os.close(fd)
        raise SessionManagementException(f"{path} is not a regular file of this user; move it away")
    os.set_blocking(fd, True)
    return fd


def open_ring(path: str, size: int) -> tuple[int, bytes]:
    """Open (as :func:`open_private`) a ring file of ``size`` bytes: its descriptor and what
    it holds. Its blocks are allocated now, so that a later write does not find the disk
    full (if it is full already, the writes are tried later or take another way)."""
    fd = open_private(path)
    with contextlib.suppress(OSError):
        os.posix_fallocate(fd, 0, size)
    with open(fd, "rb", closefd=False, buffering=0) as ring:
        return fd, ring.read(size)


def _set_aside_unusable(path: str) -> None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        return  # planted: refused loudly by the open, never followed
    if not stat.S_ISREG(found.st_mode):
        set_aside(path, f"is a {kind_of(found.st_mode)}, not a regular file")
    elif found.st_uid != os.geteuid():
        set_aside(path, f"belongs to user id {found.st_uid}, not to this user")


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words ("directory", "FIFO", …)."""
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "regular file" if stat.S_ISREG(mode) else "special file"


def set_aside(path: str, why: str) -> str:
    """Rename a file of the state directory that cannot be used to
    ``<path>.damaged-<UTC time>`` (kept for a look, never deleted) and log a warning saying
    ``why``; the new name ("" if the file was gone already, set aside by another process)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = f"{path}.damaged-{stamp}"
    number = 0
    while os.path.lexists(aside):
        number += 1
        aside = f"{path}.damaged-{stamp}-{number}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return ""
    _log.warning("%s %s: set aside as %s", path, why, aside)
    return aside


def clear_socket(path: str) -> None:
    """Remove what is left at the socket's path (the socket of a dead keeper) before a keeper
    binds it; anything else there (a directory, a FIFO, a file, a symbolic link) is set
    aside."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(found.st_mode):
        set_aside(path, f"is a {kind_of(found.st_mode)}, not the keeper's socket")
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def above_standard(fd: int) -> int:
    """``fd``, moved above 2 if it is 0, 1 or 2: this process's stdin, stdout or stderr was
    closed and the descriptor took its place. A client's own descriptor never stands for one
    of its streams, which a job given "/dev/stdin" and the like would get."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def socket_address(state_dir: str, dir_fd: int | None) -> str:
    """The address of the keeper's socket: its path, or (when that is longer than a socket
    address may be) the same file reached through ``/proc/self/fd`` and ``dir_fd``."""
    path = os.path.join(state_dir, SOCKET)
    if len(os.fsencode(path)) <= _SUN_PATH_MAX or dir_fd is None:
        return path
    return f"/proc/self/fd/{dir_fd}/{SOCKET}"
