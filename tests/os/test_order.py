"""A session's jobs are listed oldest first: in the order of their ids, also when a single
job and an array are submitted at the same moment (the job, started at once, took its place
in the order after its spawn, and an array submitted meanwhile came before it)."""

from __future__ import annotations

import threading
from pathlib import Path

import drmaa2
from tests.behaviour.conftest import TIMEOUT
from tests.os.test_persistence import stop_keeper


def test_jobs_and_arrays_submitted_at_once_are_listed_in_the_order_of_their_ids(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    js = drmaa2.create_job_session("order", str(state), backend="os")
    try:

        def single(go: threading.Barrier) -> None:
            go.wait()
            js.run_job({"remote_command": "/bin/true"})

        def array(go: threading.Barrier) -> None:
            go.wait()
            js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 2, 1, 2)

        for _ in range(60):  # the two submissions meet about once in ten rounds
            go = threading.Barrier(2, timeout=TIMEOUT)
            submissions = [threading.Thread(target=f, args=(go,)) for f in (single, array)]
            for thread in submissions:
                thread.start()
            for thread in submissions:
                thread.join(TIMEOUT)
        ids = [job.id for job in js.get_jobs()]
        assert len(ids) == 180
        assert [int(job_id.partition(".")[0]) for job_id in ids] == sorted(
            int(job_id.partition(".")[0]) for job_id in ids
        )
        js.wait_all_terminated(js.get_jobs(), TIMEOUT)
    finally:
        js.close()
        stop_keeper(state)
