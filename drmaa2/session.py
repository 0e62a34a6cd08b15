"""The job session, and the session API in one place.

:class:`JobSession` is defined here. The rest of the API is defined next to it and importable
from here as well: :class:`~drmaa2.jobs.Job` and :class:`~drmaa2.jobs.JobArray`
(:mod:`drmaa2.jobs`), :class:`~drmaa2.monitoring.MonitoringSession` (:mod:`drmaa2.monitoring`),
the session-manager functions (:mod:`drmaa2.manager`). What the front classes share (argument
checks, the closed-session guard, error wrapping) is in :mod:`drmaa2.front`. The backend behind
them implements :mod:`drmaa2.backend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drmaa2.backend import (
    Action,
    ArrayControlBackend,
    ArrayOperation,
    ArrayOutcome,
    Backend,
    JobSessionBackend,
)
from drmaa2.compat import binding_keywords
from drmaa2.enums import JobState
from drmaa2.errors import (
    Drmaa2Exception,
    InvalidArgumentException,
    InvalidSessionException,
    InvalidStateException,
)
from drmaa2.front import Timeout as Timeout
from drmaa2.front import (
    _backend_call,
    _binding_arguments,
    _consistent,
    _contact_or_auth,
    _flag_arg,
    _index_arg,
    _name_arg,
    _new_session_name,
    _no_auth,
    _where,
)
from drmaa2.jobs import Job, JobArray
from drmaa2.lifetime import SessionLifetime
from drmaa2.manager import (
    create_job_session,
    create_reservation_session,
    destroy_job_session,
    destroy_reservation_session,
    drmaa_supports,
    get_drmaa_name,
    get_drmaa_version,
    get_drms_name,
    get_drms_version,
    get_job_session_names,
    get_reservation_session_names,
    open_job_session,
    open_monitoring_session,
    open_reservation_session,
    register_event_notification,
    supports,
)
from drmaa2.monitoring import MonitoringSession
from drmaa2.plugins import registry
from drmaa2.types import JobInfo, JobTemplate
from drmaa2.waits import SessionWaits

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


class JobSession(SessionWaits):
    """A persistent job session: run jobs and job arrays, list them, wait for them.

    ``JobSession(name)`` opens the session called ``name``, creating it if it does not exist;
    ``JobSession()`` creates one with a generated name. ``destroy_on_exit`` (default: True for
    a generated name, False for a given one) destroys the session when it is closed, explicitly,
    by leaving a ``with`` block, or when the object is garbage-collected (or the interpreter
    exits) without ``close()``: the session is then closed, and destroyed if
    ``destroy_on_exit`` holds, so unnamed sessions do not pile up. Only the process that made
    the object destroys it that way (not a forked copy).

    As in Grid Engine's binding, ``session_dict`` may give ``name`` and ``contact``, an empty
    name or contact is none, and ``check_for_existing_session=False`` creates the session
    without listing the existing ones first (one that exists is opened all the same); a new
    session's name may not hold ``@``; ``auth`` is taken when false (None, ``{}``: the
    calling user) and raises UnsupportedOperationException otherwise.
    """

    _kind = "job session"

    def __init__(
        self,
        name: str | None = None,
        contact: str | None = None,
        destroy_on_exit: bool | None = None,
        check_for_existing_session: bool = True,
        session_dict: Mapping[str, Any] | None = None,
        auth: object = None,
        *,
        backend: str | None = None,
    ) -> None:
        name, contact = _binding_arguments(name, contact, session_dict, auth)
        _name_arg("name", name, optional=True)
        destroy_on_exit = _flag_arg("destroy_on_exit", destroy_on_exit)
        check_for_existing_session = bool(
            _flag_arg("check_for_existing_session", check_for_existing_session)
        )
        backend_name, impl = registry.get(backend)

        def names() -> list[str]:
            return _backend_call(
                backend_name, "get_job_session_names", lambda: impl.job_session_names(contact)
            )

        def open_it(existing: str) -> JobSessionBackend:
            return _backend_call(
                backend_name, "open_job_session", lambda: impl.open_job_session(existing, contact)
            )

        if name is not None and (check_for_existing_session or "@" in name) and name in names():
            session = open_it(name)
        else:
            _new_session_name("name", name)
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
        self._setup(backend_name, session)
        self._lifetime = SessionLifetime(self, backend_name, impl, session, destroy_on_exit)

    def _setup(self, backend_name: str, session: JobSessionBackend) -> None:
        self._backend_name = backend_name
        self._backend = session
        self._name = session.name
        self._contact: str | None = session.contact
        self._where = _where(session.contact)
        self._closed = False

    def open(self) -> None:
        """Open the session again after :meth:`close` (nothing if it is open), as Grid
        Engine's binding allows; InvalidArgumentException if it was destroyed meanwhile,
        InvalidSessionException if it was destroyed and made again under its name since
        (where the backend tells them apart)."""
        if not self._closed:
            return
        name, contact, impl = self._name, self._contact, self._lifetime.impl
        session = _backend_call(
            self._backend_name, "open_job_session", lambda: impl.open_job_session(name, contact)
        )
        was = getattr(self._backend, "incarnation", None)
        if was is not None and getattr(session, "incarnation", None) != was:
            _backend_call(self._backend_name, "close", session.close)
            raise InvalidSessionException(
                f"job session {name!r} was destroyed and made again under its name since this "
                f"object was closed: this object of the old one is no longer usable (open "
                f"the new one with JobSession({name!r}) or open_job_session)"
            )
        self._setup(self._backend_name, session)
        self._lifetime.reopened(self, session)

    @classmethod
    def _wrap(cls, backend_name: str, impl: Backend, session: JobSessionBackend) -> JobSession:
        self = cls.__new__(cls)
        self._setup(backend_name, session)
        self._lifetime = SessionLifetime(self, backend_name, impl, session, False)
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
        cls,
        name: str,
        contact: object = None,
        backend: str | None = None,
        *,
        auth: object = None,
    ) -> None:
        """Forget the job session called ``name`` and its jobs' records; running jobs are not
        killed (``drmaa2.destroy_job_session``). As in Grid Engine's binding,
        ``destroy_by_name(name, auth)`` takes a Sudo or a mapping in the second place as
        ``auth`` (see :class:`JobSession`)."""
        destroy_job_session(name, _contact_or_auth(contact, auth), backend=backend)

    def get_job_categories(self) -> list[str]:
        """The job categories the backend knows."""
        return self._call("get_job_categories", self._backend.job_categories)

    def run_job(self, template: JobTemplate | Mapping[str, Any], auth: object = None) -> Job:
        """Submit a job; the job is recorded in the session before this returns (``auth``:
        None only, see :class:`JobSession`)."""
        _no_auth(auth)
        self._check_open()
        jt = JobTemplate.coerce(template)
        _consistent(jt)
        job_id = _backend_call(self._backend_name, "run_job", lambda: self._backend.run_job(jt))
        return Job(self, job_id, jt.job_name)

    def run_bulk_jobs(
        self,
        template: JobTemplate | Mapping[str, Any],
        begin_index: int,
        end_index: int,
        step: int = 1,
        max_parallel: int | None = None,
        auth: object = None,
    ) -> JobArray:
        """Submit a job array with one task per index in ``range(begin, end + 1, step)``.

        At most ``max_parallel`` tasks run at once (None: no limit). Each task's environment
        has ``TASK_ID`` set to its index, and ``$DRMAA2_INDEX$`` in its paths is replaced by it.
        """
        _no_auth(auth)
        self._check_open()
        jt = JobTemplate.coerce(template)
        _consistent(jt)
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

    @binding_keywords(id="job_array_id")
    def get_job_array(self, job_array_id: str) -> JobArray:
        """The array with this id; InvalidArgumentException if the session has none, or
        every task of it was reaped (a reaped job is unknown)."""
        self._check_open()
        _name_arg("job_array_id", job_array_id, optional=False)
        tasks = _backend_call(
            self._backend_name,
            "get_job_array",
            lambda: self._backend.array_task_ids(job_array_id),
        )
        if not tasks:
            raise InvalidArgumentException(
                f"job array {job_array_id!r}: every task of it was reaped"
            )
        return JobArray(self, job_array_id, [Job(self, task) for task in tasks])

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

    def _terminate_all(self, job_id: str) -> None:
        """Terminate the job, or if it is an array task, every task of its array."""
        array_id, dot, index = job_id.rpartition(".")
        if dot and index.isdigit():
            self._check_open()
            try:
                tasks = self._backend.array_task_ids(array_id)
            except InvalidArgumentException:
                tasks = []  # no such array: a job of its own
            if job_id in tasks:
                JobArray(self, array_id, [Job(self, task) for task in tasks]).terminate()
                return
        self._control(job_id, Action.TERMINATE)

    def _place(self) -> tuple[str, ...]:
        # A session made again under its name after it was destroyed is another place,
        # where the backend tells them apart (drmaa2.backend.SessionIdentity).
        incarnation = getattr(self._backend, "incarnation", None)
        return (
            "job session",
            self._backend_name,
            self._where,
            self._name,
            "" if incarnation is None else str(incarnation),
        )

    def close(self) -> None:
        """Close the session (its jobs keep running); destroys it if ``destroy_on_exit``
        holds. Every later call but :meth:`open`, a second ``close()`` included, raises
        InvalidSessionException; :meth:`open` opens a kept session again.
        """
        if self._closed and self._lifetime.stale:
            self._lifetime.stale = False  # (a second close() raises, as always)
            return  # its destroy() found it destroyed already: its clean-up passes
        self._check_open()
        self._closed = True
        if self._lifetime.destroy_on_exit and self._lifetime.made_here:
            self._lifetime.destroy(gone_ok=True)
        else:  # (a copy in a forked process only closes it, as when it is dropped)
            self._lifetime.close()

    def destroy(self, auth: object = None) -> None:
        """Close the session and forget it and its jobs' records (running jobs keep running)."""
        _no_auth(auth)
        self._check_open()
        self._closed = True
        self._lifetime.destroy()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"JobSession(name={self._name!r}, backend={self._backend_name!r}, {state})"
