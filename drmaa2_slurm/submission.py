"""Submission: a job or an array goes to sbatch and, once Slurm took it, into the store.

The template becomes sbatch's options, script and environment in
:mod:`~drmaa2_slurm.template`; here they are submitted, and the jobs recorded: a submission
either fails and leaves nothing in Slurm, or succeeds and is recorded.
"""

from __future__ import annotations

import socket
import time

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import JobTemplate
from drmaa2_slurm.session_base import JobSessionBase
from drmaa2_slurm.store import ArrayRecord, JobRecord
from drmaa2_slurm.template import Submission, plan_submission

__all__ = ["JobSubmission"]

_REQUEST_FIELDS = (
    "min_slots",
    "min_phys_memory",
    "queue_name",
    "reservation_id",
    "accounting_id",
    "candidate_machines",
    "deadline_time",
    "implementation_specific",
)


def _requests(template: JobTemplate) -> str:
    """The template's resource requests, to name them when Slurm refuses the job."""
    shown = [
        f"{name}={value!r}"
        for name in _REQUEST_FIELDS
        if (value := getattr(template, name)) is not None
    ]
    return f" ({', '.join(shown)})" if shown else ""


class JobSubmission(JobSessionBase):
    """The job session's submission of jobs and arrays."""

    def _submit(self, template: JobTemplate, array: tuple[int, int, int, int | None] | None) -> str:
        self._alive()
        submission = plan_submission(
            template,
            session=self._name,
            conf=self._cluster.conf,
            array=array,
            nodes=self._cluster.node_names,
            architectures=self._cluster.architectures,
        )
        if submission.asks_resources:
            self._test_only(submission, template)
        done = self.slurm.sbatch(submission.options, submission.script, submission.environment)
        if done.returncode != 0:
            raise InvalidArgumentException(
                f"sbatch refused the job{_requests(template)}: {done.message}"
            )
        return done.stdout.strip().split(";")[0]

    def _test_only(self, submission: Submission, template: JobTemplate) -> None:
        # Slurm accepts a request no node can meet and keeps it pending forever; a test
        # submission finds it at once.
        done = self.slurm.sbatch(
            ["--test-only", *submission.options], submission.script, submission.environment
        )
        if done.returncode != 0:
            raise InvalidArgumentException(
                f"sbatch refused the job{_requests(template)}: {done.message}"
            )

    def _record(self, submitted: list[JobRecord], array: ArrayRecord | None, slurm_id: str) -> None:
        try:
            self._store.add(self._name, submitted, array)
        except BaseException:
            self.slurm.scancel(slurm_id)  # nothing runs that is not recorded
            self._alive()  # the session was destroyed meanwhile: say so
            raise
        with self._lock:
            for record in submitted:
                self._states[record.job_id] = (record.state, "")
                self._unfinished[record.job_id] = record.slurm_id
            callback = self._poller.publishing()
        self._poller.publish(self._name, [(r.job_id, r.state) for r in submitted], callback)

    def run_job(self, template: JobTemplate) -> str:
        """Submit one job with sbatch and record it."""
        slurm_id = self._submit(template, None)
        record = JobRecord(
            job_id=slurm_id,
            slurm_id=slurm_id,
            array_id=None,
            task_index=None,
            job_name=template.job_name,
            submitted=time.time(),
            submission_machine=socket.gethostname(),
            template=template.to_json(),
            state=JobState.QUEUED_HELD if template.submit_as_hold else JobState.QUEUED,
        )
        self._record([record], None, slurm_id)
        return slurm_id

    def run_bulk_jobs(
        self,
        template: JobTemplate,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
    ) -> tuple[str, list[str]]:
        """Submit an array with ``--array=b-e:s%p`` and record its tasks."""
        limit = self._cluster.max_array_size
        if limit is not None and end_index >= limit:
            raise InvalidArgumentException(
                f"end_index: {end_index} is not below the cluster's MaxArraySize ({limit}): "
                f"Slurm takes no array index from {limit} on"
            )
        array_id = self._submit(template, (begin_index, end_index, step, max_parallel))
        state = JobState.QUEUED_HELD if template.submit_as_hold else JobState.QUEUED
        now, host = time.time(), socket.gethostname()
        tasks = [
            JobRecord(
                job_id=f"{array_id}.{index}",
                slurm_id=array_id,
                array_id=array_id,
                task_index=index,
                job_name=template.job_name,
                submitted=now,
                submission_machine=host,
                template=None,
                state=state,
            )
            for index in range(begin_index, end_index + 1, step)
        ]
        array = ArrayRecord(
            array_id, template.to_json(), begin_index, end_index, step, max_parallel
        )
        self._record(tasks, array, array_id)
        return array_id, [task.job_id for task in tasks]
