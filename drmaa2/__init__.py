"""drmaa2: a pure-Python DRMAA2 session layer with pluggable backends.

Backends are pluggy plugins registered in the entry-point group ``drmaa2`` (the ``os`` backend
of this distribution runs jobs as local processes). A minimal job::

    import drmaa2
    with drmaa2.JobSession() as session:
        job = session.run_job({"remote_command": "/bin/echo", "args": ["hello"]})
        job.wait_terminated()
        print(job.get_info().exit_status)
"""

from __future__ import annotations

from drmaa2 import errors as _errors
from drmaa2 import session as _session
from drmaa2.backend import (
    Backend,
    BackendSpec,
    ExtensionKey,
    JobSessionBackend,
    MonitoringSessionBackend,
)
from drmaa2.compat import describe_attribute
from drmaa2.enums import (
    HOME_DIR,
    INFINITE_TIME,
    NOW,
    PARAMETRIC_INDEX,
    UNSET_TIME,
    WORKING_DIR,
    ZERO_TIME,
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
from drmaa2.errors import *  # noqa: F403
from drmaa2.errors import TimeoutError  # noqa: A004, F401 - attribute, not in __all__
from drmaa2.filter import job_matches
from drmaa2.manager import unregister_event_notification
from drmaa2.plugins import hookimpl, registry
from drmaa2.session import *  # noqa: F403 - the session API, as listed in its __all__
from drmaa2.types import JobInfo, JobTemplate, MachineInfo, Notification, QueueInfo, Version
from drmaa2.uge import (
    LibraryManager,
    ListType,
    LogManager,
    Reservation,
    ReservationInfo,
    ReservationSession,
    ReservationTemplate,
    Sudo,
)

__version__ = "0.2.0"


def backends() -> list[str]:
    """The names of the installed DRMAA2 backends, sorted."""
    return registry.names()


__all__ = [
    # discovery
    "Backend",
    "BackendSpec",
    "ExtensionKey",
    "JobSessionBackend",
    "MonitoringSessionBackend",
    "backends",
    "hookimpl",
    # enums and constants
    "HOME_DIR",
    "INFINITE_TIME",
    "NOW",
    "PARAMETRIC_INDEX",
    "UNSET_TIME",
    "WORKING_DIR",
    "ZERO_TIME",
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
    # data types
    "JobInfo",
    "JobTemplate",
    "MachineInfo",
    "Notification",
    "QueueInfo",
    "Version",
    "describe_attribute",
    "job_matches",
    # sessions
    *_session.__all__,
    "unregister_event_notification",
    # Grid Engine's binding: reservations (data; every operation unsupported), sudo, managers
    "LibraryManager",
    "LogManager",
    "Reservation",
    "ReservationInfo",
    "ReservationSession",
    "ReservationTemplate",
    "Sudo",
    # errors (TimeoutError is an attribute only: exporting it would shadow the builtin)
    *_errors.__all__,
]
del _errors

# Grid Engine's binding's modules, under their names: ``import drmaa2`` makes
# ``drmaa2.drmaa2_constants`` and ``drmaa2.drmaa2_exceptions`` attributes as the binding does,
# and ``from drmaa2.job_template import JobTemplate`` (one class a module there) runs too.
from drmaa2 import drmaa2_constants as drmaa2_constants  # noqa: E402
from drmaa2 import drmaa2_exceptions as drmaa2_exceptions  # noqa: E402

#: The binding's module of each class (or function) it defines one a module.
_BINDING_MODULES = {
    "job": ("Job",),
    "job_array": ("JobArray",),
    "job_info": ("JobInfo",),
    "job_session": ("JobSession",),
    "job_template": ("JobTemplate",),
    "library_manager": ("LibraryManager",),
    "log_manager": ("LogManager",),
    "machine_info": ("MachineInfo",),
    "monitoring_session": ("MonitoringSession",),
    "notification": ("Notification",),
    "queue_info": ("QueueInfo",),
    "reservation": ("Reservation",),
    "reservation_info": ("ReservationInfo",),
    "reservation_session": ("ReservationSession",),
    "reservation_template": ("ReservationTemplate",),
    "sudo": ("Sudo",),
    "version": ("Version",),
}


def _binding_module_aliases() -> None:
    import importlib.machinery
    import sys
    import types

    for module, names in _BINDING_MODULES.items():
        full = f"{__name__}.{module}"
        alias = types.ModuleType(full, f"Grid Engine's binding's {full}: {', '.join(names)}.")
        alias.__all__ = list(names)  # type: ignore[attr-defined]
        alias.__spec__ = importlib.machinery.ModuleSpec(full, None)
        for name in names:
            setattr(alias, name, globals()[name])
        sys.modules.setdefault(full, alias)
        globals().setdefault(module, sys.modules[full])


_binding_module_aliases()
