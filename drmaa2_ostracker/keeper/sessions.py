"""A job session inside the keeper: records in the store, jobs handed to the supervisor.

Its clients checked the templates and resolved what depends on them (the environment, the
working directory, the executable: :mod:`~drmaa2_ostracker.template`); a session here records
jobs in the store (:mod:`~drmaa2_ostracker.store`) and hands them to the supervisor
(:mod:`~drmaa2_ostracker.supervisor`), which owns every state change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from drmaa2.backend import Action, WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException, InvalidSessionException
from drmaa2.types import JobTemplate
from drmaa2_ostracker import faults
from drmaa2_ostracker.keeper.listing import SessionQueries
from drmaa2_ostracker.plan import Plan, launch_document
from drmaa2_ostracker.process import wall_us_at
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import (
    MAX_ARRAY_TASKS,
    ArrayRecord,
    JobRecord,
    dumps,
    template_document,
)
from drmaa2_ostracker.supervisor import Group, Supervisor, now_us
from drmaa2_ostracker.template import restore_plan

__all__ = ["SessionEngine"]

#: The most job ids a session reserves at once (the reservation doubles from one up to this).
_MAX_ID_BLOCK = 64


class SessionEngine(SessionQueries):
    """A job session as the keeper runs it: the contract's job-session methods, on plans
    (its queries: :class:`~drmaa2_ostracker.keeper.listing.SessionQueries`)."""

    def __init__(self, name: str, store: Store, supervisor: Supervisor, created_us: int) -> None:
        self._name = name
        #: When the session was made (µs): with its name, what its objects know it by.
        self.created_us = created_us
        self._store = store
        self._supervisor = supervisor
        #: Job ids reserved in the store for this session object: next, end (exclusive).
        self._ids = (0, 0)
        self._id_block = 1
        self._id_lock = threading.Lock()
        #: The session was destroyed (its waits in progress then fail).
        self.destroyed = False

    def _next_id(self, places: int = 1) -> tuple[str, int]:
        """The next job (or array) id, from a block reserved in the store: ids are never
        handed out twice, and submitting needs no database write before the job starts.
        With it, its ``places`` in the session's order (the first): taken together, so
        that the order of the session's jobs is the order of their ids (a job started at
        once was placed after an array submitted while it was being spawned)."""
        with self._id_lock:
            following, end = self._ids
            if following >= end:
                following = self._supervisor.reserve_ids(self._store, self._name, self._id_block)
                end = following + self._id_block
                self._id_block = min(2 * self._id_block, _MAX_ID_BLOCK)
            self._ids = (following + 1, end)
            return str(following), self._store.reserve_seq(places)

    def _release_ids(self) -> None:
        """Give back the ids reserved and not used (if nobody reserved any after them)."""
        with self._id_lock:
            following, end = self._ids
            self._ids = (0, 0)
        if following < end:
            self._store.release_ids(self._name, following, end)

    def recover(self) -> None:
        """Reconcile the store with the machine: take over the jobs of the keeper before."""
        arrays: dict[str, Group] = {}

        def array_group(array: ArrayRecord) -> Group:
            group = arrays.get(array.array_id)
            if group is None:
                document = json.loads(array.launch) if array.launch else None
                group = self._restored_group(array.template, document, array.max_parallel)
                arrays[array.array_id] = group
            return group

        def group_for(record: JobRecord) -> Group:
            """Rebuilds launch groups from the store: one per array, one per single job."""
            if record.array_id is None:
                document = json.loads(record.launch) if record.launch else None
                return self._restored_group(record.template, document, None)
            return array_group(self._array(record.array_id))

        self._supervisor.recover(self._store, self._name, group_for, array_group)

    def _restored_group(
        self, template: str | None, document: dict[str, Any] | None, max_parallel: int | None
    ) -> Group:
        jt = JobTemplate.from_json(template) if template else JobTemplate()
        if document is None:  # started before the crash: only needed for its limits
            document = {"env": {}, "cwd": "/"}
        return self._group(restore_plan(jt, document), max_parallel)

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str:
        """The state directory holding the session's store."""
        return self._store.state_dir

    # -- submission ------------------------------------------------------------------------

    def _group(self, plan: Plan, max_parallel: int | None) -> Group:
        return Group(
            prepare=lambda record: plan.launch_spec(record.job_id, record.task_index),
            max_parallel=max_parallel,
            start_at=plan.start_at,
            deadline=plan.deadline,
            wallclock_limit=plan.wallclock_limit,
        )

    def _new_record(
        self, plan: Plan, job_id: str, submitted: int, deferred: str | None
    ) -> JobRecord:
        return JobRecord(
            session=self._name,
            job_id=job_id,
            state=JobState.QUEUED_HELD if plan.held else JobState.QUEUED,
            submission_us=submitted,
            job_name=plan.template.job_name,
            launch=deferred,
        )

    @staticmethod
    def _deferred(plan: Plan) -> str | None:
        """The launch document, for a job that may start after this process is gone."""
        waits = plan.held or (plan.start_at is not None and plan.start_at > now_us() / 1e6)
        return dumps(launch_document(plan)) if waits else None

    def run_job(self, plan: Plan, key: bytes, again: bool = False) -> tuple[str, bool]:
        """Record the job of a checked plan and start it (or queue it); its id, and whether
        the store's file system has room for many more and the keeper is far from its
        descriptor and process limits (a client may then send its next submissions ahead,
        see :mod:`~drmaa2_ostracker.keeper.ahead`).

        Far from a full disk, a job that may start at once is started, then recorded with
        its start. Nearer, it is recorded before it starts (with its launch document, for
        the next keeper to start it if this one is killed first): a record that cannot be
        written then raises, and nothing starts.

        ``key``, the client's name for this submission, is recorded in the launches file
        before anything else is (see :mod:`~drmaa2_ostracker.store.launches`). ``again``:
        the client made it before and got no answer (its keeper died): the job it got then,
        if it got one, is the answer (see :meth:`_made_before`)."""
        if again:
            made = self._made_before(plan, key)
            if made is not None:
                return made, faults.headroom()
        document = plan.document
        # Its row holds the template and, until it starts, its launch document: about
        # twice the template.
        roomy = self._store.ensure_space("the job was not submitted", 2 * len(document))
        job_id, place = self._next_id()
        if roomy and not plan.held and plan.start_at is None and plan.deadline is None:
            record = self._new_record(plan, job_id, now_us(), None)
            record.seq = place
            record.template = plan.document
            self._supervisor.start_now(self._store, record, self._single_group(plan), key)
            return job_id, faults.headroom()
        deferred = self._deferred(plan) if roomy else dumps(launch_document(plan))

        def make_records() -> list[JobRecord]:
            record = self._new_record(plan, job_id, now_us(), deferred)
            record.seq = place
            record.template = document
            return [record]

        self._store.launches.submitted(key, job_id)
        records = self._supervisor.submit(
            self._store,
            make_records,
            self._group(plan, None),
            commit_after_start=roomy,
            submission=key,
        )
        return records[0].job_id, roomy and faults.headroom()

    def _single_group(self, plan: Plan) -> Group:
        group = plan.single_group
        if group is None:
            group = plan.single_group = self._group(plan, None)
        return group

    def _made_before(self, plan: Plan, key: bytes) -> str | None:
        """The job a submission made again got when it was made before, if it got one.

        A job the store (or this keeper) has is the answer. A job that a keeper before this
        one started before recording it (and was killed before it could) is recorded now,
        from the plan made again, and its process adopted if it is found (by the launches
        file, else by its job id and start); if it is not found, it may have run and is
        FAILED start_unconfirmed, never run again, unless it is known that it was never
        forked (see :meth:`Recovery.never_forked
        <drmaa2_ostracker.supervisor.recovery.Recovery.never_forked>`). Otherwise (None) it
        never started: it is made now."""
        found = self._store.launches.submission(key)
        if found is None:
            return None
        try:
            self.job_state(found.job_id)
            return found.job_id
        except InvalidArgumentException:
            pass
        if found.mine or not found.tick:
            return None
        if found.process is None and self._supervisor.never_forked(
            self._store, found.job_id, found.tick
        ):
            return None  # the keeper was killed before its fork: it is made now
        # Submitted before its fork began, at that tick: as far as it can be told now.
        submitted = min(now_us(), wall_us_at(found.tick))
        record = self._new_record(plan, found.job_id, submitted, None)
        record.template = plan.document
        self._supervisor.resubmitted(self._store, record, self._single_group(plan), found)
        return found.job_id

    def run_bulk_jobs(
        self,
        plan: Plan,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
        key: bytes,
        again: bool = False,
    ) -> str:
        """Record the array of a checked plan and start its first tasks (its other tasks
        are written when they are touched: see :mod:`~drmaa2_ostracker.supervisor.lazy`).
        ``key`` and ``again``: as for :meth:`run_job` (an array is recorded before any of its
        tasks starts: one made before is the answer if it is in the store)."""
        if again:
            found = self._store.launches.submission(key)
            if found is not None and self._store.array(self._name, found.job_id) is not None:
                return found.job_id
        template = template_document(plan.template)
        launch = dumps(launch_document(plan))
        # Its record, and each task's row as it starts: a few times its documents.
        size = 2 * (len(template) + len(launch))
        self._store.ensure_space("the array was not submitted", size)
        tasks = len(range(begin_index, end_index + 1, step))
        if tasks > MAX_ARRAY_TASKS:
            raise InvalidArgumentException(
                f"a job array has at most {MAX_ARRAY_TASKS:,} tasks, not {tasks:,}"
            )
        array_id, first_place = self._next_id(tasks)
        array = ArrayRecord(
            session=self._name,
            array_id=array_id,
            begin_index=begin_index,
            end_index=end_index,
            step=step,
            max_parallel=max_parallel,
            template=template,
            launch=launch,
            submission_us=now_us(),
            held=plan.held,
            first_seq=first_place,
        )
        self._store.launches.submitted(key, array.array_id)
        self._supervisor.submit_array(self._store, array, self._group(plan, max_parallel))
        return array.array_id

    # -- control ---------------------------------------------------------------------------

    def control(self, job_id: str, action: Action) -> None:
        """Suspend, resume, hold, release or terminate a job."""
        self._supervisor.control(self._store, self._name, job_id, action)

    def wait(
        self,
        job_ids: Sequence[str],
        condition: WaitFor,
        wait_all: bool,
        timeout: float,
        check: Callable[[], None] | None = None,
    ) -> list[str]:
        """Wait for jobs to start or finish (``check``: see the supervisor's wait). A wait
        that the session's destruction ends (its jobs are gone, or ended unrecorded) raises
        InvalidSessionException, as any call on the session does from then on."""

        def going_on() -> None:  # between slices of the wait (about every second)
            if self.destroyed:  # a job running on, unrecorded: do not wait for its end
                raise self._gone()
            if check is not None:
                check()

        try:
            done = self._supervisor.wait(
                self._store, self._name, job_ids, condition, wait_all, timeout, going_on
            )
        except InvalidArgumentException:
            if self.destroyed:
                raise self._gone() from None
            raise
        if self.destroyed:
            raise self._gone()
        return done

    def _gone(self) -> InvalidSessionException:
        return InvalidSessionException(
            f"job session {self._name!r} in {self._store.state_dir} was destroyed while the "
            f"wait went on: its jobs are no longer known"
        )

    def reap(self, job_id: str) -> None:
        """Forget a finished job."""
        self._supervisor.reap_job(self._store, self._name, job_id)

    def job_categories(self) -> list[str]:
        """No categories are predefined; any job_category is kept and reported."""
        return []

    def close(self) -> None:
        """Give back the job ids reserved and not used (the keeper is about to exit)."""
        self._release_ids()
