"""Persistent sessions of the os backend: reopen from another process, survive a crash of the
controlling process, and refuse a bad store (issue 4)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import extension
from drmaa2_ostracker.store import STORE_FILE
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until

BACKEND = "os"


class Controller:
    """A separate Python process that opens a session, runs code, prints a JSON line, and
    then stays alive until it is killed."""

    def __init__(self, state: Path, body: str) -> None:
        code = (
            "import json, sys, time, drmaa2\n"
            f"session = drmaa2.JobSession('crashy', {str(state)!r}, backend='os')\n"
            "result = {}\n"
            f"{textwrap.dedent(body)}\n"
            "print(json.dumps(result), flush=True)\n"
            "time.sleep(3600)\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the controller failed to start"
        self.result = json.loads(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    # Whatever a test left, end it: reopen (adopting orphans) and terminate.
    if (path / STORE_FILE).exists():
        for name in drmaa2.get_job_session_names(str(path), backend=BACKEND):
            js = drmaa2.open_job_session(name, str(path), backend=BACKEND)
            for job in js.get_jobs():
                if not job.get_state()[0].is_terminal:
                    job.terminate()
            js.close()


def pid_of(job: drmaa2.Job) -> int:
    return int((job.get_info().implementation_specific or {})[extension.JSESSION_PID])


def test_reopen_in_another_process_sees_full_info(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sh", "args": ["-c", "exit 5"],
                               "job_name": "five"})
        job.wait_terminated()
        array = session.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 3, 1, 2)
        session.wait_all_terminated(array.job_list)
        result["job"] = job.id
        result["array"] = array.id
        """,
    )
    controller.kill()
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    job = next(j for j in js.get_jobs() if j.id == controller.result["job"])
    info = job.get_info()
    assert (info.exit_status, info.job_state, info.job_name) == (5, JobState.FAILED, "five")
    ext = info.implementation_specific or {}
    assert int(ext[extension.JSESSION_MAX_RSS]) > 0
    assert extension.JSESSION_USER_TIME in ext
    assert job.get_template().args == ["-c", "exit 5"]
    array = js.get_job_array(controller.result["array"])
    assert [t.get_state()[0] for t in array.job_list] == [JobState.DONE] * 3
    later = js.run_job({"remote_command": "/bin/true"})
    assert int(later.id) > int(controller.result["array"]), "ids keep growing"
    later.wait_terminated(TIMEOUT)
    js.close()


def test_a_running_job_is_adopted_after_its_controller_dies(state: Path, tmp_path: Path) -> None:
    flag = tmp_path / "finish"
    controller = Controller(
        state,
        f"""
        job = session.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "while [ ! -e {flag} ]; do sleep 0.05; done"]}})
        job.wait_started()
        result["job"] = job.id
        """,
    )
    controller.kill()
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    assert job.get_state()[0] is JobState.RUNNING
    with pytest.raises(drmaa2.TimeoutException):
        job.wait_terminated(0.2)
    flag.touch()
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert info.exit_status is None, "never an invented exit status"
    assert "exit_status_unobserved" in (info.job_sub_state or "")
    js.close()


def test_a_job_that_ended_unwatched_is_failed_without_status(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["0.3"]})
        job.wait_started()
        result["pid"] = int(job.get_info().implementation_specific["pid"])
        """,
    )
    controller.kill()
    pid = controller.result["pid"]
    wait_until(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        what="the orphaned job to end",
    )
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    job.wait_terminated(drmaa2.ZERO_TIME)
    info = job.get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, None)
    assert info.job_sub_state == "exit_status_unobserved"
    assert "could not be observed" in (info.annotation or "")
    js.close()


def test_a_suspended_job_stays_suspended_and_can_be_controlled(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        job.wait_started()
        job.suspend()
        """,
    )
    controller.kill()
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    assert job.get_state()[0] is JobState.SUSPENDED
    assert psutil.Process(pid_of(job)).status() == psutil.STATUS_STOPPED
    job.resume()
    assert job.get_state()[0] is JobState.RUNNING
    job.suspend()
    assert psutil.Process(pid_of(job)).status() == psutil.STATUS_STOPPED
    job.terminate()
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.FAILED
    js.close()


def test_queued_tasks_resume_under_max_parallel_and_held_stay_held(
    state: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    controller = Controller(
        state,
        f"""
        array = session.run_bulk_jobs({{"remote_command": "/bin/sh", "args": ["-c",
            'echo "start $TASK_ID" >> {log}; sleep 0.3; echo "end $TASK_ID" >> {log}']}},
            1, 6, 1, 2)
        array.job_list[0].wait_started()
        held = session.run_job({{"remote_command": "/bin/true", "submit_as_hold": True}})
        later = session.run_job({{"remote_command": "/bin/true",
            "start_time": __import__("drmaa2").JobTemplate.from_dict(
                {{"start_time": {start.isoformat()!r}}}).start_time}})
        result["held"] = held.id
        result["later"] = later.id
        result["array"] = array.id
        """,
    )
    controller.kill()
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    tasks = js.get_job_array(controller.result["array"]).job_list
    js.wait_all_terminated(tasks, TIMEOUT)
    done = [t for t in tasks if t.get_state()[0] is JobState.DONE]
    assert len(done) >= 4, "the queued tasks ran after the restart"
    running = peak = 0
    for line in file_text(log).splitlines():
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    assert peak <= 2
    held = next(j for j in js.get_jobs() if j.id == controller.result["held"])
    later = next(j for j in js.get_jobs() if j.id == controller.result["later"])
    assert held.get_state()[0] is JobState.QUEUED_HELD
    assert later.get_state()[0] is JobState.QUEUED, "its start_time is still in the future"
    later.wait_terminated(TIMEOUT)
    assert later.get_info().dispatch_time >= start  # type: ignore[operator]
    held.release()
    held.wait_terminated(TIMEOUT)
    assert held.get_state()[0] is JobState.DONE
    js.close()


def test_another_process_waits_on_and_controls_a_live_controllers_job(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        job.wait_started()
        result["job"] = job.id
        """,
    )
    try:
        js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
        (job,) = js.get_jobs()
        assert job.get_state()[0] is JobState.RUNNING
        with pytest.raises(drmaa2.TimeoutException):
            job.wait_terminated(0.1)
        job.terminate()
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        assert (info.exit_status, info.terminating_signal) == (137, "SIGKILL")
        js.close()
    finally:
        controller.kill()


def test_destroy_forgets_the_session_but_not_its_running_jobs(state: Path) -> None:
    js = drmaa2.create_job_session("doomed", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    job.wait_started(TIMEOUT)
    pid = pid_of(job)
    js.close()
    drmaa2.destroy_job_session("doomed", str(state), backend=BACKEND)
    assert "doomed" not in drmaa2.get_job_session_names(str(state), backend=BACKEND)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pid), what="the job to be reaped")


def test_store_layout(state: Path) -> None:
    js = drmaa2.create_job_session("layout", str(state), backend=BACKEND)
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with sqlite3.connect(state / STORE_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    js.close()


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path: Path) -> None:
    state = tmp_path / "bad"
    state.mkdir()
    store = state / STORE_FILE
    store.write_bytes(b"this is not a database\n" * 100)
    before = store.read_bytes()
    with pytest.raises(drmaa2.Drmaa2Exception, match=str(store)):
        drmaa2.create_job_session("x", str(state), backend=BACKEND)
    assert store.read_bytes() == before


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    state = tmp_path / "newer"
    drmaa2.create_job_session("x", str(state), backend=BACKEND).close()
    conn = sqlite3.connect(state / STORE_FILE)
    with conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    before = list(conn.iterdump())
    code = f"import drmaa2\ndrmaa2.open_job_session('x', {str(state)!r}, backend='os')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "999" in done.stderr and str(state / STORE_FILE) in done.stderr
    assert list(conn.iterdump()) == before, "the store is left untouched"
    conn.close()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (a read-only bind mount), or drop its write
    permission for an ordinary user."""
    if os.geteuid() != 0:
        path.joinpath(STORE_FILE).chmod(0o400)
        yield
        return
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_an_unwritable_store_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "ro"
    drmaa2.create_job_session("x", str(state), backend=BACKEND).close()
    code = f"import drmaa2\ndrmaa2.open_job_session('x', {str(state)!r}, backend='os')\n"
    with read_only(state):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert str(state) in done.stderr
    assert "SessionManagementException" in done.stderr


def test_crash_integrity_under_repeated_sigkill(state: Path, tmp_path: Path) -> None:
    """SIGKILL the controller at random moments of a 1000-task array, 20 times."""
    ran = tmp_path / "ran"
    rng = random.Random(20261121)
    script = textwrap.dedent(
        f"""
        import drmaa2
        session = drmaa2.JobSession("crashy", {str(state)!r}, backend="os")
        if not session.get_jobs():
            template = {{"remote_command": "/bin/sh", "args": ["-c", 'echo "$TASK_ID" >> {ran}']}}
            session.run_bulk_jobs(template, 1, 1000, 1, 4)
        print("ready", flush=True)
        unfinished = [j for j in session.get_jobs() if not j.get_state()[0].is_terminal]
        if unfinished:
            session.wait_all_terminated(unfinished)
        print("finished", flush=True)
        """
    )
    kills = 0
    while kills < 20:
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        process.stdout.readline()  # "ready": the array exists
        time.sleep(rng.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        kills += 1
        with sqlite3.connect(state / STORE_FILE) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = conn.execute(
                "SELECT task_index, count(*) FROM jobs WHERE array_id IS NOT NULL "
                "GROUP BY task_index HAVING count(*) > 1"
            ).fetchall()
            assert rows == [], "each task exists exactly once"
            assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1000
        indices = file_text(ran).split()
        assert len(indices) == len(set(indices)), "no task ran twice"
    # A last controller finishes the array.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert "finished" in done.stdout, done.stderr
    indices = file_text(ran).split()
    assert len(indices) == len(set(indices)), "no task ran twice"
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    states = [job.get_state()[0] for job in js.get_jobs()]
    assert len(states) == 1000 and all(s.is_terminal for s in states)
    done_count = states.count(JobState.DONE)
    assert done_count >= 1000 - 20 * 4 - 20, "only tasks caught by a crash may lack a status"
    js.close()


def test_a_store_path_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "dir"
    (state / STORE_FILE).mkdir(parents=True)
    with pytest.raises(drmaa2.SessionManagementException, match=str(state / STORE_FILE)):
        drmaa2.create_job_session("x", str(state), backend=BACKEND)
    assert (state / STORE_FILE).is_dir()


def test_wait_all_over_own_and_another_processs_jobs(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["0.5"]})
        result["job"] = job.id
        """,
    )
    try:
        js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
        theirs = next(j for j in js.get_jobs() if j.id == controller.result["job"])
        mine = js.run_job({"remote_command": "/bin/sleep", "args": ["0.2"]})
        started = time.monotonic()
        js.wait_all_terminated([mine, theirs], TIMEOUT)
        assert time.monotonic() - started < TIMEOUT / 2, "woken by both ends, not a timeout"
        assert mine.get_state()[0] is theirs.get_state()[0] is JobState.DONE
        js.close()
    finally:
        controller.kill()


def test_a_host_that_reaps_our_children_does_not_hang_a_wait(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import signal, drmaa2
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps every child
        s = drmaa2.create_job_session("x", {str(tmp_path / "state")!r}, backend="os")
        job = s.run_job({{"remote_command": "/bin/true"}})
        job.wait_terminated(30)
        info = job.get_info()
        print(info.job_state.name, info.exit_status, info.job_sub_state)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["FAILED", "None", "exit_status_unobserved"]
