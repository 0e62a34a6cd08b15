"""Job arrays: ids, TASK_ID, max_parallel, queued-task control (issue 3 §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, file_text


def logging_task(log: Path, seconds: float) -> dict[str, object]:
    """A task that appends 'start N' and 'end N' to a shared log around a sleep."""
    return {
        "remote_command": "/bin/sh",
        "args": [
            "-c",
            f'echo "start $TASK_ID" >> {log}; sleep {seconds}; echo "end $TASK_ID" >> {log}',
        ],
    }


def max_concurrency(log: Path) -> int:
    running = peak = 0
    for line in file_text(log).splitlines():
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


def test_array_ids_and_task_environment(session: drmaa2.JobSession, tmp_path: Path) -> None:
    array = session.run_bulk_jobs(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", 'echo "$JOB_ID $TASK_ID"'],
            "output_path": str(tmp_path / f"out.{drmaa2.PARAMETRIC_INDEX}"),
        },
        5,
        20,
        5,
    )
    assert [job.id for job in array.job_list] == [f"{array.id}.{i}" for i in (5, 10, 15, 20)]
    assert array.jobs == array.job_list
    session.wait_all_terminated(array.job_list, TIMEOUT)
    for index in (5, 10, 15, 20):
        assert file_text(tmp_path / f"out.{index}") == f"{array.id}.{index} {index}\n"
    listed = [job.id for job in session.get_jobs()]
    assert listed == [job.id for job in array.job_list], "tasks are listed, never the array id"
    again = session.get_job_array(array.id)
    assert [job.id for job in again.job_list] == listed
    assert again.get_template().args == ["-c", 'echo "$JOB_ID $TASK_ID"']


@pytest.mark.parametrize("limit", [1, 3, None])
def test_max_parallel_is_never_exceeded(
    session: drmaa2.JobSession, tmp_path: Path, limit: int | None
) -> None:
    log = tmp_path / "log"
    array = session.run_bulk_jobs(logging_task(log, 0.3), 1, 6, 1, limit)
    session.wait_all_terminated(array.job_list, TIMEOUT)
    assert all(job.get_state()[0] is JobState.DONE for job in array.job_list)
    peak = max_concurrency(log)
    if limit is None:
        assert peak >= 2, "without a limit, tasks overlap"
    else:
        assert peak <= limit
    if limit == 1:
        starts = [int(line.split()[1]) for line in file_text(log).splitlines() if "start" in line]
        assert starts == [1, 2, 3, 4, 5, 6], "tasks start in index order"


@pytest.mark.parametrize(
    ("begin", "end", "step", "limit"),
    [(0, 3, 1, None), (3, 2, 1, None), (1, 3, 0, None), (1, 3, 1, 0), (-1, 3, 1, None)],
)
def test_bad_array_bounds_are_rejected(
    session: drmaa2.JobSession, begin: int, end: int, step: int, limit: int | None
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException):
        session.run_bulk_jobs({"remote_command": "/bin/true"}, begin, end, step, limit)
    assert session.get_jobs() == []


def test_terminating_queued_tasks_frees_no_slot_twice(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    array = session.run_bulk_jobs(logging_task(log, 0.5), 1, 5, 1, 2)
    first, second, third, fourth, fifth = array.job_list
    third.terminate()
    fourth.hold()
    assert third.get_state()[0] is JobState.FAILED
    assert third.get_info().dispatch_time is None
    assert fourth.get_state()[0] is JobState.QUEUED_HELD
    session.wait_all_terminated([first, second, fifth], TIMEOUT)
    assert fourth.get_state()[0] is JobState.QUEUED_HELD
    fourth.release()
    fourth.wait_terminated(TIMEOUT)
    assert [job.get_state()[0] for job in array.job_list] == [
        JobState.DONE,
        JobState.DONE,
        JobState.FAILED,
        JobState.DONE,
        JobState.DONE,
    ]
    assert max_concurrency(log) <= 2
    assert "start 3" not in file_text(log)


def test_array_terminate_ends_all_tasks(session: drmaa2.JobSession) -> None:
    array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 6, 1, 2)
    session.wait_all_started(array.job_list[:2], TIMEOUT)
    array.terminate()
    session.wait_all_terminated(array.job_list, TIMEOUT)
    states = [job.get_info() for job in array.job_list]
    assert all(info.job_state is JobState.FAILED for info in states)
    assert [info.dispatch_time is not None for info in states] == [True, True] + [False] * 4


def test_array_control_acts_on_the_tasks_it_applies_to(session: drmaa2.JobSession) -> None:
    array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 3, 1, 1)
    first, *queued = array.job_list
    first.wait_started(TIMEOUT)
    array.hold()  # task 1 runs: not for hold; tasks 2 and 3 are held
    assert [job.get_state()[0] for job in queued] == [JobState.QUEUED_HELD] * 2
    array.suspend()  # only task 1 has started: it is suspended, the held ones are passed over
    assert first.get_state()[0] is JobState.SUSPENDED
    array.resume()
    array.release()
    assert [job.get_state()[0] for job in queued] == [JobState.QUEUED] * 2
    first.terminate()
    array.terminate()  # task 1 has finished: the others are ended, and nothing is raised
    session.wait_all_terminated(array.job_list, TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException) as caught:
        array.terminate()  # applies to none of them now
    assert all(job.id in str(caught.value) for job in array.job_list)
    assert "none" in str(caught.value)


def test_a_task_that_cannot_start_fails_and_the_others_run(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    for index in (1, 3):
        (tmp_path / f"dir{index}").mkdir()
    array = session.run_bulk_jobs(
        {
            "remote_command": "/bin/pwd",
            "working_directory": str(tmp_path / f"dir{drmaa2.PARAMETRIC_INDEX}"),
            "output_path": f"{drmaa2.WORKING_DIR}/pwd",
        },
        1,
        3,
    )
    session.wait_all_terminated(array.job_list, TIMEOUT)
    one, two, three = (job.get_info() for job in array.job_list)
    assert one.job_state is JobState.DONE and three.job_state is JobState.DONE
    assert two.job_state is JobState.FAILED
    assert "dir2" in (two.annotation or "")
    assert file_text(tmp_path / "dir3" / "pwd") == f"{tmp_path / 'dir3'}\n"


def test_unknown_array_id_is_invalid_argument(session: drmaa2.JobSession) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException, match="77"):
        session.get_job_array("77")


def test_array_wait_any_returns_a_finished_task(session: drmaa2.JobSession, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    array = session.run_bulk_jobs(
        {
            "remote_command": "/bin/sh",
            "args": [
                "-c",
                f'[ "$TASK_ID" = 2 ] && exit 0; while [ ! -e {flag} ]; do sleep 0.05; done',
            ],
        },
        1,
        3,
    )
    done = session.wait_any_terminated(array.job_list, TIMEOUT)
    assert done.id == array.job_list[1].id
    flag.touch()
    session.wait_all_terminated(array.job_list, TIMEOUT)
    assert all(job.get_state()[0] is JobState.DONE for job in array.job_list)


def test_array_reap_forgets_the_finished_tasks_only(session: drmaa2.JobSession) -> None:
    array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 3, 1, 1)
    first, second, third = array.job_list
    first.wait_started(TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException) as caught:
        array.reap()  # none has finished
    assert all(job.id in str(caught.value) for job in array.job_list)
    assert "none" in str(caught.value)
    second.terminate()
    array.reap()  # task 2 is forgotten; the unfinished ones are passed over
    assert [job.id for job in session.get_jobs()] == [first.id, third.id]
    assert array.job_list == [first, third], "the reaped task left the array's job_list"
    array.hold()  # task 1 runs, task 3 queues: it is held
    assert third.get_state()[0] is JobState.QUEUED_HELD
    array.terminate()  # ends the rest
    session.wait_all_terminated([first, third], TIMEOUT)
    left = session.get_job_array(array.id)
    assert [job.id for job in left.job_list] == [first.id, third.id]
    left.reap()
    assert session.get_jobs() == []
    assert left.job_list == []
    with pytest.raises(drmaa2.InvalidArgumentException, match="every task of it was reaped"):
        session.get_job_array(array.id)  # unknown, as a reaped job is


def test_an_array_handle_passes_over_tasks_reaped_elsewhere(session: drmaa2.JobSession) -> None:
    """A task reaped by another handle is unknown: the array's operations pass it over (it
    is not a failure), act on the others, and drop it from their job_list."""
    array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 3, 1, 1)
    first, second, third = array.job_list
    first.wait_started(TIMEOUT)
    second.terminate()
    second.reap()
    array.hold()  # task 1 runs, task 2 is gone: task 3 is held, and nothing is raised
    assert third.get_state()[0] is JobState.QUEUED_HELD
    assert array.job_list == [first, third]
    stale = session.get_job_array(array.id)
    first.terminate()
    first.reap()
    stale.terminate()  # task 1 is gone: task 3 is ended
    session.wait_all_terminated([third], TIMEOUT)
    assert stale.job_list == [third]
    with pytest.raises(drmaa2.InvalidStateException) as caught:
        array.terminate()  # task 1 is gone, task 3 has finished: it applies to none
    assert third.id in str(caught.value) and first.id in str(caught.value)
    assert array.job_list == [third]
    array.reap()
    assert array.job_list == [] and session.get_jobs() == []
    # Every task reaped: the array is unknown, as a reaped job is (and get_job_array says).
    for control in (array.terminate, stale.terminate, stale.hold):
        with pytest.raises(drmaa2.InvalidArgumentException, match="every task of it was reaped"):
            control()
