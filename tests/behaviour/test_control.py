"""Job control: suspend, resume, hold, release, terminate, reap (seed mapping, issue 3 §3, §8),
for every backend: a job's processes are seen through the files they write. How the os
backend signals its local processes (pids, process states) is in tests/os."""

from __future__ import annotations

import datetime
import signal
import sys
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import (
    TIMEOUT,
    Documented,
    counter_loop,
    file_text,
    unchanged,
    wait_until,
)

PY = sys.executable


def stops_counting(counter: Path) -> None:
    wait_until(lambda: unchanged(counter), what=f"{counter} to stop changing")


def counts(counter: Path) -> None:
    frozen = file_text(counter)
    wait_until(lambda: file_text(counter) not in ("", frozen), what=f"{counter} to change")


def test_suspend_and_resume_a_running_job(session: drmaa2.JobSession, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    job = session.run_job({"remote_command": "/bin/sh", "args": ["-c", counter_loop(counter)]})
    job.wait_started(TIMEOUT)
    counts(counter)
    job.suspend()
    assert job.get_state()[0] is JobState.SUSPENDED
    assert job.get_info().job_state is JobState.SUSPENDED
    stops_counting(counter)
    job.resume()
    assert job.get_state()[0] is JobState.RUNNING
    counts(counter)
    job.terminate()


def test_suspend_stops_a_job_that_ignores_sigtstp(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTSTP, signal.SIG_IGN)\n"
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        f"    open({str(counter)!r}, 'w').write(str(n))\n"
        "    time.sleep(0.005)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    wait_until(lambda: file_text(counter) not in ("", "1"), what="the job to count")
    job.suspend()
    stops_counting(counter)
    job.resume()
    counts(counter)
    job.terminate()


def test_suspend_stops_children_too(session: drmaa2.JobSession, tmp_path: Path) -> None:
    counter = tmp_path / "child-counter"
    job = session.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"({counter_loop(counter)}) & wait"]}
    )
    counts(counter)
    job.suspend()
    stops_counting(counter)
    job.resume()
    counts(counter)
    job.terminate()
    stops_counting(counter)


#: A child of a job: says whether it leads its own session, then counts into a file forever.
COUNTING_CHILD = (
    "import os, sys, time\n"
    "counter, leader = sys.argv[1:]\n"
    "open(leader, 'w').write(str(os.getsid(0) == os.getpid()))\n"
    "n = 0\n"
    "while True:\n"
    "    n += 1\n"
    "    open(counter, 'w').write(str(n))\n"
    "    time.sleep(0.01)\n"
)


def test_terminate_ends_every_descendant_even_after_setsid(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path
) -> None:
    plain, detached = tmp_path / "plain", tmp_path / "detached"
    code = (
        "import subprocess, sys, time\n"
        f"child = [sys.executable, '-c', {COUNTING_CHILD!r}]\n"
        f"subprocess.Popen([*child, {str(plain)!r}, {str(plain)!r} + '.leader'])\n"
        f"subprocess.Popen([*child, {str(detached)!r}, {str(detached)!r} + '.leader'],"
        " start_new_session=True)\n"
        "time.sleep(600)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    counts(plain)
    counts(detached)
    assert file_text(f"{detached}.leader") == "True", "the second child left the job's session"
    job.terminate()
    assert job.get_state()[0] is JobState.FAILED
    info = job.get_info()
    assert info.terminating_signal in documented.kill_signals
    assert info.exit_status == 128 + signal.Signals[str(info.terminating_signal)]
    assert "terminated" in (info.annotation or "")
    stops_counting(plain)
    stops_counting(detached)


def test_terminate_a_suspended_job(session: drmaa2.JobSession, documented: Documented) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    job.suspend()
    job.terminate()
    job.wait_terminated(TIMEOUT)
    assert job.get_info().terminating_signal in documented.kill_signals


def test_hold_and_release_a_queued_job(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    job.release()
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.DONE
    queued = session.run_job(
        {
            "remote_command": "/bin/true",
            "start_time": datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=1),
        }
    )
    queued.hold()
    assert queued.get_state()[0] is JobState.QUEUED_HELD
    with pytest.raises(drmaa2.TimeoutException):
        queued.wait_started(1.5)
    assert queued.get_state()[0] is JobState.QUEUED_HELD, "a held job does not start"
    queued.release()
    queued.wait_terminated(TIMEOUT)
    assert queued.get_state()[0] is JobState.DONE


def test_terminate_a_held_job_fails_it_without_starting(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    job.terminate()
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert info.dispatch_time is None and info.exit_status is None
    job.wait_terminated(drmaa2.ZERO_TIME)


@pytest.mark.parametrize("action", ["hold", "release"])
def test_hold_release_of_a_started_job_is_invalid_state(
    session: drmaa2.JobSession, action: str
) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException):
        getattr(job, action)()
    assert job.get_state()[0] is JobState.RUNNING
    job.terminate()


@pytest.mark.parametrize("action", ["suspend", "resume"])
def test_suspend_resume_of_a_queued_job_is_invalid_state(
    session: drmaa2.JobSession, action: str
) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    with pytest.raises(drmaa2.InvalidStateException):
        getattr(job, action)()
    job.terminate()


def test_suspend_of_a_suspended_and_resume_of_a_running_job_do_nothing(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    job = session.run_job({"remote_command": "/bin/sh", "args": ["-c", counter_loop(counter)]})
    job.wait_started(TIMEOUT)
    counts(counter)
    job.resume()
    assert job.get_state()[0] is JobState.RUNNING
    job.suspend()
    job.suspend()
    assert job.get_state()[0] is JobState.SUSPENDED
    stops_counting(counter)
    job.resume()
    counts(counter)
    job.terminate()


def test_hold_of_a_held_and_release_of_a_queued_job_do_nothing(
    session: drmaa2.JobSession,
) -> None:
    held = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    held.hold()
    assert held.get_state()[0] is JobState.QUEUED_HELD
    queued = session.run_job(
        {
            "remote_command": "/bin/true",
            "start_time": datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=60),
        }
    )
    queued.release()
    assert queued.get_state()[0] is JobState.QUEUED
    held.terminate()
    queued.terminate()


@pytest.mark.parametrize("action", ["suspend", "resume", "hold", "release", "terminate"])
def test_control_of_a_finished_job_is_invalid_state(
    session: drmaa2.JobSession, action: str
) -> None:
    job = session.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException, match=job.id):
        getattr(job, action)()
    assert job.get_state()[0] is JobState.DONE


def test_reap_forgets_a_finished_job(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    job.reap()
    assert job.id not in [j.id for j in session.get_jobs()]
    for call in (job.get_state, job.get_info, job.terminate, job.suspend, job.wait_terminated):
        with pytest.raises(drmaa2.InvalidArgumentException, match=job.id):
            call()


def test_reap_of_a_running_job_is_invalid_state(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    with pytest.raises(drmaa2.InvalidStateException):
        job.reap()
    job.terminate()
    job.reap()


def test_unknown_job_id_is_invalid_argument(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    ghost = drmaa2.Job(session, "9999")
    for call in (ghost.get_state, ghost.get_info, ghost.suspend, ghost.terminate, ghost.hold):
        with pytest.raises(drmaa2.InvalidArgumentException, match="9999"):
            call()
