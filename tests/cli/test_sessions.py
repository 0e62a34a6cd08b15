"""``drmaa2 sessions`` and ``drmaa2 destroy``."""

from __future__ import annotations

import psutil

from tests.cli.conftest import TIMEOUT, Cli, one_line_error


def test_sessions_and_destroy(cli: Cli) -> None:
    cli.ok("run", "--session", "alpha", "--wait", "--", "true")
    cli.ok("run", "-s", "beta", "--wait", "--", "true")
    assert cli.json("sessions") == ["alpha", "beta"]
    assert cli.ok("sessions") == "alpha\nbeta\n"
    assert [i["job_id"] for i in cli.json("jobs", "--session", "beta")] == ["1"]
    assert cli.ok("destroy", "alpha") == ""
    assert cli.json("sessions") == ["beta"]
    error = one_line_error(cli("destroy", "alpha"), 1)
    assert "alpha" in error


def test_run_after_the_session_was_destroyed_under_its_keeper(cli: Cli) -> None:
    gated = cli.run("-s", "gamma", "--", "sh", "-c", "while [ ! -e go ]; do sleep 0.02; done")
    process = psutil.Process(int(cli.info_in("gamma", gated)["implementation_specific"]["pid"]))
    cli.ok("destroy", "gamma")
    done = cli("run", "-s", "gamma", "--wait", "--", "true")
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")
    (cli.workdir / "go").touch()
    process.wait(TIMEOUT)  # destroyed sessions keep their running jobs running: end it


def test_the_session_before_or_after_the_command(cli: Cli) -> None:
    """``--session`` may come before the command, as the global options do; one after the
    command stands over one before it; a command that works in no session refuses one."""
    cli.ok("--session", "alpha", "run", "--wait", "--", "true")
    cli.ok("-s", "beta", "run", "--wait", "--", "true")
    cli.ok("-s", "beta", "run", "--wait", "--", "true")
    assert cli.json("sessions") == ["alpha", "beta"]
    assert [i["job_id"] for i in cli.json("--session", "beta", "jobs")] == ["1", "2"]
    assert [i["job_id"] for i in cli.json("-s", "beta", "jobs", "-s", "alpha")] == ["1"]
    assert cli.json("-s", "alpha", "info", "1")["job_id"] == "1"
    assert cli.ok("--session", "beta", "wait", "2") == ""
    assert cli.json("jobs") == []  # default: never used, and not made by a listing
    error = one_line_error(cli("--session", "beta", "sessions"), 2)
    assert "--session beta" in error and "sessions" in error
    error = one_line_error(cli("--session", "", "jobs"), 2)
    assert "--session" in error and "''" in error
    error = one_line_error(cli("-s", "nosuch", "jobs"), 1)
    assert "nosuch" in error
