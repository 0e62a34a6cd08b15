"""Extension keys of ``JobInfo.implementation_specific`` set by the ``os`` backend.

The values are those of the Go drmaa2os tracker, so code reading them is portable.
:data:`EXTENSION_KEYS` declares them to ``drmaa2`` (``JobInfo.get_implementation_specific_keys()``,
``drmaa2.describe_attribute``).
"""

from __future__ import annotations

from typing import Final

from drmaa2.backend import ExtensionKey

__all__ = [
    "EXTENSION_KEYS",
    "JSESSION_IN_BLOCK",
    "JSESSION_MAX_RSS",
    "JSESSION_OUT_BLOCK",
    "JSESSION_PID",
    "JSESSION_SWAP",
    "JSESSION_SYSTEM_TIME",
    "JSESSION_USER_TIME",
    "MACHINE_LOAD_5MIN",
    "MACHINE_LOAD_15MIN",
    "MACHINE_TEMPDIR",
    "MACHINE_UPTIME_SECONDS",
    "MSESSION_COMMAND_LINE",
    "MSESSION_CPU_AFFINITY",
    "MSESSION_CPU_USAGE",
    "MSESSION_MEMORY_USAGE",
    "MSESSION_MEMORY_USAGE_RSS",
    "MSESSION_MEMORY_USAGE_VMS",
    "MSESSION_PROCESS_NAME",
    "MSESSION_WORKING_DIR",
]

# Finished jobs of a job session (from the job's own rusage).
#: Maximum resident set size, KiB.
JSESSION_MAX_RSS: Final = "ru_maxrss"
#: Swaps (ru_nswap).
JSESSION_SWAP: Final = "ru_swap"
#: Blocks read (ru_inblock).
JSESSION_IN_BLOCK: Final = "ru_inblock"
#: Blocks written (ru_oublock).
JSESSION_OUT_BLOCK: Final = "ru_outblock"
#: System CPU time, milliseconds.
JSESSION_SYSTEM_TIME: Final = "system_time_ms"
#: User CPU time, milliseconds.
JSESSION_USER_TIME: Final = "user_time_ms"
#: Process id of every started job.
JSESSION_PID: Final = "pid"

# Jobs of a monitoring session (every process of the machine).
#: Process name.
MSESSION_PROCESS_NAME: Final = "name"
#: Command line, arguments separated by spaces.
MSESSION_COMMAND_LINE: Final = "commandline"
#: Current working directory.
MSESSION_WORKING_DIR: Final = "workingdir"
#: CPU load in percent since the session's previous sample of the process (100 = one core).
MSESSION_CPU_USAGE: Final = "cpu_usage"
#: CPUs the process may run on, space separated.
MSESSION_CPU_AFFINITY: Final = "cpu_affinity"
#: JSON object of psutil's memory_info (bytes).
MSESSION_MEMORY_USAGE: Final = "memory_usage"
#: Resident set size, bytes.
MSESSION_MEMORY_USAGE_RSS: Final = "memory_usage_rss"
#: Virtual memory size, bytes.
MSESSION_MEMORY_USAGE_VMS: Final = "memory_usage_vms"

# Machines of a monitoring session.
#: The directory for temporary files.
MACHINE_TEMPDIR: Final = "tempdir"
#: Load average over 5 minutes.
MACHINE_LOAD_5MIN: Final = "load5min"
#: Load average over 15 minutes.
MACHINE_LOAD_15MIN: Final = "load15min"
#: Seconds since boot.
MACHINE_UPTIME_SECONDS: Final = "uptime_seconds"

#: Every key above, with the data type carrying it and what it means.
EXTENSION_KEYS: Final = (
    ExtensionKey("JobInfo", JSESSION_MAX_RSS, "maximum resident set size of a finished job, KiB"),
    ExtensionKey("JobInfo", JSESSION_SWAP, "swaps of a finished job (ru_nswap)"),
    ExtensionKey("JobInfo", JSESSION_IN_BLOCK, "blocks read by a finished job (ru_inblock)"),
    ExtensionKey("JobInfo", JSESSION_OUT_BLOCK, "blocks written by a finished job (ru_oublock)"),
    ExtensionKey("JobInfo", JSESSION_SYSTEM_TIME, "system CPU time of a finished job, ms"),
    ExtensionKey("JobInfo", JSESSION_USER_TIME, "user CPU time of a finished job, ms"),
    ExtensionKey("JobInfo", JSESSION_PID, "process id of a started job"),
    ExtensionKey("JobInfo", MSESSION_PROCESS_NAME, "process name (monitoring session)"),
    ExtensionKey("JobInfo", MSESSION_COMMAND_LINE, "command line (monitoring session)"),
    ExtensionKey("JobInfo", MSESSION_WORKING_DIR, "current working directory (monitoring session)"),
    ExtensionKey(
        "JobInfo",
        MSESSION_CPU_USAGE,
        "CPU percent since the session's previous sample, 100 = one core (monitoring session)",
    ),
    ExtensionKey(
        "JobInfo", MSESSION_CPU_AFFINITY, "CPUs the process may run on (monitoring session)"
    ),
    ExtensionKey(
        "JobInfo", MSESSION_MEMORY_USAGE, "JSON of psutil's memory_info, bytes (monitoring session)"
    ),
    ExtensionKey("JobInfo", MSESSION_MEMORY_USAGE_RSS, "resident set size, bytes (monitoring)"),
    ExtensionKey("JobInfo", MSESSION_MEMORY_USAGE_VMS, "virtual memory size, bytes (monitoring)"),
    ExtensionKey("MachineInfo", MACHINE_TEMPDIR, "the directory for temporary files"),
    ExtensionKey("MachineInfo", MACHINE_LOAD_5MIN, "load average over 5 minutes"),
    ExtensionKey("MachineInfo", MACHINE_LOAD_15MIN, "load average over 15 minutes"),
    ExtensionKey("MachineInfo", MACHINE_UPTIME_SECONDS, "seconds since boot"),
)
