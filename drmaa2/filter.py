"""Job filter matching, the one rule used by ``get_jobs`` and ``get_all_jobs``.

An unset field (None) never filters. A set field must equal the job's value, except:

- ``allocated_machines``: the job's list must contain every listed name;
- ``wallclock_time`` and ``cpu_time``: the job's value must be at or above the filter's;
- ``submission_time``, ``dispatch_time``, ``finish_time``: the job's at or after the filter's;
- ``implementation_specific``: every listed key must be present with the listed value.

A field the filter sets but the job does not know (None) does not match.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

from drmaa2.types import JobInfo

__all__ = ["job_matches", "set_filter_fields"]


def _equal(job_value: Any, wanted: Any) -> bool:
    return bool(job_value == wanted)


def _contains_all(job_value: Any, wanted: Any) -> bool:
    return all(name in job_value for name in wanted)


def _has_items(job_value: Any, wanted: Any) -> bool:
    return all(job_value.get(key) == value for key, value in wanted.items())


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "allocated_machines": _contains_all,
    "wallclock_time": operator.ge,
    "cpu_time": operator.ge,
    "submission_time": operator.ge,
    "dispatch_time": operator.ge,
    "finish_time": operator.ge,
    "implementation_specific": _has_items,
}

_FIELDS = tuple(f.name for f in dataclasses.fields(JobInfo))


def set_filter_fields(job_filter: JobInfo) -> dict[str, Any]:
    """Return the fields the filter sets, by name: those that are not None, and
    ``implementation_specific`` if it lists a key (unset, it is an empty dict)."""
    return {
        name: value
        for name in _FIELDS
        if (value := getattr(job_filter, name)) is not None and value != {}
    }


def job_matches(info: JobInfo, job_filter: JobInfo | None) -> bool:
    """Tell whether a job described by ``info`` passes ``job_filter`` (None passes everything)."""
    if job_filter is None:
        return True
    for name, wanted in set_filter_fields(job_filter).items():
        actual = getattr(info, name)
        if actual is None:
            return False
        compare = _COMPARE.get(name, _equal)
        if not compare(actual, wanted):
            return False
    return True
