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
it recorded was committed. Each record carries its serial number, and a keeper goes on from
the latest record of the keepers before it: the records of a keeper killed before its
launches were committed survive the next keepers' launches, even those of a keeper killed in
turn before it decided what they were (it recovers the sessions one by one, and starts the
jobs of each as it goes). (A machine that crashes loses its jobs and its page cache alike;
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
#: A launch's record: its digest (the first bytes of :func:`_digest`'s) and its serial
#: number (modulo 2**32: the record is in slot ``serial % SLOTS``).
_DIGEST = 12
_BEGIN = struct.Struct(f"<{_DIGEST}sI")
_SIZE = _BEGIN.size
#: A fork's record: the launch's digest, the pid, the start time (signed: see
#: ProcessIdentity) and the record's serial number (as the launch's).
_FORK = struct.Struct("<16siqI")
_FORKS_AT = SLOTS * _SIZE
_SERIALS = 1 << 32
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
    """A launch's digest: of the job and the tick it was marked STARTING at (so a job of the
    same id in a session made again under the same name is another launch)."""
    key = f"{session}\0{job_id}\0{marked}".encode()
    return hashlib.blake2b(key, digest_size=16).digest()


def _next_serial(found: list[tuple[int, int]]) -> int:
    """The serial number after the latest of records ``found`` (slot, serial): 0 if none.
    A record whose serial is not its slot's (a slot never written, or written by a keeper
    of an earlier release) is passed over. The serials left are within 2**31 of each other
    (a slot is written again every SLOTS launches), so the latest is found across their
    wrap at 2**32."""
    serials = [serial for slot, serial in found if serial % SLOTS == slot]
    if not serials:
        return 0
    first = serials[0]
    ahead = max((serial - first + (1 << 31)) % _SERIALS - (1 << 31) for serial in serials)
    return (first + ahead + 1) % _SERIALS


class Launches:
    """The ring of launches begun, of one state directory (see the module docstring)."""

    def __init__(self, state_dir: str) -> None:
        path = os.path.join(state_dir, LAUNCHES)
        # (A job whose write fails, on a disk full already, waits.)
        self._fd, left = files.open_ring(path, _END)
        begins = [
            _BEGIN.unpack_from(left, at)
            for at in range(0, min(len(left), _FORKS_AT) - _SIZE + 1, _SIZE)
        ]
        #: What the keepers before this one began (read before this keeper writes).
        self._before = {digest for digest, _ in begins} - {bytes(_DIGEST)}
        #: The processes the keepers before this one forked, by their launch's digest.
        self._forks_before: dict[bytes, tuple[int, int]] = {}
        forks: list[tuple[int, int]] = []
        for at in range(_FORKS_AT, min(len(left), _SUBMISSIONS_AT) - _FORK.size + 1, _FORK.size):
            digest, pid, start, serial = _FORK.unpack_from(left, at)
            if pid > 0:
                self._forks_before[digest] = (pid, start)
                forks.append(((at - _FORKS_AT) // _FORK.size, serial))
        #: The submissions the keepers before this one recorded, and this one's generation.
        self._submissions_before = left[_SUBMISSIONS_AT:_END]
        whole = len(self._submissions_before) // _SUBMISSION.size * _SUBMISSION.size
        submissions = _SUBMISSION.iter_unpack(self._submissions_before[:whole])
        self._generation = 1
        #: Every process the keepers before this one recorded forking (pid, start ticks).
        self.processes_before = set(self._forks_before.values())
        latest: tuple[int, int, int] | None = None  # generation, serial, slot
        for slot, record in enumerate(submissions):
            self._generation = max(self._generation, record[5] + 1)
            if record[4] > 0:
                self.processes_before.add((record[4], record[3]))
            if record[5] > 0 and (latest is None or (record[5], record[6]) > latest[:2]):
                latest = (record[5], record[6], slot)
        # Each ring goes on after the latest record of the keepers before this one.
        begun = [(slot, serial) for slot, (digest, serial) in enumerate(begins) if any(digest)]
        self._next = itertools.count(_next_serial(begun))
        self._next_fork = itertools.count(_next_serial(forks))
        #: The slot of this keeper's first submission record.
        self._submissions_from = 0 if latest is None else latest[2] + 1
        self._next_submission = itertools.count()

    def beginning(self, session: str, job_id: str, marked: int | None) -> Callable[[], object]:
        """What records that the launch of a job marked at tick ``marked`` begins, to call
        immediately before its fork: safe in the forked child too (its slot is taken here,
        in the keeper, so a record written in a child is never overwritten by the next)."""
        serial = next(self._next) % _SERIALS
        record = _BEGIN.pack(_digest(session, job_id, marked)[:_DIGEST], serial)
        return functools.partial(os.pwrite, self._fd, record, serial % SLOTS * _SIZE)

    def forked(
        self, session: str, job_id: str, marked: int | None, pid: int, start_ticks: int
    ) -> None:
        """Record the process a launch forked (after :meth:`beginning`'s record, once the
        fork returned)."""
        serial = next(self._next_fork) % _SERIALS
        record = _FORK.pack(_digest(session, job_id, marked), pid, start_ticks, serial)
        os.pwrite(self._fd, record, _FORKS_AT + serial % SLOTS * _FORK.size)

    def fork_of(self, session: str, job_id: str, marked: int | None) -> tuple[int, int] | None:
        """(pid, start ticks) of the process the keeper before this one forked for a launch,
        if it recorded it."""
        return self._forks_before.get(_digest(session, job_id, marked))

    def begun(self, session: str, job_id: str, marked: int | None) -> bool:
        """Whether the keeper before this one began the launch of a job it marked at tick
        ``marked`` (if not, the job was never forked)."""
        return _digest(session, job_id, marked)[:_DIGEST] in self._before

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
        at = _SUBMISSIONS_AT + (self._submissions_from + serial) % SLOTS * _SUBMISSION.size
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
