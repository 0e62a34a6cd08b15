"""Ends of jobs whose keeper died: collected by the keeper's anchor, read by the next keeper.

The process that starts the keeper stays as its parent, the *anchor* (see
:mod:`drmaa2_ostracker.keeper.anchor`), and is a child subreaper: if the keeper is killed,
its jobs become the anchor's children, and the anchor reaps each when it ends. For each it
writes one file, ``orphans/<pid>.<start tick>`` in the state directory, with the job's wait
status, resource usage and end time. The next keeper, taking over a job whose process is
gone, reads it there, and records the job's exact end instead of an end it could not see.
A file is removed once the end it holds is recorded.

The same files tell whether a job whose fork began ever forked, when the keeper was killed
before it could record its process (see :mod:`~drmaa2_ostracker.store.launches`): each keeper
notes itself and its anchor in its lock file (:class:`Lineage`), and the next one reads them.
While the dead keeper's anchor lives, or if it exited having recorded every end, a process
that the dead keeper forked is running (and found by its job id), is the anchor's child, or
has its end in a file here: if none of these is to be seen, the job was never forked, and it
can start now (:meth:`Orphans.launched_since`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from typing import Literal

from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.keeper.anchor import (
    ANCHOR,
    DIGEST,
    EXITED,
    ORPHANS,
    RECORD,
    orphans_directory,
)
from drmaa2_ostracker.process.exits import ExitStatus, decode_wait_status
from drmaa2_ostracker.process.identity import (
    ProcessIdentity,
    ProcessSet,
    identity_of,
    is_running,
    process_state,
    stat_fields,
)

__all__ = ["ANCHOR_WAIT", "LINEAGES", "ORPHANS", "STALE_SECONDS", "Lineage", "Orphans"]

_log = logging.getLogger(__name__)

#: Seconds a keeper waits for the end of an adopted job that just ended to be written by the
#: dead keeper's anchor (which reaps it as soon as it ends), before it records the end as
#: unobserved (no anchor: it was killed too, or there was none).
ANCHOR_WAIT = 0.2
#: The keepers a keeper notes in its lock file: itself and those before it.
LINEAGES = 8
#: Seconds after which an end no job took is removed (see :meth:`Orphans.clear_stale`).
STALE_SECONDS = 86400.0
#: Seconds :meth:`Orphans.launched_since` waits for an anchor to finish reaping.
_SETTLE = 1.0
#: What :meth:`Orphans._look` answers while an anchor is busy: look again.
_BUSY: Literal["busy"] = "busy"


@dataclasses.dataclass(frozen=True)
class Lineage:
    """A keeper and its anchor (None: it had none), as its lock file notes them:
    ``<pid>.<start tick>:<its anchor's>``, and ``:recovered`` once the keeper decided what
    the keepers before it left (see :meth:`Orphans.launch_bound`)."""

    keeper: ProcessIdentity
    anchor: ProcessIdentity | None
    recovered: bool = False

    @classmethod
    def of(cls, keeper: int, anchor: int | None) -> Lineage:
        """The lineage of the running keeper ``keeper`` and its anchor (pids; a process
        gone has start 0, a start no process has)."""

        def identity(pid: int) -> ProcessIdentity:
            return identity_of(pid) or ProcessIdentity(pid, 0)

        return cls(identity(keeper), None if anchor is None else identity(anchor))

    def __str__(self) -> str:
        anchor = "-" if self.anchor is None else _name(self.anchor.pid, self.anchor.start_ticks)
        recovered = ":recovered" if self.recovered else ""
        return f"{_name(self.keeper.pid, self.keeper.start_ticks)}:{anchor}{recovered}"

    @classmethod
    def parse_all(cls, text: str) -> list[Lineage]:
        """The lineages a lock file's text notes (``keepers <keeper>:<anchor> …``), oldest
        first; none from a lock file of another form (a release before this one)."""
        found: list[Lineage] = []
        for line in text.splitlines():
            words = line.split()
            if words[:1] != ["keepers"]:
                continue
            for word in words[1:]:
                keeper, _, anchor = word.partition(":")
                anchor, _, recovered = anchor.partition(":")
                identity = _identity(keeper)
                if identity is None:
                    return []
                anchored = None if anchor == "-" else _identity(anchor)
                found.append(cls(identity, anchored, recovered == "recovered"))
        return found


def _ticks(identity: ProcessIdentity) -> list[int]:
    """The ticks a process may have started at (two for a start that says "one of two")."""
    start = identity.start_ticks
    return [start] if start >= 0 else [-start - 1, -start]


def _identity(name: str) -> ProcessIdentity | None:
    pid, _, start = name.partition(".")
    try:
        return ProcessIdentity(int(pid), int(start))
    except ValueError:
        return None


def _name(pid: int, start_ticks: int) -> str:
    return f"{pid}.{start_ticks}"


class Orphans:
    """The orphans' ends of one state directory, as the keeper reads them."""

    def __init__(self, state_dir: str) -> None:
        self._path = os.path.join(state_dir, ORPHANS)
        #: The keepers before this one, as its lock file noted them when it started (set by
        #: the keeper): whose anchors :meth:`launched_since` asks.
        self.lineages: list[Lineage] = []
        #: The ended processes taken for jobs whose fork began unrecorded (see :meth:`claim`).
        self._claimed: set[ProcessIdentity] = set()

    def claim(self, identity: ProcessIdentity) -> bool:
        """Take an ended process that :meth:`launched_since` gave for a job: False if it was
        taken before, for another (it may be either's: neither may take it). Still given
        by :meth:`launched_since` once its file is removed."""
        if identity in self._claimed:
            return False
        self._claimed.add(identity)
        return True

    def claimed(self, identity: ProcessIdentity) -> bool:
        """Whether :meth:`claim` took the process."""
        return identity in self._claimed

    def launch_bound(self) -> int | None:
        """The boot tick no launch still undecided began before: the start of the last
        keeper before this one that decided what the keepers before it left (the launches
        left since are its own or its successors'); None if none did (that is known)."""
        recovered = [lineage for lineage in self.lineages if lineage.recovered]
        return recovered[-1].keeper.start_ticks if recovered else None

    def launched_since(
        self, tick: int, taken: Iterable[tuple[int, int]]
    ) -> list[ProcessIdentity] | None:
        """The processes that the keepers before this one may have forked since boot tick
        ``tick`` without recording them, and that ended: those whose ends their anchors
        kept, started since then and none of ``taken`` (pid, start ticks: processes known
        to be jobs'). Call it for a job whose fork began at ``tick`` and whose process is
        not running (see the module docstring): [] says it was never forked.

        None if that cannot be told: a keeper before had no anchor, or its anchor was
        killed, or has a child that may be the job's (still running, or not yet reaped
        after :data:`_SETTLE` seconds), or a keeper of an earlier release came before."""
        others = ProcessSet(taken)

        def known(pid: int, start: int) -> bool:
            return start < tick or others.has(pid, start)

        # Only the keeper alive at ``tick`` (the last one started by then: keepers run one at
        # a time) and those after it may have forked since: an earlier one died before it
        # started, and its anchor, even if killed, holds nothing of that time.
        started = [abs(lineage.keeper.start_ticks) for lineage in self.lineages]
        alive_then = max((start for start in started if start <= tick), default=0)
        lineages = [
            lineage
            for lineage, start in zip(self.lineages, started, strict=True)
            if start >= alive_then
        ]
        deadline = time.monotonic() + _SETTLE
        while True:
            found = self._look(known, lineages)
            if found != _BUSY:
                return found
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def _look(
        self, known: Callable[[int, int], bool], lineages: list[Lineage]
    ) -> list[ProcessIdentity] | Literal["busy"] | None:
        """One look for :meth:`launched_since` at the keepers of ``lineages``: its answer,
        or _BUSY (look again)."""
        if not lineages:
            return None
        anchors: set[int] = set()
        for lineage in lineages:
            anchor = lineage.anchor
            if anchor is None:
                return None
            if is_running(lineage.keeper):  # exiting still: its children are not yet moved
                return _BUSY
            if is_running(anchor):
                anchors.add(anchor.pid)
            elif not self._exited(anchor):
                return None  # killed, or it failed to record an end
        for name in os.listdir("/proc") if anchors else ():
            fields = stat_fields(int(name)) if name.isdigit() else None
            if fields is None or int(fields[1]) not in anchors:
                continue
            if not known(int(name), int(fields[19])):
                # Ended and about to be reaped (look again), or running: the job's, not yet
                # known by its id, or another's.
                return _BUSY if fields[0] == "Z" else None
        found = [p for p in self._claimed if not known(p.pid, p.start_ticks)]
        try:
            names = os.listdir(self._path)
        except OSError:  # never made (its anchor could not), or set aside: ends unknown
            return None
        for name in names:
            pending = name.startswith(".") and name.endswith(".part")
            identity = _identity(name[1:-5] if pending else name)
            if identity is None or known(identity.pid, identity.start_ticks):
                continue
            if pending:
                return _BUSY  # being written
            if identity not in self._claimed:
                found.append(identity)
        return found

    def end_of(
        self, identity: ProcessIdentity, wait: float = 0.0
    ) -> tuple[ExitStatus, int, str] | None:
        """How the process ``identity`` ended, if an anchor reaped it: its status, its end
        time (µs) and the file to :meth:`forget` once that is recorded. ``wait``: seconds
        to wait for the file (a process that just ended: its anchor writes it once it has
        reaped it), and up to :data:`_SETTLE` more while it is a zombie or its file is being
        written."""
        deadline = time.monotonic() + wait
        settling = False
        while True:
            found = self._read(identity)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                if settling or not self._reaping(identity):
                    return None
                # An anchor is reaping it (a zombie still) or writing its end: a loaded
                # machine may keep it from doing so in ``wait``.
                settling, deadline = True, time.monotonic() + _SETTLE
            time.sleep(0.001)

    def _reaping(self, identity: ProcessIdentity) -> bool:
        """Whether the process is a zombie, or its end is being written."""
        if process_state(identity.pid) == "Z":
            return True
        return any(
            os.path.exists(os.path.join(self._path, f".{_name(identity.pid, tick)}.part"))
            for tick in _ticks(identity)
        )

    def _read(self, identity: ProcessIdentity) -> tuple[ExitStatus, int, str] | None:
        for tick in _ticks(identity):
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

    def _exited(self, anchor: ProcessIdentity) -> bool:
        """Whether an anchor exited having recorded every end (its file says so)."""
        path = os.path.join(self._path, ANCHOR + _name(anchor.pid, anchor.start_ticks))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            return os.fstat(fd).st_uid == os.geteuid() and os.read(fd, 64) == EXITED
        finally:
            os.close(fd)

    def settle_in(self, anchor: ProcessIdentity | None, lineages: list[Lineage]) -> bool:
        """At a keeper's start, before it notes itself in its lock file: note the keepers
        before it (:attr:`lineages`) and make the file its anchor will say "exited" in (see
        :mod:`~drmaa2_ostracker.keeper.anchor`); whether it was made. Without it (a full
        disk), the keeper notes itself without an anchor: its killed forks are decided as if
        it had none. So a keeper noted with an anchor has the anchor's file, and one killed
        before it made it is not noted at all (it forked nothing)."""
        self.lineages = lineages
        if anchor is None:
            return True
        _set_aside_unusable(self._path)
        try:
            directory = orphans_directory(os.path.dirname(self._path))
            try:
                name = ANCHOR + _name(anchor.pid, anchor.start_ticks)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(name, flags, 0o600, dir_fd=directory))
            finally:
                os.close(directory)
        except OSError as error:
            _log.warning("cannot make the file of the keeper's anchor: %s", error)
            return False
        return True

    def clear_stale(self, anchor: ProcessIdentity | None) -> None:
        """After a keeper's recovery: remove the files of anchors no keeper notes any more
        (older than :data:`LINEAGES` keepers) that have exited, and ends older than
        :data:`STALE_SECONDS` that no job took (of processes that were no job's: a job's
        background process, left to its anchor)."""
        noted = {lineage.anchor for lineage in self.lineages} | {anchor}
        try:
            names = os.listdir(self._path)
        except OSError:
            return
        old = time.time() - STALE_SECONDS
        for name in names:
            path = os.path.join(self._path, name)
            with contextlib.suppress(OSError):
                if name.startswith(ANCHOR):
                    identity = _identity(name[len(ANCHOR) :])
                    if identity not in noted and (identity is None or not is_running(identity)):
                        os.unlink(path)
                elif os.lstat(path).st_mtime < old:
                    os.unlink(path)

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


def _set_aside_unusable(path: str) -> None:
    """Set the directory of orphans' ends aside if it cannot be used (a symbolic link, a
    file, another user's directory), so that the anchor gets one anew: without it, the ends
    of a killed keeper's jobs would be lost."""
    try:
        found = os.lstat(path)
    except OSError:
        return  # none yet: made by orphans_directory
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        files.set_aside(path, f"is a {files.kind_of(found.st_mode)}, not a directory")
    elif found.st_uid != os.geteuid():
        files.set_aside(path, f"belongs to user id {found.st_uid}, not to this user")
