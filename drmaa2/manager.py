"""The session-manager functions of DRMAA2: create, open, list and destroy sessions, the
names and versions of the DRMS and of this implementation, capabilities, event notification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from drmaa2.backend import Backend, NotificationCallback
from drmaa2.enums import Capability
from drmaa2.errors import InvalidArgumentException, UnsupportedOperationException
from drmaa2.front import R, _backend_call, _name_arg, _new_session_name
from drmaa2.monitoring import MonitoringSession
from drmaa2.plugins import registry
from drmaa2.types import Version

if TYPE_CHECKING:
    from drmaa2.session import JobSession
    from drmaa2.uge import ReservationSession

__all__ = [
    "create_job_session",
    "create_reservation_session",
    "destroy_job_session",
    "destroy_reservation_session",
    "drmaa_supports",
    "get_drmaa_name",
    "get_drmaa_version",
    "get_drms_name",
    "get_drms_version",
    "get_job_session_names",
    "get_reservation_session_names",
    "open_job_session",
    "open_monitoring_session",
    "open_reservation_session",
    "register_event_notification",
    "supports",
    "unregister_event_notification",
]


def _with_backend(backend: str | None, operation: str, call: Callable[[Backend], R]) -> R:
    backend_name, impl = registry.get(backend)
    return _backend_call(backend_name, operation, lambda: call(impl))


def create_job_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> JobSession:
    """Create a persistent job session (a generated name if ``name`` is None).

    InvalidArgumentException if a session of that name exists, or if the name holds ``@``.
    """
    from drmaa2.session import JobSession  # session imports this module

    _new_session_name("name", name)
    backend_name, impl = registry.get(backend)
    session = _backend_call(
        backend_name, "create_job_session", lambda: impl.create_job_session(name, contact)
    )
    return JobSession._wrap(backend_name, impl, session)


def open_job_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> JobSession:
    """Open an existing job session; InvalidArgumentException if there is none by that name."""
    from drmaa2.session import JobSession  # session imports this module

    _name_arg("name", name, optional=False)
    backend_name, impl = registry.get(backend)
    session = _backend_call(
        backend_name, "open_job_session", lambda: impl.open_job_session(name, contact)
    )
    return JobSession._wrap(backend_name, impl, session)


def destroy_job_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> None:
    """Forget a job session and its jobs' records; running jobs are not killed."""
    _name_arg("name", name, optional=False)
    _with_backend(backend, "destroy_job_session", lambda b: b.destroy_job_session(name, contact))


def get_job_session_names(contact: str | None = None, *, backend: str | None = None) -> list[str]:
    """Names of the existing job sessions."""
    return _with_backend(backend, "get_job_session_names", lambda b: b.job_session_names(contact))


def open_monitoring_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> MonitoringSession:
    """Open a monitoring session."""
    return MonitoringSession(name, contact, backend=backend)


def _no_reservations(backend: str | None) -> UnsupportedOperationException:
    backend_name, _ = registry.get(backend)
    return UnsupportedOperationException(
        f"backend {backend_name!r} does not support advance reservations"
    )


def create_reservation_session(
    name: str | None = None, contact: str | None = None, *, backend: str | None = None
) -> ReservationSession:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def open_reservation_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> ReservationSession:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def destroy_reservation_session(
    name: str, contact: str | None = None, *, backend: str | None = None
) -> None:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def get_reservation_session_names(
    contact: str | None = None, *, backend: str | None = None
) -> list[str]:
    """Advance reservations: UnsupportedOperationException (no backend offers them yet)."""
    raise _no_reservations(backend)


def get_drms_name(*, backend: str | None = None) -> str:
    """The name of the resource manager behind the backend."""
    return _with_backend(backend, "get_drms_name", lambda b: b.drms_name())


def get_drms_version(*, backend: str | None = None) -> Version:
    """The version of the resource manager behind the backend."""
    return _with_backend(backend, "get_drms_version", lambda b: b.drms_version())


def get_drmaa_name() -> str:
    """The name of this DRMAA implementation."""
    return "drmaa2-ostracker"


def get_drmaa_version() -> Version:
    """The DRMAA version implemented: 2.0."""
    return Version(major="2", minor="0")


def supports(capability: Capability, *, backend: str | None = None) -> bool:
    """Whether the backend offers an optional DRMAA2 capability (a :class:`Capability`, its
    name or its int code)."""
    checked = _capability(capability)
    return _with_backend(backend, "supports", lambda b: b.supports(checked))


def _capability(value: object) -> Capability:
    if isinstance(value, Capability):
        return value
    try:
        if isinstance(value, str):
            return Capability[value]
        if isinstance(value, int) and not isinstance(value, bool):
            return Capability(value)
    except (KeyError, ValueError):
        pass
    raise InvalidArgumentException(
        f"capability: expected a drmaa2.Capability, its name or its int code, got {value!r} "
        f"(one of: {', '.join(member.name for member in Capability)})"
    )


drmaa_supports = supports


def register_event_notification(
    callback: NotificationCallback | None, *, backend: str | None = None
) -> None:
    """Call ``callback(notification)`` on every job state change of the backend.

    The callback runs in a thread of the backend; it should return quickly and must not
    raise (an exception is logged and ignored). ``None`` stops the notifications.
    UnsupportedOperationException if the backend lacks Capability.CALLBACK.
    """
    if callback is not None and not callable(callback):
        raise InvalidArgumentException(f"callback: expected a callable, got {callback!r}")
    backend_name, impl = registry.get(backend)
    if not _backend_call(backend_name, "supports", lambda: impl.supports(Capability.CALLBACK)):
        raise UnsupportedOperationException(
            f"backend {backend_name!r} does not support event notification"
        )
    _backend_call(
        backend_name,
        "register_event_notification",
        lambda: impl.register_event_notification(callback),
    )


def unregister_event_notification(*, backend: str | None = None) -> None:
    """Stop the calls of :func:`register_event_notification` (the same as registering None)."""
    register_event_notification(None, backend=backend)
