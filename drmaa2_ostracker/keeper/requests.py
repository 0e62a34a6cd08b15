"""The keeper's answers to its clients' requests: sessions (create, open, destroy, list) and
jobs (run, list, state, control, control of a whole array, wait).

Each ``_do_<request>`` method answers the request ``<request>``; it runs in the thread of the
connection that sent it.
"""

from __future__ import annotations

import collections
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from drmaa2.backend import Action, WaitFor
from drmaa2.errors import (
    Drmaa2Exception,
    InvalidArgumentException,
    InvalidSessionException,
    InvalidStateException,
)
from drmaa2.types import JobInfo
from drmaa2_ostracker.keeper.again import MADE_AGAIN, again_outcome, reached
from drmaa2_ostracker.keeper.arguments import (
    array_operation,
    session_key,
    submission_key,
    task_list,
)
from drmaa2_ostracker.keeper.protocol import (
    RECORDS_AT_ONCE,
    ConnectionLost,
    PlanUnknown,
    encode_error,
)
from drmaa2_ostracker.keeper.sessions import SessionEngine
from drmaa2_ostracker.plan import Plan, close_streams, plan_from_wire
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor import Supervisor, now_us

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.connection import Connection

__all__ = ["Requests"]

#: Plans clients may refer to by token (the least recently used are forgotten first).
_PLANS_KEPT = 256
#: How a request names a session: by name, or by (name, when it was made), as its objects do.
SessionKey = str | tuple[str, int]


class Requests:
    """The part of the :class:`~drmaa2_ostracker.keeper.server.Keeper` that answers requests
    about sessions and jobs."""

    # Set by the keeper; its lock also guards its connections and event streams.
    state_dir: str
    store: Store | None
    supervisor: Supervisor
    _lock: threading.Lock
    _engines: dict[str, SessionEngine]
    #: Sessions being destroyed, by how many requests at once (see :meth:`_do_destroy_session`).
    _destroying: collections.Counter[str]
    _plans: collections.OrderedDict[tuple[int, int], Plan]

    # -- sessions ----------------------------------------------------------------------------

    def _engine(self, session: SessionKey) -> SessionEngine:
        """The engine of a session named in a request: by its name (InvalidArgumentException
        if there is none), or by (name, when it was made) from an open session object, which
        a session destroyed since, or destroyed and made again under its name, is not
        (InvalidSessionException)."""
        name, made = (session, None) if isinstance(session, str) else session_key(session)
        engine = self._engines.get(name)
        if engine is None:
            store = self.store
            assert store is not None
            created = store.session_created(name)
            if created is None:
                raise self._session_gone(name, made)
            with self._lock:
                engine = self._engines.get(name)
                if engine is None and name in self._destroying:  # (found before it went)
                    raise self._session_gone(name, made)
                if engine is None:
                    # Read again under the lock destroys take: a whole destroy may have run
                    # since the read above (an engine of a destroyed session would outlive it).
                    created = store.session_created(name)
                    if created is None:
                        raise self._session_gone(name, made)
                    engine = SessionEngine(name, store, self.supervisor, created)
                    self._engines[name] = engine
        if made is not None and made != engine.created_us:
            raise self._made_again(name)
        return engine

    def _made_again(self, name: str) -> InvalidSessionException:
        return InvalidSessionException(
            f"job session {name!r} in {self.state_dir} was destroyed, and a session was "
            f"made again under its name since: this object of the old one is no longer "
            f"usable (open the session again for the new one)"
        )

    def _session_gone(self, name: str, made: int | None) -> Drmaa2Exception:
        """The error for a session that is not (or no longer) there: for an object of it
        (``made`` known), InvalidSessionException; for a name, InvalidArgumentException."""
        if made is not None:
            return InvalidSessionException(
                f"job session {name!r} in {self.state_dir} was destroyed: this object of it "
                f"is no longer usable"
            )
        return InvalidArgumentException(
            f"there is no job session named {name!r} in {self.state_dir}"
        )

    def _do_create_session(
        self,
        connection: Connection,
        name: str,
        asked_us: int,
        *,
        fds: list[int],
        again: bool = False,
    ) -> int:
        """Make a session, which the client asked for at ``asked_us``; when it was made (µs),
        which its objects name it by. Made ``again`` (the keeper that had it died before
        answering), a session of that name made since it was asked is the one that keeper
        made."""
        assert self.store is not None
        made = self.store.session_created(name) if again else None
        if made is None or made < asked_us:
            self.store.create_session(name, now_us())
        return self._engine(name).created_us

    def _do_open_session(self, connection: Connection, name: str, *, fds: list[int]) -> int:
        """When the session was made (µs), which its objects name it by."""
        return self._engine(name).created_us

    def _do_destroy_session(
        self, connection: Connection, session: SessionKey, *, fds: list[int], again: bool = False
    ) -> None:
        """Forget a session, named by its name (``destroy_job_session``) or by (name, when
        it was made) from an object of it (``JobSession.destroy``), which destroys that
        session only: one destroyed since, or destroyed and made again under its name, is
        InvalidSessionException. Made ``again``, a session no longer known (or made again
        since) was destroyed by the keeper that died before answering."""
        assert self.store is not None
        name, made = (session, None) if isinstance(session, str) else session_key(session)
        if again:
            created = self.store.session_created(name)
            if created is None or (made is not None and created != made):
                return  # destroyed by the keeper that died before answering
        with self._lock:
            # Checked under the lock that destroys take: the session cannot be destroyed
            # and made again between this check and its destruction.
            if made is not None:
                created = None if name in self._destroying else self.store.session_created(name)
                if created is None:
                    raise self._session_gone(name, made)
                if created != made:
                    raise self._made_again(name)
            engine = self._engines.pop(name, None)
            # Until it is gone from the store, a request that finds it there makes no engine
            # of it anew (it would outlive the session, and its waits would not end so).
            self._destroying[name] += 1
        try:
            if engine is not None:
                engine.destroyed = True  # before the waits it has wake up
                engine.close()
            self.supervisor.forget_session(self.store, name)
            self.store.destroy_session(name)
        finally:
            with self._lock:
                self._destroying[name] -= 1
                if not self._destroying[name]:
                    del self._destroying[name]

    def _do_session_names(self, connection: Connection, *, fds: list[int]) -> list[str]:
        assert self.store is not None
        return self.store.session_names()

    # -- jobs --------------------------------------------------------------------------------

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
            weakref.finalize(plan, close_streams, plan.streams)
            return plan
        with self._lock:
            plans[key] = plan
            while len(plans) > _PLANS_KEPT:
                plans.popitem(last=False)
        return plan

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
        return engine.run_job(self._plan(connection, token, wire, fds), key, again)

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

    def _do_job_ids(
        self, connection: Connection, session: SessionKey, job_filter: Any, *, fds: list[int]
    ) -> list[str]:
        found = None if job_filter is None else JobInfo.from_dict(job_filter)
        return self._engine(session).job_ids(found)

    def _do_array_task_ids(
        self, connection: Connection, session: SessionKey, array_id: str, *, fds: list[int]
    ) -> list[str]:
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
