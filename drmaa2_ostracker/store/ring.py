"""The ring file of job ends and starts not yet in the store (``ends`` in the state
directory): fixed-size slots written with ``pwrite``, each record the :mod:`marshal` form of
plain values with a checksum, read back only as data. What is written there, and when, is
:mod:`.ends`'s.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import os
import struct
from typing import Any

from drmaa2_ostracker.keeper import files

__all__ = [
    "ENDS",
    "KILLED",
    "PROVISIONAL",
    "REAPED",
    "SLOTS",
    "SLOT_SIZE",
    "End",
    "Ends",
    "Provisional",
    "Start",
]

_log = logging.getLogger(__name__)

#: The file of ends not yet in the store, in the state directory.
ENDS = "ends"
#: Records in the ring.
SLOTS = 2048
#: A record's size: an end that does not fit (a very long session name or annotation) is
#: written to the store at once instead.
SLOT_SIZE = 512
_HEADER = struct.Struct("<H")
_DIGEST = 16
_ROOM = SLOT_SIZE - _HEADER.size - _DIGEST

#: An end: (session, job id, the process's start tick, {column: value}).
End = tuple[str, str, int, dict[str, Any]]
#: A start (a single job's first record): (session, job id, the process's start tick,
#: {column: value} of the columns set, when its session was made, µs).
Start = tuple[str, str, int, dict[str, Any], int]
#: A provisional end, written before the exit status is collected (see
#: :meth:`~drmaa2_ostracker.store.ends.PendingEnds.provisional`): (session, job id, the
#: process's start tick, {column: value}, its pid, :data:`PROVISIONAL`).
Provisional = tuple[str, str, int, dict[str, Any], int, str]
#: The mark of a provisional end.
PROVISIONAL = "provisional"
#: The mark of a kill's reason, written before the kill (same shape, its values the sub-state
#: and annotation the job ends with: see
#: :meth:`~drmaa2_ostracker.store.ends.PendingEnds.killing`).
KILLED = "killed"
#: The mark of a reap (same shape, no values): the job's start, if the ring holds it, is not
#: to be inserted again (see :meth:`~drmaa2_ostracker.store.ends.PendingEnds.reaped`).
REAPED = "reaped"


class Ends:
    """The ring of job ends not yet in the store, of one state directory."""

    def __init__(self, state_dir: str) -> None:
        path = os.path.join(state_dir, ENDS)
        # (On a disk full already, the ends take the SQL way, and wait for space there.)
        self._fd, self._found = files.open_ring(path, SLOTS * SLOT_SIZE)
        self._next = 0

    def left(self) -> list[End | Start | Provisional]:
        """The ends and starts this ring held from an earlier keeper when it was opened."""
        data = self._found
        found = []
        damaged = 0
        for start in range(0, len(data) - SLOT_SIZE + 1, SLOT_SIZE):
            slot = data[start : start + SLOT_SIZE]
            end = _decode(slot)
            if end is not None:
                found.append(end)
            elif slot[: _HEADER.size] != bytes(_HEADER.size):  # not empty: damaged
                damaged += 1
        if damaged:
            _log.warning(
                "%d record(s) of the ring %s were damaged and are ignored: the ends or starts "
                "of jobs they held are lost",
                damaged,
                ENDS,
            )
        return found

    def clear(self) -> None:
        """Empty the ring (once every end it holds is in the store)."""
        os.pwrite(self._fd, bytes(SLOTS * SLOT_SIZE), 0)
        self._next = 0
        self._found = b""

    def write(self, end: End | Start | Provisional) -> bool:
        """Record an end or a start; False if it does not fit a slot or cannot be written."""
        payload = marshal.dumps(end, 4)
        if len(payload) > _ROOM:
            return False
        body = _HEADER.pack(len(payload)) + payload
        record = body + hashlib.blake2b(body, digest_size=_DIGEST).digest()
        try:
            os.pwrite(self._fd, record, self._next * SLOT_SIZE)
        except OSError:
            return False
        self._next = (self._next + 1) % SLOTS
        return True

    def close(self) -> None:
        """Close the ring's file."""
        os.close(self._fd)


def _decode(slot: bytes) -> End | Start | Provisional | None:
    """The end or start a slot holds; None for an empty or damaged slot."""
    (length,) = _HEADER.unpack_from(slot)
    if length == 0 or length > _ROOM:
        return None
    body = slot[: _HEADER.size + length]
    digest = slot[_HEADER.size + length : _HEADER.size + length + _DIGEST]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        return None
    try:
        value = marshal.loads(body[_HEADER.size :])
    except (EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(value, tuple)
        or len(value) not in (4, 5, 6)
        or not isinstance(value[0], str)
        or not isinstance(value[1], str)
        or not isinstance(value[2], int)
        or not isinstance(value[3], dict)
        or (len(value) >= 5 and not isinstance(value[4], int))
        or (len(value) == 6 and value[5] not in (PROVISIONAL, KILLED, REAPED))
    ):
        return None
    return value
