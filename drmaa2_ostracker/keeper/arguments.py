"""The arguments of the keeper's requests, checked: how a request names a session, the tasks
and operation of an array's control, a submission's key. Anything else is refused with
InvalidArgumentException naming the argument and the value."""

from __future__ import annotations

from typing import Any

from drmaa2.backend import ArrayOperation
from drmaa2.errors import InvalidArgumentException
from drmaa2_ostracker.store.launches import KEY_SIZE

__all__ = ["array_operation", "session_key", "submission_key", "task_list"]

_ARRAY_OPERATIONS: dict[str, ArrayOperation] = {
    "suspend": "suspend",
    "resume": "resume",
    "hold": "hold",
    "release": "release",
    "terminate": "terminate",
    "reap": "reap",
}


def session_key(session: Any) -> tuple[str, int]:
    """(name, when it was made) of a session as a request names it."""
    if (
        isinstance(session, tuple)
        and len(session) == 2
        and isinstance(session[0], str)
        and type(session[1]) is int
    ):
        return session[0], session[1]
    raise InvalidArgumentException(f"session: expected a name or (name, made), got {session!r}")


def task_list(tasks: Any) -> range | list[str]:
    """The tasks of a control_array request: a range of indices or a list of ids."""
    if isinstance(tasks, tuple) and len(tasks) == 3 and all(type(n) is int for n in tasks):
        if tasks[2] != 0:
            return range(*tasks)
    elif isinstance(tasks, list) and all(isinstance(job_id, str) for job_id in tasks):
        return tasks
    raise InvalidArgumentException("tasks: expected (start, stop, step) or a list of ids")


def submission_key(key: object) -> bytes:
    """A submission's key as a request gave it, checked."""
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise InvalidArgumentException(f"a submission's key is {KEY_SIZE} bytes, not {key!r}")
    return key


def array_operation(operation: object) -> ArrayOperation:
    """The operation of a control_array request (a control action's name, or "reap"),
    checked."""
    if not isinstance(operation, str) or operation not in _ARRAY_OPERATIONS:
        raise InvalidArgumentException(f"operation: not an array operation: {operation!r}")
    return _ARRAY_OPERATIONS[operation]
