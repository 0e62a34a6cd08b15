"""Queries of a slurm job session: its jobs (by filter), arrays, states, JobInfo and templates.

A query asks squeue about unfinished jobs first (through the session's ``refresh``), so what it
returns is what Slurm shows now; a finished job's JobInfo is the one recorded at its end, with
sacct's cpu time and max rss added once accounting has them.
"""

from __future__ import annotations

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.filter import job_matches
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_slurm.info import add_usage, record_info
from drmaa2_slurm.session_base import JobSessionBase
from drmaa2_slurm.states import slurm_task_id
from drmaa2_slurm.store import ArrayRecord, JobRecord

__all__ = ["JobQueries"]


class JobQueries(JobSessionBase):
    """The session's queries (a mixin of :class:`~drmaa2_slurm.job_session.SlurmJobSession`)."""

    def job_ids(self, job_filter: JobInfo | None) -> list[str]:
        """Ids of the session's jobs passing the filter, in submission order."""
        self._alive()
        records = self._store.jobs(self._name)
        self._adopt(records)
        if job_filter is None:
            return [record.job_id for record in records]
        self.refresh([record.job_id for record in records])
        return [
            record.job_id
            for record in records
            if job_matches(self._info(self._known(record.job_id)), job_filter)
        ]

    def array_task_ids(self, array_id: str) -> list[str]:
        """The task ids of one of the session's arrays."""
        self._array(array_id)
        return self._store.array_task_ids(self._name, array_id)

    def _array(self, array_id: str) -> ArrayRecord:
        self._alive()
        array = self._store.array(self._name, array_id)
        if array is None:
            raise InvalidArgumentException(
                f"job array {array_id!r}: no such array in session {self._name!r}"
            )
        return array

    def array_template(self, array_id: str) -> JobTemplate:
        """The template an array was submitted with."""
        return JobTemplate.from_json(self._array(array_id).template)

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's state as squeue shows it now (a finished job's as recorded)."""
        self._known(job_id)
        self.refresh([job_id])
        return self._state_of(job_id)

    def job_info(self, job_id: str) -> JobInfo:
        """The job's JobInfo, as squeue shows it now (a finished job's as recorded)."""
        self._known(job_id)
        self.refresh([job_id])
        record = self._known(job_id)
        info = self._info(record)
        terminal = record.state.is_terminal
        if terminal and self._cluster.accounting and record.job_id not in self._accounted:
            info = self._with_accounting(record, info)
        return info

    def _info(self, record: JobRecord) -> JobInfo:
        if record.state.is_terminal and record.info is not None:
            return JobInfo.from_json(record.info)
        with self._lock:
            row = self._rows.get(record.job_id)
        return record_info(record, row, self._cluster.expand_hostlist)

    def _with_accounting(self, record: JobRecord, info: JobInfo) -> JobInfo:
        """Add cpu_time and max rss from sacct, once they are there."""
        usage = self._cluster.usage(slurm_task_id(record.job_id))
        if usage is None:
            return info
        self._accounted.add(record.job_id)
        add_usage(info, usage)
        self._store.update(
            self._name, [(record.job_id, record.state, record.sub_state, info.to_json())]
        )
        return info

    def job_template(self, job_id: str) -> JobTemplate:
        """The template the job (or its array) was submitted with."""
        return self._template_of(self._known(job_id))

    def _template_of(self, record: JobRecord) -> JobTemplate:
        if record.array_id is not None:
            return self.array_template(record.array_id)
        assert record.template is not None
        return JobTemplate.from_json(record.template)
