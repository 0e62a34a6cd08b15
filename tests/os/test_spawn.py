"""How the os backend starts a job's process: scripts without ``#!``, start failures, and the
mode of the files its streams create."""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker.process import exits
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until
from tests.keepers import keepers_under, stop_keepers
from tests.os.test_persistence import keepers_of, python

BACKEND = "os"


def test_an_executable_script_without_a_shebang_runs_through_sh(tmp_path: Path) -> None:
    script = tmp_path / "plain-script"
    script.write_text('echo "plain $1 $JOB_ID"\nexit 4\n')
    script.chmod(0o755)
    out = tmp_path / "out"
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        job = js.run_job({"remote_command": str(script), "args": ["arg"], "output_path": str(out)})
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        js.destroy()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 4)
    assert file_text(out) == f"plain arg {job.id}\n"


def test_a_cpu_time_limit_of_0_ends_every_job_as_it_starts(tmp_path: Path) -> None:
    """CPU_TIME 0 is used up at once: every such job, single or an array's task, is killed
    as it starts (SIGKILL, as the kernel's limit kills), whatever CPU time it would use.
    (The kernel checks the limit only at a clock tick that finds the job running: a job that
    sleeps ended DONE, or was killed, at random.)"""
    template = {
        "remote_command": "/bin/sh",
        "args": ["-c", "sleep 2"],
        "resource_limits": {"CPU_TIME": 0},
    }
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        jobs = [js.run_job(template) for _ in range(3)]
        jobs += js.run_bulk_jobs(template, 1, 3, max_parallel=2).job_list
        js.wait_all_terminated(jobs, TIMEOUT)
        infos = [job.get_info() for job in jobs]
        js.destroy()
    for info in infos:
        assert (info.job_state, info.exit_status, info.terminating_signal) == (
            JobState.FAILED,
            137,
            "SIGKILL",
        ), info
        assert info.wallclock_time is not None and info.wallclock_time.total_seconds() < 1.5


def _run_program(tmp_path: Path, name: str, content: bytes) -> tuple[Path, drmaa2.JobInfo]:
    """Write an executable file ``name`` and run it as a job: the file, and the job's info
    once it has ended."""
    program = tmp_path / name
    program.write_bytes(content)
    program.chmod(0o755)
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        job = js.run_job({"remote_command": str(program)})
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        js.destroy()
    return program, info


def test_a_script_whose_interpreter_is_missing_fails_to_start(tmp_path: Path) -> None:
    _, info = _run_program(tmp_path, "broken-script", b"#!/no/such/interpreter\necho never\n")
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
    assert info.exit_status is None
    assert "/no/such/interpreter" in (info.annotation or ""), info.annotation


def test_a_script_with_crlf_line_ends_fails_to_start_naming_them(tmp_path: Path) -> None:
    script, info = _run_program(tmp_path, "windows-script", b"#!/bin/sh\r\necho never\r\n")
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
    assert "carriage return" in (info.annotation or ""), info.annotation
    assert str(script) in (info.annotation or "")


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01garbage\n", b"MZ\x90\x00\x03\x00binary\n"],
    ids=["damaged ELF", "another format"],
)
def test_a_binary_the_machine_cannot_execute_fails_to_start(tmp_path: Path, content: bytes) -> None:
    """exec refuses it (ENOEXEC) and it is no script: FAILED start_failed naming it, not run
    by /bin/sh as a script without #! is (which ran its bytes as commands: exit 127)."""
    program, info = _run_program(tmp_path, "not-for-this-machine", content)
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
    assert info.exit_status is None
    assert str(program) in (info.annotation or "") and "cannot execute" in (info.annotation or "")


def test_output_and_error_as_two_names_of_one_file_share_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("old contents, longer than what the job writes\n")
    err = tmp_path / "err"
    os.link(out, err)  # one file, two names: one open file, as for one name
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        job = js.run_job(
            {
                "remote_command": "/bin/sh",
                "args": ["-c", "echo one; echo two >&2; echo three"],
                "output_path": str(out),
                "error_path": str(err),
            }
        )
        job.wait_terminated(TIMEOUT)
        js.destroy()
    assert file_text(out) == "one\ntwo\nthree\n"


# -- the files a job's streams create: the submitter's umask, not the keeper's -------------


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose keeper, if a test started one, is stopped at the end."""
    path = tmp_path / "state"
    yield path
    stop_keepers(keepers_under((str(path),)))


def umask_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("Umask:")]
    return int(line.split()[1], 8)


def start_keeper(state: Path, umask: int) -> None:
    """Start the keeper of ``state`` from a client whose umask is ``umask``, which the keeper
    inherits; it stays until the fixture stops it."""
    done = python(
        f"import drmaa2; drmaa2.JobSession('s', {str(state)!r}, backend='os').close()",
        umask=umask,
        env={**os.environ, "DRMAA2_OS_KEEPER_IDLE": "600"},
    )
    assert done.returncode == 0, done.stderr
    (keeper,) = keepers_under((str(state),))
    assert umask_of(keeper.pid) == umask


def submit(state: Path, umask: int, templates: list[dict[str, object]]) -> None:
    """Run jobs from a client whose umask is ``umask``, to the keeper of ``state``, until
    they are DONE."""
    code = f"""
        import json, drmaa2
        js = drmaa2.JobSession("s", {str(state)!r}, backend="os")
        jobs = [js.run_job(template) for template in {templates!r}]
        js.wait_all_terminated(jobs, {TIMEOUT})
        print(json.dumps([str(job.get_info().job_state) for job in jobs]))
        js.close()
        """
    done = python(code, umask=umask)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["DONE"] * len(templates), done.stdout


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def shells_mode(directory: Path, umask: int) -> int:
    """The mode of a file that ``sh -c 'echo > file'`` creates in ``directory`` under
    ``umask``."""
    made = directory / f"made-by-the-shell-{umask:o}"
    subprocess.run(["sh", "-c", 'echo x > "$0"', str(made)], umask=umask, check=True)
    try:
        return mode_of(made)
    finally:
        made.unlink()


@pytest.mark.parametrize(
    ("keeper_umask", "client_umask"),
    [(0o000, 0o077), (0o077, 0o000), (0o022, 0o027)],
    ids=["keeper000-client077", "keeper077-client000", "keeper022-client027"],
)
def test_stream_files_get_the_mode_the_submitters_umask_gives(
    state: Path, tmp_path: Path, keeper_umask: int, client_umask: int
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    existing = work / "existing"
    existing.write_text("what was there before, longer than what comes\n")
    existing.chmod(0o604)
    start_keeper(state, keeper_umask)
    sh = "/bin/sh"
    submit(
        state,
        client_umask,
        [
            {
                "remote_command": sh,
                "args": ["-c", "echo out; echo err >&2"],
                "output_path": str(work / "out"),
                "error_path": str(work / "err"),
            },
            {
                "remote_command": sh,
                "args": ["-c", "echo a; echo b >&2"],
                "output_path": str(work / "joined"),
                "join_files": True,
            },
            {"remote_command": sh, "args": ["-c", "echo new"], "output_path": str(existing)},
        ],
    )
    wanted = 0o666 & ~client_umask
    assert wanted == shells_mode(work, client_umask)
    assert (file_text(work / "out"), file_text(work / "err")) == ("out\n", "err\n")
    assert file_text(work / "joined") == "a\nb\n"
    modes = {name: mode_of(work / name) for name in ("out", "err", "joined")}
    assert modes == dict.fromkeys(modes, wanted), {k: oct(v) for k, v in modes.items()}
    assert (file_text(existing), mode_of(existing)) == ("new\n", 0o604), "kept, as by '>'"


def test_a_stream_file_through_a_dangling_symlink_is_created_with_the_submitters_mode(
    state: Path, tmp_path: Path
) -> None:
    link, target = tmp_path / "link", tmp_path / "target"
    link.symlink_to(target.name)
    start_keeper(state, 0o000)
    submit(
        state, 0o077, [{"remote_command": "/bin/echo", "args": ["hi"], "output_path": str(link)}]
    )
    assert link.is_symlink()
    assert (file_text(target), mode_of(target)) == ("hi\n", 0o600)


def _default_acl(user: int, group: int, other: int) -> bytes:
    """A POSIX default ACL of only the owner, group and other entries (the xattr format)."""
    entries = ((0x01, user), (0x04, group), (0x20, other))  # ACL_USER_OBJ, _GROUP_OBJ, _OTHER
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in entries
    )


def test_a_default_acl_decides_as_for_the_submitters_own_redirection(
    state: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    try:
        os.setxattr(shared, "system.posix_acl_default", _default_acl(6, 4, 0))
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip(f"no POSIX ACLs on the file system of {tmp_path}")
        raise
    start_keeper(state, 0o077)
    submit(state, 0o022, [{"remote_command": "/bin/true", "output_path": str(shared / "out")}])
    assert mode_of(shared / "out") == shells_mode(shared, 0o022) == 0o640


def test_starts_that_fail_and_succeed_in_turn_each_get_their_own_outcome(tmp_path: Path) -> None:
    """The keeper keeps the pipes the exec errors of the jobs it starts are reported on, for
    the next starts: a failure reported on one is the failed job's only, never the next
    job's, from the same client (the same thread of the keeper) or from others (threads of
    their own); and the keeper's descriptors do not grow as clients come and go."""
    broken = tmp_path / "broken-script"
    broken.write_text("#!/no/such/interpreter\necho never\n")
    broken.chmod(0o755)
    plain = tmp_path / "plain-script"  # no #! line: run by /bin/sh after ENOEXEC
    plain.write_text("exit 5\n")
    plain.chmod(0o755)
    state = tmp_path / "state"
    expected = [
        (str(broken), JobState.FAILED, None),
        ("/bin/true", JobState.DONE, 0),
        (str(broken), JobState.FAILED, None),
        (str(plain), JobState.FAILED, 5),
        ("/bin/false", JobState.FAILED, 1),
        ("/bin/true", JobState.DONE, 0),
    ]
    with drmaa2.JobSession("spawn", str(state), backend=BACKEND) as js:
        for command, job_state, exit_status in expected * 2:
            job = js.run_job({"remote_command": command})
            job.wait_terminated(TIMEOUT)
            info = job.get_info()
            assert (info.job_state, info.exit_status) == (job_state, exit_status), command
            if exit_status is None:
                assert info.job_sub_state == "start_failed"
                assert "/no/such/interpreter" in (info.annotation or "")
        (keeper,) = keepers_of(state)
        descriptors = keeper.num_fds()
        # Other clients (each served by a thread of its own) start jobs, then go.
        for _ in range(3):
            other = python(_OTHER_CLIENT.format(state=str(state), broken=str(broken)))
            assert other.returncode == 0, other.stderr
            assert other.stdout.split() == ["FAILED", "DONE"]
        wait_until(lambda: keeper.num_fds() <= descriptors, TIMEOUT)
        js.destroy()


#: A second client: one job that fails to start and one that runs, then it exits.
_OTHER_CLIENT = """
import drmaa2
with drmaa2.JobSession("spawn", {state!r}, backend="os") as js:
    for command in ({broken!r}, "/bin/true"):
        job = js.run_job({{"remote_command": command}})
        job.wait_terminated(60)
        print(job.get_info().job_state.name)
"""


def test_the_keeper_knows_that_its_starts_use_vfork_here() -> None:
    """On Linux with CPython, subprocess's fork_exec starts a job by vfork: a failed exec is
    in the error pipe when it returns, so the keeper keeps one pipe per thread (else it
    makes one per start: correct, only slower)."""
    from drmaa2_ostracker.process import forkexec

    forkexec.find_out_vfork()
    assert forkexec._VFORK_WAITS


@pytest.mark.parametrize("ending", ["exit 3", "SIGKILL"])
def test_an_end_peeked_at_is_the_end_wait4_collects_after(ending: str) -> None:
    """The keeper reads a job's whole end, resource usage included, before it collects it
    (so that its end is in the ring first): it is the end ``wait4`` gives when it collects it
    after, and the process stays a zombie until then."""
    assert exits.WHOLE_PEEK, "this machine's waitid is known (x86-64 or 64-bit ARM Linux)"
    burn = "import os, signal, sys; sum(range(3_000_000)); "
    burn += "sys.exit(3)" if ending == "exit 3" else "os.kill(os.getpid(), signal.SIGKILL)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    collected = None
    try:
        with pytest.raises(ChildProcessError):
            exits.peek_end(os.getpid())  # not a child
        seen: list[exits.ExitStatus] = []

        def ended() -> bool:
            found = exits.peek_end(child.pid)
            if found is not None:
                seen.append(found)
            return found is not None

        wait_until(ended, what="the child to end")
        assert exits.peek_end(child.pid) == seen[0], "left to collect: seen again"
        with open(f"/proc/{child.pid}/stat") as stat_file:
            assert stat_file.read().rpartition(")")[2].split()[0] == "Z"
        collected = exits.reap(child.pid)
    finally:
        if collected is None:
            child.kill()
            child.wait()
        else:
            child.returncode = collected.exit_status  # (collected: Popen must not wait)
    expected = (3, "") if ending == "exit 3" else (137, "SIGKILL")
    assert (seen[0].exit_status, seen[0].terminating_signal) == expected
    assert seen[0] == collected
    assert seen[0].user_time + seen[0].system_time > 0 and seen[0].max_rss_kib > 0


def test_a_running_child_peeked_at_after_an_ended_one_is_seen_running() -> None:
    """Each thread reuses its waitid buffers from one end to the next: after they held an
    ended child's end, a running child is still seen running, in the thread that saw the end
    and in another, and the end is seen the same from both."""
    assert exits.WHOLE_PEEK
    ended = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    collected = None
    try:
        wait_until(lambda: exits.peek_end(ended.pid) is not None, what="the child to end")
        found = exits.peek_end(ended.pid)
        assert found is not None and found.exit_status == 7
        assert exits.peek_end(running.pid) is None
        elsewhere: list[object] = []
        thread = threading.Thread(
            target=lambda: elsewhere.extend(
                [exits.peek_end(ended.pid), exits.peek_end(running.pid)]
            )
        )
        thread.start()
        thread.join(60)
        assert elsewhere == [found, None]
        collected = exits.reap(ended.pid)
    finally:
        running.kill()
        running.wait()
        if collected is None:
            ended.kill()
            ended.wait()
        else:
            ended.returncode = collected.exit_status
