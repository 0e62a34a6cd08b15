"""A job's JobInfo from its stored record: the same in the keeper and in its clients."""

from __future__ import annotations

import datetime
import json
import os

from drmaa2.types import JobInfo
from drmaa2_ostracker import extension, host
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor import now_us

__all__ = ["record_to_info"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _time(us: int | None) -> datetime.datetime | None:
    return None if us is None else _EPOCH + datetime.timedelta(microseconds=us)


def record_to_info(record: JobRecord) -> JobInfo:
    """The JobInfo of a job record (a running job's wallclock counts up to now)."""
    started = record.dispatch_us is not None
    machine = host.hostname()
    ext: dict[str, str] = {}
    if record.pid is not None:
        ext[extension.JSESSION_PID] = str(record.pid)
    if record.rusage:
        ext.update(json.loads(record.rusage))
    wallclock = None
    if record.dispatch_us is not None:
        end = record.finish_us if record.finish_us is not None else now_us()
        wallclock = datetime.timedelta(microseconds=max(0, end - record.dispatch_us))
    return JobInfo(
        job_id=record.job_id,
        job_name=record.job_name,
        exit_status=record.exit_status,
        terminating_signal=record.terminating_signal,
        annotation=record.annotation,
        job_state=record.state,
        job_sub_state=record.sub_state,
        allocated_machines=[machine] if started else None,
        submission_machine=machine,
        job_owner=host.user_name(os.getuid()),
        slots=1,
        wallclock_time=wallclock,
        cpu_time=record.cpu_time,
        submission_time=_time(record.submission_us),
        dispatch_time=_time(record.dispatch_us),
        finish_time=_time(record.finish_us),
        implementation_specific=ext,
    )
