"""The keeper of a state directory (issue 12), with real processes, sockets and a second local
user: one keeper per state directory, started on demand as a fresh detached interpreter that is
the parent of every job; idle exit; jobs started as the client would have; pushed waits and
events; control from any process; a private state directory; version checks; the CLI as a
plain client.

``DRMAA2_TEST_KEEPER_ROUNDS`` sets the rounds of the concurrent-start test (default 30; the
issue's trial is 200)."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import grp
import json
import marshal
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import __version__
from drmaa2_ostracker.keeper.client import ANSWER_GRACE
from drmaa2_ostracker.keeper.protocol import MAGIC, PROTOCOL
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until
from tests.keepers import gone
from tests.os.test_persistence import (
    keeper_pid,
    keepers_of,
    kill_keeper,
    kill_pids,
    pid_of,
    python,
    stop_keeper,
)

BACKEND = "os"
IDLE = "DRMAA2_OS_KEEPER_IDLE"
#: How long "it does not happen" is watched: several idle times of 0.5 s.
NOT_YET = 2.0


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def session_cleanup(js: drmaa2.JobSession) -> None:
    unfinished = [j for j in js.get_jobs() if not j.get_state()[0].is_terminal]
    for job in unfinished:
        with contextlib.suppress(drmaa2.InvalidStateException):
            job.terminate()
    if unfinished:
        js.wait_all_terminated(unfinished, TIMEOUT)
    js.close()


# -- one keeper per state directory ---------------------------------------------------------

_OPENERS = """
import os, sys, json, drmaa2
root, rounds = sys.argv[1], int(sys.argv[2])
for number in range(rounds):
    state = os.path.join(root, f"round{number}")
    go_r, go_w = os.pipe()
    opened_r, opened_w = os.pipe()
    done_r, done_w = os.pipe()
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            os.close(go_w); os.close(done_w); os.close(opened_r)
            code = 0
            try:
                os.read(go_r, 1)  # all eight start at once
                js = drmaa2.JobSession("shared", state, backend="os")
                keeper = open(os.path.join(state, "keeper.lock")).read().split()[0]
                os.write(opened_w, f"{keeper}\\n".encode())
                os.read(done_r, 1)  # sessions stay open while the keepers are counted
                js.close()
            except BaseException as error:
                os.write(opened_w, f"error {type(error).__name__}: {error}\\n".encode())
                code = 1
            os._exit(code)
        children.append(pid)
    os.close(go_r); os.close(opened_w); os.close(done_r)
    os.close(go_w)
    answers = b""
    while answers.count(b"\\n") < 8:
        chunk = os.read(opened_r, 4096)
        if not chunk:
            break
        answers += chunk
    print(json.dumps({"state": state, "answers": answers.decode().split("\\n")[:8]}),
          flush=True)
    sys.stdin.readline()  # the test has counted the keepers
    os.close(done_w)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    print(json.dumps({"codes": codes}), flush=True)
"""


def test_one_keeper_per_state_directory_when_eight_processes_start_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE, "0.5")  # each round's keeper goes soon after
    rounds = int(os.environ.get("DRMAA2_TEST_KEEPER_ROUNDS", "30"))
    launcher = subprocess.Popen(
        [sys.executable, "-c", _OPENERS, str(tmp_path), str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdin is not None and launcher.stdout is not None
    try:
        for number in range(rounds):
            opened = json.loads(launcher.stdout.readline())
            answers = opened["answers"]
            assert not [a for a in answers if a.startswith("error")], (number, answers)
            keepers = keepers_of(opened["state"])
            assert len(keepers) == 1, (number, keepers)
            assert set(answers) == {str(keepers[0].pid)}, (number, answers)
            launcher.stdin.write("\n")
            launcher.stdin.flush()
            assert json.loads(launcher.stdout.readline())["codes"] == [0] * 8, number
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdin.close()
        launcher.stdout.close()


def test_the_keeper_is_a_fresh_detached_interpreter_and_the_parent_of_jobs(state: Path) -> None:
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        job.wait_started(TIMEOUT)
        keeper = psutil.Process(keeper_pid(state))
        cmdline = keeper.cmdline()
        assert cmdline[1:4] == ["-m", "drmaa2_ostracker.keeper", str(state)]
        assert os.path.samefile(cmdline[0], sys.executable)
        me = psutil.Process()
        assert keeper.pid not in [p.pid for p in me.children(recursive=True)]
        assert keeper.ppid() != os.getpid()
        assert os.getsid(keeper.pid) != os.getsid(0), "detached from the client's session"
        assert psutil.Process(pid_of(job)).ppid() == keeper.pid
    finally:
        session_cleanup(js)


# -- idle exit ---------------------------------------------------------------------------


def test_the_keeper_exits_when_idle_and_not_before(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE, "0.5")
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    pid = keeper_pid(state)
    time.sleep(NOT_YET)
    assert not gone(pid), "an open session keeps the keeper"
    job = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"while [ ! -e {flag} ]; do sleep 0.02; done"]}
    )
    job.wait_started(TIMEOUT)
    js.close()
    time.sleep(NOT_YET)
    assert not gone(pid), "a running job keeps the keeper"
    flag.touch()
    wait_until(lambda: gone(pid), what="the idle keeper to exit")
    js = drmaa2.open_job_session("s", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    assert job.get_info().exit_status == 0 and job.get_state()[0] is JobState.DONE
    assert keeper_pid(state) != pid
    js.close()


def test_a_keeper_stopped_while_it_waits_for_the_keeper_lock_exits_at_once(state: Path) -> None:
    # Another keeper holds the lock (this test, here): the new one waits for it, up to 30 s;
    # a SIGTERM meanwhile ends the wait (it went on to the end before).
    state.mkdir(mode=0o700)
    lock = os.open(state / "keeper.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    client = subprocess.Popen(
        [sys.executable, "-c", "import sys, drmaa2; drmaa2.JobSession('s', sys.argv[1])", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def waiting_keeper() -> psutil.Process | None:
            for keeper in keepers_of(state):
                with contextlib.suppress(psutil.Error):  # its lock file open: in the wait
                    if any(f.path.endswith("keeper.lock") for f in keeper.open_files()):
                        return keeper
            return None

        wait_until(lambda: waiting_keeper() is not None, what="a keeper waiting for the lock")
        keeper = waiting_keeper()
        assert keeper is not None
        keeper.terminate()  # (its signal handlers are set before it opens the lock file)
        wait_until(lambda: gone(keeper.pid), timeout=10.0, what="the keeper to stop")
    finally:
        client.kill()
        client.wait(TIMEOUT)
        os.close(lock)


@pytest.mark.parametrize(
    "instead", ["nothing", "a directory", "a FIFO", "a file", "nothing, on a long path"]
)
def test_a_keeper_whose_socket_was_removed_listens_again(
    state: Path, tmp_path: Path, instead: str
) -> None:
    """Its socket's file removed (a cleaner of /tmp, a user), or something else put in its
    place (set aside, kept), while it has a job, the keeper makes it again, and the next call
    reaches it: the keeper that started meanwhile to serve that call sees it listen and steps
    aside (before, every call waited 30 s for the keeper lock, then failed, for as long as
    the job ran; with a directory, a FIFO or a file in the socket's place, even while the
    keeper had nothing to do; on a path too long for a socket address, the keeper started
    meanwhile looked for the socket by its path, and never saw it listen)."""
    if instead.endswith("long path"):
        state = tmp_path / ("x" * 110) / "state"
        assert len(os.fsencode(state / "keeper.sock")) > 107
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        job = js.run_job(
            {
                "remote_command": "/bin/sh",
                "args": ["-c", f"while [ ! -e {flag} ]; do sleep 0.02; done"],
            }
        )
        job.wait_started(TIMEOUT)
        pid = keeper_pid(state)
        socket_file = state / "keeper.sock"
        socket_file.unlink()
        if instead == "a directory":
            socket_file.mkdir()
        elif instead == "a FIFO":
            os.mkfifo(socket_file)
        elif instead == "a file":
            socket_file.write_text("")
        other = python(
            f"import drmaa2; js = drmaa2.open_job_session('s', {str(state)!r}, backend='os'); "
            "print(js.run_job({'remote_command': '/bin/true'}).id)"
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.split() == ["2"]
        # The same keeper serves (the one started meanwhile is gone, or going).
        wait_until(lambda: len(keepers_of(state)) == 1, what="the other keeper to step aside")
        assert keeper_pid(state) == pid
        assert stat.S_IMODE((state / "keeper.sock").stat().st_mode) == 0o600
        log = file_text(state / "keeper.log")
        assert "keeper.sock was removed: listening there again" in log
        aside = [p.name for p in state.iterdir() if p.name.startswith("keeper.sock.damaged-")]
        assert len(aside) == (not instead.startswith("nothing")), aside
        flag.touch()
        job.wait_terminated(TIMEOUT)
    finally:
        flag.touch()
        session_cleanup(js)


def started_until(js: drmaa2.JobSession, flag: Path) -> drmaa2.Job:
    """A job that runs until the file ``flag`` exists, started."""
    job = js.run_job(
        {"remote_command": "/bin/sh", "args": ["-c", f"until [ -e {flag} ]; do sleep 0.02; done"]}
    )
    job.wait_started(TIMEOUT)
    return job


def test_a_keeper_whose_state_directory_was_replaced_leaves_it_alone(
    state: Path, tmp_path: Path
) -> None:
    """The state directory removed and made again under a keeper with a job: the keeper
    never listens in the new one (its store and lock are not there), so the next call starts
    a keeper of the new directory, and what it records is kept; the old keeper exits once
    its job ended (before, it made its socket in the new directory and recorded the new
    work in its removed store: lost)."""
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("old", str(state), backend=BACKEND)
    job = started_until(js, flag)
    old = keeper_pid(state)
    pids = [pid_of(job)]
    try:
        shutil.rmtree(state)
        state.mkdir(mode=0o700)
        made = python(
            f"import drmaa2; js = drmaa2.JobSession('new', {str(state)!r}, backend='os'); "
            "job = js.run_job({'remote_command': '/bin/true'}); job.wait_terminated(60); "
            "print(job.id, job.get_state()[0].name)"
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.split() == ["1", "DONE"]
        # A keeper of the new directory (both name it alike: told apart by its lock file).
        new = int((state / "keeper.lock").read_text().split()[0])
        assert new != old and not gone(new) and not gone(old)
        flag.touch()
        wait_until(lambda: gone(old), what="the old keeper to exit after its job")
        assert drmaa2.get_job_session_names(str(state), backend=BACKEND) == ["new"]
        (again,) = drmaa2.open_job_session("new", str(state), backend=BACKEND).get_jobs()
        assert again.get_state()[0] is JobState.DONE
    finally:
        flag.touch()
        kill_pids(pids)
        stop_keeper(state)


def test_reading_a_state_directory_that_does_not_exist_makes_nothing(tmp_path: Path) -> None:
    """Opening, listing or destroying sessions of a mistyped contact says there are none,
    and makes no directory and starts no keeper there (it made the whole tree, at mode
    0700, and a keeper ran there for its idle time)."""
    missing = tmp_path / "not" / "there"
    assert drmaa2.get_job_session_names(str(missing), backend=BACKEND) == []
    for call in (drmaa2.open_job_session, drmaa2.destroy_job_session):
        with pytest.raises(
            drmaa2.InvalidArgumentException,
            match=f"no job session named 's' in {missing}: that state directory does not exist",
        ):
            call("s", str(missing), backend=BACKEND)
    assert not (tmp_path / "not").exists()
    assert not keepers_of(missing)


def test_a_keeper_whose_state_directory_was_removed_does_not_stay_for_held_jobs(
    state: Path,
) -> None:
    """Held jobs in a removed state directory wait for a release no client can ask for any
    more: the keeper exits, its anchor with it (both stayed for good)."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    held = {"remote_command": "/bin/true", "submit_as_hold": True}
    try:
        js.run_job(held)
        js.run_bulk_jobs(held, 1, 3, 1, 1)
        old = keeper_pid(state)
        anchor = psutil.Process(old).ppid()
        assert anchor != os.getpid()
    finally:
        js.close()
    shutil.rmtree(state)
    wait_until(lambda: gone(old), what="the keeper of the removed directory to exit")
    wait_until(lambda: gone(anchor), what="its anchor to exit")


def test_a_keeper_is_started_for_the_directory_a_link_led_to_when_checked(
    tmp_path: Path,
) -> None:
    """A session opened through a symbolic link, the link then pointed elsewhere: a keeper
    the session's process starts again is the keeper of the directory it checked and
    connects to (it was started with the link, which it followed anew: a keeper of the other
    directory, and a call failing with KeeperVanished)."""
    first, second, link = tmp_path / "a", tmp_path / "b", tmp_path / "link"
    first.mkdir(mode=0o700)
    second.mkdir(mode=0o700)
    link.symlink_to(first)
    js = drmaa2.create_job_session("s", str(link), backend=BACKEND)
    try:
        link.unlink()
        link.symlink_to(second)
        stop_keeper(first)
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] is JobState.DONE
        assert keepers_of(first) and not keepers_of(second) and not keepers_of(link)
    finally:
        js.close()
        stop_keeper(first)
        stop_keeper(link)


def test_a_keeper_whose_state_directory_became_a_file_goes_on_with_its_jobs(
    state: Path, tmp_path: Path
) -> None:
    """The state directory moved away and a file put at its path: the keeper, which looks
    at its socket's path every quarter of a second, leaves the path alone and goes on with
    its job until it ends (the look at the socket's path raised NotADirectoryError, and the
    keeper died with its job running)."""
    flag = tmp_path / "go"
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    job = started_until(js, flag)
    keeper = keeper_pid(state)
    pids = [pid_of(job)]
    moved = tmp_path / "moved"
    try:
        state.rename(moved)
        state.write_text("")
        wait_until(
            lambda: "was removed or replaced" in file_text(moved / "keeper.log"),
            what="the keeper to see its directory replaced",
        )
        assert not gone(keeper), file_text(moved / "keeper.log")
        flag.touch()
        wait_until(lambda: gone(keeper), what="the keeper to exit once its job ended")
        assert "Traceback" not in file_text(moved / "keeper.log")
    finally:
        flag.touch()
        kill_pids(pids)
        js.close()
        state.unlink()
        moved.rename(state)
        stop_keeper(state)


def test_a_state_directory_moved_away_is_left_to_its_sessions_in_this_process_too(
    state: Path, tmp_path: Path
) -> None:
    """The state directory moved away, and a new one made at its path, while this process
    still has a session of the old one open: a session opened at the path now is the new
    directory's (it went to the old directory's keeper, through this process's connection
    to it: the new directory stayed empty)."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        old_job = js.run_job({"remote_command": "/bin/true"})
        old_job.wait_terminated(TIMEOUT)
        moved = tmp_path / "moved"
        state.rename(moved)
        state.mkdir(mode=0o700)
        fresh = drmaa2.create_job_session("s", str(state), backend=BACKEND)
        try:
            assert fresh.get_jobs() == []
            job = fresh.run_job({"remote_command": "/bin/true"})
            job.wait_terminated(TIMEOUT)
            assert job.id == "1" and job.get_state()[0] is JobState.DONE
            assert (state / "store.sqlite3").exists() and keepers_of(state)
        finally:
            fresh.close()
    finally:
        js.close()
        stop_keeper(state)  # both keepers (their command lines name the path alike)


# -- jobs start as if the client had started them ------------------------------------------

_PROBE = """#!/bin/sh
echo "cwd=$(pwd)"
echo "FOO=$FOO"
exec cat /proc/self/status /proc/self/limits /proc/self/stat
"""


def test_jobs_start_with_the_clients_environment_limits_and_signals(tmp_path: Path) -> None:
    state = tmp_path / "state"
    here = tmp_path / "client-cwd"
    there = tmp_path / "job-cwd"
    for directory, text in ((here, '#!/bin/sh\necho "wrong probe"\n'), (there, _PROBE)):
        directory.mkdir()
        probe = directory / "probe"
        probe.write_text(text)
        probe.chmod(0o755)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new_hard = min(hard, 4096) - 1
    new_soft = min(soft, new_hard) - 7
    code = f"""
        import json, os, resource, signal, drmaa2
        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_NOFILE, ({new_soft}, {new_hard}))
        nice = os.nice(3)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1, signal.SIGTERM}})
        # glibc's own 32 and 33 (signal.signal cannot set them): ignored, they would stay so
        # in the keeper this process starts, and in every job it forks.
        from drmaa2_ostracker.process.dispositions import set_reserved_signal
        assert set_reserved_signal(32, True) and set_reserved_signal(33, True)
        os.environ["FOO"] = "from-the-client"
        js = drmaa2.create_job_session("s", {str(state)!r}, backend="os")
        job = js.run_job({{"remote_command": "./probe", "working_directory": {str(there)!r},
                          "output_path": "out.txt"}})
        job.wait_terminated(60)
        print(json.dumps({{"nice": nice, "state": job.get_state()[0].name}}))
        js.close()
        """
    done = python(code, cwd=here)
    assert done.returncode == 0, done.stderr
    client = json.loads(done.stdout)
    assert client["state"] == "DONE"
    out = (there / "out.txt").read_text()  # relative paths: against the working directory
    assert "wrong probe" not in out, "remote_command is resolved against working_directory"
    fields = dict(
        line.split(":", 1) for line in out.splitlines() if ":" in line and "=" not in line
    )
    assert f"cwd={there}" in out.splitlines()
    assert "FOO=from-the-client" in out.splitlines()
    assert fields["Umask"].strip() == "0027"
    assert int(fields["SigIgn"], 16) == 0, "no signal ignored in the job"
    assert int(fields["SigBlk"], 16) == 0, "no signal blocked in the job"
    (open_files,) = [line for line in out.splitlines() if line.startswith("Max open files")]
    assert open_files.split()[3:5] == [str(new_soft), str(new_hard)]
    stat_line = out.splitlines()[-1]
    assert int(stat_line.rsplit(")", 1)[1].split()[16]) == client["nice"]


def _capable_of_raising_limits() -> bool:
    with open("/proc/self/status") as status:
        (line,) = [line for line in status if line.startswith("CapEff:")]
    return bool(int(line.split()[1], 16) >> 24 & 1)  # CAP_SYS_RESOURCE


def test_a_job_gets_a_hard_limit_above_the_keepers_where_the_keeper_may_give_it(
    state: Path, tmp_path: Path
) -> None:
    """A keeper started by a process with low limits, and a later client with higher ones:
    a keeper that may raise a hard limit (CAP_SYS_RESOURCE) gives the job the client's, as
    that client would have. One that may not hands over when it has no unfinished job (the
    client makes its submission again with a keeper it starts, which has its limits), and
    else gives its own, saying so in its log (it gave its own even when idle: every later
    client's jobs were capped at the first client's limits)."""
    started = python(
        f"""
        import resource, drmaa2
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        with drmaa2.create_job_session("s", {str(state)!r}, backend="os") as js:
            js.run_job({{"remote_command": "/bin/true", "submit_as_hold": True}})
        """
    )
    assert started.returncode == 0, started.stderr
    keeper = keeper_pid(state)
    assert psutil.Process(keeper).rlimit(psutil.RLIMIT_NOFILE) == (64, 64)

    def limits_of_a_job(name: str) -> list[str]:
        out = tmp_path / f"{name}.txt"
        done = python(
            f"""
            import resource, drmaa2
            resource.setrlimit(resource.RLIMIT_NOFILE, (2000, 3000))
            with drmaa2.open_job_session("s", {str(state)!r}, backend="os") as js:
                job = js.run_job({{"remote_command": "/bin/grep",
                                  "args": ["Max open files", "/proc/self/limits"],
                                  "output_path": {str(out)!r}}})
                job.wait_terminated(60)
            """
        )
        assert done.returncode == 0, done.stderr
        return out.read_text().split()[3:5]

    if _capable_of_raising_limits():  # (the keeper has this process's capabilities)
        assert limits_of_a_job("first") == ["2000", "3000"]
        assert keeper_pid(state) == keeper, "the job came from the keeper started before"
        stop_keeper(state)
        return
    # Busy (the first client's held job is unfinished): the job gets the keeper's, and its
    # log says so.
    assert limits_of_a_job("busy") == ["64", "64"]
    assert keeper_pid(state) == keeper
    log = file_text(state / "keeper.log")
    assert "RLIMIT_NOFILE hard limit 3000 (the keeper's 64)" in log, log
    with drmaa2.open_job_session("s", str(state), backend="os") as js:
        held = js.get_jobs()[0]
        held.terminate()  # (a control: no job of this process's limits)
        held.wait_terminated(TIMEOUT)
    assert keeper_pid(state) == keeper
    # Idle: it hands over to a keeper the client starts.
    assert limits_of_a_job("idle") == ["2000", "3000"]
    assert keeper_pid(state) != keeper
    wait_until(lambda: gone(keeper), what="the keeper that handed over to exit")
    with drmaa2.open_job_session("s", str(state), backend="os") as js:
        states = [job.get_state()[0] for job in js.get_jobs()]
        assert states == [JobState.FAILED, JobState.DONE, JobState.DONE]
    stop_keeper(state)


def test_the_same_template_again_takes_the_umask_limits_and_nice_value_of_its_submission(
    tmp_path: Path,
) -> None:
    """A template submitted again reuses its checked plan: the submitter's umask, limits and
    nice value are those at each submission (the second job got the first one's)."""
    done = python(
        f"""
        import os, resource, drmaa2
        js = drmaa2.create_job_session("s", {str(tmp_path / "state")!r}, backend="os")
        shown = "echo $(umask) $(ulimit -Hn) $(cut -d' ' -f19 /proc/self/stat)"
        template = {{"remote_command": "/bin/sh", "output_path": "/dev/stdout",
                     "args": ["-c", shown]}}
        os.umask(0o022)
        js.run_job(template).wait_terminated(60)
        os.umask(0o077)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 100), 100))
        os.nice(3)
        js.run_job(template).wait_terminated(60)
        js.close()
        """
    )
    try:
        assert done.returncode == 0, done.stderr
        first, second = (line.split() for line in done.stdout.splitlines())
        assert first[0] == "0022" and second[0] == "0077"
        assert second[1] == "100" != first[1]
        assert int(second[2]) == int(first[2]) + 3
    finally:
        stop_keeper(tmp_path / "state")


def test_a_relative_path_entry_is_looked_up_in_the_jobs_working_directory(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative entry of the job's PATH names a directory in the job's working directory,
    as the job's own lookup would, not in the submitter's."""
    here, there, elsewhere = tmp_path / "client-cwd", tmp_path / "job-cwd", tmp_path / "other"
    for directory, word in ((here, "client"), (there, "job")):
        (directory / "bin").mkdir(parents=True)
        tool = directory / "bin" / "tool"
        tool.write_text(f"#!/bin/sh\necho {word}\n")
        tool.chmod(0o755)
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        template = {
            "remote_command": "tool",
            "job_environment": {"PATH": "bin:/usr/bin:/bin"},
            "output_path": "out.txt",
        }
        job = js.run_job({**template, "working_directory": str(there)})
        job.wait_terminated(60)
        assert job.get_state()[0] is JobState.DONE
        assert (there / "out.txt").read_text() == "job\n"
        # Only the submitter's directory has it: not found, said at submission.
        with pytest.raises(drmaa2.InvalidArgumentException, match="not found on PATH"):
            js.run_job({**template, "working_directory": str(elsewhere)})
        # A working directory that depends on the task index: relative entries name a
        # directory of each task, so the absolute ones only are searched at submission (the
        # submitter's bin/tool was found, and ran in a task only where it had one too).
        per_task = {**template, "working_directory": str(tmp_path / "t$DRMAA2_INDEX$")}
        with pytest.raises(drmaa2.InvalidArgumentException, match="its absolute entries"):
            js.run_bulk_jobs(per_task, 1, 2, 1, 2)
    finally:
        session_cleanup(js)


def test_dev_stdin_and_stdout_are_the_clients_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE, "600")  # the keeper outlives the test: it must let go anyway
    code = f"""
import sys, drmaa2
js = drmaa2.create_job_session("s", {str(tmp_path / "state")!r}, backend="os")
job = js.run_job({{"remote_command": "/bin/sh",
                  "args": ["-c", "read line; echo got:$line; echo err:$line >&2"],
                  "input_path": "/dev/stdin", "output_path": "/dev/stdout",
                  "error_path": "/dev/stderr"}})
job.wait_terminated(60)
print("client-done", job.get_state()[0].name, flush=True)
js.close()
"""
    client = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None and client.stderr is not None
    read: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: read.__setitem__(k, f.read()), daemon=True)
        for k, f in (("out", client.stdout), ("err", client.stderr))
    ]
    for reader in readers:
        reader.start()
    client.stdin.write("hello-through-the-socket\n")
    client.stdin.close()
    try:
        assert client.wait(TIMEOUT * 2) == 0
        deadline = time.monotonic() + TIMEOUT
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        assert set(read) == {"out", "err"}, (
            "the client's streams stay open after the job and the client ended"
        )
    finally:
        client.kill()
        client.wait()
    assert read["out"].split() == ["got:hello-through-the-socket", "client-done", "DONE"]
    assert "err:hello-through-the-socket" in read["err"]
    client.stdout.close()
    client.stderr.close()


# -- waits, events and control across processes ----------------------------------------------


def test_a_wait_returns_when_another_processs_job_ends(state: Path, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    submitted = python(
        f"""
        import drmaa2
        js = drmaa2.create_job_session("s", {str(state)!r}, backend="os")
        job = js.run_job({{"remote_command": "/bin/sh",
            "args": ["-c", "while [ ! -e {flag} ]; do sleep 0.02; done; exit 3"]}})
        job.wait_started(60)
        print(job.id)
        js.close()
        """
    )
    assert submitted.returncode == 0, submitted.stderr
    js = drmaa2.open_job_session("s", str(state), backend=BACKEND)
    (job,) = js.get_jobs()
    assert job.id == submitted.stdout.strip()
    timer = threading.Timer(0.5, flag.touch)
    timer.start()
    try:
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
    finally:
        timer.cancel()
        flag.touch()
        session_cleanup(js)


def test_a_waits_timeout_names_what_it_waited_for(state: Path) -> None:
    """A wait that times out says for which job (one), or for all or any of how many."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        jobs = [js.run_job({"remote_command": "/bin/sleep", "args": ["60"]}) for _ in range(2)]
        with pytest.raises(drmaa2.TimeoutException, match=rf"for job {jobs[0].id} to be term"):
            jobs[0].wait_terminated(0.1)
        with pytest.raises(drmaa2.TimeoutException, match="for all of 2 jobs to be terminated"):
            js.wait_all_terminated(jobs, 0.1)
        with pytest.raises(drmaa2.TimeoutException, match="for any of 2 jobs to be terminated"):
            js.wait_any_terminated(jobs, 0.1)
    finally:
        session_cleanup(js)


def test_a_wait_with_a_timeout_ends_though_the_keeper_does_not_answer(state: Path) -> None:
    """A wait's timeout holds even when its keeper is stopped (SIGSTOP) and cannot answer: the
    wait raises TimeoutException, saying so, within the timeout and ANSWER_GRACE, on a
    connection open before and on one it opens (whose greeting is not answered either); a
    wait with no timeout goes on, and returns once the keeper runs again."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "sleep", "args": ["30"]})
    job.wait_started(TIMEOUT)
    keeper = keeper_pid(state)
    os.kill(keeper, signal.SIGSTOP)
    forever: list[BaseException | None] = []
    waiter = threading.Thread(
        target=lambda: forever.append(_outcome(lambda: job.wait_terminated())), daemon=True
    )
    try:
        for timeout in (1.0, 0.0):  # the idle connection, then a new one
            began = time.monotonic()
            with pytest.raises(drmaa2.TimeoutException, match=r"stopped.*not known"):
                js.wait_any_terminated([job], timeout)
            assert time.monotonic() - began < timeout + ANSWER_GRACE + 1.0
        waiter.start()
        waiter.join(NOT_YET)
        assert waiter.is_alive(), "a wait without a timeout waits on"
    finally:
        os.kill(keeper, signal.SIGCONT)
    job.terminate()
    waiter.join(TIMEOUT)
    assert forever == [None]
    assert job.get_state() == (JobState.FAILED, "terminated")
    session_cleanup(js)


def _outcome(call: Callable[[], object]) -> BaseException | None:
    """What a call raised (None if it returned)."""
    try:
        call()
    except BaseException as error:
        return error
    return None


def reading(pid: int) -> str:
    """Where a process's main thread sleeps in the kernel (``/proc/PID/wchan``)."""
    return Path(f"/proc/{pid}/wchan").read_text()


@pytest.mark.parametrize("jobs", [1, 600], ids=["one-job", "600-tasks"])
def test_a_killed_waiters_wait_ends_in_the_keeper(state: Path, jobs: int) -> None:
    """A client SIGKILLed in the middle of an endless wait (on one job, reaped by the waiting
    thread itself, or on a long list) frees the keeper's thread serving it within seconds,
    while the jobs run on; a wait from another client still returns when they end."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    try:
        if jobs == 1:
            watched = [js.run_job({"remote_command": "/bin/sleep", "args": ["60"]})]
        else:
            watched = js.run_bulk_jobs(
                {"remote_command": "/bin/sleep", "args": ["60"]}, 1, jobs, 1, 2
            ).job_list
        js.wait_all_started(watched[:1], TIMEOUT)
        (keeper,) = keepers_of(state)
        threads = keeper.num_threads()
        waiter = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, drmaa2\n"
                f"js = drmaa2.JobSession('s', {str(state)!r}, backend='os')\n"
                "jobs = js.get_jobs()\n"
                "print(len(jobs), flush=True)\n"
                "js.wait_all_terminated(jobs)\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiter.stdout is not None
            assert waiter.stdout.readline() == f"{jobs}\n"
            # Its next call is the wait: it blocks reading the keeper's answer once sent.
            wait_until(lambda: "unix_stream" in reading(waiter.pid), TIMEOUT)
            assert keeper.num_threads() == threads + 1  # the connection's, serving the wait
        finally:
            waiter.kill()
            waiter.wait()
        # The serving thread notices its client is gone between slices of the wait.
        wait_until(lambda: keeper.num_threads() == threads, TIMEOUT)
        assert all(job.get_state()[0] == JobState.RUNNING for job in watched[:1])
        for job in watched[:2]:
            with contextlib.suppress(drmaa2.InvalidStateException):
                job.terminate()
        if jobs > 1:
            js.get_job_array(watched[0].id.rpartition(".")[0]).terminate()
        assert len(js.wait_all_terminated(watched, TIMEOUT)) == jobs
    finally:
        session_cleanup(js)


def test_event_notifications_show_another_processs_changes(state: Path) -> None:
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    seen: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.job_id, note.job_state)), backend=BACKEND
    )
    try:
        other = python(
            f"""
            import drmaa2
            js = drmaa2.open_job_session("s", {str(state)!r}, backend="os")
            job = js.run_job({{"remote_command": "/bin/sleep", "args": ["600"]}})
            job.wait_started(60)
            job.suspend()
            job.resume()
            job.terminate()
            job.wait_terminated(60)
            print(job.id)
            js.close()
            """
        )
        assert other.returncode == 0, other.stderr
        job_id = other.stdout.strip()
        wait_until(lambda: (job_id, JobState.FAILED) in seen, what="the end of the other's job")
        states = [s for i, s in seen if i == job_id]
        for wanted in (JobState.RUNNING, JobState.SUSPENDED, JobState.FAILED):
            assert wanted in states, states
        assert states.index(JobState.SUSPENDED) < states.index(JobState.FAILED)
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)
        session_cleanup(js)


def test_a_state_directory_named_through_a_link_gets_each_event_once(
    state: Path, tmp_path: Path
) -> None:
    """Sessions opened through two names of one state directory (a symbolic link) share one
    event stream: each change reaches the callback once, in order (it came once per name,
    the two streams interleaved)."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    link = tmp_path / "link"
    link.symlink_to(state)
    other = drmaa2.open_job_session("s", str(link), backend=BACKEND)
    assert (js.contact, other.contact) == (str(state), str(link)), "each as it was named"
    seen: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.job_id, note.job_state)), backend=BACKEND
    )
    try:
        jobs = [js.run_job({"remote_command": "/bin/true"}) for _ in range(3)]
        other.wait_all_terminated(jobs, TIMEOUT)
        other.close()  # what was published while it was open is delivered first
        js.close()
        for job in jobs:
            states = [state for job_id, state in seen if job_id == job.id]
            assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE], states
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)


def test_a_session_made_again_under_its_name_sends_no_event_to_the_old_ones_holder(
    state: Path,
) -> None:
    """Another process destroys a session this one has open and makes a new one under its
    name: the new session's changes are not this process's (it never opened that session;
    its job ids repeat the old one's, so the callback could not tell them apart)."""
    old = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    seen: list[tuple[str, str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.session_name, note.job_id, note.job_state)),
        backend=BACKEND,
    )
    try:
        other = python(
            f"""
            import drmaa2
            drmaa2.destroy_job_session("s", {str(state)!r}, backend="os")
            js = drmaa2.create_job_session("s", {str(state)!r}, backend="os")
            js.run_job({{"remote_command": "/bin/true"}}).wait_terminated(60)
            js.close()
            """
        )
        assert other.returncode == 0, other.stderr
        mine = drmaa2.create_job_session("mine", str(state), backend=BACKEND)
        job = mine.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        mine.close()  # delivered: every change published before this one's end
        assert ("mine", job.id, JobState.DONE) in seen
        assert [entry for entry in seen if entry[0] == "s"] == []
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)
        old.close()
        drmaa2.destroy_job_session("s", str(state), backend=BACKEND)


def test_subscribing_while_jobs_change_never_hangs_the_keeper(state: Path) -> None:
    """Event streams begun and ended (each register_event_notification, each session
    opened) while jobs change state: the keeper's lock and the supervisor's were taken in
    opposite orders, and the keeper hung for good within a few dozen subscriptions."""
    done = python(
        f"""
        import threading, drmaa2
        js = drmaa2.JobSession("s", {str(state)!r}, backend="os")
        stop = threading.Event()
        def submit():
            while not stop.is_set():
                js.run_job({{"remote_command": "/bin/true"}}).wait_terminated(60)
        worker = threading.Thread(target=submit)
        worker.start()
        for n in range(300):
            drmaa2.register_event_notification(lambda note: None, backend="os")
            if n % 10 == 0:
                drmaa2.JobSession("other", {str(state)!r}, backend="os").close()
        stop.set()
        worker.join()
        drmaa2.unregister_event_notification(backend="os")
        print("done", len(js.get_jobs()))
        js.destroy()
        """
    )
    assert done.returncode == 0 and done.stdout.startswith("done"), done.stderr
    assert int(done.stdout.split()[1]) > 0


def test_no_event_is_lost_while_sessions_open_and_callbacks_change(state: Path) -> None:
    """Sessions opened and callbacks replaced (from other threads and from a callback) while
    jobs run: every state change of every job reaches one callback or the next, once. (Each
    opened session and each registration stopped the event stream, then began another:
    changes in between were lost.)"""
    seen: list[tuple[str, JobState]] = []
    lock = threading.Lock()

    def callback(note: drmaa2.Notification) -> None:
        with lock:
            seen.append((note.job_id, note.job_state))

    drmaa2.register_event_notification(callback, backend=BACKEND)
    js = drmaa2.JobSession("a", str(state), backend=BACKEND)
    jobs: list[drmaa2.Job] = []
    try:

        def submit() -> None:
            for _ in range(80):
                jobs.append(js.run_job({"remote_command": "/bin/true"}))

        worker = threading.Thread(target=submit)
        worker.start()
        while worker.is_alive():
            drmaa2.JobSession("b", str(state), backend=BACKEND).close()
            drmaa2.register_event_notification(callback, backend=BACKEND)
        worker.join()
        js.wait_all_terminated(jobs, TIMEOUT)
        wanted = {job.id: [JobState.QUEUED, JobState.RUNNING, JobState.DONE] for job in jobs}
        wait_until(
            lambda: all(
                [s for i, s in seen if i == job_id] == states for job_id, states in wanted.items()
            ),
            what="every change of every job, once",
        )
    finally:
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


def test_concurrent_registrations_leave_one_stream_and_unregister_ends_it(state: Path) -> None:
    """Threads registering callbacks at once: one callback is called, once per change, and
    unregistering ends every stream (each registration left a stream of its own running,
    still calling its callback after unregister)."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    calls: list[str] = []
    try:
        threads = [
            threading.Thread(
                target=drmaa2.register_event_notification,
                args=(lambda note, tag=tag: calls.append(tag),),
                kwargs={"backend": BACKEND},
            )
            for tag in "ABCD"
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        wait_until(lambda: len(calls) >= 3, what="the job's changes to reach a callback")
        assert len(calls) == 3 and len(set(calls)) == 1, calls
        drmaa2.unregister_event_notification(backend=BACKEND)
        calls.clear()
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        wait_until(
            lambda: not [t for t in threading.enumerate() if t.name == "drmaa2-events"],
            what="every event stream to end",
        )
        assert calls == []
    finally:
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


def test_a_forked_child_gets_the_events_of_the_sessions_it_inherited(state: Path) -> None:
    """A process with a callback and an open session forks: the child's jobs' changes reach
    the child's callback (it got none: its client dropped the parent's stream and started
    no other)."""
    done = python(
        f"""
        import os, sys, drmaa2
        seen = []
        drmaa2.register_event_notification(
            lambda note: seen.append((note.job_id, note.job_state.name)), backend="os"
        )
        js = drmaa2.JobSession("s", {str(state)!r}, backend="os")
        child = os.fork()
        if child == 0:
            job = js.run_job({{"remote_command": "/bin/true"}})
            job.wait_terminated(60)
            drmaa2.unregister_event_notification(backend="os")  # delivers what came first
            print(sorted(state for job_id, state in seen if job_id == job.id), flush=True)
            os._exit(0)
        os.waitpid(child, 0)
        drmaa2.unregister_event_notification(backend="os")
        js.destroy()
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['DONE', 'QUEUED', 'RUNNING']", (done.stdout, done.stderr)


def test_every_change_made_while_a_session_was_open_reaches_the_callback(state: Path) -> None:
    # The keeper pushes events on a connection of their own: a session closed right after a
    # wait returned still gets the changes made while it was open, every time.
    seen: list[tuple[str, str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.session_name, note.job_id, note.job_state)),
        backend=BACKEND,
    )
    try:
        for number in range(20):
            name = f"s{number}"
            js = drmaa2.JobSession(name, str(state), destroy_on_exit=True, backend=BACKEND)
            js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
            js.close()
            states = [s for session, _, s in seen if session == name]
            assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE], (number, seen)
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)


def test_array_tasks_are_published_queued_at_submission(state: Path) -> None:
    seen: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.job_id, note.job_state)), backend=BACKEND
    )
    try:
        js = drmaa2.JobSession("s", str(state), backend=BACKEND)
        array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 3, 1, 1)
        held = js.run_bulk_jobs({"remote_command": "/bin/true", "submit_as_hold": True}, 1, 2)
        js.wait_all_terminated(array.job_list, TIMEOUT)
        held.terminate()
        js.close()  # every change made while it was open is delivered first
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)
    for task in array.job_list:
        states = [s for job_id, s in seen if job_id == task.id]
        assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE], (task.id, seen)
    for task in held.job_list:
        states = [s for job_id, s in seen if job_id == task.id]
        assert states == [JobState.QUEUED_HELD, JobState.FAILED], (task.id, seen)


def test_event_notifications_go_on_after_the_keeper_was_killed(state: Path) -> None:
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    seen: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda note: seen.append((note.job_id, note.job_state)), backend=BACKEND
    )
    try:
        first = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        first.wait_started(TIMEOUT)
        wait_until(lambda: (first.id, JobState.RUNNING) in seen, what="the first job's start")
        job_pid = int(first.get_info().implementation_specific["pid"])
        kill_keeper(state)
        # The next call starts a keeper that adopts the running job; the stream subscribes
        # to it again by itself.
        second = js.run_job({"remote_command": "/bin/true"})
        second.wait_terminated(TIMEOUT)
        wait_until(lambda: (second.id, JobState.DONE) in seen, what="the second job's end")
        os.kill(job_pid, signal.SIGTERM)  # the adopted job ends: its end is published too
        first.wait_terminated(TIMEOUT)
        wait_until(lambda: (first.id, JobState.FAILED) in seen, what="the adopted job's end")
    finally:
        drmaa2.register_event_notification(None, backend=BACKEND)
        session_cleanup(js)


def test_what_a_new_keepers_recovery_changes_reaches_the_callback(state: Path) -> None:
    """The keeper killed while an array runs: the tasks that end while no keeper runs (their
    ends kept by its anchor) and those the next keeper starts while it recovers, before the
    event stream could follow it, reach the callback too: every task's changes, once each,
    in order. (Four tasks' changes were lost each time.)"""
    seen: dict[str, list[JobState]] = collections.defaultdict(list)
    drmaa2.register_event_notification(
        lambda note: seen[note.job_id].append(note.job_state), backend=BACKEND
    )
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        array = js.run_bulk_jobs(
            {"remote_command": "/bin/sleep", "args": ["0.05"]}, 1, 40, max_parallel=2
        )
        wait_until(
            lambda: sum(JobState.DONE in states for states in list(seen.values())) >= 6,
            what="some tasks to end",
        )
        kill_keeper(state)
        js.wait_all_terminated(array.job_list, TIMEOUT)
        wanted = [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
        wait_until(
            lambda: all(seen[task.id] == wanted for task in array.job_list),
            what="every task's changes",
        )
    finally:
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


def test_the_end_of_the_last_job_recovered_reaches_a_callback_that_follows(
    state: Path, tmp_path: Path
) -> None:
    """The keeper killed while a client with a callback is stopped, and the client's only
    job ends while no keeper runs: the next keeper records its end as it recovers, before
    the client's stream follows it, and the end reaches the callback all the same (it was
    dropped with the replay, nothing being left unfinished)."""
    go = tmp_path / "go"
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, drmaa2
                seen = []
                drmaa2.register_event_notification(
                    lambda n: seen.append(n.job_state.name), backend="os"
                )
                js = drmaa2.create_job_session("s", {str(state)!r}, backend="os")
                job = js.run_job({{"remote_command": "/bin/sh",
                                  "args": ["-c", "while [ ! -e {go} ]; do sleep 0.01; done"]}})
                job.wait_started(60)
                print("ready", flush=True)
                sys.stdin.readline()
                job.wait_terminated(60)
                drmaa2.unregister_event_notification(backend="os")  # delivers what came
                print(seen, flush=True)
                js.destroy()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None and client.stdin is not None
        assert client.stdout.readline().strip() == "ready"
        os.kill(client.pid, signal.SIGSTOP)
        kill_keeper(state)
        go.touch()  # the job ends while no keeper runs: its anchor keeps the end
        wait_until(
            lambda: any(
                not found.name.startswith(("anchor.", "."))
                for found in (state / "orphans").iterdir()
            ),
            what="the anchor to keep the end",
        )
        os.kill(client.pid, signal.SIGCONT)
        out, _ = client.communicate("\n", timeout=TIMEOUT)
    finally:
        if client.poll() is None:
            client.kill()  # (SIGKILL ends a stopped process too)
            client.wait()
    assert out.strip() == "['QUEUED', 'RUNNING', 'DONE']", out


@pytest.mark.parametrize(
    "child",
    [
        "sys.exit(0)",  # its copy of the object is collected
        "js.close(); os._exit(0)",
        "exec('with js: pass'); os._exit(0)",  # leaving the with block
    ],
)
def test_a_forked_child_that_exits_leaves_the_parents_unnamed_session(
    state: Path, child: str
) -> None:
    """A copy of an unnamed session's object in a forked child only closes the session,
    however it ends (its close() and its with block destroyed it: the parent's next call
    raised InvalidSessionException)."""
    result = python(
        f"""
        import os, sys, drmaa2
        state = {str(state)!r}
        js = drmaa2.JobSession(None, state, backend="os")  # destroyed when closed
        pid = os.fork()
        if pid == 0:
            {child}
        os.waitpid(pid, 0)
        print(js.name in drmaa2.get_job_session_names(state, backend="os"))
        js.run_job({{"remote_command": "/bin/true"}}).wait_terminated(60)
        print(js.name)
        """
    )  # then the process that made it ends, and destroys it
    assert result.returncode == 0, result.stderr
    kept, name = result.stdout.split()
    assert kept == "True"
    assert name not in drmaa2.get_job_session_names(str(state), backend=BACKEND)


def test_close_passes_after_destroy_found_the_session_made_again(state: Path) -> None:
    """An object of a session another process destroyed and made again: its destroy()
    raises and destroys nothing, and its close() then passes (a script's clean-up runs; it
    raised "is closed")."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    done = python(
        f"""
        import drmaa2
        drmaa2.destroy_job_session("s", {str(state)!r}, backend="os")
        drmaa2.create_job_session("s", {str(state)!r}, backend="os").close()
        """
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(drmaa2.InvalidSessionException):
        js.destroy()
    js.close()
    with pytest.raises(drmaa2.InvalidSessionException, match="closed"):
        js.close()  # a second close() raises, as any
    assert drmaa2.get_job_session_names(str(state), backend=BACKEND) == ["s"], "the new one"
    with pytest.raises(drmaa2.InvalidSessionException):
        js.run_job({"remote_command": "/bin/true"})
    drmaa2.destroy_job_session("s", str(state), backend=BACKEND)


def control(state: Path, job_id: str, action: str) -> None:
    """Suspend, resume, hold, release or terminate a job from another client process."""
    done = python(
        f"""
        import drmaa2
        js = drmaa2.open_job_session("s", {str(state)!r}, backend="os")
        (job,) = [j for j in js.get_jobs() if j.id == {job_id!r}]
        job.{action}()
        js.close()
        """
    )
    assert done.returncode == 0, done.stderr


def test_control_from_another_process(state: Path, tmp_path: Path) -> None:
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        sleeper = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        held = js.run_job(
            {
                "remote_command": "/bin/sh",
                "args": ["-c", f"touch {tmp_path / 'released'}"],
                "submit_as_hold": True,
            }
        )
        queued = js.run_job(
            {
                "remote_command": "/bin/true",
                "start_time": "2999-01-01T00:00:00+00:00",
            }
        )
        sleeper.wait_started(TIMEOUT)
        pid = pid_of(sleeper)
        control(state, sleeper.id, "suspend")
        assert sleeper.get_state()[0] is JobState.SUSPENDED
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        control(state, sleeper.id, "resume")
        assert sleeper.get_state()[0] is JobState.RUNNING
        assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
        control(state, queued.id, "hold")
        assert queued.get_state()[0] is JobState.QUEUED_HELD
        control(state, held.id, "release")
        held.wait_terminated(TIMEOUT)
        assert held.get_state()[0] is JobState.DONE
        assert (tmp_path / "released").exists()
        control(state, sleeper.id, "terminate")
        sleeper.wait_terminated(TIMEOUT)
        info = sleeper.get_info()
        assert (info.job_state, info.terminating_signal) == (JobState.FAILED, "SIGKILL")
        control(state, queued.id, "terminate")
        assert queued.get_state()[0] is JobState.FAILED
    finally:
        session_cleanup(js)


# -- safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o720])
def test_a_state_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "open"
    state.mkdir()
    state.chmod(mode)
    named = f"{state}.*{mode:04o}"
    calls = [
        lambda: drmaa2.create_job_session("s", str(state), backend=BACKEND),
        lambda: drmaa2.open_job_session("s", str(state), backend=BACKEND),
        lambda: drmaa2.get_job_session_names(str(state), backend=BACKEND),
        lambda: drmaa2.destroy_job_session("s", str(state), backend=BACKEND),
    ]
    for call in calls:
        with pytest.raises(drmaa2.SessionManagementException, match=named):
            call()
    assert list(state.iterdir()) == [], "nothing is created in it"
    assert not keepers_of(state)


def test_a_state_directory_made_writable_later_is_refused(state: Path) -> None:
    drmaa2.create_job_session("s", str(state), backend=BACKEND).close()
    state.chmod(0o777)
    try:
        done = python(f"import drmaa2; drmaa2.open_job_session('s', {str(state)!r}, backend='os')")
        assert done.returncode != 0
        assert "SessionManagementException" in done.stderr
        assert str(state) in done.stderr and "0777" in done.stderr
    finally:
        state.chmod(0o700)


def calls_refused(js: drmaa2.JobSession) -> bool:
    """Whether the session's calls are refused as unsafe (SessionManagementException)."""
    try:
        js.get_jobs()
    except drmaa2.SessionManagementException:
        return True
    return False


def test_a_state_directory_others_could_replace_is_refused(tmp_path: Path) -> None:
    """A directory above the state directory that others may write to (and is not sticky)
    would let them rename the state directory away and put one of theirs in its place
    between a check and an open: their store read, their jobs run as this user. It is
    refused, naming it and its mode (as ssh refuses such a directory above a key), by a new
    process and by the keeper already running alike; a sticky one (as /tmp) is safe, and so
    is one only its group may write to where that group is this user's alone (umask 002 with
    a group of one's own, as Debian's ssh allows)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o700)
    os.chown(shared, -1, 65534)  # a group not this user's own (nogroup)
    state = shared / "state"
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    opening = f"import drmaa2; drmaa2.open_job_session('s', {str(state)!r}, backend='os')"
    refused = functools.partial(calls_refused, js)
    try:
        for mode in (0o777, 0o775, 0o757):
            shared.chmod(mode)
            done = python(opening)
            assert done.returncode != 0
            assert "SessionManagementException" in done.stderr
            assert f"{shared} above the state directory {state} has mode {mode:04o}" in (
                done.stderr
            )
            wait_until(refused, what="the running keeper to refuse calls")
            # A new state directory there is refused before anything is made.
            fresh = shared / "new" / "state"
            done = python(f"import drmaa2; drmaa2.create_job_session('s', {str(fresh)!r})")
            assert f"{shared} above the state directory {fresh} has mode" in done.stderr
            assert not (shared / "new").exists()
        shared.chmod(0o1777)
        # (The running keeper looks again within a quarter of a second.)
        wait_until(lambda: not refused(), what="calls to work again")
        done = python(opening)
        assert done.returncode == 0, done.stderr
        own_group = grp.getgrgid(os.getegid())
        if own_group.gr_mem in ([], [pwd.getpwuid(os.geteuid()).pw_name]):
            os.chown(shared, -1, os.getegid())
            shared.chmod(0o775)
            done = python(opening)
            assert done.returncode == 0, done.stderr
            time.sleep(0.5)  # (two of the keeper's looks: it must not refuse meanwhile)
            assert not refused()
    finally:
        shared.chmod(0o700)
        session_cleanup(js)


def test_a_directory_above_that_vanishes_while_looked_at_is_not_taken_for_safe(
    tmp_path: Path,
) -> None:
    """The walk up from the state directory stopped, taking the path for safe, at a directory
    that could not be looked at: another user who may write above it renames it away for an
    instant, and the unsafe directory above is never seen (the keeper then used a directory
    of theirs swapped in). The walk's view of such an instant: refused."""
    from drmaa2_ostracker.keeper import files

    shared = tmp_path / "shared"
    mine = shared / "mine"
    state = mine / "state"
    state.mkdir(parents=True, mode=0o700)
    shared.chmod(0o777)
    try:
        assert "has mode 0777" in (files._unsafe_above(str(state), str(state)) or "")
        mine.rename(shared / "away")  # the instant another user could have used
        assert "changed while it was looked at" in (
            files._unsafe_above(str(state), str(state)) or ""
        )
    finally:
        shared.chmod(0o700)


def test_a_state_directory_below_another_users_directory_is_refused(tmp_path: Path) -> None:
    """Another user's directory above the state directory is theirs to rename entries in,
    sticky or not: refused, naming it and its owner."""
    with other_user() as user:
        shared = tmp_path / "theirs"
        shared.mkdir(mode=0o755)
        state = shared / "state"
        state.mkdir(mode=0o700)
        os.chown(shared, user.pw_uid, user.pw_gid)
        with pytest.raises(drmaa2.SessionManagementException) as refused:
            drmaa2.create_job_session("s", str(state), backend=BACKEND)
        assert f"{shared} above the state directory {state} belongs to user id {user.pw_uid}" in (
            str(refused.value)
        )
        assert list(state.iterdir()) == [] and not keepers_of(state)


def test_directories_made_above_the_state_directory_are_private(tmp_path: Path) -> None:
    """The missing directories above a new state directory are made 0700 as it is
    (os.makedirs gives them the umask's mode: group-writable under umask 002, refused as
    above)."""
    state = tmp_path / "a" / "b" / "state"
    old = os.umask(0o002)
    try:
        drmaa2.create_job_session("s", str(state), backend=BACKEND).close()
    finally:
        os.umask(old)
    for made in (tmp_path / "a", tmp_path / "a" / "b", state):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made


def test_a_state_directory_made_writable_while_in_use_is_refused_until_made_private(
    state: Path,
) -> None:
    """A process that uses the state directory when others are given write access to it is
    refused from then on too, every call (the keeper looks at the directory every quarter of
    a second; before, only a process that connected afterwards was); its jobs go on, and the
    calls work again once the directory is private again."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        job = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
        job.wait_started(TIMEOUT)
        state.chmod(0o777)
        named = f"{state}.*0777"
        refused = functools.partial(calls_refused, js)
        try:
            wait_until(refused, what="calls to be refused")
            for call in [
                lambda: js.run_job({"remote_command": "/bin/true"}),
                job.get_state,
                lambda: drmaa2.get_job_session_names(str(state), backend=BACKEND),
                lambda: drmaa2.open_job_session("s", str(state), backend=BACKEND),
            ]:
                with pytest.raises(drmaa2.SessionManagementException, match=named):
                    call()
        finally:
            state.chmod(0o700)
        wait_until(lambda: not refused(), what="calls to work again")
        assert job.get_state() == (JobState.RUNNING, "")
        assert [j.id for j in js.get_jobs()] == [job.id], "nothing was submitted meanwhile"
        job.terminate()
    finally:
        session_cleanup(js)


def test_the_socket_is_private(state: Path) -> None:
    drmaa2.create_job_session("s", str(state), backend=BACKEND).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    found = (state / "keeper.sock").lstat()
    assert stat.S_ISSOCK(found.st_mode)
    assert stat.S_IMODE(found.st_mode) == 0o600
    assert found.st_uid == os.geteuid()


@pytest.mark.parametrize(
    "name", ["keeper.log", "keeper-start.lock", "keeper.lock", "store.sqlite3"]
)
def test_a_planted_symlink_is_refused_and_its_target_untouched(tmp_path: Path, name: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_bytes(b"")  # empty: what a store or a log would write to
    target.chmod(0o644)
    (state / name).symlink_to(target)
    with pytest.raises(drmaa2.SessionManagementException, match=name):
        drmaa2.create_job_session("s", str(state), backend=BACKEND)
    assert target.read_bytes() == b""
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert (state / name).is_symlink()
    wait_until(lambda: not keepers_of(state), what="the keeper not to serve")


@contextlib.contextmanager
def other_user() -> Iterator[pwd.struct_passwd]:
    """A second local user, created for the test and deleted after it."""
    if os.geteuid() != 0:
        pytest.skip("creating a second local user needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    name = f"drmaa2-test-{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=True, capture_output=True)


def python_for(user: pwd.struct_passwd) -> str:
    """A Python interpreter the user may run (this one may live in root's home)."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate is None:
            continue
        with contextlib.suppress(OSError):
            subprocess.run(
                [candidate, "-I", "-c", "pass"],
                check=True,
                capture_output=True,
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                cwd="/",
                timeout=TIMEOUT,
            )
            return candidate
    pytest.skip("no Python interpreter here may be run by a second user")


_INTRUDER = """
import marshal, socket, struct, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
except OSError as error:
    print("refused", type(error).__name__)
    sys.exit()
payload = marshal.dumps(("hello", (sys.argv[2], int(sys.argv[3]), sys.argv[4])), 4)
try:
    sock.sendall(struct.pack("<I", len(payload)) + payload)
    sock.settimeout(60)
    answer = sock.recv(65536)
except OSError as error:
    print("closed", type(error).__name__)
    sys.exit()
print("closed" if not answer else "answered " + repr(answer))
"""


def test_another_user_cannot_talk_to_the_keeper() -> None:
    with other_user() as user:
        # Reachable by the other user (not through pytest's private base directory).
        state = Path(tempfile.mkdtemp(prefix="drmaa2-peer-")) / "state"
        state.parent.chmod(0o711)
        js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
        try:
            socket_path = str(state / "keeper.sock")

            versions = [str(PROTOCOL), __version__]
            interpreter = python_for(user)

            def intrude() -> str:
                done = subprocess.run(
                    [interpreter, "-I", "-c", _INTRUDER, socket_path, MAGIC, *versions],
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT,
                    user=user.pw_uid,
                    group=user.pw_gid,
                    extra_groups=[],
                    cwd="/",
                )
                assert done.returncode == 0, done.stderr
                return done.stdout.strip()

            assert intrude().startswith("refused"), "the state directory is 0700"
            # Even with the directory and the socket opened to everybody, the keeper checks
            # the peer's uid and closes the connection without an answer.
            state.chmod(0o711)
            (state / "keeper.sock").chmod(0o666)
            assert intrude().startswith("closed"), "closed without an answer"
            state.chmod(0o700)
            (state / "keeper.sock").chmod(0o600)
            job = js.run_job({"remote_command": "/bin/true"})
            job.wait_terminated(TIMEOUT)
            assert job.get_state()[0] is JobState.DONE, "the keeper still serves its user"
            assert "refused a connection of user id" in file_text(state / "keeper.log")
        finally:
            state.chmod(0o700)
            js.close()
            stop_keeper(state)
            shutil.rmtree(state.parent)


# -- versions ----------------------------------------------------------------------------


def hello(state: Path, protocol: int, version: str) -> tuple[bool, object]:
    """Say hello to the keeper over a raw socket; its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(state / "keeper.sock"))
        payload = marshal.dumps(("hello", (MAGIC, protocol, version)), 4)
        sock.sendall(struct.pack("<I", len(payload)) + payload)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "the keeper closed the connection without an answer"
            data += chunk
    ok, value = marshal.loads(data[4:])
    return ok, value


@pytest.mark.parametrize("other", ["version", "protocol"])
def test_a_client_of_another_version_gets_a_clear_answer(state: Path, other: str) -> None:
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        first = js.run_job({"remote_command": "/bin/true"})
        first.wait_terminated(TIMEOUT)
        ok, value = hello(state, PROTOCOL, __version__)
        assert ok and value[1] == __version__  # type: ignore[index]
        if other == "version":
            ok, value = hello(state, PROTOCOL, "0.0.0-another")
        else:
            ok, value = hello(state, PROTOCOL + 1, __version__)
        assert not ok
        kind, message = value  # type: ignore[misc]
        assert kind == "SessionManagementException"
        assert __version__ in message and str(state) in message
        assert f"protocol {PROTOCOL}" in message  # the same package version may differ so
        if other == "protocol":
            assert f"protocol {PROTOCOL + 1}" in message
        # The session open here goes on working, whatever the keeper does about the other.
        second = js.run_job({"remote_command": "/bin/true"})
        second.wait_terminated(TIMEOUT)
        assert second.get_state()[0] is JobState.DONE
        assert int(second.id) == int(first.id) + 1
    finally:
        session_cleanup(js)


def test_a_keeper_of_another_version_with_a_held_job_says_how_to_make_it_hand_over(
    state: Path,
) -> None:
    """A held job never ends by itself, so an old keeper holding one would never hand over to
    a client of another version: its answer says how to make it (``kill PID``), and doing so
    loses nothing: the next keeper has the held job, still held."""
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    try:
        held = js.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
        ok, value = hello(state, PROTOCOL + 1, __version__)
        assert not ok
        _, message = value  # type: ignore[misc]
        pid = keeper_pid(state)
        assert "1 unfinished job(s)" in message and f"kill {pid}" in message, message
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not psutil.pid_exists(pid), what="the old keeper to exit")
        assert held.get_state()[0] is JobState.QUEUED_HELD
        assert keeper_pid(state) != pid
        held.release()
        held.wait_terminated(TIMEOUT)
        assert held.get_state()[0] is JobState.DONE
    finally:
        session_cleanup(js)


# -- the command line as a plain client ----------------------------------------------------


def cli(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``drmaa2 ARGS`` with the state directory as default contact."""
    done = subprocess.run(
        [sys.executable, "-m", "drmaa2", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        env={**os.environ, "DRMAA2_OS_STATE_DIR": str(state), "DRMAA2_BACKEND": "os", **env},
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def cli_keepers(state: Path) -> list[psutil.Process]:
    """The CLI's own keeper processes (the old design, python -m drmaa2.cli __keeper__) that
    serve this state directory."""
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        cmdline = process.info["cmdline"] or []
        environ = process.info["environ"] or {}
        if "__keeper__" in cmdline and environ.get("DRMAA2_OS_STATE_DIR") == str(state):
            found.append(process)
    return found


@pytest.fixture
def cli_state(state: Path) -> Iterator[Path]:
    yield state
    for process in cli_keepers(state):  # stopped by pid; the test fails on them anyway
        with contextlib.suppress(psutil.Error):
            process.kill()
    if (state / "store.sqlite3").exists():
        for name in drmaa2.get_job_session_names(str(state), backend=BACKEND):
            session_cleanup(drmaa2.open_job_session(name, str(state), backend=BACKEND))


def test_cli_listings_start_no_job_and_the_keeper_runs_the_array(cli_state: Path) -> None:
    state = cli_state
    assert cli(state, "run", "-a", "1-6", "--max-parallel", "2", "--", "sleep", "1").stdout == (
        "1\n"
    )
    assert not cli_keepers(state), "the CLI has no keeper of its own"
    wait_until(
        lambda: (
            sum(
                j["job_state"] == "RUNNING" for j in json.loads(cli(state, "jobs", "--json").stdout)
            )
            == 2
        ),
        what="two tasks to run",
    )
    orphans = [
        int(j["implementation_specific"]["pid"])
        for j in json.loads(cli(state, "jobs", "--json").stdout)
        if j["job_state"] == "RUNNING"
    ]
    anchor = psutil.Process(keeper_pid(state)).ppid()  # the running tasks' parent once
    old = kill_keeper(state)  # the keeper is gone (see test_persistence)
    cli(state, "jobs")  # a listing starts a new keeper, which adopts and goes on
    try:
        new = keeper_pid(state)
        assert new != old
        seen_running: set[str] = set()

        def finished() -> bool:
            jobs = json.loads(cli(state, "jobs", "--json").stdout)
            for job in jobs:
                if job["job_state"] == "RUNNING":
                    seen_running.add(job["job_id"])
                    pid = int(job["implementation_specific"]["pid"])
                    with contextlib.suppress(psutil.NoSuchProcess):
                        parent = psutil.Process(pid).ppid()
                        assert parent in (new, anchor), "only the keeper starts tasks"
            return all(job["job_state"] in ("DONE", "FAILED") for job in jobs)

        wait_until(finished, what="the array to end")
        jobs = json.loads(cli(state, "jobs", "--json").stdout)
        done = [j for j in jobs if j["job_state"] == "DONE"]
        # The two tasks running when the keeper was killed too: their anchor kept their ends.
        assert len(done) == 6, jobs
        assert all(j["exit_status"] == 0 for j in done)
        for job in done:
            wallclock = drmaa2.JobInfo.from_dict(job).wallclock_time
            assert wallclock is not None and wallclock.total_seconds() < 5, job
        assert keeper_pid(state) == new
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_cli_job_ids_have_no_gaps(cli_state: Path) -> None:
    state = cli_state
    ids = [cli(state, "run", "--", "true").stdout.strip() for _ in range(3)]
    ids.append(cli(state, "run", "-a", "1-2", "--", "true").stdout.strip())
    ids += [cli(state, "run", "--", "true").stdout.strip() for _ in range(2)]
    assert ids == ["1", "2", "3", "4", "5", "6"]


def test_cli_destroy_with_queued_and_held_jobs_lets_the_keeper_exit(cli_state: Path) -> None:
    state = cli_state
    idle = {IDLE: "0.5"}
    cli(state, "run", "--hold", "--", "true", **idle)
    cli(state, "run", "--hold", "-a", "1-3", "--", "true", **idle)
    pid = keeper_pid(state)
    cli(state, "destroy", "default", **idle)
    wait_until(lambda: gone(pid), what="the keeper to exit after destroy")
    wait_until(lambda: not cli_keepers(state), what="no CLI keeper to stay")
    assert "default" not in cli(state, "sessions", **idle).stdout.split()


def test_a_callback_registering_while_another_thread_unregisters_waits_for_nothing(
    state: Path,
) -> None:
    """A callback that registers a callback while another thread unregisters: both calls
    return at once (the unregistering thread held the subscription lock while it waited for
    the delivering thread, which waited for that lock: both hung for 30 s)."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    entered, go, done = threading.Event(), threading.Event(), threading.Event()

    def callback(note: drmaa2.Notification) -> None:
        if entered.is_set():
            return
        entered.set()
        go.wait(TIMEOUT)
        drmaa2.register_event_notification(lambda note: None, backend=BACKEND)
        done.set()

    drmaa2.register_event_notification(callback, backend=BACKEND)
    try:
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        assert entered.wait(TIMEOUT)
        started = time.monotonic()
        unregistering = _unregistering_in_a_thread()
        go.set()
        assert done.wait(TIMEOUT)
        unregistering.join(TIMEOUT)
        assert not unregistering.is_alive()
        assert time.monotonic() - started < 10, "a registration waited for the other"
    finally:
        go.set()
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


def _unregistering_in_a_thread() -> threading.Thread:
    """A thread that unregisters the callback, once it waits for the stream's end (the
    delivering thread, which may be in a callback)."""
    unregistering = threading.Thread(
        target=drmaa2.unregister_event_notification, kwargs={"backend": BACKEND}
    )
    unregistering.start()
    wait_until(
        lambda: "join" in _calls_of(unregistering) or not unregistering.is_alive(),
        what="the unregistering thread to wait for the stream's end",
    )
    return unregistering


def _calls_of(thread: threading.Thread) -> list[str]:
    """The names of the functions a thread is in, innermost first."""
    frame = sys._current_frames().get(thread.ident or 0)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_an_idle_keeper_of_another_version_hands_over_without_an_error(
    state: Path, tmp_path: Path
) -> None:
    """A keeper of another version (a copy of the package with another version number)
    that has no unfinished job: the first call of this version waits for it to exit and
    starts its own, and sees what the old one recorded (the call failed with "it is handing
    over now; try again", though there was nothing to do)."""
    old = tmp_path / "old"
    for package in ("drmaa2", "drmaa2_ostracker"):
        source = Path(__file__).resolve().parents[2] / package
        shutil.copytree(source, old / package, ignore=shutil.ignore_patterns("__pycache__"))
    init = old / "drmaa2_ostracker" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', '"0.0.1-old"'))
    script = textwrap.dedent(
        f"""
        import drmaa2, drmaa2_ostracker
        assert drmaa2_ostracker.__version__ == "0.0.1-old", drmaa2_ostracker.__file__
        js = drmaa2.create_job_session("v", {str(state)!r}, backend="os")
        js.run_job({{"remote_command": "/bin/true"}}).wait_terminated(60)
        js.close()
        print(open({str(state / "keeper.lock")!r}).read().split()[0])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(old), "DRMAA2_OS_KEEPER_IDLE": "120"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    old_keeper = int(done.stdout.split()[0])
    assert psutil.pid_exists(old_keeper)
    try:
        js = drmaa2.open_job_session("v", str(state), backend=BACKEND)
        try:
            (job,) = js.get_jobs()
            assert job.get_state()[0] is JobState.DONE
            assert keeper_pid(state) != old_keeper
            wait_until(lambda: not psutil.pid_exists(old_keeper), what="the old keeper gone")
        finally:
            session_cleanup(js)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old_keeper, signal.SIGKILL)


def test_a_callback_registered_while_the_last_is_still_delivering_waits_its_turn(
    state: Path,
) -> None:
    """A callback registered while the stream an unregister stopped still delivers what was
    published before: it is called once that is done, never at the same time, and a job's
    changes reach it in order (they came as DONE, QUEUED, RUNNING, two callbacks at once)."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    seen: list[tuple[str, JobState]] = []
    running = [0, 0]  # now, most at once
    lock = threading.Lock()

    def slow(note: drmaa2.Notification) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            seen.append((note.job_id, note.job_state))

    drmaa2.register_event_notification(slow, backend=BACKEND)
    try:
        for _ in range(10):
            js.run_job({"remote_command": "/bin/true"})
        job = js.run_job({"remote_command": "/bin/sleep", "args": ["0.5"]})
        unregistering = _unregistering_in_a_thread()
        drmaa2.register_event_notification(slow, backend=BACKEND)
        job.wait_terminated(TIMEOUT)
        unregistering.join(TIMEOUT)
        wait_until(
            lambda: (job.id, JobState.DONE) in seen, what="the job's end to reach the callback"
        )
        states = [state_ for id_, state_ in seen if id_ == job.id]
        order = [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
        assert states == [s for s in order if s in states], states
        assert running[1] == 1, "a callback ran in two threads at once"
    finally:
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


def test_the_wait_for_a_handing_over_keeper_takes_any_descriptor_number() -> None:
    """The client waits for an old keeper's exit on a pidfd: with more than 1024 descriptors
    open it raised ValueError (select() takes none above FD_SETSIZE)."""
    from drmaa2_ostracker.keeper.connecting import _wait_gone

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted + 64), hard))
    opened = []
    try:
        while len(opened) < wanted:
            opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        child = subprocess.Popen(["/bin/sleep", "0.2"])
        try:
            assert _wait_gone(child.pid, TIMEOUT)
        finally:
            child.wait()
        assert not _wait_gone(os.getpid(), 0.05)
        assert not _wait_gone(0, 5)  # a keeper in another pid namespace: no wait
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_callback_that_swaps_callbacks_and_closes_a_session_waits_for_nothing(
    state: Path,
) -> None:
    """A callback that unregisters, registers another and closes a session (which waits for
    the events published before to be delivered): it returns at once (the new stream waited
    for the callback's thread before delivering, and the close waited 30 s for the new
    stream)."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    other = drmaa2.JobSession("o", str(state), backend=BACKEND)
    took: list[float] = []
    seen: list[tuple[str, JobState]] = []

    def second(note: drmaa2.Notification) -> None:
        seen.append((note.job_id, note.job_state))

    def first(note: drmaa2.Notification) -> None:
        if took:
            return
        started = time.monotonic()
        drmaa2.unregister_event_notification(backend=BACKEND)
        drmaa2.register_event_notification(second, backend=BACKEND)
        other.close()
        took.append(time.monotonic() - started)

    drmaa2.register_event_notification(first, backend=BACKEND)
    try:
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        wait_until(lambda: bool(took), what="the callback to return")
        assert took[0] < 10, took
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        wait_until(lambda: (job.id, JobState.DONE) in seen, what="the next job's end")
    finally:
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)


@pytest.mark.parametrize("call", ["unregister", "close"])
def test_a_callback_of_a_stopped_stream_does_not_wait_for_the_stream_after_it(
    state: Path, call: str
) -> None:
    """Another thread unregisters (its stream's callback still runs) and registers a second
    callback; then the first callback unregisters, or closes a session: it returns at once,
    and the second callback gets the changes published after it was registered (both calls
    waited 30 s for the new stream, which waited for the callback; the unregister then cut
    the new stream's events)."""
    js = drmaa2.JobSession("s", str(state), backend=BACKEND)
    other = drmaa2.JobSession("o", str(state), backend=BACKEND)
    entered, go = threading.Event(), threading.Event()
    took: list[float] = []
    seen: list[tuple[str, JobState]] = []

    def first(note: drmaa2.Notification) -> None:
        if entered.is_set():
            return
        entered.set()
        go.wait(TIMEOUT)
        started = time.monotonic()
        if call == "unregister":
            drmaa2.unregister_event_notification(backend=BACKEND)
        else:
            other.close()
        took.append(time.monotonic() - started)

    def second(note: drmaa2.Notification) -> None:
        seen.append((note.job_id, note.job_state))

    drmaa2.register_event_notification(first, backend=BACKEND)
    try:
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        assert entered.wait(TIMEOUT)
        unregistering = _unregistering_in_a_thread()
        drmaa2.register_event_notification(second, backend=BACKEND)
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        go.set()
        wait_until(lambda: bool(took), what="the first callback's call to return")
        assert took[0] < 10, took
        unregistering.join(TIMEOUT)
        # Published before the callback's call: delivered, whatever the call was (an
        # unregister there ends the second callback's stream, after what came before).
        wait_until(lambda: (job.id, JobState.DONE) in seen, what="the job's end")
    finally:
        go.set()
        drmaa2.unregister_event_notification(backend=BACKEND)
        session_cleanup(js)
