"""Control: suspend, resume, hold, release, terminate and reap a job.

Whether an action applies in the job's state is decided by one table,
:data:`~drmaa2_ostracker.supervisor.states.CONTROL`; the functions here only carry it out.
"""

from __future__ import annotations

import sqlite3

from drmaa2.backend import Action
from drmaa2.enums import JobState
from drmaa2.errors import InvalidStateException
from drmaa2_ostracker.process import continue_job, stop_job
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.space import storage_error
from drmaa2_ostracker.supervisor.jobs import STARTING, TERMINATED, TrackedJob
from drmaa2_ostracker.supervisor.states import FINISHED, Changes, allows
from drmaa2_ostracker.supervisor.waits import Waits

__all__ = ["Control"]


class Control(Waits):
    """The supervisor's job control actions."""

    def control(self, store: Store, session: str, job_id: str, action: Action) -> None:
        """Apply a job control action (see :meth:`drmaa2.backend.JobSessionBackend.control`)."""
        with self._changing() as changes:
            job = self._active.get((store.path, session, job_id))
            untouched = None if job is not None else self._untouched_record(store, session, job_id)
            if untouched is not None:  # an array task not written yet: written now
                if allows(action, job_id, untouched.state, untouched.state):
                    job = self.touch(changes, store, session, job_id)
                    assert job is not None
                    getattr(self, f"_{action.value}")(changes, job)
                return
            if job is None:  # no longer tracked: its record is in the store only
                state, _ = self._state(store, session, job_id)  # unknown ids raise here
                row: JobState | str = FINISHED
            else:
                state = job.record.state
                row = STARTING if job.starting else state
            if not allows(action, job_id, row, state):
                return
            assert job is not None  # the table allows nothing on a job that has finished
            getattr(self, f"_{action.value}")(changes, job)
        if action is Action.TERMINATE:
            self._await_end(job)

    # Each action below runs only in the states where CONTROL says DO: a job RUNNING or
    # SUSPENDED has been spawned.

    def _suspend(self, changes: Changes, job: TrackedJob) -> None:
        assert job.spawned is not None
        stop_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.SUSPENDED)

    def _resume(self, changes: Changes, job: TrackedJob) -> None:
        assert job.spawned is not None
        continue_job(job.spawned.identity.pid, job.spawned.pidfd)
        self._transition(changes, job, JobState.RUNNING)

    def _hold(self, changes: Changes, job: TrackedJob) -> None:
        self._transition(changes, job, JobState.QUEUED_HELD)

    def _release(self, changes: Changes, job: TrackedJob) -> None:
        self._transition(changes, job, JobState.QUEUED)
        job.group.push(job)
        self._dispatch(changes, job.group)

    def _terminate(self, changes: Changes, job: TrackedJob) -> None:
        self._kill(changes, job, TERMINATED, "terminated by the user")

    def reap_job(self, store: Store, session: str, job_id: str) -> None:
        """Forget a finished job; InvalidStateException while it has not finished."""
        with self._lock:
            state, _ = self.state(store, session, job_id)
            if not state.is_terminal:
                raise InvalidStateException(
                    f"cannot reap job {job_id}: it has not finished ({state.name})"
                )
            try:
                store.delete_job(session, job_id)
            except sqlite3.Error as error:
                raise storage_error(error, store.path, store.state_dir) from None
            unwritten = self._unwritten.get(store.path)
            if unwritten is not None:
                unwritten[1].pop((store.path, session, job_id), None)
