"""Persistent sessions of the os backend with the keeper (issue 12): a client that dies changes
nothing for its jobs; a keeper that is SIGKILLed leaves them running and the next one adopts
them; a bad store is refused."""

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
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState, JobTemplate
from drmaa2_ostracker import extension
from drmaa2_ostracker.keeper.anchor import ANCHOR, EXITED, orphans_directory, write_orphan
from drmaa2_ostracker.process.identity import ProcessIdentity, boot_ticks, identity_of
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.ends import Ends
from drmaa2_ostracker.store.launches import SLOTS, Launches, _next_serial
from drmaa2_ostracker.store.orphans import Lineage, Orphans
from drmaa2_ostracker.store.ring import KILLED, PROVISIONAL
from drmaa2_ostracker.store.schema import STORE_FILE
from drmaa2_ostracker.template import plan_job
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until
from tests.keepers import gone

BACKEND = "os"
KEEPER_MODULE = "drmaa2_ostracker.keeper"


# -- helpers (also used by tests/os/test_keeper.py) ----------------------------------------


def keepers_of(state: Path | str) -> list[psutil.Process]:
    """The live keeper processes of a state directory (by their command line). A job the
    keeper is starting has the keeper's command line until its exec (vfork): a process
    whose parent is one of them is such a job, not a keeper."""
    found = []
    for process in psutil.process_iter(["cmdline", "status", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if (
            process.info["status"] != psutil.STATUS_ZOMBIE
            and len(cmdline) >= 4
            and cmdline[1:3] == ["-m", KEEPER_MODULE]
            and cmdline[3] == str(state)
        ):
            found.append(process)
    pids = {process.pid for process in found}
    return [process for process in found if process.info["ppid"] not in pids]


def keeper_pid(state: Path | str) -> int:
    """The pid of the one live keeper of a state directory (checked against keeper.lock)."""
    (keeper,) = keepers_of(state)
    assert int(Path(state, "keeper.lock").read_text().split()[0]) == keeper.pid
    return keeper.pid


def gate_on(flag: Path) -> str:
    """A shell command that waits until the file ``flag`` exists."""
    return f"while [ ! -e {flag} ]; do sleep 0.02; done"


def gated_job(js: drmaa2.JobSession, flag: Path, status: int) -> tuple[drmaa2.Job, int]:
    """A job that runs until the file ``flag`` exists, then exits with ``status``: the job,
    once started, and its pid."""
    job = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"{gate_on(flag)}; exit {status}"]}
    )
    job.wait_started(TIMEOUT)
    return job, pid_of(job)


def kill_keeper(state: Path | str, signum: int = signal.SIGKILL) -> int:
    """Signal the keeper of a state directory and wait until it is gone; its pid."""
    pid = keeper_pid(state)
    os.kill(pid, signum)
    wait_until(lambda: gone(pid), what=f"keeper {pid} to end")
    return pid


def stop_keeper(state: Path | str) -> None:
    """Stop the keeper of a state directory, if one runs (SIGTERM, as conftest does)."""
    for keeper in keepers_of(state):
        with contextlib.suppress(psutil.Error):
            keeper.terminate()
        wait_until(lambda k=keeper: gone(k.pid), what=f"keeper {keeper.pid} to stop")


def kill_pids(pids: list[int]) -> None:
    """End processes a test started (jobs orphaned by a killed keeper), by pid."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        wait_until(lambda p=pid: gone(p), what=f"process {pid} to end")


def pid_of(job: drmaa2.Job) -> int:
    return int((job.get_info().implementation_specific or {})[extension.JSESSION_PID])


def python(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run Python code in a new client process; its result (stdout, stderr captured)."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        **kwargs,
    )


class Controller:
    """A separate client process that opens session 'crashy', runs code, prints a JSON line,
    and then lives until :meth:`end` makes it exit, interrupts it or kills it."""

    def __init__(self, state: Path, body: str) -> None:
        code = (
            "import json, sys, time, drmaa2\n"
            f"session = drmaa2.JobSession('crashy', {str(state)!r}, backend='os')\n"
            "result = {}\n"
            f"{textwrap.dedent(body)}\n"
            "print(json.dumps(result), flush=True)\n"
            "sys.stdin.read()\n"
            "sys.exit(0)\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.end("sigkill")
            raise AssertionError("the controller failed")
        self.result = json.loads(line)

    def end(self, how: str) -> int:
        """End the controller: "exit" (it returns), "sigint" or "sigkill"; its exit code."""
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        if how == "exit":
            process.stdin.close()
        elif how == "sigint":
            process.send_signal(signal.SIGINT)
        else:
            process.kill()
        process.wait(TIMEOUT)
        assert process.stderr is not None
        self.errors = process.stderr.read()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
        return process.returncode


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    # Whatever a test left, end it.
    if (path / STORE_FILE).exists() and os.access(path, os.W_OK):
        with contextlib.suppress(drmaa2.Drmaa2Exception):
            for name in drmaa2.get_job_session_names(str(path), backend=BACKEND):
                js = drmaa2.open_job_session(name, str(path), backend=BACKEND)
                unfinished = [j for j in js.get_jobs() if not j.get_state()[0].is_terminal]
                for job in unfinished:
                    with contextlib.suppress(drmaa2.InvalidStateException):
                        job.terminate()
                if unfinished:
                    js.wait_all_terminated(unfinished, TIMEOUT)
                js.close()


def in_seconds(seconds: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return when.isoformat()


def peak_parallel(log: Path) -> int:
    running = peak = 0
    for line in file_text(log).splitlines():
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


# -- a client that dies changes nothing ------------------------------------------------------


@pytest.mark.parametrize("how", ["exit", "sigint", "sigkill"])
def test_a_client_that_dies_changes_nothing_for_its_jobs(
    state: Path, tmp_path: Path, how: str
) -> None:
    flag = tmp_path / "go"
    log = tmp_path / "log"
    released = tmp_path / "released"
    timed = tmp_path / "timed"
    gate = gate_on(flag)
    controller = Controller(
        state,
        f"""
        seven = session.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "{gate}; exit 7"]}})
        termed = session.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "{gate}; kill -TERM $$"]}})
        array = session.run_bulk_jobs({{"remote_command": "/bin/sh", "args": ["-c",
            'echo "start $TASK_ID" >> {log}; {gate}; echo "end $TASK_ID" >> {log}']}},
            1, 6, 1, 2)
        held = session.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "echo yes > {released}"], "submit_as_hold": True}})
        later = session.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "echo yes > {timed}"], "start_time": {in_seconds(3)!r}}})
        deadline = session.run_job({{"remote_command": "/bin/sleep", "args": ["600"],
            "deadline_time": {in_seconds(4)!r}}})
        wallclock = session.run_job({{"remote_command": "/bin/sleep", "args": ["600"],
            "resource_limits": {{"WALLCLOCK_TIME": 3}}}})
        for job in [seven, termed, deadline, wallclock, *array.job_list[:2]]:
            job.wait_started()
        result = {{name: job.id for name, job in dict(seven=seven, termed=termed, held=held,
            later=later, deadline=deadline, wallclock=wallclock).items()}}
        result["array"] = array.id
        result["pids"] = [int(j.get_info().implementation_specific["pid"])
                          for j in (seven, termed, deadline, wallclock)]
        """,
    )
    code = controller.end(how)
    assert code == {"exit": 0, "sigint": -signal.SIGINT, "sigkill": -signal.SIGKILL}[how], (
        controller.errors
    )
    ids = controller.result
    seven_pid, termed_pid, deadline_pid, wallclock_pid = ids["pids"]
    assert not gone(seven_pid) and not gone(termed_pid), "its jobs run on"
    flag.touch()
    # Nobody is connected now: the keeper alone starts the queued tasks, fires the timers.
    wait_until(lambda: file_text(log).count("end") == 6, what="all six tasks to run")
    wait_until(lambda: timed.exists(), what="the start_time job to run")
    wait_until(lambda: gone(deadline_pid), what="the deadline to end its job")
    wait_until(lambda: gone(wallclock_pid), what="the wallclock limit to end its job")
    assert peak_parallel(log) <= 2
    assert not released.exists(), "a held job waits for its release"

    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    jobs = {job.id: job for job in js.get_jobs()}
    js.wait_all_terminated([j for j in jobs.values() if j.id != ids["held"]], TIMEOUT)
    info = jobs[ids["seven"]].get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 7)
    assert not info.terminating_signal
    usage = info.implementation_specific or {}
    assert int(usage[extension.JSESSION_MAX_RSS]) > 0
    assert extension.JSESSION_USER_TIME in usage and extension.JSESSION_SYSTEM_TIME in usage
    info = jobs[ids["termed"]].get_info()
    assert (info.job_state, info.exit_status, info.terminating_signal) == (
        JobState.FAILED,
        143,
        "SIGTERM",
    )
    tasks = js.get_job_array(ids["array"]).job_list
    assert [t.get_info().exit_status for t in tasks] == [0] * 6
    assert [t.get_state()[0] for t in tasks] == [JobState.DONE] * 6
    info = jobs[ids["later"]].get_info()
    assert info.job_state is JobState.DONE
    assert info.dispatch_time is not None and info.submission_time is not None
    assert info.dispatch_time >= info.submission_time + datetime.timedelta(seconds=2)
    assert jobs[ids["deadline"]].get_state() == (JobState.FAILED, "deadline_reached")
    assert jobs[ids["wallclock"]].get_state() == (JobState.FAILED, "wallclock_limit_exceeded")
    held = jobs[ids["held"]]
    assert held.get_state()[0] is JobState.QUEUED_HELD
    js.close()

    # Released from yet another process, it starts; and any process sees every result.
    released_by = python(
        f"""
        import drmaa2
        js = drmaa2.open_job_session("crashy", {str(state)!r}, backend="os")
        (job,) = [j for j in js.get_jobs() if j.id == {ids["held"]!r}]
        job.release()
        js.close()
        """
    )
    assert released_by.returncode == 0, released_by.stderr
    wait_until(lambda: released.exists(), what="the released job to run")
    seen = python(
        f"""
        import json, drmaa2
        js = drmaa2.open_job_session("crashy", {str(state)!r}, backend="os")
        js.wait_all_terminated(js.get_jobs(), 60)
        print(json.dumps({{j.id: [j.get_info().job_state.name, j.get_info().exit_status]
                           for j in js.get_jobs()}}))
        js.close()
        """
    )
    assert seen.returncode == 0, seen.stderr
    states = json.loads(seen.stdout)
    assert states[ids["seven"]] == ["FAILED", 7]
    assert states[ids["termed"]] == ["FAILED", 143]
    assert states[ids["held"]] == ["DONE", 0]
    assert states[ids["later"]] == ["DONE", 0]


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
    controller.end("sigkill")
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
    assert int(later.id) == int(controller.result["array"]) + 1, "ids go on without a gap"
    later.wait_terminated(TIMEOUT)
    js.close()


@pytest.mark.parametrize("caught", ["suspend", "resume"])
def test_a_suspend_or_resume_cut_short_by_a_keeper_kill_is_what_the_process_is(
    state: Path, caught: str
) -> None:
    """The keeper was killed within a suspend (its processes stopped, SUSPENDED not yet
    recorded) or a resume (continued, RUNNING not yet recorded): the next keeper records
    the state the job's process is in, so that resume() and suspend() act on it (before, a
    job left stopped and RUNNING could not be resumed, and never ended)."""
    js = drmaa2.create_job_session("cut", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    job.wait_started(TIMEOUT)
    pid = pid_of(job)
    try:
        if caught == "resume":
            job.suspend()
        kill_keeper(state)
        # What the killed keeper did before it could record it:
        os.kill(pid, signal.SIGSTOP if caught == "suspend" else signal.SIGCONT)
        wait_until(
            lambda: (
                (psutil.Process(pid).status() == psutil.STATUS_STOPPED) == (caught == "suspend")
            ),
            what="the job's process to be stopped or continued",
        )
        if caught == "suspend":
            assert job.get_state() == (JobState.SUSPENDED, "")  # (a new keeper)
            job.resume()
            assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
            assert job.get_state() == (JobState.RUNNING, "")
        else:
            assert job.get_state() == (JobState.RUNNING, "")  # (a new keeper)
            job.suspend()
            assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
            assert job.get_state() == (JobState.SUSPENDED, "")
        job.terminate()
        job.wait_terminated(TIMEOUT)
        assert job.get_info().terminating_signal == "SIGKILL"
    finally:
        kill_pids([pid])
    js.close()


#: A job whose first process is in vfork (posix_spawn) for as long as the FIFO argv[1] has
#: no writer: the child opens it before it execs, and the parent cannot run meanwhile.
_IN_VFORK = (
    "import os, sys; os.posix_spawn('/bin/true', ['true'], os.environ,"
    " file_actions=[(os.POSIX_SPAWN_OPEN, 0, sys.argv[1], os.O_RDONLY, 0)])"
)


@pytest.mark.parametrize("then", ["resumed", "keeper killed, then resumed"])
def test_a_job_suspended_in_vfork_is_suspended_at_once_and_after_a_keeper_kill(
    state: Path, tmp_path: Path, then: str
) -> None:
    """A job whose first process is in vfork (a shell starting a command) when it is
    suspended: its child stops before it execs, and the parent, waiting for it, cannot stop
    (uninterruptible sleep, the stop pending) until it goes on. Such a job is stopped, so
    suspend() returns at once (before, it waited 5 s), and a keeper started after it was
    killed sees it SUSPENDED (before: RUNNING, so that resume() did nothing and the job
    never ended). Resumed, it ends."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    js = drmaa2.create_job_session("vfork", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": sys.executable, "args": ["-c", _IN_VFORK, str(gate)]})
    job.wait_started(TIMEOUT)
    pid = pid_of(job)
    leader = psutil.Process(pid)
    try:
        wait_until(
            lambda: leader.status() == psutil.STATUS_DISK_SLEEP and leader.children(),
            what="the job to be in vfork",
        )
        begun = time.monotonic()
        job.suspend()
        assert time.monotonic() - begun < 2.5, "suspend() waited for the vforking parent"
        (child,) = leader.children()
        assert child.status() == psutil.STATUS_STOPPED
        if then.startswith("keeper killed"):
            kill_keeper(state)
        assert job.get_state() == (JobState.SUSPENDED, "")
        job.resume()
        assert job.get_state() == (JobState.RUNNING, "")
        with open(gate, "w"):  # the child opens its end, and execs
            pass
        job.wait_terminated(TIMEOUT)
        assert job.get_state() == (JobState.DONE, "")
    finally:
        with contextlib.suppress(psutil.Error):
            kill_pids([child.pid for child in leader.children()])
        kill_pids([pid])
    js.close()


def test_an_end_nobody_waits_for_is_safe_from_a_keeper_kill_at_once(
    state: Path, tmp_path: Path
) -> None:
    """A job that ends while another runs and nobody waits for it: its end is in the ring of
    ends as soon as the keeper reaped it (before, it waited up to 10 ms for a commit, and a
    keeper killed meanwhile lost the exit status it alone had collected: FAILED
    exit_status_unobserved). The keeper is killed as soon as the job's process is gone."""
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("ending", str(state), backend=BACKEND)
    other = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    other.wait_started(TIMEOUT)
    pids = [pid_of(other)]
    try:
        for attempt in range(3):
            flag.unlink(missing_ok=True)
            job, pid = gated_job(js, flag, 3)
            keeper = keeper_pid(state)
            flag.touch()
            deadline = time.monotonic() + TIMEOUT
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                pass  # (no sleep: the keeper is killed the instant it reaped the job)
            os.kill(keeper, signal.SIGKILL)
            wait_until(lambda k=keeper: gone(k), what="the keeper to end")
            info = job.get_info()  # a new keeper
            assert (info.job_state, info.exit_status) == (JobState.FAILED, 3), attempt
            assert info.annotation == "exited with status 3"
        assert other.get_state() == (JobState.RUNNING, "")
        other.terminate()
    finally:
        kill_pids(pids)
    js.close()


def test_a_suspended_job_stays_suspended_when_its_client_dies(state: Path) -> None:
    controller = Controller(
        state,
        """
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        job.wait_started()
        job.suspend()
        """,
    )
    controller.end("sigkill")
    js = drmaa2.open_job_session("crashy", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    assert job.get_state()[0] is JobState.SUSPENDED
    assert psutil.Process(pid_of(job)).status() == psutil.STATUS_STOPPED
    job.resume()
    assert job.get_state()[0] is JobState.RUNNING
    job.terminate()
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert (info.job_state, info.exit_status, info.terminating_signal) == (
        JobState.FAILED,
        137,
        "SIGKILL",
    )
    js.close()


def test_another_process_waits_on_and_controls_a_live_clients_job(state: Path) -> None:
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
        controller.end("sigkill")


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
        js.wait_all_terminated([mine, theirs], TIMEOUT)
        assert mine.get_state()[0] is theirs.get_state()[0] is JobState.DONE
        js.close()
    finally:
        controller.end("exit")


def test_two_contacts_naming_one_state_directory_are_one_session(state: Path) -> None:
    """A state directory reached through a symbolic link is the same place: a job of one
    object is waited for, compared and hashed as a job of the other (it was refused as
    another session's)."""
    js = drmaa2.create_job_session("linked", str(state), backend=BACKEND)
    link = state.parent / "link"
    link.symlink_to(state)
    other = drmaa2.open_job_session("linked", str(link), backend=BACKEND)
    try:
        job = js.run_job({"remote_command": "/bin/true"})
        assert other.wait_any_terminated([job], TIMEOUT) == job
        (seen,) = other.get_jobs()
        assert seen == job
        assert {seen, job} == {job}
    finally:
        other.close()
        js.close()


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
    wait_until(lambda: not psutil.pid_exists(pid), what="the keeper to reap the job")


def test_a_destroyed_sessions_running_job_is_not_taken_for_a_new_job_of_its_id(
    state: Path, tmp_path: Path
) -> None:
    """A session made again under a destroyed one's name gives the same ids to new jobs: the
    end of the destroyed session's job, still running then, must not end the new job of its
    id (it did: the new job showed DONE when the old one ended), nor change its row."""
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    go = tmp_path / "go"
    old = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"while [ ! -e {go} ]; do sleep 0.01; done"]}
    )
    old.wait_started(TIMEOUT)
    old_pid = pid_of(old)
    js.close()
    drmaa2.destroy_job_session("again", str(state), backend=BACKEND)
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    done = tmp_path / "done"
    new = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"while [ ! -e {done} ]; do sleep 0.01; done; exit 3"],
        }
    )
    try:
        assert new.id == old.id
        new.wait_started(TIMEOUT)
        new_pid = pid_of(new)
        go.touch()
        wait_until(lambda: not psutil.pid_exists(old_pid), what="the keeper to reap the old job")
        assert new.get_state() == (JobState.RUNNING, "")
        assert pid_of(new) == new_pid
    finally:  # whatever failed, both jobs end
        go.touch()
        done.touch()
    new.wait_terminated(TIMEOUT)
    info = new.get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
    assert [job.id for job in js.get_jobs()] == [new.id]
    js.close()


def test_an_object_of_a_destroyed_session_never_acts_on_one_made_again_under_its_name(
    state: Path,
) -> None:
    old = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    old_job = old.run_job({"remote_command": "/bin/sleep", "args": ["60"], "job_name": "OLD"})
    old_job.wait_started(TIMEOUT)
    old_pid = pid_of(old_job)
    drmaa2.destroy_job_session("again", str(state), backend=BACKEND)  # from anywhere
    new = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    new_job = new.run_job({"remote_command": "/bin/sleep", "args": ["60"], "job_name": "NEW"})
    try:
        new_job.wait_started(TIMEOUT)
        assert new_job.id == old_job.id
        for call in (
            old_job.get_info,
            old_job.terminate,
            old.get_jobs,
            lambda: old.run_job({"remote_command": "/bin/true"}),
            lambda: old.wait_all_terminated([old_job], 0),
        ):
            with pytest.raises(drmaa2.InvalidSessionException, match="made again"):
                call()
        assert new_job.get_state() == (JobState.RUNNING, "")
        assert [job.id for job in new.get_jobs()] == [new_job.id]
    finally:
        kill_pids([old_pid])
        new_job.terminate()
    new_job.wait_terminated(TIMEOUT)
    new.close()


def test_a_client_that_reaps_every_child_does_not_disturb_its_jobs(tmp_path: Path) -> None:
    done = python(
        f"""
        import signal, drmaa2
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps this one's children
        s = drmaa2.create_job_session("x", {str(tmp_path / "state")!r}, backend="os")
        job = s.run_job({{"remote_command": "/bin/sh", "args": ["-c", "exit 3"]}})
        job.wait_terminated(60)
        info = job.get_info()
        print(info.job_state.name, info.exit_status)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["FAILED", "3"], "the keeper, not the client, is the parent"


# -- the keeper is SIGKILLed -------------------------------------------------------------


def test_a_submission_right_after_the_keeper_was_killed_goes_to_the_next_keeper(
    state: Path,
) -> None:
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    try:
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        old = kill_keeper(state)
        # This process kept its connection to the killed keeper: the submission cannot be
        # sent on it, so it was not made, and goes to a new keeper (it is not "in doubt").
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] is JobState.DONE
        assert keeper_pid(state) != old
        assert [listed.id for listed in js.get_jobs()] == ["1", "2"]
    finally:
        js.close()


def test_a_client_that_takes_sigpipe_outlives_its_keeper(state: Path) -> None:
    # A program may set SIGPIPE back to its default (it kills): a request to a keeper that
    # is gone must fail as an error the client handles (and send again), not kill it.
    result = python(
        f"""
        import os, signal, time, drmaa2
        from tests.keepers import gone
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        js = drmaa2.create_job_session("piped", {str(state)!r}, backend="os")
        js.run_job({{"remote_command": "/bin/true"}}).wait_terminated(60)
        keeper = js._backend._client.keeper_pid
        os.kill(keeper, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not gone(keeper) and time.monotonic() < deadline:
            time.sleep(0.01)  # its sockets closed: a send on them fails
        job = js.run_job({{"remote_command": "/bin/true"}})
        job.wait_terminated(60)
        print(job.id, job.get_state()[0].name)
        js.close()
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stdout.split() == ["2", "DONE"]


def _submit_and_wait(template: dict[str, object]) -> Callable[[int, drmaa2.JobSession], str]:
    """A busy client's round: submit ``template``; the odd clients wait for the job, the even
    ones look its state up."""

    def work(index: int, js: drmaa2.JobSession) -> str:
        job = js.run_job(template)
        if index % 2:
            job.wait_terminated(TIMEOUT)
        else:
            job.get_state()
        return job.id

    return work


def _busy_clients(
    state: Path,
    work: Callable[[int, drmaa2.JobSession], str],
    kills: Iterable[int],
    signum: int,
) -> tuple[list[drmaa2.JobSession], list[list[str]], list[str]]:
    """Four sessions, each doing rounds of ``work`` (given its index and session, it returns
    the id of the job it submitted) in a thread of its own, while the keeper is sent
    ``signum`` each time ``n`` more rounds were done, for each ``n`` of ``kills``: the
    sessions (open), the ids the rounds returned, and the errors raised."""
    sessions = [
        drmaa2.create_job_session(f"busy{i}", str(state), backend=BACKEND) for i in range(4)
    ]
    errors: list[str] = []
    submitted: list[list[str]] = [[] for _ in sessions]
    done = threading.Event()

    def client(index: int) -> None:
        js = sessions[index]
        while not done.is_set():
            try:
                submitted[index].append(work(index, js))
            except drmaa2.Drmaa2Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

    def count() -> int:
        return sum(map(len, submitted))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    try:
        signalled = set()
        for more in kills:
            until = count() + more
            wait_until(lambda u=until: count() >= u, what=f"{more} more submissions")
            wait_until(lambda: len(keepers_of(state)) == 1, what="one keeper")
            signalled.add(kill_keeper(state, signum))
        last = count()
        wait_until(lambda: count() >= last + 20, what="submissions to the next keeper")
    finally:
        done.set()
        for thread in threads:
            thread.join(TIMEOUT)
    assert len(signalled) == len(list(kills))
    return sessions, submitted, errors


def test_a_keeper_stopped_while_an_array_runs_closes_without_an_error(state: Path) -> None:
    """SIGTERM while an array's tasks start as slots free: the keeper closes its store, and
    its reaper thread starts no task and writes nothing after that (it hit the closed
    store: "Cannot operate on a closed database" in the log); every task runs once."""
    js = drmaa2.create_job_session("stopped", str(state), backend=BACKEND)
    array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 600, 1, 2)
    for more in (100, 200, 300, 400, 500):
        wait_until(
            lambda m=more: sum(t.get_state()[0].is_terminal for t in array.job_list[:m]) >= m,
            what=f"{more} tasks done",
        )
        kill_keeper(state, signal.SIGTERM)
    js.wait_all_terminated(array.job_list, TIMEOUT)
    assert {task.get_state()[0] for task in array.job_list} == {JobState.DONE}
    log = file_text(state / "keeper.log")
    assert "hit an error" not in log and "closed database" not in log, log
    js.close()


def test_a_keeper_stopped_by_sigterm_fails_no_call_of_its_busy_clients(state: Path) -> None:
    """SIGTERM while clients submit and wait: the keeper answers what it read, a request sent
    from then on goes to the next keeper, a wait goes on with it; no call fails, no
    submission is lost or made twice (before, about five calls failed per SIGTERM: "Cannot
    operate on a closed database", or the keeper went away while handling run_job)."""
    sessions, submitted, errors = _busy_clients(
        state, _submit_and_wait({"remote_command": "/bin/true"}), [200] * 6, signal.SIGTERM
    )
    assert errors == []
    for js, ids in zip(sessions, submitted, strict=True):
        assert ids == [str(n) for n in range(1, len(ids) + 1)]  # none lost, none twice
        jobs = js.get_jobs()
        assert sorted(int(job.id) for job in jobs) == [int(i) for i in ids]
        js.wait_all_terminated(jobs, TIMEOUT)
        js.close()


@pytest.mark.parametrize("seed", [20261206, 1, 2, 3])
def test_a_keeper_killed_under_busy_clients_makes_every_submission_exactly_once(
    state: Path, tmp_path: Path, seed: int
) -> None:
    """SIGKILL the keeper at random instants while clients submit (two also wait for each
    job): no call fails, each run_job gets a job of its own, and each job runs once. A
    submission the keeper was killed while handling goes again with its key: the next
    keeper answers with the job it got (adopting its process if it was started and not yet
    recorded), or makes it if it never was (before, about two run_job per kill failed with
    "whether it was done is unknown", and a job started but not yet recorded ran unknown
    to every session). The kill instants differ from run to run: the seeds only vary the
    numbers of submissions between kills. Several kills catch forks of two clients' jobs at
    once: before a keeper had one launch in flight at a time, about one run in eight gave a
    job that never ran the end of another that had (DONE, its output missing)."""
    rng = random.Random(seed)

    def work(index: int, js: drmaa2.JobSession) -> str:
        out = tmp_path / f"out{index}"
        template = {"remote_command": "/bin/sh", "args": ["-c", f"echo $JOB_ID >> {out}"]}
        return _submit_and_wait(template)(index, js)

    sessions, submitted, errors = _busy_clients(
        state, work, [rng.randint(20, 120) for _ in range(10)], signal.SIGKILL
    )
    assert errors == []
    for index, (js, ids) in enumerate(zip(sessions, submitted, strict=True)):
        assert len(set(ids)) == len(ids), "a job of its own for each run_job"
        jobs = js.get_jobs()
        assert sorted(int(job.id) for job in jobs) == sorted(int(i) for i in ids), "none lost"
        js.wait_all_terminated(jobs, TIMEOUT)
        ran = file_text(tmp_path / f"out{index}").split()
        assert set(ran) <= set(ids), "no job ran unknown to its session"
        for job in jobs:
            state_, sub_state = job.get_state()
            times = ran.count(job.id)
            if sub_state == "start_unconfirmed":  # killed within its fork: ran or not
                assert times <= 1, job.id
            else:
                assert times == 1, (job.id, state_, sub_state)
                assert state_ is JobState.DONE or sub_state == "exit_status_unobserved"
        js.close()


@pytest.mark.parametrize("round_", [1, 2])
def test_keepers_killed_as_they_start_leave_no_start_undecided(
    state: Path, tmp_path: Path, round_: int
) -> None:
    """One client submits a burst while keepers are SIGKILLed, whether they finished
    starting or not (their anchors live): every job runs once and has its exact end. A
    keeper killed after it noted itself in its lock file and before it made its anchor's
    file left the next keepers unable to decide the starts in flight: 1-12 jobs in 400
    that had run to completion ended FAILED start_unconfirmed, in half the runs."""
    js = drmaa2.create_job_session("burst", str(state), backend=BACKEND)
    out = tmp_path / "out"
    template = {"remote_command": "/bin/sh", "args": ["-c", f"echo $JOB_ID >> {out}"]}
    jobs: list[drmaa2.Job] = []
    worker = threading.Thread(target=lambda: jobs.extend(js.run_job(template) for _ in range(300)))
    worker.start()
    rng = random.Random()
    killed: set[int] = set()
    while worker.is_alive():
        # Three keepers in four are killed a random 0-60 ms after they note themselves in
        # the lock file, most while they start; the fourth once it started 10 more jobs
        # (five keepers killed while starting in a row make a call give up, as documented).
        try:
            noted = int((state / "keeper.lock").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            noted = 0
        if noted in killed or not noted:
            time.sleep(0.001)  # polling the lock file for the next keeper
            continue
        if len(killed) % 4 == 3:
            until = len(jobs) + 10
            while worker.is_alive() and len(jobs) < until:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0, 0.06))
        with contextlib.suppress(psutil.Error):
            keeper = psutil.Process(noted)
            if keeper.cmdline()[1:3] == ["-m", KEEPER_MODULE]:
                keeper.kill()
        killed.add(noted)
    worker.join()
    js.wait_all_terminated(jobs, TIMEOUT)
    ran = file_text(out).split()
    for job in jobs:
        info = job.get_info()
        assert (info.job_state, info.job_sub_state, info.exit_status) == (JobState.DONE, "", 0), (
            job.id,
            info.annotation,
        )
        assert ran.count(job.id) == 1, job.id
    assert len(ran) == len(jobs) == 300
    assert len(killed) >= 3
    js.close()


def test_a_keeper_killed_under_clients_controlling_jobs_fails_no_control(state: Path) -> None:
    """SIGKILL the keeper at random instants while clients suspend, resume and terminate
    their jobs: a control whose keeper died before answering goes to the next keeper, and
    succeeds if the job is where it led (before, each raised "whether it was done is
    unknown"). Each client has a session of its own, so their job ids repeat: a job whose
    fork a keeper died in, found by its JOB_ID, is never another session's. A keeper killed
    after recording that a fork begins and before the fork leaves a job that never started
    and cannot be told from one that ran and ended: FAILED start_unconfirmed (as in the test
    above), which a suspend then refuses; that is the only error allowed, once per kill."""
    rng = random.Random(20261207)

    def work(index: int, js: drmaa2.JobSession) -> str:
        job = js.run_job({"remote_command": "/bin/sleep", "args": ["30"]})
        job.wait_started(TIMEOUT)
        try:
            job.suspend()
            job.resume()
            job.terminate()
        except drmaa2.InvalidStateException as error:
            info = job.get_info()
            raise drmaa2.InvalidStateException(
                f"{error} [session {js.name}: {info.job_sub_state}, {info.annotation}]"
            ) from None
        job.wait_terminated(TIMEOUT)
        return job.id

    kills = [rng.randint(5, 30) for _ in range(10)]
    sessions, submitted, errors = _busy_clients(state, work, kills, signal.SIGKILL)
    unconfirmed = [error for error in errors if "start_unconfirmed" in error]
    assert errors == unconfirmed and len(unconfirmed) <= len(kills)
    for js, ids in zip(sessions, submitted, strict=True):
        states = {job.id: job.get_state()[0] for job in js.get_jobs()}
        assert all(states[job_id] is JobState.FAILED for job_id in ids), "each terminated"
        js.close()


def _serving(state: Path) -> int | None:
    """The pid of the one keeper of ``state`` once it noted itself in keeper.lock, else None."""
    keepers = keepers_of(state)
    with contextlib.suppress(OSError, ValueError, IndexError):
        noted = int((state / "keeper.lock").read_text().split()[0])
        if [k.pid for k in keepers] == [noted]:
            return noted
    return None


def _has_client(state: Path) -> bool:
    """Whether the keeper of ``state`` has a client connected (beside its listening socket)."""
    pid = _serving(state)
    with contextlib.suppress(psutil.Error):
        return pid is not None and len(psutil.Process(pid).net_connections(kind="unix")) >= 2
    return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_a_wait_goes_on_across_any_number_of_keepers(
    state: Path, tmp_path: Path, signum: int
) -> None:
    """A wait in progress while its keeper is killed (or stopped) again and again goes on
    with each next keeper, however many (before, the third keeper's end failed it: "went
    away while handling wait ... whether it was done is unknown")."""
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("waiting", str(state), backend=BACKEND)
    job, pid = gated_job(js, flag, 5)
    pids = [pid]
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(job.wait_terminated(TIMEOUT))
        except drmaa2.Drmaa2Exception as error:
            outcome.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        for _ in range(5):
            old = kill_keeper(state, signum)
            # The waiting client starts the next keeper, which adopts the job, and waits there.
            wait_until(
                lambda old=old: _serving(state) not in (None, old) and _has_client(state),
                what="the next keeper, serving the wait",
            )
        flag.touch()
        waiter.join(TIMEOUT)
        assert outcome == [None], outcome
        info = job.get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 5)
    finally:
        flag.touch()
        waiter.join(TIMEOUT)
        kill_pids(pids)
    js.close()


def test_a_killed_keeper_leaves_jobs_running_and_the_next_adopts_them(
    state: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    early = tmp_path / "early"
    log = tmp_path / "log"
    released = tmp_path / "released"
    timed = tmp_path / "timed"
    gate = gate_on(flag)
    js = drmaa2.create_job_session("crashy", str(state), backend=BACKEND)
    running = js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"{gate}; exit 4"]})
    suspended = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    ends_unwatched = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", gate_on(early)],
        }
    )
    array = js.run_bulk_jobs(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f'echo "start $TASK_ID" >> {log}; {gate}; echo "end $TASK_ID" >> {log}'],
        },
        1,
        4,
        1,
        1,
    )
    held = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"echo yes > {released}"],
            "submit_as_hold": True,
        }
    )
    later = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"echo yes > {timed}"],
            "start_time": in_seconds(3),
        }
    )
    for job in (running, suspended, ends_unwatched, array.job_list[0]):
        job.wait_started(TIMEOUT)
    suspended.suspend()
    pids = [pid_of(job) for job in (running, suspended, ends_unwatched, array.job_list[0])]
    try:
        old = kill_keeper(state)
        for pid in pids:
            assert not gone(pid), "the jobs of a killed keeper keep running"
        assert psutil.Process(pids[1]).status() == psutil.STATUS_STOPPED
        early.touch()
        wait_until(lambda: gone(pids[2]), what="a job to end while no keeper lives")

        # The next call starts a new keeper, which adopts what runs.
        states = {job.id: job.get_state() for job in js.get_jobs()}
        new = keeper_pid(state)
        assert new != old
        assert states[running.id][0] is JobState.RUNNING
        assert states[suspended.id][0] is JobState.SUSPENDED
        assert psutil.Process(pids[1]).status() == psutil.STATUS_STOPPED, "still suspended"
        # Ended while no keeper lived: the dead keeper's anchor reaped it, so its exact end.
        assert states[ends_unwatched.id] == (JobState.DONE, "")
        assert ends_unwatched.get_info().exit_status == 0
        assert states[held.id][0] is JobState.QUEUED_HELD
        assert [states[t.id][0] for t in array.job_list[1:]] == [JobState.QUEUED] * 3

        # Timers, queued tasks and held jobs go on under the new keeper.
        later.wait_terminated(TIMEOUT)
        info = later.get_info()
        assert info.job_state is JobState.DONE
        assert info.dispatch_time >= info.submission_time + datetime.timedelta(seconds=2)  # type: ignore[operator]
        held.release()
        held.wait_terminated(TIMEOUT)
        assert held.get_state()[0] is JobState.DONE and released.exists()
        suspended.resume()
        assert suspended.get_state()[0] is JobState.RUNNING
        assert psutil.Process(pids[1]).status() != psutil.STATUS_STOPPED
        suspended.terminate()
        suspended.wait_terminated(TIMEOUT)
        assert suspended.get_state()[0] is JobState.FAILED
        flag.touch()
        js.wait_all_terminated([running, *array.job_list], TIMEOUT)
        assert [t.get_state()[0] for t in array.job_list[1:]] == [JobState.DONE] * 3
        assert peak_parallel(log) <= 1
        assert sorted(file_text(log).split()[1::2]) == ["1", "1", "2", "2", "3", "3", "4", "4"]
        info = running.get_info()
        # Adopted, it ended while watched: its exact status, from the anchor that reaped it.
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 4)
        assert info.annotation == "exited with status 4"
        assert int(info.implementation_specific["ru_maxrss"]) > 0
        assert keeper_pid(state) == new
    finally:
        kill_pids(pids)
    js.close()


def test_the_keepers_anchor_keeps_the_ends_of_its_jobs_and_then_exits(
    state: Path, tmp_path: Path
) -> None:
    """The keeper's parent is its anchor: not the client's child, a child subreaper that
    does nothing while the keeper lives. Once the keeper is killed, the anchor reaps its
    jobs as they end and exits after the last one; the next keeper records each job's exact
    end. With the anchor killed too, a job's end is unobserved: the documented limit."""
    flag = tmp_path / "go"
    gate = gate_on(flag)
    js = drmaa2.create_job_session("anchored", str(state), backend=BACKEND)
    jobs = [
        js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"{gate}; exit {status}"]})
        for status in (3, 0)
    ]
    for job in jobs:
        job.wait_started(TIMEOUT)
    pids = [pid_of(job) for job in jobs]
    keeper = psutil.Process(keeper_pid(state))
    anchor = keeper.parent()
    try:
        assert anchor is not None
        cmdline = anchor.cmdline()
        assert cmdline[3].endswith("drmaa2_ostracker/keeper/anchor.py"), cmdline
        assert cmdline[4:] == [str(state), str(keeper.pid)]
        assert anchor.pid not in [p.pid for p in psutil.Process().children(recursive=True)]
        # The keeper notes itself and its anchor (by pid and start tick) in its lock file.
        anchored = identity_of(anchor.pid)
        keeper_identity = identity_of(keeper.pid)
        assert anchored is not None and keeper_identity is not None
        lineage = f"{keeper.pid}.{keeper_identity.start_ticks}:{anchor.pid}.{anchored.start_ticks}"
        lineage += ":recovered"  # what the keepers before it left is decided
        lines = (state / "keeper.lock").read_text().splitlines()
        assert lines[0] == str(keeper.pid) and lines[1].split()[-1] == lineage, lines
        kill_keeper(state)
        assert [psutil.Process(pid).ppid() for pid in pids] == [anchor.pid] * 2
        flag.touch()
        wait_until(lambda: gone(anchor.pid), what="the anchor to exit after its last job")
        infos = [job.get_info() for job in jobs]  # a new keeper
        assert [(i.job_state, i.exit_status) for i in infos] == [
            (JobState.FAILED, 3),
            (JobState.DONE, 0),
        ]
        # Each end recorded, then forgotten; the anchor said in its file, which its keeper
        # made, that it recorded them all. The new keeper made its own anchor's.
        mark = state / "orphans" / f"anchor.{anchor.pid}.{anchored.start_ticks}"
        assert mark.read_bytes() == b"exited\n"
        new_anchor = identity_of(psutil.Process(keeper_pid(state)).ppid())
        assert new_anchor is not None
        assert sorted(p.name for p in (state / "orphans").iterdir()) == sorted(
            [mark.name, f"anchor.{new_anchor.pid}.{new_anchor.start_ticks}"]
        )
        assert (state / "keeper.lock").read_text().split()[-2] == lineage, "the one before"
        flag.unlink()
        job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"{gate}; exit 3"]})
        job.wait_started(TIMEOUT)
        pids.append(pid_of(job))
        anchor = psutil.Process(keeper_pid(state)).parent()
        assert anchor is not None
        anchor.kill()
        anchor.wait(TIMEOUT)
        kill_keeper(state)
        flag.touch()
        wait_until(lambda: gone(pids[-1]), what="the job to end")
        assert job.get_state() == (JobState.FAILED, "exit_status_unobserved")
    finally:
        kill_pids(pids)
    js.close()


def test_a_state_directory_reached_through_a_symbolic_link_keeps_its_anchor(
    state: Path, tmp_path: Path
) -> None:
    """The state directory may be named through a symbolic link (it is its owner and mode
    that count): its keeper's anchor still keeps the ends of the jobs of a killed keeper
    (before, it could not open the directory through the link, and kept nothing: the end
    was unobserved)."""
    state.mkdir(mode=0o700)
    link = tmp_path / "state-link"
    link.symlink_to(state)
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("linked", str(link), backend=BACKEND)
    job, pid = gated_job(js, flag, 3)
    pids = [pid]
    try:
        kill_keeper(state)  # (its command line names the directory's real path)
        flag.touch()
        wait_until(lambda: gone(pids[0]), what="the job to end")
        info = job.get_info()  # a new keeper, which takes the end its anchor kept
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
        assert info.annotation == "exited with status 3"
    finally:
        kill_pids(pids)
    js.close()
    stop_keeper(state)


def test_ends_no_job_took_are_removed_after_a_day_and_so_are_old_anchors_files(
    state: Path,
) -> None:
    """The anchor also reaps a job's background process left to it, whose end no job takes:
    the keeper removes such ends once a day old (after its recovery, which takes the ends of
    jobs), and the files of anchors that have exited and that no keeper notes any more."""
    js = drmaa2.create_job_session("stale", str(state), backend=BACKEND)
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    stop_keeper(state)
    wait_until(lambda: not keepers_of(state), what="the keeper to exit")
    orphans = state / "orphans"
    day_old = time.time() - 86400 - 60
    planted = {
        "old end": orphans / "31999.100",
        "fresh end": orphans / "31998.100",
        "old part": orphans / ".31997.100.part",
        "unnoted anchor": orphans / "anchor.31996.100",
    }
    for name, path in planted.items():
        path.write_bytes(b"")
        path.chmod(0o600)
        if name.startswith("old"):
            os.utime(path, (day_old, day_old))
    js.get_jobs()  # a new keeper
    assert not planted["old end"].exists() and not planted["old part"].exists()
    assert planted["fresh end"].exists(), "a day to be taken"
    assert not planted["unnoted anchor"].exists(), "no lineage notes it; it does not run"
    noted = (state / "keeper.lock").read_text().splitlines()[1].split()[1:]
    assert len(noted) == 2, noted  # the keeper before, and this one
    for lineage in noted:
        anchor = lineage.split(":")[1]
        assert (orphans / f"anchor.{anchor}").exists(), "noted anchors' files are kept"
    js.close()


def test_a_reused_pid_is_never_taken_for_a_job(state: Path) -> None:
    js = drmaa2.create_job_session("crashy", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    job.wait_started(TIMEOUT)
    pid = pid_of(job)
    # A process is known by its pid and its start time in clock ticks: the stranger must
    # start in a later tick than the job, as a process reusing the job's pid would.
    identity = identity_of(pid)
    assert identity is not None
    wait_until(lambda: boot_ticks() > identity.start_ticks + 1, what="a later clock tick")
    stranger = subprocess.Popen(["/bin/sleep", "600"])
    try:
        kill_keeper(state)
        kill_pids([pid])
        # The job's pid now stands for another process (as after a pid wrapped around).
        with sqlite3.connect(state / STORE_FILE) as conn:
            conn.execute("UPDATE jobs SET pid=? WHERE job_id=?", (stranger.pid, job.id))
        conn.close()
        assert job.get_state() == (JobState.FAILED, "exit_status_unobserved")
        with pytest.raises(drmaa2.InvalidStateException):
            job.suspend()
        assert psutil.Process(stranger.pid).status() != psutil.STATUS_STOPPED
        assert stranger.poll() is None, "the other process is left alone"
    finally:
        stranger.kill()
        stranger.wait()
    js.close()


def test_crash_integrity_under_repeated_sigkill_of_the_keeper(state: Path, tmp_path: Path) -> None:
    """SIGKILL the keeper at 20 random instants of a 1000-task array with max_parallel 2.
    Only the keeper is killed, not its anchor: every task keeps its exact exit status, the
    shortest ones too (a task that ended before its start was written lost it)."""
    ran = tmp_path / "ran"
    counts = tmp_path / "counts"
    markers = tmp_path / "running"
    markers.mkdir()
    rng = random.Random(20261212)
    task = (
        f'touch {markers}/$TASK_ID; ls {markers} | wc -l >> {counts}; echo "$TASK_ID" >> {ran}; '
        f"rm {markers}/$TASK_ID; exit $(($TASK_ID % 7))"
    )
    js = drmaa2.create_job_session("crashy", str(state), backend=BACKEND)
    array = js.run_bulk_jobs({"remote_command": "/bin/sh", "args": ["-c", task]}, 1, 1000, 1, 2)
    orphans: list[int] = []
    try:
        for _ in range(20):
            # A random instant of the array's run: each task takes a few ms.
            wait_until(lambda: os.path.exists(ran), what="the array to start")
            deadline = len(file_text(ran).split()) + rng.randint(1, 40)
            wait_until(
                lambda d=deadline: len(file_text(ran).split()) >= min(d, 1000),
                what="tasks to run",
            )
            for process in keepers_of(state):
                orphans.extend(child.pid for child in process.children())
            kill_keeper(state)
            with sqlite3.connect(state / STORE_FILE) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                tasks = conn.execute(
                    "SELECT task_index, count(*) FROM jobs WHERE array_id IS NOT NULL "
                    "GROUP BY task_index"
                ).fetchall()
            conn.close()
            # Tasks are written as they start, in index order (see supervisor.lazy): the
            # store holds tasks 1 … k, each exactly once.
            assert [i for i, _ in tasks] == list(range(1, len(tasks) + 1)), "in index order"
            assert {n for _, n in tasks} <= {1}, "each task at most once"
            js.get_jobs()  # the next call starts a new keeper
        js.wait_all_terminated(array.job_list, TIMEOUT * 10)
        with sqlite3.connect(state / STORE_FILE) as conn:
            counts_by_task = conn.execute(
                "SELECT count(*), count(DISTINCT task_index) FROM jobs WHERE array_id IS NOT NULL"
            ).fetchone()
        conn.close()
        assert counts_by_task == (1000, 1000), "every task recorded exactly once"
        indices = file_text(ran).split()
        assert len(indices) == len(set(indices)), "no task ran twice"
        assert max(int(n) for n in file_text(counts).split()) <= 2, "never more than 2 at once"
        infos = [task.get_info() for task in js.get_job_array(array.id).job_list]
        assert all(info.job_state.is_terminal for info in infos), "all end"  # type: ignore[union-attr]
        started = set(indices)
        never = [i for i in infos if i.job_id.split(".")[1] not in started]  # type: ignore[union-attr]
        # Every task ran exactly once (issue 12, point 6).
        assert not never, [(i.job_id, i.job_sub_state) for i in never]
        unobserved = [i for i in infos if i.job_sub_state == "exit_status_unobserved"]
        assert not unobserved, [(i.job_id, i.annotation) for i in unobserved]
        # A task the keeper was killed while forking (between the record of its launch and
        # that of its process, microseconds) is decided by the dead keeper's anchor: never
        # forked, it starts (counted in "never" above if not); ended, it has its end. It is
        # start_unconfirmed only if that cannot be told: at most one per kill.
        unconfirmed = [i for i in infos if i.job_sub_state == "start_unconfirmed"]
        assert len(unconfirmed) <= 20, [i.job_id for i in unconfirmed]
        wrong = [
            (i.job_id, i.job_state, i.job_sub_state, i.exit_status, i.annotation)
            for i in infos
            if i not in unconfirmed
            and (
                i.exit_status != int(i.job_id.split(".")[1]) % 7  # type: ignore[union-attr]
                or (i.job_state is JobState.DONE) != (i.exit_status == 0)
            )
        ]
        assert not wrong, wrong
    finally:
        kill_pids(orphans)
    js.close()


def _job_id_of(process: psutil.Process) -> str | None:
    """The JOB_ID in a process's environment (None for a zombie or a process gone)."""
    try:
        return process.environ().get("JOB_ID")
    except psutil.Error:
        return None


def _stopped_by(state: Path, job: drmaa2.Job) -> tuple[int, bool]:
    """Wait until ``job`` stopped its keeper (SIGSTOP to its parent); the job's pid, and
    whether the store file has a row of it then."""
    keeper = psutil.Process(keeper_pid(state))
    wait_until(lambda: keeper.status() == psutil.STATUS_STOPPED, what="the job to stop the keeper")
    (pid,) = [child.pid for child in keeper.children() if _job_id_of(child) == job.id]
    with sqlite3.connect(state / STORE_FILE) as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM jobs WHERE session = ? AND job_id = ?",
            (job.session_name, job.id),
        ).fetchone()
    conn.close()
    return pid, rows > 0


def _launch_and_die(state: Path, launches: int) -> None:
    """Do what a keeper killed while recovering does to the launches file: it read what the
    keepers before it left, then started ``launches`` jobs (of a session recovered first)."""
    keeper = Launches(str(state))
    for n in range(launches):
        keeper.beginning("other", str(n), n)()
        keeper.forked("other", str(n), n, 1, 1)
        keeper.forking(os.urandom(16), str(n), 1)[0]()
    keeper.close()


@pytest.mark.parametrize("meanwhile", ["runs", "ends", "runs, and a keeper launched and died"])
def test_a_task_started_before_its_row_was_committed_is_adopted_not_run_again(
    state: Path, tmp_path: Path, meanwhile: str
) -> None:
    """An array task started when a slot frees is committed after its start (within 10 ms):
    a keeper killed in between leaves it only in the `launches` file. The next keeper finds
    it from its array, adopts its process (it holds the slot: the next task waits), or, if
    it ended meanwhile, knows it ran, and how it ended (from the dead keeper's anchor, not
    start_unconfirmed); it never starts it again, even after a keeper in between launched
    jobs and was killed before it decided what the first one left. Task 2 stops the keeper
    as it starts, so that the kill falls in that window; each attempt checks the store
    first, until one found no row of task 2."""
    orphans: list[int] = []
    unrecorded = 0
    try:
        for attempt in range(6):
            ran = tmp_path / f"ran{attempt}"
            task = (
                f'echo "$TASK_ID" >> {ran}; case "$TASK_ID" in 1) sleep 0.5 ;; '
                '2) kill -STOP "$PPID"; exec sleep 600 ;; esac'
            )
            js = drmaa2.create_job_session(f"lost{attempt}", str(state), backend=BACKEND)
            template = {"remote_command": "/bin/sh", "args": ["-c", task]}
            array = js.run_bulk_jobs(template, 1, 3, 1, 1)
            first, second, third = array.job_list
            pid, stored = _stopped_by(state, second)
            orphans.append(pid)
            unrecorded += not stored
            kill_keeper(state)
            if meanwhile.endswith("died"):
                _launch_and_die(state, 8)
            if meanwhile == "ends":
                kill_pids([pid])
                # The next keeper (started by this call) knows task 2's process ran, and
                # how it ended: the dead keeper's anchor reaped it (SIGKILL).
                assert second.get_state() == (JobState.FAILED, "")
                assert second.get_info().terminating_signal == "SIGKILL"
            else:
                # The next keeper (started by this call) adopts task 2, by its pid.
                assert second.get_state() == (JobState.RUNNING, "")
                assert third.get_state() == (JobState.QUEUED, ""), "task 2 holds the only slot"
                second.terminate()
            assert pid_of(second) == pid
            js.wait_all_terminated(array.job_list, TIMEOUT)
            assert sorted(file_text(ran).split()) == ["1", "2", "3"], "each task ran once"
            assert third.get_state() == (JobState.DONE, "")
            assert first.get_state()[0].is_terminal
            js.close()
            if unrecorded:
                break
        assert unrecorded, "the keeper was never killed before task 2's row was committed"
    finally:
        for keeper in keepers_of(state):  # a keeper left stopped by a failed attempt
            orphans.append(keeper.pid)
        kill_pids(orphans)


def test_a_job_whose_start_is_in_the_ring_only_is_adopted_by_the_next_keeper(
    state: Path,
) -> None:
    """run_job answers once the started job's first record is in the ring of ends (a
    pwrite), its row inserted within half a second: a keeper killed in between leaves the
    next one to insert it from the ring and adopt the job's process; the job is never lost
    nor started again. The job stops the keeper 0.2 s after it starts, so that the kill falls
    in that window; each attempt checks the store first, until one found no row of the job."""
    orphans: list[int] = []
    unrecorded = 0
    try:
        for attempt in range(6):
            js = drmaa2.create_job_session(f"ring{attempt}", str(state), backend=BACKEND)
            script = 'sleep 0.2; kill -STOP "$PPID"; exec sleep 600'
            job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", script]})
            pid, stored = _stopped_by(state, job)
            orphans.append(pid)
            unrecorded += not stored
            kill_keeper(state)
            # The next keeper (started by this call) has the job, and adopts its process.
            assert job.get_state() == (JobState.RUNNING, "")
            assert pid_of(job) == pid
            assert [j.id for j in js.get_jobs()] == [job.id]
            info = job.get_info()
            assert info.submission_time is not None and info.dispatch_time is not None
            job.terminate()
            job.wait_terminated(TIMEOUT)
            assert job.get_state()[0] is JobState.FAILED
            wait_until(lambda p=pid: gone(p), what="the job's process to end")  # type: ignore[misc]
            js.close()
            if unrecorded:
                break
        assert unrecorded, "the keeper was never killed before the job's row was inserted"
    finally:
        for keeper in keepers_of(state):  # a keeper left stopped by a failed attempt
            orphans.append(keeper.pid)
        kill_pids(orphans)


@pytest.mark.parametrize("kind", ["job", "array"])
def test_a_job_whose_deadline_passed_while_no_keeper_ran_never_starts(
    state: Path, tmp_path: Path, kind: str
) -> None:
    """A job (or array of tasks) whose start time and deadline both pass while no keeper runs
    (its keeper was killed) fails as at its deadline, never started (before, the next keeper
    started it, its start time having come, then killed it at its deadline: its command
    ran, or began to)."""
    ran = tmp_path / "ran"
    js = drmaa2.create_job_session("late", str(state), backend=BACKEND)
    now = datetime.datetime.now().astimezone()
    deadline = now + datetime.timedelta(seconds=2)
    template = {
        "remote_command": "/bin/sh",
        "args": ["-c", f"echo ran >> {ran}"],
        "start_time": now + datetime.timedelta(seconds=1),
        "deadline_time": deadline,
    }
    if kind == "job":
        jobs = [js.run_job(template)]
    else:
        jobs = js.run_bulk_jobs(template, 1, 3, 1, 1).job_list
    kill_keeper(state)
    wait_until(
        lambda: datetime.datetime.now().astimezone() > deadline + datetime.timedelta(seconds=0.2),
        what="the deadline to pass",
    )
    for job in jobs:  # (the first call starts a keeper)
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "deadline_reached")
        assert info.annotation == "terminated at its deadline_time before it started"
        assert info.dispatch_time is None and info.exit_status is None
    assert not ran.exists(), "never started"
    js.close()


def _mark_starting(state: Path, job_id: str, tick: int | None = None) -> int:
    """Leave a held job as a keeper killed between its "starting" mark and its fork would:
    QUEUED, marked starting at this tick, or ``tick`` (the keeper is dead). The tick."""
    tick = boot_ticks() if tick is None else tick
    with sqlite3.connect(state / STORE_FILE) as conn:
        changed = conn.execute(
            "UPDATE jobs SET state=?, sub_state='starting', pid_start=? WHERE job_id=?",
            (int(JobState.QUEUED), tick, job_id),
        ).rowcount
    conn.close()
    assert changed == 1
    return tick


def test_a_job_marked_starting_but_never_forked_starts_under_the_next_keeper(
    state: Path, tmp_path: Path
) -> None:
    """The keeper was killed after marking a job as starting and before forking it: the next
    keeper starts it (once), as the launches file shows it was never forked."""
    out = tmp_path / "out"
    js = drmaa2.create_job_session("crashy", str(state), backend=BACKEND)
    job = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"echo ran >> {out}"], "submit_as_hold": True}
    )
    kill_keeper(state)
    _mark_starting(state, job.id)
    job.wait_terminated(TIMEOUT)
    assert job.get_state() == (JobState.DONE, "")
    assert file_text(out) == "ran\n", "started exactly once"
    js.close()


@pytest.mark.parametrize(
    "meanwhile",
    ["nothing", "a process ended", "the anchor was killed", "another directory's job 1 runs"],
)
def test_a_job_whose_fork_began_runs_once_at_most(
    state: Path, tmp_path: Path, meanwhile: str
) -> None:
    """The keeper was killed after beginning a job's fork and before recording its pid (a
    few microseconds), and no process of the job runs. Whether it was forked is told by the
    dead keeper's anchor, which reaps what the keeper forked once it is dead:

    - "nothing": the anchor exited having recorded every end, and none is of a process
      started since the fork began: the fork never happened, and the job starts now, once;
    - "a process ended": a process that started since then and that no job is known by
      ended under the anchor: that was the job's, and it ended with its exit status (here,
      a background process of another job, which the anchor reaps as well);
    - "the anchor was killed": nothing tells; the job may have run, so it is FAILED
      start_unconfirmed, never run again;
    - "another directory's job 1 runs": a job of another state directory's keeper, with the
      same id, started since the fork began, is not taken for the job (as "nothing")."""
    out = tmp_path / "out"
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("crashy", str(state), backend=BACKEND)
    job = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"echo ran >> {out}"], "submit_as_hold": True}
    )
    tick = boot_ticks()
    anchor = psutil.Process(keeper_pid(state)).parent()
    assert anchor is not None
    pids: list[int] = []
    try:
        if meanwhile == "a process ended":
            # Left by another job, a session leader that is no job's (as the job's process,
            # forked and unrecorded, would be): the anchor's child once that job ends.
            pid_file = tmp_path / "pid"
            gate = f"{gate_on(flag)}; exit 3"
            leave = f"setsid sh -c '{gate}' & echo $! > {pid_file}"
            js.run_job({"remote_command": "/bin/sh", "args": ["-c", leave]}).wait_terminated(
                TIMEOUT
            )
            pids.append(int(file_text(pid_file)))
            wait_until(lambda: psutil.Process(pids[0]).ppid() == anchor.pid, what="its adoption")
        elif meanwhile == "the anchor was killed":
            anchor.kill()
            anchor.wait(TIMEOUT)
        else:
            other = drmaa2.create_job_session("other", str(tmp_path / "other"), backend=BACKEND)
            theirs = other.run_job({"remote_command": "sleep", "args": ["600"]})
            assert theirs.id == job.id
            pids.append(pid_of(theirs))
        kill_keeper(state)
        _mark_starting(state, job.id, tick)
        launches = Launches(str(state))
        launches.beginning("crashy", job.id, tick)()
        launches.close()
        if meanwhile == "a process ended":
            identity = identity_of(pids[0])
            assert identity is not None and identity.start_ticks >= tick
            flag.touch()
            name = f"{identity.pid}.{identity.start_ticks}"
            wait_until(lambda: (state / "orphans" / name).exists(), what="its end kept")
        if meanwhile in ("nothing", "another directory's job 1 runs"):
            job.wait_terminated(TIMEOUT)
            assert job.get_state() == (JobState.DONE, "")
            assert file_text(out) == "ran\n", "started exactly once"
            if pids:
                assert pid_of(job) != pids[0]
                assert theirs.get_state() == (JobState.RUNNING, "")
                theirs.terminate()
                other.close()
        elif meanwhile == "a process ended":
            assert job.get_state() == (JobState.FAILED, "")
            assert job.get_info().exit_status == 3
            assert pid_of(job) == pids[0]
            assert not out.exists(), "never run again"
        else:
            assert job.get_state() == (JobState.FAILED, "start_unconfirmed")
            assert not out.exists(), "never run by the next keeper"
    finally:
        kill_pids(pids)
    js.close()


def test_a_pid_recorded_for_a_job_that_ended_unseen_is_no_other_jobs_process(
    state: Path,
) -> None:
    """Pids are reused. Session b's record says its job runs as pid P, but that process
    ended while no keeper lived, and P is now the process of session a's job, whose fork a
    killed keeper began and did not record. The next keeper finds a's process, though b's
    stale record names its pid: processes are told apart by pid and start time."""
    sessions = {name: drmaa2.create_job_session(name, str(state), backend=BACKEND) for name in "ab"}
    held = {"remote_command": "sleep", "args": ["30"], "submit_as_hold": True}
    jobs = {name: js.run_job(held) for name, js in sessions.items()}
    kill_keeper(state)
    tick = boot_ticks()
    launches = Launches(str(state))
    launches.beginning("a", jobs["a"].id, tick)()
    launches.close()
    env = {**os.environ, "JOB_ID": jobs["a"].id}
    orphan = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
    try:
        identity = identity_of(orphan.pid)
        assert identity is not None
        with sqlite3.connect(state / STORE_FILE) as conn:
            conn.execute(
                "UPDATE jobs SET state=?, sub_state='starting', pid_start=? WHERE session='a'",
                (int(JobState.QUEUED), tick),
            )
            conn.execute(
                "UPDATE jobs SET state=?, pid=?, pid_start=?, dispatch_us=submission_us "
                "WHERE session='b'",
                (int(JobState.RUNNING), orphan.pid, identity.start_ticks - 5),
            )
        conn.close()
        job = jobs["a"]
        assert job.get_state()[0] is JobState.RUNNING, job.get_info().annotation
        assert pid_of(job) == orphan.pid, "its own process adopted"
        assert jobs["b"].get_state() == (JobState.FAILED, "exit_status_unobserved")
    finally:
        orphan.kill()
        orphan.wait()
        for js in sessions.values():
            js.close()


def test_the_latest_record_of_a_submission_holds(tmp_path: Path) -> None:
    """A keeper's records of one key, and a later keeper's: the last written is the answer
    (a submission found never made is made again, under a new id, by the same keeper)."""
    key = os.urandom(16)
    first = Launches(str(tmp_path))
    assert first.submission(key) is None
    first.forking(key, "5", 100)[0]()
    first.submitted(key, "6")
    found = first.submission(key)
    assert found is not None and (found.job_id, found.tick, found.mine) == ("6", 0, True)
    first.close()
    second = Launches(str(tmp_path))
    found = second.submission(key)
    assert found is not None and (found.job_id, found.mine) == ("6", False)
    announce, forked, _ = second.forking(key, "7", 200)
    announce()
    found = second.submission(key)
    assert found is not None and (found.job_id, found.tick, found.process) == ("7", 200, None)
    forked(4321, 5 * 10**9, 5 * 10**9)
    found = second.submission(key)
    ticks = 5 * os.sysconf("SC_CLK_TCK")
    assert found is not None and found.process == (4321, ticks)
    # A start that failed (the fork or the exec) is recorded as never started.
    announce, _, unstarted = second.forking(key, "8", 300)
    announce()
    unstarted()
    found = second.submission(key)
    assert found is not None and (found.job_id, found.tick, found.process) == ("8", 0, None)
    second.close()


def test_each_keepers_launches_survive_the_next_keepers_until_the_ring_comes_round(
    tmp_path: Path,
) -> None:
    """Each ring of the launches file goes on after the latest record of the keepers before:
    what a keeper left is there for every keeper after it, until SLOTS later launches."""
    key = os.urandom(16)
    first = Launches(str(tmp_path))
    first.beginning("s", "1", 10)()
    first.forked("s", "1", 10, 4321, 77)
    first.submitted(key, "1")
    first.close()
    for _ in range(3):  # keepers that each launched a few jobs and died
        _launch_and_die(tmp_path, 5)
    last = Launches(str(tmp_path))
    assert last.begun("s", "1", 10) and not last.begun("s", "1", 11)
    assert last.fork_of("s", "1", 10) == (4321, 77)
    found = last.submission(key)
    assert found is not None and found.job_id == "1"
    assert last.begun("other", "4", 4), "the last keeper's own, as well"
    last.close()
    _launch_and_die(tmp_path, SLOTS - 16)  # the first keeper's records are the oldest left
    after = Launches(str(tmp_path))
    assert after.begun("s", "1", 10) and after.fork_of("s", "1", 10) == (4321, 77)
    after.close()
    _launch_and_die(tmp_path, 1)
    gone = Launches(str(tmp_path))
    assert not gone.begun("s", "1", 10) and gone.fork_of("s", "1", 10) is None
    assert gone.submission(key) is None
    gone.close()
    # The latest serial is found across the wrap of serials at 2**32.
    wrapped = [(SLOTS - 3 + n, (1 << 32) - 3 + n) for n in range(3)] + [(0, 0), (1, 1)]
    assert _next_serial(wrapped) == 2
    assert _next_serial([(5, 5), (6, 6 + SLOTS)]) == 7 + SLOTS
    assert _next_serial([(5, 6)]) == 0, "a record not in its serial's slot is passed over"


def _made_again(js: drmaa2.JobSession, template: dict[str, object], key: bytes) -> str:
    """Make a run_job again with ``key``, as a client whose keeper died before answering."""
    backend = js._backend  # type: ignore[attr-defined]
    plan = plan_job(JobTemplate.from_dict(template), array=False)
    job_id, _ = backend._submit("run_job", plan, now=True, key=key, again=True)
    return str(job_id)


@pytest.mark.parametrize(
    "recorded",
    [
        "process",
        "process, deadline",
        "fork only",
        "fork only, anchor killed",
        "before its commit",
        "nothing",
    ],
)
def test_a_submission_made_again_gets_the_job_it_got_before(
    state: Path, tmp_path: Path, recorded: str
) -> None:
    """What a keeper killed while handling a run_job left in the launches file decides what
    the next keeper answers when the client makes it again with the same key: the process
    it forked (and did not record) is adopted; a fork begun with no process recorded is
    looked for, and if it is not found, made now if the dead keeper's anchor shows it never
    forked (see test_a_job_whose_fork_began_runs_once_at_most), else FAILED
    start_unconfirmed (never run again); a submission recorded before its commit, or not at
    all, is made now (once)."""
    out = tmp_path / "out"
    template: dict[str, object] = {
        "remote_command": "/bin/sh",
        "args": ["-c", f"echo ran >> {out}; sleep 30"],
    }
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    if recorded.endswith("anchor killed"):
        anchor = psutil.Process(keeper_pid(state)).parent()
        assert anchor is not None
        anchor.kill()
        anchor.wait(TIMEOUT)
    kill_keeper(state)
    key = os.urandom(16)
    orphan = None
    try:
        launches = Launches(str(state))
        if recorded == "process, deadline":  # its deadline holds for the job adopted
            template["deadline_time"] = datetime.datetime.now().astimezone() + datetime.timedelta(
                seconds=2
            )
        if recorded.startswith("process"):
            orphan = subprocess.Popen(["sleep", "30"], start_new_session=True)
            identity = identity_of(orphan.pid)
            assert identity is not None
            announce, forked, _ = launches.forking(key, "1000", boot_ticks())
            announce()
            at = identity.start_ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))
            forked(identity.pid, at, at)  # forked within that tick
        elif recorded.startswith("fork only"):
            launches.forking(key, "1000", boot_ticks())[0]()
        elif recorded == "before its commit":
            launches.submitted(key, "1000")
        launches.close()
        if orphan is not None:  # a few clock ticks after its start: its dispatch is that
            started = time.time()
            wait_until(lambda: boot_ticks() > identity.start_ticks + 3, what="later ticks")
        asked = time.time()
        job_id = _made_again(js, template, key)
        jobs = {listed.id: listed for listed in js.get_jobs()}
        job = jobs[job_id]
        if orphan is not None:
            info = job.get_info()
            assert info.dispatch_time is not None and info.submission_time is not None
            dispatched = info.dispatch_time.timestamp()
            assert started - 0.05 < dispatched < asked, "dispatched when its process started"
            assert info.submission_time <= info.dispatch_time
        if recorded == "process, deadline":
            assert orphan is not None
            assert job_id == "1000"
            assert orphan.wait(TIMEOUT) < 0, "killed at its deadline"
            job.wait_terminated(TIMEOUT)
            assert job.get_state()[0] is JobState.FAILED
        elif recorded == "process":
            assert orphan is not None
            assert job_id == "1000"
            assert job.get_state()[0] is JobState.RUNNING
            assert pid_of(job) == orphan.pid, "its process adopted"
            assert _made_again(js, template, key) == "1000", "and again: the same job"
            orphan.kill()
            orphan.wait()
            job.wait_terminated(TIMEOUT)
            assert job.get_state() == (JobState.FAILED, "exit_status_unobserved")
            assert not out.exists(), "never run again"
        elif recorded == "fork only, anchor killed":
            assert job_id == "1000"
            assert job.get_state() == (JobState.FAILED, "start_unconfirmed")
            assert not out.exists(), "never run again"
        else:
            assert job_id != "1000", "made now, with a new id"
            wait_until(lambda: out.exists(), what="the job to run")
            assert job.get_state()[0] is JobState.RUNNING
            assert _made_again(js, template, key) == job_id, "and again: the same job"
            job.terminate()
            job.wait_terminated(TIMEOUT)
            assert file_text(out) == "ran\n", "made once"
        assert sorted(jobs) == sorted(["1", job_id])
    finally:
        if orphan is not None and orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        js.close()


def test_a_job_looked_for_is_never_another_sessions_job_of_the_same_id(state: Path) -> None:
    """Job ids are counted per session. Two sessions' job 1000 were forked under a keeper
    killed before it answered either; it recorded the process of session b's, not of a's.
    Made again, a's is looked for by its JOB_ID, and b's process, which started first and has
    the same JOB_ID, is never taken for it: each job gets its own process."""
    sessions = {name: drmaa2.create_job_session(name, str(state), backend=BACKEND) for name in "ab"}
    sessions["a"].run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    kill_keeper(state)
    keys = {name: os.urandom(16) for name in "ab"}
    orphans: dict[str, subprocess.Popen[bytes]] = {}
    template: dict[str, object] = {"remote_command": "sleep", "args": ["30"]}
    try:
        launches = Launches(str(state))
        tick = boot_ticks()
        announce_b, forked_b, _ = launches.forking(keys["b"], "1000", tick)
        announce_b()
        env = {**os.environ, "JOB_ID": "1000"}
        orphans["b"] = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
        identity = identity_of(orphans["b"].pid)
        assert identity is not None
        at = identity.start_ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))
        forked_b(identity.pid, at, at)
        launches.forking(keys["a"], "1000", tick)[0]()  # a's process: not recorded
        orphans["a"] = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
        launches.close()
        for name in "ab":  # a first: it is looked for while b's is not adopted yet
            assert _made_again(sessions[name], template, keys[name]) == "1000"
            job = {listed.id: listed for listed in sessions[name].get_jobs()}["1000"]
            assert job.get_state()[0] is JobState.RUNNING, name
            assert pid_of(job) == orphans[name].pid, f"session {name}'s job has its own process"
    finally:
        for orphan in orphans.values():
            orphan.kill()
            orphan.wait()
        for js in sessions.values():
            js.close()


def test_an_array_submitted_again_after_its_keeper_died_is_the_same_array(
    state: Path, tmp_path: Path
) -> None:
    """An array recorded by a keeper killed before its answer was read: the submission made
    again with its key gets that array, and no second one runs."""
    out = tmp_path / "out"
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    backend = js._backend  # type: ignore[attr-defined]
    template = {
        "remote_command": "/bin/sh",
        "args": ["-c", f"echo $TASK_ID >> {out}"],
        "submit_as_hold": True,  # none starts before the keeper is killed
    }
    plan = plan_job(JobTemplate.from_dict(template), array=True)
    key = os.urandom(16)
    try:
        first = backend._submit("run_bulk_jobs", plan, 1, 3, 1, None, now=True, key=key)
        kill_keeper(state)
        again = backend._submit("run_bulk_jobs", plan, 1, 3, 1, None, now=True, key=key, again=True)
        assert again == first
        array = js.get_job_array(str(first))
        array.release()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        assert sorted(file_text(out).split()) == ["1", "2", "3"], "each task once"
        assert [job.id for job in js.get_jobs()] == [f"{first}.{i}" for i in (1, 2, 3)]
    finally:
        js.close()


def test_a_control_made_again_succeeds_where_the_dead_keeper_did_it(state: Path) -> None:
    """A control whose keeper died before answering goes again as "again": the job's state
    now refuses it, but it is where the action led (terminated: finished; released:
    started), so it succeeds; an action the state refuses for another reason still fails."""
    js = drmaa2.create_job_session("again", str(state), backend=BACKEND)
    client = js._backend._client  # type: ignore[attr-defined]
    key = js._backend._key  # type: ignore[attr-defined]
    try:
        ended = js.run_job({"remote_command": "/bin/sleep", "args": ["30"]})
        ended.terminate()
        ended.wait_terminated(TIMEOUT)
        with pytest.raises(drmaa2.InvalidStateException):
            ended.terminate()  # made once: refused, the job has finished
        client.call("again", "control", key, ended.id, "terminate")
        with pytest.raises(drmaa2.InvalidStateException):
            client.call("again", "control", key, ended.id, "suspend")
        held = js.run_job({"remote_command": "/bin/sleep", "args": ["30"], "submit_as_hold": True})
        held.release()
        held.wait_started(TIMEOUT)
        with pytest.raises(drmaa2.InvalidStateException):
            held.release()
        client.call("again", "control", key, held.id, "release")
        held.terminate()
        held.wait_terminated(TIMEOUT)
        # An array's tasks alike, in one request (counted as acted on where the dead keeper
        # did it; a reap made again counts the tasks it reaped).
        array = js.run_bulk_jobs({"remote_command": "/bin/true", "submit_as_hold": True}, 1, 3)
        tasks = (1, 4, 1)
        array.release()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        with pytest.raises(drmaa2.InvalidStateException):
            array.release()  # made once: refused, every task has started (and finished)
        assert client.call("again", "control_array", key, array.id, tasks, "release") == (3, [], [])
        assert client.call("again", "control_array", key, array.id, tasks, "terminate")[0] == 3
        applied, skipped, _ = client.call("again", "control_array", key, array.id, tasks, "suspend")
        assert applied == 0 and len(skipped) == 3, "refused for another reason: passed over"
        array.reap()
        assert client.call("again", "control_array", key, array.id, tasks, "reap") == (3, [], [])
        # A reap, and a session's destruction: what is no longer known was done.
        running = js.run_job({"remote_command": "/bin/sleep", "args": ["30"]})
        with pytest.raises(drmaa2.InvalidStateException):
            client.call("again", "reap", key, running.id)  # not finished: refused still
        running.terminate()
        running.wait_terminated(TIMEOUT)
        running.reap()
        client.call("again", "reap", key, running.id)
        drmaa2.create_job_session("gone", str(state), backend=BACKEND).close()
        drmaa2.destroy_job_session("gone", str(state), backend=BACKEND)
        client.call("again", "destroy_session", "gone")
        # A session's creation: one made since it was asked is the dead keeper's doing.
        asked = time.time_ns() // 1000
        drmaa2.create_job_session("made", str(state), backend=BACKEND).close()
        made = client.call("open_session", "made")
        assert client.call("again", "create_session", "made", asked) == made
        with pytest.raises(drmaa2.InvalidArgumentException, match="exists already"):
            client.call("again", "create_session", "made", made + 1)  # made before: refused
        assert client.call("again", "create_session", "new", asked) > asked  # made now
    finally:
        js.close()


def test_an_array_control_whose_keeper_died_while_doing_it_goes_to_the_next_keeper(
    state: Path,
) -> None:
    """terminate() of an array of 300,000 held tasks takes the keeper a second or so (one
    statement): the keeper is killed meanwhile, and the call goes to the next keeper, which
    ends every task (before, it raised DrmCommunicationException at once). Each attempt
    checks that the kill fell within the call."""
    js = drmaa2.create_job_session("array-again", str(state), backend=BACKEND)
    for _ in range(5):
        template = {"remote_command": "/bin/true", "submit_as_hold": True}
        array = js.run_bulk_jobs(template, 1, 300_000)
        killed = threading.Event()
        keeper = keeper_pid(state)

        def kill_soon(keeper: int = keeper, killed: threading.Event = killed) -> None:
            time.sleep(0.2)
            os.kill(keeper, signal.SIGKILL)
            killed.set()

        killer = threading.Thread(target=kill_soon)
        killer.start()
        try:
            array.terminate()
            within = killed.is_set()
        finally:
            killer.join()
        wait_until(lambda k=keeper: gone(k), what="the keeper to end")
        for task in (array.job_list[0], array.job_list[150_000], array.job_list[-1]):
            assert task.get_state() == (JobState.FAILED, "terminated")
        if within:
            assert keeper_pid(state) != keeper, "a new keeper ended them"
            break
    else:
        pytest.fail("the keeper was never killed within terminate()")
    js.close()


def _stored_state(state: Path, job_id: str) -> tuple[int, int | None] | None:
    """(state code, exit status) of a job's row, read from the store file itself; None if
    it has none yet (its start is in the ring of ends only)."""
    with sqlite3.connect(state / STORE_FILE) as conn:
        row = conn.execute("SELECT state, exit_status FROM jobs WHERE job_id=?", (job_id,))
        found = row.fetchone()
    conn.close()
    return None if found is None else (int(found[0]), found[1])


def test_an_end_a_wait_returned_survives_the_keeper_killed_right_after(state: Path) -> None:
    """A wait returns a job's end before its row is written (the end is in the state
    directory's `ends` ring, see store/ends.py). A keeper SIGKILLed right after the wait
    returned shows the next keeper the exact end: never exit_status_unobserved."""
    js = drmaa2.create_job_session("ends", str(state), backend=BACKEND)
    not_in_row = 0
    for round_ in range(12):
        pid = keeper_pid(state)
        status = round_ % 3
        job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"exit {status}"]})
        job.wait_terminated(TIMEOUT)
        os.kill(pid, signal.SIGKILL)  # at once: the row is written within 10 ms
        wait_until(lambda: gone(pid), what=f"keeper {pid} to end")  # noqa: B023
        stored = _stored_state(state, job.id)
        if stored is None or stored[0] == int(JobState.RUNNING):
            not_in_row += 1  # only the ring had the end (and maybe the start) then
        info = job.get_info()  # a new keeper
        assert (info.job_state, info.job_sub_state) == (
            JobState.DONE if status == 0 else JobState.FAILED,
            "",
        ), info.annotation
        assert info.exit_status == status
        assert info.cpu_time is not None
        assert _stored_state(state, job.id) == (int(info.job_state), status)
    assert not_in_row > 0, "the keeper was never killed before the row was written"
    js.close()


@pytest.mark.parametrize("then", ["exits idle", "is killed"])
def test_a_reaped_job_never_comes_back_from_the_ring(
    state: Path, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single job's start goes to the ring of ends before its row, and stays there: a job
    reaped since, its row deleted, must not be inserted again from it by the next keeper
    (before, it came back in every listing after any keeper's exit)."""
    monkeypatch.setenv("DRMAA2_OS_KEEPER_IDLE", "0.2")
    js = drmaa2.create_job_session("reaped", str(state), backend=BACKEND)
    kept = js.run_job({"remote_command": "/bin/true"})
    reaped = js.run_job({"remote_command": "/bin/true"})
    js.wait_all_terminated([kept, reaped], TIMEOUT)
    reaped.reap()
    assert [job.id for job in js.get_jobs()] == [kept.id]
    keeper = keeper_pid(state)
    if then == "is killed":
        kill_keeper(state)
    js.close()
    wait_until(lambda: gone(keeper), what="the keeper to end")
    again = drmaa2.open_job_session("reaped", str(state), backend=BACKEND)  # a new keeper
    assert [job.id for job in again.get_jobs()] == [kept.id]
    again.close()


def test_the_next_keeper_stores_the_ends_left_in_the_ring(state: Path) -> None:
    """Ends left in the ring by a killed keeper are written to the rows that still show the
    same process unfinished; an end naming another process (a session made again), a damaged
    record and a foreign value change nothing; the ring is emptied."""
    js = drmaa2.create_job_session("ring", str(state), backend=BACKEND)
    jobs = [js.run_job({"remote_command": "/bin/true", "submit_as_hold": True}) for _ in range(3)]
    kill_keeper(state)
    tick = boot_ticks()
    with sqlite3.connect(state / STORE_FILE) as conn:
        for job in jobs:  # running, as a process that has ended since (its pid is gone)
            conn.execute(
                "UPDATE jobs SET state=?, pid=?, pid_start=? WHERE job_id=?",
                (int(JobState.RUNNING), 2**22 + 1, tick, job.id),
            )
    conn.close()
    end = {"state": int(JobState.FAILED), "sub_state": "", "exit_status": 7, "cpu_time": 0.5}
    ring = Ends(str(state))
    assert ring.write(("ring", jobs[0].id, tick, end))
    assert ring.write(("ring", jobs[1].id, tick + 1, end))  # another process of that id
    assert ring.write(("ring", jobs[2].id, tick, {**end, "pid": 1}))  # not an end's column
    ring.close()
    with open(state / "ends", "r+b") as raw:  # a damaged copy of the first record
        record = bytearray(raw.read(512))
        record[10] ^= 1  # in its payload (the slot's last byte, changed before, is padding)
        raw.seek(512 * 3)
        raw.write(record)
    info = jobs[0].get_info()
    assert (info.job_state, info.exit_status, info.cpu_time) == (JobState.FAILED, 7, 0.5)
    for job in jobs[1:]:
        assert job.get_state() == (JobState.FAILED, "exit_status_unobserved")
    ring = Ends(str(state))
    left = [end for end in ring.left() if end[3].get("exit_status") == 7]
    ring.close()
    assert left == [], "the ends the killed keeper left are gone once stored"
    # The damaged record is said in the keeper's log (it was dropped without a word).
    assert "1 record(s) of the ring ends were damaged" in file_text(state / "keeper.log")
    js.close()


def test_the_next_keeper_applies_a_provisional_end_only_where_no_end_follows(
    state: Path,
) -> None:
    """A provisional end (the exit status seen before it was collected, see store/ends.py)
    that a killed keeper left in the ring is applied where no end of the same process
    follows and the process is gone; where an end follows, the end is."""
    js = drmaa2.create_job_session("ring", str(state), backend=BACKEND)
    jobs = [js.run_job({"remote_command": "/bin/true", "submit_as_hold": True}) for _ in range(2)]
    kill_keeper(state)
    tick, pid = boot_ticks(), 2**22 + 1  # a process that has ended (no such pid)
    with sqlite3.connect(state / STORE_FILE) as conn:
        for job in jobs:
            conn.execute(
                "UPDATE jobs SET state=?, pid=?, pid_start=? WHERE job_id=?",
                (int(JobState.RUNNING), pid, tick, job.id),
            )
    conn.close()
    seen = {
        "state": int(JobState.FAILED),
        "sub_state": "",
        "annotation": "exited with status 7",
        "exit_status": 7,
        "terminating_signal": "",
        "finish_us": 1,
    }
    end = {**seen, "exit_status": 9, "annotation": "exited with status 9", "cpu_time": 0.5}
    ring = Ends(str(state))
    assert ring.write(("ring", jobs[0].id, tick, seen, pid, PROVISIONAL))
    assert ring.write(("ring", jobs[1].id, tick, seen, pid, PROVISIONAL))
    assert ring.write(("ring", jobs[1].id, tick, end))
    ring.close()
    first, second = (job.get_info() for job in jobs)  # (a new keeper)
    assert (first.job_state, first.exit_status, first.cpu_time) == (JobState.FAILED, 7, None)
    assert first.annotation == "exited with status 7"
    assert (second.exit_status, second.cpu_time) == (9, 0.5), "the end, not the provisional"
    js.close()


@pytest.mark.parametrize("left", ["killed", "stopped", "killed, a keeper between"])
def test_a_kill_the_keeper_died_in_ends_the_job_with_its_reason(state: Path, left: str) -> None:
    """A keeper killed while it terminated a job (its reason in the ring, the job killed by
    its SIGKILL, or only stopped by the SIGSTOP before it) leaves the next keeper to end the
    job as terminated by the user, with the exact end the anchor kept (before: FAILED
    "killed by SIGKILL" without the sub-state terminated, or a job left stopped). A keeper
    in between that opened the ring and died before recovery (here: the ring opened as a
    keeper opens it, the store then closed) leaves the reason in the ring (it emptied the
    ring once read, and the reason was lost: exit_status_unobserved at a deadline kill)."""
    js = drmaa2.create_job_session("killing", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    job.wait_started(TIMEOUT)
    info = job.get_info()  # (its row written: the ring's first slot is reused below)
    pid = pid_of(job)
    # The start the keeper recorded (a tick, or "one of two" for a fork across a tick),
    # which its kill record names, as the keeper writes it.
    with sqlite3.connect(state / STORE_FILE) as conn:
        (start,) = conn.execute("SELECT pid_start FROM jobs WHERE job_id=?", (job.id,)).fetchone()
    conn.close()
    try:
        kill_keeper(state)
        reason = {"sub_state": "terminated", "annotation": "terminated by the user"}
        ring = Ends(str(state))
        assert ring.write(("killing", job.id, start, reason, pid, KILLED))
        ring.close()
        if left == "killed, a keeper between":
            store = Store(str(state))
            store.open_ends()
            store.close()
            ring = Ends(str(state))
            found = ring.left()
            ring.close()
            assert [r for r in found if len(r) == 6 and r[1] == job.id and r[-1] == KILLED]
        os.kill(pid, signal.SIGKILL if left.startswith("killed") else signal.SIGSTOP)
        job.wait_terminated(TIMEOUT)  # (a new keeper)
        info = job.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "terminated")
        assert info.annotation == "terminated by the user"
        assert (info.exit_status, info.terminating_signal) == (137, "SIGKILL")
        if left == "stopped":
            # The new keeper, which finished the kill, wrote its reason to the ring again
            # before (it emptied the ring once read): it would hold had it been killed too.
            ring = Ends(str(state))
            found = ring.left()
            ring.close()
            assert any(r[1] == job.id and r[-1] == KILLED for r in found if len(r) == 6)
    finally:
        kill_pids([pid])
    js.close()


# -- a bad store is refused -------------------------------------------------------------------


def test_store_layout(state: Path) -> None:
    js = drmaa2.create_job_session("layout", str(state), backend=BACKEND)
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in [*state.iterdir(), *(state / "orphans").iterdir()]:
        found = path.lstat()
        assert not stat.S_ISLNK(found.st_mode), path
        assert stat.S_IMODE(found.st_mode) == (0o700 if path.is_dir() else 0o600), path
        assert found.st_uid == os.geteuid(), path
    assert not list(state.glob("journal-*")), "the journals are gone"
    with sqlite3.connect(state / STORE_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    js.close()


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path: Path) -> None:
    state = tmp_path / "bad"
    state.mkdir(mode=0o700)
    store = state / STORE_FILE
    store.write_bytes(b"this is not a database\n" * 100)
    before = store.read_bytes()
    with pytest.raises(drmaa2.SessionManagementException, match=str(store)):
        drmaa2.create_job_session("x", str(state), backend=BACKEND)
    assert store.read_bytes() == before
    wait_until(lambda: not keepers_of(state), what="no keeper to serve a bad store")


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    state = tmp_path / "newer"
    drmaa2.create_job_session("x", str(state), backend=BACKEND).close()
    stop_keeper(state)
    conn = sqlite3.connect(state / STORE_FILE)
    with conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    before = list(conn.iterdump())
    done = python(f"import drmaa2\ndrmaa2.open_job_session('x', {str(state)!r}, backend='os')\n")
    assert done.returncode != 0
    assert "SessionManagementException" in done.stderr
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
    stop_keeper(state)
    code = f"import drmaa2\ndrmaa2.open_job_session('x', {str(state)!r}, backend='os')\n"
    with read_only(state):
        done = python(code)
    assert done.returncode != 0
    assert str(state) in done.stderr
    assert "SessionManagementException" in done.stderr
    wait_until(lambda: not keepers_of(state), what="no keeper to serve a bad store")


def test_a_store_path_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "dir"
    state.mkdir(mode=0o700)
    (state / STORE_FILE).mkdir()
    with pytest.raises(drmaa2.SessionManagementException, match=str(state / STORE_FILE)):
        drmaa2.create_job_session("x", str(state), backend=BACKEND)
    assert (state / STORE_FILE).is_dir()
    wait_until(lambda: not keepers_of(state), what="no keeper to serve a bad store")


def _ended_process_after(start_ticks: int) -> ProcessIdentity:
    """The identity of a real process started in a later clock tick than ``start_ticks``
    (ticks are 10 ms: started again until it is), ended and reaped."""
    while True:
        process = subprocess.Popen(["/bin/sleep", "60"])
        identity = identity_of(process.pid)
        process.kill()
        process.wait()
        assert identity is not None
        if identity.start_ticks > start_ticks:
            return identity


def test_a_fork_undecided_under_repeated_kills_is_told_by_the_anchors_of_its_time(
    tmp_path: Path,
) -> None:
    """Keepers killed one after the other, the first with its anchor: a fork the second
    began, and was killed within, is decided by the anchors of the keepers alive since it
    began, the second's here, which kept the job's end (the first keeper's killed anchor made
    every such fork undecidable, FAILED start_unconfirmed though the job's end was kept: 6
    in 75 kills of a review's harness). Real processes stand for the keepers, anchors and
    job, with the files an anchor leaves."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    first_keeper = _ended_process_after(0)
    first_anchor = _ended_process_after(first_keeper.start_ticks)  # killed: says nothing
    second_keeper = _ended_process_after(first_anchor.start_ticks)
    second_anchor = _ended_process_after(second_keeper.start_ticks)
    job = _ended_process_after(second_anchor.start_ticks)
    directory = orphans_directory(str(state))
    try:
        # The second keeper's anchor reaped the job, kept its end, and exited having kept
        # every end (its file says so).
        usage = types.SimpleNamespace(
            ru_utime=0.0, ru_stime=0.0, ru_maxrss=0, ru_nswap=0, ru_inblock=0, ru_oublock=0
        )
        write_orphan(directory, job.pid, job.start_ticks, 3 << 8, usage)
        exited = os.open(
            f"{ANCHOR}{second_anchor.pid}.{second_anchor.start_ticks}",
            os.O_WRONLY | os.O_CREAT | os.O_EXCL,
            0o600,
            dir_fd=directory,
        )
        os.write(exited, EXITED)
        os.close(exited)
    finally:
        os.close(directory)
    orphans = Orphans(str(state))
    orphans.lineages = [
        Lineage(first_keeper, first_anchor),
        Lineage(second_keeper, second_anchor),
    ]
    assert orphans.launched_since(job.start_ticks, ()) == [job], "the job's process, ended"
    # A fork that began before the second keeper started is the first's: undecidable.
    assert orphans.launched_since(first_anchor.start_ticks, ()) is None
