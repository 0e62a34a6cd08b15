"""What the front classes share: the backend-call wrapper, the argument checks and the
closed-session guard of :class:`~drmaa2.session.JobSession` and
:class:`~drmaa2.monitoring.MonitoringSession`.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from drmaa2.backend import Action, WaitFor
from drmaa2.enums import INFINITE_TIME, JobState, Time
from drmaa2.errors import (
    Drmaa2Exception,
    InternalException,
    InvalidArgumentException,
    InvalidSessionException,
    UnsupportedOperationException,
)
from drmaa2.fields import INT_MAX, _check_bool, _Mismatch
from drmaa2.types import JobInfo, JobTemplate

if TYPE_CHECKING:
    from drmaa2.jobs import Job


R = TypeVar("R")

#: Seconds (int, float or timedelta); -1 or Time.INFINITE_TIME waits forever, 0 or
#: Time.ZERO_TIME checks once.
Timeout = float | int | datetime.timedelta | Time


def _backend_call(backend: str, operation: str, call: Callable[[], R]) -> R:
    """Run a backend call, turning anything that is not a DRMAA2 error into InternalException."""
    try:
        return call()
    except Drmaa2Exception:
        raise
    except Exception as error:
        raise InternalException(
            f"backend {backend!r} failed in {operation}: {type(error).__name__}: {error}"
        ) from error


def _timeout_seconds(timeout: Timeout) -> float:
    """A timeout as seconds: -1.0 for forever; InvalidArgumentException naming the value if
    it is not one."""
    if timeout is INFINITE_TIME:  # the default of every wait, at once
        return -1.0
    if isinstance(timeout, datetime.timedelta):
        if timeout < datetime.timedelta(0):  # a duration: -1 s is not "forever"
            raise InvalidArgumentException(
                f"timeout: expected a duration of 0 or more, got {timeout!r}"
            )
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentException(
            f"timeout: expected seconds (int or float, -1 for forever), got {timeout!r}"
        )
    if isinstance(timeout, Time) and timeout not in (Time.INFINITE_TIME, Time.ZERO_TIME):
        raise InvalidArgumentException(
            f"timeout: Time.{timeout.name} is not a timeout; use Time.INFINITE_TIME (forever), "
            "Time.ZERO_TIME (check once) or a number of seconds"
        )
    if timeout == INFINITE_TIME or timeout == math.inf:
        return -1.0
    if not timeout >= 0:  # also rejects NaN
        raise InvalidArgumentException(
            f"timeout: expected -1 (forever), 0 (check once) or a positive number of seconds, "
            f"got {timeout!r}"
        )
    return float(timeout)


def _name_arg(field: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise InvalidArgumentException(f"{field}: expected a non-empty str, got {value!r}")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise InvalidArgumentException(
            f"{field}: a name may not hold NUL or control characters, got {value!r}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentException(
            f"{field}: a name may not hold lone surrogates (bytes that are not UTF-8), "
            f"got {value!r}"
        ) from None


def _flag_arg(field: str, value: object) -> bool | None:
    """A yes-or-no argument (None: not given), in the forms a template's bool field takes: a
    bool, 0, 1, "TRUE" or "FALSE"; InvalidArgumentException naming it for anything else (the
    string "False" is not taken for true)."""
    if value is None:
        return None
    try:
        return _check_bool(value)
    except _Mismatch:
        raise InvalidArgumentException(
            f'{field}: expected a bool, 0, 1, "TRUE" or "FALSE", got {value!r}'
        ) from None


def _new_session_name(field: str, name: str | None) -> None:
    """A name for a session to be created: a name (see :func:`_name_arg`) without ``@``,
    which Grid Engine keeps for its ``user@name`` session names and its binding refuses too.
    Sessions that already have one are still opened and destroyed by it."""
    _name_arg(field, name, optional=True)
    if name is not None and "@" in name:
        raise InvalidArgumentException(
            f"{field}: a new session's name may not hold '@' (Grid Engine keeps it for "
            f"'user@name'), got {name!r}"
        )


def _index_arg(field: str, value: object, minimum: int, least: str = "") -> int:
    """An array bound: an int from ``minimum`` (``least`` names it, if it is another
    argument's value) to INT_MAX, the largest a store holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentException(f"{field}: expected an int, got {value!r}")
    if value < minimum:
        least = f"{least} ({minimum})" if least else str(minimum)
        raise InvalidArgumentException(f"{field}: must be at least {least}, got {value!r}")
    if value > INT_MAX:
        raise InvalidArgumentException(f"{field}: must be at most 2**63 - 1, got {value!r}")
    return value


class _Session:
    """What the job and monitoring sessions share: the backend, the guard, error wrapping."""

    _backend_name: str
    _closed: bool
    _kind = "session"

    @property
    def name(self) -> str:
        """The session's name."""
        raise NotImplementedError

    @property
    def session_name(self) -> str:
        """Alias of :attr:`name`."""
        return self.name

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionException(f"{self._kind} {self.name!r} is closed")

    def _call(self, operation: str, call: Callable[[], R]) -> R:
        self._check_open()
        return _backend_call(self._backend_name, operation, call)

    def _job_state(self, job_id: str) -> tuple[JobState, str]:
        raise NotImplementedError

    def _job_info(self, job_id: str) -> JobInfo:
        raise NotImplementedError

    def _job_template(self, job_id: str) -> JobTemplate:
        raise NotImplementedError

    def _control(self, job_id: str, action: Action) -> None:
        raise NotImplementedError

    def _wait(
        self, jobs: Sequence[Job], condition: WaitFor, wait_all: bool, timeout: Timeout
    ) -> list[Job]:
        raise NotImplementedError

    def _reap(self, job_id: str) -> None:
        raise NotImplementedError

    def _terminate_all(self, job_id: str) -> None:
        """Terminate the job and, if it is an array task, the other tasks of its array."""
        self._control(job_id, Action.TERMINATE)

    def _place(self) -> tuple[str, ...]:
        """Where the session's jobs live: two objects with the same place share their jobs."""
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.close()

    def close(self) -> None:
        """Close the session; every later call raises InvalidSessionException."""
        raise NotImplementedError


_S = TypeVar("_S", bound=_Session)


def _binding_arguments(
    name: str | None, contact: str | None, session_dict: Mapping[str, Any] | None, auth: object
) -> tuple[str | None, str | None]:
    """Name and contact from the arguments Grid Engine's binding takes as well: a
    ``session_dict`` of ``name`` and ``contact``, an empty name for none; ``auth`` is refused."""
    _no_auth(auth)
    if session_dict is not None:
        if not isinstance(session_dict, Mapping):
            raise InvalidArgumentException(
                f"session_dict: expected a mapping of 'name' and 'contact', got {session_dict!r}"
            )
        unknown = sorted(str(key) for key in session_dict if key not in ("name", "contact"))
        if unknown:
            raise InvalidArgumentException(
                f"session_dict: unknown keys {', '.join(unknown)}; it takes 'name' and 'contact'"
            )
        name = name or session_dict.get("name")
        contact = contact or session_dict.get("contact")
    return (None if name == "" else name), (None if contact == "" else contact)


def _contact_or_auth(contact: object, auth: object) -> str | None:
    """The contact of a call whose second argument is ``auth`` in Grid Engine's binding
    (``destroy_by_name(name, auth)``): a Sudo or a mapping there is taken as ``auth``;
    an empty contact is none."""
    from drmaa2.uge import Sudo  # uge imports the session layer

    if isinstance(contact, (Sudo, Mapping)):
        contact, auth = None, auth or contact
    _no_auth(auth)
    if contact == "" or contact is None:
        return None
    if not isinstance(contact, str):
        raise InvalidArgumentException(
            f"contact: expected a str (or, in its place as in Grid Engine's binding, auth: "
            f"a Sudo or a mapping), got {contact!r}"
        )
    return contact


def _consistent(template: JobTemplate) -> None:
    """InvalidArgumentException for a template whose fields contradict each other, on every
    backend: a slot range that ends below its start (both given), a deadline no later than
    the start time."""
    low, high = template.min_slots, template.max_slots
    if low is not None and high is not None and high < low:
        raise InvalidArgumentException(f"JobTemplate.max_slots {high}: below min_slots ({low})")
    start, deadline = template.start_time, template.deadline_time
    if start is not None and deadline is not None and deadline <= start:
        raise InvalidArgumentException(
            f"JobTemplate.deadline_time {deadline.isoformat()}: not after start_time "
            f"({start.isoformat()}): the job could never start"
        )


def _where(contact: str | None) -> str:
    """A contact as a session's place compares it: an absolute path that exists, its symbolic
    links resolved (two contacts naming one state directory are one place); else as it is
    (a relative one would depend on the working directory)."""
    if contact is None:
        return "None"
    try:
        if os.path.isabs(contact) and os.path.exists(contact):
            return os.path.realpath(contact)
    except (OSError, ValueError):  # a NUL in it, or a name too long: not a path
        pass
    return contact


def _described(session: object) -> str:
    """A job session as an error names it: its name, where it lives and its backend."""
    if isinstance(session, _Session) and hasattr(session, "contact"):
        return (
            f"job session {session.name!r} (contact {session.contact!r}, "
            f"backend {session._backend_name!r})"
        )
    return repr(session)


def _no_auth(auth: object) -> None:
    """Grid Engine's binding takes ``auth`` (a Sudo) on many calls and acts as the calling
    user when it is false (``if auth:``): None, ``{}``. Those are taken; anything else
    raises UnsupportedOperationException."""
    if auth:
        raise UnsupportedOperationException(
            f"auth: jobs run as the calling user only, got {auth!r}; run the script as the "
            f"user the jobs belong to"
        )
