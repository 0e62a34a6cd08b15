"""How a job ended, from Slurm's accounting (sacct), once slurmctld no longer knows it.

slurmctld forgets a finished job after ``MinJobAge`` (300 s by default); a session that did not
see the end meanwhile asks sacct, where the cluster keeps accounting. sacct's text ExitCode
``code:signal`` loses the high bit of the exit code (exit 200 reads ``72:0``, exit 128 reads
``0:0``) and its JSON always says 0, so the raw wait status is rebuilt from the text and read
by the same rules as squeue's (:func:`~drmaa2_slurm.states.exit_status`): a COMPLETED job
exited 0; a FAILED job reading ``0:0`` exited 128; another exit code ``c`` is reported as ``c``
and the annotation says it may have been ``c + 128``; a launch failure (``0:53`` with reason
JobLaunchFailure, raw 4021; any signal field of 32 or more with that reason is such a Slurm
code, 4000-4095) and Slurm's own codes have no exit status; a job a signal below 32 killed ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from drmaa2_slurm.commands import Slurm
from drmaa2_slurm.states import SlurmJob, drmaa2_id, slurm_task_id

__all__ = ["ACCOUNT_FIELDS", "ended_jobs", "raw_status"]

#: sacct fields of an ended job, in the order of :data:`~drmaa2_slurm.states.JOB_FIELDS`
#: (the work directory last: it may hold anything).
ACCOUNT_FIELDS = (
    "JobID",
    "State",
    "Reason",
    "ExitCode",
    "Submit",
    "Start",
    "End",
    "Elapsed",
    "NodeList",
    "User",
    "AllocCPUS",
    "Partition",
    "WorkDir",
)
#: The bits a Slurm daemon code (4000-4095; a launch failure is 4021) has above the low 7
#: that sacct's signal field shows of it.
_SLURM_CODE = 0xF80
#: Annotation added when sacct's exit code may have lost its high bit.
_MODULO_NOTE = (
    "exit status from Slurm's accounting (sacct), which shows exit statuses modulo 128: "
    "it may have been {high}"
)


def raw_status(exit_code: str, state: str, reason: str) -> int | None:
    """The raw wait status of sacct's ``code:signal`` for a job in ``state``; None if the
    text is not ``code:signal``."""
    code_text, _, signal_text = exit_code.partition(":")
    if not (code_text.isdigit() and signal_text.isdigit()):
        return None
    code, sig = int(code_text), int(signal_text)
    if sig != 0:
        if reason == "JobLaunchFailure" and sig >= 32:
            # A Slurm daemon code (4000-4095, 4021 most often), of which sacct shows the low
            # 7 bits; a signal that killed a job that ran is below 32.
            return _SLURM_CODE | sig
        return sig
    if code == 0 and state == "FAILED":
        return 128 << 8
    return code << 8


def _state_word(text: str) -> str:
    """``CANCELLED by 0`` → ``CANCELLED``."""
    return text.split(" ", 1)[0]


def ended_jobs(slurm: Slurm, job_ids: Sequence[str]) -> dict[str, tuple[SlurmJob, str]]:
    """The jobs (DRMAA2 ids) sacct shows finished: each as a squeue-like row and a note for
    its annotation (empty unless the exit status may be off by 128). A job sacct does not
    know, or shows unfinished, is left out."""
    wanted = {slurm_task_id(job_id) for job_id in job_ids}
    lines = [row for row in slurm.sacct(ACCOUNT_FIELDS, sorted(wanted)) if len(row) == 13]
    batch = {row[0].removesuffix(".batch"): row[3] for row in lines if row[0].endswith(".batch")}
    ended: dict[str, tuple[SlurmJob, str]] = {}
    for job, state_text, reason, exit_code, *times, nodes, user, cpus, part, workdir in lines:
        if job not in wanted:
            continue
        state = _state_word(state_text)
        # The job line of a cancelled job says 0:0; its batch step has the real status.
        raw = raw_status(batch.get(job, exit_code), state, reason)
        ran = nodes not in ("", "None assigned")
        row = SlurmJob(
            [
                job,
                state,
                reason,
                str(raw if raw is not None else 0),
                "0",
                *times,
                nodes if ran else "",
                user,
                cpus,
                part,
                workdir,
                "",
            ]
        )
        if not row.state.is_terminal or (raw is None and ran):
            continue
        status, sig = row.exit()
        note = ""
        if status is not None and sig == "" and 0 < status < 128:
            note = _MODULO_NOTE.format(high=status + 128)
        ended[drmaa2_id(job)] = (row, note)
    return ended
