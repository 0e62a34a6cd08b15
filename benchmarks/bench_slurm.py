"""Benchmarks of the slurm backend against plain Slurm commands, on a one-node test cluster.

python -m benchmarks.bench_slurm            # full run (starts its own cluster, a few minutes)
python -m benchmarks.bench_slurm --quick    # smoke run

Cases (targets from issue 15): submissions through run_job against ``sbatch --parsable`` in a
loop (≤ 1.2×); a 100-task array of true with max_parallel 2 against the same sbatch array
(≤ 1.1×); latency from a job's end in squeue to wait_terminated returning (p50 ≤ 0.5 s);
poller cost in squeue calls per second with 10 and with 1,000 unfinished jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import drmaa2
from benchmarks.bench_jobs import result
from drmaa2.plugins import registry
from tests.slurm.cluster import Cluster, install_packages

Row = dict[str, object]


def _sbatch(cluster: Cluster, *options: str) -> str:
    done = subprocess.run(
        ["sbatch", "--parsable", "-o", "/dev/null", "-e", "/dev/null", *options],
        input=b"#!/bin/sh\nexec true\n",
        env=cluster.env(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip().split(";")[0]


def _squeue_states(cluster: Cluster, ids: list[str]) -> list[str]:
    done = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%T"],
        env=cluster.env(),
        capture_output=True,
        text=True,
    )
    return done.stdout.split()


def _cancel_all(cluster: Cluster) -> None:
    subprocess.run(["scancel", "-p", "debug"], env=cluster.env(), check=False)


def submissions(cluster: Cluster, js: drmaa2.JobSession, n: int) -> list[Row]:
    """run_job against sbatch --parsable in a loop, n held jobs each."""
    start = time.perf_counter()
    for _ in range(n):
        _sbatch(cluster, "-J", "bench", "--hold")
    baseline = (time.perf_counter() - start) / n
    _cancel_all(cluster)
    start = time.perf_counter()
    for _ in range(n):
        js.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    ours = (time.perf_counter() - start) / n
    _cancel_all(cluster)
    ratio = ours / baseline
    return [
        result(
            f"slurm: run_job, {n} submissions (s per job)",
            ours,
            "s",
            baseline,
            "sbatch --parsable loop",
            "≤ 1.2× sbatch",
            ratio <= 1.2,
        )
    ]


def array(cluster: Cluster, js: drmaa2.JobSession, n: int) -> list[Row]:
    """End to end: an n-task array of true, max_parallel 2."""
    start = time.perf_counter()
    array_id = _sbatch(cluster, f"--array=1-{n}%2")
    while any(s not in ("COMPLETED", "FAILED") for s in _squeue_states(cluster, [array_id])):
        time.sleep(0.05)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    jobs = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, n, 1, 2)
    js.wait_all_terminated(jobs.job_list, 600)
    ours = time.perf_counter() - start
    return [
        result(
            f"slurm: {n}-task array of true, max_parallel 2 (s)",
            ours,
            "s",
            baseline,
            "sbatch --array + squeue poll",
            "≤ 1.1× sbatch",
            ours <= 1.1 * baseline,
        )
    ]


def latency(cluster: Cluster, js: drmaa2.JobSession, n: int) -> list[Row]:
    """From a job's end showing in squeue (polled every 10 ms) to wait_terminated returning."""
    delays = []
    for _ in range(n):
        job = js.run_job({"remote_command": "/bin/sleep", "args": ["1"]})
        job.wait_started(120)
        seen: list[float] = []

        def watch(job_id: str = job.id, seen: list[float] = seen) -> None:
            while _squeue_states(cluster, [job_id]) != ["COMPLETED"]:
                time.sleep(0.01)
            seen.append(time.perf_counter())

        watcher = threading.Thread(target=watch)
        watcher.start()
        job.wait_terminated(120)
        returned = time.perf_counter()
        watcher.join()
        delays.append(max(0.0, returned - seen[0]))
    p50 = statistics.median(delays)
    return [
        result(
            f"slurm: end in squeue → wait_terminated, p50 of {n} (s)",
            p50,
            "s",
            None,
            "",
            "≤ 0.5 s",
            p50 <= 0.5,
        )
    ]


def poller_cost(cluster: Cluster, js: drmaa2.JobSession, n: int, seconds: float) -> list[Row]:
    """squeue calls per second (and seconds per call) while waiting on n unfinished jobs."""
    jobs = [js.run_job({"remote_command": "/bin/true", "submit_as_hold": True}) for _ in range(n)]
    _, backend = registry.get("slurm")
    poller = backend._poller  # type: ignore[attr-defined]
    before = poller.calls
    start = time.perf_counter()
    with contextlib.suppress(drmaa2.TimeoutException):
        js.wait_any_terminated(jobs, seconds)
    rate = (poller.calls - before) / (time.perf_counter() - start)
    ids = sorted({job.id for job in jobs})
    call_start = time.perf_counter()
    _squeue_states(cluster, ids)
    per_call = time.perf_counter() - call_start
    _cancel_all(cluster)
    return [
        result(
            f"slurm: poller, {n} unfinished jobs (squeue calls/s)",
            rate,
            "1/s",
            None,
            "",
            "≤ 20/s",
            rate <= 20,
        ),
        result(f"slurm: one squeue call for {n} jobs (s)", per_call, "s", None, "", "-", True),
    ]


def run(quick: bool) -> list[Row]:
    """Start a cluster, run every case, stop the cluster."""
    install_packages(False)
    cluster = Cluster(tempfile.mkdtemp(prefix="drmaa2-bench-slurm-", dir="/tmp"))
    cluster.start(accounting=False)
    state = tempfile.mkdtemp(prefix="drmaa2-bench-state-")
    os.environ["DRMAA2_SLURM_STATE_DIR"] = state
    rows: list[Row] = []
    try:
        js = drmaa2.create_job_session(backend="slurm", contact=str(cluster.conf))
        try:
            rows += submissions(cluster, js, 20 if quick else 200)
            rows += array(cluster, js, 10 if quick else 100)
            rows += latency(cluster, js, 3 if quick else 20)
            rows += poller_cost(cluster, js, 10, 2 if quick else 10)
            rows += poller_cost(cluster, js, 100 if quick else 1000, 2 if quick else 10)
        finally:
            js.destroy()
    finally:
        cluster.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print every figure with its baseline, ratio and target."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_slurm")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for row in run(args.quick):
        base = row["baseline"]
        shown = f"{base:.3f}" if isinstance(base, float) else "-"
        mark = "ok" if row["ok"] else "MISSED"
        print(f"{row['case']:<60} {row['value']:>9.3f} {shown:>9}  {row['target']} {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
