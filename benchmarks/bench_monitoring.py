"""Benchmark: a full ``get_all_jobs()`` of the os monitoring session against bare psutil.

With at least 1000 processes on the machine (the benchmark starts 1000 idle ``sleep`` children),
a full ``MonitoringSession.get_all_jobs()`` through the drmaa2 front API must cost at most
1.2 times a bare ``psutil.process_iter`` fetching the same attributes, measured in the same run.
Both are timed alternately (so load from elsewhere hits both alike) and the medians compared.

Run it alone with ``python -m benchmarks.bench_monitoring [--quick]``, or with the other cases
through ``python -m benchmarks --only monitoring``.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

import drmaa2

__all__ = ["PSUTIL_ATTRS", "TARGET_RATIO", "run"]

#: What a scan learns of each process, as psutil attribute names: the baseline fetches these.
PSUTIL_ATTRS = [
    "name",
    "status",
    "cpu_times",
    "create_time",
    "uids",
    "cmdline",
    "cwd",
    "memory_info",
    "cpu_affinity",
]
SLEEP = shutil.which("sleep") or "/bin/sleep"
#: get_all_jobs may cost at most this many times the bare psutil scan.
TARGET_RATIO = 1.2


def _start_idle(count: int) -> list[subprocess.Popen[bytes]]:
    children: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            children.append(
                subprocess.Popen(
                    [SLEEP, "600"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    except BaseException:
        _stop(children)
        raise
    return children


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.kill()
    for child in children:
        child.wait()


def _bare_psutil_scan() -> int:
    return len([process.info for process in psutil.process_iter(attrs=PSUTIL_ATTRS)])


def _timed(call: Callable[[], object]) -> float:
    gc.collect()  # so that neither side pays for the other's garbage
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict[str, object]]:
    """Start the idle processes, time both scans and return one result dict per case.

    ``quick`` starts 100 processes instead of 1000 and repeats less: a smoke run, not a
    measurement.
    """
    wanted = 100 if quick else 1000
    repeats = 5 if quick else 15
    children = _start_idle(wanted)
    try:
        session = drmaa2.open_monitoring_session(backend="os")
        try:
            # One untimed round of each: psutil fills its Process cache, the session its own.
            _bare_psutil_scan()
            session.get_all_jobs()
            bare: list[float] = []
            full: list[float] = []
            for _ in range(repeats):
                bare.append(_timed(_bare_psutil_scan))
                full.append(_timed(session.get_all_jobs))
            processes = len(session.get_all_jobs())
        finally:
            session.close()
    finally:
        _stop(children)
    value = statistics.median(full) * 1000
    baseline = statistics.median(bare) * 1000
    ratio = value / baseline
    return [
        {
            "case": f"get_all_jobs() of {processes} processes ({os.cpu_count()} CPUs)",
            "value": value,
            "unit": "ms",
            "baseline": baseline,
            "baseline_name": "psutil.process_iter(attrs=[same attributes])",
            "ratio": ratio,
            "target": f"≤ {TARGET_RATIO}",
            "ok": ratio <= TARGET_RATIO,
        }
    ]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv[1:]):
        print(
            f"{result['case']}: {result['value']:.1f} {result['unit']} vs "
            f"{result['baseline_name']} {result['baseline']:.1f} {result['unit']}: "
            f"ratio {result['ratio']:.2f} (target {result['target']}) "
            f"{'ok' if result['ok'] else 'FAIL'}"
        )
