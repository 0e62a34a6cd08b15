"""The DRMAA2 exception hierarchy.

Every exception carries ``error_code`` (a :class:`~drmaa2.enums.StatusCode`). UGE's class
names are offered as aliases so code written for the ``uge-drmaa2`` binding runs unchanged,
and so are its constructors: ``Drmaa2Exception(error="", error_code=...)``,
``InvalidArgument(error="")``. Its AuthorizationError, which DRMAA2 lacks, is a subclass of
DeniedByDrmsException.
"""

from __future__ import annotations

import builtins
from typing import Any

from drmaa2.enums import StatusCode

__all__ = [
    "AuthorizationError",
    "DeniedByDrms",
    "DeniedByDrmsException",
    "DrmCommunicationError",
    "DrmCommunicationException",
    "Drmaa2Exception",
    "ImplementationSpecificError",
    "ImplementationSpecificException",
    "InternalError",
    "InternalException",
    "InvalidArgument",
    "InvalidArgumentException",
    "InvalidSession",
    "InvalidSessionException",
    "InvalidState",
    "InvalidStateException",
    "OutOfResourceException",
    "ResourceNotAvailable",
    "SessionManagementError",
    "SessionManagementException",
    "TimeoutException",
    "TryLaterError",
    "TryLaterException",
    "UnsupportedAttribute",
    "UnsupportedAttributeException",
    "UnsupportedOperation",
    "UnsupportedOperationException",
]


class Drmaa2Exception(Exception):
    """Base class of every DRMAA2 error: ``Drmaa2Exception(error="", error_code=None)``.

    ``error`` is the message. ``error_code`` (a StatusCode or its int code) is the class's
    when not given: UNSET_ERROR for this base class, as in Grid Engine's binding.
    """

    error_code: StatusCode = StatusCode.UNSET_ERROR

    def __init__(self, error: Any = "", error_code: StatusCode | int | None = None) -> None:
        super().__init__(error)
        # Kept on the instance, so that a pickled copy keeps a code given here.
        self.error_code = type(self).error_code if error_code is None else _status(error_code)


def _status(code: object) -> StatusCode:
    if isinstance(code, int) and not isinstance(code, bool):
        try:
            return StatusCode(code)
        except ValueError:
            pass
    raise InvalidArgumentException(
        f"error_code: expected a drmaa2.StatusCode or its int code, got {code!r}"
    )


class DeniedByDrmsException(Drmaa2Exception):
    """The resource manager refused the request."""

    error_code = StatusCode.DENIED_BY_DRMS


class AuthorizationError(DeniedByDrmsException):
    """The resource manager refused the request because the user may not make it (Grid
    Engine's name; a kind of DeniedByDrmsException, which catches it too).

    Its ``error_code`` is Grid Engine's AUTHORIZATION, which DRMAA2 lacks. The backends of
    this distribution raise DeniedByDrmsException for their refusals, never this class.
    """

    error_code = StatusCode.AUTHORIZATION


class DrmCommunicationException(Drmaa2Exception):
    """The resource manager could not be reached."""

    error_code = StatusCode.DRM_COMMUNICATION


class TryLaterException(Drmaa2Exception):
    """The resource manager is busy; the same call may succeed later."""

    error_code = StatusCode.TRY_LATER


class SessionManagementException(Drmaa2Exception):
    """A session could not be created, opened or destroyed."""

    error_code = StatusCode.SESSION_MANAGEMENT


class TimeoutException(Drmaa2Exception, builtins.TimeoutError):
    """A wait ran out of time (also a builtin ``TimeoutError``)."""

    error_code = StatusCode.TIMEOUT


class InternalException(Drmaa2Exception):
    """An unexpected failure inside the implementation."""

    error_code = StatusCode.INTERNAL


class InvalidArgumentException(Drmaa2Exception, ValueError):
    """An argument is not acceptable (also a ``ValueError``); the message names it."""

    error_code = StatusCode.INVALID_ARGUMENT


class InvalidSessionException(Drmaa2Exception):
    """The session is closed or no longer exists."""

    error_code = StatusCode.INVALID_SESSION


class InvalidStateException(Drmaa2Exception):
    """The job is not in a state that allows the operation."""

    error_code = StatusCode.INVALID_STATE


class OutOfResourceException(Drmaa2Exception):
    """The system ran out of a resource needed for the request."""

    error_code = StatusCode.OUT_OF_RESOURCE


class UnsupportedAttributeException(Drmaa2Exception):
    """A template attribute is set that this backend cannot honour."""

    error_code = StatusCode.UNSUPPORTED_ATTRIBUTE


class UnsupportedOperationException(Drmaa2Exception):
    """This backend (or this kind of session) does not offer the operation."""

    error_code = StatusCode.UNSUPPORTED_OPERATION


class ImplementationSpecificException(Drmaa2Exception):
    """A backend-specific failure that fits no other class."""

    error_code = StatusCode.IMPLEMENTATION_SPECIFIC


# UGE's drmaa2 binding names.
DeniedByDrms = DeniedByDrmsException
DrmCommunicationError = DrmCommunicationException
TryLaterError = TryLaterException
SessionManagementError = SessionManagementException
InternalError = InternalException
InvalidArgument = InvalidArgumentException
InvalidSession = InvalidSessionException
InvalidState = InvalidStateException
ResourceNotAvailable = OutOfResourceException
UnsupportedAttribute = UnsupportedAttributeException
UnsupportedOperation = UnsupportedOperationException
ImplementationSpecificError = ImplementationSpecificException
#: UGE's name for TimeoutException; not exported by ``import *`` (it would shadow the builtin).
TimeoutError = TimeoutException  # noqa: A001
