"""The MonitoringSession adapter: the cluster's nodes, partitions and every job the user can
see, read-only, from squeue and scontrol."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from drmaa2.enums import Os
from drmaa2.errors import InvalidArgumentException
from drmaa2.filter import job_matches
from drmaa2.types import JobInfo, MachineInfo, QueueInfo, Version
from drmaa2_slurm import extension
from drmaa2_slurm.cluster import Cluster, cpu_of, parse_key_values
from drmaa2_slurm.info import job_info_of
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob, slurm_task_id

__all__ = ["SlurmMonitoringSession"]

_UNAVAILABLE = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN", "FUTURE")


def _count(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and int(text) > 0 else None


def _machine(node: dict[str, str]) -> MachineInfo:
    state = node.get("State", "")
    memory = _count(node.get("RealMemory"))
    load = node.get("CPULoad", "")
    os_text = node.get("OS", "")
    release = os_text.split()[1] if len(os_text.split()) > 1 else ""
    ext = {
        extension.MACHINE_STATE: state,
        extension.MACHINE_CPUS: node.get("CPUTot", ""),
        extension.MACHINE_FREE_MEMORY: node.get("FreeMem", ""),
        extension.MACHINE_PARTITIONS: node.get("Partitions", ""),
    }
    major, _, minor = release.partition(".")
    return MachineInfo(
        name=node.get("NodeName"),
        available=not any(flag in state for flag in _UNAVAILABLE),
        sockets=_count(node.get("Sockets")),
        cores_per_socket=_count(node.get("CoresPerSocket")),
        threads_per_core=_count(node.get("ThreadsPerCore")),
        load=float(load) if load.replace(".", "", 1).isdigit() else None,
        phys_memory=memory * 1024 if memory else None,
        architecture=cpu_of(node.get("Arch", "")),
        os=Os.LINUX if os_text.startswith("Linux") else Os.OTHER_OS,
        os_version=Version(major=major, minor=minor or "0") if major else None,
        implementation_specific={k: v for k, v in ext.items() if v},
    )


class SlurmMonitoringSession:
    """A read-only view of one cluster (implements ``MonitoringSessionBackend``)."""

    def __init__(self, name: str | None, cluster: Cluster) -> None:
        self._name = name or f"monitoring-{uuid.uuid4().hex[:12]}"
        self._cluster = cluster

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    def _jobs(self, slurm_ids: list[str] | None) -> list[JobInfo]:
        rows = self._cluster.slurm.squeue(JOB_FIELDS, slurm_ids)
        return [job_info_of(SlurmJob(row), self._cluster.expand_hostlist) for row in rows]

    def all_jobs(self, job_filter: JobInfo | None) -> list[JobInfo]:
        """Every job slurmctld knows and the user may see, finished ones included."""
        wanted = None
        if job_filter is not None and job_filter.job_id is not None:
            wanted = [slurm_task_id(job_filter.job_id)]
        return [info for info in self._jobs(wanted) if job_matches(info, job_filter)]

    def job_info(self, job_id: str) -> JobInfo:
        """One job's JobInfo; InvalidArgumentException once Slurm no longer knows it."""
        found = [info for info in self._jobs([slurm_task_id(job_id)]) if info.job_id == job_id]
        if not found:
            raise InvalidArgumentException(f"job {job_id!r}: Slurm knows no such job")
        return found[0]

    def all_machines(self, names: Sequence[str] | None) -> list[MachineInfo]:
        """The cluster's nodes (all, or those named)."""
        machines = [_machine(node) for node in self._cluster.nodes()]
        if names is None:
            return machines
        return [machine for machine in machines if machine.name in names]

    def all_queues(self, names: Sequence[str] | None) -> list[QueueInfo]:
        """The cluster's partitions (all, or those named)."""
        done = self._cluster.slurm.scontrol("-o", "show", "partition")
        queues = []
        for line in done.stdout.splitlines():
            part = parse_key_values(line)
            name = part.get("PartitionName")
            if not name or (names is not None and name not in names):
                continue
            ext = {
                extension.QUEUE_STATE: part.get("State", ""),
                extension.QUEUE_MAX_TIME: part.get("MaxTime", ""),
                extension.QUEUE_NODES: part.get("TotalNodes", ""),
                extension.QUEUE_CPUS: part.get("TotalCPUs", ""),
                extension.QUEUE_DEFAULT: part.get("Default", "").lower(),
            }
            queues.append(
                QueueInfo(name=name, implementation_specific={k: v for k, v in ext.items() if v})
            )
        return queues

    def close(self) -> None:
        """Nothing to release."""
