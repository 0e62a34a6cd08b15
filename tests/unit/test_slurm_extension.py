"""The ``slurm`` backend's implementation-specific keys (drmaa2_slurm/extension.py): declared to
drmaa2 in its BackendSpec, exactly those its code sets and reads. No cluster is needed: the
registry is plain Python, and the keys are checked on JobInfo, MachineInfo and QueueInfo built
from squeue and scontrol output as Slurm prints it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import drmaa2
from drmaa2 import InvalidArgumentException, JobInfo, JobTemplate, MachineInfo, QueueInfo
from drmaa2_slurm import extension, template
from drmaa2_slurm.cluster import parse_key_values
from drmaa2_slurm.info import add_usage, job_info_of
from drmaa2_slurm.monitoring_session import SlurmMonitoringSession, _machine
from drmaa2_slurm.states import SlurmJob

_SQUEUE_ROW = [
    *("12_3", "COMPLETED", "None", "0", "0", "2030-01-01T12:00:00", "2030-01-01T12:00:01"),
    *("2030-01-01T12:00:02", "0:01", "node1", "alice", "1", "debug", "/home/alice", "job"),
]
_NODE = (
    "NodeName=node1 Arch=x86_64 CPUTot=64 CPULoad=0.01 FreeMem=1000 RealMemory=2000 Sockets=1 "
    "CoresPerSocket=64 ThreadsPerCore=1 OS=Linux 6.1.0 Partitions=debug State=IDLE"
)
_PARTITION = (
    "PartitionName=debug AllowGroups=ALL Default=YES MaxTime=UNLIMITED State=UP TotalCPUs=64 "
    "TotalNodes=1"
)


def _declared(data_type: str) -> list[str]:
    return [key.name for key in extension.EXTENSION_KEYS if key.data_type == data_type]


@pytest.mark.parametrize("cls", [JobTemplate, JobInfo, MachineInfo, QueueInfo])
def test_the_backend_declares_its_keys(cls: Any) -> None:
    keys = cls.get_implementation_specific_keys(backend="slurm")
    assert keys == _declared(cls.__name__) != []


def test_template_keys_are_those_that_become_sbatch_options() -> None:
    assert set(_declared("JobTemplate")) == set(template._EXTENSION_OPTIONS)
    assert _declared("JobTemplate") == ["constraint", "qos", "gres", "dependency", "wckey"]


def test_a_template_key_is_set_and_described() -> None:
    jt = JobTemplate({"remote_command": "/bin/true"})
    jt.set_impl_spec_key_value("qos", "normal", backend="slurm")
    jt.set_impl_spec_key_value(extension.TEMPLATE_GRES, "gpu:1", backend="slurm")
    assert jt.implementation_specific == {"qos": "normal", "gres": "gpu:1"}
    assert jt.get_impl_spec_key_value("constraint", backend="slurm") is None
    assert "--qos" in drmaa2.describe_attribute(jt, "qos", backend="slurm")
    with pytest.raises(InvalidArgumentException, match=r"'partition'.*'constraint', 'qos'"):
        jt.set_impl_spec_key_value("partition", "debug", backend="slurm")


def test_job_info_carries_the_declared_keys() -> None:
    info = job_info_of(SlurmJob(_SQUEUE_ROW), lambda hosts: [hosts])
    add_usage(info, (1.5, 2048))
    assert list(info.implementation_specific or {}) == _declared("JobInfo")
    assert info.get_impl_spec_key_value("slurm_job_id", backend="slurm") == "12_3"
    assert info.get_impl_spec_key_value("slurm_state", backend="slurm") == "COMPLETED"
    assert info.get_impl_spec_key_value("max_rss", backend="slurm") == "2048"


def test_machine_info_carries_the_declared_keys() -> None:
    machine = _machine(parse_key_values(_NODE))
    assert sorted(machine.implementation_specific or {}) == sorted(_declared("MachineInfo"))
    assert machine.get_impl_spec_key_value("state", backend="slurm") == "IDLE"
    assert machine.get_impl_spec_key_value("free_memory_mib", backend="slurm") == "1000"


def test_queue_info_carries_the_declared_keys() -> None:
    done = SimpleNamespace(stdout=_PARTITION + "\n", returncode=0)
    cluster: Any = SimpleNamespace(slurm=SimpleNamespace(scontrol=lambda *args: done))
    (queue,) = SlurmMonitoringSession("m", cluster).all_queues(None)
    assert sorted(queue.implementation_specific or {}) == sorted(_declared("QueueInfo"))
    assert queue.implementation_specific == {
        "state": "UP",
        "max_time": "UNLIMITED",
        "nodes": "1",
        "cpus": "64",
        "default": "yes",
    }


@pytest.mark.parametrize(
    ("sacct", "squeue_raw", "expected"),
    [
        # A batch script a signal killed: Slurm's reason is JobLaunchFailure all the same.
        ("0:10", 10, ("FAILED", 138, "SIGUSR1")),
        ("0:11", 11, ("FAILED", 139, "SIGSEGV")),
        # Slurm's own codes (4021: the launch failure; 4005: another of its daemon codes).
        ("0:53", 4021, ("JobLaunchFailure", None, None)),
        ("0:37", 4005, ("JobLaunchFailure", None, None)),
    ],
)
def test_a_job_a_signal_killed_is_no_launch_failure_on_either_path(
    sacct: str, squeue_raw: int, expected: tuple[str, int | None, str | None]
) -> None:
    """What squeue shows and what sacct shows of the same end read alike: sub-state, exit
    status and signal (a signal gave the sub-state JobLaunchFailure, and sacct's Slurm codes
    other than 4021 read as signals 32 and more)."""
    from drmaa2_slurm.accounting import raw_status

    from_sacct = raw_status(sacct, "FAILED", "JobLaunchFailure")
    assert from_sacct is not None
    for raw in (squeue_raw, from_sacct):
        row = list(_SQUEUE_ROW)
        row[1:4] = ["FAILED", "JobLaunchFailure", str(raw)]
        job = SlurmJob(row)
        assert (job.sub_state, *job.exit()) == expected, raw
