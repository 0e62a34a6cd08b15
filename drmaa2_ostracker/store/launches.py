"""Launches begun: what a keeper killed while starting a job leaves for the next keeper.

A job is marked STARTING in the store before it is spawned, and recorded RUNNING with its pid
after. A keeper killed between the two leaves a job whose start is unknown, and the next
keeper must tell two cases apart: a job that was never forked must start now (or it would
never run), one that was forked may have run already and must never run again. The store
cannot tell them apart: a commit right before every fork would cost more than the fork.

So the keeper writes one small record here with a plain ``pwrite`` immediately before each
fork (for a job started through ``Popen``, in the child itself, before ``exec``). Once the
write returns, the record survives the keeper's death: it is in the kernel's page cache. A
job marked STARTING with no record here was never forked. Records go round a ring of
:data:`SLOTS`; a slot is written again only :data:`SLOTS` launches later, long after the launch
it recorded was committed. (A machine that crashes loses its jobs and its page cache alike;
its jobs are found ended, as after any crash.)

Once the fork returns, a second record, in a second ring of the same file, names the
process (pid and start time): the next keeper adopts it if it runs, and knows it ran if it
ended (its exit status unobserved), where only a job whose launch began and has no such
record is of unknown start (a keeper killed within the fork itself).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct

from drmaa2_ostracker.keeper import files

__all__ = ["LAUNCHES", "SLOTS", "Launches"]

#: The file of launches begun, in the state directory.
LAUNCHES = "launches"
#: Records in the ring: far more than the launches between a mark and its commit.
SLOTS = 4096
_SIZE = 16
#: A fork's record: the launch's digest, the pid and the start time (signed: see
#: ProcessIdentity).
_FORK = struct.Struct("<16siq4x")
_FORKS_AT = SLOTS * _SIZE


def _digest(session: str, job_id: str, marked: int | None) -> bytes:
    """A launch's record: the job and the tick it was marked STARTING at (so a job of the
    same id in a session made again under the same name is another launch)."""
    key = f"{session}\0{job_id}\0{marked}".encode()
    return hashlib.blake2b(key, digest_size=_SIZE).digest()


class Launches:
    """The ring of launches begun, of one state directory (see the module docstring)."""

    def __init__(self, state_dir: str) -> None:
        path = os.path.join(state_dir, LAUNCHES)
        # (A job whose write fails, on a disk full already, waits.)
        self._fd, left = files.open_ring(path, _FORKS_AT + SLOTS * _FORK.size)
        #: What the keeper before this one began (read before this keeper writes).
        records = {left[i : i + _SIZE] for i in range(0, min(len(left), _FORKS_AT), _SIZE)}
        self._before = records - {bytes(_SIZE)}
        #: The processes the keeper before this one forked, by their launch's digest.
        self._forks_before: dict[bytes, tuple[int, int]] = {}
        for at in range(_FORKS_AT, len(left) - _FORK.size + 1, _FORK.size):
            digest, pid, start = _FORK.unpack_from(left, at)
            if pid > 0:
                self._forks_before[digest] = (pid, start)
        self._next = itertools.count()
        self._next_fork = itertools.count()

    def begin(self, session: str, job_id: str, marked: int | None) -> None:
        """Record that the launch of a job marked at tick ``marked`` begins (its fork is
        next). Safe in a forked child and from any thread."""
        slot = next(self._next) % SLOTS
        os.pwrite(self._fd, _digest(session, job_id, marked), slot * _SIZE)

    def forked(
        self, session: str, job_id: str, marked: int | None, pid: int, start_ticks: int
    ) -> None:
        """Record the process a launch forked (after :meth:`begin`, the fork returned)."""
        slot = next(self._next_fork) % SLOTS
        record = _FORK.pack(_digest(session, job_id, marked), pid, start_ticks)
        os.pwrite(self._fd, record, _FORKS_AT + slot * _FORK.size)

    def fork_of(self, session: str, job_id: str, marked: int | None) -> tuple[int, int] | None:
        """(pid, start ticks) of the process the keeper before this one forked for a launch,
        if it recorded it."""
        return self._forks_before.get(_digest(session, job_id, marked))

    def begun(self, session: str, job_id: str, marked: int | None) -> bool:
        """Whether the keeper before this one began the launch of a job it marked at tick
        ``marked`` (if not, the job was never forked)."""
        return _digest(session, job_id, marked) in self._before

    def close(self) -> None:
        """Close the ring's file."""
        os.close(self._fd)
