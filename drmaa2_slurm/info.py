"""The JobInfo of a session's job, from its squeue row, its record in the store and sacct.

These functions only build JobInfo objects; which row and record they are given, and what is
written back to the store, is the job session's part (:mod:`~drmaa2_slurm.job_session`).
"""

from __future__ import annotations

import datetime
import os
import pwd
from collections.abc import Callable

from drmaa2.enums import JobState
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_slurm import extension
from drmaa2_slurm.failure import launch_failure
from drmaa2_slurm.states import SlurmJob, slurm_task_id
from drmaa2_slurm.store import JobRecord

__all__ = [
    "PURGED",
    "add_usage",
    "cancelled_info",
    "finished_info",
    "job_info_of",
    "purged_info",
    "record_info",
]

#: Sub-state of a job Slurm forgot before this backend saw it end.
PURGED = "purged by Slurm before the end was observed"


def job_info_of(job: SlurmJob, expand: Callable[[str], list[str]]) -> JobInfo:
    """The JobInfo of a squeue row (``expand`` turns a hostlist into names)."""
    status, sig = job.exit()
    if job.state.is_terminal and job.start is not None and job.end is not None:
        wallclock: datetime.timedelta | None = max(job.end - job.start, datetime.timedelta(0))
    else:
        wallclock = job.time_used if job.ran else None
    return JobInfo(
        job_id=job.job_id,
        job_name=job.name,
        exit_status=status,
        terminating_signal=sig,
        annotation=job.annotation() or None,
        job_state=job.state,
        job_sub_state=job.sub_state,
        allocated_machines=expand(job.nodes) if job.ran else None,
        job_owner=job.user or None,
        slots=job.cpus,
        queue_name=job.partition or None,
        wallclock_time=wallclock,
        submission_time=job.submit,
        dispatch_time=job.start,
        finish_time=job.end,
        implementation_specific={
            extension.JOB_SLURM_ID: slurm_task_id(job.job_id),
            extension.JOB_SLURM_STATE: job.slurm_state,
            extension.JOB_SLURM_REASON: job.reason,
        },
    )


def _add_record(info: JobInfo, record: JobRecord) -> None:
    """What the store knows better than squeue: the template's name, the submitting host and
    the submission time to the microsecond (Slurm's times are whole seconds, truncated: a
    dispatch or finish time before it is raised to it, and a finished job's wallclock time is
    its finish - dispatch time as shown, so that the three always agree; it can be up to a
    second shorter than the job ran)."""
    if record.job_name is not None:
        info.job_name = record.job_name
    info.submission_machine = record.submission_machine
    submitted = datetime.datetime.fromtimestamp(record.submitted, datetime.timezone.utc)
    info.submission_time = submitted
    if info.dispatch_time is not None and info.dispatch_time < submitted:
        info.dispatch_time = submitted
    if info.finish_time is not None and info.finish_time < submitted:
        info.finish_time = submitted
    finished = info.job_state is not None and info.job_state.is_terminal
    if finished and info.dispatch_time is not None and info.finish_time is not None:
        info.wallclock_time = max(info.finish_time - info.dispatch_time, datetime.timedelta(0))


def record_info(
    record: JobRecord, row: SlurmJob | None, expand: Callable[[str], list[str]]
) -> JobInfo:
    """The JobInfo of a recorded job from its last squeue row, or from its record alone when
    there is no row (``expand`` turns a hostlist into names)."""
    if row is None:
        info = JobInfo(job_id=record.job_id, job_state=record.state)
        info.job_sub_state = record.sub_state
    else:
        info = job_info_of(row, expand)
    _add_record(info, record)
    return info


def finished_info(
    row: SlurmJob,
    record: JobRecord | None,
    expand: Callable[[str], list[str]],
    template_of: Callable[[JobRecord], JobTemplate],
) -> JobInfo:
    """The JobInfo of a job squeue shows finished, with what its record knows; a launch
    failure's annotation says what the template (``template_of`` the record) asked for."""
    info = job_info_of(row, expand)
    if record is not None:
        _add_record(info, record)
        if row.reason == "JobLaunchFailure" and row.ran and info.exit_status is None:
            template = template_of(record)
            info.annotation = launch_failure(template, record.task_index, row.work_dir, row.nodes)
    return info


def purged_info(
    job_id: str,
    row: SlurmJob | None,
    record: JobRecord | None,
    expand: Callable[[str], list[str]],
) -> JobInfo:
    """The JobInfo of a job Slurm forgot before its end was seen: FAILED, sub-state
    :data:`PURGED`, from its last squeue row and its record where there are any."""
    info = job_info_of(row, expand) if row else JobInfo(job_id=job_id)
    info.job_state, info.job_sub_state = JobState.FAILED, PURGED
    info.exit_status = info.terminating_signal = None
    info.annotation = "Slurm no longer knows this job; its end was not seen"
    if record is not None:
        _add_record(info, record)
    return info


def cancelled_info(job_id: str, record: JobRecord, row: SlurmJob | None = None) -> JobInfo:
    """The JobInfo of a pending job or array task cancelled now, which Slurm removes without a
    trace: what its last squeue row (``row``, if there is one) and its record said while it
    waited (name, owner, slots, partition, submission), ended FAILED, never started."""
    if row is None:
        info = JobInfo(job_id=job_id, job_owner=_user())
    else:
        info = job_info_of(row, lambda nodes: [])
        info.job_id = job_id
        info.implementation_specific = {
            **(info.implementation_specific or {}),
            extension.JOB_SLURM_STATE: "CANCELLED",
        }
    info.job_state, info.job_sub_state = JobState.FAILED, "CANCELLED"
    info.annotation = "cancelled before it started"
    info.exit_status = info.terminating_signal = None
    info.dispatch_time = info.wallclock_time = info.allocated_machines = None
    info.finish_time = _utc_now()
    _add_record(info, record)
    return info


def _user() -> str | None:
    """The name of the user this process runs as (None if it has none)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def add_usage(info: JobInfo, usage: tuple[float, int | None]) -> None:
    """Add a finished job's cpu time and max rss (KiB, if known), as sacct gives them."""
    cpu, rss = usage
    if info.dispatch_time is None:
        return  # it never ran: no usage, as on os (None, not 0)
    info.cpu_time = cpu
    if rss is not None:
        info.implementation_specific = {
            **(info.implementation_specific or {}),
            extension.JOB_MAX_RSS: str(rss),
        }


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
