"""The jobs of a session: :class:`Job` (one job, or one task of an array) and
:class:`JobArray`. Each forwards its calls to the session it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from drmaa2.backend import Action, ArrayOperation, ArrayOutcome, SubmittedId, WaitFor
from drmaa2.enums import INFINITE_TIME, JobState
from drmaa2.errors import Drmaa2Exception, InvalidArgumentException, InvalidStateException
from drmaa2.front import Timeout, _backend_call, _no_auth, _Session
from drmaa2.types import JobInfo, JobTemplate

if TYPE_CHECKING:
    from drmaa2.session import JobSession

__all__ = ["Job", "JobArray"]


class Job:
    """A job (or one task of a job array) of a session."""

    __slots__ = ("_id", "_job_name", "_session")

    def __init__(
        self, session: _Session, job_id: str | SubmittedId, job_name: str | None = None
    ) -> None:
        self._session = session
        self._id = job_id
        self._job_name = job_name

    @property
    def id(self) -> str:
        """The job's id (an array task's id is ``"<array id>.<index>"``).

        A job submitted ahead (see :meth:`JobSession.run_job <drmaa2.JobSession.run_job>`)
        learns its id here, on first use: this raises the error of its submission if that
        failed."""
        job_id = self._id
        if isinstance(job_id, str):
            return job_id
        known = _backend_call(self._session._backend_name, "run_job", job_id.result)
        self._id = known
        return known

    @property
    def job_id(self) -> str:
        """Alias of :attr:`id`."""
        return self.id

    def get_id(self) -> str:
        """The job's id."""
        return self.id

    @property
    def session_name(self) -> str:
        """The name of the session the job belongs to."""
        return self._session.name

    @property
    def job_name(self) -> str | None:
        """The job's name from its template (None if it has none)."""
        if self._job_name is None:
            self._job_name = self._session._job_info(self.id).job_name
        return self._job_name

    def get_state(self) -> tuple[JobState, str]:
        """The job's state and its sub-state text ("" if there is none)."""
        return self._session._job_state(self.id)

    def get_info(self) -> JobInfo:
        """Everything known about the job now."""
        return self._session._job_info(self.id)

    def get_template(self) -> JobTemplate:
        """The template the job was submitted with."""
        return self._session._job_template(self.id)

    def suspend(self, auth: object = None) -> None:
        """Stop the running job; it keeps its resources until :meth:`resume`."""
        _no_auth(auth)
        self._session._control(self.id, Action.SUSPEND)

    def resume(self, auth: object = None) -> None:
        """Continue a suspended job."""
        _no_auth(auth)
        self._session._control(self.id, Action.RESUME)

    def hold(self, auth: object = None) -> None:
        """Keep a job that has not started from starting (QUEUED → QUEUED_HELD)."""
        _no_auth(auth)
        self._session._control(self.id, Action.HOLD)

    def release(self, auth: object = None) -> None:
        """Let a held job start (QUEUED_HELD → QUEUED)."""
        _no_auth(auth)
        self._session._control(self.id, Action.RELEASE)

    def terminate(self, auth: object = None) -> None:
        """End the job (a queued job ends without starting)."""
        _no_auth(auth)
        self._session._control(self.id, Action.TERMINATE)

    def terminate_forced(self, auth: object = None) -> None:
        """Grid Engine's forced termination, which ends the job without the grace its
        :meth:`terminate` may give. Here it is :meth:`terminate`: the ``os`` backend gives no
        grace (it sends SIGKILL at once); the ``slurm`` backend cancels the job as
        :meth:`terminate` does (Slurm's SIGTERM, then SIGKILL after its ``KillWait``)."""
        _no_auth(auth)
        self._session._control(self.id, Action.TERMINATE)

    def terminate_all(self, auth: object = None) -> None:
        """End the job; for a task of an array, end every task of its array, as
        :meth:`JobArray.terminate` does (Grid Engine's ``terminate_all``)."""
        _no_auth(auth)
        self._session._terminate_all(self.id)

    def terminate_forced_all(self, auth: object = None) -> None:
        """:meth:`terminate_all` without a grace period (see :meth:`terminate_forced`)."""
        _no_auth(auth)
        self._session._terminate_all(self.id)

    def reap(self) -> None:
        """Forget a finished job; afterwards the job is unknown to the session."""
        self._session._reap(self.id)

    def wait_started(self, timeout: Timeout = INFINITE_TIME) -> None:
        """Wait until the job has started (or already finished); TimeoutException on timeout."""
        self._session._wait([self], WaitFor.STARTED, True, timeout)

    def wait_terminated(self, timeout: Timeout = INFINITE_TIME) -> None:
        """Wait until the job is DONE or FAILED; TimeoutException on timeout."""
        self._session._wait([self], WaitFor.TERMINATED, True, timeout)

    def __eq__(self, other: object) -> bool:
        """Jobs are equal when they are the same job: the same id in the same session (the
        same backend, contact and session name), through whichever session object."""
        if not isinstance(other, Job):
            return NotImplemented
        return self.id == other.id and (
            self._session is other._session or self._session._place() == other._session._place()
        )

    def __hash__(self) -> int:
        return hash((self.id, self._session._place()))

    def to_dict(self) -> dict[str, str]:
        """``{"id": ..., "session_name": ...}``, as Grid Engine's binding gives a job."""
        return {"id": self.id, "session_name": self.session_name}

    def __repr__(self) -> str:
        # A job submitted ahead learns its id here too, as from any use (scripts print the
        # jobs they submitted); a submission that failed is shown, not raised.
        try:
            job_id = self.id
        except Drmaa2Exception as error:
            job_id = f"(not submitted: {error})"
        return f"Job(id={job_id!r}, session={self._session.name!r})"


class JobArray:
    """A job array: one id, one template, and a task (a :class:`Job`) per index."""

    def __init__(self, session: JobSession, array_id: str, jobs: list[Job]) -> None:
        self._session = session
        self._id = array_id
        self._jobs = jobs

    @property
    def id(self) -> str:
        """The array's id."""
        return self._id

    @property
    def job_array_id(self) -> str:
        """Alias of :attr:`id`."""
        return self._id

    @property
    def session_name(self) -> str:
        """The name of the session the array belongs to."""
        return self._session.name

    @property
    def job_list(self) -> list[Job]:
        """The array's tasks, in index order; a task reaped through this array (or found
        reaped by one of its operations) is no longer among them."""
        return list(self._jobs)

    @property
    def jobs(self) -> list[Job]:
        """Alias of :attr:`job_list`."""
        return list(self._jobs)

    def get_template(self) -> JobTemplate:
        """The template the array was submitted with."""
        session = self._session
        return session._call("array_template", lambda: session._backend.array_template(self._id))

    def _apply(self, operation: ArrayOperation, jobs: Iterable[Job]) -> None:
        """Act on every task the action applies to, in one backend call where the backend
        offers it. A task in a state the action does not apply to (InvalidStateException: a
        running task for hold, a finished one for terminate …), or no longer known because it
        was reaped, is passed over; that raises only when the action applied to no task. Any
        other failure is raised after acting on the rest, naming every failed task. The tasks
        reaped, by this call or before, leave :attr:`job_list`; once every task was reaped,
        the array is unknown (InvalidArgumentException, as for a reaped job)."""
        ids = [job.id for job in jobs]
        if not ids:
            raise self._unknown(operation)
        outcome = self._session._control_array(self._id, ids, operation)
        failed, skipped = self._forget_reaped(operation, ids, outcome)
        if not outcome.applied and not self._jobs:
            raise self._unknown(operation)
        if failed:
            first = type(failed[0][1])
            detail = "; ".join(f"task {job_id}: {error}" for job_id, error in failed)
            raise first(
                f"{operation} of array {self._id} failed for {len(failed)} of "
                f"{len(ids)} tasks: {detail}"
            )
        if not outcome.applied and skipped:
            detail = "; ".join(f"task {job_id}: {why}" for job_id, why in skipped)
            raise InvalidStateException(
                f"{operation} of array {self._id} applies to none of its {len(ids)} tasks: {detail}"
            )

    def _unknown(self, operation: ArrayOperation) -> InvalidArgumentException:
        """The error of an action on an array every task of which was reaped: it is no
        longer known, as a reaped job is not (``get_job_array`` raises the same)."""
        return InvalidArgumentException(
            f"{operation} of array {self._id}: no such array any more, every task of it was reaped"
        )

    def _forget_reaped(
        self, operation: ArrayOperation, ids: list[str], outcome: ArrayOutcome
    ) -> tuple[list[tuple[str, Drmaa2Exception]], list[tuple[str, str]]]:
        """Drop the reaped tasks from :attr:`job_list`; the outcome's failed and skipped
        tasks, those that failed because they were reaped (unknown now) among the skipped."""
        failed = list(outcome.failed)
        skipped = list(outcome.skipped)
        if operation == "reap" and outcome.applied == len(ids):
            self._jobs = []  # every task was reaped: no need to ask which
            return failed, skipped
        unknown = [job_id for job_id, e in failed if isinstance(e, InvalidArgumentException)]
        if not unknown and not (operation == "reap" and outcome.applied):
            return failed, skipped
        known = self._known_tasks()
        self._jobs = [job for job in self._jobs if job.id in known]
        gone = {job_id for job_id in unknown if job_id not in known}
        if gone:
            skipped.extend((job_id, str(e)) for job_id, e in failed if job_id in gone)
            failed = [entry for entry in failed if entry[0] not in gone]
            place = {job_id: number for number, job_id in enumerate(ids)}
            skipped.sort(key=lambda entry: place[entry[0]])
        return failed, skipped

    def _known_tasks(self) -> set[str]:
        """The ids of the array's tasks the session still knows (none if it forgot the
        array, its last task reaped)."""
        session = self._session
        try:
            ids = session._call("get_job_array", lambda: session._backend.array_task_ids(self._id))
        except InvalidArgumentException:
            return set()
        return set(ids)

    def suspend(self, auth: object = None) -> None:
        """Suspend every running task (see :meth:`_apply` for tasks it does not apply to)."""
        _no_auth(auth)
        self._apply("suspend", self._jobs)

    def resume(self, auth: object = None) -> None:
        """Resume every task."""
        _no_auth(auth)
        self._apply("resume", self._jobs)

    def hold(self, auth: object = None) -> None:
        """Hold every task that has not started (last index first, so none starts meanwhile)."""
        _no_auth(auth)
        self._apply("hold", reversed(self._jobs))

    def release(self, auth: object = None) -> None:
        """Release every held task."""
        _no_auth(auth)
        self._apply("release", self._jobs)

    def terminate(self, auth: object = None) -> None:
        """Terminate every task; queued tasks first so that none starts meanwhile."""
        _no_auth(auth)
        self._apply("terminate", reversed(self._jobs))

    def terminate_all(self, auth: object = None) -> None:
        """Terminate every task: Grid Engine's name for :meth:`terminate`, which already acts
        on every task of the array."""
        self.terminate(auth)

    def reap(self) -> None:
        """Forget every finished task; they leave :attr:`job_list`."""
        self._apply("reap", self._jobs)

    def __eq__(self, other: object) -> bool:
        """Arrays are equal when they are the same array: the same id in the same session
        (the same backend, contact and session name), through whichever session object."""
        if not isinstance(other, JobArray):
            return NotImplemented
        return self._id == other._id and (
            self._session is other._session or self._session._place() == other._session._place()
        )

    def __hash__(self) -> int:
        return hash((self._id, self._session._place()))

    def to_dict(self) -> dict[str, object]:
        """``{"id": ..., "job_list": [Job, ...], "session_name": ...}``, as Grid Engine's
        binding gives an array (its tasks as :class:`Job` objects)."""
        return {"id": self._id, "job_list": list(self._jobs), "session_name": self.session_name}

    def __repr__(self) -> str:
        return f"JobArray(id={self._id!r}, tasks={len(self._jobs)}, session={self.session_name!r})"
