"""The JobSession adapter: DRMAA2 job sessions over sbatch, squeue, scontrol and scancel.

Slurm owns the jobs; this session keeps which jobs are its own in the store, the state it last
saw of each, and turns what squeue says into DRMAA2 states (:mod:`~drmaa2_slurm.states`).
Every state it sees goes through :meth:`SlurmJobSession.observe`, which records changes and
publishes them through the process's poller to waiters and the notification callback.
"""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Callable, Sequence

from drmaa2.backend import Action, WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import (
    DeniedByDrmsException,
    InvalidArgumentException,
    InvalidStateException,
    TimeoutException,
)
from drmaa2.filter import job_matches
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_slurm import extension
from drmaa2_slurm.cluster import Cluster
from drmaa2_slurm.commands import Slurm
from drmaa2_slurm.failure import launch_failure
from drmaa2_slurm.poller import Poller
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob
from drmaa2_slurm.store import ArrayRecord, JobRecord
from drmaa2_slurm.template import Submission, plan_submission

__all__ = ["PURGED", "SlurmJobSession", "job_info_of"]

#: Sub-state of a job Slurm forgot before this backend saw it end.
PURGED = "purged by Slurm before the end was observed"
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


def slurm_task_id(job_id: str) -> str:
    """The Slurm id of a DRMAA2 job id (``"12.3"`` → ``"12_3"``)."""
    return job_id.replace(".", "_")


def job_info_of(job: SlurmJob, expand: Callable[[str], list[str]]) -> JobInfo:
    """The JobInfo of a squeue row (``expand`` turns a hostlist into names)."""
    status, sig = job.exit()
    if job.state.is_terminal and job.start is not None and job.end is not None:
        wallclock: datetime.timedelta | None = max(job.end - job.start, datetime.timedelta(0))
    else:
        wallclock = job.time_used if job.ran else None
    return JobInfo(
        job_id=job.job_id,
        job_name=job.name,
        exit_status=status,
        terminating_signal=sig,
        annotation=job.annotation(),
        job_state=job.state,
        job_sub_state=job.sub_state,
        allocated_machines=expand(job.nodes) if job.ran else None,
        job_owner=job.user or None,
        slots=job.cpus,
        queue_name=job.partition or None,
        wallclock_time=wallclock,
        submission_time=job.submit,
        dispatch_time=job.start,
        finish_time=job.end,
        implementation_specific={
            extension.JOB_SLURM_ID: slurm_task_id(job.job_id),
            extension.JOB_SLURM_STATE: job.slurm_state,
            extension.JOB_SLURM_REASON: job.reason,
        },
    )


def _add_record(info: JobInfo, record: JobRecord) -> None:
    """What the store knows better than squeue: the template's name, the submitting host and
    the submission time to the microsecond (Slurm's times are whole seconds, truncated: a
    dispatch or finish time before it is raised to it, and a finished job's wallclock time is
    its finish - dispatch time as shown)."""
    if record.job_name is not None:
        info.job_name = record.job_name
    info.submission_machine = record.submission_machine
    submitted = datetime.datetime.fromtimestamp(record.submitted, datetime.timezone.utc)
    info.submission_time = submitted
    if info.dispatch_time is not None and info.dispatch_time < submitted:
        info.dispatch_time = submitted
    if info.finish_time is not None and info.finish_time < submitted:
        info.finish_time = submitted
    finished = info.job_state is not None and info.job_state.is_terminal
    if finished and info.dispatch_time is not None and info.finish_time is not None:
        info.wallclock_time = max(info.finish_time - info.dispatch_time, datetime.timedelta(0))


_REQUEST_FIELDS = (
    "min_slots",
    "min_phys_memory",
    "queue_name",
    "reservation_id",
    "accounting_id",
    "candidate_machines",
    "deadline_time",
    "implementation_specific",
)


def _requests(template: JobTemplate) -> str:
    """The template's resource requests, to name them when Slurm refuses the job."""
    shown = [
        f"{name}={value!r}"
        for name in _REQUEST_FIELDS
        if (value := getattr(template, name)) is not None
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class SlurmJobSession:
    """An open job session of the ``slurm`` backend (implements ``JobSessionBackend``)."""

    def __init__(self, name: str, cluster: Cluster, poller: Poller) -> None:
        self._name = name
        self._cluster = cluster
        self._store = cluster.store
        self._poller = poller
        self._lock = threading.Lock()
        #: State and sub-state of every job seen by this object.
        self._states: dict[str, tuple[JobState, str]] = {}
        #: Unfinished jobs → the id squeue is asked for.
        self._unfinished: dict[str, str] = {}
        #: Unfinished jobs → their last squeue row.
        self._rows: dict[str, SlurmJob] = {}
        #: Jobs whose accounting (cpu time, max rss) was asked for already.
        self._accounted: set[str] = set()
        for record in self._store.jobs(name, unfinished_only=True):
            self._states[record.job_id] = (record.state, record.sub_state)
            self._unfinished[record.job_id] = record.slurm_id
        poller.register(self)

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str:
        """The path of the cluster's slurm.conf."""
        return self._cluster.conf

    @property
    def slurm(self) -> Slurm:
        """The commands of the session's cluster."""
        return self._cluster.slurm

    # -- what squeue says --------------------------------------------------------------------

    def query_ids(self) -> list[str]:
        """The squeue ids of the session's unfinished jobs (an array once)."""
        with self._lock:
            return sorted(set(self._unfinished.values()))

    def observe(self, rows: list[SlurmJob], queried: Sequence[str]) -> bool:
        """Take what squeue said about the ids ``queried``: record and publish every change.

        A job asked for and not listed was forgotten by Slurm: it keeps its last state if
        that was final, else it is FAILED with the sub-state :data:`PURGED`.
        """
        asked = set(queried)
        changes: list[tuple[str, JobState, str, str | None]] = []
        events: list[tuple[str, JobState]] = []
        with self._lock:
            seen = set()
            for row in rows:
                if row.job_id not in self._unfinished:
                    continue
                seen.add(row.job_id)
                self._rows[row.job_id] = row
                old = self._states.get(row.job_id)
                new = (row.state, row.sub_state)
                if old != new:
                    info = None
                    if row.state.is_terminal:
                        info = self._finished_info(row).to_json()
                    changes.append((row.job_id, row.state, row.sub_state, info))
                    if old is None or old[0] is not row.state:
                        events.append((row.job_id, row.state))
            for job_id, query in list(self._unfinished.items()):
                if query in asked and job_id not in seen:
                    changes.append((job_id, JobState.FAILED, PURGED, self._purged_info(job_id)))
                    events.append((job_id, JobState.FAILED))
            self._apply(changes)
        if changes:
            self._store.update(self._name, changes)
        self._poller.publish(self._name, events)
        return bool(events)

    def _apply(self, changes: list[tuple[str, JobState, str, str | None]]) -> None:
        for job_id, state, sub, _ in changes:
            self._states[job_id] = (state, sub)
            if state.is_terminal:
                self._unfinished.pop(job_id, None)
                self._rows.pop(job_id, None)

    def _finished_info(self, row: SlurmJob) -> JobInfo:
        record = self._store.job(self._name, row.job_id)
        info = job_info_of(row, self._cluster.expand_hostlist)
        if record is not None:
            _add_record(info, record)
            if row.reason == "JobLaunchFailure" and row.ran and info.exit_status is None:
                template = self._template_of(record)
                info.annotation = launch_failure(
                    template, record.task_index, row.work_dir, row.nodes
                )
        return info

    def _purged_info(self, job_id: str) -> str:
        row = self._rows.get(job_id)
        record = self._store.job(self._name, job_id)
        info = job_info_of(row, self._cluster.expand_hostlist) if row else JobInfo(job_id=job_id)
        info.job_state, info.job_sub_state = JobState.FAILED, PURGED
        info.exit_status = info.terminating_signal = None
        info.annotation = "Slurm no longer knows this job; its end was not seen"
        if record is not None:
            _add_record(info, record)
        return info.to_json()

    def refresh(self, job_ids: Sequence[str]) -> None:
        """Ask squeue about these jobs now (the unfinished ones; one call)."""
        with self._lock:
            queries = sorted({self._unfinished[i] for i in job_ids if i in self._unfinished})
        if queries:
            rows = [SlurmJob(row) for row in self.slurm.squeue(JOB_FIELDS, queries)]
            self.observe(rows, queries)

    # -- submission --------------------------------------------------------------------------

    def _submit(self, template: JobTemplate, array: tuple[int, int, int, int | None] | None) -> str:
        submission = plan_submission(
            template,
            session=self._name,
            array=array,
            nodes=self._cluster.node_names,
            architectures=self._cluster.architectures,
        )
        if submission.asks_resources:
            self._test_only(submission, template)
        done = self.slurm.sbatch(submission.options, submission.script, submission.environment)
        if done.returncode != 0:
            raise InvalidArgumentException(
                f"sbatch refused the job{_requests(template)}: {done.message}"
            )
        return done.stdout.strip().split(";")[0]

    def _test_only(self, submission: Submission, template: JobTemplate) -> None:
        # Slurm accepts a request no node can meet and keeps it pending forever; a test
        # submission finds it at once.
        done = self.slurm.sbatch(
            ["--test-only", *submission.options], submission.script, submission.environment
        )
        if done.returncode != 0:
            raise InvalidArgumentException(
                f"sbatch refused the job{_requests(template)}: {done.message}"
            )

    def _record(self, submitted: list[JobRecord], array: ArrayRecord | None, slurm_id: str) -> None:
        try:
            self._store.add(self._name, submitted, array)
        except BaseException:
            self.slurm.scancel(slurm_id)  # nothing runs that is not recorded
            raise
        with self._lock:
            for record in submitted:
                self._states[record.job_id] = (record.state, "")
                self._unfinished[record.job_id] = record.slurm_id
        self._poller.publish(self._name, [(r.job_id, r.state) for r in submitted])

    def run_job(self, template: JobTemplate) -> str:
        """Submit one job with sbatch and record it."""
        slurm_id = self._submit(template, None)
        record = JobRecord(
            job_id=slurm_id,
            slurm_id=slurm_id,
            array_id=None,
            task_index=None,
            job_name=template.job_name,
            submitted=time.time(),
            submission_machine=socket.gethostname(),
            template=template.to_json(),
            state=JobState.QUEUED_HELD if template.submit_as_hold else JobState.QUEUED,
        )
        self._record([record], None, slurm_id)
        return slurm_id

    def run_bulk_jobs(
        self,
        template: JobTemplate,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
    ) -> tuple[str, list[str]]:
        """Submit an array with ``--array=b-e:s%p`` and record its tasks."""
        array_id = self._submit(template, (begin_index, end_index, step, max_parallel))
        state = JobState.QUEUED_HELD if template.submit_as_hold else JobState.QUEUED
        now, host = time.time(), socket.gethostname()
        tasks = [
            JobRecord(
                job_id=f"{array_id}.{index}",
                slurm_id=array_id,
                array_id=array_id,
                task_index=index,
                job_name=template.job_name,
                submitted=now,
                submission_machine=host,
                template=None,
                state=state,
            )
            for index in range(begin_index, end_index + 1, step)
        ]
        array = ArrayRecord(
            array_id, template.to_json(), begin_index, end_index, step, max_parallel
        )
        self._record(tasks, array, array_id)
        return array_id, [task.job_id for task in tasks]

    # -- queries -----------------------------------------------------------------------------

    def _known(self, job_id: str) -> JobRecord:
        record = self._store.job(self._name, job_id)
        if record is None:
            raise InvalidArgumentException(f"job {job_id!r}: no such job in session {self._name!r}")
        return record

    def _state_of(self, job_id: str) -> tuple[JobState, str]:
        with self._lock:
            known = self._states.get(job_id)
        if known is None:
            record = self._known(job_id)
            known = (record.state, record.sub_state)
            with self._lock:
                self._states.setdefault(job_id, known)
        return known

    def job_ids(self, job_filter: JobInfo | None) -> list[str]:
        """Ids of the session's jobs passing the filter, in submission order."""
        records = self._store.jobs(self._name)
        if job_filter is None:
            return [record.job_id for record in records]
        self.refresh([record.job_id for record in records])
        return [
            record.job_id
            for record in records
            if job_matches(self._info(self._known(record.job_id)), job_filter)
        ]

    def array_task_ids(self, array_id: str) -> list[str]:
        """The task ids of one of the session's arrays."""
        self._array(array_id)
        return self._store.array_task_ids(self._name, array_id)

    def _array(self, array_id: str) -> ArrayRecord:
        array = self._store.array(self._name, array_id)
        if array is None:
            raise InvalidArgumentException(
                f"job array {array_id!r}: no such array in session {self._name!r}"
            )
        return array

    def array_template(self, array_id: str) -> JobTemplate:
        """The template an array was submitted with."""
        return JobTemplate.from_json(self._array(array_id).template)

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's state as squeue shows it now (a finished job's as recorded)."""
        self._known(job_id)
        self.refresh([job_id])
        return self._state_of(job_id)

    def job_info(self, job_id: str) -> JobInfo:
        """The job's JobInfo, as squeue shows it now (a finished job's as recorded)."""
        self._known(job_id)
        self.refresh([job_id])
        record = self._known(job_id)
        info = self._info(record)
        terminal = record.state.is_terminal
        if terminal and self._cluster.accounting and record.job_id not in self._accounted:
            info = self._with_accounting(record, info)
        return info

    def _info(self, record: JobRecord) -> JobInfo:
        if record.state.is_terminal and record.info is not None:
            return JobInfo.from_json(record.info)
        with self._lock:
            row = self._rows.get(record.job_id)
        if row is None:
            info = JobInfo(job_id=record.job_id, job_state=record.state)
            info.job_sub_state = record.sub_state
        else:
            info = job_info_of(row, self._cluster.expand_hostlist)
        _add_record(info, record)
        return info

    def _with_accounting(self, record: JobRecord, info: JobInfo) -> JobInfo:
        """Add cpu_time and max rss from sacct, once they are there."""
        usage = self._cluster.usage(slurm_task_id(record.job_id))
        if usage is None:
            return info
        self._accounted.add(record.job_id)
        cpu, rss = usage
        info.cpu_time = cpu
        if rss is not None:
            info.implementation_specific = {
                **(info.implementation_specific or {}),
                extension.JOB_MAX_RSS: str(rss),
            }
        self._store.update(
            self._name, [(record.job_id, record.state, record.sub_state, info.to_json())]
        )
        return info

    def job_template(self, job_id: str) -> JobTemplate:
        """The template the job (or its array) was submitted with."""
        return self._template_of(self._known(job_id))

    def _template_of(self, record: JobRecord) -> JobTemplate:
        if record.array_id is not None:
            return self.array_template(record.array_id)
        assert record.template is not None
        return JobTemplate.from_json(record.template)

    # -- control -----------------------------------------------------------------------------

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
        info = JobInfo(
            job_id=job_id,
            job_name=record.job_name,
            job_state=JobState.FAILED,
            job_sub_state="CANCELLED",
            annotation="cancelled before it started",
            submission_machine=record.submission_machine,
            finish_time=_utc_now(),
        )
        change = (job_id, JobState.FAILED, "CANCELLED", info.to_json())
        with self._lock:
            if job_id not in self._unfinished:
                return
            self._apply([change])
        self._store.update(self._name, [change])
        self._poller.publish(self._name, [(job_id, JobState.FAILED)])

    def wait(
        self, job_ids: Sequence[str], condition: WaitFor, wait_all: bool, timeout: float
    ) -> list[str]:
        """Wait for jobs to start or finish (the poller watches them meanwhile)."""
        for job_id in job_ids:
            self._state_of(job_id)
        self.refresh(job_ids)

        def check() -> list[str] | None:
            reached = [i for i in job_ids if condition.reached(self._state_of(i)[0])]
            if wait_all:
                return list(job_ids) if len(reached) == len(job_ids) else None
            return reached[:1] or None

        result = check()
        if result is not None:
            return result
        if timeout == 0:
            raise TimeoutException(f"wait for {condition.value}: jobs {list(job_ids)} are not")
        return self._poller.wait_until(check, timeout, f"wait for {condition.value}")

    def reap(self, job_id: str) -> None:
        """Forget a finished job."""
        state, _ = self.job_state(job_id)
        if not state.is_terminal:
            raise InvalidStateException(
                f"job {job_id} is {state.name}: only a finished job is reaped"
            )
        self._store.delete_job(self._name, job_id)
        with self._lock:
            self._states.pop(job_id, None)

    def job_categories(self) -> list[str]:
        """Slurm has no job categories."""
        return []

    def close(self) -> None:
        """Stop watching the session's jobs; they keep running in Slurm."""
        self._poller.unregister(self)
