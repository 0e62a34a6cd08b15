"""Size: the client's memory over many finished jobs (nothing left over), and a session
of 100,000 finished jobs opened and filtered (issue 4's scale case).
"""

from __future__ import annotations

import gc
import statistics
import threading
import time

import psutil

import drmaa2
from benchmarks.common import (
    TRUE,
    job_session,
    keeper_process,
    remove_state,
    result,
    state_directory,
)
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord


def memory(n: int) -> list[dict[str, object]]:
    """Case 6: RSS growth over n finished jobs; no fd or thread left over."""
    me = psutil.Process()
    with job_session("memory") as session:
        template = drmaa2.JobTemplate(remote_command=TRUE)
        for _ in range(200):
            session.run_job(template).wait_terminated()
        gc.collect()
        before = me.memory_info().rss
        fds_before = me.num_fds()
        for _ in range(n // 100):
            jobs = [session.run_job(template) for _ in range(100)]
            session.wait_all_terminated(jobs)
        gc.collect()
        grown = (me.memory_info().rss - before) / 2**20
        fds_after = me.num_fds()
    threads_left = [t.name for t in threading.enumerate() if t.name.startswith("drmaa2")]
    return [
        result(
            f"RSS growth over {n} finished jobs, MiB",
            grown,
            "MiB",
            None,
            "",
            "<= 20 MiB",
            grown <= 20,
        ),
        result(
            "file descriptors and threads left over",
            float(max(0, fds_after - fds_before) + len(threads_left)),
            "count",
            None,
            "",
            "0",
            fds_after <= fds_before and not threads_left,
        ),
    ]


def scale(n: int) -> list[dict[str, object]]:
    """Issue 4 §6: open a session holding n finished jobs; filtered get_jobs.

    The store is built directly (``Store``: create_session, insert_jobs in one transaction,
    close), before any keeper runs; the first open starts the keeper that serves the session
    (reported: keeper start and its reading of the store included); the figures are those of
    the opens after it. The keeper is stopped by its pid at the end."""
    state = state_directory("drmaa2-bench-scale-")
    try:
        store = Store(state)
        now = time.time_ns() // 1000
        store.create_session("big", now)
        records = [
            JobRecord(
                session="big",
                job_id=str(i),
                state=drmaa2.JobState.DONE if i % 10 else drmaa2.JobState.FAILED,
                submission_us=now + i,
                dispatch_us=now + i,
                finish_us=now + i + 1000,
                exit_status=0 if i % 10 else 1,
                terminating_signal="",
                cpu_time=0.001,
                pid=100000 + i,
                rusage='{"ru_maxrss":"1000"}',
                template='{"remote_command":"/bin/true"}',
            )
            for i in range(1, n + 1)
        ]
        with store.transaction():
            store.insert_jobs(records)
        store.close()
        del records
        gc.collect()
        assert keeper_process(state) is None, "a keeper started while the store was built"
        start = time.perf_counter()
        session = drmaa2.open_job_session("big", state, backend="os")
        first_open = time.perf_counter() - start
        session.close()
        opens, by_state, by_exit = [], [], []
        for _ in range(5):
            start = time.perf_counter()
            session = drmaa2.open_job_session("big", state, backend="os")
            opens.append(time.perf_counter() - start)
            start = time.perf_counter()
            failed = session.get_jobs({"job_state": drmaa2.JobState.FAILED})
            by_state.append(time.perf_counter() - start)
            start = time.perf_counter()
            exit1 = session.get_jobs({"exit_status": 1})
            by_exit.append(time.perf_counter() - start)
            assert len(failed) == len(exit1) == n // 10
            session.close()
    finally:
        remove_state(state)
    o, s, e = (statistics.median(v) * 1000 for v in (opens, by_state, by_exit))
    return [
        result(
            f"first open of a session of {n} finished jobs, keeper start included, ms",
            first_open * 1000,
            "ms",
            None,
            "",
            "reported",
            True,
        ),
        result(f"open a session of {n} finished jobs, ms", o, "ms", None, "", "<= 1000", o <= 1000),
        result(f"get_jobs(state) over {n} jobs, ms", s, "ms", None, "", "<= 200", s <= 200),
        result(f"get_jobs(exit_status) over {n} jobs, ms", e, "ms", None, "", "<= 200", e <= 200),
    ]
