"""``drmaa2 jobs`` and ``drmaa2 info``."""

from __future__ import annotations

import drmaa2
from tests.cli.conftest import Cli, one_line_error


def test_info_of_a_task_an_array_and_a_job(cli: Cli) -> None:
    cli.ok("run", "--array", "1-3", "--wait", "--", "true")
    task = cli.info("1.2")
    assert set(task) == set(drmaa2.JobInfo().to_dict())
    assert task["job_id"] == "1.2" and task["job_state"] == "DONE"
    assert drmaa2.JobInfo.from_dict(task).job_id == "1.2"
    tasks = cli.json("info", "1")
    assert isinstance(tasks, list) and [t["job_id"] for t in tasks] == ["1.1", "1.2", "1.3"]
    text = cli.ok("info", "1.2")
    fields = dict(line.split(":", 1) for line in text.splitlines() if not line.startswith(" "))
    assert fields["job_id"].strip() == "1.2"
    assert fields["job_state"].strip() == "DONE"
    assert fields["wallclock_time"].strip().startswith("0:00:")
    assert "  ru_maxrss:" in text


def test_jobs_json_and_state_filter(cli: Cli) -> None:
    cli("run", "--wait", "--", "true")
    cli("run", "--wait", "--", "false")
    infos = cli.json("jobs")
    assert isinstance(infos, list) and len(infos) == 2
    assert all(list(info) == list(drmaa2.JobInfo().to_dict()) for info in infos)
    assert [drmaa2.JobInfo.from_dict(info).job_state for info in infos] == [
        drmaa2.JobState.DONE,
        drmaa2.JobState.FAILED,
    ]
    failed = cli.json("jobs", "--state", "failed")
    assert [info["job_id"] for info in failed] == ["2"]
    table = cli.ok("jobs", "--state", "DONE").splitlines()
    assert len(table) == 2 and table[1].split()[0] == "1"


def test_a_never_used_default_session_has_no_jobs(cli: Cli) -> None:
    assert cli.ok("jobs").split() == [
        "ID",
        "NAME",
        "STATE",
        "EXIT",
        "SIGNAL",
        "WALLCLOCK",
        "MAXRSS",
    ]
    assert cli.json("jobs") == []
    assert cli.json("sessions") == []
    error = one_line_error(cli("info", "1"), 1)
    assert "default" in error
    error = one_line_error(cli("jobs", "--session", "nosuch"), 1)
    assert "nosuch" in error


def test_a_large_array_is_listed_whole_in_order(cli: Cli) -> None:
    """An array of more tasks than one request of records holds (2,000): every task, in
    order, with its state, by `jobs` and by `info ARRAY` (the records are read many at a
    time: one round trip per task took 15 s for 100,000); a task reaped is left out."""
    array_id = cli.run("--array", "1-4500", "--hold", "--", "true")
    cli.ok("terminate", f"{array_id}.7")
    cli.ok("reap", f"{array_id}.7")
    expected = [f"{array_id}.{index}" for index in range(1, 4501) if index != 7]
    listed = cli.json("jobs")
    assert [info["job_id"] for info in listed] == expected
    assert {info["job_state"] for info in listed} == {"QUEUED_HELD"}
    tasks = cli.tasks(array_id)
    assert [info["job_id"] for info in tasks] == expected
    table = cli.ok("jobs").splitlines()
    assert len(table) == 1 + len(expected) and table[1].split()[:3] == [
        f"{array_id}.1",
        "-",
        "QUEUED_HELD",
    ]
    cli.ok("terminate", array_id)
