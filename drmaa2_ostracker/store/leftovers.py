"""What a dead keeper left in the ring of ends (see :mod:`drmaa2_ostracker.store.ends`),
sorted and checked for the keeper that opens the ring next: the starts to insert, the ends
(and provisional ends) to apply, and why jobs were being killed.

A record read from the ring is data only: a start is inserted, and an end applied, only
where its values are those a start or an end has (plain values, the expected states), so
nothing in the ring is ever launched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drmaa2.enums import JobState
from drmaa2_ostracker.process.identity import ProcessIdentity, is_running
from drmaa2_ostracker.store.records import JOB_COLUMNS, update_sql
from drmaa2_ostracker.store.ring import KILLED, PROVISIONAL, REAPED

__all__ = ["END_COLUMNS", "FINISHED", "START_COLUMNS", "Leftovers", "apply_end"]

#: The columns an end writes.
END_COLUMNS = frozenset(
    {
        "state",
        "sub_state",
        "annotation",
        "exit_status",
        "terminating_signal",
        "finish_us",
        "cpu_time",
        "rusage",
    }
)
#: The columns a start writes (with the session and the job id).
START_COLUMNS = frozenset(JOB_COLUMNS) - {"session", "job_id", "launch", "owner_pid", "owner_start"}
#: The finished states' codes.
FINISHED = (int(JobState.DONE), int(JobState.FAILED))

#: A start read from the ring: (session, job id, pid start, values, session made (µs)).
LeftStart = tuple[str, str, int, dict[str, Any], int]
#: An end read from the ring: (session, job id, pid start, values).
LeftEnd = tuple[str, str, int, dict[str, Any]]


@dataclass
class Leftovers:
    """The records a dead keeper left in the ring, sorted (see :meth:`sort`)."""

    #: Starts of jobs to insert, but for jobs reaped since.
    starts: list[LeftStart]
    #: Ends to apply: the ends, then the provisional ends of processes gone that no end
    #: follows and no anchor kept.
    ends: list[LeftEnd]
    #: Why jobs were being killed, by (session, job id, process start tick): (sub-state,
    #: annotation), for jobs whose end is not there.
    kill_reasons: dict[tuple[str, str, int], tuple[Any, Any]]
    #: Those reasons' records as read, to be written to the emptied ring again.
    killing: list[tuple[str, str, int, dict[str, Any], int, str]]

    @classmethod
    def sort(
        cls, left: list[tuple[Any, ...]], kept: Callable[[ProcessIdentity], bool]
    ) -> Leftovers:
        """Sort the records ``left`` (as :meth:`Ends.left
        <drmaa2_ostracker.store.ring.Ends.left>` gives them). ``kept``: whether a dead
        keeper's anchor kept the whole end of a process (a provisional end of it is then left
        to recovery, which takes that)."""
        marked = [found for found in left if len(found) == 6]
        # A job reaped after its start was written is not made again from it.
        reaped = {found[:3] for found in marked if found[5] == REAPED}
        starts = [found for found in left if len(found) == 5 and found[:3] not in reaped]
        ends = [found for found in left if len(found) == 4]
        ended = {found[:3] for found in ends}
        ends += [
            (session, job_id, pid_start, values)
            for session, job_id, pid_start, values, pid, mark in marked
            if mark == PROVISIONAL
            # (After the ends: an end of the same process overrides it.)
            and (session, job_id, pid_start) not in ended
            and not is_running(ProcessIdentity(pid, pid_start))
            and not kept(ProcessIdentity(pid, pid_start))
        ]
        killing = [
            found
            for found in marked
            if found[5] == KILLED
            and found[:3] not in ended
            and isinstance(found[3].get("sub_state"), str)
            and isinstance(found[3].get("annotation"), str)
        ]
        kill_reasons = {
            found[:3]: (found[3]["sub_state"], found[3]["annotation"]) for found in killing
        }
        return cls(starts, ends, kill_reasons, killing)

    def store(self, conn: sqlite3.Connection) -> int:
        """Insert the starts, then apply the ends, in one transaction; rows changed. On a
        failure (a full disk), the transaction is undone and the error raised."""
        changed = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Starts first: a job's end goes round the ring after its start, and may lie in
            # an earlier slot.
            for session, job_id, pid_start, values, created_us in self.starts:
                changed += _insert(conn, session, job_id, pid_start, values, created_us)
            for session, job_id, pid_start, values in self.ends:
                changed += apply_end(conn, session, job_id, pid_start, values)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return changed

    def valid_ends(self) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        """The ends that hold an end, by (session, job id): (pid start tick, values)."""
        return {
            (session, job_id): (pid_start, values)
            for session, job_id, pid_start, values in self.ends
            if _valid(values)
        }

    def valid_starts(self) -> dict[tuple[str, str], tuple[int, dict[str, Any], int]]:
        """The starts that hold a start, by (session, job id): (pid start tick, values,
        when the session was made)."""
        return {
            (session, job_id): (pid_start, values, created_us)
            for session, job_id, pid_start, values, created_us in self.starts
            if _valid_start(pid_start, values)
        }


def apply_end(
    conn: sqlite3.Connection,
    session: str,
    job_id: str,
    pid_start: int | None,
    values: dict[str, Any],
    check: bool = True,
) -> int:
    """Write an end to its row, if the row still shows the same process unfinished (a
    session made again under the same name has other processes); rows changed. ``check``:
    whether ``values`` come from the ring (and must hold an end)."""
    columns = tuple(values)
    if check and not _valid(values):
        return 0
    sql = update_sql(columns, False) + " AND pid_start = ? AND state NOT IN (?, ?)"
    return conn.execute(sql, (*values.values(), session, job_id, pid_start, *FINISHED)).rowcount


def _valid(values: dict[str, Any]) -> bool:
    """Whether a record read from the ring holds an end: only an end's columns, plain values,
    a finished state."""
    return (
        bool(values)
        and END_COLUMNS.issuperset(values)
        and values.get("state") in FINISHED
        and all(value is None or type(value) in (int, float, str) for value in values.values())
    )


def _insert(
    conn: sqlite3.Connection,
    session: str,
    job_id: str,
    pid_start: int,
    values: dict[str, Any],
    created_us: int,
) -> int:
    """Insert a job's first record from the ring, unless its row exists (it was committed)
    or its session is not the one the record belongs to (destroyed, or made again under the
    same name); rows inserted."""
    if not _valid_start(pid_start, values):
        return 0
    columns = ("session", "job_id", *values)
    sql = (
        f"INSERT OR IGNORE INTO jobs ({', '.join(columns)}) "
        f"SELECT {', '.join('?' for _ in columns)} "
        "WHERE EXISTS (SELECT 1 FROM sessions WHERE name = ? AND created_us = ?)"
    )
    args = (session, job_id, *values.values(), session, created_us)
    return conn.execute(sql, args).rowcount


def _valid_start(pid_start: int, values: dict[str, Any]) -> bool:
    """Whether a record read from the ring holds a start: a start's columns only, plain
    values, a running job of that process with its place in the order (never anything to
    launch: the ring is data, never run)."""
    return (
        START_COLUMNS.issuperset(values)
        and values.get("state") == int(JobState.RUNNING)
        and values.get("pid_start") == pid_start
        and isinstance(values.get("pid"), int)
        and isinstance(values.get("seq"), int)
        and isinstance(values.get("submission_us"), int)
        and all(type(value) in (int, float, str) for value in values.values())
    )
