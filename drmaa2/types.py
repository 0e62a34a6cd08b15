"""DRMAA2 data types: job templates, job, machine and queue information, versions, events.

Every type is a dataclass that checks its values when it is built and whenever a field is
assigned, so a wrong value fails at once with an ``InvalidArgumentException`` naming the class,
the field and the value. Each is built from keywords, from a mapping given as first positional
argument (``JobTemplate({"remote_command": "/bin/true"})``, as Grid Engine's binding does) or
with ``from_dict`` (``create_from_dict``); ``x.from_dict(mapping)`` on an instance sets the
mapping's fields on it. ``to_dict()``/``from_dict()`` and ``to_json()``/``from_json()``
convert to and from JSON-compatible data: datetimes as ISO 8601 strings with offset,
timedeltas as float seconds, enums by name. ``implementation_specific`` is never None: unset,
it is an empty dict.

The record classes are defined here. What they share is in :mod:`drmaa2.record` (checked
assignment, conversion, copying) and :mod:`drmaa2.fields` (the check, encoder and description
of each kind of field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from drmaa2.compat import ImplementationSpecific
from drmaa2.enums import Cpu, Event, JobState, Os, ResourceLimit
from drmaa2.errors import InvalidArgumentException
from drmaa2.fields import (
    _AMOUNT,
    _BOOL,
    _COUNT,
    _CPU,
    _DATETIME,
    _DURATION,
    _EVENT,
    _INT,
    _JOB_STATE,
    _LIMITS_KIND,
    _LOAD,
    _OS,
    _STR,
    _STR_DICT,
    _STR_LIST,
    _kind,
    _Mismatch,
)
from drmaa2.fields import INT_MAX as INT_MAX
from drmaa2.record import _Record as _Record
from drmaa2.record import _validated

__all__ = ["JobInfo", "JobTemplate", "MachineInfo", "Notification", "QueueInfo", "Version"]


@_validated
@dataclass(slots=True)
class Version(_Record, ImplementationSpecific):
    """A version number in two parts: ``Version("2", "0")``, ``Version(major="2", minor="0")``
    or ``Version({"major": "2", "minor": "0"})``, with the backend's implementation-specific
    values (none for the backends of this distribution)."""

    major: str = field(metadata=_STR)
    minor: str = field(metadata=_STR)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)

    def __init__(
        self,
        major: str | Mapping[str, Any] | None = None,
        minor: str | None = None,
        implementation_specific: Mapping[str, str] | None = None,
        *,
        version: Mapping[str, Any] | None = None,
    ) -> None:
        if version is None and isinstance(major, Mapping):
            major, version = None, major
        given = {"major": major, "minor": minor, "implementation_specific": implementation_specific}
        self._fill(given, version)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def get_drms_version(cls, *, backend: str | None = None) -> Version:
        """The version of the resource manager behind the backend (``drmaa2.get_drms_version``)."""
        from drmaa2.manager import get_drms_version  # manager imports this module

        return get_drms_version(backend=backend)

    @classmethod
    def get_drmaa_version(cls) -> Version:
        """The DRMAA version implemented, 2.0 (``drmaa2.get_drmaa_version``)."""
        from drmaa2.manager import get_drmaa_version  # manager imports this module

        return get_drmaa_version()

    @classmethod
    def get_implementation_specific_attrs(cls, *, backend: str | None = None) -> dict[str, str]:
        """The implementation-specific values of the backend's resource manager version
        (Grid Engine's binding's name): ``get_drms_version().implementation_specific``."""
        return dict(cls.get_drms_version(backend=backend).implementation_specific)


# The kind of a Version field (MachineInfo.os_version). It is here, not in drmaa2.fields with
# the other kinds, because its check builds a Version.
_VERSION_EXPECTED = 'a Version, a {"major": str, "minor": str} mapping or a "major.minor" string'


def _check_version(value: Any) -> Version:
    if isinstance(value, Version):
        return value
    if isinstance(value, Mapping):
        try:
            return Version.from_dict(value)
        except InvalidArgumentException:
            pass
    elif isinstance(value, str):
        # "6.18.44" is major "6", minor "18.44"; a bare "10" is read as "10.0".
        major, dot, minor = value.partition(".")
        if major:
            return Version(major=major, minor=minor if dot else "0")
    raise _Mismatch(_VERSION_EXPECTED)


def _encode_version(value: Version) -> dict[str, Any]:
    return value.to_dict()


_VERSION = _kind(_check_version, "a Version", _encode_version)


@_validated
@dataclass(slots=True)
class JobTemplate(_Record, ImplementationSpecific):
    """What to run and how: the description of a job handed to ``run_job``.

    Built from keywords or a mapping: ``JobTemplate({"remote_command": "/bin/true"})``.
    Unset fields are None and leave the choice to the backend. Sizes are in KiB; times are
    timezone-aware datetimes (naive ones are read as UTC); ``resource_limits`` maps
    ``ResourceLimit`` to KiB or seconds.
    """

    template: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    remote_command: str | None = field(default=None, metadata=_STR)
    args: list[str] | None = field(default=None, metadata=_STR_LIST)
    submit_as_hold: bool | None = field(default=None, metadata=_BOOL)
    rerunnable: bool | None = field(default=None, metadata=_BOOL)
    job_environment: dict[str, str] | None = field(default=None, metadata=_STR_DICT)
    working_directory: str | None = field(default=None, metadata=_STR)
    job_category: str | None = field(default=None, metadata=_STR)
    email: list[str] | None = field(default=None, metadata=_STR_LIST)
    email_on_started: bool | None = field(default=None, metadata=_BOOL)
    email_on_terminated: bool | None = field(default=None, metadata=_BOOL)
    job_name: str | None = field(default=None, metadata=_STR)
    input_path: str | None = field(default=None, metadata=_STR)
    output_path: str | None = field(default=None, metadata=_STR)
    error_path: str | None = field(default=None, metadata=_STR)
    join_files: bool | None = field(default=None, metadata=_BOOL)
    reservation_id: str | None = field(default=None, metadata=_STR)
    queue_name: str | None = field(default=None, metadata=_STR)
    min_slots: int | None = field(default=None, metadata=_COUNT)
    max_slots: int | None = field(default=None, metadata=_COUNT)
    priority: int | None = field(default=None, metadata=_INT)
    candidate_machines: list[str] | None = field(default=None, metadata=_STR_LIST)
    min_phys_memory: int | None = field(default=None, metadata=_COUNT)
    machine_os: Os | None = field(default=None, metadata=_OS)
    machine_arch: Cpu | None = field(default=None, metadata=_CPU)
    start_time: datetime | None = field(default=None, metadata=_DATETIME)
    deadline_time: datetime | None = field(default=None, metadata=_DATETIME)
    stage_in_files: dict[str, str] | None = field(default=None, metadata=_STR_DICT)
    stage_out_files: dict[str, str] | None = field(default=None, metadata=_STR_DICT)
    resource_limits: dict[ResourceLimit, int | float] | None = field(
        default=None, metadata=_LIMITS_KIND
    )
    accounting_id: str | None = field(default=None, metadata=_STR)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class JobInfo(_Record, ImplementationSpecific):
    """What is known about a job; fields not known (yet) are None.

    Also used as a filter for ``get_jobs``: only the fields that are set are compared. Built
    from keywords or a mapping: ``JobInfo({"job_state": "RUNNING"})``.
    """

    job_info: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    job_id: str | None = field(default=None, metadata=_STR)
    job_name: str | None = field(default=None, metadata=_STR)
    exit_status: int | None = field(default=None, metadata=_INT)
    terminating_signal: str | None = field(default=None, metadata=_STR)
    annotation: str | None = field(default=None, metadata=_STR)
    job_state: JobState | None = field(default=None, metadata=_JOB_STATE)
    job_sub_state: str | None = field(default=None, metadata=_STR)
    allocated_machines: list[str] | None = field(default=None, metadata=_STR_LIST)
    submission_machine: str | None = field(default=None, metadata=_STR)
    job_owner: str | None = field(default=None, metadata=_STR)
    slots: int | None = field(default=None, metadata=_COUNT)
    queue_name: str | None = field(default=None, metadata=_STR)
    wallclock_time: timedelta | None = field(default=None, metadata=_DURATION)
    cpu_time: int | float | None = field(default=None, metadata=_AMOUNT)
    submission_time: datetime | None = field(default=None, metadata=_DATETIME)
    dispatch_time: datetime | None = field(default=None, metadata=_DATETIME)
    finish_time: datetime | None = field(default=None, metadata=_DATETIME)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class MachineInfo(_Record, ImplementationSpecific):
    """A machine the backend can run jobs on. Memory is in KiB; virt_memory is RAM + swap."""

    machine_info: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    name: str | None = field(default=None, metadata=_STR)
    available: bool | None = field(default=None, metadata=_BOOL)
    sockets: int | None = field(default=None, metadata=_COUNT)
    cores_per_socket: int | None = field(default=None, metadata=_COUNT)
    threads_per_core: int | None = field(default=None, metadata=_COUNT)
    load: float | None = field(default=None, metadata=_LOAD)
    phys_memory: int | None = field(default=None, metadata=_COUNT)
    virt_memory: int | None = field(default=None, metadata=_COUNT)
    architecture: Cpu | None = field(default=None, metadata=_CPU)
    os: Os | None = field(default=None, metadata=_OS)
    os_version: Version | None = field(default=None, metadata=_VERSION)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)

    # DRMAA2's own names (machineArch, machineOS, machineOSVersion), as Grid Engine's binding
    # spells them.
    _aliases: ClassVar[dict[str, str]] = {
        "machine_arch": "architecture",
        "machine_os": "os",
        "machine_os_version": "os_version",
    }


@_validated
@dataclass(slots=True)
class QueueInfo(_Record, ImplementationSpecific):
    """A queue of the resource manager."""

    queue_info: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    name: str | None = field(default=None, metadata=_STR)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class Notification(_Record, ImplementationSpecific):
    """An event about a job, passed to callbacks of ``register_event_notification``.

    A backend sets every field (``implementation_specific``: its own values, none for the
    backends of this distribution). For code that builds its own, each has a default:
    ``Notification()`` is a NEW_STATE event of job "" in session "" to UNDETERMINED.
    """

    event: Event = field(default=Event.NEW_STATE, metadata=_EVENT)
    job_id: str = field(default="", metadata=_STR)
    session_name: str = field(default="", metadata=_STR)
    job_state: JobState = field(default=JobState.UNDETERMINED, metadata=_JOB_STATE)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)

    def __init__(
        self,
        event: Event | str | int | Mapping[str, Any] | None = None,
        job_id: str | None = None,
        session_name: str | None = None,
        job_state: JobState | str | int | None = None,
        implementation_specific: Mapping[str, str] | None = None,
        *,
        notification: Mapping[str, Any] | None = None,
    ) -> None:
        if notification is None and isinstance(event, Mapping):
            event, notification = None, event
        given = {
            "event": event,
            "job_id": job_id,
            "session_name": session_name,
            "job_state": job_state,
            "implementation_specific": implementation_specific,
        }
        self._fill(given, notification)

    @classmethod
    def register_event_notification(
        cls, callback: Callable[[Notification], None] | None, *, backend: str | None = None
    ) -> None:
        """Call ``callback(notification)`` on every job state change of the backend; None
        stops the calls (``drmaa2.register_event_notification``)."""
        from drmaa2.manager import register_event_notification  # manager imports this module

        register_event_notification(callback, backend=backend)

    @classmethod
    def unregister_event_notification(cls, *, backend: str | None = None) -> None:
        """Stop the calls of :meth:`register_event_notification`."""
        cls.register_event_notification(None, backend=backend)
