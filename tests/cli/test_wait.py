"""``drmaa2 wait``: its exit status, and its timeout."""

from __future__ import annotations

import signal

from tests.cli.conftest import Cli, one_line_error


def test_wait_is_zero_only_if_every_job_is_done(cli: Cli) -> None:
    done = cli.run("--", "true")
    array = cli.run("--array", "1-2", "--", "true")
    assert cli("wait", done, array).returncode == 0


def test_wait_exits_with_the_status_of_a_failed_job_wherever_it_is_named(cli: Cli) -> None:
    failing = cli.run("--", "sh", "-c", "exit 3")
    succeeding = cli.run("--", "true")
    array = cli.run("--array", "1-2", "--", "true")
    assert cli("wait", failing, succeeding).returncode == 3
    assert cli("wait", succeeding, failing).returncode == 3
    assert cli("wait", failing, array).returncode == 3
    failing_array = cli.run("--array", "1-2", "--", "sh", "-c", 'test "$TASK_ID" != 1')
    assert cli("wait", failing_array, succeeding).returncode == 1
    no_status = cli.run("--hold", "--", "true")
    cli.ok("terminate", no_status)  # a held job ends without having run: no exit status
    assert cli.info(no_status)["exit_status"] is None
    assert cli("wait", no_status, succeeding).returncode == 1


def test_wait_exits_with_the_last_failed_jobs_status(cli: Cli) -> None:
    first = cli.run("--", "sh", "-c", "exit 3")
    second = cli.run("--", "sh", "-c", "exit 5")
    done = cli.run("--", "true")
    assert cli("wait", first, second, done).returncode == 5
    assert cli("wait", second, first, done).returncode == 3


def test_wait_timeout_is_one_line_and_exit_1(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "60")
    error = one_line_error(cli("wait", job_id, "--timeout", "0.2"), 1)
    assert "timed out" in error and job_id in error
    cli.ok("terminate", job_id)
    assert cli("wait", job_id, "--timeout", "0").returncode == 128 + signal.SIGKILL
