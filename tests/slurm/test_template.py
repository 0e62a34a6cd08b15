"""Job templates on a real cluster: the script, the environment, paths, limits, refusals."""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_slurm import extension
from tests.behaviour.conftest import file_text, wait_until
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import TIMEOUT, scontrol_job

PY = sys.executable


def run(session: drmaa2.JobSession, **template: object) -> drmaa2.Job:
    job = session.run_job(template)
    job.wait_terminated(TIMEOUT)
    return job


def test_args_arrive_verbatim_and_no_shell_reads_them(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    args = ["$HOME", "a b", "'q'", '"', "`id`", "x\n#SBATCH -J evil\ny", "", "--", "-n", "é✓"]
    out = tmp_path / "out"
    job = run(
        session,
        remote_command=PY,
        args=["-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *args],
        output_path=str(out),
    )
    assert job.get_state()[0] is JobState.DONE
    assert json.loads(out.read_text()) == args
    assert job.get_info().job_name == Path(PY).name


def test_environment_is_the_callers_plus_the_templates_and_sbatch_variables_change_nothing(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SBATCH_JOB_NAME", "from-env")
    monkeypatch.setenv("SBATCH_PARTITION", "nosuchpartition")
    monkeypatch.setenv("DRMAA2_CALLER", "inherited")
    out = tmp_path / "env"
    job = run(
        session,
        remote_command="/bin/sh",
        args=["-c", 'printf "%s|%s|%s|%s" "$DRMAA2_CALLER" "$A" "$EMPTY" "$JOB_ID"'],
        job_environment={"A": "x,y\nz", "EMPTY": ""},
        output_path=str(out),
        job_name="named",
    )
    assert out.read_text() == f"inherited|x,y\nz||{job.id}"
    info = job.get_info()
    assert info.job_name == "named" and info.queue_name == "debug"


def test_the_submitters_own_slurm_job_variables_do_not_reach_the_job(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline driver running inside a Slurm array task: its job's SLURM_* variables are
    not the new job's (a single job saw SLURM_ARRAY_TASK_ID=7 and SLURM_NTASKS=9, which steers
    srun); Slurm's own for the job, SLURM_CONF and the template's are there."""
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    monkeypatch.setenv("SLURM_NTASKS", "9")
    monkeypatch.setenv("SLURM_SUBMIT_DIR", "/bogus")
    monkeypatch.setenv("SLURM_CONF", "/elsewhere/slurm.conf")  # not the session's cluster
    monkeypatch.setenv("SLURM_TIME_FORMAT", "relative")  # the user's own setting: kept
    out = tmp_path / "env"
    job = run(
        session,
        remote_command="/bin/sh",
        args=[
            "-c",
            'printf "%s|%s|%s|%s|%s|%s|%s" "${SLURM_ARRAY_TASK_ID-unset}" '
            '"${SLURM_NTASKS-unset}" "$SLURM_SUBMIT_DIR" "$SLURM_JOB_ID" "$SLURM_CONF" '
            '"$SLURM_MINE" "$SLURM_TIME_FORMAT"',
        ],
        job_environment={"SLURM_MINE": "given"},
        working_directory=str(tmp_path),
        output_path=str(out),
    )
    conf = session.contact
    assert out.read_text() == f"unset|unset|{os.getcwd()}|{job.id}|{conf}|given|relative"


def test_a_missing_working_directory_fails_the_job_instead_of_running_in_tmp(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    job = run(session, remote_command="/bin/pwd", working_directory=str(tmp_path / "missing"))
    info = job.get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 1)


def test_working_directory_and_relative_paths(session: drmaa2.JobSession, tmp_path: Path) -> None:
    job = run(session, remote_command="/bin/pwd", working_directory=str(tmp_path), output_path="o")
    assert job.get_state()[0] is JobState.DONE
    assert (tmp_path / "o").read_text() == f"{tmp_path}\n"


@pytest.mark.parametrize(
    ("script", "status", "signal"),
    [
        ("exit 0", 0, ""),
        ("exit 3", 3, ""),
        ("exit 200", 200, ""),
        ("kill -TERM $$", 143, "SIGTERM"),
        ("kill -KILL $$", 137, "SIGKILL"),
    ],
)
def test_exit_status_and_signal_come_from_the_raw_wait_status(
    session: drmaa2.JobSession, script: str, status: int, signal: str
) -> None:
    info = run(session, remote_command="/bin/sh", args=["-c", script]).get_info()
    assert (info.exit_status, info.terminating_signal) == (status, signal)
    assert info.job_state is (JobState.DONE if status == 0 else JobState.FAILED)


def test_a_missing_command_fails_with_127(session: drmaa2.JobSession) -> None:
    info = run(session, remote_command="/no/such/command").get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 127)


def test_streams_percent_and_join(session: drmaa2.JobSession, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.write_text("input\n")
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "cat; echo err >&2"],
        input_path=str(source),
        output_path=str(tmp_path / "100%.out"),
        join_files=True,
    )
    assert (tmp_path / "100%.out").read_text() == "input\nerr\n"
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "echo out; echo err >&2"],
        output_path=str(tmp_path / "o"),
        error_path=str(tmp_path / "e"),
    )
    assert (tmp_path / "o").read_text() == "out\n" and (tmp_path / "e").read_text() == "err\n"


def test_limits_priority_and_options_reach_slurm(
    session: drmaa2.JobSession, slurm_cluster: Cluster, tmp_path: Path
) -> None:
    job = session.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", "ulimit -n; ulimit -t"],
            "output_path": str(tmp_path / "limits"),
            "resource_limits": {"WALLCLOCK_TIME": 61, "OPEN_FILES": 64, "CPU_TIME": 30},
            "priority": 5,
            "min_slots": 2,
            "min_phys_memory": 10 * 1024,
            "rerunnable": False,
            "candidate_machines": ["nosuchnode", slurm_cluster.node],
            "submit_as_hold": True,
        }
    )
    shown = scontrol_job(slurm_cluster, job.id)
    assert shown["TimeLimit"] == "00:02:00", "limits are whole minutes, rounded up"
    assert shown["Nice"] == "5" and shown["NumCPUs"] == "2" and shown["MinMemoryNode"] == "10M"
    assert shown["Requeue"] == "0" and shown["Reason"] == "JobHeldUser"
    assert job.get_state() == (JobState.QUEUED_HELD, "JobHeldUser")
    job.release()
    job.wait_terminated(TIMEOUT)
    assert (tmp_path / "limits").read_text() == "64\n30\n"
    assert job.get_info().slots == 2


def test_start_time_keeps_the_job_queued_with_reason_begin_time(
    session: drmaa2.JobSession,
) -> None:
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    job = session.run_job({"remote_command": "/bin/true", "start_time": later})
    assert job.get_state() == (JobState.QUEUED, "BeginTime")


def test_email_goes_to_slurms_mail_program(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    run(
        session,
        remote_command="/bin/true",
        email=["a@example.org", "b@example.org"],
        email_on_started=True,
        email_on_terminated=True,
    )
    log = slurm_cluster.root / "log" / "mail.log"
    wait_until(
        lambda: "a@example.org,b@example.org" in file_text(log), TIMEOUT, "the mail to be sent"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage_in_files", {"a": "b"}),
        ("stage_out_files", {"a": "b"}),
        ("job_category", "big"),
        ("max_slots", 4),
        ("implementation_specific", {"nosuchkey": "1"}),
    ],
)
def test_what_slurm_cannot_honour_is_unsupported(
    session: drmaa2.JobSession, field: str, value: object
) -> None:
    with pytest.raises(drmaa2.UnsupportedAttributeException, match=field):
        session.run_job({"remote_command": "/bin/true", field: value})
    assert session.get_jobs() == []


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ({"queue_name": "nosuchpartition"}, "Invalid partition"),
        ({"min_slots": 10_000}, "node configuration"),
        ({"min_phys_memory": 2**40}, "node configuration|memory"),
        ({"candidate_machines": ["nosuchnode"]}, "candidate_machines"),
        ({"reservation_id": "nosuchreservation"}, "reservation"),
        ({"job_name": "two\nlines"}, "job_name"),
        ({"job_name": "unit\x1fseparator"}, r"job_name .*\\x1f"),
        ({"job_name": "record\x1eseparator"}, r"job_name .*\\x1e"),
        ({"working_directory": "/tmp/unit\x1fseparator"}, r"working_directory .*\\x1f"),
        ({"output_path": "a\\b$DRMAA2_INDEX$"}, "output_path"),
        # Slurm drops a backslash from a file name: the job would write another file.
        ({"output_path": "/tmp/back\\slash.out"}, r"output_path .*backslash"),
        ({"error_path": "back\\slash.err"}, r"error_path .*backslash"),
        ({"resource_limits": {"WALLCLOCK_TIME": 0}}, "WALLCLOCK_TIME"),
        ({"job_environment": {"A=B": "x"}}, r"job_environment .*'A=B'"),
        ({"job_environment": {"": "y"}}, "job_environment"),
    ],
)
def test_what_slurm_refuses_is_an_invalid_argument_with_its_reason(
    session: drmaa2.JobSession, template: dict[str, object], reason: str
) -> None:
    jt = {"remote_command": "/bin/true", **template}
    with pytest.raises(drmaa2.InvalidArgumentException, match=reason):
        session.run_bulk_jobs(jt, 1, 2)
    assert session.get_jobs() == []


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_an_output_that_is_the_input_by_another_name_is_refused(
    session: drmaa2.JobSession, tmp_path: Path, link: str
) -> None:
    """input_path and output_path naming one file through a link (a single job, or an
    array's task through its index): refused, the input untouched. (The job ran, and opening
    its output emptied its input.)"""
    source = tmp_path / "in.1"
    source.write_text("data\n")
    alias = tmp_path / "alias"
    if link == "symbolic":
        alias.symlink_to(source)
    else:
        alias.hardlink_to(source)
    with pytest.raises(drmaa2.InvalidArgumentException, match=r"input_path .*same file"):
        session.run_job(
            {"remote_command": "/bin/cat", "input_path": str(source), "output_path": str(alias)}
        )
    template = {
        "remote_command": "/bin/cat",
        "input_path": str(source),
        "output_path": str(tmp_path / "in.$DRMAA2_INDEX$"),
    }
    with pytest.raises(drmaa2.InvalidArgumentException, match=r"task 1\)"):
        session.run_bulk_jobs(template, 1, 2)
    assert session.get_jobs() == []
    assert source.read_text() == "data\n"


def test_an_array_index_beyond_max_array_size_names_end_index(
    session: drmaa2.JobSession,
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException, match=r"end_index: 200001 .*MaxArraySize"):
        session.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 200001, 100000)
    assert session.get_jobs() == []


def test_a_deadline_in_the_past_is_refused(session: drmaa2.JobSession) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    with pytest.raises(drmaa2.InvalidArgumentException, match="deadline_time"):
        session.run_job({"remote_command": "/bin/true", "deadline_time": past})


def test_extension_keys_become_sbatch_options(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    first = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    then = session.run_job(
        {
            "remote_command": "/bin/true",
            "implementation_specific": {extension.TEMPLATE_DEPENDENCY: f"afterok:{first.id}"},
        }
    )
    assert scontrol_job(slurm_cluster, then.id)["Dependency"].startswith(f"afterok:{first.id}")
    assert then.get_state() == (JobState.QUEUED, "Dependency")
    first.release()
    then.wait_terminated(TIMEOUT)
    assert then.get_state()[0] is JobState.DONE
