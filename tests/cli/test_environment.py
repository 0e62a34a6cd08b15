"""The environment a job of ``drmaa2 run`` starts from: exactly the shell's, even where Python
changes its own at start-up (locale coercion, PEP 538)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.conftest import TIMEOUT, Cli


def shell(variables: list[str], *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command from a shell whose environment is exactly ``variables`` (``env -i``)."""
    return subprocess.run(
        ["env", "-i", *variables, *command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize(
    "locale",
    [[], ["LC_CTYPE=C"], ["LC_CTYPE=C.UTF-8"], ["LC_ALL=C"]],
    ids=["unset", "LC_CTYPE=C", "LC_CTYPE=C.UTF-8", "LC_ALL=C"],
)
def test_the_job_gets_exactly_the_shells_environment(cli: Cli, locale: list[str]) -> None:
    variables = ["PATH=/usr/bin:/bin", "BAR_B=2", *locale]
    if "PYTHONPATH" in os.environ:  # where the package is imported from, in some set-ups
        variables.append(f"PYTHONPATH={os.environ['PYTHONPATH']}")
    if locale in ([], ["LC_CTYPE=C"]):
        python_sees = shell(variables, sys.executable, "-c", "import os; print(os.environ)")
        if "LC_CTYPE': 'C.UTF-8" not in python_sees.stdout:
            pytest.skip("this Python does not coerce the C locale here: nothing to undo")
    out = cli.workdir / "env.txt"
    done = shell(
        variables,
        *cli.argv("--contact", str(cli.state_dir), "run", "--wait", "-o", str(out), "--", "env"),
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert seen == {**dict(v.split("=", 1) for v in variables), "JOB_ID": "1"}
