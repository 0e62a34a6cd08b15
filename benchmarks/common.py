"""What every benchmark case shares: the result row, the keepers of temporary state
directories (found and stopped by the pid in ``<state_dir>/keeper.lock``), fresh sessions,
and timing by turns against a baseline.

A result row is a dict: case, value, unit, baseline, baseline_name, ratio, target, ok. Times
are medians of several repeats where a case is repeated.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import resource
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

import drmaa2

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


def keeper_cpu_seconds(state_dir: str, children: bool = False) -> float:
    """CPU time (user + system) of the keeper of ``state_dir`` so far (0 if none runs); with
    ``children``, that of the jobs it reaped instead (its children)."""
    process = keeper_process(state_dir)
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    if children:
        return float(times.children_user + times.children_system)
    return float(times.user + times.system)


def children_cpu_seconds() -> float:
    """CPU time (user + system) of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def keeper_cpu_row(case: str, per_job: float, baseline: list[float], n: int) -> dict[str, object]:
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


def median_time(call: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far, all its threads (not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(call: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    gc.collect()
    cpu, start = cpu_seconds(), time.perf_counter()
    call()
    return time.perf_counter() - start, cpu_seconds() - cpu


def alternate(
    baseline: Callable[[], None], ours: Callable[[], None], repeats: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Run the baseline and ours by turns: their wall times, then their CPU times."""
    runs = [(timed(baseline), timed(ours)) for _ in range(repeats)]
    return (
        [b[0] for b, _ in runs],
        [o[0] for _, o in runs],
        [b[1] for b, _ in runs],
        [o[1] for _, o in runs],
    )


def cpu_row(case: str, n: int, ours: list[float], baseline: list[float]) -> dict[str, object]:
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


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def when() -> str:
    """Now, for the report."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
