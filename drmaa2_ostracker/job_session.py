"""The JobSession adapter: the backend contract's job-session methods, as a client of the
keeper (:mod:`drmaa2_ostracker.keeper`).

Templates are checked here, in the submitting process, against its environment, working
directory and permissions (:mod:`~drmaa2_ostracker.template`); the checked plan goes to the
keeper, which records the job and starts it as this process would have. Everything else is a
request to the keeper.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from drmaa2.backend import Action, ArrayOperation, ArrayOutcome, WaitFor
from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import JobInfo, JobTemplate
from drmaa2_ostracker.info import record_to_info
from drmaa2_ostracker.keeper import KeeperClient
from drmaa2_ostracker.keeper.ahead import Ahead
from drmaa2_ostracker.keeper.client import ANSWER_GRACE
from drmaa2_ostracker.keeper.protocol import RECORDS_AT_ONCE, PlanUnknown, decode_error
from drmaa2_ostracker.store.records import MAX_ARRAY_TASKS, JobRecord
from drmaa2_ostracker.template import Plan, plan_job

__all__ = ["OsJobSession"]

_tokens = itertools.count(1)
#: A run_job within this many seconds of the previous one's return, with no other call to
#: the keeper in between, is part of a burst: it may be sent ahead (see
#: :meth:`OsJobSession.run_job`).
BURST_GAP = 0.001


class OsJobSession:
    """An open job session of the ``os`` backend (implements ``JobSessionBackend``,
    ``ArrayControlBackend`` and ``SessionIdentity``)."""

    def __init__(
        self,
        name: str,
        made: int,
        client: KeeperClient,
        on_close: Callable[[], None],
        contact: str,
    ) -> None:
        self._name = name
        #: The state directory as the session was opened with (its client's is its real
        #: path: two names of one directory share one client).
        self._contact = contact
        #: How requests name the session: a session destroyed and made again under its name
        #: since is another (the keeper refuses this object's requests for it).
        self._key = (name, made)
        self._client = client
        self._on_close = on_close
        self._closed = False
        #: When the last run_job returned (and the client's calls then), and whether the
        #: keeper's last answer to one allowed sending the next ahead (far from a full disk
        #: and from its limits).
        self._last_run = (-1.0, -1)
        self._ahead_ok = False

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    @property
    def contact(self) -> str:
        """The state directory holding the session's store (as it was named when the session
        was opened)."""
        return self._contact

    # -- submission ------------------------------------------------------------------------

    def _submit(
        self,
        method: str,
        plan: Plan,
        *args: object,
        now: bool = False,
        key: bytes | None = None,
        again: bool = False,
    ) -> object:
        # A plan goes whole on its first use; later, the keeper knows it by its token. Plans
        # with the caller's own streams always go whole: their descriptors go along.
        # ``now``: without reading the answers of submissions sent ahead first. ``key``: the
        # submission's (a new one if None); ``again``: it may have been made already, by a
        # keeper that went away before answering (the keeper then answers with what it got).
        client = self._client
        call = client.call_now if now else client.call
        submission = client.submission_key() if key is None else key
        head: tuple[str, ...] = ("again", method) if again else (method,)
        fds = plan.stream_fds()
        if fds:
            return call(*head, self._key, submission, next(_tokens), plan.to_wire(), *args, fds=fds)
        token = plan.keeper_token
        if token is not None and token[0] is client:
            try:
                return call(*head, self._key, submission, token[1], None, *args)
            except PlanUnknown:
                # The keeper forgot it (or is a new keeper): sent whole, as made again (the
                # call may have reached a keeper that died before saying it did not know it).
                head = ("again", method)
        plan.keeper_token = None
        number = next(_tokens)
        answer = call(*head, self._key, submission, number, plan.to_wire(), *args)
        plan.keeper_token = (client, number, client.keeper_pid)
        return answer

    def run_job(self, template: JobTemplate) -> str | Submitted:
        """Check the template here; the keeper records the job and starts it (or queues it).

        In a burst (this call within :data:`BURST_GAP` of the previous one's return, no other
        call to the keeper from this process in between, the keeper's last answer saying it
        is far from a full disk and from its limits, the template sent before and naming
        none of this process's own streams), the submission is sent ahead: this
        returns once it is in the keeper's socket, where it is handled even if this process
        exits, and the job's id is read when first asked for (see
        :mod:`~drmaa2_ostracker.keeper.ahead`)."""
        plan = plan_job(template, array=False)
        token = plan.keeper_token
        client = self._client
        last, calls = self._last_run
        if (
            self._ahead_ok
            and token is not None
            and token[0] is client
            and token[2] == client.keeper_pid
            and calls == client.calls
            and time.monotonic() - last < BURST_GAP
            and not plan.stream_fds()
        ):
            key = client.submission_key()
            ahead = client.send_ahead(
                "run_job",
                self._key,
                key,
                token[1],
                None,
                keeper=token[2],
                redo=lambda: self._submit("run_job", plan, now=True, key=key, again=True),
            )
            self._last_run = (time.monotonic(), calls)
            return Submitted(self, ahead)
        answer: Any = self._submit("run_job", plan)
        job_id, self._ahead_ok = answer
        self._last_run = (time.monotonic(), client.calls)
        return str(job_id)

    def run_bulk_jobs(
        self,
        template: JobTemplate,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
    ) -> tuple[str, list[str]]:
        """Check the template here; the keeper records the array and starts its first tasks."""
        tasks = len(range(begin_index, end_index + 1, step))
        if tasks > MAX_ARRAY_TASKS:
            raise InvalidArgumentException(
                f"a job array of the os backend has at most {MAX_ARRAY_TASKS:,} tasks; "
                f"begin_index {begin_index}, end_index {end_index} and step {step} give "
                f"{tasks:,}: split it into several arrays"
            )
        plan = plan_job(template, array=True)
        answer: Any = self._submit(
            "run_bulk_jobs", plan, begin_index, end_index, step, max_parallel
        )
        # The keeper answers with the array's id: its tasks' ids follow from the indices.
        array_id = str(answer)
        prefix = f"{array_id}."
        return array_id, [prefix + str(index) for index in range(begin_index, end_index + 1, step)]

    # -- queries ---------------------------------------------------------------------------

    def job_ids(self, job_filter: JobInfo | None) -> list[str]:
        """Ids of the jobs passing the filter, oldest first."""
        wanted = None if job_filter is None else job_filter.to_dict()
        return list(self._client.call("job_ids", self._key, wanted))

    def array_task_ids(self, array_id: str) -> list[str]:
        """Task ids of one of the session's arrays, in index order."""
        return list(self._client.call("array_task_ids", self._key, array_id))

    def array_template(self, array_id: str) -> JobTemplate:
        """The template an array was submitted with."""
        return JobTemplate.from_json(self._client.call("array_template", self._key, array_id))

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's (state, sub-state)."""
        state, sub_state = self._client.call("job_state", self._key, job_id)
        return JobState(state), sub_state

    def job_info(self, job_id: str) -> JobInfo:
        """The job's JobInfo."""
        values = self._client.call("job_record", self._key, job_id)
        return record_to_info(JobRecord.from_values(values))

    def job_infos(self, job_ids: Sequence[str]) -> list[JobInfo | None]:
        """The JobInfos of many jobs, a few round trips for all (None: no such job, reaped
        meanwhile): what a listing of a large array asks for."""
        infos: list[JobInfo | None] = []
        for start in range(0, len(job_ids), RECORDS_AT_ONCE):
            chunk = list(job_ids[start : start + RECORDS_AT_ONCE])
            for values in self._client.call("job_records", self._key, chunk):
                infos.append(
                    None if values is None else record_to_info(JobRecord.from_values(values))
                )
        return infos

    def job_template(self, job_id: str) -> JobTemplate:
        """The template the job (or its array) was submitted with."""
        return JobTemplate.from_json(self._client.call("job_template", self._key, job_id))

    # -- control ---------------------------------------------------------------------------

    def control(self, job_id: str, action: Action) -> None:
        """Suspend, resume, hold, release or terminate a job."""
        self._client.call("control", self._key, job_id, action.value)

    def control_array(
        self, array_id: str, job_ids: Sequence[str], operation: ArrayOperation
    ) -> ArrayOutcome:
        """Act on tasks of an array in one keeper request, whatever their number (tasks
        never started are acted on all at once: see the keeper's supervisor)."""
        answer = self._client.call(
            "control_array", self._key, array_id, _task_range(array_id, job_ids), operation
        )
        applied, skipped, failed = answer
        return ArrayOutcome(
            applied,
            [(job_id, why) for job_id, why in skipped],
            [(job_id, decode_error(error)) for job_id, error in failed],
        )

    def wait(
        self, job_ids: Sequence[str], condition: WaitFor, wait_all: bool, timeout: float
    ) -> list[str]:
        """Wait for jobs to start or finish (the keeper answers when they have). With a
        timeout, a keeper that does not answer within it and ANSWER_GRACE (stopped, hung)
        ends the wait too: TimeoutException."""
        within = None if timeout < 0 else timeout + ANSWER_GRACE
        answer = self._client.call(
            "wait",
            self._key,
            list(job_ids),
            condition.value,
            wait_all,
            float(timeout),
            within=within,
        )
        return list(answer)

    def reap(self, job_id: str) -> None:
        """Forget a finished job."""
        self._client.call("reap", self._key, job_id)

    def job_categories(self) -> list[str]:
        """No categories are predefined; any job_category is kept and reported."""
        return []

    @property
    def incarnation(self) -> int:
        """When the session was made (µs since the epoch): a session made again under its
        name after it was destroyed is another (see ``drmaa2.backend.SessionIdentity``)."""
        return self._key[1]

    def destroy(self) -> None:
        """Destroy this session, not one made again under its name since it was destroyed
        (InvalidSessionException then, as when it was destroyed). Still to be closed."""
        self._client.call("destroy_session", self._key)

    def close(self) -> None:
        """Close the session; its jobs go on, owned by the keeper."""
        if not self._closed:
            self._closed = True
            self._on_close()


class Submitted:
    """The id of a job sent ahead (a :class:`drmaa2.backend.SubmittedId`)."""

    __slots__ = ("_ahead", "_session")

    def __init__(self, session: OsJobSession, ahead: Ahead) -> None:
        self._session = session
        self._ahead = ahead

    def result(self) -> str:
        """The job's id, once the keeper's answer is read."""
        job_id, roomy = self._ahead.result()
        if not roomy:
            self._session._ahead_ok = False
        return str(job_id)


def _task_range(array_id: str, job_ids: Sequence[str]) -> tuple[int, int, int] | list[str]:
    """Task ids as (start, stop, step) of their indices when they are an array's ids by an
    even step, in order (as the tasks of an array are): a million of them travel as three
    numbers. Otherwise the ids themselves."""
    ids = list(job_ids)
    prefix = f"{array_id}."
    try:
        first = _task_index(prefix, ids[0])
        step = _task_index(prefix, ids[1]) - first if len(ids) > 1 else 1
        last = _task_index(prefix, ids[-1])
    except (IndexError, ValueError):
        return ids
    if step == 0:
        return ids
    stop = last + (1 if step > 0 else -1)
    indices = range(first, stop, step)
    if len(indices) != len(ids) or ids != [prefix + str(index) for index in indices]:
        return ids
    return first, stop, step


def _task_index(prefix: str, job_id: str) -> int:
    """The index of a task id with this prefix; ValueError for any other id."""
    if not job_id.startswith(prefix):
        raise ValueError(job_id)
    return int(job_id[len(prefix) :])
