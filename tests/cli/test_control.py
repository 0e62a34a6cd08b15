"""``drmaa2 suspend|resume|hold|release|terminate|reap``."""

from __future__ import annotations

import signal

import psutil

from tests.cli.conftest import Cli, one_line_error, wait_until


def test_suspend_resume_terminate(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "60")
    assert cli.info(job_id)["job_state"] == "RUNNING"
    pid = int(cli.info(job_id)["implementation_specific"]["pid"])
    process = psutil.Process(pid)
    cli.ok("suspend", job_id)
    assert cli.info(job_id)["job_state"] == "SUSPENDED"
    assert process.status() == psutil.STATUS_STOPPED
    cli.ok("resume", job_id)
    assert cli.info(job_id)["job_state"] == "RUNNING"
    wait_until(lambda: process.status() != psutil.STATUS_STOPPED, "the job to continue")
    assert cli.ok("terminate", job_id) == ""
    info = cli.info(job_id)
    assert info["job_state"] == "FAILED" and info["terminating_signal"] == "SIGKILL"
    assert info["exit_status"] == 128 + signal.SIGKILL


def test_hold_and_release(cli: Cli) -> None:
    job_id = cli.run("--hold", "--", "sh", "-c", "echo ran > ran.txt")
    assert cli.info(job_id)["job_state"] == "QUEUED_HELD"
    held = cli.json("jobs", "--state", "queued_held")
    assert [i["job_id"] for i in held] == [job_id]
    cli.ok("release", job_id)
    assert cli("wait", job_id).returncode == 0
    assert (cli.workdir / "ran.txt").read_text() == "ran\n"


def test_hold_a_queued_array_task(cli: Cli) -> None:
    gate = "while [ ! -e go ]; do sleep 0.02; done; echo $TASK_ID >> order.txt"
    array = cli.run("--array", "1-3", "--max-parallel", "1", "--", "sh", "-c", gate)
    cli.ok("hold", f"{array}.3")
    assert cli.info(f"{array}.3")["job_state"] == "QUEUED_HELD"
    (cli.workdir / "go").touch()
    assert cli("wait", f"{array}.1", f"{array}.2").returncode == 0
    assert cli.info(f"{array}.3")["job_state"] == "QUEUED_HELD"
    cli.ok("release", f"{array}.3")
    assert cli("wait", array).returncode == 0
    assert (cli.workdir / "order.txt").read_text() == "1\n2\n3\n"


def test_terminate_an_array(cli: Cli) -> None:
    array = cli.run("--array", "1-4", "--max-parallel", "2", "--", "sleep", "60")
    cli.ok("terminate", array)
    assert cli("wait", array).returncode == 1
    assert {i["job_state"] for i in cli.tasks(array)} == {"FAILED"}


def test_reap_forgets_a_finished_job(cli: Cli) -> None:
    job_id = cli.run("--wait", "--", "true")
    cli.ok("reap", job_id)
    error = one_line_error(cli("info", job_id), 1)
    assert repr(job_id) in error
    assert cli.json("jobs") == []


def test_control_errors_are_one_line(cli: Cli) -> None:
    job_id = cli.run("--wait", "--", "true")
    error = one_line_error(cli("suspend", "42"), 1)
    assert "'42'" in error
    error = one_line_error(cli("terminate", job_id), 1)
    assert "finished" in error
    running = cli.run("--", "sleep", "60")
    error = one_line_error(cli("reap", running), 1)
    assert "not finished" in error
    both = cli("resume", "nosuch", running)  # acts on what it can, names what it could not
    one_line_error(both, 1)
    cli.ok("terminate", running)


def test_terminate_an_array_after_some_tasks_finished(cli: Cli) -> None:
    array_id = cli.run(
        "-a", "1-3", "--max-parallel", "1", "--", "sh", "-c", 'test "$TASK_ID" = 1 || sleep 60'
    )
    assert cli("wait", f"{array_id}.1").returncode == 0
    wait_until(lambda: cli.info(f"{array_id}.2")["job_state"] == "RUNNING", "task 2 to start")
    done = cli("terminate", array_id)
    assert (done.returncode, done.stderr) == (0, "")
    states = [cli.info(f"{array_id}.{index}")["job_state"] for index in (1, 2, 3)]
    assert states == ["DONE", "FAILED", "FAILED"]
    again = cli("terminate", array_id)
    assert again.returncode == 1 and "none" in one_line_error(again, 1)
