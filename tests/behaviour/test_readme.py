"""The README's API example runs as written and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def api_example() -> str:
    text = README.read_text()
    section = text.split("## The API in one example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README has an API example"
    return match.group(1)


def test_readme_api_example_runs(tmp_path: Path) -> None:
    code = api_example().replace("/tmp/", f"{tmp_path}/")
    env = {**os.environ, "DRMAA2_OS_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("DONE 0 ")
    assert lines[1] == "failed tasks: ['2.5', '2.10']"
    assert lines[2] == "SIGKILL"
    assert lines[3].startswith("[('1', 'DONE'), ('2.1', 'DONE')")
    assert "('3', 'FAILED')" in lines[3]
    assert (tmp_path / "hello.out").read_text() == "hello from 1\n"
    assert (tmp_path / "task.7.out").exists()
