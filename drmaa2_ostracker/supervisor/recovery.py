"""Recovery: a keeper that starts takes over the unfinished jobs of the keeper before it.

A job is adopted only if its process is still the one started (same pid *and* start time), so
a reused pid is never taken for a job.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

from drmaa2.enums import JobState
from drmaa2_ostracker.process import (
    ProcessIdentity,
    ProcessSet,
    Spawned,
    find_job_process,
    is_stopped,
    kill_job,
    open_pidfd,
    ticks_at,
    wall_us_at,
)
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.launches import Submission
from drmaa2_ostracker.store.records import ArrayRecord, JobRecord
from drmaa2_ostracker.supervisor.jobs import (
    START_UNCONFIRMED,
    STARTING,
    UNCONFIRMED_NOTE,
    UNOBSERVED_NOTE,
    WALLCLOCK,
    Group,
    TrackedJob,
    launch_marks,
    now_us,
)
from drmaa2_ostracker.supervisor.lazy import Untouched
from drmaa2_ostracker.supervisor.states import Changes
from drmaa2_ostracker.supervisor.unfolding import Unfolding

__all__ = ["Recovery"]


class Recovery(Unfolding):
    """The supervisor's take-over of the jobs a previous keeper left unfinished."""

    def recover(
        self,
        store: Store,
        session: str,
        group_for: Callable[[JobRecord], Group],
        array_group: Callable[[ArrayRecord], Group],
    ) -> None:
        """Take over the unfinished jobs of a session (the keeper before this one is gone).

        A job still running (same pid *and* start time) is adopted: tracked, controllable,
        suspended stays suspended. A job that ended meanwhile is FAILED with its exit status
        unobserved, never invented. One caught while starting is adopted if its process is
        found, started if it was never forked (see :mod:`~drmaa2_ostracker.store.launches`,
        and, for a fork begun and not recorded, :mod:`~drmaa2_ostracker.store.orphans`),
        given its end if its process ended, and otherwise FAILED: it may have run, and never
        runs twice.
        Queued jobs queue again under their array's limit; held jobs stay held. An array's
        untouched tasks go on from its cursor. A job whose end the ring of ends holds (it
        could not be stored when the ring was opened: a full disk) takes that end, kept in
        memory until it is written.
        """
        groups: list[Group] = []
        with self._changing() as changes:
            self._begin(changes, store)
            # Jobs whose start is in the ring only (it could not be stored when the ring was
            # opened: a full disk): kept in memory until they are written, taken over alike.
            # (A start whose row was inserted since is still in the ring, which is cleared
            # only once what it holds is stored: the row is the job's record.)
            left = [
                record
                for record in store.ends.left_starts(session, store.session_created(session))
                if store.job_state(session, record.job_id) is None
            ]
            for record in left:
                self._keep_unwritten(store, record, store.ends.left_error)
            for record in left + store.unfinished_jobs(session):
                key = (store.path, session, record.job_id)
                if key in self._active:
                    continue
                if store.ends.settle_left(record):  # ended: its end is in the ring only
                    self._keep_unwritten(store, record, store.ends.left_error)
                    continue
                group = group_for(record)
                if all(g is not group for g in groups):
                    groups.append(group)
                job = TrackedJob(store, record, group)
                self._active[key] = job
                self._take_over(changes, job)
            for array in store.unfolding_arrays(session):
                key3 = (store.path, session, array.array_id)
                if key3 in self._unfolding:
                    continue
                group = array_group(array)
                assert array.next_index is not None
                touched = set(store.task_indices_from(session, array.array_id, array.next_index))
                touched.update(array.gone_indices)  # touched ahead, reaped since
                group.untouched = Untouched.of(store, array, touched)
                self._unfolding[key3] = group
                self._take_over_unrecorded(changes, group, group.untouched)
                if all(g is not group for g in groups):
                    groups.append(group)
            for group in groups:
                self._dispatch(changes, group)
                jobs = [j for j in self._active.values() if j.group is group]
                if group.untouched is not None:
                    self._add_group_timers(group, jobs)
                    continue
                if group.start_at is not None and not group.ready():
                    self._add_timer(
                        group.start_at, jobs, functools.partial(self._dispatch, group=group)
                    )
                if group.deadline is not None:
                    self._add_timer(
                        group.deadline, jobs, functools.partial(self._deadline, jobs=jobs)
                    )

    def _take_over_unrecorded(self, changes: Changes, group: Group, rest: Untouched) -> None:
        """The array's tasks the keeper before this one launched in a reaper round whose
        commit it did not live to make (see ``Dispatcher._dispatch``): the first untouched
        ones whose launch began. Written now as starting, and taken over as such: adopted
        if their process is found (started since their array's submission), never started
        again."""
        array = rest.array
        if array.held or not array.submission_us:
            return
        while not rest.exhausted:
            record = rest.record(rest.cursor)
            if not rest.store.launches.begun(record.session, record.job_id, array.submission_us):
                return
            rest.advance()
            if rest.exhausted:
                self._unfolding.pop((rest.store.path, rest.session, rest.array_id), None)
                group.untouched = None
            # Its launch began after the array's submission, and after the start of the
            # keepers whose launches are still to be decided: as exact as can be known.
            bound = rest.store.orphans.launch_bound()
            record.sub_state = STARTING
            record.pid_start = max(ticks_at(array.submission_us), bound or 0)
            job = self._write_touched(changes, rest, record, group)
            self._take_over(changes, job, exact=bound is not None)

    def _take_over_process(
        self, changes: Changes, job: TrackedJob, identity: ProcessIdentity, pidfd: int | None
    ) -> None:
        """A job marked as starting whose process is known (recorded by the keeper before
        this one, see :mod:`~drmaa2_ostracker.store.launches`, or found): recorded running,
        and adopted through ``pidfd``; None: it ended, so it ran, and only its exit status
        is unknown. Its dispatch time is its process's start (to a clock tick), if known."""
        ticks = identity.start_ticks
        started = wall_us_at(ticks if ticks >= 0 else -ticks - 1) if ticks else now_us()
        self._transition(
            changes,
            job,
            JobState.RUNNING,
            dispatch_us=max(job.record.submission_us or 0, min(now_us(), started)),
            pid=identity.pid,
            pid_start=identity.start_ticks,
            launch=None,
        )
        if pidfd is None:
            self._ended_unseen(changes, job, identity)
        else:
            self._adopt(job, identity, pidfd)

    def _ended_unseen(self, changes: Changes, job: TrackedJob, identity: ProcessIdentity) -> None:
        """A job whose process ended while no keeper lived (if it just ended, its anchor
        is about to record its end: see :meth:`Orphans.end_of
        <drmaa2_ostracker.store.orphans.Orphans.end_of>`)."""
        self._ended_elsewhere(changes, job, identity, 0.0, UNOBSERVED_NOTE)

    def _take_over_found(
        self,
        changes: Changes,
        job: TrackedJob,
        since: int | None,
        exact: bool = True,
        requeue: bool = True,
    ) -> None:
        """A job whose fork began at boot tick ``since`` (``exact``: or earlier) and whose
        process was not recorded: adopted if a process of the job started since then is
        found. Else, if no process the keeper before this one forked since then is to be
        seen (see :meth:`Orphans.launched_since
        <drmaa2_ostracker.store.orphans.Orphans.launched_since>`), it was never forked, and
        queues again; if exactly one is, and ``since`` is exact, that ended process was
        the job's (its exact end); otherwise it is FAILED start_unconfirmed (it may have
        run: it never runs twice). Not ``requeue``: never queued again (a submission made
        again, see :meth:`never_forked`: start_unconfirmed instead)."""
        found = ended = None
        store = job.store
        if since is not None:
            taken = self._known_processes() | store.launches.processes_before
            found = find_job_process(job.record.job_id, since, taken, store.state_dir)
            if found is None:
                ended = self._ended_since(store, since, taken)
        if ended == [] and requeue:
            # Never forked (the keeper was killed before): it starts as if never marked.
            self._transition(changes, job, JobState.QUEUED, "", pid_start=None)
            job.group.push(job)
            return
        if ended is not None and len(ended) == 1 and exact and store.orphans.claim(ended[0]):
            self._take_over_process(changes, job, ended[0], None)
            return
        pidfd = None if found is None else open_pidfd(found)
        if found is None or pidfd is None:
            self._transition(
                changes,
                job,
                JobState.FAILED,
                START_UNCONFIRMED,
                annotation=UNCONFIRMED_NOTE,
                finish_us=now_us(),
            )
            return
        self._take_over_process(changes, job, found, pidfd)

    def never_forked(self, store: Store, job_id: str, since: int) -> bool:
        """Whether the keeper before this one, killed once the fork of job ``job_id`` began
        at boot tick ``since`` and before it recorded its process, never forked it (see
        :meth:`_take_over_found`)."""
        taken = self._known_processes() | store.launches.processes_before
        if find_job_process(job_id, since, taken, store.state_dir) is not None:
            return False
        return self._ended_since(store, since, taken) == []

    @staticmethod
    def _ended_since(
        store: Store, since: int, taken: set[tuple[int, int]]
    ) -> list[ProcessIdentity] | None:
        """:meth:`Orphans.launched_since <drmaa2_ostracker.store.orphans.Orphans.launched_since>`,
        without the processes the store records for a job (ended ones are not in ``taken``),
        unless taken for a job whose fork began unrecorded (a claim: either's, see
        :meth:`~drmaa2_ostracker.store.orphans.Orphans.claim`)."""
        orphans = store.orphans
        ended = orphans.launched_since(since, taken)
        if not ended:
            return ended
        recorded = ProcessSet(store.processes_of(sorted({p.pid for p in ended})))
        return [p for p in ended if orphans.claimed(p) or not recorded.has(p.pid, p.start_ticks)]

    def resubmitted(
        self, store: Store, record: JobRecord, group: Group, submission: Submission
    ) -> None:
        """Take over a single job that a keeper before this one forked before recording it,
        and was killed before it could: its client made the submission again, ``record`` is
        the job's record made again from it, ``submission`` what the launches file says of
        it. Its process is adopted (or, ended, the job FAILED with its exit status
        unobserved); if its process was not recorded, as :meth:`_take_over_found`."""
        job = TrackedJob(store, record, group)
        job.unsaved = True
        with self._changing() as changes:
            self._active[job.key] = job
            self._note(changes, job)
            if submission.process is None:  # (if never forked, it was made anew instead)
                self._take_over_found(changes, job, submission.tick, requeue=False)
            else:
                identity = ProcessIdentity(*submission.process)
                self._take_over_process(changes, job, identity, open_pidfd(identity))
            if group.deadline is not None and not record.state.is_terminal:
                jobs = [job]
                self._add_timer(group.deadline, jobs, lambda ch: self._deadline(ch, jobs))

    def _adopt(self, job: TrackedJob, identity: ProcessIdentity, pidfd: int) -> None:
        """Track a running process of a job that is not this keeper's child."""
        job.spawned = Spawned(identity, pidfd, None, child=False)
        job.holds_slot = True
        job.group.running += 1
        self._watch(job)
        limit = job.group.wallclock_limit
        started = job.record.dispatch_us
        if limit is not None and started is not None:
            self._add_timer(
                started / 1e6 + limit,
                [job],
                lambda ch: self._kill(
                    ch, job, WALLCLOCK, f"wallclock limit of {limit:g} s exceeded"
                ),
            )

    def _known_processes(self) -> set[tuple[int, int]]:
        """The processes (pid, start ticks) of the jobs tracked or recorded as running: never
        taken for another job. (By identity, not pid: a pid recorded for a job that ended
        while no keeper lived may be another process's now.)"""
        known = {
            (job.spawned.identity.pid, job.spawned.identity.start_ticks)
            for job in self._active.values()
            if job.spawned
        }
        for store in {job.store for job in self._active.values()}:
            known.update(store.running_processes())
        return known

    def _take_over(self, changes: Changes, job: TrackedJob, exact: bool = True) -> None:
        """Take over one unfinished job (``exact``: its ``pid_start``, if it is starting, is
        the tick its fork began at, not earlier)."""
        record = job.record
        if record.state in (JobState.RUNNING, JobState.SUSPENDED):
            identity = ProcessIdentity(record.pid or 0, record.pid_start or 0)
            # Being killed when the keeper before died: its end says why, and the kill is
            # finished (it may have been stopped, not yet killed).
            reason = job.store.ends.kill_reasons.pop(
                (record.session, record.job_id, identity.start_ticks), None
            )
            if reason is not None:
                job.kill_reason = reason
            pidfd = open_pidfd(identity) if record.pid else None
            if pidfd is None:
                self._ended_unseen(changes, job, identity)
                return
            self._adopt(job, identity, pidfd)
            if reason is not None:
                # Its reason goes to the ring again (the ring was emptied once read), so that
                # it holds if this keeper is killed too before the job's end is recorded.
                with contextlib.suppress(OSError):
                    job.store.killing(record, *reason)
                kill_job(identity.pid, pidfd)
                return
            # A suspend or resume the keeper before this one was killed in the middle of:
            # the record follows the process (stopped: SUSPENDED; else RUNNING), so that
            # resume() and suspend() act on it.
            stopped = is_stopped(identity.pid)
            if stopped != (record.state is JobState.SUSPENDED):
                self._transition(changes, job, JobState.SUSPENDED if stopped else JobState.RUNNING)
        elif job.starting:
            launches = job.store.launches
            begun = [
                mark
                for mark in launch_marks(record)
                if launches.begun(record.session, record.job_id, mark)
            ]
            if not begun:
                # Never forked (the keeper was killed before): it starts as if never marked.
                self._transition(changes, job, JobState.QUEUED, "", pid_start=None)
                job.group.push(job)
                return
            forked = launches.fork_of(record.session, record.job_id, begun[0])
            if forked is not None:  # forked: that process, running or ended
                identity = ProcessIdentity(*forked)
                self._take_over_process(changes, job, identity, open_pidfd(identity))
                return
            # Its fork began, with the tick it was marked at: a process of the job that
            # started since then, if any, is the one (its start was not recorded).
            self._take_over_found(changes, job, record.pid_start, exact)
        elif record.state == JobState.QUEUED:
            job.group.push(job)
