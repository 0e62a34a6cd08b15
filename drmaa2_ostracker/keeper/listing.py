"""A keeper's job session, the part that answers queries: the session's job ids (filters the
store can answer run in SQL), its arrays' task ids, a job's record, state and template. The
records of jobs that have not finished come from the supervisor, the others from the store."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.filter import job_matches, set_filter_fields
from drmaa2.types import JobInfo
from drmaa2_ostracker.info import record_to_info
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import ArrayRecord, JobRecord
from drmaa2_ostracker.supervisor import Supervisor
from drmaa2_ostracker.supervisor.lazy import Untouched, split_task_id

__all__ = ["SessionQueries"]

# JobInfo filter fields the store can answer itself, and their columns.
_PUSHDOWN = {
    "job_id": "job_id",
    "job_name": "job_name",
    "job_state": "state",
    "exit_status": "exit_status",
    "terminating_signal": "terminating_signal",
}


class SessionQueries:
    """The queries of a :class:`~drmaa2_ostracker.keeper.sessions.SessionEngine`."""

    _name: str
    _store: Store
    _supervisor: Supervisor

    def _record(self, job_id: str) -> JobRecord:
        record = self._supervisor.active_record(self._store, self._name, job_id)
        if record is None:
            record = self._store.job(self._name, job_id)
        if record is None:
            raise InvalidArgumentException(f"job {job_id!r}: no such job in session {self._name!r}")
        return record

    def job_ids(self, job_filter: JobInfo | None) -> list[str]:
        """Ids of the jobs passing the filter, oldest first (simple filters run in SQL)."""
        wanted = {} if job_filter is None else set_filter_fields(job_filter)
        where: dict[str, Any] = {}
        for name, column in _PUSHDOWN.items():
            if name in wanted:
                value = wanted.pop(name)
                where[column] = int(value) if name == "job_state" else value
        self._supervisor.observed()
        unwritten = self._supervisor.unwritten_records(self._store, self._name)
        with self._supervisor.lock:  # the store and the untouched tasks read as one
            untouched = self._supervisor.untouched_of(self._store, self._name)
            if untouched:
                rows, streams = self._with_untouched(untouched, where, job_filter)
            elif not wanted:
                found = self._store.job_ids(self._name, where)
            else:
                found = [
                    record.job_id
                    for record in self._store.jobs(self._name, where)
                    if job_matches(record_to_info(self._live(record)), job_filter)
                ]
        if untouched:  # merged outside the lock (from snapshots): it may take a while
            found = [job_id for _, job_id in heapq.merge(rows, *streams)]
        if not unwritten:
            return found
        # Changes a full disk keeps from the store: the records in memory are the truth.
        stale = {record.job_id for record in unwritten}
        return [job_id for job_id in found if job_id not in stale] + [
            record.job_id
            for record in unwritten
            if job_filter is None or job_matches(record_to_info(record), job_filter)
        ]

    def _with_untouched(
        self, untouched: list[Untouched], where: dict[str, Any], job_filter: JobInfo | None
    ) -> tuple[list[tuple[int, str]], list[Iterable[tuple[int, str]]]]:
        """The listing of a session with arrays whose tasks are not all written, as
        (place, id) of the store's jobs and streams of the untouched tasks, to merge."""
        streams: list[Iterable[tuple[int, str]]] = []
        wanted_id = where.get("job_id")
        for rest in untouched:
            sample = rest.record(rest.cursor)
            if job_filter is not None:
                sample.job_id = wanted_id or sample.job_id  # ids were checked by the store
                if not job_matches(record_to_info(sample), job_filter):
                    continue
            if wanted_id is not None:
                found = split_task_id(wanted_id)
                if found is not None and found[0] == rest.array_id and rest.has(found[1]):
                    streams.append([(rest.array.seq_of(found[1]) or 0, wanted_id)])
                continue
            streams.append(_placed(rest))
        rows = self._store.job_seqs(self._name, where)
        if job_filter is not None and set_filter_fields(job_filter).keys() - _PUSHDOWN.keys():
            kept = set(self.job_ids_in_store(where, job_filter))
            rows = [row for row in rows if row[1] in kept]
        return rows, streams

    def job_ids_in_store(self, where: dict[str, Any], job_filter: JobInfo) -> list[str]:
        """Ids of the store's jobs that pass a filter the store cannot answer alone."""
        return [
            record.job_id
            for record in self._store.jobs(self._name, where)
            if job_matches(record_to_info(self._live(record)), job_filter)
        ]

    def _live(self, record: JobRecord) -> JobRecord:
        if record.state.is_terminal:
            return record
        return self._supervisor.active_record(self._store, self._name, record.job_id) or record

    def array_task_ids(self, array_id: str) -> list[str]:
        """Task ids of one of the session's arrays, in index order."""
        self._array(array_id)
        with self._supervisor.lock:
            rests = [
                rest
                for rest in self._supervisor.untouched_of(self._store, self._name)
                if rest.array_id == array_id
            ]
            stored = self._store.array_task_ids(self._name, array_id)
            # Tasks a full disk keeps from the store (their start could not be written).
            unwritten = [
                record.job_id
                for record in self._supervisor.unwritten_records(self._store, self._name)
                if record.array_id == array_id
            ]
        if unwritten:
            stored = sorted({*stored, *unwritten}, key=_task_index)
        if not rests:
            return stored
        untouched = (f"{array_id}.{index}" for index in rests[0].indices())
        return list(heapq.merge(stored, untouched, key=_task_index))

    def _array(self, array_id: str) -> ArrayRecord:
        array = self._store.array(self._name, array_id)
        if array is None:
            raise InvalidArgumentException(
                f"job array {array_id!r}: no such array in session {self._name!r}"
            )
        return array

    def array_template_document(self, array_id: str) -> str:
        """The template an array was submitted with, as stored (JSON)."""
        return self._array(array_id).template

    def record_values(self, job_id: str) -> tuple[Any, ...]:
        """The job's record as plain values (see :meth:`JobRecord.to_values`)."""
        return self._record(job_id).to_values()

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's (state, sub-state)."""
        return self._supervisor.state(self._store, self._name, job_id)

    def job_template_document(self, job_id: str) -> str:
        """The template the job (or its array) was submitted with, as stored (JSON)."""
        record = self._record(job_id)
        if record.array_id is not None:
            return self.array_template_document(record.array_id)
        assert record.template is not None
        return record.template


def _placed(rest: Untouched) -> Iterator[tuple[int, str]]:
    """(place in the session's order, id) of an array's untouched tasks, in order."""
    array = rest.array
    first, begin, step = array.first_seq or 0, array.begin_index, array.step
    prefix = f"{array.array_id}."
    for index in rest.indices():
        yield first + (index - begin) // step, prefix + str(index)


def _task_index(job_id: str) -> int:
    """The index of an array task, from its id."""
    return int(job_id.rpartition(".")[2])
