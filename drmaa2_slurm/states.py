"""Slurm job states and wait statuses → DRMAA2 states, exit statuses and JobInfo.

The state table and the exit-status rules are those measured on Slurm 22.05 (see the README's
mapping tables). The exit status comes from the raw wait status slurmctld keeps (squeue's
``exit_code``), never from sacct, whose text is wrong above 127 and whose JSON always says 0.
"""

from __future__ import annotations

import datetime
import signal

from drmaa2.enums import JobState

__all__ = [
    "JOB_FIELDS",
    "SlurmJob",
    "drmaa2_id",
    "exit_status",
    "job_state",
    "parse_duration",
    "parse_time",
    "ran_unseen",
    "slurm_task_id",
]

#: squeue ``-O`` fields of a job row, in order; the name comes last (it may hold anything).
JOB_FIELDS = (
    "JobArrayID",
    "State",
    "Reason",
    "exit_code",
    "RestartCnt",
    "SubmitTime",
    "StartTime",
    "EndTime",
    "TimeUsed",
    "NodeList",
    "UserName",
    "NumCPUs",
    "Partition",
    "WorkDir",
    "Name",
)

_HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})
#: Slurm states that are not PENDING and not a plain end, mapped to DRMAA2.
_STATES = {
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.SUSPENDED,
    "STOPPED": JobState.SUSPENDED,
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "CONFIGURING": JobState.QUEUED,
    "POWER_UP_NODE": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED_HELD,
    "REQUEUE_FED": JobState.REQUEUED,
    "REQUEUED": JobState.REQUEUED,
    "REQUEUE_HOLD": JobState.REQUEUED_HELD,
    "SPECIAL_EXIT": JobState.REQUEUED_HELD,
    "REVOKED": JobState.UNDETERMINED,
}
#: How a job ended, in words, by Slurm state.
_ENDINGS = {
    "CANCELLED": "terminated (cancelled in Slurm)",
    "TIMEOUT": "killed at its wallclock time limit",
    "DEADLINE": "the deadline passed before it could end",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "preempted by another job",
    "OUT_OF_MEMORY": "killed for using more memory than it asked for",
    "BOOT_FAIL": "its node failed to boot",
}


def job_state(state: str, reason: str, restarts: int) -> tuple[JobState, str]:
    """The DRMAA2 state and sub-state of a Slurm state, pending reason and restart count."""
    if state == "PENDING":
        held = reason in _HELD_REASONS
        if restarts > 0:
            return (JobState.REQUEUED_HELD if held else JobState.REQUEUED), reason
        return (JobState.QUEUED_HELD if held else JobState.QUEUED), reason
    mapped = _STATES.get(state, JobState.UNDETERMINED)
    if state in ("RUNNING", "COMPLETED"):
        return mapped, ""
    if state == "FAILED" and reason not in ("", "None", "NonZeroExitCode"):
        return mapped, reason
    return mapped, state


def exit_status(raw: int, ran: bool, state: str) -> tuple[int | None, str | None]:
    """(exit_status, terminating_signal) of a finished job from its raw wait status.

    A job that never ran, or whose node failed, has neither; an exit is ``(code, "")``; a
    signal is ``(128 + n, "SIGNAME")``; Slurm's own codes (launch failure 4021, out of memory
    253) give ``(None, None)``.
    """
    if not ran or state == "NODE_FAIL":
        return None, None
    low, high = raw & 0x7F, raw >> 8
    if low == 0:
        return high, ""
    if 1 <= low <= 64 and high == 0:
        try:
            name = signal.Signals(low).name
        except ValueError:
            name = f"SIG{low}"
        return 128 + low, name
    return None, None


def drmaa2_id(slurm_id: str) -> str:
    """The DRMAA2 id of a Slurm job or task id (``"12_3"`` → ``"12.3"``)."""
    return slurm_id.replace("_", ".")


def slurm_task_id(job_id: str) -> str:
    """The Slurm id of a DRMAA2 job id (``"12.3"`` → ``"12_3"``)."""
    return job_id.replace(".", "_")


def parse_time(text: str) -> datetime.datetime | None:
    """A time printed by Slurm (in UTC: the commands run with TZ=UTC), None if unset."""
    if not text or text in ("N/A", "NONE", "Unknown", "None"):
        return None
    try:
        return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def parse_duration(text: str) -> datetime.timedelta | None:
    """A Slurm duration (``[D-][HH:]MM:SS``, or ``MM:SS.mmm``) as a timedelta."""
    if not text or text in ("INVALID", "N/A", "UNLIMITED"):
        return None
    days, _, rest = text.rpartition("-")
    try:
        parts = [float(part) for part in rest.split(":")]
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + part
        return datetime.timedelta(days=int(days or 0), seconds=seconds)
    except ValueError:
        return None


class SlurmJob:
    """One row of squeue for a job or array task, with the DRMAA2 view of it."""

    __slots__ = (
        "cpus",
        "end",
        "job_id",
        "name",
        "nodes",
        "partition",
        "raw_exit",
        "reason",
        "restarts",
        "slurm_state",
        "start",
        "state",
        "sub_state",
        "submit",
        "time_used",
        "user",
        "work_dir",
    )

    def __init__(self, row: list[str]) -> None:
        (
            array_id,
            self.slurm_state,
            self.reason,
            raw,
            restarts,
            submit,
            start,
            end,
            used,
            self.nodes,
            self.user,
            cpus,
            self.partition,
            self.work_dir,
            self.name,
        ) = (field.strip() for field in row)
        self.job_id = drmaa2_id(array_id)
        self.raw_exit = int(raw) if raw.isdigit() else 0
        self.restarts = int(restarts) if restarts.isdigit() else 0
        self.cpus = int(cpus) if cpus.isdigit() else None
        self.submit = parse_time(submit)
        self.start = parse_time(start) if self.nodes else None
        self.end = parse_time(end)
        self.time_used = parse_duration(used)
        self.state, self.sub_state = job_state(self.slurm_state, self.reason, self.restarts)
        if not self.state.is_terminal:
            self.end = None
        elif self.sub_state == "JobLaunchFailure" and self.exit()[0] is not None:
            # Slurm gives this reason to a batch script a signal killed, too: it ran, and
            # has its exit status; only a job that never started is a launch failure.
            self.sub_state = self.slurm_state

    @property
    def ran(self) -> bool:
        """Whether the job got a node (a job cancelled while pending has a start time too)."""
        return bool(self.nodes)

    def exit(self) -> tuple[int | None, str | None]:
        """(exit_status, terminating_signal), both None until the job is finished."""
        if not self.state.is_terminal:
            return None, None
        return exit_status(self.raw_exit, self.ran, self.slurm_state)

    def annotation(self) -> str:
        """Why a job waits or how it ended, in Slurm's words ("" for a job that completed,
        or runs, with nothing to say)."""
        if self.state.is_terminal:
            status, _ = self.exit()
            if status is None and self.ran and self.slurm_state != "NODE_FAIL":
                return (
                    f"Slurm state {self.slurm_state}, reason {self.reason}, raw wait status "
                    f"{self.raw_exit} (a Slurm code, not an exit status)"
                )
            why = _ENDINGS.get(self.slurm_state)
            told = f"Slurm state {self.slurm_state}, reason {self.reason}"
            _, signal_name = self.exit()
            if not why and signal_name:
                why = f"killed by {signal_name}"
            if why:
                return f"{why} ({told})"
            return "" if self.slurm_state == "COMPLETED" else told  # DONE: nothing to say
        if self.reason not in ("", "None"):
            return f"Slurm state {self.slurm_state}, reason {self.reason}"
        return ""


def ran_unseen(old: tuple[JobState, str] | None, new: JobState, ran: bool) -> bool:
    """Whether a job that ran is seen finished before it was seen started (it started and
    ended between two polls): its RUNNING event is published before its end's, so that a
    callback sees every state it went through."""
    started = old is not None and old[0] not in (JobState.QUEUED, JobState.QUEUED_HELD)
    return new.is_terminal and ran and not started
