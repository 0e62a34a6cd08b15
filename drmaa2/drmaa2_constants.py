"""Grid Engine's binding's module of constants and enums, under its name, so that
``from drmaa2.drmaa2_constants import POSIX_EPOCH`` (as its tests do) runs here too.

Everything is defined in :mod:`drmaa2.enums` (ListType in :mod:`drmaa2.uge`); this module only
names it again.
"""

from __future__ import annotations

from drmaa2.enums import (
    POSIX_EPOCH,
    UNSET_BOOL,
    UNSET_ENUM,
    UNSET_NUM,
    UNSET_PRIORITY,
    UNSET_TIME,
    Bool,
    Capability,
    Cpu,
    Event,
    JobState,
    Os,
    ResourceLimit,
    StatusCode,
    Time,
)
from drmaa2.uge import ListType

__all__ = [
    "POSIX_EPOCH",
    "UNSET_BOOL",
    "UNSET_ENUM",
    "UNSET_NUM",
    "UNSET_PRIORITY",
    "UNSET_TIME",
    "Bool",
    "Capability",
    "Cpu",
    "Event",
    "JobState",
    "ListType",
    "Os",
    "ResourceLimit",
    "StatusCode",
    "Time",
]
