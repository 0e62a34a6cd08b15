"""The slurm backend's monitoring session: nodes, partitions and every visible job."""

from __future__ import annotations

import subprocess

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_slurm import extension
from tests.slurm.cluster import NODE_CPUS, Cluster


@pytest.fixture
def monitoring(slurm_cluster: Cluster) -> drmaa2.MonitoringSession:
    return drmaa2.open_monitoring_session(backend="slurm", contact=str(slurm_cluster.conf))


def test_the_node_is_a_machine(
    monitoring: drmaa2.MonitoringSession, slurm_cluster: Cluster
) -> None:
    (machine,) = monitoring.get_all_machines()
    assert machine.name == slurm_cluster.node and machine.available
    assert machine.os is drmaa2.Os.LINUX and machine.phys_memory and machine.phys_memory > 0
    assert (machine.implementation_specific or {})[extension.MACHINE_CPUS] == str(NODE_CPUS)
    assert monitoring.get_all_machines(["nosuch"]) == []


def test_the_partition_is_a_queue(monitoring: drmaa2.MonitoringSession) -> None:
    (queue,) = monitoring.get_all_queues()
    assert queue.name == "debug"
    assert (queue.implementation_specific or {})[extension.QUEUE_DEFAULT] == "yes"
    assert monitoring.get_all_queues(["nosuch"]) == []


def test_a_job_submitted_outside_drmaa2_is_visible(
    monitoring: drmaa2.MonitoringSession, slurm_cluster: Cluster
) -> None:
    done = subprocess.run(
        ["sbatch", "--parsable", "-J", "outsider", "-o", "/dev/null", "--hold", "--wrap", "true"],
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    slurm_id = done.stdout.strip()
    try:
        (job,) = monitoring.get_all_jobs({"job_id": slurm_id})
        assert job.get_info().job_name == "outsider"
        assert job.get_state() == (JobState.QUEUED_HELD, "JobHeldUser")
        with pytest.raises(drmaa2.UnsupportedOperationException):
            job.terminate()
        names = [j.get_info().job_name for j in monitoring.get_all_jobs({"job_name": "outsider"})]
        assert names == ["outsider"]
    finally:
        subprocess.run(["scancel", slurm_id], env=slurm_cluster.env(), check=True)
    with pytest.raises(drmaa2.InvalidArgumentException):
        monitoring.get_all_jobs()[0]._session._job_info("999999")  # type: ignore[attr-defined]
