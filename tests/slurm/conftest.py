"""Fixtures of the slurm backend's tests: the real cluster (see :mod:`tests.slurm.fixture`)
and a job session on it that leaves no job behind."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import drmaa2
from tests.slurm.cluster import Cluster
from tests.slurm.fixture import slurm_cluster

__all__ = ["TIMEOUT", "scontrol_job", "session", "slurm_cluster"]

#: Generous: a loaded 2-core machine, and Slurm's own scheduling passes.
TIMEOUT = 90.0


@pytest.fixture
def session(slurm_cluster: Cluster, tmp_path: Path) -> Iterator[drmaa2.JobSession]:
    """A job session on the test cluster; its unfinished jobs are cancelled and awaited after."""
    js = drmaa2.create_job_session(backend="slurm", contact=str(slurm_cluster.conf))
    yield js
    unfinished = [job for job in js.get_jobs() if not job.get_state()[0].is_terminal]
    for job in unfinished:
        with contextlib.suppress(drmaa2.InvalidStateException):
            job.terminate()
    if unfinished:
        js.wait_all_terminated(unfinished, TIMEOUT)
    js.destroy()


def scontrol_job(cluster: Cluster, slurm_id: str) -> dict[str, str]:
    """``scontrol -o show job`` of one job as a dict (values may hold spaces)."""
    from drmaa2_slurm.cluster import parse_key_values

    done = subprocess.run(
        ["scontrol", "-o", "show", "job", slurm_id],
        env=cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_key_values(done.stdout.splitlines()[0])
