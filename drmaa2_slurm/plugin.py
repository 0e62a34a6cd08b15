"""The ``slurm`` backend's plugin module, registered in pyproject.toml as entry point ``slurm``
of the ``drmaa2`` group.

The contact string of a session names the cluster: the path of its slurm.conf, by default
``$SLURM_CONF``. Sessions are kept in ``$DRMAA2_SLURM_STATE_DIR`` (default
``$XDG_STATE_HOME/drmaa2-slurm``), one SQLite file per cluster.
"""

from __future__ import annotations

import os
import threading
import uuid

import drmaa2
from drmaa2.backend import BackendSpec, NotificationCallback
from drmaa2.enums import Capability
from drmaa2.errors import DrmCommunicationException, InvalidArgumentException
from drmaa2.types import Version
from drmaa2_slurm.cluster import Cluster
from drmaa2_slurm.control import destroy_session
from drmaa2_slurm.extension import EXTENSION_KEYS
from drmaa2_slurm.job_session import SlurmJobSession
from drmaa2_slurm.monitoring_session import SlurmMonitoringSession
from drmaa2_slurm.poller import Poller

__all__ = ["STATE_DIR_ENV", "SlurmBackend", "default_state_dir", "drmaa2_backends"]

#: Environment variable naming the state directory.
STATE_DIR_ENV = "DRMAA2_SLURM_STATE_DIR"

_SUPPORTED = frozenset(
    {
        Capability.BULK_JOBS_MAXPARALLEL,
        Capability.CALLBACK,
        Capability.JT_DEADLINE,
        Capability.JT_EMAIL,
        Capability.JT_ACCOUNTINGID,
    }
)


def default_state_dir() -> str:
    """$DRMAA2_SLURM_STATE_DIR, else $XDG_STATE_HOME/drmaa2-slurm, else
    ~/.local/state/drmaa2-slurm."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(os.path.abspath(base), "drmaa2-slurm")


class SlurmBackend:
    """DRMAA2 jobs on a Slurm cluster (implements ``drmaa2.backend.Backend``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[tuple[str, str], Cluster] = {}
        self._poller = Poller()

    def _cluster(self, contact: str | None) -> Cluster:
        if contact is not None and (not isinstance(contact, str) or not contact):
            raise InvalidArgumentException(
                f"contact: expected the path of a slurm.conf, got {contact!r}"
            )
        conf = contact or os.environ.get("SLURM_CONF")
        if not conf:
            raise DrmCommunicationException(
                "no Slurm cluster given: pass contact= the path of its slurm.conf, or set "
                "$SLURM_CONF"
            )
        key = (os.path.abspath(conf), default_state_dir())
        with self._lock:
            cluster = self._clusters.get(key)
            if cluster is None:
                cluster = self._clusters[key] = Cluster(*key)
            return cluster

    def drms_name(self) -> str:
        """The DRMS behind this backend: Slurm."""
        return "Slurm"

    def drms_version(self) -> Version:
        """Slurm's version (of the cluster of $SLURM_CONF)."""
        major, _, minor = self._cluster(None).version().partition(".")
        return Version(major=major, minor=minor or "0")

    def supports(self, capability: Capability) -> bool:
        """True for BULK_JOBS_MAXPARALLEL, CALLBACK, JT_DEADLINE, JT_EMAIL, JT_ACCOUNTINGID."""
        return capability in _SUPPORTED

    def create_job_session(self, name: str | None, contact: str | None) -> SlurmJobSession:
        """Create a job session on the cluster (a generated name if None)."""
        cluster = self._cluster(contact)
        cluster.check_reachable()
        if name is None:
            name = f"session-{uuid.uuid4().hex[:12]}"
        cluster.store.create_session(name)
        return SlurmJobSession(name, cluster, self._poller)

    def open_job_session(self, name: str, contact: str | None) -> SlurmJobSession:
        """Open an existing job session."""
        cluster = self._cluster(contact)
        if not cluster.store.session_exists(name):
            raise InvalidArgumentException(
                f"there is no job session named {name!r} for the cluster of {cluster.conf}"
            )
        return SlurmJobSession(name, cluster, self._poller)

    def destroy_job_session(self, name: str, contact: str | None) -> None:
        """Forget a session and its records: its pending jobs (queued or held) are
        cancelled, never to start; its running jobs keep running in Slurm."""
        cluster = self._cluster(contact)
        if not cluster.store.session_exists(name):
            raise InvalidArgumentException(
                f"there is no job session named {name!r} for the cluster of {cluster.conf}"
            )
        destroy_session(cluster, name)

    def job_session_names(self, contact: str | None) -> list[str]:
        """Names of the job sessions of the cluster."""
        return self._cluster(contact).store.session_names()

    def open_monitoring_session(
        self, name: str | None, contact: str | None
    ) -> SlurmMonitoringSession:
        """A monitoring session over the cluster's nodes, partitions and jobs."""
        cluster = self._cluster(contact)
        cluster.check_reachable()
        return SlurmMonitoringSession(name, cluster)

    def register_event_notification(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` on every state change of the jobs of this process's sessions."""
        self._poller.set_callback(callback)


@drmaa2.hookimpl
def drmaa2_backends() -> list[BackendSpec]:
    """The ``slurm`` backend."""
    return [
        BackendSpec(
            name="slurm",
            factory=SlurmBackend,
            description="run DRMAA2 jobs on a Slurm cluster (contact: the path of slurm.conf)",
            extension_keys=EXTENSION_KEYS,
        )
    ]
