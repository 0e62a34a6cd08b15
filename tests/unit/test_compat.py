"""Code written for Grid Engine's ``uge-drmaa2`` binding runs unchanged: dict constructors, enum
values compared and printed as names, classmethods, naive times, Bool and Time (issue 13).

The tests are written as that binding's users write code; sessions use the ``os`` backend with a
private state directory.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import drmaa2
from drmaa2 import (
    Bool,
    Cpu,
    Event,
    InvalidArgumentException,
    JobInfo,
    JobSession,
    JobState,
    JobTemplate,
    MachineInfo,
    Notification,
    Os,
    QueueInfo,
    ResourceLimit,
    Time,
    Version,
)
from drmaa2_ostracker import extension

WAIT = 60.0
UTC = timezone.utc


@pytest.fixture(autouse=True)
def os_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The binding has one DRMS; here the default backend is ``os``, whatever else is installed."""
    monkeypatch.setenv("DRMAA2_BACKEND", "os")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "state")
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", path)
    return path


@pytest.fixture
def js(state_dir: str) -> Iterator[JobSession]:
    session = JobSession()
    yield session
    if session.name in JobSession.list_session_names():
        session.destroy()


# -- 1. a mapping as first positional argument ------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "keyword", "data"),
    [
        (JobTemplate, "template", {"remote_command": "/bin/sleep", "args": ["10"]}),
        (JobInfo, "job_info", {"queue_name": "all.q", "job_owner": "auser"}),
        (MachineInfo, "machine_info", {"name": "node1", "sockets": 2}),
        (QueueInfo, "queue_info", {"name": "all.q"}),
        (Version, "version", {"major": "8", "minor": "6.0"}),
        (Notification, "notification", {"event": "NEW_STATE", "job_id": "7"}),
    ],
)
def test_every_data_type_takes_a_mapping(cls: Any, keyword: str, data: dict[str, Any]) -> None:
    positional = cls(data)
    named = cls(**{keyword: data})
    assert positional == named == cls.from_dict(data) == cls(**data)
    for name, value in data.items():
        assert getattr(positional, name) == value


def test_job_template_from_a_dict_as_in_the_binding_docs() -> None:
    jt = JobTemplate({"remote_command": "/bin/sleep", "args": ["10"], "job_name": "sleeper"})
    jt.priority = 5
    assert jt.remote_command == "/bin/sleep"
    assert jt.to_dict()["args"] == ["10"]
    ji = JobInfo({"queue_name": "all.q", "job_owner": "auser"})
    ji.slots = 2
    assert (ji.queue_name, ji.slots) == ("all.q", 2)


def test_an_empty_mapping_and_no_argument_give_an_empty_record() -> None:
    assert JobTemplate({}) == JobTemplate() == JobTemplate(template={})
    assert JobInfo(job_info={}) == JobInfo()


def test_a_mapping_and_keywords_combine() -> None:
    jt = JobTemplate({"remote_command": "/bin/true"}, job_name="combined")
    assert (jt.remote_command, jt.job_name) == ("/bin/true", "combined")
    assert Version({"major": "2"}, minor="1") == Version("2", "1")


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(InvalidArgumentException, match="'job_name' is given both"):
        JobTemplate({"job_name": "a"}, job_name="b")


def test_the_mapping_is_checked_like_from_dict() -> None:
    with pytest.raises(InvalidArgumentException, match=r"unknown key 'arg' \(did you mean 'args'"):
        JobTemplate({"remote_command": "/bin/ls", "arg": ["-l"]})
    with pytest.raises(InvalidArgumentException, match=r"JobInfo\.exit_status: expected int"):
        JobInfo({"exit_status": "0"})
    with pytest.raises(InvalidArgumentException, match="missing key 'minor'"):
        Version({"major": "2"})
    with pytest.raises(InvalidArgumentException, match="expected a mapping"):
        JobInfo(job_info=["job_id", "1"])  # type: ignore[arg-type]


def test_version_and_notification_keep_their_positional_fields() -> None:
    assert Version("2", "0") == Version(major="2", minor="0")
    note = Notification(Event.NEW_STATE, "1", "s", JobState.DONE)
    assert note == Notification({"event": 0, "job_id": "1", "session_name": "s", "job_state": 7})


def test_notification_builds_with_defaults() -> None:
    note = Notification()
    assert (note.event, note.job_id, note.session_name, note.job_state) == (
        "NEW_STATE",
        "",
        "",
        "UNDETERMINED",
    )
    note.job_state = "RUNNING"
    assert note.job_state == JobState.RUNNING
    assert Notification({"job_id": "3"}) == Notification(job_id="3")
    assert Notification(job_state=None) == Notification()  # None: the default
    with pytest.raises(InvalidArgumentException, match="a value is required"):
        note.job_id = None  # type: ignore[assignment]


# -- 2. enum attributes are names too; bools from 0/1 and TRUE/FALSE ----------------------------


def test_job_state_equals_and_prints_as_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    info = JobInfo({"job_state": "QUEUED_HELD"})
    assert info.job_state == "QUEUED_HELD"
    assert info.job_state != "QUEUED"
    assert info.job_state.endswith("HELD")
    assert "HELD" in info.job_state
    assert info.job_state in ("QUEUED_HELD", "REQUEUED_HELD")
    assert info.job_state in {"QUEUED_HELD"}
    print(info.job_state)
    print(f"state: {info.job_state}", "%s" % info.job_state)  # noqa: UP031 - the binding's style
    assert capsys.readouterr().out == "QUEUED_HELD\nstate: QUEUED_HELD QUEUED_HELD\n"
    assert "state " + info.job_state == "state QUEUED_HELD"


def test_job_state_still_compares_with_members_and_codes() -> None:
    info = JobInfo({"job_state": "SUSPENDED"})
    assert info.job_state is JobState.SUSPENDED
    assert info.job_state == JobState.SUSPENDED
    assert info.job_state == 4
    assert int(info.job_state) == 4 == info.job_state.value
    assert f"{info.job_state:d}" == "4"
    assert info.job_state < JobState.DONE
    assert info.job_state.is_started
    assert JobState(4) is JobState["SUSPENDED"] is JobState.SUSPENDED


@pytest.mark.parametrize("given", ["DONE", 7, JobState.DONE])
def test_job_state_is_set_by_name_code_or_member(given: Any) -> None:
    info = JobInfo()
    info.job_state = given
    assert info.job_state is JobState.DONE
    assert str(info.job_state) == "DONE"


def test_machine_os_and_arch_are_names_too() -> None:
    jt = JobTemplate({"machine_os": "LINUX", "machine_arch": 8})
    assert jt.machine_os == "LINUX" and jt.machine_os is Os.LINUX
    assert jt.machine_arch == "X64" and jt.machine_arch == Cpu.X64
    machine = MachineInfo({"os": 3, "architecture": "ARM64"})
    assert str(machine.os) == "LINUX"
    assert machine.architecture.startswith("ARM")  # type: ignore[union-attr]
    assert Notification({"event": 1}).event == "MIGRATED"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1, True), (0, False), ("TRUE", True), ("FALSE", False), (Bool.TRUE, True), (False, False)],
)
def test_bool_attributes_take_codes_and_names_and_read_back_bool(
    given: Any, expected: bool
) -> None:
    jt = JobTemplate({"submit_as_hold": given})
    jt.join_files = given
    for value in (jt.submit_as_hold, jt.join_files, MachineInfo(available=given).available):
        assert value is expected


# -- 3. naive datetimes are UTC ----------------------------------------------------------------


def test_a_naive_datetime_is_read_as_utc_and_returned_aware() -> None:
    jt = JobTemplate({"start_time": datetime(2030, 1, 2, 3, 4, 5)})
    assert jt.start_time == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jt.start_time is not None and jt.start_time.utcoffset() == timedelta(0)
    jt.deadline_time = "2030-01-02T03:04:05"  # type: ignore[assignment]
    assert jt.deadline_time == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jt.to_dict()["deadline_time"] == "2030-01-02T03:04:05+00:00"


def test_an_aware_datetime_keeps_its_offset() -> None:
    cet = timezone(timedelta(hours=1))
    info = JobInfo({"submission_time": datetime(2030, 1, 2, 3, tzinfo=cet)})
    assert info.submission_time is not None and info.submission_time.utcoffset() == timedelta(
        hours=1
    )


# -- 5. implementation-specific keys ------------------------------------------------------------


def _declared(data_type: str) -> list[str]:
    return [key.name for key in extension.EXTENSION_KEYS if key.data_type == data_type]


def test_job_info_lists_the_os_backends_keys() -> None:
    keys = JobInfo.get_implementation_specific_keys()
    assert keys == _declared("JobInfo")
    assert {extension.JSESSION_PID, extension.JSESSION_MAX_RSS, "ru_maxrss", "pid"} <= set(keys)
    assert MachineInfo.get_implementation_specific_keys() == _declared("MachineInfo")
    assert extension.MACHINE_TEMPDIR in MachineInfo.get_implementation_specific_keys()
    assert JobTemplate.get_implementation_specific_keys() == []
    assert JobTemplate.get_implementation_specific_keys(backend="os") == []


def test_impl_spec_values_are_read_and_set_by_key() -> None:
    info = JobInfo({"implementation_specific": {"pid": "4242"}})
    assert info.get_impl_spec_key_value("pid") == "4242"
    assert info.get_impl_spec_key_value("ru_maxrss") is None
    info.set_impl_spec_key_value("ru_maxrss", "1024")
    assert info.implementation_specific == {"pid": "4242", "ru_maxrss": "1024"}
    with pytest.raises(InvalidArgumentException, match="expected a str value, got 1024"):
        info.set_impl_spec_key_value("ru_maxrss", 1024)  # type: ignore[arg-type]


def test_an_unknown_impl_spec_key_is_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentException) as exc_info:
        JobInfo().get_impl_spec_key_value("uge_ji_priority")
    message = str(exc_info.value)
    assert "'uge_ji_priority'" in message and "'pid'" in message and "'ru_maxrss'" in message
    with pytest.raises(InvalidArgumentException, match=r"'uge_jt_pe'.*backend 'os' are: none"):
        JobTemplate().set_impl_spec_key_value("uge_jt_pe", "smp")


def test_describe_attribute() -> None:
    pid = drmaa2.describe_attribute(JobInfo(), "pid")
    assert "'pid'" in pid and "process id" in pid and "'os'" in pid
    command = drmaa2.describe_attribute(JobTemplate({"remote_command": "/bin/true"}), "args")
    assert command == "JobTemplate.args: a list of str"
    assert "naive ones read as UTC" in drmaa2.describe_attribute(JobTemplate, "start_time")
    with pytest.raises(InvalidArgumentException, match=r"no attribute 'argz'.*'args'"):
        drmaa2.describe_attribute(JobTemplate(), "argz")
    with pytest.raises(InvalidArgumentException, match="expected a DRMAA2 data type"):
        drmaa2.describe_attribute({"args": []}, "args")


# -- 6. Bool and Time ---------------------------------------------------------------------------


def test_bool_and_time_are_exported_with_the_drmaa2_values() -> None:
    assert [(m.name, int(m)) for m in drmaa2.Bool] == [("FALSE", 0), ("TRUE", 1)]
    assert [(m.name, int(m)) for m in drmaa2.Time] == [
        ("ZERO_TIME", 0),
        ("INFINITE_TIME", -1),
        ("NOW", -2),
        ("UNSET_TIME", -3),
    ]
    assert {"Bool", "Time", "describe_attribute"} <= set(drmaa2.__all__)


# -- 7. classmethods of Version and Notification ------------------------------------------------


def test_version_classmethods() -> None:
    assert Version.get_drmaa_version() == drmaa2.get_drmaa_version() == Version("2", "0")
    assert Version.get_drms_version() == drmaa2.get_drms_version()


# -- 10. resource limits as decimal strings ----------------------------------------------------


def test_resource_limits_take_decimal_strings() -> None:
    jt = JobTemplate({"resource_limits": {"CPU_TIME": "60", "WALLCLOCK_TIME": "1.5"}})
    assert jt.resource_limits == {ResourceLimit.CPU_TIME: 60, ResourceLimit.WALLCLOCK_TIME: 1.5}
    assert type(jt.resource_limits[ResourceLimit.CPU_TIME]) is int


# -- sessions: classmethods, Time timeouts, names, collection without close() ---------------------


def test_a_job_in_the_bindings_style(js: JobSession, capsys: pytest.CaptureFixture[str]) -> None:
    template = JobTemplate({"remote_command": "/bin/sh", "args": ["-c", "exit 0"]})
    template.resource_limits = {"CPU_TIME": "60"}  # type: ignore[dict-item]
    job = js.run_job(template)
    job.wait_terminated(Time.INFINITE_TIME)
    assert js.wait_any_terminated([job], Time.ZERO_TIME) == job
    info = job.get_info()
    print(info.job_state)
    assert capsys.readouterr().out == "DONE\n"
    assert info.job_state == "DONE"
    assert info.exit_status == 0
    pid = info.get_impl_spec_key_value("pid")
    assert pid is not None and pid.isdigit()
    assert js.get_jobs({"job_state": "DONE"}) == [job]
    an_hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    assert js.get_jobs(JobInfo({"submission_time": an_hour_ago})) == [job]


@pytest.mark.parametrize("timeout", [Time.NOW, Time.UNSET_TIME])
def test_time_values_that_are_no_timeout_are_refused(js: JobSession, timeout: Time) -> None:
    job = js.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(WAIT)
    with pytest.raises(InvalidArgumentException, match=f"Time.{timeout.name} is not a timeout"):
        js.wait_all_terminated([job], timeout)


def test_session_names_are_listed_and_destroyed_by_classmethods(state_dir: str) -> None:
    with JobSession("pipeline") as session:
        assert session.name == "pipeline"
    assert JobSession.list_session_names() == ["pipeline"]
    assert JobSession.list_session_names(state_dir, "os") == ["pipeline"]
    JobSession.destroy_by_name("pipeline")
    assert JobSession.list_session_names() == []
    with pytest.raises(InvalidArgumentException):
        JobSession.destroy_by_name("pipeline", state_dir, backend="os")


def test_an_unnamed_session_collected_unclosed_is_destroyed(state_dir: str) -> None:
    for _ in range(3):
        session = JobSession()
        session.run_job({"remote_command": "/bin/true"}).wait_terminated(WAIT)
        del session
        gc.collect()
    assert JobSession.list_session_names() == []


def test_a_named_session_collected_unclosed_is_closed_and_kept(state_dir: str) -> None:
    session = JobSession("kept")
    job_id = session.run_job({"remote_command": "/bin/true"}).id
    del session
    gc.collect()
    assert JobSession.list_session_names() == ["kept"]
    with JobSession("kept", destroy_on_exit=True) as again:
        (job,) = again.get_jobs()
        assert job.id == job_id
        job.wait_terminated(WAIT)
    assert JobSession.list_session_names() == []


def test_sessions_left_open_at_interpreter_exit(state_dir: str) -> None:
    script = (
        "import drmaa2\n"
        "unnamed = drmaa2.JobSession()\n"
        "named = drmaa2.JobSession('named')\n"
        "named.run_job({'remote_command': '/bin/true'}).wait_terminated(60)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DRMAA2_OS_STATE_DIR": state_dir},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert JobSession.list_session_names() == ["named"]
    JobSession.destroy_by_name("named")


def test_notification_register_event_notification(js: JobSession) -> None:
    seen: list[Notification] = []
    done = threading.Event()

    def callback(note: Notification) -> None:
        seen.append(note)
        if note.job_state == "DONE":
            done.set()

    Notification.register_event_notification(callback)
    try:
        job = js.run_job({"remote_command": "/bin/true"})
        assert done.wait(WAIT)
    finally:
        Notification.unregister_event_notification()
    mine = [note for note in seen if note.job_id == job.id]
    assert mine[-1].event == "NEW_STATE" and mine[-1].session_name == js.name


# -- 8. arrays of mixed states; 9. scripts without #! -------------------------------------------


def test_array_control_on_an_array_of_mixed_states(js: JobSession) -> None:
    jt = JobTemplate({"remote_command": "/bin/sleep", "args": ["60"]})
    array = js.run_bulk_jobs(jt, 1, 3, 1, 1)
    first, second, third = array.job_list
    first.wait_started(Time.INFINITE_TIME)
    array.suspend()  # the queued tasks are passed over
    assert [job.get_state()[0] for job in array.job_list] == ["SUSPENDED", "QUEUED", "QUEUED"]
    array.hold()  # the suspended one is passed over
    assert [job.get_info().job_state for job in (second, third)] == ["QUEUED_HELD"] * 2
    array.release()
    array.resume()
    assert first.get_state()[0] == "RUNNING"
    first.terminate()
    first.wait_terminated(WAIT)
    array.terminate()  # the finished task is passed over
    js.wait_all_terminated(array.job_list, WAIT)
    assert [job.get_info().job_state for job in array.job_list] == ["FAILED"] * 3


def test_a_script_without_a_hash_bang_line_runs_through_sh(js: JobSession, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text('echo "ran by $0 with $1"\n')
    script.chmod(0o755)
    out = tmp_path / "out"
    job = js.run_job(
        JobTemplate({"remote_command": str(script), "args": ["x"], "output_path": str(out)})
    )
    job.wait_terminated(WAIT)
    assert job.get_info().job_state == "DONE"
    assert out.read_text() == f"ran by {script} with x\n"


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("job_name", "a\udcffb", "'a\\udcffb'"),
        ("remote_command", "/bin/tr\0ue", "'/bin/tr\\x00ue'"),
        ("args", ["ok", "x\0"], "'x\\x00'"),
        ("job_environment", {"A": "b\udcff"}, "'b\\udcff'"),
        ("job_environment", {"A\0": "b"}, "'A\\x00'"),
        ("output_path", "/tmp/\udce9t\u00e9", "'/tmp/\\udce9té'"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_naming_the_field(
    field: str, value: object, shown: str
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException) as caught:
        drmaa2.JobTemplate({field: value})
    assert f"JobTemplate.{field}" in str(caught.value)
    assert shown in str(caught.value)


@pytest.mark.parametrize("name", ["a\0b", "x\udcffy", "tab\there", "line\nbreak"])
def test_session_names_with_nul_control_characters_or_surrogates_are_refused(
    state_dir: str, name: str
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException) as caught:
        drmaa2.create_job_session(name, state_dir, backend="os")
    assert repr(name) in str(caught.value)
    assert drmaa2.get_job_session_names(state_dir, backend="os") == []


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        (drmaa2.JobInfo, "exit_status", 2**63),
        (drmaa2.JobInfo, "exit_status", -(2**63) - 1),
        (drmaa2.JobInfo, "slots", 2**64),
        (drmaa2.JobTemplate, "min_slots", 99999999999999999999),
        (drmaa2.JobTemplate, "priority", 2**70),
        (drmaa2.JobTemplate, "resource_limits", {"CPU_TIME": 2**64}),
        (drmaa2.JobTemplate, "resource_limits", {"FILE_SIZE": "18446744073709551616"}),
    ],
)
def test_integers_no_store_can_hold_are_refused_when_set(
    record: type[drmaa2.JobInfo] | type[drmaa2.JobTemplate], field: str, value: object
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException) as caught:
        record({field: value})
    assert f"{record.__name__}.{field}" in str(caught.value)
    assert "2**63" in str(caught.value) or "number" in str(caught.value)


@pytest.mark.parametrize(
    ("begin", "end", "max_parallel", "named"),
    [
        (1, 3, 99999999999999999999, "max_parallel"),
        (1, 2**63, None, "end_index"),
        (2**64, 2**64 + 1, None, "begin_index"),
    ],
)
def test_array_arguments_no_store_can_hold_are_refused(
    js: JobSession, begin: int, end: int, max_parallel: int | None, named: str
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException) as caught:
        js.run_bulk_jobs({"remote_command": "/bin/true"}, begin, end, 1, max_parallel)
    assert named in str(caught.value)
    assert js.get_jobs() == []
