"""Grid Engine's binding's module of exceptions, under its name, so that
``from drmaa2.drmaa2_exceptions import InvalidArgument`` runs here too.

Every class is defined in :mod:`drmaa2.errors`; this module only names them again, by the
binding's names. ``TimeoutError`` is an attribute but not exported by ``import *``: it would
shadow the builtin, which catches it anyway.
"""

from __future__ import annotations

from drmaa2.errors import (
    AuthorizationError,
    DeniedByDrms,
    Drmaa2Exception,
    DrmCommunicationError,
    ImplementationSpecificError,
    InternalError,
    InvalidArgument,
    InvalidSession,
    InvalidState,
    ResourceNotAvailable,
    SessionManagementError,
    TryLaterError,
    UnsupportedAttribute,
    UnsupportedOperation,
)
from drmaa2.errors import TimeoutError as TimeoutError  # noqa: A004 - attribute, not in __all__

__all__ = [
    "AuthorizationError",
    "DeniedByDrms",
    "DrmCommunicationError",
    "Drmaa2Exception",
    "ImplementationSpecificError",
    "InternalError",
    "InvalidArgument",
    "InvalidSession",
    "InvalidState",
    "ResourceNotAvailable",
    "SessionManagementError",
    "TryLaterError",
    "UnsupportedAttribute",
    "UnsupportedOperation",
]
