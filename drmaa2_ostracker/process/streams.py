"""A job's stdin, stdout and stderr: opened for the job without ever blocking the keeper.

A FIFO without a peer, or a device that is not there, must not stall the keeper (and every
other job with it): files are opened ``O_NONBLOCK`` and the job gets a blocking descriptor, as
from a shell's redirection. A file that cannot be opened is a :class:`LaunchError` naming the
template field; a limit that was reached (descriptors) is re-raised for the supervisor, for
which the job waits.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from drmaa2_ostracker.faults import limit_reached

if TYPE_CHECKING:
    from drmaa2_ostracker.process.launch import LaunchSpec

__all__ = ["LaunchError", "open_streams"]


class LaunchError(Exception):
    """A job cannot be started; the message is the reason, for the job's annotation."""


def _open_failure(spec: LaunchSpec, path: str, error: OSError) -> str:
    """Why a job's stream file could not be opened, naming the template field."""
    fields = [
        name for name in ("input_path", "output_path", "error_path") if getattr(spec, name) == path
    ]
    field = "/".join(fields) or "path"
    if error.errno == errno.ENXIO:
        why = "a FIFO with no reader, or a device that is not there (no terminal for /dev/tty)"
    else:
        why = error.strerror or str(error)
    return f"could not open {field} {path}: {why}"


_OWN_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_devnull_fd = -1


def _devnull() -> int:
    """One /dev/null descriptor for every job (opened once, close-on-exec)."""
    global _devnull_fd
    if _devnull_fd < 0:
        _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull_fd


def open_streams(spec: LaunchSpec) -> tuple[list[int], tuple[int, int, int]]:
    """Open the job's stdin/stdout/stderr; returns the descriptors to close after the spawn
    and the three the job gets."""
    opened: list[int] = []

    def open_file(path: str, flags: int) -> int:
        if path in spec.streams:
            return spec.streams[path]
        if path in _OWN_STREAMS:
            return _OWN_STREAMS[path]
        # Never blocking: a FIFO without a peer would stall the keeper (and every other job
        # with it). The job gets a blocking descriptor, as from a shell's redirection.
        try:
            fd = os.open(path, flags | os.O_NONBLOCK, 0o666)
        except OSError as error:
            if limit_reached(error) is not None:
                raise  # not the job's fault: it waits for the limit (see the supervisor)
            raise LaunchError(_open_failure(spec, path, error)) from None
        opened.append(fd)
        os.set_blocking(fd, True)
        return fd

    try:
        stdin = (
            _devnull()
            if spec.input_path is None
            else open_file(spec.input_path, os.O_RDONLY | os.O_CLOEXEC)
        )
        stdout = _devnull() if spec.output_path is None else open_file(spec.output_path, _WRITE)
        if spec.join_files or (spec.error_path is not None and spec.error_path == spec.output_path):
            # One open file for both: they share the offset, so neither clobbers the other.
            stderr = stdout
        elif spec.error_path is None:
            stderr = _devnull()
        else:
            stderr = open_file(spec.error_path, _WRITE)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return opened, (stdin, stdout, stderr)
