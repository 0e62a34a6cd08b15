"""``drmaa2 run``: what reaches the job, and what ``run --wait`` exits with."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import TIMEOUT, Cli, one_line_error, wait_until


def test_run_then_jobs_just_works(cli: Cli) -> None:
    job_id = cli.run("--name", "hello", "--", "sh", "-c", "echo hi")
    assert job_id == "1"
    assert cli("wait", job_id).returncode == 0
    lines = cli.ok("jobs").splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "EXIT", "SIGNAL", "WALLCLOCK", "MAXRSS"]
    assert lines[1].split()[:5] == ["1", "hello", "DONE", "0", "-"]
    # Aligned: each row's state begins under the STATE header.
    assert lines[1].index("DONE") == lines[0].index("STATE")
    wallclock, max_rss = lines[1].split()[5:]
    assert wallclock.startswith("0:00:0")
    assert max_rss[-1] in "KMG" and max_rss != "-"
    assert cli.ok("sessions").split() == ["default"]


def test_run_wait_exits_with_the_job_exit_status(cli: Cli) -> None:
    done = cli("run", "--wait", "--", "sh", "-c", "exit 7")
    assert (done.returncode, done.stdout, done.stderr) == (7, "1\n", "")
    assert cli("run", "--wait", "--", "true").returncode == 0
    killed = cli("run", "--wait", "--", "sh", "-c", "kill -KILL $$")
    assert killed.returncode == 128 + signal.SIGKILL
    info = cli.info(killed.stdout.strip())
    assert info["job_state"] == "FAILED" and info["terminating_signal"] == "SIGKILL"


def test_run_wait_array_is_zero_only_if_every_task_is_done(cli: Cli) -> None:
    good = cli("run", "--array", "1-3", "--wait", "--", "true")
    assert (good.returncode, good.stdout) == (0, "1\n")
    bad = cli("run", "--array", "1-3", "--wait", "--", "sh", "-c", 'test "$TASK_ID" != 2')
    assert (bad.returncode, bad.stdout) == (1, "2\n")
    states = {i["job_id"]: i["job_state"] for i in cli.tasks("2")}
    assert states == {"2.1": "DONE", "2.2": "FAILED", "2.3": "DONE"}


def test_array_with_max_parallel_runs_every_task_at_most_n_at_once(cli: Cli) -> None:
    script = (
        'mkdir "running.$TASK_ID"; ls -d running.* | wc -l > "count.$TASK_ID"; '
        'echo "task $TASK_ID job $JOB_ID"; sleep 0.2; rmdir "running.$TASK_ID"'
    )
    done = cli(
        "run",
        "--array",
        "2-12:2",
        "--max-parallel",
        "2",
        "--output",
        "out.$DRMAA2_INDEX$",
        "--wait",
        "--",
        "sh",
        "-c",
        script,
    )
    assert (done.returncode, done.stdout) == (0, "1\n")
    for index in range(2, 13, 2):
        assert (cli.workdir / f"out.{index}").read_text() == f"task {index} job 1.{index}\n"
    counts = [int((cli.workdir / f"count.{index}").read_text()) for index in range(2, 13, 2)]
    assert 1 <= max(counts) <= 2
    infos = cli.json("jobs")
    assert isinstance(infos, list)
    assert [i["job_id"] for i in infos] == [f"1.{n}" for n in range(2, 13, 2)]
    assert {i["job_state"] for i in infos} == {"DONE"}


def test_run_options_reach_the_job(cli: Cli) -> None:
    (cli.workdir / "sub").mkdir()
    done = cli(
        "run",
        "--wait",
        "--name",
        "greeter",
        "--cwd",
        "sub",
        "--env",
        "GREETING=hello world",
        "-e",
        "EMPTY=",
        "--output",
        "out.txt",
        "--error",
        "err.txt",
        "--",
        "sh",
        "-c",
        'echo "$GREETING from $(pwd) [${EMPTY-unset}]"; echo oops >&2',
    )
    assert done.returncode == 0, done.stderr
    sub = cli.workdir / "sub"
    assert (sub / "out.txt").read_text() == f"hello world from {sub} []\n"
    assert (sub / "err.txt").read_text() == "oops\n"
    assert cli.info("1")["job_name"] == "greeter"

    joined = cli(
        "run", "--wait", "--join", "-o", "both.txt", "--", "sh", "-c", "echo a; echo b >&2"
    )
    assert joined.returncode == 0
    assert (cli.workdir / "both.txt").read_text() == "a\nb\n"

    (cli.workdir / "in.txt").write_text("from stdin\n")
    copied = cli("run", "--wait", "--input", "in.txt", "--output", "copy.txt", "--", "cat")
    assert copied.returncode == 0
    assert (cli.workdir / "copy.txt").read_text() == "from stdin\n"


def test_job_gets_the_submitting_shells_environment_and_directory(cli: Cli, tmp_path: Path) -> None:
    # A long job keeps the session's keeper alive; the next job comes from another
    # "shell" (another environment and directory) and must see that one, not the keeper's.
    blocker = cli.run("--", "sleep", "60")
    other = tmp_path / "elsewhere"
    other.mkdir()
    done = subprocess.run(
        cli.argv("run", "--wait", "--output", "seen.txt", "--", "sh", "-c", 'echo "$MARK $PWD"'),
        cwd=other,
        env={**cli.env, "MARK": "second-shell"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert (other / "seen.txt").read_text() == f"second-shell {other}\n"
    assert len(cli.keepers()) == 1
    cli.ok("terminate", blocker)


def test_concurrent_runs_share_the_session(cli: Cli) -> None:
    runs = [
        subprocess.Popen(
            cli.argv("run", "--wait", "--", "sh", "-c", f"exit {status}"),
            cwd=cli.workdir,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for status in range(10, 18)
    ]
    ids = []
    for status, run in zip(range(10, 18), runs, strict=True):
        out, err = run.communicate(timeout=TIMEOUT)
        assert (run.returncode, err) == (status, "")
        ids.append(out.strip())
    assert sorted(ids, key=int) == [str(n) for n in range(1, 9)]
    infos = cli.json("jobs")
    assert {(i["job_id"], i["exit_status"]) for i in infos} == {
        (job_id, status) for job_id, status in zip(ids, range(10, 18), strict=True)
    }


@pytest.mark.parametrize(
    ("limit", "script", "status", "signal_name"),
    [
        ("file_size=1", "exec head -c 4096 /dev/zero > big", 128 + signal.SIGXFSZ, "SIGXFSZ"),
        ("WALLCLOCK_TIME=0.3", "exec sleep 60", 128 + signal.SIGKILL, "SIGKILL"),
    ],
)
def test_limit_is_applied(cli: Cli, limit: str, script: str, status: int, signal_name: str) -> None:
    done = cli("run", "--wait", "--limit", limit, "--", "sh", "-c", script)
    assert done.returncode == status, done.stderr
    info = cli.info("1")
    assert info["job_state"] == "FAILED" and info["terminating_signal"] == signal_name


def test_interrupted_wait_leaves_the_job_running(cli: Cli) -> None:
    waiting = subprocess.Popen(
        cli.argv("run", "--wait", "--", "sleep", "60"),
        cwd=cli.workdir,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stdout is not None and waiting.stderr is not None
    job_id = waiting.stdout.readline().strip()
    waiting.send_signal(signal.SIGINT)
    assert waiting.wait(TIMEOUT) == 130
    error = waiting.stderr.read()
    waiting.stdout.close()
    waiting.stderr.close()
    assert error.count("\n") == 1 and "keeps running" in error
    assert cli.info(job_id)["job_state"] == "RUNNING"
    cli.ok("terminate", job_id)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "10s"])
def test_a_bad_keeper_idle_time_is_an_error_naming_it(cli: Cli, value: str) -> None:
    done = cli("run", "--", "true", env={"DRMAA2_OS_KEEPER_IDLE": value})
    error = one_line_error(done, 1)
    assert "$DRMAA2_OS_KEEPER_IDLE" in error and repr(value) in error, error
    wait_until(lambda: not cli.keepers(), "the keeper not to run")
    assert cli("run", "--wait", "--", "true", env={"DRMAA2_OS_KEEPER_IDLE": "0.5"}).returncode == 0


def test_an_unusable_keeper_log_is_reported_once(cli: Cli, tmp_path: Path) -> None:
    cli.state_dir.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("")
    (cli.state_dir / "keeper.log").symlink_to(target)
    error = one_line_error(cli("run", "--", "true"), 1)
    assert f"{cli.state_dir / 'keeper.log'}" in error and "symbolic link" in error, error
    assert target.read_text() == ""


def test_a_damaged_keeper_log_set_aside_is_said_in_the_new_log_not_on_stderr(cli: Cli) -> None:
    cli.state_dir.mkdir(mode=0o700)
    (cli.state_dir / "keeper.log").mkdir()
    assert cli.ok("run", "--wait", "--", "true") == "1\n"  # ok: nothing on stderr
    (aside,) = cli.state_dir.glob("keeper.log.damaged-*")
    assert aside.is_dir()
    log = (cli.state_dir / "keeper.log").read_text()
    assert f"set aside as {aside}" in log, log
