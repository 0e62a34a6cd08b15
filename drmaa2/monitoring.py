"""The monitoring session: a read-only view of the backend's machines, queues and jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drmaa2.backend import Action, WaitFor
from drmaa2.compat import binding_keywords
from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException, UnsupportedOperationException
from drmaa2.front import Timeout, _backend_call, _binding_arguments, _name_arg, _Session
from drmaa2.jobs import Job
from drmaa2.plugins import registry
from drmaa2.types import JobInfo, JobTemplate, MachineInfo, QueueInfo

__all__ = ["MonitoringSession"]


class MonitoringSession(_Session):
    """A read-only view of the backend's machines, queues and jobs (for ``os``: every process).

    As in Grid Engine's binding, ``session_dict`` may give ``name`` (and ``contact``), in the
    second place too (``MonitoringSession(name, {...})``); an empty name or contact is none;
    :meth:`open` opens the session again after :meth:`close`.
    """

    _kind = "monitoring session"

    def __init__(
        self,
        name: str | None = None,
        contact: str | Mapping[str, Any] | None = None,
        session_dict: Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
    ) -> None:
        if isinstance(contact, Mapping):  # the binding's MonitoringSession(name, session_dict)
            if session_dict is not None:
                raise InvalidArgumentException(
                    f"contact: expected a str, got {contact!r} (and a session_dict)"
                )
            session_dict, contact = contact, None
        name, contact = _binding_arguments(name, contact, session_dict, None)
        _name_arg("name", name, optional=True)
        backend_name, impl = registry.get(backend)
        self._impl = impl
        self._contact = contact
        self._open(backend_name, name)

    def _open(self, backend_name: str, name: str | None) -> None:
        impl, contact = self._impl, self._contact
        session = _backend_call(
            backend_name,
            "open_monitoring_session",
            lambda: impl.open_monitoring_session(name, contact),
        )
        self._backend_name = backend_name
        self._backend = session
        self._name = session.name
        self._closed = False

    def open(self) -> None:
        """Open the session again after :meth:`close`, under its name (nothing if it is
        open), as Grid Engine's binding allows."""
        if self._closed:
            self._open(self._backend_name, self._name)

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

    @binding_keywords(filter="names")
    def get_all_machines(self, names: Sequence[str] | None = None) -> list[MachineInfo]:
        """The machines (all, or only those named)."""
        checked = self._names(names)
        return self._call("get_all_machines", lambda: self._backend.all_machines(checked))

    @binding_keywords(filter="names")
    def get_all_queues(self, names: Sequence[str] | None = None) -> list[QueueInfo]:
        """The queues (all, or only those named)."""
        checked = self._names(names)
        return self._call("get_all_queues", lambda: self._backend.all_queues(checked))

    def get_all_reservations(self, filter: object = None) -> list[Any]:  # noqa: A002
        """Advance reservations are not part of this API version: always unsupported
        (``filter`` is taken, as Grid Engine's binding takes a ReservationInfo)."""
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

    def _place(self) -> tuple[str, ...]:
        return ("monitoring session", self._backend_name, str(self._contact), self._name)

    def close(self) -> None:
        """Close the session; every later call but :meth:`open` raises
        InvalidSessionException (a second ``close()`` too)."""
        self._check_open()
        self._closed = True
        _backend_call(self._backend_name, "close", self._backend.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"MonitoringSession(name={self._name!r}, backend={self._backend_name!r}, {state})"
