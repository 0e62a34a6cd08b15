"""The session a command works in, the jobs its ``JOB`` arguments name, and acting on them."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

import drmaa2
from drmaa2.cli.errors import one_line


def open_session(args: argparse.Namespace) -> drmaa2.JobSession:
    """The ``--session`` job session, which must exist."""
    return drmaa2.open_job_session(args.session, args.contact, backend=args.backend)


def find(session: drmaa2.JobSession, job_id: str) -> drmaa2.Job | drmaa2.JobArray:
    """The job, array task or job array with this id."""
    found = session.get_jobs({"job_id": job_id})
    if found:
        return found[0]
    with contextlib.suppress(drmaa2.InvalidArgumentException):
        return session.get_job_array(job_id)
    raise drmaa2.InvalidArgumentException(
        f"no job or job array {job_id!r} in session {session.name!r}"
    )


def infos_of(session: drmaa2.JobSession, jobs: Sequence[drmaa2.Job]) -> list[drmaa2.JobInfo]:
    """The JobInfos of jobs of ``session``, those reaped meanwhile left out: in a few round
    trips where the backend can give many at once (the os backend), else one per job."""
    many = getattr(session._backend, "job_infos", None)
    if many is not None:
        return [info for info in many([job.id for job in jobs]) if info is not None]
    infos = []
    for job in jobs:
        with contextlib.suppress(drmaa2.InvalidArgumentException):  # reaped meanwhile
            infos.append(job.get_info())
    return infos


def jobs_of(target: drmaa2.Job | drmaa2.JobArray) -> list[drmaa2.Job]:
    """A job itself, or the tasks left of a job array."""
    if isinstance(target, drmaa2.JobArray):
        tasks = target.job_list
        if not tasks:
            raise drmaa2.InvalidArgumentException(f"job array {target.id} has no tasks left")
        return tasks
    return [target]


def act_on(session: drmaa2.JobSession, action: str, job_ids: Sequence[str]) -> list[str | None]:
    """Apply the control ``action`` (``"suspend"`` …) to each id; per id, None or the
    one-line error."""
    results: list[str | None] = []
    for job_id in job_ids:
        try:
            getattr(find(session, job_id), action)()
        except drmaa2.Drmaa2Exception as error:
            results.append(one_line(error))
        else:
            results.append(None)
    return results
