"""The keeper's answers to its clients' requests about sessions: create, open, destroy and
list them, and the engine (:class:`~drmaa2_ostracker.keeper.sessions.SessionEngine`) a
request about a session's jobs is answered by.

Each ``_do_<request>`` method answers the request ``<request>``; it runs in the thread of the
connection that sent it.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from drmaa2.errors import (
    Drmaa2Exception,
    InvalidArgumentException,
    InvalidSessionException,
)
from drmaa2_ostracker.keeper.arguments import session_key
from drmaa2_ostracker.keeper.sessions import SessionEngine
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor import Supervisor, now_us

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.connection import Connection

__all__ = ["SessionKey", "SessionRequests"]

#: How a request names a session: by name, or by (name, when it was made), as its objects do.
SessionKey = str | tuple[str, int]


class SessionRequests:
    """The part of the :class:`~drmaa2_ostracker.keeper.server.Keeper` that answers requests
    about sessions."""

    # Set by the keeper; its lock also guards its connections and event streams.
    state_dir: str
    store: Store | None
    supervisor: Supervisor
    _lock: threading.Lock
    _engines: dict[str, SessionEngine]
    #: Sessions being destroyed, by how many requests at once (see :meth:`_do_destroy_session`).
    _destroying: collections.Counter[str]

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
