"""A job session inside the keeper: records in the store, jobs handed to the supervisor.

Its clients checked the templates and resolved what depends on them (the environment, the
working directory, the executable: :mod:`~drmaa2_ostracker.template`); a session here records
jobs in the store (:mod:`~drmaa2_ostracker.store`) and hands them to the supervisor
(:mod:`~drmaa2_ostracker.supervisor`), which owns every state change.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from drmaa2.backend import Action, WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.filter import job_matches, set_filter_fields
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_ostracker import faults
from drmaa2_ostracker.info import record_to_info
from drmaa2_ostracker.plan import Plan, launch_document
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import (
    MAX_ARRAY_TASKS,
    ArrayRecord,
    JobRecord,
    dumps,
    template_document,
)
from drmaa2_ostracker.supervisor import Group, Supervisor, now_us
from drmaa2_ostracker.supervisor.lazy import Untouched, split_task_id
from drmaa2_ostracker.template import restore_plan

__all__ = ["SessionEngine"]

#: The most job ids a session reserves at once (the reservation doubles from one up to this).
_MAX_ID_BLOCK = 64

# JobInfo filter fields the store can answer itself, and their columns.
_PUSHDOWN = {
    "job_id": "job_id",
    "job_name": "job_name",
    "job_state": "state",
    "exit_status": "exit_status",
    "terminating_signal": "terminating_signal",
}


class SessionEngine:
    """A job session as the keeper runs it: the contract's job-session methods, on plans."""

    def __init__(self, name: str, store: Store, supervisor: Supervisor, created_us: int) -> None:
        self._name = name
        #: When the session was made (µs): with its name, what its objects know it by.
        self.created_us = created_us
        self._store = store
        self._supervisor = supervisor
        #: Job ids reserved in the store for this session object: next, end (exclusive).
        self._ids = (0, 0)
        self._id_block = 1
        self._id_lock = threading.Lock()

    def _next_id(self) -> str:
        """The next job (or array) id, from a block reserved in the store: ids are never
        handed out twice, and submitting needs no database write before the job starts."""
        with self._id_lock:
            following, end = self._ids
            if following >= end:
                following = self._supervisor.reserve_ids(self._store, self._name, self._id_block)
                end = following + self._id_block
                self._id_block = min(2 * self._id_block, _MAX_ID_BLOCK)
            self._ids = (following + 1, end)
            return str(following)

    def _release_ids(self) -> None:
        """Give back the ids reserved and not used (if nobody reserved any after them)."""
        with self._id_lock:
            following, end = self._ids
            self._ids = (0, 0)
        if following < end:
            self._store.release_ids(self._name, following, end)

    def recover(self) -> None:
        """Reconcile the store with the machine: take over the jobs of the keeper before."""
        arrays: dict[str, Group] = {}

        def array_group(array: ArrayRecord) -> Group:
            group = arrays.get(array.array_id)
            if group is None:
                document = json.loads(array.launch) if array.launch else None
                group = self._restored_group(array.template, document, array.max_parallel)
                arrays[array.array_id] = group
            return group

        def group_for(record: JobRecord) -> Group:
            """Rebuilds launch groups from the store: one per array, one per single job."""
            if record.array_id is None:
                document = json.loads(record.launch) if record.launch else None
                return self._restored_group(record.template, document, None)
            return array_group(self._array(record.array_id))

        self._supervisor.recover(self._store, self._name, group_for, array_group)

    def _restored_group(
        self, template: str | None, document: dict[str, Any] | None, max_parallel: int | None
    ) -> Group:
        jt = JobTemplate.from_json(template) if template else JobTemplate()
        if document is None:  # started before the crash: only needed for its limits
            document = {"env": {}, "cwd": "/"}
        return self._group(restore_plan(jt, document), max_parallel)

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str:
        """The state directory holding the session's store."""
        return self._store.state_dir

    # -- submission ------------------------------------------------------------------------

    def _group(self, plan: Plan, max_parallel: int | None) -> Group:
        return Group(
            prepare=lambda record: plan.launch_spec(record.job_id, record.task_index),
            max_parallel=max_parallel,
            start_at=plan.start_at,
            deadline=plan.deadline,
            wallclock_limit=plan.wallclock_limit,
        )

    def _new_record(
        self, plan: Plan, job_id: str, submitted: int, deferred: str | None
    ) -> JobRecord:
        return JobRecord(
            session=self._name,
            job_id=job_id,
            state=JobState.QUEUED_HELD if plan.held else JobState.QUEUED,
            submission_us=submitted,
            job_name=plan.template.job_name,
            launch=deferred,
        )

    @staticmethod
    def _deferred(plan: Plan) -> str | None:
        """The launch document, for a job that may start after this process is gone."""
        waits = plan.held or (plan.start_at is not None and plan.start_at > now_us() / 1e6)
        return dumps(launch_document(plan)) if waits else None

    def run_job(self, plan: Plan) -> tuple[str, bool]:
        """Record the job of a checked plan and start it (or queue it); its id, and whether
        the store's file system has room for many more and the keeper is far from its
        descriptor and process limits (a client may then send its next submissions ahead,
        see :mod:`~drmaa2_ostracker.keeper.ahead`).

        Far from a full disk, a job that may start at once is started, then recorded with
        its start. Nearer, it is recorded before it starts (with its launch document, for
        the next keeper to start it if this one is killed first): a record that cannot be
        written then raises, and nothing starts."""
        document = plan.document
        # Its row holds the template and, until it starts, its launch document: about
        # twice the template.
        roomy = self._store.ensure_space("the job was not submitted", 2 * len(document))
        job_id = self._next_id()
        if roomy and not plan.held and plan.start_at is None and plan.deadline is None:
            record = self._new_record(plan, job_id, now_us(), None)
            record.template = plan.document
            group = plan.single_group
            if group is None:
                group = plan.single_group = self._group(plan, None)
            self._supervisor.start_now(self._store, record, group)
            return job_id, faults.headroom()
        deferred = self._deferred(plan) if roomy else dumps(launch_document(plan))

        def make_records() -> list[JobRecord]:
            record = self._new_record(plan, job_id, now_us(), deferred)
            record.template = document
            return [record]

        records = self._supervisor.submit(
            self._store, make_records, self._group(plan, None), commit_after_start=roomy
        )
        return records[0].job_id, roomy and faults.headroom()

    def run_bulk_jobs(
        self,
        plan: Plan,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
    ) -> str:
        """Record the array of a checked plan and start its first tasks (its other tasks
        are written when they are touched: see :mod:`~drmaa2_ostracker.supervisor.lazy`)."""
        template = template_document(plan.template)
        launch = dumps(launch_document(plan))
        # Its record, and each task's row as it starts: a few times its documents.
        size = 2 * (len(template) + len(launch))
        self._store.ensure_space("the array was not submitted", size)
        array = ArrayRecord(
            session=self._name,
            array_id=self._next_id(),
            begin_index=begin_index,
            end_index=end_index,
            step=step,
            max_parallel=max_parallel,
            template=template,
            launch=launch,
            submission_us=now_us(),
            held=plan.held,
        )
        if array.tasks > MAX_ARRAY_TASKS:
            raise InvalidArgumentException(
                f"a job array has at most {MAX_ARRAY_TASKS:,} tasks, not {array.tasks:,}"
            )
        self._supervisor.submit_array(self._store, array, self._group(plan, max_parallel))
        return array.array_id

    # -- queries ---------------------------------------------------------------------------

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
        if not rests:
            return stored
        untouched = (f"{array_id}.{index}" for index in rests[0].indices())
        return list(
            heapq.merge(stored, untouched, key=lambda job_id: int(job_id.rpartition(".")[2]))
        )

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

    # -- control ---------------------------------------------------------------------------

    def control(self, job_id: str, action: Action) -> None:
        """Suspend, resume, hold, release or terminate a job."""
        self._supervisor.control(self._store, self._name, job_id, action)

    def wait(
        self,
        job_ids: Sequence[str],
        condition: WaitFor,
        wait_all: bool,
        timeout: float,
        check: Callable[[], None] | None = None,
    ) -> list[str]:
        """Wait for jobs to start or finish (``check``: see the supervisor's wait)."""
        return self._supervisor.wait(
            self._store, self._name, job_ids, condition, wait_all, timeout, check
        )

    def reap(self, job_id: str) -> None:
        """Forget a finished job."""
        self._supervisor.reap_job(self._store, self._name, job_id)

    def job_categories(self) -> list[str]:
        """No categories are predefined; any job_category is kept and reported."""
        return []

    def close(self) -> None:
        """Give back the job ids reserved and not used (the keeper is about to exit)."""
        self._release_ids()


def _placed(rest: Untouched) -> Iterator[tuple[int, str]]:
    """(place in the session's order, id) of an array's untouched tasks, in order."""
    array = rest.array
    first, begin, step = array.first_seq or 0, array.begin_index, array.step
    prefix = f"{array.array_id}."
    for index in rest.indices():
        yield first + (index - begin) // step, prefix + str(index)
