"""Implementation-specific keys of the ``slurm`` backend.

``TEMPLATE_*`` keys go in ``JobTemplate.implementation_specific`` and become sbatch options;
``JOB_*`` keys appear in ``JobInfo.implementation_specific``; ``MACHINE_*`` and ``QUEUE_*`` in
MachineInfo and QueueInfo.
"""

from __future__ import annotations

from typing import Final

__all__ = [
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

# Jobs.
#: The Slurm job id (``123`` or ``123_4`` for an array task).
JOB_SLURM_ID: Final = "slurm_job_id"
#: The Slurm state name (``PENDING``, ``COMPLETING``, ``CANCELLED`` …).
JOB_SLURM_STATE: Final = "slurm_state"
#: The Slurm reason code (``Priority``, ``BeginTime``, ``NonZeroExitCode`` …).
JOB_SLURM_REASON: Final = "slurm_reason"
#: Maximum resident set size of the batch step, KiB (from sacct, where accounting runs).
JOB_MAX_RSS: Final = "max_rss"

# Machines.
#: Slurm's node state (``idle``, ``mixed``, ``allocated``, ``drained`` …).
MACHINE_STATE: Final = "state"
#: CPUs Slurm may allocate on the node.
MACHINE_CPUS: Final = "cpus"
#: Free memory, MiB.
MACHINE_FREE_MEMORY: Final = "free_memory_mib"
#: Partitions holding the node, comma separated.
MACHINE_PARTITIONS: Final = "partitions"

# Queues (partitions).
#: ``up``, ``down``, ``drain`` or ``inactive``.
QUEUE_STATE: Final = "state"
#: The partition's time limit as Slurm prints it (``infinite``, ``1:00:00`` …).
QUEUE_MAX_TIME: Final = "max_time"
#: Node count.
QUEUE_NODES: Final = "nodes"
#: CPUs as allocated/idle/other/total.
QUEUE_CPUS: Final = "cpus"
#: ``yes`` for the default partition.
QUEUE_DEFAULT: Final = "default"
