"""DRMAA2 data types: job templates, job, machine and queue information, versions, events.

Every type is a dataclass that checks its values when it is built and whenever a field is
assigned, so a wrong value fails at once with an ``InvalidArgumentException`` naming the class,
the field and the value. Each is built from keywords, from a mapping given as first positional
argument (``JobTemplate({"remote_command": "/bin/true"})``, as Grid Engine's binding does) or
with ``from_dict``. ``to_dict()``/``from_dict()`` and ``to_json()``/``from_json()`` convert
to and from JSON-compatible data: datetimes as ISO 8601 strings with offset, timedeltas as float
seconds, enums by name.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, MISSING, Field, InitVar, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, NamedTuple, TypeVar

from drmaa2.compat import ImplementationSpecific
from drmaa2.enums import Bool, Cpu, Event, JobState, Os, ResourceLimit
from drmaa2.errors import InvalidArgumentException

__all__ = ["JobInfo", "JobTemplate", "MachineInfo", "Notification", "QueueInfo", "Version"]

_Check = Callable[[Any], Any]
_Encode = Callable[[Any], Any]
_R = TypeVar("_R", bound="_Record")
_E = TypeVar("_E", bound=enum.Enum)

# Longest repr of an offending value shown in a message: a huge environment stays readable.
_MAX_SHOWN = 200
_ZERO = timedelta(0)


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        return text[: _MAX_SHOWN - 3] + "..."
    return text


class _Mismatch(Exception):
    """A field check's complaint; the record adds the class, field and value to it."""

    def __init__(self, expected: str, *offending: object) -> None:
        super().__init__(expected)
        self.expected = expected
        # Empty: the value given to the field is the offending one; else the part at fault.
        self.offending = offending


class _Kind(NamedTuple):
    """How one kind of field is checked and normalized, and encoded for ``to_dict``."""

    check: _Check
    # None: the stored value is JSON-compatible as it is.
    encode: _Encode | None
    # What the field holds, for drmaa2.describe_attribute.
    about: str


def _kind(check: _Check, about: str, encode: _Encode | None = None) -> Mapping[str, _Kind]:
    """Field metadata telling ``_validated`` how to check, encode and describe the field."""
    return {"kind": _Kind(check, encode, about)}


#: What a string of a DRMAA2 record may not hold: NUL ends a C string (the OS and the
#: backends' stores cut or refuse it), and a lone surrogate (what Python makes of a byte
#: that is not UTF-8) cannot be stored or sent as text.
_UNSTORABLE = "a str without NUL characters or lone surrogates (bytes that are not UTF-8)"
_UNSTORABLE_PARTS = "strs without NUL characters or lone surrogates (bytes that are not UTF-8)"


def _storable(value: str) -> bool:
    if "\0" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_str(value: Any) -> str:
    if isinstance(value, str):
        if not _storable(value):
            raise _Mismatch(_UNSTORABLE)
        return value
    raise _Mismatch("str")


_BOOLS: dict[object, bool] = {"FALSE": False, "TRUE": True}


def _check_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) in (int, Bool) and value in (0, 1):
        return bool(value)
    if type(value) is str and value in _BOOLS:
        return _BOOLS[value]
    raise _Mismatch('a bool, 0, 1, "TRUE" or "FALSE"')


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


#: The largest int a record holds: what a 64-bit signed integer (an OS limit, an SQLite
#: column) can take. A larger one is refused when set, not when a backend fails on it.
INT_MAX = 2**63 - 1


def _check_int(value: Any) -> int:
    if not (type(value) is int or _is_int(value)):
        raise _Mismatch("int")
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise _Mismatch("an int from -2**63 to 2**63 - 1")
    return int(value)


def _check_count(value: Any) -> int:
    if not (type(value) is int or _is_int(value)) or value < 0:
        raise _Mismatch("a non-negative int")
    if value > INT_MAX:
        raise _Mismatch("a non-negative int up to 2**63 - 1")
    return int(value)


def _check_amount(value: Any) -> int | float:
    """A non-negative int or finite float up to 2**63 - 1, kept as it is (seconds, sizes)."""
    if not _is_number(value) or value < 0:
        raise _Mismatch("a non-negative number")
    if value > INT_MAX:
        raise _Mismatch("a non-negative number up to 2**63 - 1")
    return float(value) if isinstance(value, float) else int(value)


def _check_load(value: Any) -> float:
    if _is_number(value) and value >= 0:
        return float(value)
    raise _Mismatch("a non-negative number")


def _check_str_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                break
            if not _storable(item):
                raise _Mismatch(f"a list of {_UNSTORABLE_PARTS}", item)
        else:
            return list(value)
    raise _Mismatch("a list of str")


def _check_str_dict(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not (isinstance(key, str) and isinstance(item, str)):
                break
            for part in (key, item):
                if not _storable(part):
                    raise _Mismatch(f"a dict of {_UNSTORABLE_PARTS}", part)
        else:
            return dict(value)
    raise _Mismatch("a dict of str to str")


def _check_datetime(value: Any) -> datetime:
    """A datetime, kept with its offset; a naive one (or ISO text without offset) is UTC."""
    parsed = value
    if isinstance(value, str):
        # Python 3.10's fromisoformat does not know the "Z" suffix.
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, datetime):
        if parsed.tzinfo is None:
            # Grid Engine's binding reads naive times as UTC; so do we.
            return parsed.replace(tzinfo=timezone.utc)
        if parsed.utcoffset() is not None:
            return parsed
    raise _Mismatch("a datetime (naive ones are UTC) or an ISO 8601 string")


def _check_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if value >= _ZERO:
            return value
    elif _is_number(value) and value >= 0:
        try:
            # Whole microseconds, so float seconds from to_dict() come back exactly.
            return timedelta(microseconds=round(value * 1_000_000))
        except OverflowError:
            pass
    raise _Mismatch("a non-negative timedelta or number of seconds")


def _encode_duration(value: timedelta) -> float:
    return value.total_seconds()


def _encode_datetime(value: datetime) -> str:
    return value.isoformat()


def _encode_enum(value: enum.Enum) -> str:
    return value.name


def _enum_kind(kind: type[_E]) -> Mapping[str, _Kind]:
    by_name = dict(kind.__members__)
    by_value = {member.value: member for member in kind}
    expected = f"a {kind.__name__} name ({', '.join(by_name)}), value or member"

    def check(value: Any) -> _E:
        if type(value) is kind:
            return value
        member = None
        if isinstance(value, str):
            member = by_name.get(value)
        elif _is_int(value) and not isinstance(value, enum.Enum):
            member = by_value.get(value)
        if member is None:
            raise _Mismatch(expected)
        return member

    return _kind(check, f"a {kind.__name__} (a member, its name or its int code)", _encode_enum)


_LIMITS = dict(ResourceLimit.__members__)
_LIMITS_EXPECTED = f"a resource limit ({', '.join(_LIMITS)})"
# Grid Engine's binding can pass only strings: "60", "1.5".
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _limit_amount(amount: Any) -> Any:
    if isinstance(amount, str) and _DECIMAL.fullmatch(amount):
        return float(amount) if "." in amount else int(amount)
    return amount


def _check_limits(value: Any) -> dict[ResourceLimit, int | float]:
    if not isinstance(value, Mapping):
        raise _Mismatch("a dict of resource limit to non-negative number")
    limits: dict[ResourceLimit, int | float] = {}
    for key, amount in value.items():
        # ResourceLimit members are str equal to their names, so one lookup serves both.
        limit = _LIMITS.get(key) if isinstance(key, str) else None
        if limit is None:
            raise _Mismatch(_LIMITS_EXPECTED, key)
        try:
            limits[limit] = _check_amount(_limit_amount(amount))
        except _Mismatch:
            raise _Mismatch(
                f"a non-negative number or decimal string for {limit.name}", amount
            ) from None
    return limits


def _encode_limits(value: dict[ResourceLimit, int | float]) -> dict[str, int | float]:
    return {limit.name: amount for limit, amount in value.items()}


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


_STR = _kind(_check_str, "a str")
_BOOL = _kind(_check_bool, 'a bool (set as a bool, 0, 1, "TRUE" or "FALSE")')
_INT = _kind(_check_int, "an int")
_COUNT = _kind(_check_count, "a non-negative int")
_AMOUNT = _kind(_check_amount, "a non-negative number")
_LOAD = _kind(_check_load, "a non-negative float")
_STR_LIST = _kind(_check_str_list, "a list of str", list)
_STR_DICT = _kind(_check_str_dict, "a dict of str to str", dict)
_DATETIME = _kind(
    _check_datetime,
    "a timezone-aware datetime (set as a datetime, naive ones read as UTC, or ISO 8601 text)",
    _encode_datetime,
)
_DURATION = _kind(_check_duration, "a timedelta (set as one or as seconds)", _encode_duration)
_LIMITS_KIND = _kind(
    _check_limits,
    "a dict of ResourceLimit to KiB or seconds (numbers or decimal strings)",
    _encode_limits,
)
_VERSION = _kind(_check_version, "a Version", _encode_version)
_OS = _enum_kind(Os)
_CPU = _enum_kind(Cpu)
_JOB_STATE = _enum_kind(JobState)
_EVENT = _enum_kind(Event)


def _validated(cls: type[_R]) -> type[_R]:
    """Collect the checks and encoders of a record dataclass from its fields' metadata."""
    specs = fields(cls)
    cls._checks = {spec.name: spec.metadata["kind"].check for spec in specs}
    cls._encoders = tuple((spec.name, spec.metadata["kind"].encode) for spec in specs)
    cls._abouts = {spec.name: spec.metadata["kind"].about for spec in specs}
    # Required: never None (no default, or a default that is not None).
    cls._required = frozenset(spec.name for spec in specs if spec.default is not None)
    cls._defaults = {
        spec.name: spec.default for spec in specs if spec.default not in (MISSING, None)
    }
    return cls


class _Record:
    """Validation, conversion and copying shared by every DRMAA2 data type."""

    __slots__ = ()

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    _checks: ClassVar[dict[str, _Check]]
    _encoders: ClassVar[tuple[tuple[str, _Encode | None], ...]]
    _abouts: ClassVar[dict[str, str]]
    _required: ClassVar[frozenset[str]]
    _defaults: ClassVar[dict[str, Any]]

    def __setattr__(self, name: str, value: Any) -> None:
        if value is None:
            if name in self._required:
                raise InvalidArgumentException(
                    f"{type(self).__name__}.{name}: a value is required, got None"
                )
        else:
            check = self._checks.get(name)
            if check is None:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            try:
                value = check(value)
            except _Mismatch as exc:
                shown = exc.offending[0] if exc.offending else value
                raise InvalidArgumentException(
                    f"{type(self).__name__}.{name}: expected {exc.expected}, got {_show(shown)}"
                ) from None
        object.__setattr__(self, name, value)

    def __post_init__(self, data: object) -> None:
        # The mapping given as first positional argument (or by the binding's keyword name);
        # the keywords' values are already set.
        if data is not None:
            self._fill({name: getattr(self, name) for name in self._checks}, data)

    def _fill(self, given: Mapping[str, Any], data: object) -> None:
        """Set the fields from keyword values (None: not given) and, if not None, a mapping of
        more values; a field given neither way gets its default."""
        values = {name: value for name, value in given.items() if value is not None}
        if data is not None:
            if not isinstance(data, Mapping):
                raise InvalidArgumentException(
                    f"{type(self).__name__}: expected a mapping of field names to values, "
                    f"got {_show(data)}"
                )
            self._check_keys(data, given)
            for name, value in data.items():
                if values.get(name) is not None:
                    raise InvalidArgumentException(
                        f"{type(self).__name__}: {name!r} is given both in the mapping and "
                        "as a keyword"
                    )
                values[name] = value
        for name in self._checks:
            setattr(self, name, values.get(name, self._defaults.get(name)))

    @classmethod
    def _check_keys(cls, data: Mapping[Any, Any], given: Mapping[str, Any] | None = None) -> None:
        for key in data:
            if key not in cls._checks:
                hint = ""
                if isinstance(key, str):
                    close = difflib.get_close_matches(key, cls._checks, n=1)
                    if close:
                        hint = f" (did you mean {close[0]!r}?)"
                raise InvalidArgumentException(f"{cls.__name__}: unknown key {_show(key)}{hint}")
        for name in cls._checks:
            required = name in cls._required and name not in cls._defaults
            if required and name not in data and (given or {}).get(name) is None:
                raise InvalidArgumentException(f"{cls.__name__}: missing key {name!r}")

    @classmethod
    def from_dict(cls: type[_R], data: Mapping[str, Any]) -> _R:
        """Build from a mapping of field names to values (native or as given by ``to_dict``)."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentException(
                f"{cls.__name__}.from_dict: expected a mapping, got {_show(data)}"
            )
        cls._check_keys(data)
        return cls(**data)

    @classmethod
    def _describe(cls, name: str) -> str | None:
        """What the standard attribute ``name`` holds; None if the type has no such field."""
        about = cls._abouts.get(name)
        return None if about is None else f"{cls.__name__}.{name}: {about}"

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-compatible data (None for unset fields)."""
        data: dict[str, Any] = {}
        for name, encode in self._encoders:
            value = getattr(self, name)
            if value is not None and encode is not None:
                value = encode(value)
            data[name] = value
        return data

    @classmethod
    def from_json(cls: type[_R], text: str | bytes) -> _R:
        """Build from a JSON object, as written by ``to_json``."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentException(
                f"{cls.__name__}.from_json: not a JSON document ({exc}): {_show(text)}"
            ) from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        """The ``to_dict()`` data as a JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def coerce(cls: type[_R], value: object) -> _R:
        """Return ``value`` if it is already this type, or build one from a mapping."""
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise InvalidArgumentException(
            f"expected a {cls.__name__} or a mapping, got {_show(value)}"
        )

    def copy(self: _R) -> _R:
        """A copy with its own lists, dicts and nested values: changing one leaves the other."""
        duplicate = object.__new__(type(self))
        for name, _ in self._encoders:
            value = getattr(self, name)
            if isinstance(value, (list, dict, _Record)):
                value = value.copy()
            # The values were checked when set on self; no need to check them again.
            object.__setattr__(duplicate, name, value)
        return duplicate


@_validated
@dataclass(slots=True)
class Version(_Record):
    """A version number in two parts: ``Version("2", "0")``, ``Version(major="2", minor="0")``
    or ``Version({"major": "2", "minor": "0"})``."""

    major: str = field(metadata=_STR)
    minor: str = field(metadata=_STR)

    def __init__(
        self,
        major: str | Mapping[str, Any] | None = None,
        minor: str | None = None,
        *,
        version: Mapping[str, Any] | None = None,
    ) -> None:
        if version is None and isinstance(major, Mapping):
            major, version = None, major
        self._fill({"major": major, "minor": minor}, version)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def get_drms_version(cls, *, backend: str | None = None) -> Version:
        """The version of the resource manager behind the backend (``drmaa2.get_drms_version``)."""
        from drmaa2.session import get_drms_version  # session imports this module

        return get_drms_version(backend=backend)

    @classmethod
    def get_drmaa_version(cls) -> Version:
        """The DRMAA version implemented, 2.0 (``drmaa2.get_drmaa_version``)."""
        from drmaa2.session import get_drmaa_version  # session imports this module

        return get_drmaa_version()


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
    implementation_specific: dict[str, str] | None = field(default=None, metadata=_STR_DICT)


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
    implementation_specific: dict[str, str] | None = field(default=None, metadata=_STR_DICT)


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
    implementation_specific: dict[str, str] | None = field(default=None, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class QueueInfo(_Record, ImplementationSpecific):
    """A queue of the resource manager."""

    queue_info: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    name: str | None = field(default=None, metadata=_STR)
    implementation_specific: dict[str, str] | None = field(default=None, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class Notification(_Record):
    """An event about a job, passed to callbacks of ``register_event_notification``.

    A backend sets every field. For code that builds its own, each has a default:
    ``Notification()`` is a NEW_STATE event of job "" in session "" to UNDETERMINED.
    """

    event: Event = field(default=Event.NEW_STATE, metadata=_EVENT)
    job_id: str = field(default="", metadata=_STR)
    session_name: str = field(default="", metadata=_STR)
    job_state: JobState = field(default=JobState.UNDETERMINED, metadata=_JOB_STATE)

    def __init__(
        self,
        event: Event | str | int | Mapping[str, Any] | None = None,
        job_id: str | None = None,
        session_name: str | None = None,
        job_state: JobState | str | int | None = None,
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
        }
        self._fill(given, notification)

    @classmethod
    def register_event_notification(
        cls, callback: Callable[[Notification], None] | None, *, backend: str | None = None
    ) -> None:
        """Call ``callback(notification)`` on every job state change of the backend; None
        stops the calls (``drmaa2.register_event_notification``)."""
        from drmaa2.session import register_event_notification  # session imports this module

        register_event_notification(callback, backend=backend)

    @classmethod
    def unregister_event_notification(cls, *, backend: str | None = None) -> None:
        """Stop the calls of :meth:`register_event_notification`."""
        cls.register_event_notification(None, backend=backend)
