"""The user-facing DRMAA2 classes and session-manager functions.

These classes do what every backend needs once: argument checks, mapping → dataclass
conversion, the closed-session guard and error wrapping. The backend behind them implements
:mod:`drmaa2.backend`.
"""

from __future__ import annotations

import datetime
import logging
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from drmaa2.backend import (
    Action,
    ArrayControlBackend,
    ArrayOperation,
    ArrayOutcome,
    Backend,
    JobSessionBackend,
    MonitoringSessionBackend,
    NotificationCallback,
    WaitFor,
)
from drmaa2.enums import INFINITE_TIME, Capability, JobState, Time
from drmaa2.errors import (
    Drmaa2Exception,
    InternalException,
    InvalidArgumentException,
    InvalidSessionException,
    InvalidStateException,
    UnsupportedOperationException,
)
from drmaa2.plugins import registry
from drmaa2.types import INT_MAX, JobInfo, JobTemplate, MachineInfo, QueueInfo, Version

__all__ = [
    "Job",
    "JobArray",
    "JobSession",
    "MonitoringSession",
    "create_job_session",
    "create_reservation_session",
    "destroy_job_session",
    "destroy_reservation_session",
    "drmaa_supports",
    "get_drmaa_name",
    "get_drmaa_version",
    "get_drms_name",
    "get_drms_version",
    "get_job_session_names",
    "get_reservation_session_names",
    "open_job_session",
    "open_monitoring_session",
    "open_reservation_session",
    "register_event_notification",
    "supports",
]


R = TypeVar("R")

#: Seconds (int, float or timedelta); -1 or Time.INFINITE_TIME waits forever, 0 or
#: Time.ZERO_TIME checks once.
Timeout = float | int | datetime.timedelta | Time

_log = logging.getLogger("drmaa2")


def _backend_call(backend: str, operation: str, call: Callable[[], R]) -> R:
    """Run a backend call, turning anything that is not a DRMAA2 error into InternalException."""
    try:
        return call()
    except Drmaa2Exception:
        raise
    except Exception as error:
        raise InternalException(
            f"backend {backend!r} failed in {operation}: {type(error).__name__}: {error}"
        ) from error


def _timeout_seconds(timeout: Timeout) -> float:
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentException(
            f"timeout: expected seconds (int or float, -1 for forever), got {timeout!r}"
        )
    if isinstance(timeout, Time) and timeout not in (Time.INFINITE_TIME, Time.ZERO_TIME):
        raise InvalidArgumentException(
            f"timeout: Time.{timeout.name} is not a timeout; use Time.INFINITE_TIME (forever), "
            "Time.ZERO_TIME (check once) or a number of seconds"
        )
    if timeout == INFINITE_TIME or timeout == math.inf:
        return -1.0
    if not timeout >= 0:  # also rejects NaN
        raise InvalidArgumentException(
            f"timeout: expected -1 (forever), 0 (check once) or a positive number of seconds, "
            f"got {timeout!r}"
        )
    return float(timeout)


def _name_arg(field: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise InvalidArgumentException(f"{field}: expected a non-empty str, got {value!r}")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise InvalidArgumentException(
            f"{field}: a name may not hold NUL or control characters, got {value!r}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentException(
            f"{field}: a name may not hold lone surrogates (bytes that are not UTF-8), "
            f"got {value!r}"
        ) from None


def _index_arg(field: str, value: object, minimum: int, least: str = "") -> int:
    """An array bound: an int from ``minimum`` (``least`` names it, if it is another
    argument's value) to INT_MAX, the largest a store holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentException(f"{field}: expected an int, got {value!r}")
    if value < minimum:
        least = f"{least} ({minimum})" if least else str(minimum)
        raise InvalidArgumentException(f"{field}: must be at least {least}, got {value!r}")
    if value > INT_MAX:
        raise InvalidArgumentException(f"{field}: must be at most 2**63 - 1, got {value!r}")
    return value


class _Session:
    """What the job and monitoring sessions share: the backend, the guard, error wrapping."""

    _backend_name: str
    _closed: bool
    _kind = "session"

    @property
    def name(self) -> str:
        """The session's name."""
        raise NotImplementedError

    @property
    def session_name(self) -> str:
        """Alias of :attr:`name`."""
        return self.name

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionException(f"{self._kind} {self.name!r} is closed")

    def _call(self, operation: str, call: Callable[[], R]) -> R:
        self._check_open()
        return _backend_call(self._backend_name, operation, call)

    def _job_state(self, job_id: str) -> tuple[JobState, str]:
        raise NotImplementedError

    def _job_info(self, job_id: str) -> JobInfo:
        raise NotImplementedError

    def _job_template(self, job_id: str) -> JobTemplate:
        raise NotImplementedError

    def _control(self, job_id: str, action: Action) -> None:
        raise NotImplementedError

    def _wait(
        self, jobs: Sequence[Job], condition: WaitFor, wait_all: bool, timeout: Timeout
    ) -> list[Job]:
        raise NotImplementedError

    def _reap(self, job_id: str) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.close()

    def close(self) -> None:
        """Close the session; every later call raises InvalidSessionException."""
        raise NotImplementedError


_S = TypeVar("_S", bound=_Session)


class Job:
    """A job (or one task of a job array) of a session."""

    __slots__ = ("_id", "_job_name", "_session")

    def __init__(self, session: _Session, job_id: str, job_name: str | None = None) -> None:
        self._session = session
        self._id = job_id
        self._job_name = job_name

    @property
    def id(self) -> str:
        """The job's id (an array task's id is ``"<array id>.<index>"``)."""
        return self._id

    @property
    def job_id(self) -> str:
        """Alias of :attr:`id`."""
        return self._id

    def get_id(self) -> str:
        """The job's id."""
        return self._id

    @property
    def session_name(self) -> str:
        """The name of the session the job belongs to."""
        return self._session.name

    @property
    def job_name(self) -> str | None:
        """The job's name from its template (None if it has none)."""
        if self._job_name is None:
            self._job_name = self._session._job_info(self._id).job_name
        return self._job_name

    def get_state(self) -> tuple[JobState, str]:
        """The job's state and its sub-state text ("" if there is none)."""
        return self._session._job_state(self._id)

    def get_info(self) -> JobInfo:
        """Everything known about the job now."""
        return self._session._job_info(self._id)

    def get_template(self) -> JobTemplate:
        """The template the job was submitted with."""
        return self._session._job_template(self._id)

    def suspend(self) -> None:
        """Stop the running job; it keeps its resources until :meth:`resume`."""
        self._session._control(self._id, Action.SUSPEND)

    def resume(self) -> None:
        """Continue a suspended job."""
        self._session._control(self._id, Action.RESUME)

    def hold(self) -> None:
        """Keep a job that has not started from starting (QUEUED → QUEUED_HELD)."""
        self._session._control(self._id, Action.HOLD)

    def release(self) -> None:
        """Let a held job start (QUEUED_HELD → QUEUED)."""
        self._session._control(self._id, Action.RELEASE)

    def terminate(self) -> None:
        """End the job (a queued job ends without starting)."""
        self._session._control(self._id, Action.TERMINATE)

    def reap(self) -> None:
        """Forget a finished job; afterwards the job is unknown to the session."""
        self._session._reap(self._id)

    def wait_started(self, timeout: Timeout = INFINITE_TIME) -> None:
        """Wait until the job has started (or already finished); TimeoutException on timeout."""
        self._session._wait([self], WaitFor.STARTED, True, timeout)

    def wait_terminated(self, timeout: Timeout = INFINITE_TIME) -> None:
        """Wait until the job is DONE or FAILED; TimeoutException on timeout."""
        self._session._wait([self], WaitFor.TERMINATED, True, timeout)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return self._id == other._id and self._session is other._session

    def __hash__(self) -> int:
        return hash((self._id, id(self._session)))

    def __repr__(self) -> str:
        return f"Job(id={self._id!r}, session={self._session.name!r})"


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
        """The array's tasks, in index order."""
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
        running task for hold, a finished one for terminate …) is passed over; that raises
        only when the action applied to no task. Any other failure is raised after acting on
        the rest, naming every failed task."""
        ids = [job.id for job in jobs]
        outcome = self._session._control_array(self._id, ids, operation)
        if outcome.failed:
            first = type(outcome.failed[0][1])
            detail = "; ".join(f"task {job_id}: {error}" for job_id, error in outcome.failed)
            raise first(
                f"{operation} of array {self._id} failed for {len(outcome.failed)} of "
                f"{len(self._jobs)} tasks: {detail}"
            )
        if not outcome.applied and outcome.skipped:
            detail = "; ".join(f"task {job_id}: {why}" for job_id, why in outcome.skipped)
            raise InvalidStateException(
                f"{operation} of array {self._id} applies to none of its {len(self._jobs)} "
                f"tasks: {detail}"
            )

    def suspend(self) -> None:
        """Suspend every running task (see :meth:`_apply` for tasks it does not apply to)."""
        self._apply("suspend", self._jobs)

    def resume(self) -> None:
        """Resume every task."""
        self._apply("resume", self._jobs)

    def hold(self) -> None:
        """Hold every task that has not started (last index first, so none starts meanwhile)."""
        self._apply("hold", reversed(self._jobs))

    def release(self) -> None:
        """Release every held task."""
        self._apply("release", self._jobs)

    def terminate(self) -> None:
        """Terminate every task; queued tasks first so that none starts meanwhile."""
        self._apply("terminate", reversed(self._jobs))

    def reap(self) -> None:
        """Forget every finished task."""
        self._apply("reap", self._jobs)

    def __repr__(self) -> str:
        return f"JobArray(id={self._id!r}, tasks={len(self._jobs)}, session={self.session_name!r})"


class JobSession(_Session):
    """A persistent job session: run jobs and job arrays, list them, wait for them.

    ``JobSession(name)`` opens the session called ``name``, creating it if it does not exist;
    ``JobSession()`` creates one with a generated name. ``destroy_on_exit`` (default: True for
    a generated name, False for a given one) destroys the session when it is closed, explicitly,
    by leaving a ``with`` block, or when the object is garbage-collected (or the interpreter
    exits) without ``close()``: the session is then closed, and destroyed if
    ``destroy_on_exit`` holds, so unnamed sessions do not pile up.
    """

    _kind = "job session"

    def __init__(
        self,
        name: str | None = None,
        contact: str | None = None,
        destroy_on_exit: bool | None = None,
        *,
        backend: str | None = None,
    ) -> None:
        _name_arg("name", name, optional=True)
        backend_name, impl = registry.get(backend)

        def names() -> list[str]:
            return _backend_call(
                backend_name, "get_job_session_names", lambda: impl.job_session_names(contact)
            )

        def open_it(existing: str) -> JobSessionBackend:
            return _backend_call(
                backend_name, "open_job_session", lambda: impl.open_job_session(existing, contact)
            )

        if name is not None and name in names():
            session = open_it(name)
        else:
            try:
                session = _backend_call(
                    backend_name,
                    "create_job_session",
                    lambda: impl.create_job_session(name, contact),
                )
            except InvalidArgumentException:
                # Another process created it meanwhile: open it, as if it had been there.
                if name is None or name not in names():
                    raise
                session = open_it(name)
        if destroy_on_exit is None:
            destroy_on_exit = name is None
        self._setup(backend_name, impl, session, destroy_on_exit)

    def _setup(
        self, backend_name: str, impl: Backend, session: JobSessionBackend, destroy_on_exit: bool
    ) -> None:
        self._backend_name = backend_name
        self._impl = impl
        self._backend = session
        self._name = session.name
        self._contact: str | None = session.contact
        self._destroy_on_exit = destroy_on_exit
        self._closed = False
        # Runs if the object is collected (or the interpreter exits) before close(); it must
        # not hold self.
        self._finalizer = weakref.finalize(
            self,
            _close_forgotten,
            backend_name,
            impl,
            session,
            self._name,
            self._contact,
            destroy_on_exit,
        )

    @classmethod
    def _wrap(cls, backend_name: str, impl: Backend, session: JobSessionBackend) -> JobSession:
        self = cls.__new__(cls)
        self._setup(backend_name, impl, session, False)
        return self

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str | None:
        """Where the session lives (for the ``os`` backend: its state directory)."""
        return self._contact

    @property
    def backend(self) -> str:
        """The name of the backend running this session's jobs."""
        return self._backend_name

    @classmethod
    def list_session_names(
        cls, contact: str | None = None, backend: str | None = None
    ) -> list[str]:
        """Names of the existing job sessions (``drmaa2.get_job_session_names``)."""
        return get_job_session_names(contact, backend=backend)

    @classmethod
    def destroy_by_name(
        cls, name: str, contact: str | None = None, backend: str | None = None
    ) -> None:
        """Forget the job session called ``name`` and its jobs' records; running jobs are not
        killed (``drmaa2.destroy_job_session``)."""
        destroy_job_session(name, contact, backend=backend)

    def get_job_categories(self) -> list[str]:
        """The job categories the backend knows."""
        return self._call("get_job_categories", self._backend.job_categories)

    def run_job(self, template: JobTemplate | Mapping[str, Any]) -> Job:
        """Submit a job; the job is recorded in the session before this returns."""
        self._check_open()
        jt = JobTemplate.coerce(template)
        job_id = _backend_call(self._backend_name, "run_job", lambda: self._backend.run_job(jt))
        return Job(self, job_id, jt.job_name)

    def run_bulk_jobs(
        self,
        template: JobTemplate | Mapping[str, Any],
        begin_index: int,
        end_index: int,
        step: int = 1,
        max_parallel: int | None = None,
    ) -> JobArray:
        """Submit a job array with one task per index in ``range(begin, end + 1, step)``.

        At most ``max_parallel`` tasks run at once (None: no limit). Each task's environment
        has ``TASK_ID`` set to its index, and ``$DRMAA2_INDEX$`` in its paths is replaced by it.
        """
        self._check_open()
        jt = JobTemplate.coerce(template)
        begin = _index_arg("begin_index", begin_index, 1)
        end = _index_arg("end_index", end_index, begin, "begin_index")
        stride = _index_arg("step", step, 1)
        limit = None if max_parallel is None else _index_arg("max_parallel", max_parallel, 1)
        array_id, task_ids = _backend_call(
            self._backend_name,
            "run_bulk_jobs",
            lambda: self._backend.run_bulk_jobs(jt, begin, end, stride, limit),
        )
        return JobArray(self, array_id, [Job(self, task, jt.job_name) for task in task_ids])

    def get_jobs(self, filter: JobInfo | Mapping[str, Any] | None = None) -> list[Job]:  # noqa: A002
        """The session's jobs and array tasks that pass ``filter`` (None: all), oldest first."""
        self._check_open()
        job_filter = None if filter is None else JobInfo.coerce(filter)
        ids = _backend_call(
            self._backend_name, "get_jobs", lambda: self._backend.job_ids(job_filter)
        )
        return [Job(self, job_id) for job_id in ids]

    def get_job_array(self, job_array_id: str) -> JobArray:
        """The array with this id; InvalidArgumentException if the session has none."""
        self._check_open()
        _name_arg("job_array_id", job_array_id, optional=False)
        tasks = _backend_call(
            self._backend_name,
            "get_job_array",
            lambda: self._backend.array_task_ids(job_array_id),
        )
        return JobArray(self, job_array_id, [Job(self, task) for task in tasks])

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
            if job._session is not self:
                raise InvalidArgumentException(
                    f"jobs: job {job.id} belongs to session {job.session_name!r}, "
                    f"not to {self._name!r}"
                )
            ids.append(job.id)
        if not ids:
            raise InvalidArgumentException("jobs: the list of jobs to wait for is empty")
        return ids

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
        by_id = {job.id: job for job in jobs}
        return [by_id[job_id] for job_id in done]

    def wait_any_started(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> Job:
        """Wait until one of ``jobs`` has started and return it."""
        return self._wait(jobs, WaitFor.STARTED, False, timeout)[0]

    def wait_any_terminated(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> Job:
        """Wait until one of ``jobs`` is DONE or FAILED and return it."""
        return self._wait(jobs, WaitFor.TERMINATED, False, timeout)[0]

    def wait_all_started(self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME) -> list[Job]:
        """Wait until every one of ``jobs`` has started; return them."""
        return self._wait(jobs, WaitFor.STARTED, True, timeout)

    def wait_all_terminated(
        self, jobs: Sequence[Job], timeout: Timeout = INFINITE_TIME
    ) -> list[Job]:
        """Wait until every one of ``jobs`` is DONE or FAILED; return them."""
        return self._wait(jobs, WaitFor.TERMINATED, True, timeout)

    def _job_state(self, job_id: str) -> tuple[JobState, str]:
        return self._call("get_state", lambda: self._backend.job_state(job_id))

    def _job_info(self, job_id: str) -> JobInfo:
        return self._call("get_info", lambda: self._backend.job_info(job_id))

    def _job_template(self, job_id: str) -> JobTemplate:
        return self._call("get_template", lambda: self._backend.job_template(job_id))

    def _control(self, job_id: str, action: Action) -> None:
        self._call(action.value, lambda: self._backend.control(job_id, action))

    def _reap(self, job_id: str) -> None:
        self._call("reap", lambda: self._backend.reap(job_id))

    def _control_array(
        self, array_id: str, job_ids: list[str], operation: ArrayOperation
    ) -> ArrayOutcome:
        """Apply an operation to tasks of an array: in one call if the backend offers it
        (:class:`~drmaa2.backend.ArrayControlBackend`), else task by task."""
        backend = self._backend
        if not self._closed and isinstance(backend, ArrayControlBackend):
            return self._call(
                operation, lambda: backend.control_array(array_id, job_ids, operation)
            )
        applied = 0
        skipped: list[tuple[str, str]] = []
        failed: list[tuple[str, Drmaa2Exception]] = []
        for job_id in job_ids:
            try:
                if operation == "reap":
                    self._reap(job_id)
                else:
                    self._control(job_id, Action(operation))
            except InvalidStateException as error:
                skipped.append((job_id, str(error)))
            except Drmaa2Exception as error:
                failed.append((job_id, error))
            else:
                applied += 1
        return ArrayOutcome(applied, skipped, failed)

    def close(self) -> None:
        """Close the session (jobs keep running); destroys it if ``destroy_on_exit`` was set.

        Every later call, a second ``close()`` included, raises InvalidSessionException.
        """
        self._check_open()
        self._closed = True
        self._finalizer.detach()
        _backend_call(self._backend_name, "close", self._backend.close)
        if self._destroy_on_exit:
            _backend_call(
                self._backend_name,
                "destroy_job_session",
                lambda: self._impl.destroy_job_session(self._name, self._contact),
            )

    def destroy(self) -> None:
        """Close the session and forget it and its jobs' records (running jobs keep running)."""
        self._check_open()
        self._closed = True
        self._finalizer.detach()
        _backend_call(self._backend_name, "close", self._backend.close)
        _backend_call(
            self._backend_name,
            "destroy_job_session",
            lambda: self._impl.destroy_job_session(self._name, self._contact),
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"JobSession(name={self._name!r}, backend={self._backend_name!r}, {state})"


def _close_forgotten(
    backend_name: str,
    impl: Backend,
    session: JobSessionBackend,
    name: str,
    contact: str | None,
    destroy: bool,
) -> None:
    """Close (and if asked destroy) a job session whose object was collected unclosed.

    Runs in the garbage collector or at interpreter exit, where an exception has nowhere to go:
    a failure is logged instead.
    """
    try:
        session.close()
        if destroy:
            impl.destroy_job_session(name, contact)
    except Exception as error:
        _log.warning(
            "could not %s job session %r of backend %r left unclosed: %s: %s",
            "close and destroy" if destroy else "close",
            name,
            backend_name,
            type(error).__name__,
            error,
        )


class MonitoringSession(_Session):
    """A read-only view of the backend's machines, queues and jobs (for ``os``: every process)."""

    _kind = "monitoring session"

    def __init__(
        self, name: str | None = None, contact: str | None = None, *, backend: str | None = None
    ) -> None:
        _name_arg("name", name, optional=True)
        backend_name, impl = registry.get(backend)
        session = _backend_call(
            backend_name,
            "open_monitoring_session",
            lambda: impl.open_monitoring_session(name, contact),
        )
        self._setup(backend_name, session)

    def _setup(self, backend_name: str, session: MonitoringSessionBackend) -> None:
        self._backend_name = backend_name
        self._backend = session
        self._name = session.name
        self._closed = False

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    def get_all_jobs(self, filter: JobInfo | Mapping[str, Any] | None = None) -> list[Job]:  # noqa: A002
        """Every job the backend sees that passes ``filter`` (read-only jobs)."""
        self._check_open()
        job_filter = None if filter is None else JobInfo.coerce(filter)
        infos = _backend_call(
            self._backend_name, "get_all_jobs", lambda: self._backend.all_jobs(job_filter)
        )
        return [Job(self, info.job_id or "", info.job_name) for info in infos]

    def get_all_machines(self, names: Sequence[str] | None = None) -> list[MachineInfo]:
        """The machines (all, or only those named)."""
        checked = self._names(names)
        return self._call("get_all_machines", lambda: self._backend.all_machines(checked))

    def get_all_queues(self, names: Sequence[str] | None = None) -> list[QueueInfo]:
        """The queues (all, or only those named)."""
        checked = self._names(names)
        return self._call("get_all_queues", lambda: self._backend.all_queues(checked))

    def get_all_reservations(self) -> list[Any]:
        """Advance reservations are not part of this API version: always unsupported."""
        self._check_open()
        raise UnsupportedOperationException(
            f"backend {self._backend_name!r} does not support advance reservations"
        )

    @staticmethod
    def _names(names: Sequence[str] | None) -> list[str] | None:
        if names is None:
            return None
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise InvalidArgumentException(f"names: expected a list of str, got {names!r}")
        return list(names)

    def _job_state(self, job_id: str) -> tuple[JobState, str]:
        info = self._job_info(job_id)
        return info.job_state or JobState.UNDETERMINED, info.job_sub_state or ""

    def _job_info(self, job_id: str) -> JobInfo:
        return self._call("get_info", lambda: self._backend.job_info(job_id))

    def _read_only(self, operation: str) -> UnsupportedOperationException:
        self._check_open()
        return UnsupportedOperationException(
            f"{operation}: jobs of a monitoring session are read-only"
        )

    def _job_template(self, job_id: str) -> JobTemplate:
        raise self._read_only(f"get_template of job {job_id}")

    def _control(self, job_id: str, action: Action) -> None:
        raise self._read_only(f"{action.value} of job {job_id}")

    def _reap(self, job_id: str) -> None:
        raise self._read_only(f"reap of job {job_id}")

    def _wait(
        self, jobs: Sequence[Job], condition: WaitFor, wait_all: bool, timeout: Timeout
    ) -> list[Job]:
        raise self._read_only(f"wait_{condition.value}")

    def close(self) -> None:
        """Close the session; every later call raises InvalidSessionException."""
        self._check_open()
        self._closed = True
        _backend_call(self._backend_name, "close", self._backend.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"MonitoringSession(name={self._name!r}, backend={self._backend_name!r}, {state})"


# -- session manager -------------------------------------------------------------------------


def _with_backend(backend: str | None, operation: str, call: Callable[[Backend], R]) -> R:
    backend_name, impl = registry.get(backend)
    return _backend_call(backend_name, operation, lambda: call(impl))


def create_job_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> JobSession:
    """Create a persistent job session (a generated name if ``name`` is None).

    InvalidArgumentException if a session of that name exists.
    """
    _name_arg("name", name, optional=True)
    backend_name, impl = registry.get(backend)
    session = _backend_call(
        backend_name, "create_job_session", lambda: impl.create_job_session(name, contact)
    )
    return JobSession._wrap(backend_name, impl, session)


def open_job_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> JobSession:
    """Open an existing job session; InvalidArgumentException if there is none by that name."""
    _name_arg("name", name, optional=False)
    backend_name, impl = registry.get(backend)
    session = _backend_call(
        backend_name, "open_job_session", lambda: impl.open_job_session(name, contact)
    )
    return JobSession._wrap(backend_name, impl, session)


def destroy_job_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> None:
    """Forget a job session and its jobs' records; running jobs are not killed."""
    _name_arg("name", name, optional=False)
    _with_backend(backend, "destroy_job_session", lambda b: b.destroy_job_session(name, contact))


def get_job_session_names(contact: str | None = None, *, backend: str | None = None) -> list[str]:
    """Names of the existing job sessions."""
    return _with_backend(backend, "get_job_session_names", lambda b: b.job_session_names(contact))


def open_monitoring_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> MonitoringSession:
    """Open a monitoring session."""
    return MonitoringSession(name, contact, backend=backend)


def _no_reservations(backend: str | None) -> UnsupportedOperationException:
    backend_name, _ = registry.get(backend)
    return UnsupportedOperationException(
        f"backend {backend_name!r} does not support advance reservations"
    )


def create_reservation_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> Any:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def open_reservation_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> Any:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def destroy_reservation_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> None:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def get_reservation_session_names(
    contact: str | None = None, *, backend: str | None = None
) -> list[str]:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def get_drms_name(*, backend: str | None = None) -> str:
    """The name of the resource manager behind the backend."""
    return _with_backend(backend, "get_drms_name", lambda b: b.drms_name())


def get_drms_version(*, backend: str | None = None) -> Version:
    """The version of the resource manager behind the backend."""
    return _with_backend(backend, "get_drms_version", lambda b: b.drms_version())


def get_drmaa_name() -> str:
    """The name of this DRMAA implementation."""
    return "drmaa2-ostracker"


def get_drmaa_version() -> Version:
    """The DRMAA version implemented: 2.0."""
    return Version(major="2", minor="0")


def supports(capability: Capability, *, backend: str | None = None) -> bool:
    """Whether the backend offers an optional DRMAA2 capability."""
    if not isinstance(capability, Capability):
        try:
            capability = Capability(capability)
        except ValueError:
            raise InvalidArgumentException(
                f"capability: expected a drmaa2.Capability, got {capability!r}"
            ) from None
    checked = capability
    return _with_backend(backend, "supports", lambda b: b.supports(checked))


drmaa_supports = supports


def register_event_notification(
    callback: NotificationCallback | None, *, backend: str | None = None
) -> None:
    """Call ``callback(notification)`` on every job state change of the backend.

    The callback runs in a thread of the backend; it should return quickly and must not
    raise (an exception is logged and ignored). ``None`` stops the notifications.
    UnsupportedOperationException if the backend lacks Capability.CALLBACK.
    """
    if callback is not None and not callable(callback):
        raise InvalidArgumentException(f"callback: expected a callable, got {callback!r}")
    backend_name, impl = registry.get(backend)
    if not _backend_call(backend_name, "supports", lambda: impl.supports(Capability.CALLBACK)):
        raise UnsupportedOperationException(
            f"backend {backend_name!r} does not support event notification"
        )
    _backend_call(
        backend_name,
        "register_event_notification",
        lambda: impl.register_event_notification(callback),
    )
