"""Benchmark of a huge array (issue 14, point 4): submitting a million-task array, what it
costs the keeper while it runs, listing it, and holding, releasing and terminating it whole.

The baseline is the submission of a one-task array in the same session, measured in the same
run: the ratio shows what the size of the array adds. Every keeper started here is stopped by
its pid and its state directory removed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import statistics
import time

import drmaa2
from benchmarks.common import TRUE, keeper_process, remove_state, result, state_directory


def huge_array(n: int) -> list[dict[str, object]]:
    """run_bulk_jobs(/bin/true, 1, n, max_parallel=cores): its time, the keeper's RSS and the
    store's rows a few seconds later, get_jobs over the session, and the time of
    ``hold()``, ``release()`` and ``terminate()`` of the whole array."""
    cores = os.cpu_count() or 1
    state = state_directory("drmaa2-bench-huge-")
    try:
        session = drmaa2.create_job_session("huge", state, backend="os")
        try:
            template = drmaa2.JobTemplate(remote_command=TRUE)
            small = []
            for _ in range(5):
                start = time.perf_counter()
                array = session.run_bulk_jobs(template, 1, 1, 1, cores)
                small.append(time.perf_counter() - start)
                session.wait_all_terminated(array.job_list)
            keeper = keeper_process(state)
            assert keeper is not None, "no keeper found for the session"
            rss_before = keeper.memory_info().rss
            start = time.perf_counter()
            huge = session.run_bulk_jobs(template, 1, n, 1, cores)
            submitted = time.perf_counter() - start
            huge.job_list[cores * 10].wait_terminated()
            rss_running = keeper.memory_info().rss
            start = time.perf_counter()
            listed = len(session.get_jobs())
            listing = time.perf_counter() - start
            uri = f"file:{os.path.join(state, 'store.sqlite3')}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                rows = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
            assert listed == n + 5, f"get_jobs listed {listed} of {n + 5}"
            control = {}
            for action in ("hold", "release", "terminate"):
                start = time.perf_counter()
                getattr(huge, action)()
                control[action] = time.perf_counter() - start
        finally:
            session.destroy()
    finally:
        remove_state(state)
    baseline = statistics.median(small)
    return [
        result(
            f"run_bulk_jobs of {n} tasks, max_parallel {cores}, s",
            submitted,
            "s",
            baseline,
            "a one-task array",
            "<= 2 s",
            submitted <= 2.0,
        ),
        result(
            f"keeper RSS growth while the {n}-task array runs, MiB",
            (rss_running - rss_before) / 2**20,
            "MiB",
            rss_before / 2**20,
            "its RSS before",
            "reported (bounded: untouched tasks cost nothing)",
            True,
        ),
        result(
            f"store rows while the {n}-task array runs",
            float(rows),
            "rows",
            None,
            "",
            "reported (only touched tasks are written)",
            True,
        ),
        result(f"get_jobs over {listed} jobs, s", listing, "s", None, "", "reported", True),
        *(
            result(
                f"{action} of the {n}-task array, s",
                seconds,
                "s",
                None,
                "",
                "< 2 s",
                seconds < 2.0,
            )
            for action, seconds in control.items()
        ),
    ]
