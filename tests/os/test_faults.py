"""Faults of the machine the os backend comes through (issue 14): blocking paths, exhausted
limits, full disks, huge arrays. Each test makes the real fault."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, wait_until
from tests.keepers import gone, keepers_under, stop_keepers

BACKEND = "os"


def test_a_fifo_output_path_never_blocks_the_keeper(tmp_path: Path) -> None:
    """A held job whose output path became a FIFO after submission fails to start with the
    reason when released; the keeper goes on starting and reaping the other jobs."""
    fifo = tmp_path / "out.fifo"
    with drmaa2.JobSession("fifo", str(tmp_path / "state"), backend=BACKEND) as js:
        held = js.run_job(
            {"remote_command": "/bin/true", "output_path": str(fifo), "submit_as_hold": True}
        )
        os.mkfifo(fifo)
        held.release()
        held.wait_terminated(TIMEOUT)
        info = held.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
        assert "output_path" in (info.annotation or ""), info.annotation
        assert "FIFO" in (info.annotation or ""), info.annotation
        other = js.run_job({"remote_command": "/bin/true"})
        other.wait_terminated(TIMEOUT)
        assert other.get_state()[0] == JobState.DONE
        js.destroy()


def test_a_fifo_in_an_array_task_path_fails_that_task_only(tmp_path: Path) -> None:
    """An array task whose output path is a FIFO by the time it starts fails; the tasks
    before and after it run to their end."""
    gate = tmp_path / "gate"
    with drmaa2.JobSession("fifo-array", str(tmp_path / "state"), backend=BACKEND) as js:
        array = js.run_bulk_jobs(
            {
                "remote_command": "/bin/sh",
                "args": ["-c", f'[ "$TASK_ID" != 1 ] || until [ -e {gate} ]; do sleep 0.01; done'],
                "output_path": str(tmp_path / f"task-{drmaa2.PARAMETRIC_INDEX}.out"),
            },
            1,
            3,
            1,
            1,
        )
        try:
            wait_until(lambda: array.job_list[0].get_state()[0] == JobState.RUNNING)
            os.mkfifo(tmp_path / "task-2.out")
        finally:
            gate.touch()  # whatever fails, task 1 ends
        js.wait_all_terminated(array.job_list, TIMEOUT)
        infos = [job.get_info() for job in array.job_list]
        js.destroy()
    assert [info.job_state for info in infos] == [JobState.DONE, JobState.FAILED, JobState.DONE]
    assert "FIFO" in (infos[1].annotation or ""), infos[1].annotation


# -- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted for this test (root only); its keepers are stopped before it is
    unmounted."""
    yield from _tmpfs(tmp_path, "4m")


@pytest.fixture
def roomy_fs(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs (room enough for the keeper's fast ways, until it is filled), as
    :func:`small_fs`."""
    yield from _tmpfs(tmp_path, "32m")


def _tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; CI runs this as root")
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        stop_keepers(keepers_under((str(mount),)))
        # A process that just let go of a file there may still hold the mount for a moment.
        wait_until(
            lambda: subprocess.run(["umount", str(mount)], capture_output=True).returncode == 0,
            what=f"unmounting {mount}",
        )


def fill(fs: Path) -> Path:
    """Fill a file system up to its last byte; the file that fills it."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"x" * 65536)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"x" * 512)
    finally:
        os.close(fd)
    return filler


def stored_rows(state: Path) -> dict[str, tuple[int, int | None]]:
    """(state code, exit status) of every job, read from the store file itself."""
    uri = f"file:{state / 'store.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute("SELECT job_id, state, exit_status FROM jobs").fetchall()
    return {job_id: (code, status) for job_id, code, status in rows}


def test_a_full_disk_refuses_submissions_and_starts_nothing(small_fs: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    template = {"remote_command": "/bin/touch", "args": [str(marker)]}
    with drmaa2.JobSession("full", str(small_fs / "state"), backend=BACKEND) as js:
        first = js.run_job({"remote_command": "/bin/true"})
        first.wait_terminated(TIMEOUT)
        before = [job.id for job in js.get_jobs()]
        filler = fill(small_fs)
        for submit in (
            lambda: js.run_job(template),
            lambda: js.run_bulk_jobs(template, 1, 5, 1, 2),
        ):
            with pytest.raises(drmaa2.OutOfResourceException) as refused:
                submit()
            message = str(refused.value)
            assert str(small_fs / "state" / "store.sqlite3") in message
            assert "needed" in message
        # Reads go on; nothing started, nothing recorded.
        assert [job.id for job in js.get_jobs()] == before
        assert first.get_info().exit_status == 0
        assert not marker.exists()
        filler.unlink()
        job = js.run_job(template)
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] == JobState.DONE
        assert marker.exists()
        js.destroy()


def test_jobs_ending_on_a_full_disk_are_recorded_once_there_is_space(
    small_fs: Path, tmp_path: Path
) -> None:
    """The exact ends of jobs that end while nothing can be written are shown at once, and
    written once space is freed; queued tasks wait meanwhile; the session goes on."""
    gate = tmp_path / "gate"
    wait_gate = f"until [ -e {gate} ]; do sleep 0.01; done"
    state = small_fs / "state"
    with drmaa2.JobSession("full", str(state), backend=BACKEND) as js:
        jobs = [
            js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"{wait_gate}; exit 3"]})
            for _ in range(3)
        ]
        array = js.run_bulk_jobs(
            {"remote_command": "/bin/sh", "args": ["-c", f"{wait_gate}; exit 0"]}, 1, 6, 1, 2
        )
        try:
            js.wait_all_started([*jobs, *array.job_list[:2]], TIMEOUT)
            filler = fill(small_fs)
        finally:
            gate.touch()  # whatever fails, the jobs end
        js.wait_all_terminated(jobs, TIMEOUT)
        for job in jobs:
            info = job.get_info()
            assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
            assert "not yet in the store" in (info.annotation or ""), info.annotation
        js.wait_all_terminated(array.job_list[:2], TIMEOUT)
        # No task starts while its start cannot be recorded.
        assert [job.get_state()[0] for job in array.job_list[2:]] == [JobState.QUEUED] * 4
        assert stored_rows(state)[jobs[0].id][0] == int(JobState.RUNNING)
        filler.unlink()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        wait_until(
            lambda: all(code in (7, 8) for code, _ in stored_rows(state).values()),
            what="every end written to the store",
        )
        rows = stored_rows(state)
        assert [rows[job.id] for job in jobs] == [(int(JobState.FAILED), 3)] * 3
        assert [rows[job.id] for job in array.job_list] == [(int(JobState.DONE), 0)] * 6
        assert jobs[0].get_info().annotation == "exited with status 3"
        after = js.run_job({"remote_command": "/bin/true"})
        after.wait_terminated(TIMEOUT)
        assert after.get_state()[0] == JobState.DONE
        js.destroy()


def leave_free(fs: Path, free: int) -> Path:
    """Fill a file system but for ``free`` bytes; the file that fills it."""
    filler = fill(fs)
    with open(filler, "r+b") as file:
        file.truncate(filler.stat().st_size - free)
    return filler


def assert_no_space(error: drmaa2.OutOfResourceException, state: Path) -> None:
    """The error names the store and the space it needs."""
    message = str(error)
    assert str(state / "store.sqlite3") in message, message
    assert "needed" in message, message


def test_terminating_an_array_on_a_full_disk_raises_and_changes_nothing(small_fs: Path) -> None:
    """A termination that cannot be written raises, and its untouched tasks are neither
    lost nor started by the next keeper; once there is space, it works and is kept."""
    state = small_fs / "state"
    with drmaa2.JobSession("full", str(state), backend=BACKEND) as js:
        array = js.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["300"]}, 1, 4, 1, 1)
        array.job_list[0].wait_started(TIMEOUT)
        filler = fill(small_fs)
        with pytest.raises(drmaa2.OutOfResourceException) as refused:
            array.terminate()
        assert_no_space(refused.value, state)
        expected = [JobState.RUNNING] + [JobState.QUEUED] * 3
        assert [job.get_state()[0] for job in array.job_list] == expected
        assert len(js.get_jobs()) == 4
        filler.unlink()
    stop_keepers(keepers_under((str(state),)))  # its jobs keep running
    with drmaa2.open_job_session("full", str(state), backend=BACKEND) as js:
        array = js.get_job_array(array.id)
        assert [job.get_state()[0] for job in array.job_list] == expected
        array.terminate()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        assert [job.get_state()[0] for job in array.job_list] == [JobState.FAILED] * 4
    stop_keepers(keepers_under((str(state),)))
    with drmaa2.open_job_session("full", str(state), backend=BACKEND) as js:
        assert [job.get_state()[0] for job in js.get_jobs()] == [JobState.FAILED] * 4
        js.destroy()


def test_holding_an_array_on_a_full_disk_raises_and_changes_nothing(
    small_fs: Path, tmp_path: Path
) -> None:
    """A hold that cannot be written raises with every task as it was; once there is space,
    a hold is stored: the next keeper starts none of the held tasks."""
    gate = tmp_path / "gate"
    state = small_fs / "state"
    template = {
        "remote_command": "/bin/sh",
        "args": ["-c", f"until [ -e {gate} ]; do sleep 0.01; done"],
    }
    try:
        with drmaa2.JobSession("full", str(state), backend=BACKEND) as js:
            array = js.run_bulk_jobs(template, 1, 4, 1, 1)
            array.job_list[0].wait_started(TIMEOUT)
            filler = fill(small_fs)
            with pytest.raises(drmaa2.OutOfResourceException) as refused:
                array.hold()
            assert_no_space(refused.value, state)
            expected = [JobState.RUNNING] + [JobState.QUEUED] * 3
            assert [job.get_state()[0] for job in array.job_list] == expected
            filler.unlink()
            array.hold()
            held = [JobState.RUNNING] + [JobState.QUEUED_HELD] * 3
            assert [job.get_state()[0] for job in array.job_list] == held
        stop_keepers(keepers_under((str(state),)))
    finally:
        gate.touch()  # whatever failed, the running task ends (it outlives its keeper)
    with drmaa2.open_job_session("full", str(state), backend=BACKEND) as js:
        array = js.get_job_array(array.id)
        array.job_list[0].wait_terminated(TIMEOUT)
        assert [job.get_state()[0] for job in array.job_list[1:]] == [JobState.QUEUED_HELD] * 3
        array.release()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        assert [job.get_state()[0] for job in array.job_list[1:]] == [JobState.DONE] * 3
        js.destroy()


def test_an_end_only_in_the_ring_survives_a_keeper_starting_on_a_full_disk(
    small_fs: Path,
) -> None:
    """A job end a wait returned, kept in the ring of ends when the keeper was killed (with
    the job's start, if its row was not inserted yet), is the job's end for the next keeper
    even if the disk is full then (shown at once, as not yet in the store), and is stored
    once there is space: never "unobserved"."""
    state = small_fs / "state"
    js = drmaa2.JobSession("ring", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", "sleep 0.3; exit 5"]})
    job.wait_terminated(TIMEOUT)
    (keeper,) = keepers_under((str(state),))
    keeper.kill()  # before the end is written to its row (within half a second)
    keeper.wait(TIMEOUT)
    js.close()
    # Its end is in the ring only; its start too, unless the row was written meanwhile.
    assert stored_rows(state).get(job.id) in (None, (int(JobState.RUNNING), None))
    filler = fill(small_fs)
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        info = js.get_jobs()[0].get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 5)
        assert "not yet in the store" in (info.annotation or ""), info.annotation
        filler.unlink()
        wait_until(
            lambda: stored_rows(state)[job.id] == (int(JobState.FAILED), 5),
            what="the end written to the store",
        )
        info = js.get_jobs()[0].get_info()
        assert info.annotation == "exited with status 5"
    stop_keepers(keepers_under((str(state),)))
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        info = js.get_jobs()[0].get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 5)
        js.destroy()


def test_an_end_in_the_ring_of_a_job_whose_row_is_stored_survives_a_full_disk(
    roomy_fs: Path,
) -> None:
    """A job whose row was stored (its start still in the ring, which is cleared only once
    all it holds is stored) ends on a full disk and its keeper is killed: the next keeper,
    on the full disk, shows its exact end and stores it once there is space. (The ring's
    old start was taken for the job a second time, without the end: FAILED
    exit_status_unobserved, although a wait had returned exit status 5.)"""
    state = roomy_fs / "state"
    js = drmaa2.JobSession("ring", str(state), backend=BACKEND)
    # Room enough (4 MiB) and a short template: its start goes to the ring.
    script = "trap 'exit 5' USR1; while :; do sleep 0.01; done"
    job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", script]})
    wait_until(lambda: job.id in stored_rows(state), what="the job's row to be stored")
    filler = fill(roomy_fs)
    os.kill(int(job.get_info().implementation_specific["pid"]), signal.SIGUSR1)
    job.wait_terminated(TIMEOUT)
    assert "not yet in the store" in (job.get_info().annotation or "")
    (keeper,) = keepers_under((str(state),))
    keeper.kill()
    keeper.wait(TIMEOUT)
    js.close()
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        info = js.get_jobs()[0].get_info()
        assert (info.job_state, info.job_sub_state, info.exit_status) == (
            JobState.FAILED,
            "",
            5,
        ), info.annotation
        filler.unlink()
        wait_until(
            lambda: stored_rows(state)[job.id] == (int(JobState.FAILED), 5),
            what="the end written to the store",
        )
        js.destroy()


def test_ends_shown_while_writes_fail_survive_a_killed_keeper(small_fs: Path) -> None:
    """Once a write failed (a full disk), the ends a wait or a listing showed are still in
    the ring of ends, not in the keeper's memory only: a keeper killed then (its anchor
    alive) loses none of them, a single job's or an array task's. (They were lost, FAILED
    "unobserved", when the failed write was an array's.)"""
    state = small_fs / "state"
    go = small_fs.parent / "go"  # not on the full file system
    js = drmaa2.JobSession("ring", str(state), backend=BACKEND)
    single = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"while [ ! -e {go} ]; do sleep 0.01; done; exit 9"],
        }
    )
    array = js.run_bulk_jobs(
        {"remote_command": "/bin/sh", "args": ["-c", "sleep 0.3; exit $(($TASK_ID % 7))"]},
        1,
        6,
        max_parallel=2,
    )
    first = array.job_list[:2]
    js.wait_all_started(first, TIMEOUT)
    filler = fill(small_fs)
    js.wait_all_terminated(first, TIMEOUT)
    wait_until(
        lambda: "not yet in the store" in (first[1].get_info().annotation or ""),
        what="the ends' write to fail",
    )
    go.touch()  # the single job ends while writes fail
    single.wait_terminated(TIMEOUT)
    shown = [(job.get_info().job_state, job.get_info().exit_status) for job in [single, *first]]
    assert shown == [(JobState.FAILED, 9), (JobState.FAILED, 1), (JobState.FAILED, 2)]
    (keeper,) = keepers_under((str(state),))
    keeper.kill()
    keeper.wait(TIMEOUT)
    js.close()
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        jobs = {job.id: job for job in js.get_jobs()}
        infos = [jobs[job.id].get_info() for job in [single, *first]]
        assert [(i.job_state, i.exit_status) for i in infos] == shown, infos
        # The tasks whose start could not be written are the array's still.
        assert [task.id for task in js.get_job_array(array.id).job_list] == [
            f"{array.id}.{index}" for index in range(1, 7)
        ]
        filler.unlink()
        tasks = js.get_job_array(array.id).job_list
        js.wait_all_terminated(tasks, TIMEOUT)
        assert [task.get_info().exit_status for task in tasks] == [1, 2, 3, 4, 5, 6]
        wait_until(
            lambda: stored_rows(state)[single.id] == (int(JobState.FAILED), 9),
            what="the end written to the store",
        )
        js.destroy()


def test_a_start_only_in_the_ring_survives_a_keeper_starting_on_a_full_disk(
    roomy_fs: Path,
) -> None:
    """A single job's start, kept in the ring of ends when the keeper was killed (its row is
    inserted within half a second), is the job's record for the next keeper even if the disk
    is full then: the job is taken over (its process ended unwatched, reaped by the dead
    keeper's anchor: its exact end), shown at once as not yet in the store, and stored once
    there is space: never lost."""
    state = roomy_fs / "state"
    js = drmaa2.JobSession("ring", str(state), backend=BACKEND)
    # The job stops the keeper after run_job returned, before the row is written (0.5 s):
    # on a loaded machine it may come too late, and is then tried again. It exits once every
    # thread of the keeper has stopped (until then one of them could still reap it).
    script = (
        'sleep 0.05; kill -STOP "$PPID"; '
        "while grep -h '^State:' /proc/$PPID/task/*/status | grep -qv 'T (stopped)'; "
        "do sleep 0.01; done; exit 5"
    )
    for _ in range(5):
        job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", script]})
        (keeper,) = keepers_under((str(state),))
        wait_until(lambda: keeper.status() == psutil.STATUS_STOPPED, what="the keeper to stop")  # noqa: B023
        if job.id not in stored_rows(state):
            break  # in the ring only
        keeper.resume()
        job.wait_terminated(TIMEOUT)
    else:
        pytest.fail("the job's row was written before the keeper stopped, 5 times")
    anchor = keeper.ppid()
    keeper.kill()
    keeper.wait(TIMEOUT)
    js.close()
    # The job ends once its keeper is gone, and its anchor, having reaped it, exits.
    wait_until(lambda: gone(anchor), what="the anchor to record the job's end")
    filler = fill(roomy_fs)
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        found = {listed.id: listed for listed in js.get_jobs()}[job.id]
        info = found.get_info()
        assert found.get_state() == (JobState.FAILED, "")
        assert info.exit_status == 5, "its exact end"
        assert "not yet in the store" in (info.annotation or ""), info.annotation
        filler.unlink()
        wait_until(
            lambda: stored_rows(state).get(job.id) == (int(JobState.FAILED), 5),
            what="the job written to the store",
        )
    stop_keepers(keepers_under((str(state),)))
    with drmaa2.open_job_session("ring", str(state), backend=BACKEND) as js:
        found = {listed.id: listed for listed in js.get_jobs()}[job.id]
        assert found.get_state() == (JobState.FAILED, "")
        assert found.get_info().exit_status == 5
        js.destroy()


#: The variable that sets how long an idle keeper stays (seconds).
IDLE = "DRMAA2_OS_KEEPER_IDLE"
#: How long "the keeper does not exit" is watched: several of its idle checks (0.25 s).
NOT_YET = 2.0

#: A new client process's view of every job of session "lone": id → [state, exit status,
#: annotation], as JSON.
_SEEN_ELSEWHERE = """
import json, sys, drmaa2
with drmaa2.open_job_session("lone", sys.argv[1], backend="os") as js:
    infos = [job.get_info() for job in js.get_jobs()]
print(json.dumps({i.job_id: [i.job_state.name, i.exit_status, i.annotation] for i in infos}))
"""


def seen_elsewhere(state: Path) -> dict[str, list[object]]:
    """What a new client process is shown of session "lone"'s jobs (see _SEEN_ELSEWHERE)."""
    seen = subprocess.run(
        [sys.executable, "-c", _SEEN_ELSEWHERE, str(state)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert seen.returncode == 0, seen.stderr
    found: dict[str, list[object]] = json.loads(seen.stdout)
    return found


def run_gated_job(js: drmaa2.JobSession, gate: Path, status: int) -> drmaa2.Job:
    """A job that runs until ``gate`` exists and then exits with ``status``, started."""
    wait_gate = f"until [ -e {gate} ]; do sleep 0.01; done"
    job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", f"{wait_gate}; exit {status}"]})
    job.wait_started(TIMEOUT)
    return job


def test_a_lone_jobs_end_on_a_full_disk_is_shown_at_once_from_any_process(
    small_fs: Path, tmp_path: Path
) -> None:
    """A job that ends while nothing can be written, and nothing else writes: a read of the
    store right after its wait (here: listing the sessions), which cannot write the end to
    its row, does not lose it. Its exact end is shown at once, annotated as not yet in the
    store, from any process, and written once there is space."""
    gate = tmp_path / "gate"
    state = small_fs / "state"
    with drmaa2.JobSession("lone", str(state), backend=BACKEND) as js:
        job = run_gated_job(js, gate, 3)
        try:
            filler = fill(small_fs)
        finally:
            gate.touch()  # whatever fails, the job ends
        job.wait_terminated(TIMEOUT)
        assert drmaa2.get_job_session_names(str(state), backend=BACKEND) == ["lone"]
        assert job.get_state()[0] == JobState.FAILED
        info = job.get_info()
        assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
        assert "not yet in the store (no space left" in (info.annotation or ""), info.annotation
        state_name, status, annotation = seen_elsewhere(state)[job.id]
        assert (state_name, status) == ("FAILED", 3)
        assert "not yet in the store" in str(annotation), annotation
        assert stored_rows(state)[job.id] == (int(JobState.RUNNING), None)
        filler.unlink()
        wait_until(
            lambda: stored_rows(state)[job.id] == (int(JobState.FAILED), 3),
            what="the end written to the store",
        )
        assert job.get_info().annotation == "exited with status 3"
        assert seen_elsewhere(state)[job.id] == ["FAILED", 3, "exited with status 3"]
        js.destroy()


def test_a_keeper_holding_an_unwritten_end_does_not_exit_until_it_is_written(
    small_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keeper with nothing to do but an end it could not write yet stays, even with no
    idle time and no client left the moment the wait returned, and exits once the end is
    in the store."""
    monkeypatch.setenv(IDLE, "0")
    gate = tmp_path / "gate"
    state = small_fs / "state"
    js = drmaa2.JobSession("lone", str(state), backend=BACKEND)
    (keeper,) = keepers_under((str(state),))
    job = run_gated_job(js, gate, 4)
    try:
        filler = fill(small_fs)
    finally:
        gate.touch()  # whatever fails, the job ends
    job.wait_terminated(TIMEOUT)
    js.close()
    with pytest.raises(psutil.TimeoutExpired):
        keeper.wait(NOT_YET)
    assert stored_rows(state)[job.id] == (int(JobState.RUNNING), None)
    filler.unlink()
    keeper.wait(TIMEOUT)  # the end written, it goes
    assert stored_rows(state)[job.id] == (int(JobState.FAILED), 4)
    drmaa2.destroy_job_session("lone", str(state), backend=BACKEND)


def test_a_submission_bigger_than_the_free_space_is_refused_and_starts_nothing(
    small_fs: Path, tmp_path: Path
) -> None:
    """The space a submission needs counts its size; near a full disk a job is recorded
    before it starts, so a job run_job answered survives a killed keeper."""
    marker = tmp_path / "ran"
    state = small_fs / "state"
    with drmaa2.JobSession("big", str(state), backend=BACKEND) as js:
        first = js.run_job({"remote_command": "/bin/true"})
        first.wait_terminated(TIMEOUT)
        wait_until(
            lambda: stored_rows(state)[first.id][0] == int(JobState.DONE),
            what="the first job's end written to its row",
        )
        before = stored_rows(state)
        filler = leave_free(small_fs, 300 * 1024)  # more than the fixed reserve
        environment = {f"V{k}": "x" * 120 * 1024 for k in range(4)}
        big = {"remote_command": "/bin/touch", "args": [str(marker)]}
        for submit in (
            lambda: js.run_job({**big, "job_environment": environment}),
            lambda: js.run_bulk_jobs({**big, "job_environment": environment}, 1, 3, 1, 1),
        ):
            with pytest.raises(drmaa2.OutOfResourceException) as refused:
                submit()
            assert_no_space(refused.value, state)
        assert stored_rows(state) == before
        assert not marker.exists()
        job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", "sleep 300"]})
        assert job.id in stored_rows(state)  # recorded before run_job answered
        (keeper,) = keepers_under((str(state),))
        keeper.kill()
        keeper.wait(TIMEOUT)
    filler.unlink()
    with drmaa2.open_job_session("big", str(state), backend=BACKEND) as js:
        assert job.id in [found.id for found in js.get_jobs()]
        for found in js.get_jobs():
            with contextlib.suppress(drmaa2.InvalidStateException):
                found.terminate()
        js.wait_all_terminated(js.get_jobs(), TIMEOUT)
        assert not marker.exists()
        js.destroy()


# -- huge arrays ---------------------------------------------------------------------------


def test_an_array_above_the_documented_maximum_is_refused_at_once(tmp_path: Path) -> None:
    from drmaa2_ostracker.store.records import MAX_ARRAY_TASKS

    with drmaa2.JobSession("huge", str(tmp_path / "state"), backend=BACKEND) as js:
        before = js.get_jobs()
        for end in (2**62, MAX_ARRAY_TASKS + 1):
            with pytest.raises(drmaa2.InvalidArgumentException, match=f"{MAX_ARRAY_TASKS:,}"):
                js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, end, 1, 2)
        assert js.get_jobs() == before
        # A strided array of many indices but few tasks is fine.
        array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 2**62, 2**61, 2)
        assert [job.id.split(".")[1] for job in array.job_list] == [
            "1",
            str(2**61 + 1),
        ]
        js.wait_all_terminated(array.job_list, TIMEOUT)
        # The refused arrays left no record behind: only the strided one is there.
        uri = f"file:{tmp_path / 'state' / 'store.sqlite3'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            assert db.execute("SELECT array_id FROM arrays").fetchall() == [(array.id,)]
        js.destroy()


# -- exhausted limits ----------------------------------------------------------------------


#: The RLIMIT_NOFILE the keeper of the limit tests starts with: a score of jobs fill it.
FEW_DESCRIPTORS = 40

_START_WITH_FEW = """
import resource, sys
import drmaa2
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))
drmaa2.JobSession("limits", sys.argv[1], backend="os").close()
"""


@contextlib.contextmanager
def keeper_with_few_descriptors(state: str) -> Iterator[drmaa2.JobSession]:
    """A session whose keeper was started by a child process with an RLIMIT_NOFILE of
    FEW_DESCRIPTORS (the keeper inherits it); this process keeps its own limit."""
    subprocess.run(
        [sys.executable, "-c", _START_WITH_FEW, state, str(FEW_DESCRIPTORS)],
        check=True,
        timeout=TIMEOUT,
    )
    (keeper,) = keepers_under((state,))
    assert keeper.rlimit(psutil.RLIMIT_NOFILE)[0] == FEW_DESCRIPTORS
    js = drmaa2.JobSession("limits", state, backend=BACKEND)
    try:
        yield js
    finally:
        unfinished = []
        for job in js.get_jobs():
            with contextlib.suppress(drmaa2.InvalidStateException):
                job.terminate()
                unfinished.append(job)
        if unfinished:
            js.wait_all_terminated(unfinished, TIMEOUT)
        js.destroy()


def test_a_descriptor_limit_refuses_a_job_naming_it_and_the_keeper_recovers(
    tmp_path: Path,
) -> None:
    sleeper = {"remote_command": "/bin/sleep", "args": ["300"]}
    with keeper_with_few_descriptors(str(tmp_path / "state")) as js:
        started: list[drmaa2.Job] = []
        refused: drmaa2.OutOfResourceException | None = None
        for _ in range(200):
            try:
                started.append(js.run_job(sleeper))
            except drmaa2.OutOfResourceException as error:
                refused = error
                break
        assert refused is not None, "200 jobs ran under a limit of a few descriptors"
        assert "RLIMIT_NOFILE" in str(refused), refused
        assert "not started" in str(refused), refused
        assert started, "the limit left no room for a single job"
        # Every job that runs is recorded, and nothing else runs.
        recorded = {job.id for job in js.get_jobs()}
        assert recorded == {job.id for job in started}
        pids = {job.get_info().implementation_specific["pid"] for job in started}
        (keeper,) = keepers_under((str(tmp_path / "state"),))
        assert {str(child.pid) for child in keeper.children()} == pids
        # Once descriptors are free again, jobs start again, with nothing to do.
        for job in started[: len(started) // 2]:
            job.terminate()
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] == JobState.DONE


def test_queued_tasks_wait_for_a_descriptor_limit_and_start_once_it_allows(
    tmp_path: Path,
) -> None:
    with keeper_with_few_descriptors(str(tmp_path / "state")) as js:
        array = js.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["300"]}, 1, 60)
        tasks = array.job_list

        def waiting() -> list[drmaa2.Job]:
            return [t for t in tasks if "RLIMIT_NOFILE" in (t.get_info().annotation or "")]

        wait_until(lambda: bool(waiting()), what="a task waiting for the descriptor limit")
        held = waiting()
        assert all(t.get_state()[0] == JobState.QUEUED for t in held)
        running = [t for t in tasks if t.get_state()[0] == JobState.RUNNING]
        assert running and len(running) + len(held) <= len(tasks)
        for task in running:
            task.terminate()
        # The keeper tries again by itself: a waiting task starts, its note gone.
        js.wait_any_started(held, TIMEOUT)
        started = [t for t in held if t.get_state()[0] == JobState.RUNNING]
        assert started and started[0].get_info().annotation is None


def store_count(state: Path, sql: str) -> int:
    """One number read from the store file itself."""
    uri = f"file:{state / 'store.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute(sql).fetchone()[0])


def test_a_million_task_array_costs_nothing_until_its_tasks_are_touched(tmp_path: Path) -> None:
    """The store and the keeper hold the tasks that started or were controlled, not the
    others; every task is listed and answers queries; a killed keeper's successor goes on
    from where it was."""
    state = tmp_path / "state"
    n = 1_000_000
    with drmaa2.JobSession("huge", str(state), backend=BACKEND) as js:
        before = js.run_job({"remote_command": "/bin/true"})
        before.wait_terminated(TIMEOUT)
        (keeper,) = keepers_under((str(state),))
        rss = keeper.memory_info().rss
        array = js.run_bulk_jobs({"remote_command": "/bin/true", "job_name": "many"}, 1, n, 1, 2)
        after = js.run_job({"remote_command": "/bin/true"})
        tasks = array.job_list
        assert len(tasks) == n and tasks[-1].id == f"{array.id}.{n}"
        ids = [job.id for job in js.get_jobs()]
        # Every task, each in its place: after the job before, before the job after.
        assert len(ids) == n + 2
        assert ids[0] == before.id and ids[-1] == after.id
        assert ids[1:3] == [f"{array.id}.1", f"{array.id}.2"]
        assert ids[-2] == f"{array.id}.{n}"
        last = tasks[-1].get_info()
        assert (last.job_state, last.job_name, last.job_id) == (
            JobState.QUEUED,
            "many",
            tasks[-1].id,
        )
        assert last.submission_time is not None
        assert [job.id for job in js.get_jobs({"job_id": tasks[-3].id})] == [tasks[-3].id]
        # Touched by their ids: a task held and one terminated, long before their turn.
        tasks[-1].hold()
        tasks[-2].terminate()
        assert tasks[-1].get_state()[0] == JobState.QUEUED_HELD
        assert tasks[-2].get_state()[0] == JobState.FAILED
        js.wait_all_terminated(tasks[:20], TIMEOUT)
        assert {job.get_state()[0] for job in tasks[:20]} == {JobState.DONE}
        rows = store_count(state, "SELECT count(*) FROM jobs")
        assert rows < n // 10, f"{rows} tasks written before they were touched"
        assert keeper.memory_info().rss - rss < 32 * 2**20
        # A successor keeper goes on from the cursor, the touched tasks as they were.
        keeper.kill()
        keeper.wait(TIMEOUT)
        later = tasks[len(tasks[:20]) + 200]
        later.wait_terminated(TIMEOUT)
        assert later.get_state()[0] == JobState.DONE
        assert tasks[-1].get_state()[0] == JobState.QUEUED_HELD
        assert tasks[-2].get_state()[0] == JobState.FAILED
        done = store_count(state, f"SELECT count(*) FROM jobs WHERE array_id = '{array.id}'")
        assert done < n // 10
        js.destroy()


def test_a_deadline_ends_an_arrays_untouched_tasks_too(tmp_path: Path) -> None:
    with drmaa2.JobSession("deadline", str(tmp_path / "state"), backend=BACKEND) as js:
        deadline = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
        array = js.run_bulk_jobs(
            {"remote_command": "/bin/sleep", "args": ["60"], "deadline_time": deadline},
            1,
            10_000,
            1,
            1,
        )
        js.wait_all_terminated([array.job_list[0], array.job_list[-1]], TIMEOUT)
        failed = js.get_jobs({"job_state": JobState.FAILED})
        assert len(failed) == 10_000
        last = array.job_list[-1].get_info()
        assert last.job_sub_state == "deadline_reached"
        assert "deadline" in (last.annotation or "")
        js.destroy()


def test_a_keeper_out_of_descriptors_turns_connections_away_naming_the_limit(
    tmp_path: Path,
) -> None:
    """Connections beyond the keeper's descriptors are answered with the reason and closed
    (never left hanging); once they are gone, the keeper serves as before."""
    from drmaa2_ostracker.keeper.protocol import Channel

    state = tmp_path / "state"
    with keeper_with_few_descriptors(str(state)) as js:
        held: list[socket.socket] = []
        refusal = None
        try:
            for _ in range(200):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(state / "keeper.sock"))
                held.append(sock)
                # An accepted connection waits for its hello: silence. A turned-away one is
                # answered at once.
                if select.select([sock], [], [], 0.2)[0]:
                    (ok, refusal), _ = Channel(sock).receive()
                    assert not ok
                    break
        finally:
            for sock in held:
                sock.close()
        assert refusal is not None, "200 connections taken by a keeper of few descriptors"
        kind, message = refusal
        assert kind == "OutOfResourceException" and "RLIMIT_NOFILE" in message, refusal
        # Gone: the keeper's threads saw each connection end and closed its socket.
        (keeper,) = keepers_under((str(state),))
        wait_until(
            lambda: keeper.num_fds() <= FEW_DESCRIPTORS - 12,
            what="the keeper to close the connections that ended",
        )
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] == JobState.DONE


def test_untouched_tasks_of_several_arrays_are_listed_each_in_its_place(tmp_path: Path) -> None:
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=300)
    with drmaa2.JobSession("places", str(tmp_path / "state"), backend=BACKEND) as js:
        first = js.run_job({"remote_command": "/bin/true"})
        timed = js.run_bulk_jobs({"remote_command": "/bin/true", "start_time": later}, 1, 3)
        middle = js.run_job({"remote_command": "/bin/true"})
        held = js.run_bulk_jobs({"remote_command": "/bin/true", "submit_as_hold": True}, 5, 9, 2)
        last = js.run_job({"remote_command": "/bin/true"})
        expected = [
            first.id,
            *(task.id for task in timed.job_list),
            middle.id,
            *(task.id for task in held.job_list),
            last.id,
        ]
        assert [job.id for job in js.get_jobs()] == expected
        queued = [job.id for job in js.get_jobs({"job_state": JobState.QUEUED})]
        assert queued == [task.id for task in timed.job_list]
        assert [job.id for job in js.get_jobs({"job_state": JobState.QUEUED_HELD})] == [
            task.id for task in held.job_list
        ]
        # One task touched out of order keeps its place.
        held.job_list[1].release()
        assert [job.id for job in js.get_jobs()] == expected
        for array in (timed, held):
            array.terminate()
        js.wait_all_terminated(js.get_jobs(), TIMEOUT)
        js.destroy()
