"""The kinds of value a field of a DRMAA2 data type holds: for each, the check that refuses a
wrong value (raising :class:`_Mismatch`) and normalizes a right one, the encoder to
JSON-compatible data, and the words that describe it. A field names its kind in its metadata
(``field(metadata=_STR)``); :func:`drmaa2.record._validated` collects them.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from drmaa2.enums import Bool, Cpu, Event, JobState, Os, ResourceLimit

_Check = Callable[[Any], Any]
_Encode = Callable[[Any], Any]
_E = TypeVar("_E", bound=enum.Enum)
_ZERO = timedelta(0)


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
_OS = _enum_kind(Os)
_CPU = _enum_kind(Cpu)
_JOB_STATE = _enum_kind(JobState)
_EVENT = _enum_kind(Event)
