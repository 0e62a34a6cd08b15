"""The small OS process core: spawn a job, signal it, reap it, and know a process by identity.

Everything here is Linux-specific and free of DRMAA2 state: the supervisor decides *when*, this
module knows *how*.

- A job runs in its own session and process group (``setsid``), so it survives the controlling
  process, and signals reach every process of the job at once.
- A process is identified by ``(pid, start time)``: a pid alone may be reused after the
  process is gone.
- Reaping is by explicit pid (``wait4(pid, WNOHANG)``), never ``wait4(-1)``, which would steal
  the exit status of the host application's other children.

The package's modules, one idea each: :mod:`.identity` (a process by pid and start time),
:mod:`.launch` (starting a job), :mod:`.streams` (its stdin, stdout and stderr),
:mod:`.exits` (collecting its end), :mod:`.signals` (stopping, continuing and killing all of
it), :mod:`.procfs` (reading /proc for the monitoring session).
"""

from drmaa2_ostracker.process.exits import (
    WHOLE_PEEK,
    ExitStatus,
    collect,
    decode_wait_status,
    open_pidfd,
    peek,
    peek_end,
    reap,
)
from drmaa2_ostracker.process.identity import (
    ProcessIdentity,
    ProcessSet,
    boot_ticks,
    find_job_process,
    identity_of,
    is_running,
    process_state,
    ticks_at,
    wall_us_at,
)
from drmaa2_ostracker.process.launch import LaunchSpec, Spawned, spawn
from drmaa2_ostracker.process.signals import (
    continue_job,
    is_stopped,
    kill_job,
    signal_group,
    stop_job,
)
from drmaa2_ostracker.process.streams import LaunchError

__all__ = [
    "WHOLE_PEEK",
    "ExitStatus",
    "LaunchError",
    "LaunchSpec",
    "ProcessIdentity",
    "ProcessSet",
    "Spawned",
    "boot_ticks",
    "collect",
    "continue_job",
    "decode_wait_status",
    "find_job_process",
    "identity_of",
    "is_running",
    "is_stopped",
    "kill_job",
    "open_pidfd",
    "peek",
    "peek_end",
    "process_state",
    "reap",
    "signal_group",
    "spawn",
    "stop_job",
    "ticks_at",
    "wall_us_at",
]
