"""Bad input on the command line (issue 13): what no store could hold is a usage error (exit 2),
what the job could never run with is refused at submission (exit 1); each is one line on stderr
and uses up no job id."""

from __future__ import annotations

import os

import pytest

from tests.cli.conftest import Cli, one_line_error

HUGE = "99999999999999999999"


def no_job_was_recorded(cli: Cli) -> None:
    """The refused command left nothing behind: the next job is job 1, and the only one."""
    assert cli.run("--", "true") == "1"
    assert [info["job_id"] for info in cli.json("jobs")] == ["1"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-a", "1-3", "--max-parallel", HUGE], HUGE),
        (["-a", f"1-{HUGE}"], HUGE),
        (["-a", f"1-3:{HUGE}"], HUGE),
        (["-a", f"{HUGE}-{HUGE}1"], HUGE),
        (["-a", "1-3", "--max-parallel", str(2**63)], str(2**63)),
        (["--limit", f"CPU_TIME={HUGE}"], HUGE),
        (["--limit", "FILE_SIZE=1e300"], "1e300"),
    ],
)
def test_numbers_no_store_can_hold_are_usage_errors(cli: Cli, args: list[str], named: str) -> None:
    error = one_line_error(cli("run", *args, "--", "true"), 2)
    assert named in error and "2**63 - 1" in error
    no_job_was_recorded(cli)


def test_the_largest_storable_step_is_taken(cli: Cli) -> None:
    array_id = cli.run("-a", f"1-3:{2**63 - 1}", "--wait", "--", "true")
    assert [task["job_id"] for task in cli.tasks(array_id)] == ["1.1"]


@pytest.mark.parametrize(
    ("make", "args", "named"),
    [
        ("fifo", ["--output", "{path}"], "FIFO"),
        ("fifo", ["--input", "{path}"], "FIFO"),
        ("dir", ["--error", "{path}"], "directory"),
        ("dir", ["--input", "{path}"], "directory"),
        ("dir", ["--", "{path}"], "directory"),
        ("long", ["--output", "{path}"], "NAME_MAX"),
        ("long", ["--cwd", "{path}"], "NAME_MAX"),
        (
            "none",
            ["--limit", "STACK_SIZE=256", "--", "echo", "a" * 99_000, "b" * 99_000],
            "ARG_MAX",
        ),
    ],
)
def test_what_the_job_could_never_run_with_is_one_line_and_exit_1(
    cli: Cli, make: str, args: list[str], named: str
) -> None:
    path = cli.workdir / "thing"
    if make == "fifo":
        os.mkfifo(path)
    elif make == "dir":
        path.mkdir()
    elif make == "long":
        path = cli.workdir / ("n" * 300)
    argv = [arg.replace("{path}", str(path)) for arg in args]
    if "--" not in argv:
        argv += ["--", "true"]
    error = one_line_error(cli("run", *argv), 1)
    assert named in error
    assert len(error) < 1000
    if make != "none":
        assert str(path)[:60] in error
    no_job_was_recorded(cli)


@pytest.mark.parametrize("command", ["run", "jobs", "wait", "terminate"])
def test_an_empty_session_name_is_a_usage_error(cli: Cli, command: str) -> None:
    """``--session ''`` names no session: a usage error naming the option, for every command
    (before, ``run`` took it as "none" and made a session of a generated name, kept, that no
    command could name again)."""
    args = ["--", "true"] if command == "run" else ["1"] if command != "jobs" else []
    error = one_line_error(cli(command, "--session", "", *args), 2)
    assert "--session" in error and "''" in error
    assert cli.json("sessions") == []


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["jobs", "--bogus"], "jobs"),
        (["run", "--bogus", "--", "true"], "run"),
        (["wait", "1", "--bogus"], "wait"),
        (["--bogus", "sessions"], "sessions"),
    ],
)
def test_an_unknown_option_is_named_with_its_command(
    cli: Cli, args: list[str], command: str
) -> None:
    """An option no command knows is a usage error of that command, pointing to its own
    --help (it was the top parser's, pointing to 'drmaa2 --help')."""
    error = one_line_error(cli(*args), 2)
    assert error.startswith(f"drmaa2 {command}: error: unrecognized arguments: --bogus"), error
    assert f"(see 'drmaa2 {command} --help')" in error
    no_job_was_recorded(cli)


@pytest.mark.parametrize(
    ("args", "option"),
    [(["jobs", "--js"], "--js"), (["run", "--wai", "--", "true"], "--wai")],
)
def test_an_option_is_taken_only_as_spelled(cli: Cli, args: list[str], option: str) -> None:
    """A prefix of an option is a typo, not the option (``--js`` was taken for ``--json``,
    ``--wai`` for ``--wait``)."""
    error = one_line_error(cli(*args), 2)
    assert f"unrecognized arguments: {option}" in error, error
    no_job_was_recorded(cli)
