"""A job's stdin, stdout and stderr: opened for the job without ever blocking the keeper.

A FIFO without a peer, or a device that is not there, must not stall the keeper (and every
other job with it): files are opened ``O_NONBLOCK`` and the job gets a blocking descriptor, as
from a shell's redirection. A file that cannot be opened is a :class:`LaunchError` naming the
template field; a limit that was reached (descriptors) is re-raised for the supervisor, for
which the job waits.

A file that the job's output or error stream creates gets the mode the submitting process's
own redirection would give it, ``0o666`` less that process's umask, whatever the keeper's
umask is and without ever having more permissions meanwhile (see :func:`_open_for_writing`);
an existing file keeps its mode, as with a shell's ``>``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING

from drmaa2_ostracker.faults import limit_reached
from drmaa2_ostracker.process.origins import OWN_FDS, reopen

if TYPE_CHECKING:
    from drmaa2_ostracker.process.launch import LaunchSpec

__all__ = ["LaunchError", "open_streams"]


class LaunchError(Exception):
    """A job cannot be started; the message is the reason, for the job's annotation."""


def _fields(spec: LaunchSpec, path: str) -> str:
    """The template field(s) naming ``path``."""
    fields = [
        name for name in ("input_path", "output_path", "error_path") if getattr(spec, name) == path
    ]
    return "/".join(fields) or "path"


def _open_failure(spec: LaunchSpec, path: str, error: OSError) -> str:
    """Why a job's stream file could not be opened, naming the template field."""
    field = _fields(spec, path)
    if error.errno == errno.ENXIO:
        why = "a FIFO with no reader, or a device that is not there (no terminal for /dev/tty)"
    else:
        why = error.strerror or str(error)
    return f"could not open {field} {path}: {why}"


_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK
#: Symbolic links followed at most to the file a stream creates, as the kernel's MAXSYMLINKS.
_MAX_HOPS = 40
_devnull_fd = -1


def _devnull() -> int:
    """One /dev/null descriptor for every job (opened once, close-on-exec)."""
    global _devnull_fd
    if _devnull_fd < 0:
        _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull_fd


def _open_for_writing(path: str, umask: int | None) -> int:
    """Open ``path`` as a shell's ``>`` does for a process whose umask is ``umask`` (None:
    this process's own), but without truncating it (see :func:`_truncate`): an existing file
    keeps its mode; a new one gets ``0o666 & ~umask``.

    The keeper's umask is not the submitter's, and setting it would change it for every
    thread of the keeper. So a new file is created with ``O_EXCL`` and the wanted mode, which
    this process's umask can only narrow, then widened to it with ``fchmod``: at no moment
    has it more permissions than the wanted mode. A directory with a default ACL overrides
    every umask, so a file created there is left as the kernel made it (at most the wanted
    mode).
    """
    if umask is None:
        return os.open(path, _WRITE | os.O_CREAT, 0o666)
    mode = 0o666 & ~umask
    for _ in range(_MAX_HOPS):
        try:
            fd = os.open(path, _WRITE | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            pass  # a file, or a symbolic link (O_EXCL never follows one)
        else:
            try:
                _widen(fd, path, mode)
            except BaseException:
                os.close(fd)
                raise
            return fd
        try:
            return os.open(path, _WRITE)
        except FileNotFoundError:
            # The file went away meanwhile (create it), or this is a symbolic link to a file
            # that does not exist (create that file, as the shell does).
            try:
                target = os.readlink(path)
            except OSError:
                continue  # not a symbolic link (any more): try again
            path = os.path.join(os.path.dirname(path), target)
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)


def _widen(fd: int, path: str, mode: int) -> None:
    """Give a file just created with ``mode`` exactly that mode, which the keeper's umask may
    have narrowed (unless a default ACL of its directory decided it instead)."""
    if stat.S_IMODE(os.fstat(fd).st_mode) == mode:
        return
    try:
        os.getxattr(os.path.dirname(path), "system.posix_acl_default")
    except OSError as error:
        if error.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return  # not known: the narrower mode is the safe one
    else:
        return  # the ACL, not a umask, made the mode: as for the submitter's own ">"
    with contextlib.suppress(OSError):  # a file system without modes (vfat) decides itself
        os.fchmod(fd, mode)


def _file_id(fd: int) -> tuple[int, int] | None:
    """(device, inode) of an open regular file; None for anything else."""
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _truncate(fd: int, spec: LaunchSpec, path: str, input_id: tuple[int, int] | None) -> None:
    """Empty a regular file opened for the job's output, as ``>`` does, unless it is the
    job's input file (by any name: a hard link made since the template was checked), which
    the job would read as it empties it: then :class:`LaunchError`."""
    file_id = _file_id(fd)
    if file_id is None:
        return  # a device or a FIFO: nothing to empty
    if file_id == input_id:
        raise LaunchError(
            f"input_path {spec.input_path} and {path} are the same file: the job would read "
            f"what it empties"
        )
    os.ftruncate(fd, 0)


def open_streams(spec: LaunchSpec) -> tuple[list[int], tuple[int, int, int]]:
    """Open the job's stdin/stdout/stderr; returns the descriptors to close after the spawn
    and the three the job gets."""
    opened: list[int] = []
    again: set[int] = set()  # the submitter's streams opened again: never emptied
    umask = None if spec.settings is None else spec.settings.umask

    def open_file(path: str, write: bool) -> int:
        if path in spec.streams:
            return spec.streams[path]
        if path in OWN_FDS:
            if spec.origins is None:
                return OWN_FDS[path]
            got = reopen(path, spec.origins.get(path), write)
            if isinstance(got, str):
                raise LaunchError(f"{_fields(spec, path)} {path}: {got}")
            opened.append(got)
            again.add(got)
            return got
        # Never blocking: a FIFO without a peer would stall the keeper (and every other job
        # with it). The job gets a blocking descriptor, as from a shell's redirection.
        try:
            fd = _open_for_writing(path, umask) if write else os.open(path, _READ)
        except OSError as error:
            if limit_reached(error) is not None:
                raise  # not the job's fault: it waits for the limit (see the supervisor)
            raise LaunchError(_open_failure(spec, path, error)) from None
        opened.append(fd)
        os.set_blocking(fd, True)
        return fd

    try:
        stdin = _devnull() if spec.input_path is None else open_file(spec.input_path, write=False)
        input_id = None if stdin == _devnull_fd else _file_id(stdin)
        stdout = _devnull() if spec.output_path is None else open_file(spec.output_path, write=True)
        if stdout in opened and stdout not in again:
            _truncate(stdout, spec, spec.output_path or "", input_id)
        if spec.join_files or (spec.error_path is not None and spec.error_path == spec.output_path):
            # One open file for both: they share the offset, so neither clobbers the other.
            stderr = stdout
        elif spec.error_path is None:
            stderr = _devnull()
        else:
            stderr = open_file(spec.error_path, write=True)
            if stderr in opened and stderr not in again:
                if stdout in opened and _file_id(stderr) == _file_id(stdout) is not None:
                    # Another name of the output file: one open file, as for one name.
                    opened.remove(stderr)
                    os.close(stderr)
                    stderr = stdout
                else:
                    _truncate(stderr, spec, spec.error_path, input_id)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return opened, (stdin, stdout, stderr)
