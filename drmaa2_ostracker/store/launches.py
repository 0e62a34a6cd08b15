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
record is of unknown start (a keeper killed within the fork itself): the dead keeper's
anchor tells whether it forked (see :mod:`~drmaa2_ostracker.store.orphans`).

A third ring holds submissions: the key a client gave a ``run_job`` or ``run_bulk_jobs``
request and the id it got, written before the job's record is committed or, for a job
started before it is recorded, immediately before its fork (and again with its process once
the fork returns). A client whose keeper died before answering makes the request again with
the same key, and the next keeper answers it from here: with the job made before (adopting
its process if it was forked and never recorded), never with a second one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import os
import struct
from collections.abc import Callable

from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.process.identity import identity_of

__all__ = ["KEY_SIZE", "LAUNCHES", "SLOTS", "Launches", "Submission"]

#: The file of launches begun, in the state directory.
LAUNCHES = "launches"
#: Records in the ring: far more than the launches between a mark and its commit.
SLOTS = 4096
_SIZE = 16
#: A fork's record: the launch's digest, the pid and the start time (signed: see
#: ProcessIdentity).
_FORK = struct.Struct("<16siq4x")
_FORKS_AT = SLOTS * _SIZE
#: A submission's record: the client's key, the id it got, the boot tick its fork began at
#: (0: recorded before it starts), the start tick and pid of its process (0: not recorded),
#: the generation of the keeper that wrote it (one more than the keeper before it), and its
#: number among that keeper's records (the latest record of a key is the one that holds).
_SUBMISSION = struct.Struct("<16sqqqiiq")
_SUBMISSIONS_AT = _FORKS_AT + SLOTS * _FORK.size
_END = _SUBMISSIONS_AT + SLOTS * _SUBMISSION.size
_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
#: The length of a submission's key (bytes).
KEY_SIZE = 16


@dataclasses.dataclass(frozen=True)
class Submission:
    """What the launches file says of a submission (see :meth:`Launches.submission`)."""

    #: The job (or array) id it got.
    job_id: str
    #: The boot tick its fork began at; 0 if it was to be recorded before it starts.
    tick: int
    #: Its process (pid, start tick), if the fork returned and was recorded.
    process: tuple[int, int] | None
    #: Whether this keeper wrote it (else a keeper before it, now gone).
    mine: bool


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
        self._fd, left = files.open_ring(path, _END)
        #: What the keeper before this one began (read before this keeper writes).
        records = {left[i : i + _SIZE] for i in range(0, min(len(left), _FORKS_AT), _SIZE)}
        self._before = records - {bytes(_SIZE)}
        #: The processes the keeper before this one forked, by their launch's digest.
        self._forks_before: dict[bytes, tuple[int, int]] = {}
        for at in range(_FORKS_AT, min(len(left), _SUBMISSIONS_AT) - _FORK.size + 1, _FORK.size):
            digest, pid, start = _FORK.unpack_from(left, at)
            if pid > 0:
                self._forks_before[digest] = (pid, start)
        #: The submissions the keepers before this one recorded, and this one's generation.
        self._submissions_before = left[_SUBMISSIONS_AT:_END]
        whole = len(self._submissions_before) // _SUBMISSION.size * _SUBMISSION.size
        submissions = _SUBMISSION.iter_unpack(self._submissions_before[:whole])
        self._generation = 1
        #: Every process the keepers before this one recorded forking (pid, start ticks).
        self.processes_before = set(self._forks_before.values())
        for record in submissions:
            self._generation = max(self._generation, record[5] + 1)
            if record[4] > 0:
                self.processes_before.add((record[4], record[3]))
        self._next = itertools.count()
        self._next_fork = itertools.count()
        self._next_submission = itertools.count()

    def beginning(self, session: str, job_id: str, marked: int | None) -> Callable[[], object]:
        """What records that the launch of a job marked at tick ``marked`` begins, to call
        immediately before its fork: safe in the forked child too (its slot is taken here,
        in the keeper, so a record written in a child is never overwritten by the next)."""
        at = next(self._next) % SLOTS * _SIZE
        return functools.partial(os.pwrite, self._fd, _digest(session, job_id, marked), at)

    def forked(
        self, session: str, job_id: str, marked: int | None, pid: int, start_ticks: int
    ) -> None:
        """Record the process a launch forked (after :meth:`beginning`'s record, once the
        fork returned)."""
        at = _FORKS_AT + next(self._next_fork) % SLOTS * _FORK.size
        os.pwrite(self._fd, _FORK.pack(_digest(session, job_id, marked), pid, start_ticks), at)

    def fork_of(self, session: str, job_id: str, marked: int | None) -> tuple[int, int] | None:
        """(pid, start ticks) of the process the keeper before this one forked for a launch,
        if it recorded it."""
        return self._forks_before.get(_digest(session, job_id, marked))

    def begun(self, session: str, job_id: str, marked: int | None) -> bool:
        """Whether the keeper before this one began the launch of a job it marked at tick
        ``marked`` (if not, the job was never forked)."""
        return _digest(session, job_id, marked) in self._before

    def submitted(self, key: bytes, job_id: str) -> None:
        """Record that submission ``key`` got ``job_id``, before its record is committed."""
        self.forking(key, job_id, 0)[0]()

    def forking(
        self, key: bytes, job_id: str, tick: int
    ) -> tuple[Callable[[], object], Callable[[int, int, int], None], Callable[[], None]]:
        """For submission ``key``, which got job ``job_id`` and whose fork begins at boot tick
        ``tick``, what records:

        - that its fork begins: to call immediately before the fork (safe in the forked
          child);
        - its process, once the fork returned: called with its pid and CLOCK_BOOTTIME before
          and after the fork, ns (see
          :func:`~drmaa2_ostracker.process.identity.identity_of_new_child`); it never
          raises: unrecorded, the next keeper looks for the process;
        - that it did not start after all (the fork or the exec failed): a keeper that makes
          it again then makes it anew, unless this one recorded it (failed).
        """
        serial = next(self._next_submission)
        at = _SUBMISSIONS_AT + serial % SLOTS * _SUBMISSION.size
        number = int(job_id)
        begins = _SUBMISSION.pack(key, number, tick, 0, 0, self._generation, serial)
        return (
            functools.partial(os.pwrite, self._fd, begins, at),
            functools.partial(self._forked, key, number, tick, serial, at),
            functools.partial(self._unstarted, key, number, serial, at),
        )

    def _forked(
        self,
        key: bytes,
        number: int,
        tick: int,
        serial: int,
        at: int,
        pid: int,
        before_ns: int,
        after_ns: int,
    ) -> None:
        first, last = before_ns // _NS_PER_TICK, after_ns // _NS_PER_TICK
        if last - first > 1:  # the fork took ticks (a loaded machine): ask the kernel
            asked = identity_of(pid)  # (a child, not reaped: there)
            if asked is None:
                return
            start = asked.start_ticks
        else:
            start = first if last == first else -(first + 1)
        record = _SUBMISSION.pack(key, number, tick, start, pid, self._generation, serial)
        try:
            os.pwrite(self._fd, record, at)
        except Exception:  # after the fork, never raises: the next keeper looks for it
            return

    def _unstarted(self, key: bytes, number: int, serial: int, at: int) -> None:
        record = _SUBMISSION.pack(key, number, 0, 0, 0, self._generation, serial)
        with contextlib.suppress(Exception):
            os.pwrite(self._fd, record, at)

    def submission(self, key: bytes) -> Submission | None:
        """The latest record of submission ``key``, by this keeper or one before it; None
        if no keeper recorded it (it was never made, or it is far in the past)."""
        now = os.pread(self._fd, _END - _SUBMISSIONS_AT, _SUBMISSIONS_AT)
        best: tuple[int, int] | None = None
        found: Submission | None = None
        for region in (self._submissions_before, now):
            at = region.find(key)
            while at >= 0:
                if at % _SUBMISSION.size == 0 and at + _SUBMISSION.size <= len(region):
                    _, job_id, tick, start, pid, generation, serial = _SUBMISSION.unpack_from(
                        region, at
                    )
                    rank = (generation, serial)
                    if generation > 0 and (best is None or rank > best):
                        best = rank
                        process = (pid, start) if pid > 0 else None
                        mine = generation == self._generation
                        found = Submission(str(job_id), tick, process, mine)
                at = region.find(key, at + 1)
        return found

    def close(self) -> None:
        """Close the ring's file (a record a thread still writes then fails: EBADF)."""
        fd, self._fd = self._fd, -1
        os.close(fd)
