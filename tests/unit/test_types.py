"""Unit tests of the DRMAA2 data types (drmaa2.types)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, cast

import pytest

from drmaa2 import types
from drmaa2.enums import Cpu, Event, JobState, Os, ResourceLimit, StatusCode
from drmaa2.errors import Drmaa2Exception, InvalidArgumentException
from drmaa2.types import JobInfo, JobTemplate, MachineInfo, Notification, QueueInfo, Version

IST = timezone(timedelta(hours=5, minutes=30))
PDT = timezone(timedelta(hours=-7))
ODD = timezone(timedelta(hours=-3, minutes=-15, seconds=-30))
T_IST = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=IST)
T_PDT = datetime(2023, 11, 5, 1, 30, 0, 1, tzinfo=PDT)
T_ODD = datetime(1999, 12, 31, 12, 0, 0, 999999, tzinfo=ODD)
T_UTC = datetime(2025, 6, 1, 8, 0, 0, 500000, tzinfo=timezone.utc)
NAIVE = datetime(2024, 1, 1, 12, 0, 0)


def full_template() -> JobTemplate:
    return JobTemplate(
        remote_command="/bin/sleep",
        args=["10", "--flag", ""],
        submit_as_hold=True,
        rerunnable=False,
        job_environment={"MY_ENV": "xyz", "EMPTY": ""},
        working_directory="/tmp/work",
        job_category="default",
        email=["a@example.org", "b@example.org"],
        email_on_started=False,
        email_on_terminated=True,
        job_name="sleeper",
        input_path="/dev/null",
        output_path="/tmp/out.txt",
        error_path="/tmp/err.txt",
        join_files=False,
        reservation_id="r1",
        queue_name="all.q",
        min_slots=1,
        max_slots=4,
        priority=-5,
        candidate_machines=["node1", "node2"],
        min_phys_memory=1048576,
        machine_os=Os.LINUX,
        machine_arch=Cpu.X64,
        start_time=T_IST,
        deadline_time=T_PDT,
        stage_in_files={"in.txt": "/data/in.txt"},
        stage_out_files={"out.txt": "/data/out.txt"},
        resource_limits={ResourceLimit.CPU_TIME: 60, ResourceLimit.VIRTUAL_MEMORY: 2.5},
        accounting_id="acct-42",
        implementation_specific={"uge_jt_pe": "smp"},
    )


def full_info() -> JobInfo:
    return JobInfo(
        job_id="7.3",
        job_name="sleeper",
        exit_status=137,
        terminating_signal="SIGKILL",
        annotation="killed",
        job_state=JobState.FAILED,
        job_sub_state="terminated by user",
        allocated_machines=["node1"],
        submission_machine="login1",
        job_owner="alice",
        slots=1,
        queue_name="all.q",
        wallclock_time=timedelta(days=2, seconds=3723, microseconds=456789),
        cpu_time=12.345678,
        submission_time=T_ODD,
        dispatch_time=T_UTC,
        finish_time=T_IST,
        implementation_specific={"pid": "4242", "ru_maxrss": "1024"},
    )


def full_machine() -> MachineInfo:
    return MachineInfo(
        name="node1",
        available=True,
        sockets=2,
        cores_per_socket=8,
        threads_per_core=2,
        load=1.25,
        phys_memory=16_000_000,
        virt_memory=20_000_000,
        architecture=Cpu.ARM64,
        os=Os.LINUX,
        os_version=Version(major="6", minor="18.44"),
        implementation_specific={"kernel": "6.18.44-generic"},
    )


def full_queue() -> QueueInfo:
    return QueueInfo(name="all.q", implementation_specific={"slots": "16"})


def full_version() -> Version:
    return Version(major="2", minor="0")


def full_notification() -> Notification:
    return Notification(
        event=Event.NEW_STATE, job_id="3", session_name="my-session", job_state=JobState.RUNNING
    )


FULL: list[Callable[[], Any]] = [
    full_template,
    full_info,
    full_machine,
    full_queue,
    full_version,
    full_notification,
]
FULL_BY_CLASS: dict[type, Callable[[], Any]] = {type(make()): make for make in FULL}
OPTIONAL_CLASSES = [JobTemplate, JobInfo, MachineInfo, QueueInfo]


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_rejected(exc_info: pytest.ExceptionInfo[InvalidArgumentException], *parts: str) -> None:
    message = str(exc_info.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# --- shape -----------------------------------------------------------------------------------


def test_all_lists_the_six_classes() -> None:
    assert sorted(types.__all__) == [
        "JobInfo",
        "JobTemplate",
        "MachineInfo",
        "Notification",
        "QueueInfo",
        "Version",
    ]


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (
            JobTemplate,
            "remote_command args submit_as_hold rerunnable job_environment working_directory "
            "job_category email email_on_started email_on_terminated job_name input_path "
            "output_path error_path join_files reservation_id queue_name min_slots max_slots "
            "priority candidate_machines min_phys_memory machine_os machine_arch start_time "
            "deadline_time stage_in_files stage_out_files resource_limits accounting_id "
            "implementation_specific",
        ),
        (
            JobInfo,
            "job_id job_name exit_status terminating_signal annotation job_state job_sub_state "
            "allocated_machines submission_machine job_owner slots queue_name wallclock_time "
            "cpu_time submission_time dispatch_time finish_time implementation_specific",
        ),
        (
            MachineInfo,
            "name available sockets cores_per_socket threads_per_core load phys_memory "
            "virt_memory architecture os os_version implementation_specific",
        ),
        (QueueInfo, "name implementation_specific"),
        (Version, "major minor implementation_specific"),
        (Notification, "event job_id session_name job_state implementation_specific"),
    ],
)
def test_fields_are_the_documented_ones(cls: type, names: str) -> None:
    assert field_names(cls) == names.split()


@pytest.mark.parametrize("cls", OPTIONAL_CLASSES)
def test_every_field_defaults_to_none_but_implementation_specific_to_empty(cls: type) -> None:
    record = cls()
    others = [name for name in field_names(cls) if name != "implementation_specific"]
    assert all(getattr(record, name) is None for name in others)
    assert record.implementation_specific == {}
    assert record.to_dict() == {**dict.fromkeys(others), "implementation_specific": {}}


@pytest.mark.parametrize("cls", OPTIONAL_CLASSES)
def test_large_types_take_a_mapping_or_keywords_only(cls: type) -> None:
    with pytest.raises(InvalidArgumentException, match="expected a mapping"):
        cls("positional")
    with pytest.raises(TypeError):
        cls({}, "second positional")


def test_version_and_notification_take_positional_arguments() -> None:
    assert Version("2", "1") == Version(major="2", minor="1")
    assert Notification(Event.MIGRATED, "1", "s", JobState.DONE).event is Event.MIGRATED


def test_invalid_argument_is_a_value_error_with_its_code() -> None:
    with pytest.raises(ValueError, match=r"JobTemplate\.min_slots") as exc_info:
        JobTemplate(min_slots=-1)
    assert isinstance(exc_info.value, InvalidArgumentException)
    assert isinstance(exc_info.value, Drmaa2Exception)
    assert exc_info.value.error_code is StatusCode.INVALID_ARGUMENT


# --- accepted values and normalizations ------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "name", "given", "stored"),
    [
        (JobTemplate, "remote_command", "/bin/true", "/bin/true"),
        (JobTemplate, "remote_command", "", ""),
        (JobTemplate, "args", ["a", "b"], ["a", "b"]),
        (JobTemplate, "args", ("a", "b"), ["a", "b"]),
        (JobTemplate, "args", [], []),
        (JobTemplate, "email", ("x@y",), ["x@y"]),
        (JobTemplate, "candidate_machines", ["n1"], ["n1"]),
        (JobTemplate, "submit_as_hold", True, True),
        (JobTemplate, "join_files", False, False),
        (JobTemplate, "min_slots", 0, 0),
        (JobTemplate, "max_slots", 2**40, 2**40),
        (JobTemplate, "priority", -1024, -1024),
        (JobTemplate, "priority", JobState.DONE, 7),
        (JobTemplate, "min_phys_memory", 0, 0),
        (JobTemplate, "job_environment", {"A": "1"}, {"A": "1"}),
        (JobTemplate, "job_environment", OrderedDict(A="1"), {"A": "1"}),
        (JobTemplate, "stage_in_files", MappingProxyType({"a": "b"}), {"a": "b"}),
        (JobTemplate, "machine_os", Os.LINUX, Os.LINUX),
        (JobTemplate, "machine_os", "LINUX", Os.LINUX),
        (JobTemplate, "machine_os", 3, Os.LINUX),
        (JobTemplate, "machine_os", 0, Os.OTHER_OS),
        (JobTemplate, "machine_arch", "PPC64LE", Cpu.PPC64LE),
        (JobTemplate, "machine_arch", 8, Cpu.X64),
        (JobTemplate, "start_time", T_IST, T_IST),
        (JobTemplate, "start_time", "2024-02-29T23:59:58.123456+05:30", T_IST),
        (JobTemplate, "deadline_time", "2025-06-01T08:00:00.500000Z", T_UTC),
        (JobTemplate, "deadline_time", "2025-06-01T08:00:00.5+00:00", T_UTC),
        (JobTemplate, "resource_limits", {}, {}),
        (JobTemplate, "resource_limits", {"CPU_TIME": 5}, {ResourceLimit.CPU_TIME: 5}),
        (
            JobTemplate,
            "resource_limits",
            {ResourceLimit.STACK_SIZE: 8192, "WALLCLOCK_TIME": 0.5},
            {ResourceLimit.STACK_SIZE: 8192, ResourceLimit.WALLCLOCK_TIME: 0.5},
        ),
        (JobInfo, "job_state", "RUNNING", JobState.RUNNING),
        (JobInfo, "job_state", 8, JobState.FAILED),
        (JobInfo, "job_state", JobState.QUEUED_HELD, JobState.QUEUED_HELD),
        (JobInfo, "exit_status", -1, -1),
        (JobInfo, "slots", 1, 1),
        (JobInfo, "wallclock_time", timedelta(seconds=5), timedelta(seconds=5)),
        (JobInfo, "wallclock_time", 5, timedelta(seconds=5)),
        (JobInfo, "wallclock_time", 0, timedelta(0)),
        (JobInfo, "wallclock_time", 1.000001, timedelta(seconds=1, microseconds=1)),
        (JobInfo, "wallclock_time", 0.1, timedelta(microseconds=100000)),
        (JobInfo, "cpu_time", 0, 0),
        (JobInfo, "cpu_time", 2.75, 2.75),
        (JobInfo, "finish_time", T_ODD.isoformat(), T_ODD),
        (MachineInfo, "load", 2, 2.0),
        (MachineInfo, "load", 0.5, 0.5),
        (MachineInfo, "available", False, False),
        (MachineInfo, "os", "MACOS", Os.MACOS),
        (MachineInfo, "architecture", 3, Cpu.ARM64),
        (MachineInfo, "os_version", Version("6", "1"), Version("6", "1")),
        (MachineInfo, "os_version", {"major": "5", "minor": "15"}, Version("5", "15")),
        (MachineInfo, "os_version", "6.18.44", Version("6", "18.44")),
        (MachineInfo, "os_version", "6.8.0-45-generic", Version("6", "8.0-45-generic")),
        (MachineInfo, "os_version", "10", Version("10", "0")),
        (QueueInfo, "name", "q", "q"),
        (Notification, "event", "ATTRIBUTE_CHANGE", Event.ATTRIBUTE_CHANGE),
        (Notification, "job_state", 7, JobState.DONE),
        (Version, "minor", "", ""),
    ],
)
def test_accepted_values_are_normalized(cls: Any, name: str, given: Any, stored: Any) -> None:
    built = cls.from_dict({**_required_of(cls), name: given})
    assigned = cls.coerce(_required_of(cls))
    setattr(assigned, name, given)
    for record in (built, assigned):
        value = getattr(record, name)
        assert value == stored
        assert type(value) is type(stored)


def _required_of(cls: type) -> dict[str, Any]:
    if cls is Version:
        return {"major": "1", "minor": "2"}
    if cls is Notification:
        return {"event": "NEW_STATE", "job_id": "1", "session_name": "s", "job_state": "DONE"}
    return {}


def test_datetime_keeps_its_offset_and_microseconds() -> None:
    jt = JobTemplate(start_time="2024-02-29T23:59:58.123456+05:30")  # type: ignore[arg-type]
    assert jt.start_time is not None
    assert jt.start_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert jt.start_time.microsecond == 123456


def test_enum_fields_store_the_member_itself() -> None:
    jt = JobTemplate(machine_os="LINUX", machine_arch=8)  # type: ignore[arg-type]
    assert jt.machine_os is Os.LINUX
    assert jt.machine_arch is Cpu.X64


def test_resource_limit_keys_become_members() -> None:
    jt = JobTemplate(resource_limits={"CPU_TIME": 10, "FILE_SIZE": 1024})  # type: ignore[dict-item]
    assert jt.resource_limits is not None
    assert [type(key) for key in jt.resource_limits] == [ResourceLimit, ResourceLimit]
    assert list(jt.resource_limits) == [ResourceLimit.CPU_TIME, ResourceLimit.FILE_SIZE]


def test_list_and_dict_values_are_copied_on_set() -> None:
    args = ["a"]
    env = {"A": "1"}
    jt = JobTemplate(args=args, job_environment=env)
    args.append("b")
    env["B"] = "2"
    assert jt.args == ["a"]
    assert jt.job_environment == {"A": "1"}


def test_none_resets_an_optional_field() -> None:
    jt = JobTemplate(args=["a"], machine_os="LINUX")  # type: ignore[arg-type]
    jt.args = None
    jt.machine_os = None
    assert jt.args is None
    assert jt.machine_os is None


def test_version_str_is_major_dot_minor() -> None:
    assert str(Version(major="6", minor="18.44")) == "6.18.44"
    assert str(Version("2", "0")) == "2.0"


# --- rejected values ------------------------------------------------------------------------

REJECTED: list[tuple[Any, str, Any]] = [
    (JobTemplate, "remote_command", 5),
    (JobTemplate, "remote_command", b"/bin/ls"),
    (JobTemplate, "remote_command", ["/bin/ls"]),
    (JobTemplate, "args", "ls -l"),
    (JobTemplate, "args", ["a", 1]),
    (JobTemplate, "args", ["a", None]),
    (JobTemplate, "args", {"a"}),
    (JobTemplate, "args", {"a": "b"}),
    (JobTemplate, "email", "x@y"),
    (JobTemplate, "candidate_machines", [b"n1"]),
    (JobTemplate, "submit_as_hold", 2),
    (JobTemplate, "rerunnable", "yes"),
    (JobTemplate, "email_on_started", -1),
    (JobTemplate, "email_on_terminated", "true"),
    (JobTemplate, "join_files", 1.0),
    (JobTemplate, "join_files", "no"),
    (JobTemplate, "job_environment", {"A": 1}),
    (JobTemplate, "job_environment", {1: "A"}),
    (JobTemplate, "job_environment", {"A": None}),
    (JobTemplate, "job_environment", [("A", "1")]),
    (JobTemplate, "job_environment", "A=1"),
    (JobTemplate, "stage_out_files", {"a": 1}),
    (JobTemplate, "implementation_specific", {"k": 1.5}),
    (JobTemplate, "min_slots", -1),
    (JobTemplate, "min_slots", True),
    (JobTemplate, "max_slots", 1.0),
    (JobTemplate, "max_slots", "2"),
    (JobTemplate, "min_phys_memory", -1024),
    (JobTemplate, "min_phys_memory", False),
    (JobTemplate, "priority", True),
    (JobTemplate, "priority", 1.5),
    (JobTemplate, "machine_os", "linux-gnu"),
    (JobTemplate, "machine_os", "Linux"),
    (JobTemplate, "machine_os", 99),
    (JobTemplate, "machine_os", -2),
    (JobTemplate, "machine_os", True),
    (JobTemplate, "machine_os", 3.0),
    (JobTemplate, "machine_os", Cpu.X64),
    (JobTemplate, "machine_arch", "AMD64"),
    (JobTemplate, "machine_arch", Os.LINUX),
    (JobTemplate, "start_time", "tomorrow"),
    (JobTemplate, "start_time", 1700000000),
    (JobTemplate, "deadline_time", NAIVE.date()),
    (JobTemplate, "resource_limits", {"CPU_TIME": -1}),
    (JobTemplate, "resource_limits", {"CPU_TIME": True}),
    (JobTemplate, "resource_limits", {"CPU_TIME": "-10"}),
    (JobTemplate, "resource_limits", {"CPU_TIME": "1e3"}),
    (JobTemplate, "resource_limits", {"CPU_TIME": " 10"}),
    (JobTemplate, "resource_limits", {"CPU_TIME": "ten"}),
    (JobTemplate, "resource_limits", {"CPU_TIME": "1" * 400 + ".5"}),
    (JobTemplate, "resource_limits", {"CPU_TIME": math.nan}),
    (JobTemplate, "resource_limits", {"CPU_TIME": math.inf}),
    (JobTemplate, "resource_limits", {"NO_SUCH_LIMIT": 1}),
    (JobTemplate, "resource_limits", {"cpu_time": 1}),
    (JobTemplate, "resource_limits", {3: 1}),
    (JobTemplate, "resource_limits", [("CPU_TIME", 1)]),
    (JobInfo, "job_state", "FINISHED"),
    (JobInfo, "job_state", 10),
    (JobInfo, "job_state", False),
    (JobInfo, "exit_status", "0"),
    (JobInfo, "exit_status", True),
    (JobInfo, "slots", -2),
    (JobInfo, "allocated_machines", "node1"),
    (JobInfo, "wallclock_time", -1),
    (JobInfo, "wallclock_time", timedelta(seconds=-1)),
    (JobInfo, "wallclock_time", "10"),
    (JobInfo, "wallclock_time", True),
    (JobInfo, "wallclock_time", math.inf),
    (JobInfo, "wallclock_time", 1e300),
    (JobInfo, "cpu_time", -0.5),
    (JobInfo, "cpu_time", True),
    (JobInfo, "cpu_time", math.nan),
    (JobInfo, "cpu_time", math.inf),
    (JobInfo, "cpu_time", -math.inf),
    (JobInfo, "cpu_time", timedelta(seconds=1)),
    (JobInfo, "submission_time", NAIVE.date()),
    (JobInfo, "dispatch_time", "2024-01-01T25:00:00"),
    (JobInfo, "finish_time", 0),
    (JobInfo, "implementation_specific", {"pid": 4242}),
    (MachineInfo, "available", "true"),
    (MachineInfo, "sockets", -1),
    (MachineInfo, "cores_per_socket", 2.0),
    (MachineInfo, "threads_per_core", True),
    (MachineInfo, "load", -0.1),
    (MachineInfo, "load", True),
    (MachineInfo, "load", math.nan),
    (MachineInfo, "load", math.inf),
    (MachineInfo, "load", "1.0"),
    (MachineInfo, "phys_memory", -1),
    (MachineInfo, "virt_memory", 1.5),
    (MachineInfo, "os", "WINDOWS"),
    (MachineInfo, "architecture", Event.NEW_STATE),
    (MachineInfo, "os_version", 6),
    (MachineInfo, "os_version", ""),
    (MachineInfo, "os_version", ".5"),
    (MachineInfo, "os_version", {"major": 6, "minor": 1}),
    (MachineInfo, "os_version", {"major": "6"}),
    (MachineInfo, "os_version", {"major": "6", "minor": "1", "patch": "2"}),
    (QueueInfo, "name", 1),
    (QueueInfo, "implementation_specific", "x"),
    (Version, "major", 2),
    (Version, "minor", 0.5),
    (Notification, "event", "STARTED"),
    (Notification, "event", JobState.RUNNING),
    (Notification, "job_id", 3),
    (Notification, "session_name", b"s"),
    (Notification, "job_state", 42),
]


def _rejected_id(case: tuple[Any, str, Any]) -> str:
    cls, name, value = case
    return f"{cls.__name__}.{name}={value!r}"


@pytest.mark.parametrize("case", REJECTED, ids=_rejected_id)
def test_bad_value_is_rejected_on_construction(case: tuple[Any, str, Any]) -> None:
    cls, name, value = case
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls(**{**_required_of(cls), name: value})
    check_rejected(exc_info, f"{cls.__name__}.{name}: expected ")


@pytest.mark.parametrize("case", REJECTED, ids=_rejected_id)
def test_bad_value_is_rejected_by_from_dict(case: tuple[Any, str, Any]) -> None:
    cls, name, value = case
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls.from_dict({**_required_of(cls), name: value})
    check_rejected(exc_info, f"{cls.__name__}.{name}: expected ")


@pytest.mark.parametrize("case", REJECTED, ids=_rejected_id)
def test_bad_value_is_rejected_on_assignment_and_the_old_value_stays(
    case: tuple[Any, str, Any],
) -> None:
    cls, name, value = case
    record = FULL_BY_CLASS[cls]()
    before = getattr(record, name)
    assert before is not None
    with pytest.raises(InvalidArgumentException) as exc_info:
        setattr(record, name, value)
    check_rejected(exc_info, f"{cls.__name__}.{name}: expected ")
    assert getattr(record, name) == before


@pytest.mark.parametrize(
    ("cls", "name", "value", "message"),
    [
        (JobTemplate, "args", "ls -l", "JobTemplate.args: expected a list of str, got 'ls -l'"),
        (
            JobTemplate,
            "args",
            ["ls", 1],
            "JobTemplate.args: expected a list of str, got ['ls', 1]",
        ),
        (
            JobTemplate,
            "min_slots",
            -1,
            "JobTemplate.min_slots: expected a non-negative int, got -1",
        ),
        (JobTemplate, "priority", True, "JobTemplate.priority: expected int, got True"),
        (
            JobTemplate,
            "rerunnable",
            2,
            """JobTemplate.rerunnable: expected a bool, 0, 1, "TRUE" or "FALSE", got 2""",
        ),
        (
            JobTemplate,
            "job_environment",
            {"A": 1},
            "JobTemplate.job_environment: expected a dict of str to str, got {'A': 1}",
        ),
        (
            JobTemplate,
            "start_time",
            NAIVE.date(),
            "JobTemplate.start_time: expected a datetime (naive ones are UTC) or an ISO 8601 "
            "string, got datetime.date(2024, 1, 1)",
        ),
        (
            JobTemplate,
            "resource_limits",
            {"CPU_TIME": 1, "BOGUS": 2},
            "JobTemplate.resource_limits: expected a resource limit (CORE_FILE_SIZE, CPU_TIME, "
            "DATA_SIZE, FILE_SIZE, OPEN_FILES, STACK_SIZE, VIRTUAL_MEMORY, WALLCLOCK_TIME), "
            "got 'BOGUS'",
        ),
        (
            JobTemplate,
            "resource_limits",
            {"CPU_TIME": -3},
            "JobTemplate.resource_limits: expected a non-negative number or decimal string for "
            "CPU_TIME, got -3",
        ),
        (
            JobInfo,
            "job_state",
            "FINISHED",
            "JobInfo.job_state: expected a JobState name (UNSET_JSTATE, UNDETERMINED, QUEUED, "
            "QUEUED_HELD, RUNNING, SUSPENDED, REQUEUED, REQUEUED_HELD, DONE, FAILED, "
            "RUNNING_HELD), value or member, got 'FINISHED'",
        ),
        (
            JobInfo,
            "wallclock_time",
            -1,
            "JobInfo.wallclock_time: expected a non-negative timedelta or number of seconds, "
            "got -1",
        ),
        (Version, "major", 2, "Version.major: expected str, got 2"),
        (Version, "minor", None, "Version.minor: a value is required, got None"),
    ],
)
def test_message_names_class_field_and_value(
    cls: type, name: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls(**{**_required_of(cls), name: value})
    assert str(exc_info.value) == message


def test_message_shortens_a_huge_value() -> None:
    huge = {f"VAR{i}": i for i in range(10_000)}
    with pytest.raises(InvalidArgumentException) as exc_info:
        JobTemplate(job_environment=huge)  # type: ignore[arg-type]
    message = str(exc_info.value)
    assert message.startswith("JobTemplate.job_environment: expected a dict of str to str, got {")
    assert message.endswith("...")
    assert len(message) < 300


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (Version, "major"),
        (Version, "minor"),
    ],
)
def test_required_field_rejects_none(cls: type, name: str) -> None:
    with pytest.raises(InvalidArgumentException, match=rf"^{cls.__name__}\.{name}: .*None"):
        cls(**{**_required_of(cls), name: None})
    record = cls(**_required_of(cls))
    with pytest.raises(InvalidArgumentException, match=rf"^{cls.__name__}\.{name}: .*None"):
        setattr(record, name, None)


def test_unknown_attribute_cannot_be_set() -> None:
    jt = JobTemplate()
    with pytest.raises(AttributeError, match="argz"):
        jt.argz = ["a"]


# --- from_dict ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [JobTemplate, JobInfo, MachineInfo, QueueInfo])
def test_from_dict_rejects_an_unknown_key_naming_it(cls: Any) -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls.from_dict({"no_such_field": 1})
    assert str(exc_info.value) == f"{cls.__name__}: unknown key 'no_such_field'"


def test_from_dict_suggests_a_close_key() -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        JobTemplate.from_dict({"remote_command": "/bin/ls", "arg": ["-l"]})
    assert str(exc_info.value) == "JobTemplate: unknown key 'arg' (did you mean 'args'?)"


def test_from_dict_rejects_a_non_str_key() -> None:
    with pytest.raises(InvalidArgumentException, match=r"^JobInfo: unknown key 1$"):
        JobInfo.from_dict({1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize("data", [None, ["job_id", "1"], "job_id=1", 42, JobInfo()])
@pytest.mark.parametrize("cls", [JobTemplate, JobInfo, Version])
def test_from_dict_rejects_a_non_mapping(cls: Any, data: Any) -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls.from_dict(data)
    assert str(exc_info.value).startswith(f"{cls.__name__}.from_dict: expected a mapping, got ")


@pytest.mark.parametrize(
    ("cls", "data", "missing"),
    [
        (Version, {"major": "1"}, "minor"),
        (Version, {}, "major"),
    ],
)
def test_from_dict_names_a_missing_required_key(cls: Any, data: Any, missing: str) -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls.from_dict(data)
    assert str(exc_info.value) == f"{cls.__name__}: missing key {missing!r}"


def test_from_dict_accepts_a_mapping_proxy() -> None:
    jt = JobTemplate.from_dict(MappingProxyType({"remote_command": "/bin/ls", "args": ("-l",)}))
    assert jt == JobTemplate(remote_command="/bin/ls", args=["-l"])


def test_from_dict_leaves_the_input_untouched() -> None:
    data = {"args": ["a"], "resource_limits": {"CPU_TIME": 1}}
    jt = JobTemplate.from_dict(data)
    assert data == {"args": ["a"], "resource_limits": {"CPU_TIME": 1}}
    assert jt.args is not data["args"]


# --- to_dict, JSON and round trips -----------------------------------------------------------


@pytest.mark.parametrize("make", FULL)
def test_to_dict_has_every_field_and_is_json_compatible(make: Callable[[], Any]) -> None:
    record = make()
    data = record.to_dict()
    assert list(data) == field_names(type(record))
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_to_dict_encodes_a_job_template() -> None:
    data = full_template().to_dict()
    assert data["machine_os"] == "LINUX"
    assert data["machine_arch"] == "X64"
    assert data["start_time"] == "2024-02-29T23:59:58.123456+05:30"
    assert data["deadline_time"] == "2023-11-05T01:30:00.000001-07:00"
    assert data["resource_limits"] == {"CPU_TIME": 60, "VIRTUAL_MEMORY": 2.5}
    assert [type(key) for key in data["resource_limits"]] == [str, str]
    assert data["args"] == ["10", "--flag", ""]
    assert data["priority"] == -5
    assert data["submit_as_hold"] is True


def test_to_dict_encodes_a_job_info() -> None:
    data = full_info().to_dict()
    assert data["job_state"] == "FAILED"
    assert data["wallclock_time"] == 2 * 86400 + 3723.456789
    assert type(data["wallclock_time"]) is float
    assert data["cpu_time"] == 12.345678
    assert data["submission_time"] == "1999-12-31T12:00:00.999999-03:15:30"
    assert data["dispatch_time"] == "2025-06-01T08:00:00.500000+00:00"


def test_to_dict_encodes_machine_version_and_notification() -> None:
    machine = full_machine().to_dict()
    assert machine["os_version"] == {"major": "6", "minor": "18.44", "implementation_specific": {}}
    assert machine["architecture"] == "ARM64"
    assert machine["os"] == "LINUX"
    assert full_version().to_dict() == {"major": "2", "minor": "0", "implementation_specific": {}}
    assert full_notification().to_dict() == {
        "event": "NEW_STATE",
        "job_id": "3",
        "session_name": "my-session",
        "job_state": "RUNNING",
        "implementation_specific": {},
    }


def test_to_dict_returns_new_containers() -> None:
    jt = full_template()
    data = jt.to_dict()
    data["args"].append("changed")
    data["job_environment"]["NEW"] = "1"
    assert jt.args == ["10", "--flag", ""]
    assert jt.job_environment == {"MY_ENV": "xyz", "EMPTY": ""}


@pytest.mark.parametrize("make", FULL)
def test_from_dict_of_to_dict_is_equal(make: Callable[[], Any]) -> None:
    record = make()
    again = type(record).from_dict(record.to_dict())
    assert again == record
    assert again.to_dict() == record.to_dict()


@pytest.mark.parametrize("make", FULL)
def test_from_json_of_to_json_is_equal(make: Callable[[], Any]) -> None:
    record = make()
    text = record.to_json()
    assert isinstance(text, str)
    assert type(record).from_json(text) == record
    assert type(record).from_json(text.encode()) == record


@pytest.mark.parametrize("cls", OPTIONAL_CLASSES)
def test_empty_record_round_trips(cls: Any) -> None:
    assert cls.from_dict(cls().to_dict()) == cls()
    assert cls.from_json(cls().to_json()) == cls()


@pytest.mark.parametrize("when", [T_IST, T_PDT, T_ODD, T_UTC])
def test_datetime_round_trip_keeps_offset_and_microseconds(when: datetime) -> None:
    info = JobInfo(finish_time=when)
    again = JobInfo.from_json(info.to_json())
    assert again.finish_time == when
    assert again.finish_time is not None
    assert again.finish_time.utcoffset() == when.utcoffset()
    assert again.finish_time.microsecond == when.microsecond


def test_datetime_with_a_named_zone_round_trips() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database")
    when = datetime(2024, 7, 1, 12, 30, 15, 654321, tzinfo=berlin)
    jt = JobTemplate(start_time=when)
    assert jt.to_dict()["start_time"] == "2024-07-01T12:30:15.654321+02:00"
    assert JobTemplate.from_dict(jt.to_dict()) == jt


@pytest.mark.parametrize(
    "elapsed",
    [
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(seconds=0.1),
        timedelta(seconds=59, microseconds=999999),
        timedelta(days=1, microseconds=1),
        timedelta(days=365 * 30, seconds=12345, microseconds=678901),
        timedelta(days=999, seconds=86399, microseconds=999999),
    ],
)
def test_timedelta_round_trip_is_exact_to_the_microsecond(elapsed: timedelta) -> None:
    info = JobInfo(wallclock_time=elapsed)
    assert JobInfo.from_dict(info.to_dict()).wallclock_time == elapsed
    assert JobInfo.from_json(info.to_json()).wallclock_time == elapsed


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", '"text"', "null"])
def test_from_json_rejects_what_is_not_a_json_object(text: str) -> None:
    with pytest.raises(InvalidArgumentException, match=r"^JobTemplate\.from_(json|dict): "):
        JobTemplate.from_json(text)


def test_from_json_rejects_an_unknown_key() -> None:
    with pytest.raises(InvalidArgumentException, match=r"^JobInfo: unknown key 'pid'$"):
        JobInfo.from_json('{"pid": "12"}')


# --- coerce ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", FULL)
def test_coerce_returns_an_instance_unchanged(make: Callable[[], Any]) -> None:
    record = make()
    assert type(record).coerce(record) is record


@pytest.mark.parametrize("make", FULL)
def test_coerce_builds_from_a_mapping(make: Callable[[], Any]) -> None:
    record = make()
    assert type(record).coerce(record.to_dict()) == record


@pytest.mark.parametrize("value", [None, "job", ["a"], 1, QueueInfo(), Version("1", "0")])
@pytest.mark.parametrize("cls", [JobTemplate, MachineInfo])
def test_coerce_rejects_anything_else(cls: Any, value: Any) -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        cls.coerce(value)
    assert str(exc_info.value) == f"expected a {cls.__name__} or a mapping, got {value!r}"


def test_coerce_of_a_bad_mapping_names_the_key() -> None:
    with pytest.raises(InvalidArgumentException, match="unknown key 'command'"):
        JobTemplate.coerce({"command": "/bin/ls"})


# --- equality and copies --------------------------------------------------------------------


def test_equality_compares_every_field() -> None:
    assert full_template() == full_template()
    changed = full_template()
    changed.args = ["11"]
    assert changed != full_template()
    assert JobInfo(job_id="1") != JobInfo(job_id="2")
    assert QueueInfo(name="q") != cast(object, MachineInfo(name="q"))


@pytest.mark.parametrize("make", FULL)
def test_copy_is_equal_but_independent(make: Callable[[], Any]) -> None:
    record = make()
    duplicate = record.copy()
    assert duplicate == record
    assert duplicate is not record
    for name in field_names(type(record)):
        value = getattr(record, name)
        if isinstance(value, (list, dict, Version)):
            assert getattr(duplicate, name) is not value, name


def test_changing_a_copy_leaves_the_original() -> None:
    jt = full_template()
    duplicate = jt.copy()
    assert duplicate.args is not None
    assert duplicate.job_environment is not None
    assert duplicate.resource_limits is not None
    duplicate.args.append("more")
    duplicate.job_environment["NEW"] = "1"
    duplicate.resource_limits[ResourceLimit.OPEN_FILES] = 64
    duplicate.queue_name = "other.q"
    assert jt == full_template()

    machine = full_machine()
    other = machine.copy()
    assert other.os_version is not None
    other.os_version.minor = "19"
    assert machine.os_version == Version("6", "18.44")


def test_copy_still_validates_later_assignments() -> None:
    duplicate = full_template().copy()
    with pytest.raises(InvalidArgumentException, match=r"JobTemplate\.args"):
        duplicate.args = "ls"  # type: ignore[assignment]


@pytest.mark.parametrize("make", FULL)
def test_pickle_and_deepcopy_round_trip(make: Callable[[], Any]) -> None:
    record = make()
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record


def test_dataclasses_replace_validates() -> None:
    jt = JobTemplate(remote_command="/bin/ls")
    assert dataclasses.replace(jt, args=("-l",)).args == ["-l"]  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentException, match=r"JobTemplate\.args"):
        dataclasses.replace(jt, args="-l")  # type: ignore[arg-type]


# --- assignment ------------------------------------------------------------------------------


def test_assignment_normalizes_like_construction() -> None:
    jt = JobTemplate()
    jt.args = ("a", "b")  # type: ignore[assignment]
    jt.machine_os = "BSD"  # type: ignore[assignment]
    jt.machine_arch = 2  # type: ignore[assignment]
    jt.start_time = "2023-11-05T01:30:00.000001-07:00"  # type: ignore[assignment]
    jt.resource_limits = {"OPEN_FILES": 256}  # type: ignore[dict-item]
    jt.job_environment = OrderedDict(A="1")
    assert jt.args == ["a", "b"]
    assert jt.machine_os is Os.BSD
    assert jt.machine_arch is Cpu.ARM
    assert jt.start_time == T_PDT
    assert jt.resource_limits == {ResourceLimit.OPEN_FILES: 256}
    assert type(jt.job_environment) is dict

    info = JobInfo()
    info.wallclock_time = 90.5  # type: ignore[assignment]
    info.job_state = "SUSPENDED"  # type: ignore[assignment]
    assert info.wallclock_time == timedelta(seconds=90, microseconds=500000)
    assert info.job_state is JobState.SUSPENDED

    machine = MachineInfo()
    machine.os_version = "5.15"  # type: ignore[assignment]
    machine.load = 3
    assert machine.os_version == Version("5", "15")
    assert type(machine.load) is float
