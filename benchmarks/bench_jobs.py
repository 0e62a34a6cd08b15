"""Benchmarks of the os backend's job sessions, through the drmaa2 API, against baselines
measured in the same run (issue 6 cases 1–6 and the scale case of issue 4).

Each function returns result dicts: case, value, unit, baseline, baseline_name, ratio,
target, ok. Times are medians of several repeats where a case is repeated.
"""

from __future__ import annotations

import datetime
import gc
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

import drmaa2
from drmaa2_ostracker.store import JobRecord, Store

TRUE = shutil.which("true") or "/bin/true"


def result(
    case: str,
    value: float,
    unit: str,
    baseline: float | None,
    baseline_name: str,
    target: str,
    ok: bool,
) -> dict[str, object]:
    """One benchmark figure, in the shape the runner prints and stores."""
    ratio = value / baseline if baseline else None
    return {
        "case": case,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "target": target,
        "ok": ok,
    }


@contextmanager
def job_session(name: str) -> Iterator[drmaa2.JobSession]:
    """A fresh session in a temporary state directory, destroyed afterwards."""
    state = tempfile.mkdtemp(prefix="drmaa2-bench-")
    session = drmaa2.create_job_session(name, state, backend="os")
    try:
        yield session
    finally:
        session.destroy()
        shutil.rmtree(state, ignore_errors=True)


def _median_time(call: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process so far, all its threads (not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(call: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    gc.collect()
    cpu, start = _cpu_seconds(), time.perf_counter()
    call()
    return time.perf_counter() - start, _cpu_seconds() - cpu


def _alternate(
    baseline: Callable[[], None], ours: Callable[[], None], repeats: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Run the baseline and ours by turns: their wall times, then their CPU times."""
    runs = [(_timed(baseline), _timed(ours)) for _ in range(repeats)]
    return (
        [b[0] for b, _ in runs],
        [o[0] for _, o in runs],
        [b[1] for b, _ in runs],
        [o[1] for _, o in runs],
    )


def _cpu_row(case: str, n: int, ours: list[float], baseline: list[float]) -> dict[str, object]:
    """Where the time goes: the controlling process's CPU per job, against the baseline's."""
    return result(
        f"{case}: controlling process CPU per job, us",
        statistics.median(ours) / n * 1e6,
        "us",
        statistics.median(baseline) / n * 1e6,
        "the baseline's CPU per job",
        "reported",
        True,
    )


def sequential(n: int, repeats: int) -> list[dict[str, object]]:
    """Case 1: n × (run_job /bin/true, wait_terminated) against n × Popen + wait."""
    with job_session("sequential") as session:
        template = drmaa2.JobTemplate(remote_command=TRUE)

        def ours() -> None:
            for _ in range(n):
                session.run_job(template).wait_terminated()

        def popen() -> None:
            for _ in range(n):
                subprocess.Popen([TRUE]).wait()

        ours()  # warm-up: imports, caches, the reaper thread
        b, o, bc, oc = _alternate(popen, ours, repeats)
        baseline, ours_time = statistics.median(b), statistics.median(o)
    ratio = ours_time / baseline
    return [
        result(
            f"sequential {n} x (run_job /bin/true + wait_terminated), ms per job",
            ours_time / n * 1000,
            "ms",
            baseline / n * 1000,
            "subprocess.Popen + wait",
            "ratio <= 1.25",
            ratio <= 1.25,
        ),
        _cpu_row("sequential", n, oc, bc),
    ]


def burst(n: int, repeats: int) -> list[dict[str, object]]:
    """Case 2: n run_job back to back, then wait for all; against Popen + reaping."""
    with job_session("burst") as session:
        template = drmaa2.JobTemplate(remote_command=TRUE)
        submit_times: list[float] = []

        def ours() -> None:
            start = time.perf_counter()
            jobs = [session.run_job(template) for _ in range(n)]
            submit_times.append(time.perf_counter() - start)
            session.wait_all_terminated(jobs)

        def popen() -> None:
            children = [subprocess.Popen([TRUE]) for _ in range(n)]
            for child in children:
                child.wait()

        ours()
        submit_times.clear()
        b, o, bc, oc = _alternate(popen, ours, repeats)
    baseline, ours_time = statistics.median(b), statistics.median(o)
    rate = n / statistics.median(submit_times)
    return [
        result(
            f"burst {n} run_job then wait all, total s",
            ours_time,
            "s",
            baseline,
            "subprocess.Popen burst + wait",
            "ratio <= 1.3",
            ours_time / baseline <= 1.3,
        ),
        result(f"burst {n}: submissions per second", rate, "jobs/s", None, "", "reported", True),
        _cpu_row(f"burst {n}", n, oc, bc),
    ]


def array_throughput(n: int, repeats: int) -> list[dict[str, object]]:
    """Case 3: an n-task array of /bin/true with max_parallel = cores, against xargs -P."""
    cores = os.cpu_count() or 1
    indices = "\n".join(str(i) for i in range(1, n + 1)) + "\n"

    def xargs() -> None:
        subprocess.run(
            ["xargs", "-n", "1", "-P", str(cores), TRUE],
            input=indices.encode(),
            check=True,
        )

    parallel = shutil.which("parallel")

    def gnu_parallel() -> None:
        subprocess.run(
            [parallel or "parallel", "-j", str(cores), TRUE, ":::", *map(str, range(1, n + 1))],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    with job_session("array") as session:
        template = drmaa2.JobTemplate(remote_command=TRUE)

        def ours() -> None:
            array = session.run_bulk_jobs(template, 1, n, 1, cores)
            session.wait_all_terminated(array.job_list)

        ours()
        b, o = [], []
        for _ in range(repeats):
            b.append(_median_time(xargs, 1))
            o.append(_median_time(ours, 1))
    baseline, ours_time = statistics.median(b), statistics.median(o)
    results = [
        result(
            f"array {n} x /bin/true, max_parallel={cores}, total s",
            ours_time,
            "s",
            baseline,
            f"xargs -P {cores}",
            "ratio <= 1.2",
            ours_time / baseline <= 1.2,
        )
    ]
    if parallel:
        peer = _median_time(gnu_parallel, 1)
        results.append(
            result(
                f"array {n}: GNU parallel -j {cores}, total s (peer, for reference)",
                peer,
                "s",
                ours_time,
                "this backend's array",
                "reported",
                True,
            )
        )
    return results


_STAMP_C = r"""
#include <stdio.h>
#include <time.h>
int main(int argc, char **argv) {
    struct timespec t; FILE *f = fopen(argv[1], "w");
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(f, "%lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec); fclose(f);
    return 0;
}
"""


def _stamp_command(workdir: str) -> list[str]:
    """A command whose last act is writing CLOCK_MONOTONIC to the file named by its argument."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc:
        source = os.path.join(workdir, "stamp.c")
        binary = os.path.join(workdir, "stamp")
        with open(source, "w") as handle:
            handle.write(_STAMP_C)
        if subprocess.run([gcc, "-O2", "-o", binary, source], check=False).returncode == 0:
            return [binary]
    code = "import os,sys,time;open(sys.argv[1],'w').write(repr(time.monotonic()));os._exit(0)"
    return [os.environ.get("PYTHON", "python3"), "-c", code]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_latency(n: int) -> list[dict[str, object]]:
    """Case 4: from the job's last act to wait_terminated returning."""
    workdir = tempfile.mkdtemp(prefix="drmaa2-bench-stamp-")
    command = _stamp_command(workdir)
    stamp = os.path.join(workdir, "t")
    gaps: list[float] = []
    base_gaps: list[float] = []
    with job_session("latency") as session:
        template = drmaa2.JobTemplate(remote_command=command[0], args=[*command[1:], stamp])
        for i in range(n + 5):
            job = session.run_job(template)
            job.wait_terminated()
            returned = time.monotonic()
            with open(stamp) as handle:
                gap = returned - float(handle.read())
            if i >= 5:
                gaps.append(gap)
            child = subprocess.Popen([*command, stamp])
            child.wait()
            returned = time.monotonic()
            with open(stamp) as handle:
                if i >= 5:
                    base_gaps.append(returned - float(handle.read()))
    shutil.rmtree(workdir, ignore_errors=True)
    p50, p99 = _percentile(gaps, 0.5) * 1000, _percentile(gaps, 0.99) * 1000
    b50, b99 = _percentile(base_gaps, 0.5) * 1000, _percentile(base_gaps, 0.99) * 1000
    return [
        result("wait latency p50, ms", p50, "ms", b50, "Popen.wait", "<= 0.3 ms", p50 <= 0.3),
        result("wait latency p99, ms", p99, "ms", b99, "Popen.wait", "<= 2 ms", p99 <= 2.0),
    ]


def control_latency(n: int) -> list[dict[str, object]]:
    """Case 5: suspend() and resume() of a running job."""
    suspends: list[float] = []
    resumes: list[float] = []
    with job_session("control") as session:
        job = session.run_job({"remote_command": "sleep", "args": ["600"]})
        job.wait_started()
        for _ in range(n):
            start = time.perf_counter()
            job.suspend()
            suspends.append(time.perf_counter() - start)
            start = time.perf_counter()
            job.resume()
            resumes.append(time.perf_counter() - start)
        job.terminate()
        # Baseline: the bare signals to a plain child (no confirmation, no bookkeeping).
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        bare: list[float] = []
        for _ in range(n):
            start = time.perf_counter()
            os.killpg(child.pid, 19)
            os.waitid(os.P_PID, child.pid, os.WSTOPPED | os.WNOWAIT)
            bare.append(time.perf_counter() - start)
            os.killpg(child.pid, 18)
        child.kill()
        child.wait()
    s50 = statistics.median(suspends) * 1000
    r50 = statistics.median(resumes) * 1000
    b50 = statistics.median(bare) * 1000
    return [
        result("suspend() p50, ms", s50, "ms", b50, "SIGSTOP + waitid", "<= 2 ms", s50 <= 2),
        result("resume() p50, ms", r50, "ms", b50, "SIGSTOP + waitid", "<= 2 ms", r50 <= 2),
    ]


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
    """Issue 4 §6: open a session holding n finished jobs; filtered get_jobs."""
    state = tempfile.mkdtemp(prefix="drmaa2-bench-scale-")
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
        store._execute("UPDATE sessions SET next_id = ? WHERE name = 'big'", (n + 1,))
    store.close()
    del records
    gc.collect()
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
    shutil.rmtree(state, ignore_errors=True)
    o, s, e = (statistics.median(v) * 1000 for v in (opens, by_state, by_exit))
    return [
        result(f"open a session of {n} finished jobs, ms", o, "ms", None, "", "<= 1000", o <= 1000),
        result(f"get_jobs(state) over {n} jobs, ms", s, "ms", None, "", "<= 200", s <= 200),
        result(f"get_jobs(exit_status) over {n} jobs, ms", e, "ms", None, "", "<= 200", e <= 200),
    ]


def when() -> str:
    """Now, for the report."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
