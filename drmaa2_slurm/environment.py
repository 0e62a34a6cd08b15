"""A Slurm job's environment: the submitter's, without what Slurm set for the Slurm job the
submitter may run in, and the template's ``job_environment``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from drmaa2.errors import InvalidArgumentException

__all__ = ["job_environment"]

#: The variables Slurm sets for a job, a step or a task (sbatch's and srun's output
#: environment): those of a Slurm job the submitter runs in are not its job's.
_JOB_VARIABLES = re.compile(
    r"SLURMD?_("
    r"JOB_\w+|JOBID|ARRAY_\w+|STEP_\w+|STEPID|TASK_PID|TASKS_PER_NODE|NTASKS\w*|NPROCS|"
    r"NNODES|NODELIST|NODEID|NODENAME|NODE_ALIASES|LOCALID|PROCID|GTIDS|CPUS_ON_NODE|"
    r"CPUS_PER_\w+|MEM_PER_\w+|GPUS\w*|SHARDS_ON_NODE|SUBMIT_\w+|CLUSTER_NAME|HET_\w+|"
    r"PRIO_PROCESS|RESTART_COUNT|TOPOLOGY_ADDR\w*|SRUN_COMM_\w+|LAUNCH_NODE_IPADDR|"
    r"DISTRIBUTION|DIST_PLANESIZE|THREADS_PER_CORE|OVERCOMMIT|UMASK|WORKING_CLUSTER|"
    r"CONTAINER\w*|PTY_\w+|EXPORT_ENV|CONF"
    r")"
)


def job_environment(given: Mapping[str, str] | None, conf: str) -> dict[str, str]:
    """The environment of a job: the submitter's, without the variables Slurm sets for the
    Slurm job, step or task the submitter may run in (its job id, array task, task counts,
    nodes…: :data:`_JOB_VARIABLES`), which would be wrong for the new job, where Slurm sets
    its own, and some (``SLURM_NTASKS``) steer ``srun`` inside it. The user's own settings
    (``SLURM_MPI_TYPE``, ``SLURM_TIME_FORMAT``, …) pass; ``SLURM_CONF`` names the session's
    cluster (``conf``); then the template's ``job_environment`` (``given``), which may set
    any of them. InvalidArgumentException for a key that is empty or holds ``=`` or NUL, or a
    value that holds NUL."""
    environment = {
        key: value for key, value in os.environ.items() if not _JOB_VARIABLES.fullmatch(key)
    }
    environment["SLURM_CONF"] = conf
    for key, value in (given or {}).items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise InvalidArgumentException(
                f"JobTemplate.job_environment { ({key: value})!r}: not a valid environment variable"
            )
        environment[key] = value
    return environment
