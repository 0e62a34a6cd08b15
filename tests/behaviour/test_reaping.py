"""Every job's end is observed, whoever waits for it: nobody, a wait that gave up, several
threads at once; and no descriptor is left behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, wait_until


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_end_of_a_job_nobody_waits_for_is_seen(session: drmaa2.JobSession) -> None:
    seen: list[drmaa2.Notification] = []
    drmaa2.register_event_notification(seen.append, backend=session.backend)
    try:
        job = session.run_job({"remote_command": "/bin/sh", "args": ["-c", "exit 6"]})
        wait_until(lambda: job.get_state()[0] is JobState.FAILED, what="the job's end")
        assert job.get_info().exit_status == 6
        wait_until(
            lambda: any(n.job_id == job.id and n.job_state is JobState.FAILED for n in seen),
            what="the notification of the end",
        )
    finally:
        drmaa2.register_event_notification(None, backend=session.backend)


def test_a_wait_that_gave_up_leaves_the_job_watched(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    job = session.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"while [ ! -e {go} ]; do sleep 0.01; done"]}
    )
    with pytest.raises(drmaa2.TimeoutException):
        job.wait_terminated(0.05)
    go.touch()
    wait_until(lambda: job.get_state()[0] is JobState.DONE, what="the job's end")


def test_threads_waiting_for_one_job_all_return(session: drmaa2.JobSession, tmp_path: Path) -> None:
    session.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)  # warm
    before = open_fds()
    go = tmp_path / "go"
    job = session.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"while [ ! -e {go} ]; do sleep 0.01; done"]}
    )
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            job.wait_terminated(TIMEOUT)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=wait) for _ in range(4)]
    for thread in threads:
        thread.start()
    go.touch()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert job.get_state()[0] is JobState.DONE
    wait_until(lambda: open_fds() == before, what="the job's descriptors to be closed")
