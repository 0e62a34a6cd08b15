"""The keeper's answers to its clients' requests about jobs: run, list, state, control,
control of a whole array, wait (those about sessions are in
:mod:`~drmaa2_ostracker.keeper.session_requests`).

Each ``_do_<request>`` method answers the request ``<request>``; it runs in the thread of the
connection that sent it.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drmaa2.backend import Action, WaitFor
from drmaa2.errors import (
    InvalidArgumentException,
    InvalidStateException,
)
from drmaa2.types import JobInfo
from drmaa2_ostracker.keeper.again import MADE_AGAIN, again_outcome, reached
from drmaa2_ostracker.keeper.arguments import (
    array_operation,
    submission_key,
    task_list,
)
from drmaa2_ostracker.keeper.protocol import (
    RECORDS_AT_ONCE,
    ConnectionLost,
    PlanUnknown,
    encode_error,
)
from drmaa2_ostracker.keeper.session_requests import SessionKey, SessionRequests
from drmaa2_ostracker.plan import Plan, close_streams, plan_from_wire
from drmaa2_ostracker.process.settings import beyond_keeper

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.connection import Connection

__all__ = ["Requests"]

_log = logging.getLogger("drmaa2_ostracker.keeper.server")

#: Plans clients may refer to by token (the least recently used are forgotten first).
_PLANS_KEPT = 256
#: The longest a listing waits for the submissions hung-up clients left to handle (s).
_LEFT_BEHIND_WAIT = 5.0


class Requests(SessionRequests):
    """The part of the :class:`~drmaa2_ostracker.keeper.server.Keeper` that answers requests
    about sessions (:class:`SessionRequests`) and jobs."""

    _plans: collections.OrderedDict[tuple[int, int], Plan]
    _connections: set[Connection]
    #: This keeper hands over to one a client starts (see :meth:`_hand_over_for`).
    _handing_over: bool = False
    stop: Callable[[int, object], None]

    def _plan(
        self, connection: Connection, token: int, wire: Any, fds: list[int], jobs: int = 1
    ) -> Plan:
        """The plan a request carries, or names by its token (tokens are per client process:
        a process's connections share its plans)."""
        key = (connection.peer_pid, token)
        plans = self._plans
        if wire is None:
            with self._lock:
                plan = plans.get(key)
                if plan is None:
                    raise PlanUnknown(f"unknown plan {token}: send it whole")
                plans.move_to_end(key)
            return plan
        plan = plan_from_wire(wire, fds)
        if fds:
            # Sent whole every time, its descriptors with it: they are closed once its last
            # job started (or when the plan goes, if some never start).
            plan.unlaunched = jobs
            plan.submitter = connection.peer_pid
            weakref.finalize(plan, close_streams, plan.streams)
            return plan
        with self._lock:
            plans[key] = plan
            while len(plans) > _PLANS_KEPT:
                plans.popitem(last=False)
        return plan

    def _hand_over_for(self, plan: Plan) -> None:
        """A keeper that cannot give a client's jobs its own limits or nice value (it has
        those of the process that started it, and no privilege to raise them) hands over,
        if it has no unfinished job: it stops like on SIGTERM, this request unanswered, and
        the client makes it again with a keeper it starts, which has them. Once per keeper
        (two clients each beyond the other would pass it back and forth); with unfinished
        jobs, the job starts with the keeper's values, which its log says."""
        if plan.beyond is None:
            plan.beyond = [] if plan.settings is None else beyond_keeper(plan.settings)
        if not plan.beyond or self._handing_over or self.supervisor.has_unfinished():
            return
        self._handing_over = True
        _log.warning(
            "a client's jobs ask for %s, which this keeper cannot give (it has the limits and "
            "nice value of the process that started it); with no unfinished job, it hands "
            "over: the client makes its request again with a keeper it starts",
            ", ".join(plan.beyond),
        )
        self.stop(signal.SIGTERM, None)
        raise ConnectionLost("the keeper hands over to one the client starts")

    def _do_run_job(
        self,
        connection: Connection,
        session: SessionKey,
        key: bytes,
        token: int,
        wire: Any,
        *,
        fds: list[int],
        again: bool = False,
    ) -> tuple[str, bool]:
        engine = self._engine(session)
        key = submission_key(key)  # before the plan takes the descriptors
        plan = self._plan(connection, token, wire, fds)
        if plan.beyond is None or plan.beyond:  # (looked at once per plan)
            self._hand_over_for(plan)
        return engine.run_job(plan, key, again)

    def _do_run_bulk_jobs(
        self,
        connection: Connection,
        session: SessionKey,
        key: bytes,
        token: int,
        wire: Any,
        begin: int,
        end: int,
        step: int,
        max_parallel: int | None,
        *,
        fds: list[int],
        again: bool = False,
    ) -> str:
        engine = self._engine(session)
        key = submission_key(key)  # before the plan takes the descriptors
        plan = self._plan(connection, token, wire, fds, len(range(begin, end + 1, step)))
        self._hand_over_for(plan)
        return engine.run_bulk_jobs(plan, begin, end, step, max_parallel, key, again)

    def _do_again(self, connection: Connection, method: str, *args: Any, fds: list[int]) -> Any:
        """A request made again by a client whose keeper went away before answering it
        (see :mod:`~drmaa2_ostracker.keeper.again`). A submission (``run_job`` or
        ``run_bulk_jobs``, with the key it had) is answered with what it got then, if it was
        made (see :meth:`SessionEngine.run_job
        <drmaa2_ostracker.keeper.sessions.SessionEngine.run_job>`), else made now."""
        if method not in MADE_AGAIN:
            raise InvalidArgumentException(f"{method!r} cannot be made again")
        return getattr(self, f"_do_{method}")(connection, *args, fds=fds, again=True)

    def _after_hung_up_clients(self, connection: Connection) -> None:
        """Before a listing: the submissions a client that hung up left to handle (it was
        killed right after ``run_job`` returned, its next ones sent ahead) are handled first,
        so that a listing shows every job whose ``run_job`` returned (for at most
        ``_LEFT_BEHIND_WAIT`` seconds: a handful of submissions takes milliseconds)."""
        deadline = None
        while True:
            with self._lock:
                others = [other for other in self._connections if other is not connection]
            if not any(other.left_behind() for other in others):
                return
            now = time.monotonic()
            deadline = deadline or now + _LEFT_BEHIND_WAIT
            if now >= deadline:
                return
            time.sleep(0.001)

    def _do_job_ids(
        self, connection: Connection, session: SessionKey, job_filter: Any, *, fds: list[int]
    ) -> list[str]:
        found = None if job_filter is None else JobInfo.from_dict(job_filter)
        self._after_hung_up_clients(connection)
        return self._engine(session).job_ids(found)

    def _do_array_task_ids(
        self, connection: Connection, session: SessionKey, array_id: str, *, fds: list[int]
    ) -> list[str]:
        self._after_hung_up_clients(connection)
        return self._engine(session).array_task_ids(array_id)

    def _do_array_template(
        self, connection: Connection, session: SessionKey, array_id: str, *, fds: list[int]
    ) -> str:
        return self._engine(session).array_template_document(array_id)

    def _do_job_state(
        self, connection: Connection, session: SessionKey, job_id: str, *, fds: list[int]
    ) -> tuple[int, str]:
        state, sub_state = self._engine(session).job_state(job_id)
        return int(state), sub_state

    def _do_job_record(
        self, connection: Connection, session: SessionKey, job_id: str, *, fds: list[int]
    ) -> tuple[Any, ...]:
        return self._engine(session).record_values(job_id)

    def _do_job_records(
        self, connection: Connection, session: SessionKey, job_ids: list[str], *, fds: list[int]
    ) -> list[tuple[Any, ...] | None]:
        """Many jobs' records in one answer (None: no such job, reaped meanwhile)."""
        if not isinstance(job_ids, list) or len(job_ids) > RECORDS_AT_ONCE:
            raise InvalidArgumentException(
                f"job_ids: expected a list of at most {RECORDS_AT_ONCE} ids"
            )
        engine = self._engine(session)
        records: list[tuple[Any, ...] | None] = []
        for job_id in job_ids:
            try:
                records.append(engine.record_values(job_id))
            except InvalidArgumentException:
                records.append(None)
        return records

    def _do_job_template(
        self, connection: Connection, session: SessionKey, job_id: str, *, fds: list[int]
    ) -> str:
        return self._engine(session).job_template_document(job_id)

    def _do_control(
        self,
        connection: Connection,
        session: SessionKey,
        job_id: str,
        action: str,
        *,
        fds: list[int],
        again: bool = False,
    ) -> None:
        engine = self._engine(session)
        try:
            engine.control(job_id, Action(action))
        except InvalidStateException:
            if not again or not reached(Action(action), engine.job_state(job_id)[0]):
                raise

    def _do_reap(
        self,
        connection: Connection,
        session: SessionKey,
        job_id: str,
        *,
        fds: list[int],
        again: bool = False,
    ) -> None:
        """Forget a finished job; made ``again``, a job no longer known was reaped by the
        keeper that died before answering."""
        engine = self._engine(session)
        try:
            engine.reap(job_id)
        except InvalidArgumentException:
            if not again:
                raise

    def _do_control_array(
        self,
        connection: Connection,
        session: SessionKey,
        array_id: str,
        tasks: Any,
        operation: str,
        *,
        fds: list[int],
        again: bool = False,
    ) -> tuple[int, list[tuple[str, str]], list[tuple[str, tuple[str, str]]]]:
        """Act on tasks of an array in one change: ``tasks`` is (start, stop, step) of a
        range of their indices, or a list of their ids; ``operation`` a control action's
        name or "reap". The answer: how many it applied to, the tasks it passed over with
        why, those it failed on with their (error class, message).

        Made ``again`` (the keeper that had it died before answering): see
        :func:`~drmaa2_ostracker.keeper.again.again_outcome`."""
        engine = self._engine(session)
        assert self.store is not None
        chosen = array_operation(operation)
        outcome = self.supervisor.control_array(
            self.store, engine.name, array_id, task_list(tasks), chosen
        )
        applied, skipped, failures = outcome.applied, list(outcome.skipped), outcome.failed
        if again:
            applied, skipped, failures = again_outcome(
                engine, operation, applied, skipped, failures
            )
        failed = [(job_id, encode_error(error)) for job_id, error in failures]
        return applied, skipped, failed

    def _do_wait(
        self,
        connection: Connection,
        session: SessionKey,
        job_ids: list[str],
        condition: str,
        wait_all: bool,
        timeout: float,
        *,
        fds: list[int],
    ) -> list[str]:
        engine = self._engine(session)

        def check() -> None:  # between slices of the wait
            if connection.gone():
                raise ConnectionLost("the client stopped waiting")

        return engine.wait(job_ids, WaitFor(condition), wait_all, timeout, check)

    def _do_ping(self, connection: Connection, *, fds: list[int]) -> int:
        return os.getpid()
