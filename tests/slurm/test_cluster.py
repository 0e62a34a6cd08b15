"""The test cluster itself: every daemon answers, and accounting works where it started."""

from __future__ import annotations

import subprocess

from tests.slurm.cluster import Cluster


def test_the_node_is_idle_and_runs_a_job(slurm_cluster: Cluster) -> None:
    env = slurm_cluster.env()
    nodes = subprocess.run(["sinfo", "-h", "-o", "%n %t"], env=env, capture_output=True, text=True)
    assert nodes.stdout.split() == [slurm_cluster.node, "idle"]


def test_accounting_answers_when_it_started(slurm_cluster: Cluster) -> None:
    if not slurm_cluster.accounting:
        return
    done = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", "1"],
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["COMPLETED"]
