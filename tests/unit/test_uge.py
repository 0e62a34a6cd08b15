"""The names of Grid Engine's ``uge-drmaa2`` binding for what this library does not do
(drmaa2/uge.py): each can be imported and built as there; reservation operations raise
UnsupportedOperationException; the managers load no C library and set the loggers' levels.

Written as that binding's own tests use them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import drmaa2
from drmaa2 import (
    Capability,
    Cpu,
    InvalidArgumentException,
    LibraryManager,
    ListType,
    LogManager,
    Os,
    Reservation,
    ReservationInfo,
    ReservationSession,
    ReservationTemplate,
    Sudo,
    UnsupportedOperationException,
)

#: Every name ``drmaa2/__init__.py`` of uge-drmaa2 8.9 binds.
BINDING_NAMES = [
    *("Bool", "Capability", "Cpu", "Event", "JobState", "ListType", "Os", "ResourceLimit"),
    *("StatusCode", "Time", "Drmaa2Exception", "DeniedByDrms", "DrmCommunicationError"),
    *("TryLaterError", "SessionManagementError", "TimeoutError", "InternalError"),
    *("InvalidArgument", "InvalidSession", "InvalidState", "ResourceNotAvailable"),
    *("UnsupportedAttribute", "UnsupportedOperation", "ImplementationSpecificError"),
    *("AuthorizationError", "LibraryManager", "LogManager", "JobSession", "JobInfo", "JobArray"),
    *("JobTemplate", "Job", "ReservationSession", "ReservationTemplate", "ReservationInfo"),
    *("Reservation", "Sudo", "Version", "MonitoringSession", "MachineInfo", "QueueInfo"),
    *("Notification", "get_drms_name", "get_drmaa_name", "drmaa_supports", "get_drms_version"),
    *("get_drmaa_version", "get_job_session_names", "get_reservation_session_names"),
    "__version__",
]


@pytest.fixture(autouse=True)
def os_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The binding has one DRMS; here the default backend is ``os``, whatever else is installed."""
    monkeypatch.setenv("DRMAA2_BACKEND", "os")


@pytest.mark.parametrize("name", BINDING_NAMES)
def test_every_name_of_the_binding_is_importable(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from drmaa2 import {name}", namespace)
    assert namespace[name] is getattr(drmaa2, name)
    assert name in drmaa2.__all__ or name in ("TimeoutError", "__version__")


# -- reservations ---------------------------------------------------------------------------


def test_a_reservation_session_cannot_be_made() -> None:
    with pytest.raises(UnsupportedOperationException, match=r"backend 'os'.*reservations"):
        ReservationSession("rs-01")
    with pytest.raises(UnsupportedOperationException):
        ReservationSession(session_dict={"name": "rs-01"}, auth=Sudo(username="someone"))
    with pytest.raises(UnsupportedOperationException):
        ReservationSession.list_session_names()
    with pytest.raises(UnsupportedOperationException):
        ReservationSession.destroy_by_name("rs-01", auth={"username": "someone"})
    with pytest.raises(UnsupportedOperationException):
        drmaa2.get_reservation_session_names()


def test_a_reservation_is_data_and_every_operation_is_unsupported() -> None:
    reservation = Reservation("7", "rs-01")
    assert (reservation.id, reservation.reservation_id, reservation.session_name) == (
        "7",
        "7",
        "rs-01",
    )
    assert repr(reservation) == "Reservation('7', 'rs-01')"
    for call in (reservation.get_template, reservation.get_info, reservation.terminate):
        with pytest.raises(UnsupportedOperationException, match="reservation '7'"):
            call()
    with pytest.raises(InvalidArgumentException, match="session_name: expected a str"):
        Reservation("7", None)  # type: ignore[arg-type]


def test_reservation_template_attributes() -> None:
    start = datetime.now()
    rt = ReservationTemplate({"reservation_name": "res-01", "users_acl": ["user1", "user2"]})
    assert rt.reservation_name == "res-01" and rt.users_acl == ["user1", "user2"]
    rt.min_slots = 2
    rt.max_slots = 4
    rt.start_time = start
    rt.end_time = start + timedelta(hours=24)
    rt.duration = 100  # type: ignore[assignment]
    rt.machine_os = 3  # type: ignore[assignment]
    rt.machine_arch = 8  # type: ignore[assignment]
    rt.candidate_machines = ["a", "b"]
    rt.min_phys_memory = 1024
    rt.job_category = "big"
    assert rt.start_time == start.replace(tzinfo=timezone.utc)  # naive: read as UTC
    assert rt.duration == timedelta(seconds=100)
    assert rt.machine_os == Os(3).name and rt.machine_arch == Cpu(8).name
    assert ReservationTemplate.from_dict(rt.to_dict()) == rt
    assert ReservationTemplate(template={"duration": 60}).duration == timedelta(minutes=1)
    with pytest.raises(InvalidArgumentException, match="min_slots"):
        rt.min_slots = -1
    with pytest.raises(InvalidArgumentException, match="unknown key 'reservation'"):
        ReservationTemplate({"reservation": "res-01"})


def test_reservation_info_attributes() -> None:
    ri = ReservationInfo({"reservation_name": "sv-01"})
    ri.reserved_slots = 3
    ri.reservation_id = "12"
    ri.reserved_machines = ["n1"]
    ri.users_acl = ["alice"]
    ri.reserved_start_time = datetime(2030, 1, 1, 12)
    ri.reserved_end_time = datetime(2030, 1, 2, 12, tzinfo=timezone.utc)
    assert ri.reserved_start_time == datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
    assert ReservationInfo(reservation_info=ri.to_dict()) == ri
    assert ReservationInfo.from_json(ri.to_json()) == ri


def test_reservation_types_have_no_implementation_specific_keys() -> None:
    assert ReservationTemplate.get_implementation_specific_keys() == []
    assert ReservationInfo.get_implementation_specific_keys() == []
    with pytest.raises(InvalidArgumentException, match="'uge_rt_native'"):
        ReservationTemplate().set_impl_spec_key_value("uge_rt_native", "-l h=n1")
    described = drmaa2.describe_attribute(ReservationInfo(), "reserved_slots")
    assert described == "ReservationInfo.reserved_slots: a non-negative int"


# -- Sudo and ListType ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("username", "alice"), ("groupname", "g"), ("uid", 1000), ("gid", 100)]
)
def test_sudo_attributes_as_in_the_binding(field: str, value: Any) -> None:
    s = Sudo()
    setattr(s, field, value)
    assert getattr(s, field) == value
    assert getattr(Sudo(**{field: value}), field) == value
    assert getattr(Sudo(sudo_dict={field: value}), field) == value
    assert getattr(Sudo({field: value}), field) == value


def test_sudo_checks_its_values() -> None:
    assert Sudo("alice", "staff", 1000, 100) == Sudo(
        sudo_dict={"username": "alice", "groupname": "staff", "uid": 1000, "gid": 100}
    )
    with pytest.raises(InvalidArgumentException, match=r"Sudo\.uid"):
        Sudo(uid=-1)
    with pytest.raises(InvalidArgumentException, match="'username' is given both"):
        Sudo(username="a", sudo_dict={"username": "b"})
    with pytest.raises(InvalidArgumentException, match="unknown key 'user'"):
        Sudo({"user": "alice"})


def test_list_type_has_the_c_bindings_codes() -> None:
    assert [(m.name, int(m)) for m in ListType] == [
        ("UNSET_LISTTYPE", -1),
        ("STRINGLIST", 0),
        ("JOBLIST", 1),
        ("QUEUEINFOLIST", 2),
        ("MACHINEINFOLIST", 3),
        ("SLOTINFOLIST", 4),
        ("RESERVATIONLIST", 5),
    ]


# -- LibraryManager ---------------------------------------------------------------------------


def test_library_manager_answers_for_the_backend() -> None:
    lm = LibraryManager.get_instance()
    assert lm is LibraryManager() is LibraryManager.get_instance()
    assert lm.get_drms_name() == drmaa2.get_drms_name() != ""
    assert lm.get_drmaa_name() == drmaa2.get_drmaa_name()
    assert [lm.drmaa_supports(c) for c in Capability] == [drmaa2.supports(c) for c in Capability]


def test_library_manager_says_there_is_no_c_library() -> None:
    with pytest.raises(UnsupportedOperationException, match=r"pure Python.*no DRMAA2 C library"):
        LibraryManager.get_instance().get_drmaa2_library()


# -- LogManager -------------------------------------------------------------------------------

_LOGGERS = ("drmaa2", "drmaa2_ostracker", "drmaa2_slurm")


@pytest.fixture
def levels() -> Iterator[None]:
    """The library loggers' levels and handlers, put back after the test."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in _LOGGERS]
    handlers = [(logger, list(logger.handlers)) for logger, _ in saved]
    yield
    for logger, level in saved:
        logger.setLevel(level)
    for logger, kept in handlers:
        logger.handlers[:] = kept


@pytest.mark.usefixtures("levels")
def test_log_manager_sets_the_level_of_the_library_loggers() -> None:
    manager = LogManager.get_instance()
    assert manager is LogManager()
    manager.configure("debug")
    assert [logging.getLogger(n).level for n in _LOGGERS] == [logging.DEBUG] * 3
    manager.configure(logging.ERROR)
    assert logging.getLogger("drmaa2").getEffectiveLevel() == logging.ERROR
    assert logging.getLogger().level != logging.ERROR  # never the root logger


@pytest.mark.usefixtures("levels")
def test_log_manager_refuses_an_unknown_level(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentException, match=r"LogManager level.*DEBUG.*'LOUD'"):
        LogManager.get_instance().configure("LOUD")
    monkeypatch.setenv("DRMAA2_LOG_LEVEL", "LOUD")
    with pytest.raises(InvalidArgumentException, match=r"\$DRMAA2_LOG_LEVEL"):
        LogManager.get_instance().configure()


@pytest.mark.usefixtures("levels")
def test_log_manager_without_a_level_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRMAA2_LOG_LEVEL", raising=False)
    before = logging.getLogger("drmaa2").level
    LogManager.get_instance().configure()
    assert logging.getLogger("drmaa2").level == before


def test_log_manager_loggers_are_below_drmaa2() -> None:
    assert LogManager.get_logger("JobSession").name == "drmaa2.JobSession"
    assert LogManager.get_logger().name == "drmaa2"
    assert LogManager.get_logger("drmaa2.session").name == "drmaa2.session"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DRMAA2_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


_LOG_SOMETHING = """
import logging, drmaa2
assert logging.getLogger("drmaa2").level == logging.NOTSET  # importing configures nothing
drmaa2.LogManager.get_instance()
drmaa2.LogManager.get_logger("mine").debug("seen by drmaa2")
logging.getLogger("drmaa2_ostracker.plugin").debug("seen by the backend")
"""


def test_the_first_log_manager_reads_drmaa2_log_level_and_shows_records_on_stderr() -> None:
    shown = _python(_LOG_SOMETHING, DRMAA2_LOG_LEVEL="DEBUG").stderr
    assert "DEBUG drmaa2.mine: seen by drmaa2" in shown
    assert "DEBUG drmaa2_ostracker.plugin: seen by the backend" in shown
    assert _python(_LOG_SOMETHING).stderr == ""
