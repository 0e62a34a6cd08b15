"""The ``drmaa2`` command line, driven as a user drives it: one process per command, real
sessions in a temporary state directory, real jobs.

Every test ends its jobs (terminate, then wait) and stops the keeper of its state directory,
so it leaves nothing running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.keepers import stop_keepers

#: Generous: these tests must pass on a loaded 2-core machine.
TIMEOUT = 60.0

#: Every command, in the order `drmaa2 --help` lists them.
COMMANDS = [
    "run",
    "jobs",
    "info",
    "wait",
    "suspend",
    "resume",
    "hold",
    "release",
    "terminate",
    "reap",
    "sessions",
    "destroy",
    "ps",
    "machines",
]


class Cli:
    """Runs ``python -m drmaa2.cli`` in a working directory with its own state directory."""

    def __init__(self, workdir: Path, state_dir: Path) -> None:
        self.workdir = workdir
        self.state_dir = state_dir
        self.env = {k: v for k, v in os.environ.items() if k != "DRMAA2_BACKEND"}
        self.env["DRMAA2_OS_STATE_DIR"] = str(state_dir)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "drmaa2.cli", *args]

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its stdout."""
        done = self(*args)
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.stderr == ""
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def info(self, job_id: str) -> dict[str, Any]:
        """The JobInfo of a job or task, as ``info --json`` prints it."""
        data = self.json("info", job_id)
        assert isinstance(data, dict)
        return data

    def info_in(self, session: str, job_id: str) -> dict[str, Any]:
        """The JobInfo of a job of another session."""
        data = self.json("info", "--session", session, job_id)
        assert isinstance(data, dict)
        return data

    def tasks(self, array_id: str) -> list[dict[str, Any]]:
        """The JobInfos of an array's tasks, as ``info --json`` prints them."""
        data = self.json("info", array_id)
        assert isinstance(data, list)
        return data

    def run(self, *args: str) -> str:
        """Submit; the job id printed."""
        out = self.ok("run", *args)
        assert out.endswith("\n") and out.count("\n") == 1
        return out.strip()

    def keepers(self) -> list[psutil.Process]:
        """The keepers serving this state directory (one at most)."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if cmdline[1:4] == ["-m", "drmaa2_ostracker.keeper", str(self.state_dir)]:
                found.append(process)
        return found

    def cleanup(self) -> None:
        """End every unfinished job of every session, then wait for the keepers to exit."""
        done = self("sessions", "--json")
        for session in json.loads(done.stdout) if done.returncode == 0 else []:
            infos = self.json("jobs", "--session", session)
            assert isinstance(infos, list)
            ids = [i["job_id"] for i in infos if i["job_state"] not in ("DONE", "FAILED")]
            if ids:
                self("terminate", "--session", session, *ids)
                self("wait", "--session", session, "--timeout", str(TIMEOUT), *ids)
        stop_keepers(self.keepers())


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    runner = Cli(workdir, tmp_path / "state")
    try:
        yield runner
    finally:
        runner.cleanup()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for an event the CLI cannot wait for (a file appearing, a process stopping)."""
    deadline = time.monotonic() + TIMEOUT
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    """Check a failed command: its exit status, and exactly one line on stderr, no traceback."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("drmaa2")
    return done.stderr
