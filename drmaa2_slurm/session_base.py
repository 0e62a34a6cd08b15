"""The job session's shared fields, and the methods its parts call before they are defined.

:class:`~drmaa2_slurm.job_session.SlurmJobSession` is assembled from mixins: submission
(:mod:`~drmaa2_slurm.submission`), control (:mod:`~drmaa2_slurm.control`) and queries
(:mod:`~drmaa2_slurm.queries`) on top of what the session itself does (observing squeue,
adopting other processes' jobs, waits). This base declares the fields every
part shares (set in ``SlurmJobSession.__init__``) and the methods a part calls that the session
defines.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from drmaa2.enums import JobState
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_slurm.cluster import Cluster
from drmaa2_slurm.commands import Slurm
from drmaa2_slurm.poller import Poller
from drmaa2_slurm.states import SlurmJob
from drmaa2_slurm.store import JobRecord, Store

__all__ = ["JobSessionBase"]


class JobSessionBase:
    """The fields shared by the job session's parts, one lock guarding the job tables."""

    _name: str
    _cluster: Cluster
    _store: Store
    _poller: Poller
    _lock: threading.Lock
    #: State and sub-state of every job seen by this object.
    _states: dict[str, tuple[JobState, str]]
    #: Unfinished jobs → the id squeue is asked for.
    _unfinished: dict[str, str]
    #: Unfinished jobs → their last squeue row.
    _rows: dict[str, SlurmJob]
    #: Jobs whose accounting (cpu time, max rss) was asked for already.
    _accounted: set[str]
    #: Jobs this session is terminating: one squeue no longer lists was cancelled.
    _cancelling: set[str]
    #: The deadline_time of the jobs whose template was looked at (None: it has none).
    _deadlines: dict[str, float | None]

    @property
    def slurm(self) -> Slurm:
        """The commands of the session's cluster."""
        return self._cluster.slurm

    # Called by the control actions; defined by the session.

    def _record_ends(
        self, infos: dict[str, tuple[JobState, str, JobInfo]], ran: dict[str, bool]
    ) -> list[tuple[str, JobState]]:
        """Record and publish the ends of jobs; the events published."""
        raise NotImplementedError

    def job_template(self, job_id: str) -> JobTemplate:
        """The template the job (or its array) was submitted with."""
        raise NotImplementedError

    def _alive(self) -> None:
        """InvalidSessionException if the session was destroyed since this object opened it."""
        raise NotImplementedError

    def observe(self, rows: list[SlurmJob], queried: Sequence[str]) -> bool:
        """Take what squeue said about the ids ``queried``: record and publish every change."""
        raise NotImplementedError

    def _apply(self, changes: list[tuple[str, JobState, str, str | None]]) -> None:
        """Note state changes in memory (lock held); finished jobs leave the unfinished."""
        raise NotImplementedError

    def _known(self, job_id: str) -> JobRecord:
        """The job's record; InvalidArgumentException if the session has no such job."""
        raise NotImplementedError

    def _state_of(self, job_id: str) -> tuple[JobState, str]:
        """The job's state and sub-state as last seen, without asking squeue."""
        raise NotImplementedError

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's state as squeue shows it now (a finished job's as recorded)."""
        raise NotImplementedError

    def _adopt(self, records: Sequence[JobRecord]) -> None:
        """Watch the unfinished jobs among ``records`` this object does not know yet."""
        raise NotImplementedError

    def refresh(self, job_ids: Sequence[str]) -> None:
        """Ask squeue about these jobs now (the unfinished ones; one call)."""
        raise NotImplementedError
