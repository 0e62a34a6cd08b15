"""The ``os`` backend's plugin module, registered in pyproject.toml as entry point ``os`` of the
``drmaa2`` group; ``drmaa2`` discovers it like any third-party backend."""

from __future__ import annotations

import os
import platform
import threading
import uuid

import drmaa2
from drmaa2.backend import BackendSpec, NotificationCallback
from drmaa2.enums import Capability
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import Version
from drmaa2_ostracker.extension import EXTENSION_KEYS
from drmaa2_ostracker.job_session import OsJobSession
from drmaa2_ostracker.monitoring_session import OsMonitoringSession
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.supervisor import Supervisor, now_us

__all__ = ["STATE_DIR_ENV", "OsBackend", "default_state_dir", "drmaa2_backends"]

#: Environment variable naming the state directory when no contact is given.
STATE_DIR_ENV = "DRMAA2_OS_STATE_DIR"

_SUPPORTED = frozenset(
    {Capability.BULK_JOBS_MAXPARALLEL, Capability.CALLBACK, Capability.JT_DEADLINE}
)


def default_state_dir() -> str:
    """$DRMAA2_OS_STATE_DIR, else $XDG_STATE_HOME/drmaa2-ostracker, else
    ~/.local/state/drmaa2-ostracker."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(os.path.abspath(base), "drmaa2-ostracker")


class OsBackend:
    """DRMAA2 jobs as local OS processes (implements ``drmaa2.backend.Backend``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, Store] = {}
        self._supervisor = Supervisor()

    def _store(self, contact: str | None) -> Store:
        if contact is not None and (not isinstance(contact, str) or not contact):
            raise InvalidArgumentException(
                f"contact: expected the path of a state directory, got {contact!r}"
            )
        path = os.path.abspath(contact) if contact else default_state_dir()
        with self._lock:
            store = self._stores.get(path)
            if store is None:
                store = self._stores[path] = Store(path)
            return store

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

    def _opened(self, name: str, store: Store) -> OsJobSession:
        self._supervisor.session_opened()
        return OsJobSession(name, store, self._supervisor, self._supervisor.session_closed)

    def create_job_session(self, name: str | None, contact: str | None) -> OsJobSession:
        """Create a job session (a generated name if None)."""
        store = self._store(contact)
        if name is None:
            name = f"session-{uuid.uuid4().hex[:12]}"
        store.create_session(name, now_us())
        return self._opened(name, store)

    def open_job_session(self, name: str, contact: str | None) -> OsJobSession:
        """Open an existing job session."""
        store = self._store(contact)
        if not store.session_exists(name):
            raise InvalidArgumentException(
                f"there is no job session named {name!r} in {store.state_dir}"
            )
        session = self._opened(name, store)
        try:
            session.recover()
        except BaseException:
            session.close()
            raise
        return session

    def destroy_job_session(self, name: str, contact: str | None) -> None:
        """Forget a session and its records; its running jobs keep running."""
        self._store(contact).destroy_session(name)

    def job_session_names(self, contact: str | None) -> list[str]:
        """Names of the job sessions in the state directory."""
        return self._store(contact).session_names()

    def open_monitoring_session(self, name: str | None, contact: str | None) -> OsMonitoringSession:
        """A monitoring session over every process of this machine."""
        return OsMonitoringSession(name)

    def register_event_notification(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` on every job state change of this process's jobs."""
        self._supervisor.set_callback(callback)


@drmaa2.hookimpl
def drmaa2_backends() -> list[BackendSpec]:
    """The ``os`` backend."""
    return [
        BackendSpec(
            name="os",
            factory=OsBackend,
            description="run DRMAA2 jobs as processes on this machine",
            extension_keys=EXTENSION_KEYS,
        )
    ]
