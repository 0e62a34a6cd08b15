"""Benchmarks of the slurm backend against plain Slurm commands, on a one-node test cluster.

python -m benchmarks.bench_slurm            # full run (starts and stops its own cluster)
python -m benchmarks.bench_slurm --quick    # smoke run
python -m benchmarks.bench_slurm --only submissions,latency

Cases (targets from issue 15):

- submissions through run_job against ``sbatch --parsable`` in a loop (≤ 1.2×);
- a 100-task array of true with max_parallel 2 against the same sbatch array, polled with
  squeue every 50 ms (≤ 1.1×);
- latency from a job's end in squeue to wait_terminated returning (p50 ≤ 0.5 s);
- poller cost: squeue calls per second with 10 and with 1,000 unfinished jobs, and the CPU
  each call costs this machine (the squeue process, slurmctld).

The machine is shared and the figures are noisy: baseline and measured runs alternate
(A B B A …) and the ratio is of the medians; each ratio is printed with its range over the
rounds, so that the noise shows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import psutil

import drmaa2
from benchmarks.__main__ import machine
from benchmarks.common import result
from drmaa2.plugins import registry
from drmaa2_slurm.commands import clean_environment
from drmaa2_slurm.poller import MAX_INTERVAL
from tests.slurm.cluster import PARTITION, Cluster, install_packages

Row = dict[str, object]
#: Seconds between two squeue calls of the baseline's wait for an array.
BASELINE_POLL = 0.05
#: Seconds the watcher of the latency case waits between two squeue calls.
WATCH_POLL = 0.02


class Bench:
    """The cluster, its environment for plain commands, and the session measured."""

    def __init__(self, cluster: Cluster, session: drmaa2.JobSession) -> None:
        self.cluster = cluster
        self.env = clean_environment(str(cluster.conf))
        self.session = session
        _, backend = registry.get("slurm")
        self.poller = backend._poller  # type: ignore[attr-defined]

    def sbatch(self, *options: str) -> str:
        """Plain ``sbatch --parsable`` of ``exec true``; the job id."""
        done = subprocess.run(
            ["sbatch", "--parsable", "-o", "/dev/null", "-e", "/dev/null", *options],
            input=b"#!/bin/sh\nexec true\n",
            env=self.env,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode().strip().split(";")[0]

    def states(self, ids: list[str]) -> list[str]:
        """Slurm states of these jobs (array tasks expanded)."""
        done = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%T"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        return done.stdout.split()

    def cancel_all(self) -> None:
        """Cancel every job of the partition."""
        subprocess.run(["scancel", "-p", PARTITION], env=self.env, check=False)


def _alternate(
    rounds: int, baseline: Callable[[], float], ours: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run baseline and ours ``rounds`` times each, A B B A A B …; both lists of figures."""
    base: list[float] = []
    mine: list[float] = []
    for number in range(rounds):
        if number % 2 == 0:
            base.append(baseline())
            mine.append(ours())
        else:
            mine.append(ours())
            base.append(baseline())
    return base, mine


def _spread(base: list[float], mine: list[float]) -> str:
    ratios = [m / b for b, m in zip(base, mine, strict=True)]
    return f"ratio per round {min(ratios):.2f}-{max(ratios):.2f}"


def _cpu_self() -> float:
    return time.process_time()


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def submissions(bench: Bench, n: int, rounds: int) -> list[Row]:
    """run_job against sbatch --parsable in a loop, n held jobs a round."""
    cpu: dict[str, list[float]] = {"base": [], "ours": []}

    def timed(kind: str, submit: Callable[[], object]) -> float:
        start, cpu_start = time.perf_counter(), _cpu_self()
        for _ in range(n):
            submit()
        elapsed = time.perf_counter() - start
        cpu[kind].append((_cpu_self() - cpu_start) / n)
        bench.cancel_all()
        return elapsed / n

    template = {"remote_command": "/bin/true", "submit_as_hold": True}
    base, mine = _alternate(
        rounds,
        lambda: timed("base", lambda: bench.sbatch("-J", "bench", "--hold")),
        lambda: timed("ours", lambda: bench.session.run_job(template)),
    )
    baseline, ours = statistics.median(base), statistics.median(mine)
    return [
        result(
            f"slurm: run_job, {rounds} × {n} submissions (s per job, median)",
            ours,
            "s",
            baseline,
            f"sbatch --parsable loop; {_spread(base, mine)}",
            "≤ 1.2× sbatch",
            ours <= 1.2 * baseline,
        ),
        result(
            "slurm: CPU of this process per submission (s)",
            statistics.median(cpu["ours"]),
            "s",
            statistics.median(cpu["base"]),
            "subprocess.run(sbatch) loop",
            "reported",
            True,
        ),
    ]


def array(bench: Bench, n: int, rounds: int) -> list[Row]:
    """End to end: an n-task array of true, max_parallel 2."""

    def baseline() -> float:
        start = time.perf_counter()
        array_id = bench.sbatch(f"--array=1-{n}%2")
        while any(s not in ("COMPLETED", "FAILED") for s in bench.states([array_id])):
            time.sleep(BASELINE_POLL)
        return time.perf_counter() - start

    def ours() -> float:
        start = time.perf_counter()
        jobs = bench.session.run_bulk_jobs({"remote_command": "/bin/true"}, 1, n, 1, 2)
        bench.session.wait_all_terminated(jobs.job_list, 600)
        return time.perf_counter() - start

    base, mine = _alternate(rounds, baseline, ours)
    baseline_s, ours_s = statistics.median(base), statistics.median(mine)
    return [
        result(
            f"slurm: {n}-task array of true, max_parallel 2, median of {rounds} (s)",
            ours_s,
            "s",
            baseline_s,
            f"sbatch --array + squeue every {BASELINE_POLL * 1000:.0f} ms; {_spread(base, mine)}",
            "≤ 1.1× sbatch",
            ours_s <= 1.1 * baseline_s,
        )
    ]


def latency(bench: Bench, n: int) -> list[Row]:
    """From a job's end to wait_terminated returning: from its end showing in squeue (a
    watcher polls every 20 ms), and from the job's last act (it writes the time, then exits)."""
    from_squeue: list[float] = []
    from_job: list[float] = []
    with tempfile.TemporaryDirectory(prefix="drmaa2-bench-latency-") as directory:
        for number in range(n):
            mark = os.path.join(directory, f"end-{number}")
            job = bench.session.run_job(
                {
                    "remote_command": "/bin/sh",
                    "args": ["-c", 'sleep 1; date +%s.%N > "$1"', "sh", mark],
                }
            )
            job.wait_started(120)
            seen: list[float] = []

            def watch(job_id: str = job.id, seen: list[float] = seen) -> None:
                while bench.states([job_id]) != ["COMPLETED"]:
                    time.sleep(WATCH_POLL)
                seen.append(time.time())

            watcher = threading.Thread(target=watch)
            watcher.start()
            job.wait_terminated(120)
            returned = time.time()
            watcher.join()
            with open(mark) as handle:
                ended = float(handle.read())
            from_squeue.append(max(0.0, returned - seen[0]))
            from_job.append(returned - ended)
    p50 = statistics.median(from_squeue)
    return [
        result(
            f"slurm: end in squeue → wait_terminated, p50 of {n} (s)",
            p50,
            "s",
            None,
            f"max {max(from_squeue):.3f} s",
            "≤ 0.5 s",
            p50 <= 0.5,
        ),
        result(
            f"slurm: job's last act → wait_terminated, p50 of {n} (s)",
            statistics.median(from_job),
            "s",
            None,
            f"max {max(from_job):.3f} s",
            "reported",
            True,
        ),
    ]


def poller_cost(bench: Bench, n: int, seconds: float) -> list[Row]:
    """squeue calls per second while one waiter waits on n unfinished (held) jobs, once the
    poller has backed off; and what each call costs the machine (squeue's CPU, slurmctld's)."""
    template = {"remote_command": "/bin/true", "submit_as_hold": True}
    jobs = [bench.session.run_job(template) for _ in range(n)]
    ramp = 2.0  # seconds for the interval to grow to its maximum
    waiter = threading.Thread(
        target=_wait_quietly, args=(bench.session, jobs, ramp + seconds + 0.5)
    )
    slurmctld = psutil.Process(bench.cluster.pid("slurmctld"))
    waiter.start()
    time.sleep(ramp)
    calls, start = bench.poller.calls, time.perf_counter()
    squeue_start, ctld_start = _cpu_children(), _cpu_of(slurmctld)
    time.sleep(seconds)
    made = bench.poller.calls - calls
    rate = made / (time.perf_counter() - start)
    squeue_cpu, ctld_cpu = _cpu_children() - squeue_start, _cpu_of(slurmctld) - ctld_start
    waiter.join()
    bench.cancel_all()
    per_call = f"per call: squeue {squeue_cpu / max(made, 1) * 1000:.1f} ms CPU"
    return [
        result(
            f"slurm: poller, {n} unfinished jobs, once backed off (squeue calls/s)",
            rate,
            "1/s",
            None,
            f"{per_call}, slurmctld {ctld_cpu / max(made, 1) * 1000:.1f} ms CPU",
            f"≤ {1 / MAX_INTERVAL:.0f}/s (interval {MAX_INTERVAL} s)",
            rate <= 1.1 / MAX_INTERVAL,
        )
    ]


def _wait_quietly(session: drmaa2.JobSession, jobs: list[drmaa2.Job], timeout: float) -> None:
    with contextlib.suppress(drmaa2.TimeoutException):
        session.wait_any_terminated(jobs, timeout)


CASES: dict[str, Callable[[Bench, bool], list[Row]]] = {
    "submissions": lambda b, q: submissions(b, 20 if q else 100, 2 if q else 6),
    "array": lambda b, q: array(b, 10 if q else 100, 2 if q else 4),
    "latency": lambda b, q: latency(b, 3 if q else 20),
    "poller": lambda b, q: (
        poller_cost(b, 10, 2 if q else 10) + poller_cost(b, 100 if q else 1000, 2 if q else 10)
    ),
}


def run(quick: bool, only: list[str] | None = None) -> list[Row]:
    """Start a cluster, run the cases (every one by default), stop the cluster (every daemon
    by its pid)."""
    install_packages(False)
    root = tempfile.mkdtemp(prefix="drmaa2-bench-slurm-", dir="/tmp")
    cluster = Cluster(root)
    saved = os.environ.get("DRMAA2_SLURM_STATE_DIR")
    os.environ["DRMAA2_SLURM_STATE_DIR"] = os.path.join(root, "drmaa2")
    rows: list[Row] = []
    try:
        cluster.start(accounting=False)
        session = drmaa2.create_job_session(backend="slurm", contact=str(cluster.conf))
        bench = Bench(cluster, session)
        try:
            for name in only or list(CASES):
                rows += CASES[name](bench, quick)
        finally:
            session.destroy()
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("DRMAA2_SLURM_STATE_DIR", None)
        else:
            os.environ["DRMAA2_SLURM_STATE_DIR"] = saved
        shutil.rmtree(root, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the machine, then every figure with its baseline, ratio and target."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_slurm")
    parser.add_argument("--quick", action="store_true", help="a smoke run; figures not measured")
    parser.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    unknown = [name for name in only or [] if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    info = machine()
    print(
        f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"kernel {info['kernel']}, {info['date']}" + (" (quick smoke run)" if args.quick else ""),
        flush=True,
    )
    for row in run(args.quick, only):
        base = row["baseline"]
        ratio = row["ratio"]
        shown = f"{base:.4f}" if isinstance(base, float) else "-"
        times = f"{ratio:.2f}×" if isinstance(ratio, float) else "-"
        mark = "ok" if row["ok"] else "MISSED"
        print(
            f"{row['case']:<66} {row['value']:>8.4f} {shown:>8} {times:>6}  "
            f"{row['target']} {mark}   [{row['baseline_name']}]",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
