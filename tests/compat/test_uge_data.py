"""Code written for Grid Engine's binding (``uge-drmaa2``) about data types, enums, errors and
module paths runs here unchanged: ``x.from_dict(d)`` on an instance, ``create_from_dict``,
``implementation_specific`` that is always a dict (on Version and Notification too), the
binding's UNSET_* and extra enum members, its exception constructors, and its modules
``drmaa2.drmaa2_constants`` and ``drmaa2.drmaa2_exceptions``.
"""

from __future__ import annotations

import pickle
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import drmaa2
from drmaa2 import (
    Capability,
    Drmaa2Exception,
    InvalidArgumentException,
    JobInfo,
    JobSession,
    JobState,
    JobTemplate,
    MachineInfo,
    Notification,
    Os,
    QueueInfo,
    ReservationInfo,
    ReservationTemplate,
    StatusCode,
    Sudo,
    Version,
)
from drmaa2.filter import set_filter_fields
from tests.behaviour.conftest import wait_until
from tests.compat.conftest import TIMEOUT

#: Each data type: a mapping it can be built from, and a field with a value to set on it.
SAMPLES: dict[type[Any], tuple[dict[str, Any], str, Any]] = {
    JobTemplate: ({"remote_command": "/bin/true"}, "job_name", "n"),
    JobInfo: ({"job_id": "1"}, "exit_status", 3),
    MachineInfo: ({"name": "node1"}, "sockets", 2),
    QueueInfo: ({}, "name", "all.q"),
    ReservationTemplate: ({}, "reservation_name", "r1"),
    ReservationInfo: ({}, "reservation_id", "7"),
    Sudo: ({"username": "alice"}, "uid", 1000),
    Version: ({"major": "2", "minor": "0"}, "minor", "1"),
    Notification: ({"job_id": "1"}, "job_state", JobState.DONE),
}
DATA_TYPES = list(SAMPLES)
WITH_IMPLEMENTATION_SPECIFIC = [cls for cls in DATA_TYPES if cls is not Sudo]


def name_of(cls: type[Any]) -> str:
    return cls.__name__


# -- from_dict on an instance, create_from_dict -------------------------------------------------


def test_from_dict_on_an_instance_sets_the_given_fields_and_returns_none() -> None:
    jt = JobTemplate({"remote_command": "/bin/echo", "args": ["a"], "job_name": "old"})
    assert jt.from_dict({"args": ["b"], "submit_as_hold": "TRUE", "machine_os": 3}) is None
    assert jt.remote_command == "/bin/echo"  # not named: kept
    assert jt.job_name == "old"
    assert jt.args == ["b"]
    assert jt.submit_as_hold is True  # normalized as by assignment
    assert jt.machine_os is Os.LINUX
    jt.from_dict({"job_name": None})  # None unsets, as assigning None does
    assert jt.job_name is None


def test_machine_info_has_the_bindings_names_of_arch_os_and_os_version(state_dir: str) -> None:
    """The binding (and DRMAA2's machineArch, machineOS, machineOSVersion) names three of
    MachineInfo's fields otherwise: each name reads and sets the same field, as attribute and
    as mapping key; to_dict gives the contract's names."""
    with drmaa2.MonitoringSession("ms-names") as ms:
        (machine,) = ms.get_all_machines([socket.gethostname()])
    assert machine.machine_os is machine.os is Os.LINUX
    assert machine.machine_arch is machine.architecture is not None
    assert machine.os_version is not None
    assert machine.machine_os_version == machine.os_version
    built = MachineInfo({"name": "n", "machine_os": "LINUX", "machine_arch": "X64"})
    assert (built.os, built.architecture) == (Os.LINUX, drmaa2.Cpu.X64)
    built.machine_os_version = Version(major="6", minor="1")
    assert built.os_version == Version(major="6", minor="1")
    built.from_dict({"machine_os": "OTHER_OS"})
    assert built.os is Os.OTHER_OS
    assert MachineInfo.from_dict({"machine_arch": "X86"}).architecture is drmaa2.Cpu.X86
    assert {"architecture", "os", "os_version"} <= set(built.to_dict())
    assert "machine_os" not in built.to_dict()
    with pytest.raises(InvalidArgumentException, match="'machine_os' is another name of 'os'"):
        MachineInfo({"os": "LINUX", "machine_os": "LINUX"})
    with pytest.raises(InvalidArgumentException, match=r"MachineInfo\.os: expected"):
        built.machine_os = "Plan 9"
    assert built.os is Os.OTHER_OS


def test_from_dict_on_an_instance_refuses_as_assignment_does_and_changes_nothing() -> None:
    jt = JobTemplate(remote_command="/bin/true", job_name="keep")
    before = jt.copy()
    with pytest.raises(InvalidArgumentException, match=r"JobTemplate\.min_slots"):
        jt.from_dict({"job_name": "new", "min_slots": -1})
    with pytest.raises(
        InvalidArgumentException, match=r"unknown key 'arg' \(did you mean 'args'\?\)"
    ):
        jt.from_dict({"job_name": "new", "arg": ["x"]})
    with pytest.raises(InvalidArgumentException, match="expected a mapping"):
        jt.from_dict(["job_name", "new"])  # type: ignore[arg-type]
    assert jt == before
    version = Version("2", "0")
    with pytest.raises(InvalidArgumentException, match=r"Version\.major: a value is required"):
        version.from_dict({"minor": "1", "major": None})
    assert version == Version("2", "0")


@pytest.mark.parametrize("nothing", [None, {}])
def test_from_dict_on_an_instance_with_nothing_changes_nothing(nothing: Any) -> None:
    jt = JobTemplate(remote_command="/bin/true")
    jt.from_dict(nothing)
    assert jt == JobTemplate(remote_command="/bin/true")


@pytest.mark.parametrize("cls", DATA_TYPES, ids=name_of)
def test_from_dict_works_on_instances_and_classes_of_every_data_type(cls: Any) -> None:
    data, name, value = SAMPLES[cls]
    built = cls.from_dict(data)
    assert isinstance(built, cls)
    assert built.from_dict({name: value}) is None
    assert getattr(built, name) == value
    assert built == cls.from_dict({**data, name: value})


@pytest.mark.parametrize("cls", DATA_TYPES, ids=name_of)
def test_create_from_dict_builds_one_or_passes_one_through(cls: Any) -> None:
    data, name, value = SAMPLES[cls]
    created = cls.create_from_dict({**data, name: value})
    assert type(created) is cls
    assert created == cls.from_dict({**data, name: value})
    assert cls.create_from_dict(created) is created
    with pytest.raises(InvalidArgumentException, match="unknown key 'no_such_field'"):
        cls.create_from_dict({"no_such_field": 1})
    if cls is not Version:  # the only type with required fields
        assert cls.create_from_dict(None) == cls() == cls.create_from_dict({})


# -- implementation_specific ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", WITH_IMPLEMENTATION_SPECIFIC, ids=name_of)
def test_unset_implementation_specific_reads_as_an_empty_dict(cls: Any) -> None:
    data, _, _ = SAMPLES[cls]
    record = cls(data)
    assert record.implementation_specific == {}
    assert record.implementation_specific.get("pid") is None  # the binding's usage
    assert list(record.implementation_specific.items()) == []
    assert record.to_dict()["implementation_specific"] == {}
    assert cls.from_dict(record.to_dict()) == record
    assert cls.from_json(record.to_json()) == record
    assert record == cls.from_dict({**data, "implementation_specific": None})
    record.implementation_specific = {"k": "v"}
    assert record.get_impl_spec_key_value("k") == "v"
    record.implementation_specific = None
    assert record.implementation_specific == {}
    # Each record has its own dict.
    record.implementation_specific["mine"] = "1"
    assert cls(data).implementation_specific == {}


def test_an_empty_implementation_specific_does_not_clash_with_a_mapping() -> None:
    jt = JobTemplate({"implementation_specific": {"a": "b"}}, implementation_specific={})
    assert jt.implementation_specific == {"a": "b"}
    with pytest.raises(InvalidArgumentException, match="given both"):
        JobTemplate({"implementation_specific": {"a": "b"}}, implementation_specific={"c": "d"})


def test_an_unset_implementation_specific_filters_nothing() -> None:
    assert set_filter_fields(JobInfo()) == {}
    assert set_filter_fields(JobInfo(job_state="DONE")) == {"job_state": JobState.DONE}
    assert set_filter_fields(JobInfo(implementation_specific={"pid": "1"})) == {
        "implementation_specific": {"pid": "1"}
    }


def test_version_and_notification_carry_implementation_specific_values() -> None:
    version = Version("8", "6.0", {"uge_version_json": "{}"})
    assert version.implementation_specific == {"uge_version_json": "{}"}
    assert Version.from_dict(version.to_dict()) == version
    assert Version("8", "6.0") != version
    note = Notification("NEW_STATE", "1", "s", "DONE", {"k": "v"})
    assert note == Notification(notification={**note.to_dict()})
    assert note.implementation_specific == {"k": "v"}


def test_the_os_backend_gives_no_version_or_notification_keys(state_dir: str) -> None:
    assert Version.get_implementation_specific_keys() == []
    assert Notification.get_implementation_specific_keys() == []
    assert Version.get_implementation_specific_attrs() == {}
    assert Version.get_drms_version().implementation_specific == {}
    assert Version.get_drmaa_version().implementation_specific == {}


def test_a_template_filled_by_from_dict_on_the_instance_runs(
    js: JobSession, tmp_path: Path
) -> None:
    """The binding's pattern: build a template, then set more fields with ``from_dict``."""
    out = tmp_path / "out.txt"
    jt = JobTemplate({"remote_command": "/bin/echo", "args": ["hello"]})
    jt.from_dict({"output_path": str(out), "job_name": "echo"})
    job = js.run_job(jt)
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert (info.job_state, info.job_name, info.exit_status) == (JobState.DONE, "echo", 0)
    assert out.read_text() == "hello\n"
    assert isinstance(info.implementation_specific, dict)
    assert info.implementation_specific.get("pid")
    assert job.get_template().implementation_specific == {}


def test_notifications_have_an_implementation_specific_dict(js: JobSession) -> None:
    got: list[Notification] = []
    Notification.register_event_notification(got.append)
    try:
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)

        def done_seen() -> bool:
            return any(n.job_id == job.id and n.job_state == "DONE" for n in got)

        wait_until(done_seen, what="the DONE notification")
    finally:
        Notification.unregister_event_notification()
    assert [n.implementation_specific for n in got] == [{}] * len(got)


# -- enums ------------------------------------------------------------------------------------

BINDING_MEMBERS = [
    (JobState, "UNSET_JSTATE", -1),
    (JobState, "RUNNING_HELD", 9),
    (Capability, "UNSET_CAPABILITY", -1),
    (drmaa2.Cpu, "UNSET_CPU", -1),
    (Os, "UNSET_OS", -1),
    (drmaa2.Event, "UNSET_EVENT", -1),
    (drmaa2.ListType, "UNSET_LISTTYPE", -1),
    (StatusCode, "UNSET_ERROR", -1),
    (StatusCode, "AUTHORIZATION", 14),
    (StatusCode, "LASTERROR", 15),
]


@pytest.mark.parametrize(("kind", "name", "code"), BINDING_MEMBERS)
def test_the_bindings_enum_members(kind: Any, name: str, code: int) -> None:
    member = getattr(kind, name)
    assert int(member) == code
    assert kind(code) is member is kind[name]


def test_running_held_counts_as_started_and_unset_as_nothing() -> None:
    assert JobState.RUNNING_HELD.is_started and not JobState.RUNNING_HELD.is_terminal
    assert not JobState.UNSET_JSTATE.is_started and not JobState.UNSET_JSTATE.is_terminal
    info = JobInfo()
    info.job_state = JobState(9)  # the binding's test sets any JobState(0..9)
    assert info.job_state == "RUNNING_HELD"


def test_no_backend_supports_the_unset_capability(state_dir: str) -> None:
    assert drmaa2.drmaa_supports(Capability.UNSET_CAPABILITY) is False
    assert drmaa2.supports(-1) is False
    assert drmaa2.LibraryManager.get_instance().drmaa_supports(Capability.UNSET_CAPABILITY) is False
    supported = [c for c in Capability if drmaa2.drmaa_supports(c)]  # the binding's example
    assert supported == [
        Capability.CALLBACK,
        Capability.BULK_JOBS_MAXPARALLEL,
        Capability.JT_DEADLINE,
    ]


def test_a_filter_on_a_state_no_backend_reports_matches_no_job(js: JobSession) -> None:
    job = js.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    assert [j.id for j in js.get_jobs({"job_state": "DONE"})] == [job.id]
    assert [j.id for j in js.get_jobs(JobInfo())] == [job.id]
    for state in (JobState.UNSET_JSTATE, JobState.RUNNING_HELD):
        assert js.get_jobs({"job_state": state}) == []
        assert js.get_jobs(JobInfo(job_state=int(state))) == []


# -- exceptions ---------------------------------------------------------------------------------

BINDING_EXCEPTIONS = [
    ("DeniedByDrms", StatusCode.DENIED_BY_DRMS),
    ("DrmCommunicationError", StatusCode.DRM_COMMUNICATION),
    ("TryLaterError", StatusCode.TRY_LATER),
    ("SessionManagementError", StatusCode.SESSION_MANAGEMENT),
    ("TimeoutError", StatusCode.TIMEOUT),
    ("InternalError", StatusCode.INTERNAL),
    ("InvalidArgument", StatusCode.INVALID_ARGUMENT),
    ("InvalidSession", StatusCode.INVALID_SESSION),
    ("InvalidState", StatusCode.INVALID_STATE),
    ("ResourceNotAvailable", StatusCode.OUT_OF_RESOURCE),
    ("UnsupportedAttribute", StatusCode.UNSUPPORTED_ATTRIBUTE),
    ("UnsupportedOperation", StatusCode.UNSUPPORTED_OPERATION),
    ("ImplementationSpecificError", StatusCode.IMPLEMENTATION_SPECIFIC),
    ("AuthorizationError", StatusCode.AUTHORIZATION),
]


@pytest.mark.parametrize(("name", "code"), BINDING_EXCEPTIONS)
def test_exceptions_take_the_bindings_constructor_arguments(name: str, code: StatusCode) -> None:
    cls = getattr(drmaa2, name)
    for error in (cls(error="bad value"), cls("bad value")):
        assert str(error) == "bad value"
        assert error.error_code is code
    assert str(cls()) == ""
    assert cls().error_code is code


def test_the_base_exception_takes_a_message_and_a_code() -> None:
    for error in (
        Drmaa2Exception("m", StatusCode.INTERNAL),
        Drmaa2Exception(error="m", error_code=StatusCode.INTERNAL),
        Drmaa2Exception("m", 6),
    ):
        assert (str(error), error.error_code) == ("m", StatusCode.INTERNAL)
        assert error.error_code is StatusCode.INTERNAL
    assert Drmaa2Exception().error_code is StatusCode.UNSET_ERROR
    assert Drmaa2Exception("m").error_code is StatusCode.UNSET_ERROR
    with pytest.raises(InvalidArgumentException, match=r"error_code: .* got 99"):
        Drmaa2Exception("m", 99)


def test_an_exception_keeps_its_message_and_code_through_pickle() -> None:
    for error in (Drmaa2Exception("m", StatusCode.INTERNAL), drmaa2.InvalidArgument(error="x")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert (str(again), again.error_code) == (str(error), error.error_code)


# -- the binding's module paths ---------------------------------------------------------------


def test_the_bindings_constants_module() -> None:
    from drmaa2 import drmaa2_constants as constants

    assert (constants.UNSET_BOOL, constants.UNSET_ENUM, constants.UNSET_NUM) == (0, -1, -1)
    assert (constants.UNSET_PRIORITY, constants.UNSET_TIME) == (-99999, -3)
    epoch = constants.POSIX_EPOCH
    assert epoch == datetime(1970, 1, 1, tzinfo=timezone.utc)
    for name in ("Bool", "Capability", "Cpu", "Event", "JobState", "ListType", "Os"):
        assert getattr(constants, name) is getattr(drmaa2, name)
    for name in ("ResourceLimit", "StatusCode", "Time"):
        assert getattr(constants, name) is getattr(drmaa2, name)
    assert sorted(constants.__all__) == sorted(
        name for name in vars(constants) if not name.startswith("_") and name != "annotations"
    )


def test_the_bindings_exceptions_module() -> None:
    from drmaa2 import drmaa2_exceptions as exceptions

    for name, _ in BINDING_EXCEPTIONS:
        assert getattr(exceptions, name) is getattr(drmaa2, name)
    assert exceptions.Drmaa2Exception is Drmaa2Exception
    namespace: dict[str, Any] = {}
    exec("from drmaa2.drmaa2_exceptions import *", namespace)
    assert "TimeoutError" not in namespace  # the builtin, which catches drmaa2's, stays
    assert namespace["InvalidArgument"] is InvalidArgumentException


def test_the_bindings_modules_are_attributes_and_importable_in_a_fresh_interpreter() -> None:
    """``import drmaa2`` makes the constants and exceptions modules attributes, and every
    module of the binding that holds one public class imports it under the binding's path
    (each was an AttributeError or ModuleNotFoundError)."""
    import subprocess
    import sys

    script = """
import drmaa2
assert drmaa2.drmaa2_constants.POSIX_EPOCH.year == 1970
assert drmaa2.drmaa2_exceptions.InvalidArgument is drmaa2.InvalidArgumentException
from drmaa2.job_template import JobTemplate
from drmaa2.job_session import JobSession
from drmaa2.job_info import JobInfo
from drmaa2.job import Job
from drmaa2.job_array import JobArray
from drmaa2.monitoring_session import MonitoringSession
from drmaa2.machine_info import MachineInfo
from drmaa2.queue_info import QueueInfo
from drmaa2.notification import Notification
from drmaa2.sudo import Sudo
from drmaa2.version import Version
from drmaa2.library_manager import LibraryManager
from drmaa2.log_manager import LogManager
from drmaa2.reservation import Reservation
from drmaa2.reservation_info import ReservationInfo
from drmaa2.reservation_session import ReservationSession
from drmaa2.reservation_template import ReservationTemplate
import drmaa2.job_session
for name in ("JobTemplate", "JobSession", "JobInfo", "Job", "JobArray", "MonitoringSession",
             "MachineInfo", "QueueInfo", "Notification", "Sudo", "Version", "LibraryManager",
             "LogManager", "Reservation", "ReservationInfo", "ReservationSession",
             "ReservationTemplate"):
    assert globals()[name] is getattr(drmaa2, name), name
assert drmaa2.job_session.JobSession is JobSession
import importlib.util
assert importlib.util.find_spec("drmaa2.job_template").name == "drmaa2.job_template"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


def test_posix_epoch_subtracts_naive_and_aware_datetimes() -> None:
    """The binding's tests: ``int((jt.start_time - POSIX_EPOCH).total_seconds())`` equals the
    same for the naive ``datetime.now()`` that was set."""
    from drmaa2.drmaa2_constants import POSIX_EPOCH

    start_time = datetime.now()
    jt = JobTemplate()
    jt.start_time = start_time
    assert jt.start_time is not None
    assert int((jt.start_time - POSIX_EPOCH).total_seconds()) == int(
        (start_time - POSIX_EPOCH).total_seconds()
    )
    aware = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert (aware - POSIX_EPOCH).total_seconds() == aware.timestamp()


def test_posix_epoch_gives_a_jobs_epoch_times(js: JobSession) -> None:
    from drmaa2.drmaa2_constants import POSIX_EPOCH

    before = time.time()
    job = js.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.submission_time is not None and info.finish_time is not None
    submitted = (info.submission_time - POSIX_EPOCH).total_seconds()
    finished = (info.finish_time - POSIX_EPOCH).total_seconds()
    assert before - 1 <= submitted <= finished <= time.time() + 1
