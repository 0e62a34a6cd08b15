"""The documentation of the command line: the README's Quickstart runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import COMMANDS, TIMEOUT, Cli

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


DOCS = README.parent / "docs"


def test_help_points_to_the_cli_reference(cli: Cli) -> None:
    assert "docs/cli.md" in " ".join(cli.ok("--help").split())
    assert (DOCS / "cli.md").is_file()
    assert "(docs/cli.md)" in README.read_text()


def test_the_cli_reference_lists_every_command() -> None:
    rows = [
        line for line in (DOCS / "cli.md").read_text().splitlines() if line.startswith("| `drmaa2 ")
    ]
    documented = {
        name
        for row in rows
        for name in row.removeprefix("| `drmaa2 ").split(" ", 1)[0].split("\\|")
    }
    assert documented == set(COMMANDS)


def test_the_performance_log_moved_to_docs() -> None:
    assert "(docs/performance.md)" in README.read_text()
    assert (DOCS / "performance.md").read_text().startswith("# Performance\n")


def test_the_code_section_names_exactly_the_cli_modules() -> None:
    section = (DOCS / "cli.md").read_text().split("\n## The code\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w.]+\.py)`", section))
    package = README.parent / "drmaa2" / "cli"
    modules = {path.name for path in package.glob("*.py")} - {"__init__.py"}
    assert named == modules
