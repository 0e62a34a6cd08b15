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
    accounting = os.environ.get(ACCOUNTING_ENV, "1") != "0"
    started = time.monotonic()
    try:
        timings = install_packages(accounting)
    except ClusterError as error:
        pytest.skip(f"no Slurm cluster for the slurm tests: {error}")
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
    saved = {name: os.environ.get(name) for name in _ENV}
    os.environ["SLURM_CONF"] = str(cluster.conf)
    os.environ["DRMAA2_SLURM_STATE_DIR"] = os.path.join(root, "drmaa2")
    try:
        yield cluster
    finally:
        stop_start = time.monotonic()
        cluster.stop()
        print(
            f"\nslurm test cluster stopped in {time.monotonic() - stop_start:.2f} s",
            file=sys.__stderr__,
        )
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)
