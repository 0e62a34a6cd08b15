"""Control: suspend, resume, hold, release or terminate a job through scontrol and scancel.

What an action does in each state is one table, ``_CONTROL``, the os backend's: do it, do
nothing (the job already is where the action would take it), or refuse it with
InvalidStateException (terminate: any unfinished job). Which states show that it took effect is
another, ``_EFFECT``. An action returns once squeue shows its effect, or raises
TimeoutException after :data:`CONTROL_TIMEOUT`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from drmaa2.backend import Action
from drmaa2.enums import JobState
from drmaa2.errors import (
    DeniedByDrmsException,
    Drmaa2Exception,
    InvalidStateException,
    TimeoutException,
)
from drmaa2.types import JobInfo
from drmaa2_slurm.cluster import Cluster
from drmaa2_slurm.info import cancelled_info
from drmaa2_slurm.session_base import JobSessionBase
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob, slurm_task_id

__all__ = ["CONTROL_TIMEOUT", "JobControl", "destroy_session"]

#: Seconds a control action waits for Slurm to show its effect.
CONTROL_TIMEOUT = 120.0
# The verdicts of _CONTROL: do the action, do nothing, or refuse it because the job …
_DO = "do"
_NOTHING = "nothing"
_NOT_STARTED = "has not started"
_STARTED = "has started"
_UNDETERMINED = "is in a state Slurm does not explain"
_CONTROL_ACTIONS = (Action.SUSPEND, Action.RESUME, Action.HOLD, Action.RELEASE)
# fmt: off
_ROWS: dict[JobState, tuple[str, str, str, str]] = {
    #                        suspend        resume         hold           release
    JobState.QUEUED:        (_NOT_STARTED,  _NOT_STARTED,  _DO,           _NOTHING),
    JobState.REQUEUED:      (_NOT_STARTED,  _NOT_STARTED,  _DO,           _NOTHING),
    JobState.QUEUED_HELD:   (_NOT_STARTED,  _NOT_STARTED,  _NOTHING,      _DO),
    JobState.REQUEUED_HELD: (_NOT_STARTED,  _NOT_STARTED,  _NOTHING,      _DO),
    JobState.RUNNING:       (_DO,           _NOTHING,      _STARTED,      _STARTED),
    JobState.SUSPENDED:     (_NOTHING,      _DO,           _STARTED,      _STARTED),
}
# fmt: on
#: What suspend, resume, hold and release do by (action, state) of an unfinished job, as on
#: the os backend; a state not listed (UNDETERMINED) refuses them.
_CONTROL: dict[tuple[Action, JobState], str] = {
    (action, state): verdict
    for state, verdicts in _ROWS.items()
    for action, verdict in zip(_CONTROL_ACTIONS, verdicts, strict=True)
}
_EFFECT: dict[Action, Callable[[JobState], bool]] = {
    Action.SUSPEND: lambda s: s is JobState.SUSPENDED or s.is_terminal,
    Action.RESUME: lambda s: s is not JobState.SUSPENDED,
    Action.HOLD: lambda s: s in (JobState.QUEUED_HELD, JobState.REQUEUED_HELD) or s.is_started,
    Action.RELEASE: lambda s: s not in (JobState.QUEUED_HELD, JobState.REQUEUED_HELD),
    Action.TERMINATE: lambda s: s.is_terminal,
}


class JobControl(JobSessionBase):
    """The job session's control actions."""

    def control(self, job_id: str, action: Action) -> None:
        """Suspend, resume, hold, release or terminate a job, returning once Slurm shows it."""
        state, sub = self.job_state(job_id)
        if state.is_terminal:
            raise InvalidStateException(
                f"cannot {action.value} job {job_id}: it has finished ({state.name})"
            )
        if action is not Action.TERMINATE:
            verdict = _CONTROL.get((action, state), _UNDETERMINED)
            if verdict == _NOTHING:
                return
            if verdict != _DO:
                raise InvalidStateException(
                    f"cannot {action.value} job {job_id}: it {verdict} ({state.name})"
                )
        target = slurm_task_id(job_id)
        if action is Action.SUSPEND:
            done = self.slurm.scontrol("suspend", target)
            if done.returncode != 0 and "ermission denied" in done.stderr:
                # An ordinary user may not suspend; stopping every process does the same.
                done = self.slurm.scancel("--full", "--signal=STOP", target)
        elif action is Action.RESUME:
            if sub == "STOPPED":
                done = self.slurm.scancel("--full", "--signal=CONT", target)
            else:
                done = self.slurm.scontrol("resume", target)
        elif action is Action.HOLD:
            done = self.slurm.scontrol("uhold", target)
        elif action is Action.RELEASE:
            done = self.slurm.scontrol("release", target)
        else:
            # Known before scancel runs, so that whoever sees a cancelled pending array task
            # vanish from squeue (this call or the poller) records it as cancelled.
            with self._lock:
                self._cancelling.add(job_id)
            try:
                done = self.slurm.scancel(target)
                if done.returncode == 0:
                    self._await_effect(job_id, action)
                    return
            finally:
                with self._lock:
                    self._cancelling.discard(job_id)
        if done.returncode != 0:
            error = (
                DeniedByDrmsException
                if "ermission denied" in done.stderr
                else (InvalidStateException)
            )
            raise error(f"{action.value} of job {job_id}: Slurm says {done.message}")
        self._await_effect(job_id, action)

    def _await_effect(self, job_id: str, action: Action) -> None:
        reached = _EFFECT[action]
        deadline = time.monotonic() + CONTROL_TIMEOUT
        delay = 0.005
        while True:
            with self._lock:
                query = self._unfinished.get(job_id)
            if query is not None:
                rows = [SlurmJob(row) for row in self.slurm.squeue(JOB_FIELDS, [query])]
                self.observe(rows, [query])
            state = self._state_of(job_id)[0]
            if reached(state):
                if action is Action.HOLD and state.is_started:
                    # It started meanwhile; Slurm would hold it for a requeue: undo.
                    self.slurm.scontrol("release", slurm_task_id(job_id))
                    raise InvalidStateException(f"job {job_id} started before it was held")
                return
            if time.monotonic() > deadline:
                raise TimeoutException(
                    f"{action.value} of job {job_id}: Slurm did not show it in "
                    f"{CONTROL_TIMEOUT:.0f} s (state {state.name})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _held_past_deadline(self, rows: Sequence[SlurmJob]) -> list[tuple[str, JobState]]:
        """End the held jobs among ``rows`` whose deadline_time passed: Slurm applies
        ``--deadline`` only to jobs it may schedule, so a held one would wait forever.
        Cancelled here and recorded FAILED, sub-state DEADLINE, as Slurm records a pending
        job it ended at its deadline; the events published."""
        now = time.time()
        with self._lock:  # the rows of this session's jobs only (squeue's are shared)
            held = [
                row.job_id
                for row in rows
                if row.state is JobState.QUEUED_HELD and row.job_id in self._unfinished
            ]
        due = []
        for job_id in held:
            try:
                deadline = self._deadline_of(job_id)
            except Drmaa2Exception:  # reaped, or its session destroyed, meanwhile
                continue
            if deadline is not None and deadline <= now:
                due.append(job_id)
        infos: dict[str, tuple[JobState, str, JobInfo]] = {}
        for job_id in due:
            if self.slurm.scancel(slurm_task_id(job_id)).returncode != 0:
                continue  # gone meanwhile: seen as it ended by the next poll
            last = next((row for row in rows if row.job_id == job_id), None)
            info = cancelled_info(job_id, self._known(job_id), last)
            info.job_sub_state = "DEADLINE"
            info.annotation = "its deadline_time passed while it was held: it never started"
            infos[job_id] = (JobState.FAILED, "DEADLINE", info)
        return self._record_ends(infos, {}) if infos else []

    def _deadline_of(self, job_id: str) -> float | None:
        """The deadline_time of a job (seconds since the epoch), None if it has none."""
        if job_id not in self._deadlines:
            deadline = self.job_template(job_id).deadline_time
            self._deadlines[job_id] = None if deadline is None else deadline.timestamp()
        return self._deadlines[job_id]


def destroy_session(cluster: Cluster, name: str, created: float | None = None) -> None:
    """Destroy a session (``created``: only the one made then; InvalidArgumentException if it
    is not there) and cancel its pending jobs, queued or held: they must never start; running
    ones run on. The session goes from the store first, so that a wait of another process
    never takes a job this cancels for one that ended (its session is gone by then)."""
    ids = cluster.store.destroy_session(name, created)  # read as it goes: none missed
    if ids:
        cluster.slurm.scancel("--state=PENDING", *ids)
