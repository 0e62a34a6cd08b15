"""Single jobs: template → job, JobInfo, validation (seed tables; issue 3 §1, §2, §5), for every
backend; what the os backend does with local processes (pids, rusage, nice) is in tests/os."""

from __future__ import annotations

import datetime
import getpass
import os
import resource
import socket
import sys
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, Documented, file_text

PY = sys.executable


def run(session: drmaa2.JobSession, **template: object) -> drmaa2.Job:
    job = session.run_job(template)
    job.wait_terminated(TIMEOUT)
    return job


def test_minimal_job_is_done_with_exit_status_0(session: drmaa2.JobSession) -> None:
    job = run(session, remote_command="/bin/true")
    assert job.get_state() == (JobState.DONE, "")
    info = job.get_info()
    assert info.exit_status == 0
    assert info.terminating_signal == ""
    assert info.job_state is JobState.DONE
    assert info.job_id == job.id
    assert info.annotation is None  # nothing to say about a job that did what it should


def test_nonzero_exit_is_failed_with_that_status(session: drmaa2.JobSession) -> None:
    job = run(session, remote_command="/bin/sh", args=["-c", "exit 3"])
    assert job.get_state()[0] is JobState.FAILED
    info = job.get_info()
    assert (info.exit_status, info.terminating_signal) == (3, "")


@pytest.mark.parametrize(("name", "number"), [("TERM", 15), ("USR1", 10), ("SEGV", 11)])
def test_killed_by_signal_reports_128_plus_n_and_name(
    session: drmaa2.JobSession, name: str, number: int, tmp_path: Path
) -> None:
    """A job a signal killed ran: its sub-state never says it could not start (slurm gave
    JobLaunchFailure, Slurm's reason for it, as to a job that never started), and its
    annotation names the signal."""
    # In a directory of its own: a core dump (SIGSEGV) is left there.
    job = run(
        session,
        remote_command="/bin/sh",
        args=["-c", f"kill -{name} $$"],
        working_directory=str(tmp_path),
    )
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert info.exit_status == 128 + number
    assert info.terminating_signal == f"SIG{name}"
    assert info.job_sub_state not in ("start_failed", "JobLaunchFailure")
    assert f"SIG{name}" in (info.annotation or "")


def machine_names(backend: str) -> set[str]:
    """The names of the machines the backend's monitoring session lists."""
    monitoring = drmaa2.open_monitoring_session(backend=backend)
    try:
        return {str(machine.name) for machine in monitoring.get_all_machines()}
    finally:
        monitoring.close()


def test_jobinfo_of_finished_job(session: drmaa2.JobSession, backend: str) -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    job = run(session, remote_command=PY, args=["-c", "sum(range(10**7))"], job_name="busy")
    info = job.get_info()
    assert info.allocated_machines and set(info.allocated_machines) <= machine_names(backend)
    assert info.submission_machine == socket.gethostname()
    assert info.job_owner == getpass.getuser()
    assert info.slots == 1
    assert info.job_name == "busy" == job.job_name
    assert info.submission_time is not None and info.submission_time >= before
    assert info.dispatch_time is not None and info.finish_time is not None
    assert info.submission_time <= info.dispatch_time <= info.finish_time
    assert info.wallclock_time == info.finish_time - info.dispatch_time
    # Unknown is None (slurm: where the cluster keeps no accounting); known, it is counted.
    assert info.cpu_time is None or info.cpu_time > 0
    # Times never change once set.
    assert job.get_info().finish_time == info.finish_time
    assert job.get_info().dispatch_time == info.dispatch_time


def test_running_job_reports_dispatch_time_and_wallclock(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.RUNNING
    assert info.dispatch_time is not None
    assert info.finish_time is None and info.exit_status is None
    assert info.wallclock_time is not None and info.wallclock_time >= datetime.timedelta(0)
    assert job.get_state()[0] is job.get_info().job_state
    job.terminate()
    job.wait_terminated(TIMEOUT)


def test_args_are_passed_verbatim_never_through_a_shell(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["$HOME", "a b", "*", "'q'", ";", ""]
    run(
        session,
        remote_command=PY,
        args=["-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *args],
        output_path=str(out),
    )
    import json

    assert json.loads(out.read_text()) == args


def test_command_found_on_path(session: drmaa2.JobSession, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(session, remote_command="echo", args=["found"], output_path=str(out))
    assert out.read_text() == "found\n"


def test_environment_is_inherited_extended_and_has_job_id(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRMAA2_TEST_INHERITED", "yes")
    out = tmp_path / "env"
    job = run(
        session,
        remote_command="/bin/sh",
        args=["-c", 'echo "$DRMAA2_TEST_INHERITED $MINE $JOB_ID ${TASK_ID-unset}"'],
        job_environment={"MINE": "v 1"},
        output_path=str(out),
    )
    assert out.read_text() == f"yes v 1 {job.id} unset\n"


@pytest.mark.parametrize("given", ["inherited", "in the template"])
@pytest.mark.parametrize("priority", [None, 1], ids=["plain", "priority"])
def test_a_single_job_has_no_task_id_whatever_it_was_given(
    session: drmaa2.JobSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: str,
    priority: int | None,
) -> None:
    """A job submitted from an array task (TASK_ID in its environment), or with TASK_ID in
    its template, is no task: it has no TASK_ID, on every backend (slurm kept it), also when
    it is started with code between fork and exec (os: a priority, limits; it kept it)."""
    environment: dict[str, str] = {}
    if given == "inherited":
        monkeypatch.setenv("TASK_ID", "7")
    else:
        environment = {"TASK_ID": "7"}
    out = tmp_path / "env"
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", 'echo "${TASK_ID-unset}"'],
        job_environment=environment,
        output_path=str(out),
        priority=priority,
    )
    assert out.read_text() == "unset\n"


def test_environment_is_read_at_submission(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRMAA2_TEST_LATE", "at-submit")
    out = tmp_path / "env"
    job = session.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", 'echo "$DRMAA2_TEST_LATE"'],
            "output_path": str(out),
            "submit_as_hold": True,
        }
    )
    monkeypatch.setenv("DRMAA2_TEST_LATE", "changed")
    job.release()
    job.wait_terminated(TIMEOUT)
    assert out.read_text() == "at-submit\n"


def test_working_directory_and_default_cwd(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pwd"
    run(session, remote_command="/bin/pwd", working_directory=str(tmp_path), output_path=str(out))
    assert out.read_text() == f"{tmp_path}\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run(session, remote_command="/bin/pwd", output_path=str(out))
    assert out.read_text() == f"{elsewhere}\n"


def cannot_start(
    session: drmaa2.JobSession, documented: Documented, field: str, **template: object
) -> drmaa2.JobInfo | None:
    """Submit a job that cannot start: refused naming ``field`` by a backend that checks files
    at submission (nothing recorded; None), else accepted and FAILED (its JobInfo)."""
    if documented.checks_files_at_submission:
        with pytest.raises(drmaa2.InvalidArgumentException, match=field):
            session.run_job(template)
        assert session.get_jobs() == []
        return None
    job = run(session, **template)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    return info


def test_missing_working_directory_is_rejected_or_fails_the_job(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    info = cannot_start(
        session,
        documented,
        "working_directory",
        remote_command="/bin/pwd",
        working_directory=str(missing),
        output_path=str(tmp_path / "out"),
    )
    if info is not None:
        assert info.exit_status == 1
    assert file_text(tmp_path / "out") == "", "the command never ran elsewhere"


@pytest.mark.parametrize(
    ("command", "fragment"),
    [("/no/such/binary", "remote_command"), ("no-such-command-xyz", "remote_command")],
)
def test_missing_command_is_rejected_or_fails_the_job_with_127(
    session: drmaa2.JobSession, documented: Documented, command: str, fragment: str
) -> None:
    if documented.checks_files_at_submission:
        with pytest.raises(drmaa2.InvalidArgumentException, match=fragment) as caught:
            session.run_job({"remote_command": command})
        assert command in str(caught.value)
        assert session.get_jobs() == []
    else:
        info = run(session, remote_command=command).get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 127)


def test_not_executable_command_is_rejected_or_fails_the_job_with_126(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    for command in (script, tmp_path):
        info = cannot_start(session, documented, "remote_command", remote_command=str(command))
        assert info is None or info.exit_status == 126
    jobs = session.get_jobs()
    with pytest.raises(drmaa2.InvalidArgumentException, match="remote_command"):
        session.run_job({"args": ["x"]})
    assert session.get_jobs() == jobs


def test_input_output_error_files(session: drmaa2.JobSession, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.write_text("line one\nline two\n")
    out, err = tmp_path / "out", tmp_path / "err"
    out.write_text("old content that must be truncated away\n" * 10)
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "cat; echo problem >&2"],
        input_path=str(source),
        output_path=str(out),
        error_path=str(err),
    )
    assert out.read_text() == "line one\nline two\n"
    assert err.read_text() == "problem\n"


def test_unset_output_and_error_are_discarded(
    session: drmaa2.JobSession, capfd: pytest.CaptureFixture[str]
) -> None:
    run(session, remote_command="/bin/sh", args=["-c", "echo visible-out; echo visible-err >&2"])
    captured = capfd.readouterr()
    assert "visible-out" not in captured.out and "visible-err" not in captured.err


def test_join_files_sends_stderr_to_output(session: drmaa2.JobSession, tmp_path: Path) -> None:
    out = tmp_path / "joined"
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "echo one; echo two >&2; echo three"],
        output_path=str(out),
        error_path=str(tmp_path / "unused"),
        join_files=True,
    )
    assert out.read_text() == "one\ntwo\nthree\n"
    assert not (tmp_path / "unused").exists()


def test_same_file_for_output_and_error_keeps_both(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    both = tmp_path / "both"
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2"],
        output_path=str(both),
        error_path=str(both),
    )
    assert both.read_text() == "out-1\nerr-1\nout-2\nerr-2\n"


def test_pipe_between_two_jobs_through_files(session: drmaa2.JobSession, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    run(session, remote_command="/bin/echo", args=["from job one"], output_path=str(first))
    run(
        session,
        remote_command="/usr/bin/tr",
        args=["a-z", "A-Z"],
        input_path=str(first),
        output_path=str(second),
    )
    assert second.read_text() == "FROM JOB ONE\n"


@pytest.mark.parametrize("field", ["output_path", "error_path"])
def test_output_in_missing_directory_is_rejected_or_fails_the_job(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path, field: str
) -> None:
    target = tmp_path / "no" / "file"
    template = {"remote_command": "/bin/true", field: str(target)}
    info = cannot_start(session, documented, field, **template)
    if info is not None:
        assert info.exit_status is None and info.dispatch_time is not None
        assert f"{field} {target}" in (info.annotation or "")


def test_missing_input_is_rejected_or_fails_the_job(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path
) -> None:
    source = tmp_path / "none"
    info = cannot_start(
        session, documented, "input_path", remote_command="/bin/cat", input_path=str(source)
    )
    if info is not None:
        assert info.exit_status is None
        assert f"input_path {source}" in (info.annotation or "")


@pytest.mark.parametrize("field", ["output_path", "error_path"])
def test_input_equal_to_output_is_rejected(
    session: drmaa2.JobSession, tmp_path: Path, field: str
) -> None:
    same = tmp_path / "same"
    same.write_text("data\n")
    with pytest.raises(drmaa2.InvalidArgumentException, match="input_path"):
        session.run_job({"remote_command": "/bin/cat", "input_path": str(same), field: str(same)})
    assert same.read_text() == "data\n", "a rejected job must not truncate anything"


def test_placeholders_in_paths(session: drmaa2.JobSession, tmp_path: Path) -> None:
    job = run(
        session,
        remote_command="/bin/pwd",
        working_directory=str(tmp_path),
        output_path=f"{drmaa2.WORKING_DIR}/pwd.out",
    )
    assert job.get_state()[0] is JobState.DONE
    assert (tmp_path / "pwd.out").read_text() == f"{tmp_path}\n"
    home = os.path.expanduser("~")
    job = run(
        session,
        remote_command="/bin/pwd",
        working_directory=drmaa2.HOME_DIR,
        output_path=str(tmp_path / "home.out"),
    )
    assert (tmp_path / "home.out").read_text() == f"{home}\n"


def test_relative_paths_are_relative_to_the_working_directory(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    run(
        session,
        remote_command="/bin/echo",
        args=["rel"],
        working_directory=str(tmp_path),
        output_path="rel.out",
    )
    assert (tmp_path / "rel.out").read_text() == "rel\n"


def test_name_and_accounting_id_are_kept(session: drmaa2.JobSession) -> None:
    job = run(session, remote_command="/bin/true", job_name="named", accounting_id="project-7")
    assert job.get_state()[0] is JobState.DONE
    template = job.get_template()
    assert (template.job_name, template.accounting_id) == ("named", "project-7")
    assert job.get_info().job_name == "named"


@pytest.mark.parametrize(
    ("field", "value", "capability"),
    [
        ("email", ["someone@example.org"], drmaa2.Capability.JT_EMAIL),
        ("email_on_started", True, drmaa2.Capability.JT_EMAIL),
        ("email_on_terminated", True, drmaa2.Capability.JT_EMAIL),
        ("stage_in_files", {"a": "b"}, drmaa2.Capability.JT_STAGING),
        ("stage_out_files", {"a": "b"}, drmaa2.Capability.JT_STAGING),
        ("max_slots", 4, drmaa2.Capability.JT_MAXSLOTS),
        ("reservation_id", "no-such-reservation", None),
        ("queue_name", "no-such-queue", None),
        ("min_slots", 2**20, None),
        ("implementation_specific", {"unknown_key": "x"}, None),
    ],
)
def test_attributes_that_cannot_be_honoured_are_refused(
    session: drmaa2.JobSession,
    backend: str,
    field: str,
    value: object,
    capability: drmaa2.Capability | None,
) -> None:
    template = {"remote_command": "/bin/true", field: value}
    if capability is not None and drmaa2.supports(capability, backend=backend):
        assert run(session, **template).get_state()[0] is JobState.DONE
        return
    with pytest.raises(
        (drmaa2.UnsupportedAttributeException, drmaa2.InvalidArgumentException), match=field
    ):
        session.run_job(template)
    assert session.get_jobs() == []


def test_machine_requirements_a_machine_meets_are_accepted(
    session: drmaa2.JobSession, backend: str
) -> None:
    monitoring = drmaa2.open_monitoring_session(backend=backend)
    machine = monitoring.get_all_machines()[0]
    monitoring.close()
    job = run(
        session,
        remote_command="/bin/true",
        candidate_machines=[machine.name, "surely-not-this-host.invalid"],
        machine_os=drmaa2.Os.LINUX,
        machine_arch=machine.architecture,
        min_phys_memory=1024,
        min_slots=1,
        max_slots=1,
    )
    assert job.get_state()[0] is JobState.DONE


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"min_slots": 1, "max_slots": 0}, "max_slots"),
        ({"start_time": "+7200", "deadline_time": "+3600"}, "deadline_time"),
        ({"start_time": "+3600", "deadline_time": "+3600"}, "deadline_time"),
    ],
)
def test_fields_that_contradict_each_other_are_refused(
    session: drmaa2.JobSession, fields: dict[str, object], named: str
) -> None:
    """A slot range ending below its start, a deadline no later than the start time: the
    job could never run as asked (both were taken; the second could only ever end FAILED)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    template: dict[str, object] = {"remote_command": "/bin/true"}
    for key, value in fields.items():
        if isinstance(value, str):
            value = now + datetime.timedelta(seconds=int(value))
        template[key] = value
    with pytest.raises(drmaa2.InvalidArgumentException, match=named):
        session.run_job(template)
    with pytest.raises(drmaa2.InvalidArgumentException, match=named):
        session.run_bulk_jobs(template, 1, 2)
    assert session.get_jobs() == []


def test_an_empty_candidate_machines_is_unset(session: drmaa2.JobSession) -> None:
    """As in the C binding, where an empty list is the unset list (it was refused)."""
    job = run(session, remote_command="/bin/true", candidate_machines=[])
    assert job.get_state()[0] is JobState.DONE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("candidate_machines", ["surely-not-this-host.invalid"]),
        ("machine_os", "WIN"),
        ("min_phys_memory", 2**50),
    ],
)
def test_unsatisfiable_machine_requirements_are_refused(
    session: drmaa2.JobSession, field: str, value: object
) -> None:
    with pytest.raises(
        (drmaa2.UnsupportedAttributeException, drmaa2.InvalidArgumentException), match=field
    ):
        session.run_job({"remote_command": "/bin/true", field: value})


def test_priority_is_accepted_and_kept(session: drmaa2.JobSession) -> None:
    # What it means is the backend's: a nice increment (os), Slurm's --nice (slurm).
    job = run(session, remote_command="/bin/true", priority=7)
    assert job.get_state()[0] is JobState.DONE
    assert job.get_template().priority == 7


def test_resource_limits_hold_from_the_first_instruction(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    out = tmp_path / "limits"
    names = {
        "CORE_FILE_SIZE": "RLIMIT_CORE",
        "CPU_TIME": "RLIMIT_CPU",
        "DATA_SIZE": "RLIMIT_DATA",
        "FILE_SIZE": "RLIMIT_FSIZE",
        "OPEN_FILES": "RLIMIT_NOFILE",
        "STACK_SIZE": "RLIMIT_STACK",
        "VIRTUAL_MEMORY": "RLIMIT_AS",
    }
    limits = {
        "CORE_FILE_SIZE": 0,
        "CPU_TIME": 100,
        "DATA_SIZE": 4 * 1024 * 1024,
        "FILE_SIZE": 1024,
        "OPEN_FILES": 64,
        "STACK_SIZE": 4096,
        "VIRTUAL_MEMORY": 8 * 1024 * 1024,
    }
    code = (
        "import resource; "
        "print(' '.join(str(resource.getrlimit(getattr(resource, n))[0]) for n in %r))"
    )
    run(
        session,
        remote_command=PY,
        args=["-c", code % list(names.values())],
        resource_limits=limits,
        output_path=str(out),
    )
    seen = [int(v) for v in out.read_text().split()]
    expected = [limits[k] * (1 if k in ("CPU_TIME", "OPEN_FILES") else 1024) for k in names]
    assert seen == expected
    # This process is untouched.
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] != 64


def test_file_size_limit_stops_a_job_writing_too_much(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    out = tmp_path / "big"
    job = run(
        session,
        remote_command="/bin/sh",
        args=["-c", "head -c 1000000 /dev/zero"],
        output_path=str(out),
        # SIGXFSZ may dump a core: in the test's own directory, not wherever pytest runs.
        working_directory=str(tmp_path),
        resource_limits={"FILE_SIZE": 10},
    )
    assert job.get_state()[0] is JobState.FAILED
    assert out.stat().st_size <= 10 * 1024


def test_wallclock_limit_terminates_the_job(
    session: drmaa2.JobSession, documented: Documented
) -> None:
    # One second, rounded up to the backend's unit: a whole minute on slurm, whose kill may
    # come up to a minute later still.
    unit = documented.time_limit_unit
    job = session.run_job(
        {"remote_command": "/bin/sleep", "args": ["600"], "resource_limits": {"WALLCLOCK_TIME": 1}}
    )
    job.wait_terminated(TIMEOUT + 2 * unit)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert info.terminating_signal in documented.kill_signals
    assert "wallclock" in (info.annotation or "")
    # Not killed before its limit, rounded up to the unit (less a second on slurm, whose
    # dispatch and finish times are whole seconds).
    assert info.wallclock_time is not None
    assert info.wallclock_time >= datetime.timedelta(seconds=max(1, unit - 1))


def test_deadline_terminates_the_job(session: drmaa2.JobSession, documented: Documented) -> None:
    deadline = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    job = session.run_job(
        {"remote_command": "/bin/sleep", "args": ["60"], "deadline_time": deadline}
    )
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert "deadline" in (info.annotation or "")
    assert info.finish_time is not None
    if documented.time_limit_unit == 1:
        assert info.finish_time >= deadline
    else:
        # It could not run a whole unit before its deadline: ended without starting.
        assert info.dispatch_time is None and info.exit_status is None


def test_deadline_in_the_past_is_rejected(session: drmaa2.JobSession) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    with pytest.raises(drmaa2.InvalidArgumentException, match="deadline_time"):
        session.run_job({"remote_command": "/bin/true", "deadline_time": past})


def test_start_time_keeps_the_job_queued_until_then(session: drmaa2.JobSession) -> None:
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1.5)
    job = session.run_job({"remote_command": "/bin/true", "start_time": start})
    assert job.get_state()[0] is JobState.QUEUED
    with pytest.raises(drmaa2.TimeoutException):
        job.wait_started(0.2)
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.DONE
    assert info.dispatch_time is not None and info.dispatch_time >= start


def test_submit_as_hold_waits_for_release(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    assert job.get_state()[0] is JobState.QUEUED_HELD
    info = job.get_info()
    assert info.dispatch_time is None and info.allocated_machines is None
    with pytest.raises(drmaa2.TimeoutException):
        job.wait_started(drmaa2.ZERO_TIME)
    job.release()
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.DONE


def test_job_ids_are_strings_counting_up(session: drmaa2.JobSession) -> None:
    first = run(session, remote_command="/bin/true")
    second = run(session, remote_command="/bin/true")
    assert isinstance(first.id, str)
    assert int(second.id) == int(first.id) + 1
    first.reap()
    third = run(session, remote_command="/bin/true")
    assert int(third.id) == int(second.id) + 1, "ids are never reused"
