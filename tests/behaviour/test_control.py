"""Job control: suspend, resume, hold, release, terminate, reap (seed mapping, issue 3 §3, §8)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import extension
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until

PY = sys.executable


def pid_of(job: drmaa2.Job) -> int:
    return int((job.get_info().implementation_specific or {})[extension.JSESSION_PID])


def stopped(pid: int) -> bool:
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def test_suspend_and_resume_a_running_job(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    job.suspend()
    assert job.get_state()[0] is JobState.SUSPENDED
    assert job.get_info().job_state is JobState.SUSPENDED
    assert stopped(pid_of(job)), "suspend() returns only once the job is stopped"
    job.resume()
    assert job.get_state()[0] is JobState.RUNNING
    assert not stopped(pid_of(job))
    job.terminate()


def test_suspend_stops_a_job_that_ignores_sigtstp(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    ready = tmp_path / "ready"
    code = (
        "import signal, time, sys\n"
        "signal.signal(signal.SIGTSTP, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        f"    open({str(counter)!r}, 'w').write(str(n))\n"
        "    time.sleep(0.005)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    wait_until(ready.exists, what="the job to install its handler")
    wait_until(lambda: file_text(counter) not in ("", "1"), what="the job to count")
    job.suspend()
    assert stopped(pid_of(job))
    frozen = file_text(counter)
    # A stopped process cannot write: the counter stays, checked against a stopped state.
    assert stopped(pid_of(job)) and file_text(counter) == frozen
    job.resume()
    wait_until(lambda: file_text(counter) not in ("", frozen), what="the job to count again")
    job.terminate()


def test_suspend_stops_children_too(session: drmaa2.JobSession, tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    job = session.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"sleep 60 & echo $! > {pidfile}; wait"],
        }
    )
    wait_until(lambda: file_text(pidfile).strip() != "", what="the child to start")
    child = int(file_text(pidfile))
    job.suspend()
    assert stopped(pid_of(job))
    wait_until(lambda: stopped(child), timeout=5, what="the child to stop")
    job.resume()
    wait_until(lambda: not stopped(child), timeout=5, what="the child to continue")
    job.terminate()
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_terminate_kills_every_descendant_even_after_setsid(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    code = (
        "import os, subprocess, time\n"
        "a = subprocess.Popen(['sleep', '60'])\n"
        "b = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(f'{{a.pid}} {{b.pid}}')\n"
        "time.sleep(60)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    wait_until(lambda: len(file_text(pidfile).split()) == 2, what="the children")
    children = [int(p) for p in file_text(pidfile).split()]
    assert os.getsid(children[1]) == children[1], "the second child left the job's session"
    job.terminate()
    assert job.get_state()[0] is JobState.FAILED
    info = job.get_info()
    assert (info.exit_status, info.terminating_signal) == (128 + 9, "SIGKILL")
    assert "terminated" in (info.annotation or "")

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(lambda: all(gone(pid) for pid in children), timeout=10, what="children to die")


def test_terminate_a_suspended_job(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    job.suspend()
    job.terminate()
    job.wait_terminated(TIMEOUT)
    assert job.get_info().terminating_signal == "SIGKILL"


def test_hold_and_release_a_queued_job(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    job.release()
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.DONE
    queued = session.run_job(
        {
            "remote_command": "/bin/true",
            "start_time": __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
            + __import__("datetime").timedelta(seconds=1),
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
