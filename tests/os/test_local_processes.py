"""What the os backend's jobs are as local processes: their pid and rusage in JobInfo, the
controller's own streams, priority as a nice increment, one slot, kept job categories, and
control by signals to the process group (seen in the processes' states)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import extension
from tests.behaviour.conftest import TIMEOUT, cleanup_session, file_text, wait_until

PY = sys.executable


@pytest.fixture
def session(tmp_path: Path) -> Iterator[drmaa2.JobSession]:
    """A job session of the os backend in a state directory of its own."""
    js = drmaa2.create_job_session(contact=str(tmp_path / "state"), backend="os")
    yield js
    cleanup_session(js)


def run(session: drmaa2.JobSession, **template: object) -> drmaa2.Job:
    job = session.run_job(template)
    job.wait_terminated(TIMEOUT)
    return job


def pid_of(job: drmaa2.Job) -> int:
    return int((job.get_info().implementation_specific or {})[extension.JSESSION_PID])


def stopped(pid: int) -> bool:
    return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)


# -- JobInfo ----------------------------------------------------------------------------------


def test_a_finished_job_reports_its_rusage_and_pid(session: drmaa2.JobSession) -> None:
    # Linux counts the controlling process's resident size into a child's ru_maxrss (the
    # memory it had before exec), so the job touches clearly more than that.
    touched_mib = 64 + 2 * psutil.Process().memory_info().rss // 2**20
    job = run(
        session,
        remote_command=PY,
        args=["-c", f"x = bytearray({touched_mib} * 1024 * 1024); sum(range(10**6))"],
    )
    info = job.get_info()
    assert info.allocated_machines == [socket.gethostname()]
    assert info.cpu_time is not None and info.cpu_time > 0
    ext = info.implementation_specific or {}
    assert int(ext[extension.JSESSION_MAX_RSS]) >= touched_mib * 1024  # KiB
    for key in (
        extension.JSESSION_SWAP,
        extension.JSESSION_IN_BLOCK,
        extension.JSESSION_OUT_BLOCK,
        extension.JSESSION_SYSTEM_TIME,
        extension.JSESSION_USER_TIME,
        extension.JSESSION_PID,
    ):
        assert int(ext[key]) >= 0, key
    assert int(ext[extension.JSESSION_USER_TIME]) + int(ext[extension.JSESSION_SYSTEM_TIME]) > 0


def test_a_running_job_reports_its_pid_and_leads_its_own_session(
    session: drmaa2.JobSession,
) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    pid = pid_of(job)
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"/bin/sleep", b"60"]
    assert os.getsid(pid) == pid, "a job runs in its own session"
    job.terminate()


def test_a_held_job_has_no_pid(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    assert (job.get_info().implementation_specific or {}).get(extension.JSESSION_PID) is None
    job.terminate()


# -- the template -----------------------------------------------------------------------------


def test_dev_stdout_and_stderr_are_the_controllers_streams(
    session: drmaa2.JobSession, capfd: pytest.CaptureFixture[str]
) -> None:
    run(
        session,
        remote_command="/bin/sh",
        args=["-c", "echo to-out; echo to-err >&2"],
        output_path="/dev/stdout",
        error_path="/dev/stderr",
    )
    captured = capfd.readouterr()
    assert "to-out" in captured.out
    assert "to-err" in captured.err


def test_priority_is_a_nice_increment(session: drmaa2.JobSession, tmp_path: Path) -> None:
    out = tmp_path / "nice"
    base = os.nice(0)
    run(
        session,
        remote_command=PY,
        args=["-c", "import os; print(os.nice(0))"],
        priority=7,
        output_path=str(out),
    )
    assert int(out.read_text()) == min(19, base + 7)
    with pytest.raises(drmaa2.InvalidArgumentException, match="priority"):
        session.run_job({"remote_command": "/bin/true", "priority": 20})
    with pytest.raises(drmaa2.InvalidArgumentException, match="priority"):
        session.run_job({"remote_command": "/bin/true", "priority": -1})


def test_a_job_is_one_process_so_more_slots_are_refused(session: drmaa2.JobSession) -> None:
    with pytest.raises(
        (drmaa2.UnsupportedAttributeException, drmaa2.InvalidArgumentException), match="min_slots"
    ):
        session.run_job({"remote_command": "/bin/true", "min_slots": 2})
    assert session.get_jobs() == []


def test_a_job_category_is_kept(session: drmaa2.JobSession) -> None:
    job = run(session, remote_command="/bin/true", job_category="short")
    assert job.get_state()[0] is JobState.DONE
    assert job.get_template().job_category == "short"


# -- control by signals -----------------------------------------------------------------------


def test_suspend_returns_once_the_process_is_stopped(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
    job.wait_started(TIMEOUT)
    job.suspend()
    assert stopped(pid_of(job)), "suspend() returns only once the job is stopped"
    job.resume()
    assert not stopped(pid_of(job))
    job.terminate()


def test_suspend_stops_a_process_that_ignores_sigtstp_at_once(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTSTP, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(600)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    wait_until(ready.exists, what="the job to install its handler")
    job.suspend()
    assert stopped(pid_of(job))
    job.terminate()


def test_a_job_that_handles_sigtstp_and_sigcont_hears_each_suspend_and_resume_once(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    """suspend() lets the job take SIGTSTP before it stops it (before, SIGSTOP often came
    first, and the SIGCONT of resume() discarded the pending SIGTSTP: its handler never ran);
    resume() sends one SIGCONT (before, the job's first process got two, and its handler
    often ran twice)."""
    log = tmp_path / "log"
    ready = tmp_path / "ready"
    code = (
        "import os, signal, time\n"
        f"fd = os.open({str(log)!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"
        "def heard(signum, frame):\n"
        "    os.write(fd, signal.Signals(signum).name.encode() + b' ')\n"
        "signal.signal(signal.SIGTSTP, heard)\n"
        "signal.signal(signal.SIGCONT, heard)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    job = session.run_job({"remote_command": PY, "args": ["-c", code]})
    wait_until(ready.exists, what="the job to install its handlers")
    pid = pid_of(job)
    for cycle in range(1, 6):
        job.suspend()
        assert stopped(pid)
        job.resume()
        wanted = {"SIGTSTP": cycle, "SIGCONT": cycle}
        wait_until(
            lambda w=wanted: all(file_text(log).split().count(n) >= c for n, c in w.items()),
            what=f"the job's handlers to run for suspension {cycle}",
        )
        heard = file_text(log).split()
        assert {name: heard.count(name) for name in wanted} == wanted, heard
    job.terminate()


def test_suspend_stops_the_childs_process_too(session: drmaa2.JobSession, tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    job = session.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"sleep 60 & echo $! > {pidfile}; wait"]}
    )
    wait_until(lambda: file_text(pidfile).strip() != "", what="the child to start")
    child = int(file_text(pidfile))
    job.suspend()
    assert stopped(pid_of(job))
    wait_until(lambda: stopped(child), timeout=5, what="the child to stop")
    job.resume()
    wait_until(lambda: not stopped(child), timeout=5, what="the child to continue")
    job.terminate()
    assert gone_or_zombie(child)


def test_terminate_kills_every_descendant_with_sigkill(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    code = (
        "import subprocess, time\n"
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
    info = job.get_info()
    assert (info.exit_status, info.terminating_signal) == (128 + 9, "SIGKILL")

    def gone(pid: int) -> bool:
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    wait_until(lambda: all(gone(pid) for pid in children), timeout=10, what="children to die")


def gone_or_zombie(pid: int) -> bool:
    """Whether a process has ended: gone, or a zombie not reaped yet (it may be reaped while
    it is looked at: then it is gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_machine_name_is_compared_without_regard_to_case(session: drmaa2.JobSession) -> None:
    """Host names are not case-sensitive: this host's name in capitals is this machine."""
    job = run(
        session, remote_command="/bin/true", candidate_machines=[socket.gethostname().upper()]
    )
    assert job.get_state()[0] is JobState.DONE
    with pytest.raises(drmaa2.InvalidArgumentException, match="candidate_machines"):
        session.run_job(
            {"remote_command": "/bin/true", "candidate_machines": ["X" + socket.gethostname()]}
        )
