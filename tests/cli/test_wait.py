"""``drmaa2 wait``: its exit status, and its timeout."""

from __future__ import annotations

import os
import signal
import time

from drmaa2.cli.wait import _GRACE
from tests.cli.conftest import Cli, one_line_error
from tests.os.test_persistence import keeper_pid


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


def test_wait_timeout_holds_when_the_keeper_does_not_answer(cli: Cli) -> None:
    """A keeper stopped with SIGSTOP answers nothing, not even the command's first call: the
    command still gives up after --timeout and a few seconds, with exit status 1."""
    job_id = cli.run("--", "sleep", "60")
    keeper = keeper_pid(cli.state_dir)
    os.kill(keeper, signal.SIGSTOP)
    try:
        began = time.monotonic()
        error = one_line_error(cli("wait", job_id, "--timeout", "0.5"), 1)
        assert time.monotonic() - began < 0.5 + _GRACE + 5.0
        assert error.rstrip().endswith(
            f"timed out: the backend did not answer within the --timeout of 0.5 s and "
            f"{_GRACE:g} s more"
        ), error
    finally:
        os.kill(keeper, signal.SIGCONT)
    cli.ok("terminate", job_id)
    assert cli("wait", job_id, "--timeout", "0").returncode == 128 + signal.SIGKILL


def test_wait_takes_a_timeout_longer_than_any_timer(cli: Cli) -> None:
    """A --timeout too long for the command's own timer (over 292 years) is a long wait, not
    an internal error."""
    done = cli.run("--", "true")
    for timeout in ("1e10", "9223372036854775807", "1e300"):
        result = cli("wait", done, "--timeout", timeout)
        assert (result.returncode, result.stderr) == (0, "")
