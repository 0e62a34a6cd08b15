"""DRMAA2 enumerations and constants, with the values of the OGF specification (GFD.231)."""

from __future__ import annotations

import enum

__all__ = [
    "HOME_DIR",
    "INFINITE_TIME",
    "NOW",
    "PARAMETRIC_INDEX",
    "UNSET_TIME",
    "WORKING_DIR",
    "ZERO_TIME",
    "Capability",
    "Cpu",
    "Event",
    "JobState",
    "Os",
    "ResourceLimit",
    "StatusCode",
]

#: Wait forever (a timeout value).
INFINITE_TIME = -1
#: Check once and return or raise at once (a timeout value).
ZERO_TIME = 0
#: "Now", for time attributes that accept it.
NOW = -2
#: A time attribute that is not set.
UNSET_TIME = -3

#: Placeholder replaced by the home directory of the job's owner.
HOME_DIR = "$DRMAA2_HOME_DIR$"
#: Placeholder replaced by the job's working directory.
WORKING_DIR = "$DRMAA2_WORKING_DIR$"
#: Placeholder replaced by an array task's index.
PARAMETRIC_INDEX = "$DRMAA2_INDEX$"


class JobState(enum.IntEnum):
    """The state of a job."""

    UNDETERMINED = 0
    QUEUED = 1
    QUEUED_HELD = 2
    RUNNING = 3
    SUSPENDED = 4
    REQUEUED = 5
    REQUEUED_HELD = 6
    DONE = 7
    FAILED = 8

    @property
    def is_terminal(self) -> bool:
        """True for DONE and FAILED: the job will never change state again."""
        return self in (JobState.DONE, JobState.FAILED)

    @property
    def is_started(self) -> bool:
        """True once the job has left the queue (running, suspended or finished)."""
        return self in (JobState.RUNNING, JobState.SUSPENDED, JobState.DONE, JobState.FAILED)


class Capability(enum.IntEnum):
    """Optional DRMAA2 features a backend may support (see ``drmaa2.supports``)."""

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


class Os(enum.IntEnum):
    """Operating system of a machine."""

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


class Cpu(enum.IntEnum):
    """Processor architecture of a machine."""

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


class Event(enum.IntEnum):
    """Kind of an event notification."""

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
    """DRMAA2 error codes, carried by every exception as ``error_code``."""

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
