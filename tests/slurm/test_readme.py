"""The README's cluster example (the API example with ``backend="slurm"``) runs as written on
the test cluster and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.slurm.cluster import Cluster

README = Path(__file__).resolve().parents[2] / "README.md"


def cluster_example() -> str:
    section = README.read_text().split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's cluster section has an example"
    return match.group(1)


def test_the_api_example_differs_only_in_backend_and_paths() -> None:
    text = README.read_text()
    local = re.search(r"```python\n(.*?)```", text.split("## The API in one example", 1)[1], re.S)
    assert local
    expected = (
        local.group(1)
        .replace('backend="os"', 'backend="slurm"')
        .replace('"/tmp/hello.out"', 'f"{drmaa2.HOME_DIR}/hello.out"')
        .replace('f"/tmp/task.', 'f"{drmaa2.HOME_DIR}/task.')
        .replace("# ['2.5', '2.10']", "# ['<array id>.5', '<array id>.10']")
        .replace("# SIGKILL", "# SIGTERM or SIGKILL")
    )
    assert cluster_example() == expected


def test_readme_cluster_example_runs(slurm_cluster: Cluster, tmp_path: Path) -> None:
    # $DRMAA2_HOME_DIR$ is resolved from $HOME when the job is submitted.
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "SLURM_CONF": str(slurm_cluster.conf),
        "DRMAA2_SLURM_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", cluster_example()],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("DONE 0 ")
    failed = re.fullmatch(r"failed tasks: \['(\d+)\.5', '(\d+)\.10'\]", lines[1])
    assert failed and failed.group(1) == failed.group(2), lines[1]
    array = failed.group(1)
    assert lines[2] in ("SIGTERM", "SIGKILL")
    assert re.match(rf"\[\('\d+', 'DONE'\), \('{array}\.1', 'DONE'\)", lines[3]), lines[3]
    assert re.search(r"\('\d+', 'FAILED'\)\]$", lines[3]), lines[3]
    assert re.fullmatch(r"hello from \d+\n", (tmp_path / "hello.out").read_text())
    assert (tmp_path / "task.7.out").exists()
