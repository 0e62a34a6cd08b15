"""Ends of jobs whose keeper died: collected by the keeper's anchor, read by the next keeper.

The process that starts the keeper stays as its parent, the *anchor* (see
:mod:`drmaa2_ostracker.keeper.anchor`), and is a child subreaper: if the keeper is killed,
its jobs become the anchor's children, and the anchor reaps each when it ends. For each it
writes one file, ``orphans/<pid>.<start tick>`` in the state directory, with the job's wait
status, resource usage and end time. The next keeper, taking over a job whose process is
gone, reads it there, and records the job's exact end instead of an end it could not see.
A file is removed once the end it holds is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time

from drmaa2_ostracker.keeper.anchor import DIGEST, ORPHANS, RECORD
from drmaa2_ostracker.process.exits import ExitStatus, decode_wait_status
from drmaa2_ostracker.process.identity import ProcessIdentity

__all__ = ["ANCHOR_WAIT", "ORPHANS", "Orphans"]

#: Seconds a keeper waits for the end of an adopted job that just ended to be written by the
#: dead keeper's anchor (which reaps it as soon as it ends), before it records the end as
#: unobserved (no anchor: it was killed too, or there was none).
ANCHOR_WAIT = 0.2


def _name(pid: int, start_ticks: int) -> str:
    return f"{pid}.{start_ticks}"


class Orphans:
    """The orphans' ends of one state directory, as the keeper reads them."""

    def __init__(self, state_dir: str) -> None:
        self._path = os.path.join(state_dir, ORPHANS)

    def end_of(
        self, identity: ProcessIdentity, wait: float = 0.0
    ) -> tuple[ExitStatus, int, str] | None:
        """How the process ``identity`` ended, if an anchor reaped it: its status, its end
        time (µs) and the file to :meth:`forget` once that is recorded. ``wait``: seconds
        to wait for the file (a process that just ended: its anchor writes it once it has
        reaped it)."""
        deadline = time.monotonic() + wait
        while True:
            found = self._read(identity)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.001)

    def _read(self, identity: ProcessIdentity) -> tuple[ExitStatus, int, str] | None:
        start = identity.start_ticks
        ticks = [start] if start >= 0 else [-start - 1, -start]
        for tick in ticks:
            path = os.path.join(self._path, _name(identity.pid, tick))
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if os.fstat(fd).st_uid != os.geteuid():
                    continue
                data = os.read(fd, RECORD.size + DIGEST + 1)
            finally:
                os.close(fd)
            found = _decode(data, identity.pid, tick)
            if found is not None:
                return (*found, path)
        return None

    def forget(self, path: str) -> None:
        """Remove an orphan's file whose end is recorded."""
        with contextlib.suppress(OSError):
            os.unlink(path)


def _decode(data: bytes, pid: int, tick: int) -> tuple[ExitStatus, int] | None:
    if len(data) != RECORD.size + DIGEST:
        return None
    body, digest = data[: RECORD.size], data[RECORD.size :]
    if hashlib.blake2b(body, digest_size=DIGEST).digest() != digest:
        return None
    found_pid, status, start, utime, stime, maxrss, swaps, blocks_in, blocks_out, end_us = (
        RECORD.unpack(body)
    )
    if (found_pid, start) != (pid, tick):
        return None
    exit_status, signal_name = decode_wait_status(status)
    return (
        ExitStatus(exit_status, signal_name, utime, stime, maxrss, swaps, blocks_in, blocks_out),
        end_us,
    )
