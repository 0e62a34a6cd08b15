"""DRMAA2 enumerations and constants, with the values of the OGF specification (GFD.231).

The enums of data type attributes (JobState, Os, Cpu, Event) are IntEnums that also behave as
their member name, as Grid Engine's ``uge-drmaa2`` binding returns names: ``JobState.DONE ==
"DONE"``, ``str(JobState.DONE) == "DONE"``, ``JobState.QUEUED_HELD.endswith("HELD")``, while
``JobState.DONE == 7`` and ``int(JobState.DONE) == 7`` still hold.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "HOME_DIR",
    "INFINITE_TIME",
    "NOW",
    "PARAMETRIC_INDEX",
    "POSIX_EPOCH",
    "UNSET_BOOL",
    "UNSET_ENUM",
    "UNSET_NUM",
    "UNSET_PRIORITY",
    "UNSET_TIME",
    "WORKING_DIR",
    "ZERO_TIME",
    "Bool",
    "Capability",
    "Cpu",
    "Event",
    "JobState",
    "Os",
    "ResourceLimit",
    "StatusCode",
    "Time",
]

#: Wait forever (a timeout value).
INFINITE_TIME = -1
#: Check once and return or raise at once (a timeout value).
ZERO_TIME = 0
#: "Now", for time attributes that accept it.
NOW = -2
#: A time attribute that is not set.
UNSET_TIME = -3

#: What Grid Engine's binding (its C library) stores for an unset bool, enum, number and
#: priority. Here an unset field is None; these are for code that compares with them.
UNSET_BOOL = 0
UNSET_ENUM = -1
UNSET_NUM = -1
UNSET_PRIORITY = -99999

#: Placeholder replaced by the home directory of the job's owner.
HOME_DIR = "$DRMAA2_HOME_DIR$"
#: Placeholder replaced by the job's working directory.
WORKING_DIR = "$DRMAA2_WORKING_DIR$"
#: Placeholder replaced by an array task's index.
PARAMETRIC_INDEX = "$DRMAA2_INDEX$"


class _Epoch(datetime):
    """1970-01-01 00:00 UTC, from which a naive datetime (read as UTC, as Grid Engine's
    binding reads it) can be subtracted as well as an aware one."""

    def __rsub__(self, other: datetime) -> timedelta:
        if not isinstance(other, datetime):
            return NotImplemented
        if other.utcoffset() is None:
            return other - _NAIVE_EPOCH
        return other - _AWARE_EPOCH


_NAIVE_EPOCH = datetime(1970, 1, 1)
_AWARE_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: The start of POSIX time, 1970-01-01 00:00 UTC (Grid Engine's binding's constant):
#: ``(info.submission_time - POSIX_EPOCH).total_seconds()`` is the epoch time, whether the
#: datetime is aware (as this library's are) or naive (read as UTC).
POSIX_EPOCH: datetime = _Epoch(1970, 1, 1, tzinfo=timezone.utc)


class Bool(enum.IntEnum):
    """DRMAA2 booleans, as Grid Engine's binding names them; bool attributes accept them."""

    FALSE = 0
    TRUE = 1


class Time(enum.IntEnum):
    """The special DRMAA2 time values; every timeout parameter accepts ZERO_TIME and
    INFINITE_TIME (NOW and UNSET_TIME are not timeouts and are refused there)."""

    ZERO_TIME = 0
    INFINITE_TIME = -1
    NOW = -2
    UNSET_TIME = -3


class _NamedIntEnum(enum.IntEnum):
    """An IntEnum whose members also equal, print as and hash like their name.

    ``member == "NAME"``, ``str(member)``, ``f"{member}"`` and the str methods
    (``member.endswith("HELD")``, ``member.lower()``, …) act on the name; comparisons with
    members and int codes, ``int(member)``, ``member.value`` and ``f"{member:d}"`` act on the
    DRMAA2 code. The hash is the name's, so a member finds its name in a set or dict (and not
    its code).
    """

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:  # members are singletons: the common case
            return self is other
        if isinstance(other, str):
            return self._name_ == other
        return int(self) == other

    def __ne__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self is not other
        return not self == other

    def __hash__(self) -> int:
        return hash(self._name_)

    def __str__(self) -> str:
        return self._name_

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "bcdeEfFgGnoxX%":
            return format(int(self), spec)
        return format(self._name_, spec)

    def __contains__(self, part: str) -> bool:
        return part in self._name_

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return self._name_ + other
        return int(self) + other

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other + self._name_
        return other + int(self)

    def __getattr__(self, attribute: str) -> Any:
        # Only str's public methods: dunder lookups (copy, pickle) must fail as usual.
        if not attribute.startswith("_") and hasattr(str, attribute):
            return getattr(self._name_, attribute)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")


class JobState(_NamedIntEnum):
    """The state of a job.

    UNSET_JSTATE and RUNNING_HELD are Grid Engine's (its binding has them): no backend here
    reports either, so a filter on one matches no job.
    """

    UNSET_JSTATE = -1
    UNDETERMINED = 0
    QUEUED = 1
    QUEUED_HELD = 2
    RUNNING = 3
    SUSPENDED = 4
    REQUEUED = 5
    REQUEUED_HELD = 6
    DONE = 7
    FAILED = 8
    RUNNING_HELD = 9

    @property
    def is_terminal(self) -> bool:
        """True for DONE and FAILED: the job will never change state again."""
        return self is JobState.DONE or self is JobState.FAILED

    @property
    def is_started(self) -> bool:
        """True once the job has left the queue (running, held while running, suspended or
        finished)."""
        return self in _STARTED


_STARTED = frozenset(
    (JobState.RUNNING, JobState.RUNNING_HELD, JobState.SUSPENDED, JobState.DONE, JobState.FAILED)
)


class Capability(enum.IntEnum):
    """Optional DRMAA2 features a backend may support (see ``drmaa2.supports``); no backend
    supports UNSET_CAPABILITY, the binding's mark for none."""

    UNSET_CAPABILITY = -1
    ADVANCE_RESERVATION = 0
    RESERVE_SLOTS = 1
    CALLBACK = 2
    BULK_JOBS_MAXPARALLEL = 3
    JT_EMAIL = 4
    JT_STAGING = 5
    JT_DEADLINE = 6
    JT_MAXSLOTS = 7
    JT_ACCOUNTINGID = 8
    RT_STARTNOW = 9
    RT_DURATION = 10
    RT_MACHINEOS = 11
    RT_MACHINEARCH = 12


class Os(_NamedIntEnum):
    """Operating system of a machine (UNSET_OS: the binding's mark for none)."""

    UNSET_OS = -1
    OTHER_OS = 0
    AIX = 1
    BSD = 2
    LINUX = 3
    HPUX = 4
    IRIX = 5
    MACOS = 6
    SUNOS = 7
    TRU64 = 8
    UNIXWARE = 9
    WIN = 10
    WINNT = 11


class Cpu(_NamedIntEnum):
    """Processor architecture of a machine (UNSET_CPU: the binding's mark for none)."""

    UNSET_CPU = -1
    OTHER_CPU = 0
    ALPHA = 1
    ARM = 2
    ARM64 = 3
    CELL = 4
    PARISC = 5
    PARISC64 = 6
    X86 = 7
    X64 = 8
    IA64 = 9
    MIPS = 10
    MIPS64 = 11
    PPC = 12
    PPC64 = 13
    SPARC = 14
    SPARC64 = 15
    PPC64LE = 16


class Event(_NamedIntEnum):
    """Kind of an event notification (UNSET_EVENT: the binding's mark for none)."""

    UNSET_EVENT = -1
    NEW_STATE = 0
    MIGRATED = 1
    ATTRIBUTE_CHANGE = 2


class ResourceLimit(str, enum.Enum):
    """Keys of ``JobTemplate.resource_limits``. Sizes are in KiB, times in seconds."""

    CORE_FILE_SIZE = "CORE_FILE_SIZE"
    CPU_TIME = "CPU_TIME"
    DATA_SIZE = "DATA_SIZE"
    FILE_SIZE = "FILE_SIZE"
    OPEN_FILES = "OPEN_FILES"
    STACK_SIZE = "STACK_SIZE"
    VIRTUAL_MEMORY = "VIRTUAL_MEMORY"
    WALLCLOCK_TIME = "WALLCLOCK_TIME"

    def __str__(self) -> str:
        return self.value


class StatusCode(enum.IntEnum):
    """DRMAA2 error codes, carried by every exception as ``error_code``.

    UNSET_ERROR (a ``Drmaa2Exception`` built without a code), AUTHORIZATION
    (``AuthorizationError``) and LASTERROR (the end of the codes) are Grid Engine's.
    """

    UNSET_ERROR = -1
    SUCCESS = 0
    DENIED_BY_DRMS = 1
    DRM_COMMUNICATION = 2
    TRY_LATER = 3
    SESSION_MANAGEMENT = 4
    TIMEOUT = 5
    INTERNAL = 6
    INVALID_ARGUMENT = 7
    INVALID_SESSION = 8
    INVALID_STATE = 9
    OUT_OF_RESOURCE = 10
    UNSUPPORTED_ATTRIBUTE = 11
    UNSUPPORTED_OPERATION = 12
    IMPLEMENTATION_SPECIFIC = 13
    AUTHORIZATION = 14
    LASTERROR = 15
