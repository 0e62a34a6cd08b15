"""``drmaa2 wait``: its exit status, and its timeout."""

from __future__ import annotations

import signal

from tests.cli.conftest import Cli, one_line_error


def test_wait_exits_with_the_last_jobs_status(cli: Cli) -> None:
    first = cli.run("--", "sh", "-c", "exit 3")
    second = cli.run("--", "sh", "-c", "exit 5")
    assert cli("wait", first, second).returncode == 5
    assert cli("wait", second, first).returncode == 3
    array = cli.run("--array", "1-2", "--", "true")
    assert cli("wait", first, array).returncode == 0


def test_wait_timeout_is_one_line_and_exit_1(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "60")
    error = one_line_error(cli("wait", job_id, "--timeout", "0.2"), 1)
    assert "timed out" in error and job_id in error
    cli.ok("terminate", job_id)
    assert cli("wait", job_id, "--timeout", "0").returncode == 128 + signal.SIGKILL
