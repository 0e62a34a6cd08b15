"""Faults of the machine the os backend comes through (issue 14): blocking paths, exhausted
limits, full disks, huge arrays. Each test makes the real fault."""

from __future__ import annotations

import os
from pathlib import Path

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, wait_until

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
        wait_until(lambda: array.job_list[0].get_state()[0] == JobState.RUNNING)
        os.mkfifo(tmp_path / "task-2.out")
        gate.touch()
        js.wait_all_terminated(array.job_list, TIMEOUT)
        infos = [job.get_info() for job in array.job_list]
        js.destroy()
    assert [info.job_state for info in infos] == [JobState.DONE, JobState.FAILED, JobState.DONE]
    assert "FIFO" in (infos[1].annotation or ""), infos[1].annotation
