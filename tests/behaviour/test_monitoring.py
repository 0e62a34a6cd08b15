"""The monitoring session, for every backend: its machines, and a job of a job session seen as a
read-only job. What each backend's monitoring shows (processes of the machine, or the jobs,
nodes and partitions of a cluster) is in tests/os and tests/slurm."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import InvalidSessionException, JobState, UnsupportedOperationException
from tests.behaviour.conftest import TIMEOUT


@pytest.fixture
def monitoring(backend: str, state_dir: str) -> Iterator[drmaa2.MonitoringSession]:
    opened = drmaa2.open_monitoring_session(backend=backend)
    yield opened
    with contextlib.suppress(InvalidSessionException):
        opened.close()


def test_the_machines(monitoring: drmaa2.MonitoringSession) -> None:
    machines = monitoring.get_all_machines()
    assert machines
    for machine in machines:
        assert machine.name and machine.available is True
        assert machine.sockets and machine.cores_per_socket and machine.threads_per_core
        assert machine.phys_memory is not None and machine.phys_memory > 0
        assert machine.os is drmaa2.Os.LINUX
    first = machines[0].name
    assert first is not None
    assert [m.name for m in monitoring.get_all_machines([first])] == [first]
    assert monitoring.get_all_machines(["no-such-machine.invalid"]) == []


def test_a_job_of_a_job_session_is_seen_read_only(
    monitoring: drmaa2.MonitoringSession, session: drmaa2.JobSession, tmp_path: Path
) -> None:
    # A unique name, short enough for a process name: the job is found by it on every backend.
    name = f"d2mon-{os.getpid()}"
    program = tmp_path / name
    program.symlink_to("/bin/sleep")
    job = session.run_job({"remote_command": str(program), "args": ["600"]})
    job.wait_started(TIMEOUT)
    (seen,) = monitoring.get_all_jobs({"job_name": name})
    assert seen.get_state()[0] is JobState.RUNNING
    info = seen.get_info()
    assert (info.job_name, info.job_state) == (name, JobState.RUNNING)
    assert info.job_owner == getpass.getuser()
    assert info.dispatch_time is not None
    controls: list[Callable[[], object]] = [
        seen.suspend,
        seen.resume,
        seen.hold,
        seen.release,
        seen.terminate,
        seen.reap,
        seen.get_template,
    ]
    for control in controls:
        with pytest.raises(UnsupportedOperationException):
            control()
    assert job.get_state()[0] is JobState.RUNNING
    job.terminate()


def test_reservations_are_unsupported(monitoring: drmaa2.MonitoringSession) -> None:
    with pytest.raises(UnsupportedOperationException):
        monitoring.get_all_reservations()


def test_a_closed_session_raises_invalid_session(monitoring: drmaa2.MonitoringSession) -> None:
    monitoring.close()
    calls: list[Callable[[], object]] = [
        monitoring.get_all_jobs,
        monitoring.get_all_machines,
        monitoring.get_all_queues,
        monitoring.get_all_reservations,
        monitoring.close,
    ]
    for call in calls:
        with pytest.raises(InvalidSessionException):
            call()
