"""Dispatch: submitting jobs and starting them, in groups.

Jobs are started in *groups*: an array's tasks form one group with its ``max_parallel`` limit,
a single job is a group of one. A group dispatches its queued tasks in index order whenever a
slot frees, a task is released, or the group's start time arrives. Jobs are marked as
starting under the lock, and spawned outside it (spawning is the slow part).
"""

from __future__ import annotations

import heapq
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from drmaa2.enums import JobState
from drmaa2.errors import OutOfResourceException
from drmaa2_ostracker.faults import storage_error
from drmaa2_ostracker.process import Spawned, boot_ticks, kill_job
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord
from drmaa2_ostracker.supervisor.jobs import (
    START_FAILED,
    STARTING,
    WALLCLOCK,
    Group,
    LaunchError,
    TrackedJob,
    now_us,
)
from drmaa2_ostracker.supervisor.reaper import Reaper
from drmaa2_ostracker.supervisor.spawning import INTERRUPTED, Limited, spawn_job
from drmaa2_ostracker.supervisor.states import Changes
from drmaa2_ostracker.supervisor.writes import RETRY_INTERVAL

__all__ = ["Dispatcher"]


def _room_to_defer(store: Store) -> bool:
    """Whether a task's start may be committed after it: the state directory's file system
    has the room a submission needs (``RESERVE``, far more than FLUSH_DELAY's writes take);
    with less, a start waits for its commit."""
    return store.has_reserve()


class Dispatcher(Reaper):
    """The supervisor's submissions and starts: groups, their limits and start times."""

    def submit(
        self,
        store: Store,
        make_records: Callable[[], Sequence[JobRecord]],
        group: Group,
        *,
        commit_after_start: bool = False,
        submission: bytes | None = None,
    ) -> list[JobRecord]:
        """Record new jobs (already validated) and start what may start.

        ``make_records`` runs inside the store transaction that inserts its records, so ids
        it allocates and records it writes commit together. Records are QUEUED or
        QUEUED_HELD; queued ones start as their group allows, in index order. The records are
        in the store when this returns.

        ``commit_after_start``: record a job that starts at once with its start, after the
        spawn (nothing is written before the job starts; the record is committed before this
        returns). Right for a single job: if the process dies
        while starting it, the job was never accepted and is not in the store. Wrong for array
        tasks, whose records must say "starting" before they start, so that a task is never
        started twice.

        ``submission``: the client's key for a single job's submission (recorded before
        its fork, for a job started before it is recorded: see :meth:`start_now`).
        """
        self._last_submit = time.monotonic()
        with self._changing() as changes:
            jobs: list[TrackedJob] = []
            try:
                if not commit_after_start:
                    self._begin(changes, store)
                records = list(make_records())
                jobs = [TrackedJob(store, record, group) for record in records]
                for job in jobs:  # those that start now are recorded as starting right away
                    if (
                        job.record.state == JobState.QUEUED
                        and group.ready()
                        and not group.past_deadline()
                        and (group.max_parallel is None or group.running < group.max_parallel)
                    ):
                        job.record.sub_state = STARTING
                        job.record.pid_start = boot_ticks()  # see _dispatch
                        group.running += 1
                        job.holds_slot = True
                        job.unsaved = commit_after_start
                        job.submission = submission
                        changes.to_start.append(job)
                saved = [job.record for job in jobs if not job.unsaved]
                if saved:
                    self._begin(changes, store)
                    store.insert_jobs(saved)
                if store.in_transaction:
                    # Recorded before anything starts: a submission that cannot be written
                    # fails whole, and starts nothing.
                    store.commit()
                    self._dirty.pop(store.path, None)
            except sqlite3.Error as error:
                self._write_failed(store, error)
                changes.to_start = [job for job in changes.to_start if job not in jobs]
                raise storage_error(error, store.path, store.state_dir) from None
            for job in jobs:
                self._active[job.key] = job
                self._note(changes, job)
                if job.record.state == JobState.QUEUED and not job.holds_slot:
                    group.push(job)
            if group.start_at is not None and not group.ready():
                self._add_timer(group.start_at, jobs, lambda ch: self._dispatch(ch, group))
            if group.deadline is not None:
                self._add_timer(group.deadline, jobs, lambda ch: self._deadline(ch, jobs))
        return records

    def reserve_ids(self, store: Store, session: str, count: int) -> int:
        """Reserve ``count`` job ids of a session, committed before this returns (under the
        lock no change's transaction is open, so the reservation is its own); the first."""
        with self._lock:
            try:
                return store.allocate_id(session, count)
            except sqlite3.Error as error:
                self._write_failed(store, error)
                raise storage_error(error, store.path, store.state_dir) from None

    def start_now(
        self, store: Store, record: JobRecord, group: Group, submission: bytes | None = None
    ) -> None:
        """Start a single job at once, then record it with its start (committed when this
        returns). The fast way of :meth:`submit` for a job with no start
        time, deadline or hold: nothing is written before the spawn, and nobody knows the job
        before it is recorded, so nothing can change it meanwhile. Only ``submission``, the
        client's key for it, is recorded before the fork, in the launches file (for a client
        whose keeper is killed before it answers, see :meth:`Recovery.resubmitted`)."""
        self._last_submit = time.monotonic()
        job = TrackedJob(store, record, group)
        job.unsaved = True
        job.submission = submission
        job.holds_slot = True
        group.running += 1
        spawned, reason, interrupted = spawn_job(job)
        if isinstance(reason, Limited):  # nothing started, nothing recorded
            group.running -= 1
            raise OutOfResourceException(f"the job was not started: {reason}")
        with self._changing() as changes:
            self._active[job.key] = job
            self._note(changes, job)
            self._started(changes, job, spawned, reason)
        if interrupted is not None:
            raise interrupted

    def _started(
        self, changes: Changes, job: TrackedJob, spawned: Spawned | None, reason: str
    ) -> None:
        """Record how a job's start went: running, or failed to start for ``reason``."""
        if spawned is not None:
            self._running(changes, job, spawned)
            return
        if isinstance(reason, Limited):
            self._wait_for_limit(changes, job, reason)
            return
        self._transition(
            changes,
            job,
            JobState.FAILED,
            START_FAILED,
            annotation=reason,
            finish_us=now_us(),
            launch=None,
        )

    def _wait_for_limit(self, changes: Changes, job: TrackedJob, reason: str) -> None:
        """A job could not start for a limit of the machine (processes, descriptors): it is
        queued again, saying why, and the keeper tries again every RETRY_INTERVAL."""
        if job.holds_slot:
            job.holds_slot = False
            job.group.running -= 1
        note = f"waiting to start: {reason}; tried again every {RETRY_INTERVAL:g} s"
        self._transition(changes, job, JobState.QUEUED, "", pid_start=None, annotation=note)
        changes.must_commit = True
        job.group.push(job)
        self._held_back.add(job.group)
        if self._retry_at is None:
            self._retry_at = time.monotonic() + RETRY_INTERVAL
            os.eventfd_write(self._wake_fd, 1)

    def _dispatch(self, changes: Changes, group: Group) -> None:
        """Mark as many of the group's queued jobs as its limit allows for starting, in index
        order: queued tasks that are tracked, and the array's untouched ones (see
        :mod:`.lazy`)."""
        if not group.ready():
            return
        if group.past_deadline():
            # Its deadline came before these jobs could start (while no keeper ran, or
            # during recovery): they fail as at their deadline, never started. (An array's
            # untouched tasks by its deadline's timer, due now.)
            self._deadline(changes, [job for _, _, job in group.pending])
            return
        rest = group.untouched
        while group.max_parallel is None or group.running < group.max_parallel:
            if changes.budget <= 0 and (group.pending or (rest is not None and not rest.exhausted)):
                self._continue_later(group)
                return
            if (
                rest is not None
                and not rest.held
                and not rest.exhausted
                and (not group.pending or rest.cursor < group.pending[0][0])
            ):
                touched = self._touch_next(changes, group, rest)
                if touched is None:
                    continue  # it cannot start: failed
                job = touched
                # In the reaper's rounds, the task's row is committed after its start, with
                # its end or within FLUSH_DELAY: its launch record names it by its array, so
                # a keeper killed meanwhile leaves the next one to find it from the array's
                # cursor (Recovery). Tasks are touched and launched in index order, so those
                # launched and not committed are the first untouched ones.
                # Never where the record might not fit: a task does not start while its
                # start cannot be recorded (a full disk).
                if not (
                    changes.lazy
                    and rest.array.submission_us
                    and not self._unwritten
                    and _room_to_defer(rest.store)
                ):
                    changes.must_commit = True
            elif group.pending:
                _, _, job = heapq.heappop(group.pending)
                if (
                    job.key not in self._active
                    or job.record.state != JobState.QUEUED
                    or job.starting
                ):
                    continue  # held, terminated or started since it was queued
                reason = self._prepare(job)
                if reason is not None:
                    self._started(changes, job, None, reason)
                    continue
                # The tick it is marked at: a keeper that is killed while starting it lets
                # the next one find the job's process by it (recovery).
                self._transition(changes, job, JobState.QUEUED, STARTING, pid_start=boot_ticks())
                changes.must_commit = True
            else:
                return
            changes.budget -= 1
            group.running += 1
            job.holds_slot = True
            changes.to_start.append(job)

    def _continue_later(self, group: Group) -> None:
        """Leave the rest of a group's starts to the reaper thread's next round (lock
        held): it reaps what ended first, so a large array never starves the reaping."""
        self._continuing.add(group)
        self._ensure_thread()
        os.eventfd_write(self._wake_fd, 1)

    @staticmethod
    def _prepare(job: TrackedJob) -> str | None:
        """Prepare a job's launch spec before it is marked as starting, so that only the
        spawn itself lies between the mark and the start; why it cannot start, if so."""
        try:
            job.spec = job.group.prepare(job.record)
        except LaunchError as error:
            return str(error)
        except Exception as error:
            return f"could not start the job: {getattr(error, 'strerror', None) or error}"
        return None

    def _launch(self, jobs: list[TrackedJob], lazy: bool) -> None:
        """Start jobs marked STARTING (outside the lock: spawning is the slow part)."""
        interrupted: BaseException | None = None
        while jobs:
            started: list[tuple[TrackedJob, Spawned | None, str]] = []
            for job in jobs:
                if interrupted is not None:
                    started.append((job, None, INTERRUPTED))
                    continue
                spawned, reason, interrupted = spawn_job(job)
                started.append((job, spawned, reason))
            with self._changing(lazy) as changes:
                # Jobs whose failed start frees a slot are replaced by the reaper thread:
                # a thread that started a batch does not go on with the whole array.
                changes.budget = 0
                # A job marked as starting is recorded started at once when a client asked
                # for it. In the reaper's rounds (an array's next tasks, timers) its start
                # shares the next commit, within FLUSH_DELAY: one commit per task, not two.
                # A keeper killed meanwhile leaves the next one to find the job's process by
                # its launch (see Recovery._take_over), as between the fork and any commit.
                changes.must_commit = not lazy and any(not job.unsaved for job, _, _ in started)
                for job, spawned, reason in started:
                    self._started(changes, job, spawned, reason)
                jobs = changes.to_start
                changes.to_start = []
                changes.must_commit = changes.must_commit or bool(jobs)
        if interrupted is not None:
            raise interrupted

    def _running(self, changes: Changes, job: TrackedJob, spawned: Spawned) -> None:
        job.spawned = spawned
        self._watch(job)
        extra: dict[str, Any] = {} if job.record.annotation is None else {"annotation": None}
        self._transition(
            changes,
            job,
            JobState.RUNNING,
            # When it started, not now: its start may be recorded later (spawned outside the
            # lock, which another thread may hold meanwhile).
            dispatch_us=spawned.started_us or now_us(),
            pid=spawned.identity.pid,
            pid_start=spawned.identity.start_ticks,
            launch=None,
            **extra,
        )
        limit = job.group.wallclock_limit
        if limit is not None:
            self._add_timer(
                time.time() + limit,
                [job],
                lambda ch: self._kill(
                    ch, job, WALLCLOCK, f"wallclock limit of {limit:g} s exceeded"
                ),
            )
        if job.kill_reason is not None:  # terminated while it was starting
            kill_job(spawned.identity.pid, spawned.pidfd)
