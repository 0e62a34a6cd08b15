"""Latency of the os backend through the drmaa2 API: from a job's last act to
wait_terminated returning (against ``Popen.wait`` on the same child), and suspend/resume
of a running job (against a bare SIGSTOP).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import drmaa2
from benchmarks.common import job_session, percentile, result

_STAMP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec t; char c; FILE *f;
    /* A byte of its own: an end of file is the last writer closing (it wrote to another
       reader), so wait again. */
    while (argc > 2) {
        int fd = open(argv[2], O_RDONLY); ssize_t got;
        if (fd < 0) return 1;
        got = read(fd, &c, 1); close(fd);
        if (got < 0) return 1;
        if (got == 1) break;
    }
    f = fopen(argv[1], "w");
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(f, "%lld.%09ld\n", (long long)t.tv_sec, t.tv_nsec); fclose(f);
    return 0;
}
"""
_STAMP_PY = (
    "import os, sys, time\n"
    "while len(sys.argv) > 2:\n"
    "    fd = os.open(sys.argv[2], os.O_RDONLY)\n"
    "    got = os.read(fd, 1)\n"
    "    os.close(fd)\n"
    "    if got:\n"
    "        break\n"
    "f = open(sys.argv[1], 'w')\n"
    "f.write(repr(time.monotonic()))\n"
    "f.close()\n"
    "os._exit(0)\n"
)


def stamp_command(workdir: str) -> list[str]:
    """A command ``CMD FILE [FIFO]`` whose last act is writing CLOCK_MONOTONIC (seconds) to
    FILE, then exiting; given a FIFO, it first waits for a byte from it (one of its own: a
    reader that opened the FIFO while the writer of another's byte was still open gets an end
    of file, and waits again; it went on, and the next writer waited for a reader for good,
    which hung the handoff case once in CI). A small C program
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
