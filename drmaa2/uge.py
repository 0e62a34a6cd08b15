"""Names of Grid Engine's ``uge-drmaa2`` binding for what this library does not do, so that
code importing them runs and fails only where it asks for what is not there.

- Advance reservations: :class:`ReservationTemplate` and :class:`ReservationInfo` are data
  types like JobTemplate and JobInfo, and a :class:`Reservation` can be built by id; every
  reservation *operation* (building a :class:`ReservationSession`, ``Reservation.terminate()``,
  …) raises UnsupportedOperationException, as the session-manager reservation functions do.
- :class:`Sudo`, the binding's ``auth`` argument, is a data type: no call here acts as another
  user.
- :class:`ListType`, the kinds of list of DRMAA2's C binding.
- :class:`LibraryManager` loads no C library (this one is pure Python) and answers the name and
  capability questions for the backend; :class:`LogManager` sets the level of this library's
  loggers.
"""

from __future__ import annotations

import enum
import importlib.metadata
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn, TypeVar

from drmaa2 import manager
from drmaa2.compat import ImplementationSpecific
from drmaa2.enums import Capability, Cpu, Os
from drmaa2.errors import InvalidArgumentException, UnsupportedOperationException
from drmaa2.fields import _COUNT, _CPU, _DATETIME, _DURATION, _OS, _STR, _STR_DICT, _STR_LIST
from drmaa2.plugins import ENTRY_POINT_GROUP
from drmaa2.record import _Record, _validated

__all__ = [
    "LibraryManager",
    "ListType",
    "LogManager",
    "Reservation",
    "ReservationInfo",
    "ReservationSession",
    "ReservationTemplate",
    "Sudo",
]

_S = TypeVar("_S", bound="_Singleton")


class ListType(enum.IntEnum):
    """The kinds of list of DRMAA2's C binding, with its codes. Grid Engine's binding passes
    them to its C library; here no call takes one."""

    UNSET_LISTTYPE = -1
    STRINGLIST = 0
    JOBLIST = 1
    QUEUEINFOLIST = 2
    MACHINEINFOLIST = 3
    SLOTINFOLIST = 4
    RESERVATIONLIST = 5


@_validated
@dataclass(slots=True)
class Sudo(_Record):
    """A user and group to act as, by name or id: Grid Engine's ``auth`` argument.

    Built as there, ``Sudo(username="alice")`` or ``Sudo(sudo_dict={"uid": 1000})``, or from a
    mapping as first argument like the other data types. No call of this library takes one: a
    job runs as the user who submits it.
    """

    username: str | None = field(default=None, metadata=_STR)
    groupname: str | None = field(default=None, metadata=_STR)
    uid: int | None = field(default=None, metadata=_COUNT)
    gid: int | None = field(default=None, metadata=_COUNT)

    def __init__(
        self,
        username: str | Mapping[str, Any] | None = None,
        groupname: str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        sudo_dict: Mapping[str, Any] | None = None,
    ) -> None:
        if sudo_dict is None and isinstance(username, Mapping):
            username, sudo_dict = None, username
        given = {"username": username, "groupname": groupname, "uid": uid, "gid": gid}
        self._fill(given, sudo_dict)


@_validated
@dataclass(slots=True)
class ReservationTemplate(_Record, ImplementationSpecific):
    """What an advance reservation asks for, built like a JobTemplate:
    ``ReservationTemplate({"reservation_name": "r1", "duration": 3600})``.

    ``duration`` is a timedelta (set as one or as seconds), like JobInfo.wallclock_time. No
    backend offers reservations, so no call takes a ReservationTemplate.
    """

    template: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    reservation_name: str | None = field(default=None, metadata=_STR)
    start_time: datetime | None = field(default=None, metadata=_DATETIME)
    end_time: datetime | None = field(default=None, metadata=_DATETIME)
    duration: timedelta | None = field(default=None, metadata=_DURATION)
    min_slots: int | None = field(default=None, metadata=_COUNT)
    max_slots: int | None = field(default=None, metadata=_COUNT)
    job_category: str | None = field(default=None, metadata=_STR)
    users_acl: list[str] | None = field(default=None, metadata=_STR_LIST)
    candidate_machines: list[str] | None = field(default=None, metadata=_STR_LIST)
    min_phys_memory: int | None = field(default=None, metadata=_COUNT)
    machine_os: Os | None = field(default=None, metadata=_OS)
    machine_arch: Cpu | None = field(default=None, metadata=_CPU)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)


@_validated
@dataclass(slots=True)
class ReservationInfo(_Record, ImplementationSpecific):
    """What is known about an advance reservation, built like a JobInfo:
    ``ReservationInfo({"reservation_name": "r1"})``. No backend offers reservations, so no call
    returns one."""

    reservation_info: InitVar[Mapping[str, Any] | None] = None
    _: KW_ONLY

    reservation_id: str | None = field(default=None, metadata=_STR)
    reservation_name: str | None = field(default=None, metadata=_STR)
    reserved_start_time: datetime | None = field(default=None, metadata=_DATETIME)
    reserved_end_time: datetime | None = field(default=None, metadata=_DATETIME)
    users_acl: list[str] | None = field(default=None, metadata=_STR_LIST)
    reserved_slots: int | None = field(default=None, metadata=_COUNT)
    reserved_machines: list[str] | None = field(default=None, metadata=_STR_LIST)
    implementation_specific: dict[str, str] = field(default_factory=dict, metadata=_STR_DICT)


class Reservation:
    """An advance reservation of a reservation session, by id: ``Reservation("7", "rs")``.

    Every operation raises UnsupportedOperationException: no backend offers reservations.
    """

    __slots__ = ("_id", "_session_name")

    def __init__(self, reservation_id: str, session_name: str) -> None:
        for name, value in (("reservation_id", reservation_id), ("session_name", session_name)):
            if not isinstance(value, str):
                raise InvalidArgumentException(f"Reservation {name}: expected a str, got {value!r}")
        self._id = reservation_id
        self._session_name = session_name

    @property
    def id(self) -> str:
        """The reservation's id."""
        return self._id

    @property
    def reservation_id(self) -> str:
        """Alias of :attr:`id`."""
        return self._id

    @property
    def session_name(self) -> str:
        """The name of the reservation session it belongs to."""
        return self._session_name

    def _unsupported(self, operation: str) -> UnsupportedOperationException:
        return UnsupportedOperationException(
            f"{operation} of reservation {self._id!r} (session {self._session_name!r}): no "
            "drmaa2 backend supports advance reservations"
        )

    def get_template(self) -> ReservationTemplate:
        """The reservation's template: UnsupportedOperationException."""
        raise self._unsupported("get_template")

    def get_info(self) -> ReservationInfo:
        """What is known about the reservation: UnsupportedOperationException."""
        raise self._unsupported("get_info")

    def terminate(self, auth: Sudo | Mapping[str, Any] | None = None) -> None:
        """End the reservation: UnsupportedOperationException."""
        raise self._unsupported("terminate")

    def __repr__(self) -> str:
        return f"Reservation({self._id!r}, {self._session_name!r})"


class ReservationSession:
    """A session of advance reservations: ``ReservationSession(name)`` creates or opens one in
    Grid Engine's binding.

    No backend offers reservations: building one raises UnsupportedOperationException naming
    the backend, as ``drmaa2.create_reservation_session`` does, and so do the classmethods.
    The binding's other arguments are taken, so that a call written for it raises that, not
    TypeError.
    """

    def __init__(
        self,
        name: str | None = None,
        contact: str | None = None,
        destroy_on_exit: bool | None = None,
        check_for_existing_session: bool = True,
        session_dict: Mapping[str, Any] | None = None,
        auth: Sudo | Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
    ) -> None:
        raise manager._no_reservations(backend)

    @classmethod
    def list_session_names(
        cls, contact: str | None = None, backend: str | None = None
    ) -> list[str]:
        """Names of the reservation sessions (``drmaa2.get_reservation_session_names``):
        UnsupportedOperationException."""
        return manager.get_reservation_session_names(contact, backend=backend)

    @classmethod
    def destroy_by_name(
        cls,
        name: str,
        contact: str | None = None,
        backend: str | None = None,
        *,
        auth: Sudo | Mapping[str, Any] | None = None,
    ) -> None:
        """Destroy a reservation session (``drmaa2.destroy_reservation_session``):
        UnsupportedOperationException."""
        manager.destroy_reservation_session(name, contact, backend=backend)


class _Singleton:
    """One instance per class, as the binding's managers have: ``X() is X.get_instance()``."""

    __slots__ = ()

    _instances: ClassVar[dict[type, Any]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __new__(cls: type[_S]) -> _S:
        with _Singleton._instances_lock:
            instance: _S | None = _Singleton._instances.get(cls)
            if instance is None:
                instance = _Singleton._instances[cls] = object.__new__(cls)
        return instance

    @classmethod
    def get_instance(cls: type[_S]) -> _S:
        """The one instance."""
        return cls()


class LibraryManager(_Singleton):
    """What Grid Engine's binding loads its C library ``libdrmaa2.so`` with. This library is
    pure Python and needs no C library: :meth:`get_drmaa2_library` raises saying so, and the
    name and capability calls answer for the backend, as the module functions do."""

    __slots__ = ()

    def get_drmaa2_library(self) -> NoReturn:
        """UnsupportedOperationException: there is no C library to hand out."""
        raise UnsupportedOperationException(
            "drmaa2 here is pure Python and loads no DRMAA2 C library (such as Grid Engine's "
            "libdrmaa2.so): call the drmaa2 functions and classes instead"
        )

    @classmethod
    def get_drms_name(cls, *, backend: str | None = None) -> str:
        """The name of the resource manager behind the backend (``drmaa2.get_drms_name``)."""
        return manager.get_drms_name(backend=backend)

    @classmethod
    def get_drmaa_name(cls) -> str:
        """The name of this DRMAA implementation (``drmaa2.get_drmaa_name``)."""
        return manager.get_drmaa_name()

    @classmethod
    def drmaa_supports(cls, capability: Capability, *, backend: str | None = None) -> bool:
        """Whether the backend offers a capability (``drmaa2.supports``)."""
        return manager.supports(capability, backend=backend)


def _library_loggers() -> list[logging.Logger]:
    """The ``drmaa2`` logger and those of the installed backends' packages (their entry
    points' top-level modules: ``drmaa2_ostracker``, …), which they log under."""
    names = {"drmaa2"}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        names.add(entry_point.module.partition(".")[0])
    return [logging.getLogger(name) for name in sorted(names)]


class LogManager(_Singleton):
    """The logging of this library, as Grid Engine's binding's LogManager:
    ``LogManager.get_instance().configure("DEBUG")``.

    :meth:`configure` sets the level of the ``drmaa2`` logger and of the installed backends'
    loggers (``drmaa2_ostracker``, ``drmaa2_slurm``, …), never the root logger's; where no
    handler would show their records, it adds one writing to stderr. The first LogManager
    built reads ``$DRMAA2_LOG_LEVEL``, as the binding does; importing drmaa2 does not.
    """

    __slots__ = ()

    #: The environment variable read by :meth:`configure` without a level.
    LOG_LEVEL_ENV_VAR: ClassVar[str] = "DRMAA2_LOG_LEVEL"
    #: The level names :meth:`configure` takes (in any case), and their levels.
    LOG_LEVEL_MAP: ClassVar[Mapping[str, int]] = MappingProxyType(
        {
            name: logging.getLevelName(name)
            for name in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
        }
    )
    #: The format of the stderr handler :meth:`configure` adds.
    LOG_MESSAGE_FORMAT: ClassVar[str] = "%(asctime)s %(levelname)s %(name)s: %(message)s"

    _handler: ClassVar[logging.Handler | None] = None
    _configure_lock: ClassVar[threading.Lock] = threading.Lock()

    def __new__(cls) -> LogManager:
        first = cls not in _Singleton._instances
        instance = super().__new__(cls)
        if first and os.environ.get(cls.LOG_LEVEL_ENV_VAR):
            instance.configure()
        return instance

    def configure(self, level: str | int | None = None) -> None:
        """Set the level of this library's loggers: a name of :data:`LOG_LEVEL_MAP` or a
        ``logging`` level number; None reads ``$DRMAA2_LOG_LEVEL``, and without it nothing
        changes. InvalidArgumentException for any other level."""
        resolved = self._resolve(level)
        if resolved is None:
            return
        with self._configure_lock:
            for logger in _library_loggers():
                logger.setLevel(resolved)
                if not logger.hasHandlers():
                    logger.addHandler(self._stderr_handler())

    def _resolve(self, level: object) -> int | None:
        given = "level"
        if level is None:
            level = os.environ.get(self.LOG_LEVEL_ENV_VAR) or None
            given = f"${self.LOG_LEVEL_ENV_VAR}"
        if level is None:
            return None
        if isinstance(level, str) and level.upper() in self.LOG_LEVEL_MAP:
            return self.LOG_LEVEL_MAP[level.upper()]
        if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
            return level
        raise InvalidArgumentException(
            f"LogManager {given}: expected a level name ({', '.join(self.LOG_LEVEL_MAP)}) or a "
            f"non-negative int, got {level!r}"
        )

    @classmethod
    def _stderr_handler(cls) -> logging.Handler:
        if cls._handler is None:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(cls.LOG_MESSAGE_FORMAT))
            cls._handler = handler
        return cls._handler

    @classmethod
    def get_logger(cls, name: str | None = None) -> logging.Logger:
        """The logger ``drmaa2.<name>`` (the ``drmaa2`` logger without a name): below the
        ``drmaa2`` logger, so that :meth:`configure` sets what it shows."""
        if name is None:
            return logging.getLogger("drmaa2")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentException(f"LogManager logger name: expected a str, got {name!r}")
        if name != "drmaa2" and not name.startswith("drmaa2."):
            name = f"drmaa2.{name}"
        return logging.getLogger(name)
