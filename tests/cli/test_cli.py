"""The ``drmaa2`` command line, driven as a user drives it: one process per command, real
sessions in a temporary state directory, real jobs.

Every test ends its jobs (terminate, then wait) and waits for the session keepers it caused
to exit, so it leaves nothing running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import drmaa2

#: Generous: these tests must pass on a loaded 2-core machine.
TIMEOUT = 60.0

COMMANDS = [
    "run",
    "jobs",
    "info",
    "wait",
    "suspend",
    "resume",
    "hold",
    "release",
    "terminate",
    "reap",
    "sessions",
    "destroy",
    "ps",
    "machines",
]

PS_KEYS = {"job_id", "user", "state", "sub_state", "cpu_percent", "rss_bytes", "name", "command"}


class Cli:
    """Runs ``python -m drmaa2.cli`` in a working directory with its own state directory."""

    def __init__(self, workdir: Path, state_dir: Path) -> None:
        self.workdir = workdir
        self.state_dir = state_dir
        self.env = {k: v for k, v in os.environ.items() if k != "DRMAA2_BACKEND"}
        self.env["DRMAA2_OS_STATE_DIR"] = str(state_dir)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "drmaa2.cli", *args]

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its stdout."""
        done = self(*args)
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.stderr == ""
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def info(self, job_id: str) -> dict[str, Any]:
        """The JobInfo of a job or task, as ``info --json`` prints it."""
        data = self.json("info", job_id)
        assert isinstance(data, dict)
        return data

    def info_in(self, session: str, job_id: str) -> dict[str, Any]:
        """The JobInfo of a job of another session."""
        data = self.json("info", "--session", session, job_id)
        assert isinstance(data, dict)
        return data

    def tasks(self, array_id: str) -> list[dict[str, Any]]:
        """The JobInfos of an array's tasks, as ``info --json`` prints them."""
        data = self.json("info", array_id)
        assert isinstance(data, list)
        return data

    def run(self, *args: str) -> str:
        """Submit; the job id printed."""
        out = self.ok("run", *args)
        assert out.endswith("\n") and out.count("\n") == 1
        return out.strip()

    def keepers(self) -> list[psutil.Process]:
        """The session keepers serving this state directory."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if "__keeper__" in cmdline and str(self.state_dir) in cmdline:
                found.append(process)
        return found

    def cleanup(self) -> None:
        """End every unfinished job of every session, then wait for the keepers to exit."""
        done = self("sessions", "--json")
        for session in json.loads(done.stdout) if done.returncode == 0 else []:
            infos = self.json("jobs", "--session", session)
            assert isinstance(infos, list)
            ids = [i["job_id"] for i in infos if i["job_state"] not in ("DONE", "FAILED")]
            if ids:
                self("terminate", "--session", session, *ids)
                self("wait", "--session", session, "--timeout", str(TIMEOUT), *ids)
        keepers = self.keepers()
        _, alive = psutil.wait_procs(keepers, timeout=TIMEOUT)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        assert not alive, f"session keepers did not exit: {alive}"


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    runner = Cli(workdir, tmp_path / "state")
    try:
        yield runner
    finally:
        runner.cleanup()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for an event the CLI cannot wait for (a file appearing, a process stopping)."""
    deadline = time.monotonic() + TIMEOUT
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    """Check a failed command: its exit status, and exactly one line on stderr, no traceback."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("drmaa2")
    return done.stderr


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_for_every_command(cli: Cli, command: str) -> None:
    out = cli.ok(*([command] if command else []), "--help")
    assert out.startswith(f"usage: drmaa2 {command}".rstrip())
    assert "--backend" in out and "--contact" in out


def test_console_script_and_version(cli: Cli) -> None:
    script = Path(sys.executable).with_name("drmaa2")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert done.stdout.strip() == f"drmaa2 {drmaa2.__version__}"


# -- run, jobs, info -------------------------------------------------------------------------


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


def test_info_of_a_task_an_array_and_a_job(cli: Cli) -> None:
    cli.ok("run", "--array", "1-3", "--wait", "--", "true")
    task = cli.info("1.2")
    assert set(task) == set(drmaa2.JobInfo().to_dict())
    assert task["job_id"] == "1.2" and task["job_state"] == "DONE"
    assert drmaa2.JobInfo.from_dict(task).job_id == "1.2"
    tasks = cli.json("info", "1")
    assert isinstance(tasks, list) and [t["job_id"] for t in tasks] == ["1.1", "1.2", "1.3"]
    text = cli.ok("info", "1.2")
    fields = dict(line.split(":", 1) for line in text.splitlines() if not line.startswith(" "))
    assert fields["job_id"].strip() == "1.2"
    assert fields["job_state"].strip() == "DONE"
    assert fields["wallclock_time"].strip().startswith("0:00:")
    assert "  ru_maxrss:" in text


def test_jobs_json_and_state_filter(cli: Cli) -> None:
    cli("run", "--wait", "--", "true")
    cli("run", "--wait", "--", "false")
    infos = cli.json("jobs")
    assert isinstance(infos, list) and len(infos) == 2
    assert all(list(info) == list(drmaa2.JobInfo().to_dict()) for info in infos)
    assert [drmaa2.JobInfo.from_dict(info).job_state for info in infos] == [
        drmaa2.JobState.DONE,
        drmaa2.JobState.FAILED,
    ]
    failed = cli.json("jobs", "--state", "failed")
    assert [info["job_id"] for info in failed] == ["2"]
    table = cli.ok("jobs", "--state", "DONE").splitlines()
    assert len(table) == 2 and table[1].split()[0] == "1"


def test_a_never_used_default_session_has_no_jobs(cli: Cli) -> None:
    assert cli.ok("jobs").split() == [
        "ID",
        "NAME",
        "STATE",
        "EXIT",
        "SIGNAL",
        "WALLCLOCK",
        "MAXRSS",
    ]
    assert cli.json("jobs") == []
    assert cli.json("sessions") == []
    error = one_line_error(cli("info", "1"), 1)
    assert "default" in error
    error = one_line_error(cli("jobs", "--session", "nosuch"), 1)
    assert "nosuch" in error


# -- wait ------------------------------------------------------------------------------------


def test_wait_exits_with_the_last_jobs_status(cli: Cli) -> None:
    first = cli.run("--", "sh", "-c", "exit 3")
    second = cli.run("--", "sh", "-c", "exit 5")
    assert cli("wait", first, second).returncode == 5
    assert cli("wait", second, first).returncode == 3
    array = cli.run("--array", "1-2", "--", "true")
    assert cli("wait", first, array).returncode == 0


def test_wait_timeout_is_one_line_and_exit_1(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "60")
    error = one_line_error(cli("wait", job_id, "--timeout", "0.2"), 1)
    assert "timed out" in error and job_id in error
    cli.ok("terminate", job_id)
    assert cli("wait", job_id, "--timeout", "0").returncode == 128 + signal.SIGKILL


# -- control ---------------------------------------------------------------------------------


def test_suspend_resume_terminate(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "60")
    assert cli.info(job_id)["job_state"] == "RUNNING"
    pid = int(cli.info(job_id)["implementation_specific"]["pid"])
    process = psutil.Process(pid)
    cli.ok("suspend", job_id)
    assert cli.info(job_id)["job_state"] == "SUSPENDED"
    assert process.status() == psutil.STATUS_STOPPED
    cli.ok("resume", job_id)
    assert cli.info(job_id)["job_state"] == "RUNNING"
    wait_until(lambda: process.status() != psutil.STATUS_STOPPED, "the job to continue")
    assert cli.ok("terminate", job_id) == ""
    info = cli.info(job_id)
    assert info["job_state"] == "FAILED" and info["terminating_signal"] == "SIGKILL"
    assert info["exit_status"] == 128 + signal.SIGKILL


def test_hold_and_release(cli: Cli) -> None:
    job_id = cli.run("--hold", "--", "sh", "-c", "echo ran > ran.txt")
    assert cli.info(job_id)["job_state"] == "QUEUED_HELD"
    held = cli.json("jobs", "--state", "queued_held")
    assert [i["job_id"] for i in held] == [job_id]
    cli.ok("release", job_id)
    assert cli("wait", job_id).returncode == 0
    assert (cli.workdir / "ran.txt").read_text() == "ran\n"


def test_hold_a_queued_array_task(cli: Cli) -> None:
    gate = "while [ ! -e go ]; do sleep 0.02; done; echo $TASK_ID >> order.txt"
    array = cli.run("--array", "1-3", "--max-parallel", "1", "--", "sh", "-c", gate)
    cli.ok("hold", f"{array}.3")
    assert cli.info(f"{array}.3")["job_state"] == "QUEUED_HELD"
    (cli.workdir / "go").touch()
    assert cli("wait", f"{array}.1", f"{array}.2").returncode == 0
    assert cli.info(f"{array}.3")["job_state"] == "QUEUED_HELD"
    cli.ok("release", f"{array}.3")
    assert cli("wait", array).returncode == 0
    assert (cli.workdir / "order.txt").read_text() == "1\n2\n3\n"


def test_terminate_an_array(cli: Cli) -> None:
    array = cli.run("--array", "1-4", "--max-parallel", "2", "--", "sleep", "60")
    cli.ok("terminate", array)
    assert cli("wait", array).returncode == 1
    assert {i["job_state"] for i in cli.tasks(array)} == {"FAILED"}


def test_reap_forgets_a_finished_job(cli: Cli) -> None:
    job_id = cli.run("--wait", "--", "true")
    cli.ok("reap", job_id)
    error = one_line_error(cli("info", job_id), 1)
    assert repr(job_id) in error
    assert cli.json("jobs") == []


def test_control_errors_are_one_line(cli: Cli) -> None:
    job_id = cli.run("--wait", "--", "true")
    error = one_line_error(cli("suspend", "42"), 1)
    assert "'42'" in error
    error = one_line_error(cli("terminate", job_id), 1)
    assert "finished" in error
    running = cli.run("--", "sleep", "60")
    error = one_line_error(cli("reap", running), 1)
    assert "not finished" in error
    both = cli("resume", "nosuch", running)  # acts on what it can, names what it could not
    one_line_error(both, 1)
    cli.ok("terminate", running)


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


# -- sessions --------------------------------------------------------------------------------


def test_sessions_and_destroy(cli: Cli) -> None:
    cli.ok("run", "--session", "alpha", "--wait", "--", "true")
    cli.ok("run", "-s", "beta", "--wait", "--", "true")
    assert cli.json("sessions") == ["alpha", "beta"]
    assert cli.ok("sessions") == "alpha\nbeta\n"
    assert [i["job_id"] for i in cli.json("jobs", "--session", "beta")] == ["1"]
    assert cli.ok("destroy", "alpha") == ""
    assert cli.json("sessions") == ["beta"]
    error = one_line_error(cli("destroy", "alpha"), 1)
    assert "alpha" in error


def test_run_after_the_session_was_destroyed_under_its_keeper(cli: Cli) -> None:
    gated = cli.run("-s", "gamma", "--", "sh", "-c", "while [ ! -e go ]; do sleep 0.02; done")
    process = psutil.Process(int(cli.info_in("gamma", gated)["implementation_specific"]["pid"]))
    cli.ok("destroy", "gamma")
    done = cli("run", "-s", "gamma", "--wait", "--", "true")
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")
    (cli.workdir / "go").touch()
    process.wait(TIMEOUT)  # destroyed sessions keep their running jobs running: end it


def test_global_options_before_or_after_the_command(cli: Cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other-state"
    cli.ok("--contact", str(elsewhere), "run", "--wait", "--", "true")
    assert cli.json("sessions", "--contact", str(elsewhere)) == ["default"]
    assert cli.json("sessions", "--backend", "os") == []
    assert cli.json("--backend", "os", "--contact", str(elsewhere), "jobs")  # one job
    error = one_line_error(cli("--backend", "nosuch", "jobs"), 1)
    assert "nosuch" in error and "'os'" in error
    one_line_error(cli("jobs", "--backend", "nosuch"), 1)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--limit", "NOPE=1", "--", "true"], "NOPE"),
        (["run", "--limit", "cpu_time=soon", "--", "true"], "soon"),
        (["run", "--limit", "CPU_TIME", "--", "true"], "CPU_TIME"),
        (["run", "--env", "=x", "--", "true"], "=x"),
        (["run", "--env", "NOVALUE", "--", "true"], "NOVALUE"),
        (["run", "--output", "/dev/stdout", "--", "true"], "/dev/stdout"),
        (["run", "--"], "command"),
        (["run"], "command"),
        (["run", "--array", "5-2", "--", "true"], "5-2"),
        (["run", "--array", "0-2", "--", "true"], "0-2"),
        (["run", "--max-parallel", "2", "--", "true"], "--array"),
        (["run", "--array", "1-2", "--max-parallel", "0", "--", "true"], "'0'"),
        (["jobs", "--state", "sleepy"], "sleepy"),
        (["wait", "1", "--timeout", "-1"], "-1"),
        (["wait"], "JOB"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
        (["ps", "--sort", "age"], "age"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(cli: Cli, args: list[str], named: str) -> None:
    error = one_line_error(cli(*args), 2)
    assert named in error


def test_drmaa2_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    error = one_line_error(cli("run", "--", "no-such-command-here"), 1)
    assert error.startswith("drmaa2: error:") and "no-such-command-here" in error
    cli.run("--wait", "--", "true")
    for command in ("info", "wait", "suspend"):
        error = one_line_error(cli(command, "9.9"), 1)
        assert "'9.9'" in error


# -- monitoring ------------------------------------------------------------------------------


def test_ps_shows_a_running_job(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "61")
    pid = cli.info(job_id)["implementation_specific"]["pid"]
    processes = cli.json("ps")
    assert isinstance(processes, list)
    assert all(set(p) == PS_KEYS for p in processes)
    (mine,) = [p for p in processes if p["job_id"] == pid]
    assert mine["name"] == "sleep" and mine["command"] == "sleep 61"
    assert mine["state"] == "RUNNING" and mine["user"] == psutil.Process().username()
    assert isinstance(mine["rss_bytes"], int) and isinstance(mine["cpu_percent"], float)
    table = cli.ok("ps").splitlines()
    assert table[0].split() == ["PID", "USER", "STATE", "%CPU", "RSS", "NAME", "COMMAND"]
    assert any(line.split()[0] == pid and line.endswith("sleep 61") for line in table[1:])
    cli.ok("terminate", job_id)


def test_ps_user_filter_and_sort(cli: Cli) -> None:
    me = psutil.Process().username()
    mine = cli.json("ps", "--user", me)
    assert isinstance(mine, list) and mine and {p["user"] for p in mine} == {me}
    assert cli.json("ps", "--user", "no-such-user-here") == []
    for order, key in (("mem", "rss_bytes"), ("cpu", "cpu_percent")):
        listed = cli.json("ps", "--sort", order)
        assert isinstance(listed, list)
        values = [p[key] for p in listed if p[key] is not None]
        assert values == sorted(values, reverse=True)
        assert all(p[key] is None for p in listed[len(values) :])


def test_machines(cli: Cli) -> None:
    machines = cli.json("machines")
    assert isinstance(machines, list) and len(machines) == 1
    (machine,) = machines
    assert list(machine) == list(drmaa2.MachineInfo().to_dict())
    assert drmaa2.MachineInfo.from_dict(machine).name == machine["name"]
    table = cli.ok("machines").splitlines()
    assert table[0].split()[:4] == ["NAME", "AVAILABLE", "CPUS", "LOAD"]
    assert table[1].split()[0] == machine["name"]
    assert table[1].split()[2] == str(os.cpu_count())


# -- the progress line -----------------------------------------------------------------------


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


# -- the documentation -----------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def test_quickstart_command_of_the_readme_runs(cli: Cli, tmp_path: Path) -> None:
    text = README.read_text()
    command = text.split("```sh\n", 1)[1].split("\n", 1)[0]
    install = "python3 -m pip install . && "
    assert command.startswith(install)
    done = subprocess.run(
        ["bash", "-c", command.removeprefix(install)],  # the project is installed already
        cwd=cli.workdir,
        env={
            **cli.env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TMPDIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert shown[:3] == [f"hello from task {n} (job 1.{n})" for n in (1, 2, 3)]
    assert shown[3].split() == ["job_id:", "1.2"]
    assert "job_state:               DONE" in shown
