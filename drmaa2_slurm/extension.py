"""Implementation-specific keys of the ``slurm`` backend.

``TEMPLATE_*`` keys go in ``JobTemplate.implementation_specific`` and become sbatch options;
``JOB_*`` keys appear in ``JobInfo.implementation_specific``; ``MACHINE_*`` and ``QUEUE_*`` in
MachineInfo and QueueInfo, as ``scontrol show node`` and ``scontrol show partition`` print
them. :data:`EXTENSION_KEYS` declares them to ``drmaa2``
(``JobTemplate.get_implementation_specific_keys(backend="slurm")``,
``set_impl_spec_key_value``, ``drmaa2.describe_attribute``).
"""

from __future__ import annotations

from typing import Final

from drmaa2.backend import ExtensionKey

__all__ = [
    "EXTENSION_KEYS",
    "JOB_MAX_RSS",
    "JOB_SLURM_ID",
    "JOB_SLURM_REASON",
    "JOB_SLURM_STATE",
    "MACHINE_CPUS",
    "MACHINE_FREE_MEMORY",
    "MACHINE_PARTITIONS",
    "MACHINE_STATE",
    "QUEUE_CPUS",
    "QUEUE_DEFAULT",
    "QUEUE_MAX_TIME",
    "QUEUE_NODES",
    "QUEUE_STATE",
    "TEMPLATE_CONSTRAINT",
    "TEMPLATE_DEPENDENCY",
    "TEMPLATE_GRES",
    "TEMPLATE_QOS",
    "TEMPLATE_WCKEY",
]

# Job templates: each value is passed as the sbatch option of the same name.
#: ``--constraint``: node features the job needs.
TEMPLATE_CONSTRAINT: Final = "constraint"
#: ``--qos``: the quality of service.
TEMPLATE_QOS: Final = "qos"
#: ``--gres``: generic resources, e.g. ``gpu:1``.
TEMPLATE_GRES: Final = "gres"
#: ``--dependency``: e.g. ``afterok:123``.
TEMPLATE_DEPENDENCY: Final = "dependency"
#: ``--wckey``: the workload characterisation key.
TEMPLATE_WCKEY: Final = "wckey"

# Jobs, of job sessions and monitoring sessions.
#: The Slurm job id (``123`` or ``123_4`` for an array task).
JOB_SLURM_ID: Final = "slurm_job_id"
#: The Slurm state name (``PENDING``, ``COMPLETING``, ``CANCELLED`` …).
JOB_SLURM_STATE: Final = "slurm_state"
#: The Slurm reason code (``Priority``, ``BeginTime``, ``NonZeroExitCode`` …).
JOB_SLURM_REASON: Final = "slurm_reason"
#: Maximum resident set size, KiB: a finished job of a job session, from sacct where the
#: cluster keeps accounting.
JOB_MAX_RSS: Final = "max_rss"

# Machines.
#: Slurm's node state (``IDLE``, ``MIXED``, ``ALLOCATED``, ``IDLE+DRAIN`` …).
MACHINE_STATE: Final = "state"
#: CPUs of the node (``CPUTot``).
MACHINE_CPUS: Final = "cpus"
#: Free memory, MiB (``FreeMem``).
MACHINE_FREE_MEMORY: Final = "free_memory_mib"
#: Partitions holding the node, comma separated.
MACHINE_PARTITIONS: Final = "partitions"

# Queues (partitions).
#: The partition's state: ``UP``, ``DOWN``, ``DRAIN`` or ``INACTIVE``.
QUEUE_STATE: Final = "state"
#: The partition's time limit as scontrol prints it (``UNLIMITED``, ``01:00:00``,
#: ``1-00:00:00`` …).
QUEUE_MAX_TIME: Final = "max_time"
#: The partition's node count.
QUEUE_NODES: Final = "nodes"
#: The partition's CPU count.
QUEUE_CPUS: Final = "cpus"
#: ``yes`` for the default partition, else ``no``.
QUEUE_DEFAULT: Final = "default"

#: Every key above, with the data type carrying it and what it means. An instance leaves out
#: a key Slurm gives no value for (a job's max_rss without accounting, a node's free memory).
EXTENSION_KEYS: Final = (
    ExtensionKey("JobTemplate", TEMPLATE_CONSTRAINT, "node features the job needs (--constraint)"),
    ExtensionKey("JobTemplate", TEMPLATE_QOS, "the quality of service (--qos)"),
    ExtensionKey("JobTemplate", TEMPLATE_GRES, "generic resources, e.g. gpu:1 (--gres)"),
    ExtensionKey("JobTemplate", TEMPLATE_DEPENDENCY, "e.g. afterok:123 (--dependency)"),
    ExtensionKey("JobTemplate", TEMPLATE_WCKEY, "the workload characterisation key (--wckey)"),
    ExtensionKey("JobInfo", JOB_SLURM_ID, "the Slurm job id (123, or 123_4 for an array task)"),
    ExtensionKey("JobInfo", JOB_SLURM_STATE, "the Slurm state (PENDING, COMPLETED, …)"),
    ExtensionKey("JobInfo", JOB_SLURM_REASON, "the Slurm reason (Priority, None, …)"),
    ExtensionKey(
        "JobInfo", JOB_MAX_RSS, "maximum resident set size of a finished job, KiB (sacct)"
    ),
    ExtensionKey("MachineInfo", MACHINE_STATE, "the node's state (IDLE, MIXED, …)"),
    ExtensionKey("MachineInfo", MACHINE_CPUS, "the node's CPUs"),
    ExtensionKey("MachineInfo", MACHINE_FREE_MEMORY, "the node's free memory, MiB"),
    ExtensionKey("MachineInfo", MACHINE_PARTITIONS, "the partitions of the node, comma separated"),
    ExtensionKey("QueueInfo", QUEUE_STATE, "the partition's state (UP, DOWN, DRAIN, INACTIVE)"),
    ExtensionKey(
        "QueueInfo", QUEUE_MAX_TIME, "the partition's time limit (UNLIMITED, 01:00:00, …)"
    ),
    ExtensionKey("QueueInfo", QUEUE_NODES, "the partition's node count"),
    ExtensionKey("QueueInfo", QUEUE_CPUS, "the partition's CPU count"),
    ExtensionKey("QueueInfo", QUEUE_DEFAULT, "yes for the default partition, else no"),
)
