"""Control: suspend, resume, hold, release or terminate a job through scontrol and scancel.

Which states an action needs is one table, ``_ALLOWED`` (terminate: any unfinished one); which
states show that it took effect is another, ``_EFFECT``. An action returns once squeue shows its
effect, or raises TimeoutException after :data:`CONTROL_TIMEOUT`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from drmaa2.backend import Action
from drmaa2.enums import JobState
from drmaa2.errors import DeniedByDrmsException, InvalidStateException, TimeoutException
from drmaa2_slurm.info import cancelled_info
from drmaa2_slurm.session_base import JobSessionBase
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob, slurm_task_id

__all__ = ["CONTROL_TIMEOUT", "JobControl"]

#: Seconds a control action waits for Slurm to show its effect.
CONTROL_TIMEOUT = 120.0
_ALLOWED = {
    Action.SUSPEND: (JobState.RUNNING,),
    Action.RESUME: (JobState.SUSPENDED,),
    Action.HOLD: (JobState.QUEUED, JobState.REQUEUED),
    Action.RELEASE: (JobState.QUEUED_HELD, JobState.REQUEUED_HELD),
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
            raise InvalidStateException(f"job {job_id} is {state.name}: it cannot {action.value}")
        allowed = _ALLOWED.get(action)
        if allowed is not None and state not in allowed:
            raise InvalidStateException(
                f"job {job_id} is {state.name}: {action.value} needs it "
                f"{' or '.join(s.name for s in allowed)}"
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
            done = self.slurm.scancel(target)
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
                if action is Action.TERMINATE and not any(r.job_id == job_id for r in rows):
                    # A cancelled pending array task vanishes from Slurm: record its end here.
                    self._cancelled_unseen(job_id)
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

    def _cancelled_unseen(self, job_id: str) -> None:
        record = self._known(job_id)
        info = cancelled_info(job_id, record)
        change = (job_id, JobState.FAILED, "CANCELLED", info.to_json())
        with self._lock:
            if job_id not in self._unfinished:
                return
            self._apply([change])
        self._store.update(self._name, [change])
        self._poller.publish(self._name, [(job_id, JobState.FAILED)])
