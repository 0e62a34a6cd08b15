"""The JobSession adapter: DRMAA2 job sessions over sbatch, squeue, scontrol and scancel.

Slurm owns the jobs; this session keeps which jobs are its own in the store, the state it last
saw of each, and turns what squeue says into DRMAA2 states (:mod:`~drmaa2_slurm.states`).
Every state it sees goes through :meth:`SlurmJobSession.observe`, which records changes and
publishes them through the process's poller to waiters and the notification callback.

The session is assembled from parts on the shared fields of :mod:`~drmaa2_slurm.session_base`:
submission (:mod:`~drmaa2_slurm.submission`), control (:mod:`~drmaa2_slurm.control`) and the
queries (:mod:`~drmaa2_slurm.queries`) are mixins; observing squeue, adopting the jobs other
processes submit and the waits are here. Its JobInfo objects are built in
:mod:`~drmaa2_slurm.info`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from drmaa2.backend import WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import (
    InvalidArgumentException,
    InvalidSessionException,
    InvalidStateException,
    TimeoutException,
)
from drmaa2.types import JobInfo
from drmaa2_slurm.accounting import ended_jobs
from drmaa2_slurm.cluster import Cluster
from drmaa2_slurm.control import JobControl, destroy_session
from drmaa2_slurm.info import (
    PURGED,
    cancelled_info,
    finished_info,
    job_info_of,
    purged_info,
)
from drmaa2_slurm.poller import Poller
from drmaa2_slurm.queries import JobQueries
from drmaa2_slurm.states import JOB_FIELDS, SlurmJob, ran_unseen, slurm_task_id
from drmaa2_slurm.store import JobRecord
from drmaa2_slurm.submission import JobSubmission

__all__ = ["PURGED", "SlurmJobSession", "job_info_of", "slurm_task_id"]


class SlurmJobSession(JobSubmission, JobControl, JobQueries):
    """An open job session of the ``slurm`` backend (implements ``JobSessionBackend``)."""

    def __init__(self, name: str, cluster: Cluster, poller: Poller) -> None:
        self._name = name
        self._cluster = cluster
        self._store = cluster.store
        self._poller = poller
        self._lock = threading.Lock()
        self._states = {}
        self._unfinished = {}
        self._rows = {}
        self._accounted = set()
        self._cancelling = set()
        self._deadlines = {}
        created = self._store.session_created(name)
        if created is None:
            raise InvalidArgumentException(
                f"there is no job session named {name!r} for the cluster of {cluster.conf}"
            )
        self._created = created
        #: The last job's place in the order: later ones (another process's) are adopted.
        self._seen_seq = self._store.last_seq(name)
        self._adopt(self._store.jobs(name, unfinished_only=True))
        poller.register(self)

    @property
    def incarnation(self) -> float:
        """When the session was made: a session made again under its name after it was
        destroyed is another (see ``drmaa2.backend.SessionIdentity``)."""
        return self._created

    def _alive(self) -> None:
        """InvalidSessionException if the session was destroyed since this object opened it
        (whether or not a session was made again under its name)."""
        created = self._store.session_created(self._name)
        if created != self._created:
            again = "" if created is None else ", and a session was made again under its name"
            raise InvalidSessionException(
                f"job session {self._name!r} of the cluster of {self._cluster.conf} was "
                f"destroyed{again}: this object of it is no longer usable"
            )

    def destroy(self) -> None:
        """Destroy this session (not one made again under its name since it was destroyed:
        InvalidSessionException then, as when it was destroyed): its pending jobs, queued
        or held, are cancelled, never to start; its running jobs run on, unrecorded."""
        self._alive()
        try:
            destroy_session(self._cluster, self._name, self._created)
        except InvalidArgumentException:
            self._alive()  # destroyed meanwhile: say so
            raise

    def _adopt(self, records: Sequence[JobRecord]) -> None:
        """Watch the unfinished jobs among ``records`` this object does not know yet: those
        another object or process submitted since this one opened the session."""
        with self._lock:
            for record in records:
                if record.job_id in self._states:
                    continue
                self._states[record.job_id] = (record.state, record.sub_state)
                if not record.state.is_terminal and record.slurm_id:
                    self._unfinished[record.job_id] = record.slurm_id

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str:
        """The path of the cluster's slurm.conf."""
        return self._cluster.conf

    # -- what squeue says --------------------------------------------------------------------

    def query_ids(self) -> list[str]:
        """The squeue ids of the session's unfinished jobs (an array once), those another
        process submitted since the last round included."""
        if self._store.session_created(self._name) == self._created:  # not another's now
            records, self._seen_seq = self._store.jobs_since(self._name, self._seen_seq)
            self._adopt(records)
        with self._lock:
            return sorted(set(self._unfinished.values()))

    def observe(self, rows: list[SlurmJob], queried: Sequence[str]) -> bool:
        """Take what squeue said about the ids ``queried``: record and publish every change.

        A job asked for and not listed was forgotten by Slurm: see :meth:`_forgotten`.
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
                        if ran_unseen(old, row.state, row.ran):
                            events.append((row.job_id, JobState.RUNNING))
                        events.append((row.job_id, row.state))
            missing = [
                job_id
                for job_id, query in self._unfinished.items()
                if query in asked and job_id not in seen
            ]
            self._apply(changes)
            callback = self._poller.publishing()
        try:
            if changes:
                self._store.update(self._name, changes)
        finally:
            self._poller.publish(self._name, events, callback)
        if missing:
            events += self._forgotten(missing)
        events += self._held_past_deadline(rows)
        return bool(events)

    def _forgotten(self, job_ids: list[str]) -> list[tuple[str, JobState]]:
        """Record the end of jobs squeue no longer lists; returns the events published.

        A pending array task this session cancelled is CANCELLED (Slurm erases it without a
        trace); a job sacct shows finished ended as sacct says
        (:mod:`~drmaa2_slurm.accounting`); any other is FAILED with the sub-state
        :data:`PURGED` and no exit status.
        """
        with self._lock:
            cancelled = [
                job_id
                for job_id in job_ids
                if job_id in self._cancelling
                and not (job_id in self._rows and self._rows[job_id].ran)
            ]
        others = [job_id for job_id in job_ids if job_id not in cancelled]
        ended = ended_jobs(self.slurm, others) if others and self._cluster.accounting else {}
        infos: dict[str, tuple[JobState, str, JobInfo]] = {}
        for job_id in cancelled:
            record = self._store.job(self._name, job_id)
            if record is not None:
                with self._lock:
                    row = self._rows.get(job_id)
                info = cancelled_info(job_id, record, row)
                infos[job_id] = (JobState.FAILED, "CANCELLED", info)
        for job_id in others:
            if job_id in ended:
                row, note = ended[job_id]
                info = self._finished_info(row)
                if note:
                    info.annotation = f"{info.annotation}; {note}" if info.annotation else note
                infos[job_id] = (row.state, row.sub_state, info)
            else:
                infos[job_id] = (JobState.FAILED, PURGED, self._purged_info(job_id))
        ran = {job_id: row.ran for job_id, (row, _) in ended.items()}
        return self._record_ends(infos, ran)

    def _record_ends(
        self, infos: dict[str, tuple[JobState, str, JobInfo]], ran: dict[str, bool]
    ) -> list[tuple[str, JobState]]:
        """Record and publish the ends of jobs this object watched (``ran``: whether Slurm
        says a job ran, for those it says so of); the events published."""
        changes: list[tuple[str, JobState, str, str | None]] = []
        with self._lock:
            before = {job_id: self._states.get(job_id) for job_id in infos}
            for job_id, (state, sub, info) in infos.items():
                if job_id in self._unfinished:
                    changes.append((job_id, state, sub, info.to_json()))
            self._apply(changes)
            callback = self._poller.publishing()
        events = []
        for job_id, state, _, _ in changes:
            if job_id in ran and ran_unseen(before.get(job_id), state, ran[job_id]):
                events.append((job_id, JobState.RUNNING))
            events.append((job_id, state))
        try:
            if changes:
                self._store.update(self._name, changes)
        finally:
            self._poller.publish(self._name, events, callback)
        return events

    def _apply(self, changes: list[tuple[str, JobState, str, str | None]]) -> None:
        for job_id, state, sub, _ in changes:
            self._states[job_id] = (state, sub)
            if state.is_terminal:
                self._unfinished.pop(job_id, None)
                self._rows.pop(job_id, None)

    def _finished_info(self, row: SlurmJob) -> JobInfo:
        record = self._store.job(self._name, row.job_id)
        return finished_info(row, record, self._cluster.expand_hostlist, self._template_of)

    def _purged_info(self, job_id: str) -> JobInfo:
        with self._lock:
            row = self._rows.get(job_id)
        record = self._store.job(self._name, job_id)
        return purged_info(job_id, row, record, self._cluster.expand_hostlist)

    def refresh(self, job_ids: Sequence[str]) -> None:
        """Ask squeue about these jobs now (the unfinished ones; one call)."""
        with self._lock:
            queries = sorted({self._unfinished[i] for i in job_ids if i in self._unfinished})
        if queries:
            rows = [SlurmJob(row) for row in self.slurm.squeue(JOB_FIELDS, queries)]
            self.observe(rows, queries)

    # -- what the queries and waits share -----------------------------------------------------

    def _known(self, job_id: str) -> JobRecord:
        self._alive()
        record = self._store.job(self._name, job_id)
        if record is None:
            raise InvalidArgumentException(f"job {job_id!r}: no such job in session {self._name!r}")
        self._adopt([record])
        return record

    def _state_of(self, job_id: str) -> tuple[JobState, str]:
        with self._lock:
            known = self._states.get(job_id)
        if known is None:
            # Not seen by this object yet: another object or process may have submitted it
            # since this one opened the session. Unfinished, the poller watches it from now.
            record = self._known(job_id)
            known = (record.state, record.sub_state)
            with self._lock:
                known = self._states.setdefault(job_id, known)
                if not known[0].is_terminal and record.slurm_id:
                    self._unfinished.setdefault(job_id, record.slurm_id)
        return known

    def wait(
        self, job_ids: Sequence[str], condition: WaitFor, wait_all: bool, timeout: float
    ) -> list[str]:
        """Wait for jobs to start or finish (the poller watches them meanwhile)."""
        self._alive()
        for job_id in job_ids:
            self._state_of(job_id)
        self.refresh(job_ids)

        def check() -> list[str] | None:
            self._alive()  # destroyed by another process meanwhile: the wait says so
            reached = [i for i in job_ids if condition.reached(self._state_of(i)[0])]
            if wait_all:
                return list(job_ids) if len(reached) == len(job_ids) else None
            return reached[:1] or None

        result = check()
        if result is not None:
            return result
        which = "all" if wait_all else "any"
        named = list(job_ids) if len(job_ids) <= 5 else [*job_ids[:3], "…", job_ids[-1]]
        what = (
            f"wait for {which} of {len(job_ids)} job{'s' if len(job_ids) != 1 else ''} "
            f"{named} to be {condition.value}"
        )
        if timeout == 0:
            not_yet = "not every one is" if wait_all else "none is"
            raise TimeoutException(f"{what}: {not_yet} yet, and the timeout is 0 (ZERO_TIME)")
        return self._poller.wait_until(check, timeout, what)

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
