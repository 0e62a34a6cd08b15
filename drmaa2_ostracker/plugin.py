"""The ``os`` backend's plugin module, registered in pyproject.toml as entry point ``os`` of the
``drmaa2`` group; ``drmaa2`` discovers it like any third-party backend."""

from __future__ import annotations

import collections
import functools
import logging
import os
import platform
import re
import threading
import time
import uuid
from typing import Any

import drmaa2
from drmaa2.backend import BackendSpec, NotificationCallback
from drmaa2.enums import Capability, Event, JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import Notification, Version
from drmaa2_ostracker.extension import EXTENSION_KEYS
from drmaa2_ostracker.job_session import OsJobSession
from drmaa2_ostracker.keeper import KeeperClient
from drmaa2_ostracker.monitoring_session import OsMonitoringSession

__all__ = ["STATE_DIR_ENV", "OsBackend", "default_state_dir", "drmaa2_backends", "state_dir_of"]

_log = logging.getLogger(__name__)

#: Environment variable naming the state directory when no contact is given.
STATE_DIR_ENV = "DRMAA2_OS_STATE_DIR"

_SUPPORTED = frozenset(
    {Capability.BULK_JOBS_MAXPARALLEL, Capability.CALLBACK, Capability.JT_DEADLINE}
)


def default_state_dir() -> str:
    """$DRMAA2_OS_STATE_DIR, else $XDG_STATE_HOME/drmaa2-ostracker, else
    ~/.local/state/drmaa2-ostracker. A relative $XDG_STATE_HOME is ignored, as the XDG Base
    Directory specification says (it would make the place depend on the current
    directory)."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(os.path.abspath(base), "drmaa2-ostracker")


#: A contact that names a host (``qmaster.example.com``, ``qmaster:6444``), as other DRMSs'
#: contacts do: a relative name without a slash, with a dot or a colon.
_HOST_LIKE = re.compile(r"[^/]*[.:][^/]*")


def state_dir_of(contact: str | None) -> str:
    """The state directory a contact names: None is the default one (see
    :func:`default_state_dir`); a path is created if missing, by the calls that make
    something (see :meth:`OsBackend._nowhere`). A contact that names a host and
    no existing directory (Grid Engine's ``qmaster.example.com``) is another DRMS's contact,
    not a directory to make here: InvalidArgumentException."""
    if contact is not None and (not isinstance(contact, str) or not contact):
        raise InvalidArgumentException(
            f"contact: expected the path of a state directory, got {contact!r}"
        )
    if contact is None:
        return default_state_dir()
    path = os.path.abspath(contact)
    if _HOST_LIKE.fullmatch(contact) and contact not in (".", "..") and not os.path.lexists(path):
        raise InvalidArgumentException(
            f"contact {contact!r}: no such directory in {os.getcwd()}; the os backend's "
            f"contact is the path of its state directory (where it keeps its sessions), not "
            f"a host: give a path (created if missing; ./{contact} for one here), an "
            f"existing directory, or no contact for the default ({default_state_dir()})"
        )
    return path


class OsBackend:
    """DRMAA2 jobs as local OS processes (implements ``drmaa2.backend.Backend``).

    Every call goes to the keeper of the session's state directory
    (:mod:`drmaa2_ostracker.keeper`), started on demand.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, KeeperClient] = {}
        self._callback: NotificationCallback | None = None
        #: The job sessions open in this process, per client (of a state directory): (name,
        #: when it was made) counted (a session destroyed and made again under its name is
        #: another).
        self._open: dict[KeeperClient, collections.Counter[tuple[str, int]]] = {}

    def _client(self, contact: str | None) -> tuple[KeeperClient, str]:
        """The client of the state directory a contact names, one per directory however it
        is named (a symbolic link to it too: one event stream); and the contact as a path."""
        path = state_dir_of(contact)
        with self._lock:
            client = self._clients.get(os.path.realpath(path))
        if client is None or not client.still_there():
            # (Not there: the directory was moved away, or replaced: its sessions still
            # opened keep their client, the new ones go to the directory there now.)
            made = KeeperClient(path)  # (checked: its state_dir is the real path)
            with self._lock:
                client = self._clients.get(made.state_dir)
                if client is None or not client.still_there():
                    client = self._clients[made.state_dir] = made
        return client, path

    def drms_name(self) -> str:
        """The DRMS behind this backend: the local operating system."""
        return f"{platform.system()} processes (drmaa2-ostracker)"

    def drms_version(self) -> Version:
        """The version of the kernel running the jobs."""
        release = platform.release()
        major, _, minor = release.partition(".")
        return Version(major=major or "0", minor=minor or "0")

    def supports(self, capability: Capability) -> bool:
        """True for BULK_JOBS_MAXPARALLEL, CALLBACK and JT_DEADLINE."""
        return capability in _SUPPORTED

    def _opened(self, name: str, made: int, client: KeeperClient, path: str) -> OsJobSession:
        with self._lock:
            self._open.setdefault(client, collections.Counter())[name, made] += 1
        client.session_opened()
        if self._callback is not None:
            self._subscribe(client, self._callback)
        closed = functools.partial(self._closed, (name, made), client)
        return OsJobSession(name, made, client, closed, path)

    def _closed(self, key: tuple[str, int], client: KeeperClient) -> None:
        # The changes made while the session was open reach the callback before it closes.
        client.flush_events()
        with self._lock:
            keys = self._open.get(client)
            if keys is not None:
                keys[key] -= 1
                if keys[key] <= 0:
                    del keys[key]
                if not keys:
                    del self._open[client]
        client.session_closed()

    def create_job_session(self, name: str | None, contact: str | None) -> OsJobSession:
        """Create a job session (a generated name if None)."""
        client, path = self._client(contact)
        if name is None:
            name = f"session-{uuid.uuid4().hex[:12]}"
        client.session_opened()  # one connection for both calls
        try:
            # With when it was asked (µs): made again after its keeper died, the next keeper
            # tells a session the dead one made for it from one made before.
            made = client.call("create_session", name, time.time_ns() // 1000)
            return self._opened(name, made, client, path)
        finally:
            client.session_closed()

    @staticmethod
    def _nowhere(contact: str | None, name: str) -> None:
        """InvalidArgumentException if the state directory ``contact`` names does not exist:
        opening or destroying a session makes nothing (a mistyped contact made a directory
        tree and started a keeper there)."""
        path = state_dir_of(contact)
        if not os.path.lexists(path):
            raise InvalidArgumentException(
                f"there is no job session named {name!r} in {path}: that state directory "
                f"does not exist"
            )

    def open_job_session(self, name: str, contact: str | None) -> OsJobSession:
        """Open an existing job session."""
        self._nowhere(contact, name)
        client, path = self._client(contact)
        client.session_opened()
        try:
            made = client.call("open_session", name)
            return self._opened(name, made, client, path)
        finally:
            client.session_closed()

    def destroy_job_session(self, name: str, contact: str | None) -> None:
        """Forget a session and its records; its running jobs keep running."""
        self._nowhere(contact, name)
        self._client(contact)[0].call("destroy_session", name)

    def job_session_names(self, contact: str | None) -> list[str]:
        """Names of the job sessions in the state directory (none where it does not exist:
        nothing is made)."""
        if not os.path.lexists(state_dir_of(contact)):
            return []
        return list(self._client(contact)[0].call("session_names"))

    def open_monitoring_session(self, name: str | None, contact: str | None) -> OsMonitoringSession:
        """A monitoring session over every process of this machine."""
        return OsMonitoringSession(name)

    def register_event_notification(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` on every job state change of the job sessions this process has
        open, whoever changed them (the keeper pushes each change); None stops the calls,
        after every change made before is delivered."""
        with self._lock:
            self._callback = callback
            known = {*self._clients.values(), *self._open}
            clients = [client for client in known if self._open.get(client) or callback is None]
        for client in clients:
            if callback is None:
                client.subscribe(None)  # what was published before is delivered first
            else:
                self._subscribe(client, callback)

    def _subscribe(self, client: KeeperClient, callback: NotificationCallback) -> None:
        def deliver(event: tuple[Any, ...]) -> None:
            job_id, session, state, made = event
            with self._lock:
                keys = self._open.get(client, ())
                watched = (
                    (session, made) in keys
                    if made is not None
                    else any(name == session for name, _ in keys)
                )
            if not watched:
                return
            note = Notification(
                event=Event.NEW_STATE,
                job_id=str(job_id),
                session_name=str(session),
                job_state=JobState(state),
            )
            try:
                callback(note)
            except Exception:
                _log.exception("drmaa2 event callback %r failed", callback)

        client.subscribe(deliver)


@drmaa2.hookimpl
def drmaa2_backends() -> list[BackendSpec]:
    """The ``os`` backend."""
    return [
        BackendSpec(
            name="os",
            factory=OsBackend,
            description="run DRMAA2 jobs as processes on this machine",
            extension_keys=EXTENSION_KEYS,
            default=True,
        )
    ]
