"""/dev/stdin, /dev/stdout and /dev/stderr in a template are the submitting process's own
streams, also for jobs that start after the keeper holding those streams was killed: the next
keeper opens them again (through the submitting process while it has them, or a regular
file by its path), and a job whose stream is gone for good fails saying so; it never gets the
keeper's own streams (see drmaa2_ostracker/process/origins.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until
from tests.os.test_persistence import kill_keeper, stop_keeper


def _client(state: Path, body: str, **streams: object) -> subprocess.Popen[str]:
    code = f"import drmaa2\njs = drmaa2.JobSession('s', {str(state)!r})\n{body}"
    return subprocess.Popen([sys.executable, "-c", code], text=True, **streams)  # type: ignore[call-overload]


def wait_until_text(path: Path, text: str) -> None:
    wait_until(lambda: text in file_text(path), what=f"{text!r} in {path}")


def _released_and_ended(js: drmaa2.JobSession) -> list[drmaa2.Job]:
    jobs = js.get_jobs()
    for job in jobs:
        job.release()
    js.wait_all_terminated(jobs, TIMEOUT)
    return jobs


def _open(state: Path) -> drmaa2.JobSession:
    return drmaa2.open_job_session("s", str(state), backend="os")


def test_files_of_a_client_that_exited_are_opened_again_by_the_next_keeper(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    (tmp_path / "in").write_text("line-in\n")
    body = (
        "held = {'remote_command': '/bin/sh', 'submit_as_hold': True}\n"
        "js.run_bulk_jobs({**held, 'args': ['-c', 'read l; echo T$TASK_ID:$l; echo E$TASK_ID >&2'],"
        " 'input_path': '/dev/stdin', 'output_path': '/dev/stdout', 'error_path': '/dev/stderr'},"
        " 1, 3, 1, 1)\n"
        "js.run_job({**held, 'args': ['-c', 'echo single'], 'output_path': '/dev/stdout'})\n"
        "js.close()\n"
    )
    with (
        open(tmp_path / "in") as stdin,
        open(tmp_path / "out", "w") as stdout,
        open(tmp_path / "err", "w") as stderr,
    ):
        client = _client(state, body, stdin=stdin, stdout=stdout, stderr=stderr)
        assert client.wait(TIMEOUT) == 0
    try:
        kill_keeper(state)  # it held the client's streams for the held jobs
        js = _open(state)
        jobs = _released_and_ended(js)
        assert [job.get_state()[0] for job in jobs] == [JobState.DONE] * 4
        out = (tmp_path / "out").read_text().split()
        assert sorted(out) == ["T1:line-in", "T2:line-in", "T3:line-in", "single"]
        assert sorted((tmp_path / "err").read_text().split()) == ["E1", "E2", "E3"]
        log = (state / "keeper.log").read_text()
        assert "single" not in log and "E1" not in log
        js.close()
    finally:
        stop_keeper(state)


def test_a_pipe_of_a_client_still_running_reaches_the_jobs_of_the_next_keeper(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    body = (
        "import sys\n"
        "job = js.run_job({'remote_command': '/bin/echo', 'args': ['through-the-pipe'], "
        "'output_path': '/dev/stdout', 'submit_as_hold': True})\n"
        "print('submitted', flush=True)\n"
        f"job.wait_terminated({TIMEOUT})\n"
        "print('client', job.get_state()[0].name, flush=True)\n"
        "js.close()\n"
    )
    client = _client(state, body, stdout=subprocess.PIPE)
    assert client.stdout is not None
    try:
        assert client.stdout.readline() == "submitted\n"
        kill_keeper(state)
        with _open(state) as js:
            _released_and_ended(js)
        assert client.wait(TIMEOUT) == 0
        assert client.stdout.read().split() == ["through-the-pipe", "client", "DONE"]
    finally:
        client.kill()
        client.wait()
        client.stdout.close()
        stop_keeper(state)


def test_a_stream_gone_for_good_fails_the_job_naming_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    body = (
        "js.run_job({'remote_command': '/bin/echo', 'args': ['lost-output'], "
        "'output_path': '/dev/stdout', 'submit_as_hold': True})\n"
        "js.close()\n"
    )
    client = _client(state, body, stdout=subprocess.PIPE)
    assert client.stdout is not None
    try:
        assert client.wait(TIMEOUT) == 0
        kill_keeper(state)  # the pipe's last writer: the client exited
        with _open(state) as js:
            (job,) = _released_and_ended(js)
            info = job.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
        assert info.annotation is not None
        assert "output_path /dev/stdout: the submitting process's stdout (pipe:[" in (
            info.annotation
        )
        assert client.stdout.read() == ""  # the pipe ended: nothing went anywhere else
        assert "lost-output" not in (state / "keeper.log").read_text()
    finally:
        client.stdout.close()
        stop_keeper(state)


def test_a_closed_stream_of_the_submitter_is_refused_naming_the_field(tmp_path: Path) -> None:
    """A process with its stdin closed: its connections to the keeper never take the place
    of its stdin (a job given "/dev/stdin" got the socket), and "/dev/stdin" is refused."""
    code = (
        "import os, drmaa2\n"
        f"js = drmaa2.JobSession('s', {str(tmp_path / 'state')!r})\n"
        "print(os.path.exists('/proc/self/fd/0'))\n"
        "try:\n"
        "    js.run_job({'remote_command': '/bin/cat', 'input_path': '/dev/stdin'})\n"
        "except drmaa2.InvalidArgumentException as error:\n"
        "    print(error)\n"
        "job = js.run_job({'remote_command': '/bin/echo', 'args': ['x'], "
        "'output_path': '/dev/stdout'})\n"
        f"job.wait_terminated({TIMEOUT})\n"
        "print(job.get_state()[0].name)\n"
        "js.close()\n"
    )
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "False",
            "input_path /dev/stdin: this process's stdin is closed",
            "x",
            "DONE",
        ]
    finally:
        stop_keeper(tmp_path / "state")


def test_a_file_opened_again_through_a_running_submitter_is_appended_to(
    tmp_path: Path,
) -> None:
    """Through /proc/PID/fd/N a regular file is opened again after what it holds (it was
    opened at its start, and the job wrote over the submitter's own first lines)."""
    state = tmp_path / "state"
    body = (
        "import sys\n"
        "print('first line of the submitter', flush=True)\n"
        "job = js.run_job({'remote_command': '/bin/echo', 'args': ['from-the-job'], "
        "'output_path': '/dev/stdout', 'submit_as_hold': True})\n"
        "print('submitted', flush=True)\n"
        "sys.stdin.readline()\n"
        f"job.wait_terminated({TIMEOUT})\n"
        "print('client', job.get_state()[0].name, flush=True)\n"
        "js.close()\n"
    )
    out = tmp_path / "out"
    with open(out, "w") as stdout:
        client = _client(state, body, stdin=subprocess.PIPE, stdout=stdout)
    assert client.stdin is not None
    try:
        wait_until_text(out, "submitted\n")
        kill_keeper(state)
        with _open(state) as js:
            _released_and_ended(js)
        client.stdin.write("go\n")
        client.stdin.flush()
        assert client.wait(TIMEOUT) == 0
        assert out.read_text().splitlines() == [
            "first line of the submitter",
            "submitted",
            "from-the-job",
            "client DONE",
        ]
    finally:
        client.kill()
        client.wait()
        client.stdin.close()
        stop_keeper(state)


def test_a_socket_of_a_running_submitter_reaches_the_jobs_of_the_next_keeper(
    tmp_path: Path,
) -> None:
    """A socket cannot be opened again through /proc: the next keeper takes the submitter's
    very descriptor (pidfd_getfd), as for any stream (the job failed, its annotation saying
    that the running submitter no longer had it)."""
    state = tmp_path / "state"
    body = (
        "import sys\n"
        "js.run_job({'remote_command': '/bin/echo', 'args': ['over-the-socket'], "
        "'output_path': '/dev/stdout', 'submit_as_hold': True})\n"
        "sys.stdout.write('submitted\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
        "js.close()\n"
    )
    ours, theirs = socket.socketpair()
    with ours, theirs:
        client = _client(state, body, stdin=subprocess.PIPE, stdout=theirs.fileno())
        assert client.stdin is not None
        try:
            ours.settimeout(TIMEOUT)
            assert ours.recv(100) == b"submitted\n"
            kill_keeper(state)
            with _open(state) as js:
                (job,) = _released_and_ended(js)
                assert job.get_state()[0] is JobState.DONE, job.get_info().annotation
            assert ours.recv(100) == b"over-the-socket\n"
            client.stdin.write("go\n")
            client.stdin.flush()
            assert client.wait(TIMEOUT) == 0
        finally:
            client.kill()
            client.wait()
            client.stdin.close()
            stop_keeper(state)
