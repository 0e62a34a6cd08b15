"""The progress line of ``run --wait`` and ``wait`` on an array: on a terminal only."""

from __future__ import annotations

import collections
import errno
import io
import os
import pty
import subprocess
from pathlib import Path

import pytest

import drmaa2
from drmaa2.cli.output import ProgressLine
from tests.behaviour.conftest import wait_until
from tests.cli.conftest import TIMEOUT, Cli


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError as error:  # EIO: every writer of the terminal has closed it
            if error.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_progress_line_on_a_terminal(cli: Cli) -> None:
    controller, terminal = pty.openpty()
    try:
        waiting = subprocess.Popen(
            cli.argv(
                "run",
                "--array",
                "1-6",
                "--max-parallel",
                "2",
                "--wait",
                "--",
                "sh",
                "-c",
                'sleep 0.1; test "$TASK_ID" != 4',
            ),
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
        )
        os.close(terminal)
        terminal = -1
        shown = _read_all(controller).decode()
        assert waiting.wait(TIMEOUT) == 1
        assert waiting.stderr is not None
        assert waiting.stderr.read() == b""
        waiting.stderr.close()
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    first, _, progress = shown.partition("\n")
    assert first.strip() == "1"
    frames = [frame.strip() for frame in progress.split("\r") if frame.strip()]
    assert frames, shown
    assert frames[-1].startswith("array 1: 5 done, 1 failed, 0 running, 0 queued")
    assert "elapsed" in frames[-1] and "tasks/s" in frames[-1]
    assert progress.endswith("\n")  # the line is finished, not left for the prompt


def test_no_progress_line_when_not_a_terminal(cli: Cli) -> None:
    done = cli("run", "--array", "1-3", "--wait", "--", "true")
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")


@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
def test_a_reader_that_stops_early_gives_exit_status_141(cli: Cli, json_output: bool) -> None:
    """docs/cli.md: 141 when the reader of the output went away (``drmaa2 jobs | head -1``),
    so a script can tell that what it read was cut short. The listing is far larger than a
    pipe holds (before, ``--json`` wrote it in one piece, which CPython could cut short in
    silence: exit status 0)."""
    array_id = cli.run("--array", "1-3000", "--hold", "--", "true")
    listing = subprocess.Popen(
        cli.argv("jobs", *(["--json"] if json_output else [])),
        cwd=cli.workdir,
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert listing.stdout is not None and listing.stderr is not None
    first = listing.stdout.readline()
    listing.stdout.close()  # the reader goes away
    assert listing.wait(TIMEOUT) == 141, listing.stderr.read()
    assert first.split()[:1] == ([b"["] if json_output else [b"ID"])
    assert listing.stderr.read() == b""  # nothing said: the reader is gone on purpose
    cli.ok("terminate", array_id)


@pytest.mark.parametrize("option", ["--help", "--version", "run --help"])
def test_help_and_version_tell_when_their_text_was_not_written(cli: Cli, option: str) -> None:
    """As every command's output: 141 when the reader went away, 1 with one line when it
    cannot be written (argparse dropped the error, and the command exited 0)."""

    def written_to(stdout: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            cli.argv(*option.split()),
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
        )

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        gone = written_to(write_end)
    finally:
        os.close(write_end)
    assert (gone.returncode, gone.stderr) == (141, b"")
    with open("/dev/full", "wb") as full:
        done = written_to(full.fileno())
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "drmaa2: error: cannot write the output to stdout: No space left on device"
    ]


def test_a_usage_error_is_exit_status_2_whatever_becomes_of_its_line(cli: Cli) -> None:
    """A usage error's line goes to stderr: if that cannot be written (a full disk, a
    reader gone, stderr closed), the exit status still says it was a usage error."""

    def with_stderr(stderr: int) -> int:
        return subprocess.run(
            cli.argv("bogus"),
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=TIMEOUT,
        ).returncode

    with open("/dev/full", "wb") as full:
        assert with_stderr(full.fileno()) == 2
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        assert with_stderr(write_end) == 2
    finally:
        os.close(write_end)


def test_a_command_with_stdout_or_stderr_closed_does_its_work(cli: Cli, tmp_path: Path) -> None:
    """Started with stdout closed (``>&-``), a command does its work and gives its exit
    status, what it would print going nowhere (it failed with an internal AttributeError,
    exit 1, and ``run --wait`` and ``wait`` returned at once, the job still running)."""

    def closed(*args: str, streams: str = ">&-") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", f'exec "$@" {streams}', "sh", *cli.argv(*args)],
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,  # (then closed by the shell, as asked)
            text=True,
            timeout=TIMEOUT,
        )

    flag = tmp_path / "go"
    gate = f"until [ -e {flag} ]; do sleep 0.02; done; exit 3"
    started = subprocess.Popen(
        ["sh", "-c", 'exec "$@" >&-', "sh", *cli.argv("run", "-w", "--", "sh", "-c", gate)],
        cwd=cli.workdir,
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: cli.json("jobs") != [], what="the job to be submitted")
        assert started.poll() is None, "run --wait waits"
        flag.touch()
        assert started.wait(TIMEOUT) == 3
        assert started.stderr is not None and started.stderr.read() == ""
    finally:
        flag.touch()
        started.wait(TIMEOUT)
    (job,) = cli.json("jobs")
    waited = closed("wait", job["job_id"])
    assert (waited.returncode, waited.stderr) == (3, "")
    assert closed("jobs").returncode == 0
    failed = closed("info", "4242", streams="2>&-")
    assert failed.returncode == 1, "an error without stderr: its exit status"


def test_a_job_given_dev_stdin_of_a_command_with_stdin_closed_reads_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    """Started with stdin closed (``<&-``), ``run --input /dev/stdin`` gives the job
    /dev/null (its connection to the keeper took the free descriptor 0, and the job got that
    socket: it hung reading it, and kept the keeper from ever exiting)."""
    out = tmp_path / "fd0"
    done = subprocess.run(
        [
            "sh",
            "-c",
            'exec "$@" <&-',
            "sh",
            *cli.argv(
                "run",
                "-w",
                "-i",
                "/dev/stdin",
                "-o",
                str(out),
                "--",
                "sh",
                "-c",
                "readlink /proc/self/fd/0; cat",
            ),
        ],
        cwd=cli.workdir,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text() == "/dev/null\n"


def test_the_progress_line_counts_suspended_and_held_jobs_apart() -> None:
    """Held jobs were counted as queued and suspended ones as running: a held or suspended
    array gave no hint of it."""
    out = io.StringIO()
    line = ProgressLine(out, "array 1")
    state = drmaa2.JobState
    line.update(1, 0, collections.Counter([state.QUEUED, state.RUNNING]), 1.0)
    assert out.getvalue().startswith("\rarray 1: 1 done, 0 failed, 1 running, 1 queued |")
    unfinished = collections.Counter(
        [state.SUSPENDED, state.SUSPENDED, state.QUEUED_HELD, state.QUEUED, state.RUNNING]
    )
    line.update(1, 1, unfinished, 2.0)
    last = out.getvalue().rpartition("\r")[2]
    assert last.startswith("array 1: 1 done, 1 failed, 1 running, 1 queued, 2 suspended, 1 held |")
