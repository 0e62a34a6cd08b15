"""The session-scoped ``slurm_cluster`` fixture: one real cluster for every slurm test.

It installs Debian's packages when missing (as root), starts the cluster under a temporary
directory and points ``$SLURM_CONF`` (the slurm backend's default contact) and the backend's
state directory at it. Where the packages cannot be installed, the tests that need the
cluster are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.slurm.cluster import ACCOUNTING_ENV, Cluster, ClusterError, install_packages

__all__ = ["slurm_cluster"]

_ENV = ("SLURM_CONF", "DRMAA2_SLURM_STATE_DIR")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """A running one-node cluster; stopped, with every job and daemon, at the end."""
    global _users
    if _skipped:
        pytest.skip(_skipped)
    if _shared is None:
        _start()
    _users += 1
    try:
        assert _shared is not None
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _stop()


# Both conftests that use the fixture (tests/behaviour and tests/slurm) import it, so pytest
# knows it twice: the cluster is shared between the two, and stopped after the last one.
_shared: Cluster | None = None
_users = 0
_skipped = ""
_saved: dict[str, str | None] = {}


def _start() -> None:
    global _shared, _skipped
    accounting = os.environ.get(ACCOUNTING_ENV, "1") != "0"
    started = time.monotonic()
    try:
        timings = install_packages(accounting)
    except ClusterError as error:
        _skipped = f"no Slurm cluster for the slurm tests: {error}"
        pytest.skip(_skipped)
    # A short path: munge's socket name must fit a sockaddr_un.
    root = tempfile.mkdtemp(prefix="drmaa2-slurm-", dir="/tmp")
    cluster = Cluster(root)
    cluster.start(accounting)
    timings.update(cluster.timings)
    shown = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in timings.items())
    print(
        f"\nslurm test cluster in {root} ready in {time.monotonic() - started:.2f} s "
        f"(accounting {'on' if cluster.accounting else 'off'}): {shown}",
        file=sys.__stderr__,
    )
    _saved.update({name: os.environ.get(name) for name in _ENV})
    os.environ["SLURM_CONF"] = str(cluster.conf)
    os.environ["DRMAA2_SLURM_STATE_DIR"] = os.path.join(root, "drmaa2")
    _shared = cluster


def _stop() -> None:
    global _shared
    cluster, _shared = _shared, None
    if cluster is None:
        return
    stop_start = time.monotonic()
    cluster.stop()
    print(
        f"\nslurm test cluster stopped in {time.monotonic() - stop_start:.2f} s",
        file=sys.__stderr__,
    )
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(cluster.root, ignore_errors=True)
