"""Queries of the supervisor: a job's record and state as the keeper knows them, from memory
first (tracked jobs, ends not written yet, records a full disk kept from the store, array
tasks not touched yet), then from the store.
"""

from __future__ import annotations

import dataclasses

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.jobs import Group
from drmaa2_ostracker.supervisor.lazy import Untouched, split_task_id
from drmaa2_ostracker.supervisor.states import States

__all__ = ["Queries"]


class Queries(States):
    """The supervisor's lookups of one job's record and state."""

    def active_record(self, store: Store, session: str, job_id: str) -> JobRecord | None:
        """A copy of the record of a job this process tracks (or holds the end of, not yet
        in the store), None if it does not track it."""
        with self._lock:
            self._write_ends_first(store, (session, job_id))
            key = (store.path, session, job_id)
            job = self._active.get(key)
            unwritten = self._unwritten.get(store.path)
            if unwritten is not None and key in unwritten[1]:
                return self._unwritten_note(store, unwritten[1][key])
            if job is not None:
                return dataclasses.replace(job.record)
            ending = store.ends.pending.get((session, job_id))
            if ending is not None:  # ended, its row not written yet (read within a change)
                return dataclasses.replace(ending[0])
            return self._untouched_record(store, session, job_id)

    def _untouched_task(
        self, store: Store, session: str, job_id: str
    ) -> tuple[Group, Untouched, int] | None:
        """(its array's group, the array's untouched tasks, its index) of an array task not
        touched yet (see :mod:`.lazy`), None if ``job_id`` names none."""
        if not self._unfolding:
            return None
        found = split_task_id(job_id)
        if found is None:
            return None
        group = self._unfolding.get((store.path, session, found[0]))
        rest = None if group is None else group.untouched
        if group is None or rest is None or not rest.has(found[1]):
            return None
        return group, rest, found[1]

    def _untouched_record(self, store: Store, session: str, job_id: str) -> JobRecord | None:
        """The record of an array task not touched yet, None if ``job_id`` names none."""
        task = self._untouched_task(store, session, job_id)
        return None if task is None else task[1].record(task[2])

    def state(self, store: Store, session: str, job_id: str) -> tuple[JobState, str]:
        """A job's (state, sub-state); InvalidArgumentException if unknown."""
        with self._lock:
            found = self._state(store, session, job_id)
            self.observed()
            return found

    def _state(self, store: Store, session: str, job_id: str) -> tuple[JobState, str]:
        with self._lock:
            self._write_ends_first(store, (session, job_id))
            key = (store.path, session, job_id)
            job = self._active.get(key)
            if job is not None:
                return job.record.state, job.record.sub_state
            unwritten = self._unwritten.get(store.path)
            if unwritten is not None and key in unwritten[1]:
                record = unwritten[1][key]
                return record.state, record.sub_state
            ending = store.ends.pending.get((session, job_id))
            if ending is not None:  # ended, its row not written yet (read within a change)
                return ending[0].state, ending[0].sub_state
            found = store.job_state(session, job_id)
            if found is None:
                untouched = self._untouched_record(store, session, job_id)
                if untouched is not None:
                    return untouched.state, untouched.sub_state
        if found is None:
            raise InvalidArgumentException(f"job {job_id!r}: no such job in session {session!r}")
        return found
