"""The store's queries about job arrays: their records, their cursors, and their tasks that
were never touched (see :mod:`drmaa2_ostracker.supervisor.lazy`). A part of
:class:`~drmaa2_ostracker.store.queries.Store`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from typing import Any

from drmaa2.enums import JobState
from drmaa2_ostracker.store.records import ArrayRecord, gone_indices

__all__ = ["ArrayQueries"]


class ArrayQueries:
    """The array queries of the store (mixed into ``Store``, which runs the statements)."""

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def insert_array(self, array: ArrayRecord) -> None:
        """Write a new array record."""
        values = dataclasses.astuple(array)
        self._rows(f"INSERT INTO arrays VALUES ({', '.join('?' for _ in values)})", values)

    def update_array(self, session: str, array_id: str, **columns: Any) -> None:
        """Update some columns of an array (next_index, held)."""
        unknown = set(columns) - {"next_index", "held"}
        if unknown:
            raise KeyError(f"not updatable array columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._rows(
            f"UPDATE arrays SET {assignments} WHERE session = ? AND array_id = ?",
            (*columns.values(), session, array_id),
        )

    def add_gone(self, session: str, array_id: str, indices: Collection[int]) -> None:
        """Record that tasks touched ahead of the array's cursor are reaped (their rows about
        to be deleted): see :attr:`ArrayRecord.gone`."""
        row = self._one(
            "SELECT gone FROM arrays WHERE session = ? AND array_id = ?", (session, array_id)
        )
        if row is None:
            return
        gone = sorted(gone_indices(row[0]) | set(indices))
        self._rows(
            "UPDATE arrays SET gone = ? WHERE session = ? AND array_id = ?",
            (json.dumps(gone), session, array_id),
        )

    def fail_untouched(
        self,
        array: ArrayRecord,
        cursor: int,
        sub_state: str,
        annotation: str,
        finish_us: int,
        job_name: str | None,
        touched: Collection[int] = (),
    ) -> None:
        """Write every task of an array from ``cursor`` on that is not in the store as FAILED
        (one statement: a million tasks in a few seconds), except the ``touched`` ones (a task
        touched out of order that was reaped is not written again)."""
        if array.first_seq is None:
            raise ValueError(f"array {array.array_id} has no places reserved")
        self._rows(
            "WITH RECURSIVE t(i) AS (SELECT ? UNION ALL SELECT i + ? FROM t WHERE i <= ? - ?) "
            "INSERT INTO jobs (seq, session, job_id, array_id, task_index, job_name, state, "
            "sub_state, annotation, submission_us, finish_us) "
            "SELECT ? + (i - ?) / ?, ?, ? || '.' || i, ?, i, ?, ?, ?, ?, ?, ? FROM t "
            + ("WHERE i NOT IN (SELECT value FROM json_each(?)) " if touched else "WHERE true ")
            + "ON CONFLICT DO NOTHING",
            (
                cursor,
                array.step,
                array.end_index,
                array.step,
                array.first_seq,
                array.begin_index,
                array.step,
                array.session,
                array.array_id,
                array.array_id,
                job_name,
                int(JobState.FAILED),
                sub_state,
                annotation,
                array.submission_us or finish_us,
                finish_us,
                *([json.dumps(sorted(touched))] if touched else []),
            ),
        )

    def unfolding_arrays(self, session: str) -> list[ArrayRecord]:
        """The session's arrays that still have tasks not in the store."""
        rows = self._rows(
            "SELECT * FROM arrays WHERE session = ? AND next_index IS NOT NULL "
            "AND next_index <= end_index ORDER BY first_seq",
            (session,),
        )
        return [ArrayRecord(*row) for row in rows]

    def task_indices_from(self, session: str, array_id: str, index: int) -> list[int]:
        """Indices of an array's tasks in the store, from ``index`` on."""
        rows = self._rows(
            "SELECT task_index FROM jobs WHERE session = ? AND array_id = ? AND task_index >= ?",
            (session, array_id, index),
        )
        return [row[0] for row in rows]

    def array(self, session: str, array_id: str) -> ArrayRecord | None:
        """One array's record, None if unknown."""
        row = self._one(
            "SELECT * FROM arrays WHERE session = ? AND array_id = ?", (session, array_id)
        )
        return None if row is None else ArrayRecord(*row)

    def task_states(self, session: str, array_id: str) -> dict[int, JobState]:
        """The states of an array's tasks in the store, by index."""
        rows = self._rows(
            "SELECT task_index, state FROM jobs WHERE session = ? AND array_id = ?",
            (session, array_id),
        )
        return {index: JobState(state) for index, state in rows}

    def array_task_ids(self, session: str, array_id: str) -> list[str]:
        """Ids of an array's tasks that were not reaped, in index order."""
        rows = self._rows(
            "SELECT job_id FROM jobs WHERE session = ? AND array_id = ? ORDER BY task_index",
            (session, array_id),
        )
        return [row[0] for row in rows]
