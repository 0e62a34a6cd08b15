"""The program as a whole: help, version, global options, and every error as one line with
the right exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import drmaa2
from tests.cli.conftest import COMMANDS, TIMEOUT, Cli, one_line_error


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_for_every_command(cli: Cli, command: str) -> None:
    out = cli.ok(*([command] if command else []), "--help")
    assert out.startswith(f"usage: drmaa2 {command}".rstrip())
    assert "--backend" in out and "--contact" in out


def test_console_script_and_version(cli: Cli) -> None:
    script = Path(sys.executable).with_name("drmaa2")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert done.stdout.strip() == f"drmaa2 {drmaa2.__version__}"


def test_global_options_before_or_after_the_command(cli: Cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other-state"
    cli.ok("--contact", str(elsewhere), "run", "--wait", "--", "true")
    assert cli.json("sessions", "--contact", str(elsewhere)) == ["default"]
    assert cli.json("sessions", "--backend", "os") == []
    assert cli.json("--backend", "os", "--contact", str(elsewhere), "jobs")  # one job
    error = one_line_error(cli("--backend", "nosuch", "jobs"), 1)
    assert "nosuch" in error and "'os'" in error
    one_line_error(cli("jobs", "--backend", "nosuch"), 1)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--limit", "NOPE=1", "--", "true"], "NOPE"),
        (["run", "--limit", "cpu_time=soon", "--", "true"], "soon"),
        (["run", "--limit", "CPU_TIME", "--", "true"], "CPU_TIME"),
        (["run", "--env", "=x", "--", "true"], "=x"),
        (["run", "--env", "NOVALUE", "--", "true"], "NOVALUE"),
        (["run", "--output", "/dev/tty", "--", "true"], "/dev/tty"),
        (["run", "--input", "/dev/fd/3", "--", "true"], "/dev/fd/3"),
        (["run", "--"], "command"),
        (["run"], "command"),
        (["run", "--", ""], "command"),
        (["destroy", ""], "''"),
        (["run", "--array", "5-2", "--", "true"], "5-2"),
        (["run", "--array", "0-2", "--", "true"], "0-2"),
        (["run", "--max-parallel", "2", "--", "true"], "--array"),
        (["run", "--array", "1-2", "--max-parallel", "0", "--", "true"], "'0'"),
        (["jobs", "--state", "sleepy"], "sleepy"),
        (["wait", "1", "--timeout", "-1"], "-1"),
        (["wait"], "JOB"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
        (["ps", "--sort", "age"], "age"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(cli: Cli, args: list[str], named: str) -> None:
    error = one_line_error(cli(*args), 2)
    assert named in error


def test_drmaa2_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    error = one_line_error(cli("run", "--", "no-such-command-here"), 1)
    assert error.startswith("drmaa2: error:") and "no-such-command-here" in error
    cli.run("--wait", "--", "true")
    for command in ("info", "wait", "suspend"):
        error = one_line_error(cli(command, "9.9"), 1)
        assert "'9.9'" in error
