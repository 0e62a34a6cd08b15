"""What becomes of the session of a :class:`~drmaa2.session.JobSession` object: closed and
opened again by the object, destroyed by it, or, when the object is dropped without being
destroyed, closed (and destroyed if ``destroy_on_exit`` holds) by the garbage collector or at
interpreter exit.
"""

from __future__ import annotations

import logging
import os
import weakref

from drmaa2.backend import Backend, JobSessionBackend, SessionIdentity
from drmaa2.errors import InvalidArgumentException, InvalidSessionException
from drmaa2.front import _backend_call

__all__ = ["SessionLifetime"]

_log = logging.getLogger("drmaa2")


class SessionLifetime:
    """The life of one JobSession object's session: the backend session while it is open,
    and what is done with it when the object is dropped.

    It holds everything the end needs but never the object itself, so that the object can be
    collected. Only the process that made the object destroys the session when it is dropped:
    a forked copy (the child of ``os.fork()``, or its parent) only closes it, as the other
    process may still use the session.
    """

    def __init__(
        self,
        owner: object,
        backend_name: str,
        impl: Backend,
        session: JobSessionBackend,
        destroy_on_exit: bool,
    ) -> None:
        self.backend_name = backend_name
        self.impl = impl
        self.name = session.name
        self.contact: str | None = session.contact
        #: Whether dropping the object (or leaving its ``with`` block) destroys the session.
        self.destroy_on_exit = destroy_on_exit
        #: The open backend session; None while the object is closed.
        self.session: JobSessionBackend | None = session
        self._creator = os.getpid()
        self._finalizer = weakref.finalize(owner, self._dropped)
        #: A destroy found the session destroyed already (by another process; maybe made
        #: again under its name since): the object's close() passes.
        self.stale = False

    @property
    def made_here(self) -> bool:
        """Whether this process made the object (not a copy in a forked process, which only
        closes the session, whatever ``destroy_on_exit`` says: the other may still use it)."""
        return os.getpid() == self._creator

    @property
    def destroyed(self) -> bool:
        """Whether the object destroyed its session (it was not opened again since)."""
        return not self._finalizer.alive

    def reopened(self, owner: object, session: JobSessionBackend) -> None:
        """The object opened its session again: ``session`` is the open backend session."""
        self.session = session
        if not self._finalizer.alive:
            self._finalizer = weakref.finalize(owner, self._dropped)

    def close(self) -> None:
        """Close the backend session (nothing if it is closed); the session stays."""
        session, self.session = self.session, None
        if session is not None:
            _backend_call(self.backend_name, "close", session.close)

    def destroy(self, gone_ok: bool = False) -> None:
        """Close the backend session and destroy the session: this very one where the
        backend tells sessions apart (:class:`~drmaa2.backend.SessionIdentity`:
        InvalidSessionException if it was destroyed already, whether or not a session was
        made again under its name), else the session of its name (InvalidArgumentException
        if there is none). ``gone_ok``: a session destroyed already is no error (``close()``
        with ``destroy_on_exit``: a script's clean-up runs)."""
        session, self.session = self.session, None
        self._finalizer.detach()
        if isinstance(session, SessionIdentity):
            try:
                _backend_call(self.backend_name, "destroy", session.destroy)
            except InvalidSessionException:
                self.stale = True
                if not gone_ok:
                    raise
            finally:
                _backend_call(self.backend_name, "close", session.close)
            return
        if session is not None:
            _backend_call(self.backend_name, "close", session.close)
        try:
            _backend_call(
                self.backend_name,
                "destroy_job_session",
                lambda: self.impl.destroy_job_session(self.name, self.contact),
            )
        except InvalidArgumentException:
            if not gone_ok:
                raise

    def _dropped(self) -> None:
        """The object was collected, or the interpreter exits, and it was not destroyed: close
        the session, and destroy it if ``destroy_on_exit`` holds (in the process that made the
        object only; a session destroyed already, or made again under its name since, is left
        alone where the backend tells them apart). Runs where an exception has nowhere to go:
        a failure is logged."""
        destroy = self.destroy_on_exit and self.made_here
        session, self.session = self.session, None
        try:
            if destroy and isinstance(session, SessionIdentity):
                try:
                    session.destroy()
                except InvalidSessionException:
                    pass  # destroyed already: nothing to do
                finally:
                    session.close()
                return
            if session is not None:
                session.close()
            if destroy:
                self.impl.destroy_job_session(self.name, self.contact)
        except Exception as error:
            _log.warning(
                "could not %s job session %r of backend %r when its JobSession object ended: "
                "%s: %s",
                "close and destroy" if destroy else "close",
                self.name,
                self.backend_name,
                type(error).__name__,
                error,
            )
