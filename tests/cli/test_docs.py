"""The documentation of the command line: the README's Quickstart runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import TIMEOUT, Cli

README = Path(__file__).resolve().parents[2] / "README.md"


def test_quickstart_command_of_the_readme_runs(cli: Cli, tmp_path: Path) -> None:
    text = README.read_text()
    command = text.split("```sh\n", 1)[1].split("\n", 1)[0]
    install = "python3 -m pip install . && "
    assert command.startswith(install)
    done = subprocess.run(
        ["bash", "-c", command.removeprefix(install)],  # the project is installed already
        cwd=cli.workdir,
        env={
            **cli.env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TMPDIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert shown[:3] == [f"hello from task {n} (job 1.{n})" for n in (1, 2, 3)]
    assert shown[3].split() == ["job_id:", "1.2"]
    assert "job_state:               DONE" in shown
