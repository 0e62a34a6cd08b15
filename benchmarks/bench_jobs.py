"""Benchmarks of the os backend's job sessions, through the drmaa2 API, against baselines
measured in the same run (issue 6 cases 1–6 and the scale case of issue 4, with the targets of
issue 12: every job goes through the state directory's keeper process).

Each function returns result dicts: case, value, unit, baseline, baseline_name, ratio,
target, ok. Times are medians of several repeats where a case is repeated. Every case stops
the keepers it started (by the pid in ``<state_dir>/keeper.lock``) and removes its state
directories.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

import drmaa2
from drmaa2_ostracker.keeper import KeeperClient
from drmaa2_ostracker.store import Store

try:  # the store is being reshaped into a package (issue 12)
    from drmaa2_ostracker.store.records import JobRecord
except ImportError:  # the one-module store
    from drmaa2_ostracker.store import JobRecord  # type: ignore[attr-defined,no-redef]

TRUE = shutil.which("true") or "/bin/true"
#: The file of a state directory that holds its running keeper's pid.
KEEPER_LOCK = "keeper.lock"


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


def keeper_process(state_dir: str) -> psutil.Process | None:
    """The keeper serving ``state_dir`` (its pid from ``keeper.lock``), if one runs; a pid
    reused by another process is not taken for it."""
    try:
        with open(os.path.join(state_dir, KEEPER_LOCK)) as handle:
            pid = int(handle.read().split()[0])
        process = psutil.Process(pid)
        command = process.cmdline()
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    if "drmaa2_ostracker.keeper" not in command or os.path.abspath(state_dir) not in command:
        return None
    return process


def stop_keeper(state_dir: str) -> None:
    """Stop the keeper of ``state_dir`` by its pid (SIGTERM: it exits at once), and wait
    until it has exited (SIGKILL after 10 s). It is not this process's child: once it is a
    zombie, it is gone (its reaping is up to init, which may take its time)."""
    process = keeper_process(state_dir)
    if process is None:
        return
    with contextlib.suppress(psutil.Error):
        process.send_signal(signal.SIGTERM)
        if not _exited(process, 10.0):
            process.kill()
            _exited(process, 10.0)


def _exited(process: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.002)
    return False


def keeper_cpu_seconds(state_dir: str) -> float:
    """CPU time (user + system) of the keeper of ``state_dir`` so far (0 if none runs)."""
    process = keeper_process(state_dir)
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _keeper_cpu_row(case: str, per_job: float, baseline: list[float], n: int) -> dict[str, object]:
    """Where the time goes: the keeper's CPU per job, against the baseline's own CPU per job."""
    return result(
        f"{case}: keeper process CPU per job, us",
        per_job * 1e6,
        "us",
        statistics.median(baseline) / n * 1e6,
        "the baseline's CPU per job",
        "reported",
        True,
    )


def state_directory(prefix: str = "drmaa2-bench-") -> str:
    """A new private state directory."""
    return tempfile.mkdtemp(prefix=prefix)


def remove_state(state_dir: str) -> None:
    """Stop the keeper of a state directory, then remove the directory."""
    stop_keeper(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


@contextmanager
def job_session(name: str) -> Iterator[drmaa2.JobSession]:
    """A fresh session in a temporary state directory, destroyed afterwards (and its keeper
    stopped)."""
    state = state_directory()
    try:
        session = drmaa2.create_job_session(name, state, backend="os")
        try:
            yield session
        finally:
            session.destroy()
    finally:
        remove_state(state)


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
    """Case 1: n × (run_job /bin/true, wait_terminated) against n × Popen + wait; and where
    the time goes: the keeper hop (a ``ping`` round trip) and the spawn."""
    with job_session("sequential") as session:
        template = drmaa2.JobTemplate(remote_command=TRUE)

        def ours() -> None:
            for _ in range(n):
                session.run_job(template).wait_terminated()

        def popen() -> None:
            for _ in range(n):
                subprocess.Popen([TRUE]).wait()

        ours()  # warm-up: imports, caches, the keeper's plan of the template
        keeper_cpu = keeper_cpu_seconds(session.contact)
        b, o, bc, oc = _alternate(popen, ours, repeats)
        keeper_cpu = (keeper_cpu_seconds(session.contact) - keeper_cpu) / (n * repeats)
        baseline, ours_time = statistics.median(b), statistics.median(o)
        hop, bare_hop = keeper_hop(session.contact, max(200, n))
    spawn = spawn_time(max(100, n // 2))
    ratio = ours_time / baseline
    return [
        result(
            f"sequential {n} x (run_job /bin/true + wait_terminated), ms per job",
            ours_time / n * 1000,
            "ms",
            baseline / n * 1000,
            "subprocess.Popen + wait",
            "ratio <= 1.40",
            ratio <= 1.40,
        ),
        _cpu_row("sequential", n, oc, bc),
        _keeper_cpu_row("sequential", keeper_cpu, bc, n),
        result(
            "sequential: the keeper hop (ping round trip, session open) p50, us",
            hop * 1e6,
            "us",
            bare_hop * 1e6,
            "bare AF_UNIX round trip to an echo process",
            "reported",
            True,
        ),
        result(
            "sequential: the spawn (Popen of /bin/true, in one process) p50, us",
            spawn * 1e6,
            "us",
            baseline / n * 1e6,
            "Popen + wait, whole job",
            "reported",
            True,
        ),
    ]


_ECHO = (
    "import socket, sys\n"
    "s = socket.socket(fileno=int(sys.argv[1]))\n"
    "while data := s.recv(65536):\n"
    "    s.sendall(data)\n"
)


def keeper_hop(state_dir: str, n: int) -> tuple[float, float]:
    """p50 of a ``ping`` round trip to the keeper of ``state_dir`` (a session of it open in
    this process), and of a bare round trip of as many bytes through a Unix socket to a
    process that echoes them (seconds)."""
    client = KeeperClient(state_dir)
    client.session_opened()  # so that the client keeps its connection between calls
    try:
        for _ in range(20):
            client.call("ping")
        hops = []
        for _ in range(n):
            start = time.perf_counter()
            client.call("ping")
            hops.append(time.perf_counter() - start)
    finally:
        client.session_closed()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    echo = subprocess.Popen(
        [sys.executable, "-c", _ECHO, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
    )
    theirs.close()
    message = b"\0" * 64
    bare = []
    try:
        for i in range(n + 20):
            start = time.perf_counter()
            ours.sendall(message)
            got = 0
            while got < len(message):
                got += len(ours.recv(65536))
            if i >= 20:
                bare.append(time.perf_counter() - start)
    finally:
        ours.close()
        echo.wait()
    return statistics.median(hops), statistics.median(bare)


def spawn_time(n: int) -> float:
    """p50 of ``subprocess.Popen([/bin/true])`` itself (the spawn, not the wait), seconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        child = subprocess.Popen([TRUE])
        times.append(time.perf_counter() - start)
        child.wait()
    return statistics.median(times)


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
        keeper_cpu = keeper_cpu_seconds(session.contact)
        b, o, bc, oc = _alternate(popen, ours, repeats)
        keeper_cpu = (keeper_cpu_seconds(session.contact) - keeper_cpu) / (n * repeats)
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
        _keeper_cpu_row(f"burst {n}", keeper_cpu, bc, n),
    ]


def array_throughput(n: int, repeats: int) -> list[dict[str, object]]:
    """Case 3: an n-task array of /bin/true with max_parallel = the machine's core count,
    against ``xargs -P <cores>``."""
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
            "ratio <= 1.15",
            ours_time / baseline <= 1.15,
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
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec t; char c; FILE *f;
    if (argc > 2) { int fd = open(argv[2], O_RDONLY); if (fd < 0 || read(fd, &c, 1) < 0) return 1; }
    f = fopen(argv[1], "w");
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(f, "%lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec); fclose(f);
    return 0;
}
"""
_STAMP_PY = (
    "import os, sys, time\n"
    "if len(sys.argv) > 2:\n"
    "    os.read(os.open(sys.argv[2], os.O_RDONLY), 1)\n"
    "f = open(sys.argv[1], 'w')\n"
    "f.write(repr(time.monotonic()))\n"
    "f.close()\n"
    "os._exit(0)\n"
)


def stamp_command(workdir: str) -> list[str]:
    """A command ``CMD FILE [FIFO]`` whose last act is writing CLOCK_MONOTONIC (seconds) to
    FILE, then exiting; given a FIFO, it first waits for a byte from it. A small C program
    when a C compiler is there, else a Python one-liner (the same clock)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc:
        source = os.path.join(workdir, "stamp.c")
        binary = os.path.join(workdir, "stamp")
        with open(source, "w") as handle:
            handle.write(_STAMP_C)
        if subprocess.run([gcc, "-O2", "-o", binary, source], check=False).returncode == 0:
            return [binary]
    return [sys.executable, "-c", _STAMP_PY]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_latency(n: int) -> list[dict[str, object]]:
    """Case 4: from the job's last act to wait_terminated returning, against Popen.wait on
    the same child (the same program, same argument), by turns in the same run; the target
    is on the difference of the p50s."""
    workdir = tempfile.mkdtemp(prefix="drmaa2-bench-stamp-")
    command = stamp_command(workdir)
    stamp = os.path.join(workdir, "t")
    gaps: list[float] = []
    base_gaps: list[float] = []

    def last_act() -> float:
        with open(stamp) as handle:
            return float(handle.read())

    try:
        with job_session("latency") as session:
            template = drmaa2.JobTemplate(remote_command=command[0], args=[*command[1:], stamp])
            for i in range(n + 5):
                # By turns, each one first every other time, so that neither always runs
                # right after the other's child.
                for turn in (0, 1) if i % 2 else (1, 0):
                    if turn == 0:
                        job = session.run_job(template)
                        job.wait_terminated()
                        returned = time.monotonic()
                        if i >= 5:
                            gaps.append(returned - last_act())
                    else:
                        child = subprocess.Popen([*command, stamp])
                        child.wait()
                        returned = time.monotonic()
                        if i >= 5:
                            base_gaps.append(returned - last_act())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    p50, p99 = percentile(gaps, 0.5) * 1000, percentile(gaps, 0.99) * 1000
    b50, b99 = percentile(base_gaps, 0.5) * 1000, percentile(base_gaps, 0.99) * 1000
    excess = p50 - b50
    return [
        result("wait latency p50, ms", p50, "ms", b50, "Popen.wait, same child", "reported", True),
        result(
            "wait latency p50 above Popen.wait's p50 (same child), ms",
            excess,
            "ms",
            None,
            "",
            "<= 0.3 ms",
            excess <= 0.3,
        ),
        result(
            "wait latency p99, ms", p99, "ms", b99, "Popen.wait, same child", "<= 2 ms", p99 <= 2
        ),
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


def _job_record(**values: object) -> JobRecord:
    """A JobRecord of the fields given that it has (the store's records are being reshaped:
    a field it no longer has is left out)."""
    known = {field.name for field in dataclasses.fields(JobRecord)}
    return JobRecord(**{key: value for key, value in values.items() if key in known})  # type: ignore[arg-type]


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
            _job_record(
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


def when() -> str:
    """Now, for the report."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
