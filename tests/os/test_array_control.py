"""Array-wide control of the os backend: one keeper request acts on every task of an array,
its untouched tasks all at once (issue 14, point 4; issue 13, point 8). A million-task array is
held, released and terminated without its tasks being written one by one, listed with the
right states afterwards, and a held array stays held under the next keeper."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, wait_until
from tests.os.test_persistence import keepers_of, kill_keeper

BACKEND = "os"
N = 1_000_000
SLEEP = {"remote_command": "/bin/sleep", "args": ["60"]}


def store_count(state: Path, sql: str) -> int:
    """One number read from the store file itself."""
    uri = f"file:{state / 'store.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute(sql).fetchone()[0])


def the_keeper(state: Path) -> psutil.Process:
    """The one keeper of a state directory."""
    (keeper,) = keepers_of(state)
    return keeper


def running_jobs(keeper: psutil.Process) -> list[psutil.Process]:
    """The keeper's children that are still alive (its running jobs)."""
    return [child for child in keeper.children() if child.status() != psutil.STATUS_ZOMBIE]


def test_a_million_task_array_is_held_released_and_terminated_as_a_whole(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with drmaa2.JobSession("million", str(state), backend=BACKEND) as js:
        before = js.run_job({"remote_command": "/bin/true"})
        before.wait_terminated(TIMEOUT)
        keeper = the_keeper(state)
        rss = keeper.memory_info().rss
        array = js.run_bulk_jobs({**SLEEP, "job_name": "many"}, 1, N, 1, 2)
        tasks = array.job_list
        first, second, third, fourth = tasks[:4]
        js.wait_all_started([first, second], TIMEOUT)

        array.hold()  # the two running tasks are not for hold: the million others are held
        assert [first.get_state()[0], second.get_state()[0]] == [JobState.RUNNING] * 2
        assert third.get_state()[0] == JobState.QUEUED_HELD
        last = tasks[-1].get_info()
        assert (last.job_state, last.job_name) == (JobState.QUEUED_HELD, "many")
        assert len(js.get_jobs({"job_state": JobState.QUEUED_HELD})) == N - 2
        # Ending the running ones frees their slots: nothing new starts (terminate returns once
        # the task is reaped, and the freed slot is dispatched under the same lock).
        first.terminate()
        second.terminate()
        assert third.get_state()[0] == JobState.QUEUED_HELD
        assert running_jobs(keeper) == []
        rows = store_count(state, f"SELECT count(*) FROM jobs WHERE array_id = '{array.id}'")
        assert rows == 2, f"{rows} tasks written: the held ones were written one by one"

        array.release()
        assert tasks[-1].get_state()[0] == JobState.QUEUED
        js.wait_all_started([third, fourth], TIMEOUT)
        assert tasks[4].get_state()[0] == JobState.QUEUED
        assert len(running_jobs(keeper)) == 2

        array.terminate()  # returns once the running tasks are reaped
        assert running_jobs(keeper) == []
        js.wait_all_terminated([third, fourth, tasks[4], tasks[-1]], TIMEOUT)
        ids = [job.id for job in js.get_jobs()]
        assert ids == [before.id, *(f"{array.id}.{index}" for index in range(1, N + 1))]
        assert len(js.get_jobs({"job_state": JobState.FAILED})) == N
        assert js.get_jobs({"job_state": JobState.QUEUED}) == []
        for task, started in ((third, True), (tasks[4], False), (tasks[-1], False)):
            info = task.get_info()
            assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "terminated")
            assert (info.dispatch_time is not None) is started
        assert "before it started" in (tasks[-1].get_info().annotation or "")
        assert keeper.memory_info().rss - rss < 64 * 2**20
        js.destroy()


def test_a_held_array_stays_held_under_the_next_keeper(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with drmaa2.JobSession("held", str(state), backend=BACKEND) as js:
        array = js.run_bulk_jobs(SLEEP, 1, N, 1, 2)
        tasks = array.job_list
        js.wait_all_started(tasks[:2], TIMEOUT)
        array.hold()
        tasks[0].terminate()
        kill_keeper(state)  # SIGKILL: the running task 2 is left to the next keeper
        # The next keeper (started by this call) adopts task 2, and keeps the rest held
        # although a slot is free: it dispatched them, if at all, before it answered.
        assert tasks[1].get_state()[0] == JobState.RUNNING
        assert tasks[2].get_state()[0] == JobState.QUEUED_HELD
        assert tasks[-1].get_state()[0] == JobState.QUEUED_HELD
        rows = store_count(state, f"SELECT count(*) FROM jobs WHERE array_id = '{array.id}'")
        assert rows == 2
        array.release()
        tasks[2].wait_started(TIMEOUT)
        array.terminate()
        js.wait_all_terminated([tasks[1], tasks[2], tasks[-1]], TIMEOUT)
        assert tasks[-1].get_state()[0] == JobState.FAILED
        kill_keeper(state)
        assert tasks[-1].get_state()[0] == JobState.FAILED, "terminated for good"
        assert js.get_jobs({"job_state": JobState.QUEUED}) == []
        js.destroy()


def test_an_array_with_a_task_reaped_is_controlled_as_a_whole_too(tmp_path: Path) -> None:
    """A JobArray listing what is left (a task reaped in the middle) still holds the
    untouched tasks at once; a stale JobArray names the task that is gone."""
    state = tmp_path / "state"
    n = 100_000
    with drmaa2.JobSession("reaped", str(state), backend=BACKEND) as js:
        array = js.run_bulk_jobs(SLEEP, 1, n, 1, 2)
        tasks = array.job_list
        js.wait_all_started(tasks[:2], TIMEOUT)
        tasks[500].terminate()
        tasks[500].reap()
        left = js.get_job_array(array.id)
        assert len(left.job_list) == n - 1
        left.hold()
        assert tasks[-1].get_state()[0] == JobState.QUEUED_HELD
        assert tasks[2].get_state()[0] == JobState.QUEUED_HELD
        rows = store_count(state, f"SELECT count(*) FROM jobs WHERE array_id = '{array.id}'")
        assert rows == 2, "the held tasks were written one by one"
        reaped = tasks[500]
        array.terminate()  # task 501 was reaped: passed over, the rest are ended
        assert reaped not in array.job_list
        js.wait_all_terminated([tasks[0], tasks[1], tasks[-1]], TIMEOUT)
        assert js.get_jobs({"job_state": JobState.QUEUED_HELD}) == []
        wait_until(lambda: len(js.get_jobs({"job_state": JobState.FAILED})) == n - 1)
        js.destroy()


def test_waits_over_more_tasks_than_one_store_query_takes(tmp_path: Path) -> None:
    """A wait over 1,200 tasks looks their states up in bulk (500 ids a statement): finished
    tasks in the store, the running one in memory, untouched ones from the array's record;
    every state right, whatever the order of the ids."""
    state = tmp_path / "state"
    with drmaa2.JobSession("long-waits", str(state), backend=BACKEND) as js:
        done = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 1200, 1, 2)
        assert len(js.wait_all_terminated(done.job_list, TIMEOUT)) == 1200
        assert store_count(state, "SELECT count(*) FROM jobs WHERE state = 7") == 1200
        assert {job.get_state()[0] for job in done.job_list} == {JobState.DONE}

        held = js.run_bulk_jobs({**SLEEP, "job_name": "held"}, 1, 1200, 1, 1)
        js.wait_all_started(held.job_list[:1], TIMEOUT)
        held.hold()  # task 1 runs; tasks 2-1200 stay untouched and held
        mixed = [*reversed(done.job_list), *held.job_list]
        with pytest.raises(drmaa2.TimeoutException, match="all of 2400 job"):
            js.wait_all_started(mixed, 0.5)
        with pytest.raises(drmaa2.TimeoutException):
            js.wait_all_terminated(held.job_list[:2], 0.3)
        # Any of them: the first finished one in the list's order.
        assert js.wait_any_terminated(mixed, TIMEOUT) == done.job_list[-1]
        assert js.wait_any_started(held.job_list[::-1], TIMEOUT) == held.job_list[0]
        held.terminate()
        assert len(js.wait_all_terminated(mixed, TIMEOUT)) == 2400
        assert {job.get_state()[0] for job in held.job_list} == {JobState.FAILED}


@pytest.mark.parametrize("how", ["one-by-one", "array"])
def test_tasks_reaped_before_the_keeper_dies_never_run_again(tmp_path: Path, how: str) -> None:
    """The stored cursor of an array lags behind (it is written every 256 tasks): tasks reaped
    past it must not look untouched to the next keeper. 299 tasks run, are reaped, the keeper
    is SIGKILLed while task 300 runs; the next keeper runs 301-600, and no task runs twice."""
    state = tmp_path / "state"
    log, go = tmp_path / "ran", tmp_path / "go"
    script = (
        f'echo "$TASK_ID" >> {log}; '
        f'[ "$TASK_ID" -ne 300 ] || while [ ! -e {go} ]; do sleep 0.02; done'
    )
    try:
        with drmaa2.JobSession("reaped", str(state), backend=BACKEND) as js:
            array = js.run_bulk_jobs(
                {"remote_command": "/bin/sh", "args": ["-c", script]}, 1, 600, 1, 1
            )
            tasks = array.job_list
            js.wait_all_started([tasks[299]], TIMEOUT)
            assert len(js.wait_all_terminated(tasks[:299], TIMEOUT)) == 299
            if how == "array":
                array.reap()  # the finished ones; task 300 runs
            else:
                for task in tasks[:299]:
                    task.reap()
            assert {job.id for job in js.get_jobs()} >= {task.id for task in tasks[299:]}
            assert not {job.id for job in js.get_jobs()} & {task.id for task in tasks[:299]}
            kill_keeper(state)
        with drmaa2.JobSession("reaped", str(state), backend=BACKEND) as js:
            rest = [job for job in js.get_jobs() if job.id.startswith(f"{array.id}.")]
            assert [job.id for job in rest] == [task.id for task in tasks[299:]]
            go.touch()
            js.wait_all_terminated(rest, TIMEOUT)
            assert [job.get_state()[0] for job in rest[1:]] == [JobState.DONE] * 300
    finally:
        go.touch()  # task 300 ends whatever happened (a failed assertion must leave no job)
    ran = log.read_text().split()
    assert sorted(map(int, ran)) == list(range(1, 601)), "a task ran twice or never"


def test_a_task_ended_ahead_of_the_array_and_reaped_never_runs(tmp_path: Path) -> None:
    """A queued task terminated before its turn, then reaped, has no row, and lies past the
    array's cursor: the next keeper must not take it for a task never touched (before, it
    ran after a keeper kill, and was listed again)."""
    state = tmp_path / "state"
    log, go = tmp_path / "ran", tmp_path / "go"
    script = f'echo "$TASK_ID" >> {log}; while [ ! -e {go} ]; do sleep 0.02; done'
    try:
        with drmaa2.JobSession("ahead", str(state), backend=BACKEND) as js:
            array = js.run_bulk_jobs(
                {"remote_command": "/bin/sh", "args": ["-c", script]}, 1, 4, 1, 1
            )
            first, _, third, _ = array.job_list
            js.wait_all_started([first], TIMEOUT)
            third.terminate()  # queued behind task 2: written ahead of the cursor
            assert third.get_state() == (JobState.FAILED, "terminated")
            third.reap()
            kill_keeper(state)
        with drmaa2.JobSession("ahead", str(state), backend=BACKEND) as js:
            listed = [job.id for job in js.get_jobs()]
            assert third.id not in listed and len(listed) == 3
            go.touch()
            js.wait_all_terminated(js.get_jobs(), TIMEOUT)
    finally:
        go.touch()
    assert sorted(map(int, log.read_text().split())) == [1, 2, 4], "task 3 never ran"


def test_a_tasks_dispatch_time_is_when_it_started_not_when_it_was_recorded(
    tmp_path: Path,
) -> None:
    """The tasks of a batch are spawned one after another, then recorded: each one's
    dispatch time is when its fork returned, before its first act (it writes the time), not
    when the batch was recorded (before, the first tasks of a batch of 64 were given a time
    some 20-40 ms after they had started, and over a second while a keeper recovering
    another session held the lock)."""
    out = tmp_path / "started"
    out.mkdir()
    script = f'date +%s.%N > {out}/"$TASK_ID"'
    with drmaa2.JobSession("dispatch", str(tmp_path / "state"), backend=BACKEND) as js:
        array = js.run_bulk_jobs({"remote_command": "/bin/sh", "args": ["-c", script]}, 1, 64)
        js.wait_all_terminated(array.job_list, TIMEOUT)
        for index, task in enumerate(array.job_list, 1):
            info = task.get_info()
            assert info.job_state == JobState.DONE and info.dispatch_time is not None
            started = float((out / str(index)).read_text())
            late = info.dispatch_time.timestamp() - started
            assert late < 0.01, f"task {index} dispatched {late * 1000:.1f} ms after its start"


def test_an_array_without_max_parallel_starts_in_batches_while_the_ended_are_reaped(
    tmp_path: Path,
) -> None:
    """An array with no parallel limit is submitted at once: run_bulk_jobs returns after
    the first batch of starts (DISPATCH_BATCH), the keeper starts the rest a batch a round,
    reaping between the batches; every task runs once. Before, the submitting call spawned
    every task itself (a million-task array never returned, the keeper's zombies piled up)."""
    from drmaa2_ostracker.supervisor.states import DISPATCH_BATCH

    tasks = 30 * DISPATCH_BATCH
    state = tmp_path / "state"
    with drmaa2.JobSession("unlimited", str(state), backend=BACKEND) as js:
        array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, tasks, 1, None)
        returned = datetime.now(timezone.utc)
        js.wait_all_terminated(array.job_list, TIMEOUT * 4)
        infos = [job.get_info() for job in array.job_list]
        js.destroy()
    assert [info.job_state for info in infos] == [JobState.DONE] * tasks
    started_before = [
        i for i in infos if i.dispatch_time is not None and i.dispatch_time < returned
    ]
    # The keeper's reaper thread may start a few more batches before the answer arrives;
    # all of them, never.
    assert len(started_before) < tasks // 2, (
        f"{len(started_before)} of {tasks} tasks were started before run_bulk_jobs returned"
    )


def test_an_array_tasks_start_is_stored_though_its_running_row_is_written_behind(
    tmp_path: Path,
) -> None:
    """A task started as a slot frees has its RUNNING row written with its next change (most
    end first: one row write, not two) or by the next flush: either way its stored row ends up
    with its pid, its process start and its dispatch time, and the states the API shows are
    the right ones meanwhile. Read from the store file itself once the session is closed."""
    state = tmp_path / "state"
    gate = tmp_path / "gate"
    tasks = 24
    with drmaa2.JobSession("behind", str(state), backend=BACKEND, destroy_on_exit=False) as js:
        # Short tasks: each ends before any flush, its start written with its end; the last
        # one is watched by the wait (its end must not take the ring of ends, whose records
        # name the row by a process start the row does not hold yet).
        short = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, tasks, 1, 2)
        js.wait_all_terminated(short.job_list, TIMEOUT)
        # Two tasks that run until the gate opens: their RUNNING rows are written by a flush
        # while they run, before a listing by state reads the store.
        script = f"while [ ! -e {gate} ]; do sleep 0.01; done"
        gated = js.run_bulk_jobs({"remote_command": "/bin/sh", "args": ["-c", script]}, 1, 4, 1, 2)
        try:
            gated.job_list[0].wait_started(TIMEOUT)
            gated.job_list[1].wait_started(TIMEOUT)
            running = js.get_jobs(drmaa2.JobInfo(job_state=JobState.RUNNING))
            assert {job.id for job in running} == {job.id for job in gated.job_list[:2]}
        finally:
            gate.touch()
        js.wait_all_terminated(gated.job_list, TIMEOUT)
        jobs = [*short.job_list, *gated.job_list]
        assert [job.get_info().job_state for job in jobs] == [JobState.DONE] * len(jobs)
    # Rows may be committed a little after the API showed them (within ENDS_DELAY).
    done = f"SELECT count(*) FROM jobs WHERE array_id IS NOT NULL AND state = {int(JobState.DONE)}"
    wait_until(lambda: store_count(state, done) == len(jobs), what="every task's end stored")
    uri = f"file:{state / 'store.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT job_id, state, sub_state, pid, pid_start, dispatch_us FROM jobs "
            "WHERE array_id IS NOT NULL ORDER BY seq"
        ).fetchall()
    assert [row[0] for row in rows] == [job.id for job in jobs]
    for job_id, state_code, sub_state, pid, pid_start, dispatch_us in rows:
        assert (state_code, sub_state) == (int(JobState.DONE), ""), job_id
        assert pid is not None and pid > 0, job_id
        # The tick its process started at (negative: one of two ticks, see identity).
        assert pid_start is not None and pid_start != 0, job_id
        assert dispatch_us is not None, job_id
