"""The waits of a job session: ``wait_any_*`` and ``wait_all_*`` over its jobs (a part of
:class:`~drmaa2.session.JobSession`, which is the only class built on it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drmaa2.backend import JobSessionBackend, WaitFor
from drmaa2.compat import binding_keywords
from drmaa2.enums import INFINITE_TIME
from drmaa2.errors import InvalidArgumentException, InvalidSessionException
from drmaa2.front import Timeout, _backend_call, _described, _Session, _timeout_seconds
from drmaa2.jobs import Job

__all__ = ["SessionWaits"]


class SessionWaits(_Session):
    """Waiting for some of a session's jobs to start or end. A job belongs to its session,
    not to one object of it: any object of the same session (name, contact and backend)
    waits for it."""

    _name: str
    _contact: str | None
    _backend: JobSessionBackend

    @staticmethod
    def _job_list(jobs: Iterable[Job] | Job) -> list[Job]:
        """The jobs as a list (a single Job, or any iterable, is taken too)."""
        if isinstance(jobs, Job):
            return [jobs]
        if type(jobs) is list:
            return jobs
        if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Iterable):
            raise InvalidArgumentException(f"jobs: expected a list of Job, got {jobs!r}")
        return list(jobs)

    def _own_ids(self, jobs: list[Job]) -> list[str]:
        ids: list[str] = []
        for job in jobs:
            if not isinstance(job, Job):
                raise InvalidArgumentException(f"jobs: expected a list of Job, got item {job!r}")
            if job._session is not self and not self._same_session(job._session):
                if isinstance(job._session, SessionWaits) and (
                    job._session._place()[:-1] == self._place()[:-1]
                ):
                    raise InvalidSessionException(
                        f"jobs: job {job.id} belongs to an earlier job session named "
                        f"{self._name!r}, destroyed since (a session made again under its "
                        f"name is another): its jobs are not this session's"
                    )
                raise InvalidArgumentException(
                    f"jobs: job {job.id} belongs to {_described(job._session)}, "
                    f"not to {_described(self)}"
                )
            ids.append(job.id)
        if not ids:
            raise InvalidArgumentException("jobs: the list of jobs to wait for is empty")
        return ids

    def _same_session(self, other: object) -> bool:
        """Whether ``other`` is another object of this session (the same name, in the same
        place, of the same backend): a job of one is a job of the other."""
        return isinstance(other, SessionWaits) and other._place() == self._place()

    def _wait(
        self, jobs: Iterable[Job] | Job, condition: WaitFor, wait_all: bool, timeout: Timeout
    ) -> list[Job]:
        self._check_open()
        jobs = self._job_list(jobs)
        ids = self._own_ids(jobs)
        seconds = _timeout_seconds(timeout)
        done = _backend_call(
            self._backend_name,
            f"wait_{'all' if wait_all else 'any'}_{condition.value}",
            lambda: self._backend.wait(ids, condition, wait_all, seconds),
        )
        if len(jobs) == 1:
            return [jobs[0]] if done else []
        by_id = {job.id: job for job in jobs}
        return [by_id[job_id] for job_id in done]

    @binding_keywords(job_list="jobs")
    def wait_any_started(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> Job:
        """Wait until one of ``jobs`` has started and return it."""
        return self._wait(jobs, WaitFor.STARTED, False, timeout)[0]

    @binding_keywords(job_list="jobs")
    def wait_any_terminated(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> Job:
        """Wait until one of ``jobs`` is DONE or FAILED and return it."""
        return self._wait(jobs, WaitFor.TERMINATED, False, timeout)[0]

    @binding_keywords(job_list="jobs")
    def wait_all_started(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> list[Job]:
        """Wait until every one of ``jobs`` has started; return them."""
        return self._wait(jobs, WaitFor.STARTED, True, timeout)

    @binding_keywords(job_list="jobs")
    def wait_all_terminated(
        self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME
    ) -> list[Job]:
        """Wait until every one of ``jobs`` is DONE or FAILED; return them."""
        return self._wait(jobs, WaitFor.TERMINATED, True, timeout)
