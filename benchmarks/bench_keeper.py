"""Benchmarks of the keeper itself (issue 12): a state change of one client's job seen by
another client (``handoff``), the first call in a fresh state directory (``first_call``) and
the keeper's memory after many finished jobs (``keeper_memory``).

Each function returns result dicts in the shape of :func:`benchmarks.common.result`, with
baselines measured in the same run. Every keeper started here is stopped by its pid (from
``<state_dir>/keeper.lock``) and its state directory removed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import drmaa2
from benchmarks.bench_latency import stamp_command
from benchmarks.common import (
    TRUE,
    keeper_process,
    percentile,
    remove_state,
    result,
    state_directory,
)

#: How long the other client lets pass between being told to act and acting (seconds): the
#: waiting client is then surely blocked in its wait when the state changes.
_DELAY = 0.003

#: The other client: opens the session, and acts on the lines it reads from its stdin.
#: ``submit`` submits a held job and prints its id; ``release ID`` releases it (printing the
#: CLOCK_MONOTONIC time just before the call); ``finish FIFO`` lets the job (or the baseline's
#: child) that waits on FIFO end.
_OTHER_CLIENT = """
import json, os, sys, time
import drmaa2
state_dir, name = sys.argv[1], sys.argv[2]
command, delay = json.loads(sys.argv[3]), float(sys.argv[4])
session = drmaa2.open_job_session(name, state_dir, backend="os")
template = drmaa2.JobTemplate(remote_command=command[0], args=command[1:], submit_as_hold=True)
jobs = {}
for line in sys.stdin:
    word, _, argument = line.strip().partition(" ")
    if word == "submit":
        job = session.run_job(template)
        jobs[job.id] = job
        print(job.id, flush=True)
    elif word == "release":
        time.sleep(delay)
        before = time.monotonic()
        jobs.pop(argument).release()
        print(repr(before), flush=True)
    elif word == "finish":
        time.sleep(delay)
        fd = os.open(argument, os.O_WRONLY)
        os.write(fd, b"x")
        os.close(fd)
session.close()
"""


class _OtherClient:
    """A second process, a client of the same session."""

    def __init__(self, state_dir: str, name: str, command: list[str]) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _OTHER_CLIENT,
                state_dir,
                name,
                json.dumps(command),
                str(_DELAY),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def answer(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the other client exited ({self.process.wait()})")
        return line.strip()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _stamp(path: str) -> float:
    with open(path) as handle:
        return float(handle.read())


def _unblock(fifo: str) -> None:
    """Open the FIFO both ways (which never blocks) and put bytes in it: whoever waits on
    it, to open it or to read from it, goes on."""
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"x" * 64)
        time.sleep(0.05)
    finally:
        os.close(fd)


def handoff(n: int) -> list[dict[str, object]]:
    """A job submitted (held) by another client, released by it, and let end by it: this
    process waits with wait_started, then wait_terminated.

    The figure: from the job's last act (it writes CLOCK_MONOTONIC to a file, then exits) to
    wait_terminated returning here. The baseline: the same program as this process's own
    child, let end by the same other client the same way, to Popen.wait returning. Also
    reported: from the other client's release() call to wait_started returning here (a
    control request, the keeper's spawn and the push to this client)."""
    workdir = tempfile.mkdtemp(prefix="drmaa2-bench-handoff-")
    state = state_directory()
    fifo = os.path.join(workdir, "go")
    os.mkfifo(fifo, 0o600)
    out = os.path.join(workdir, "t")
    command = [*stamp_command(workdir), out, fifo]
    ended: list[float] = []
    started: list[float] = []
    baseline: list[float] = []
    late = 0  # events whose state changed before this process was waiting: left out
    other: _OtherClient | None = None
    try:
        session = drmaa2.create_job_session("handoff", state, backend="os")
        try:
            other = _OtherClient(state, "handoff", command)
            warm = 5
            for i in range(n + warm):
                other.tell("submit")
                job_id = other.answer()
                (job,) = session.get_jobs({"job_id": job_id})
                other.tell(f"release {job_id}")
                entered = time.monotonic()
                job.wait_started(timeout=30)
                seen = time.monotonic()
                released = float(other.answer())
                other.tell(f"finish {fifo}")
                entered_end = time.monotonic()
                job.wait_terminated(timeout=30)
                returned = time.monotonic()
                last_act = _stamp(out)
                if i < warm:
                    continue
                if released < entered or last_act < entered_end:
                    late += 1
                    continue
                started.append(seen - released)
                ended.append(returned - last_act)
                # The baseline: the same program, this process's child, let end alike.
                child = subprocess.Popen(command)
                other.tell(f"finish {fifo}")
                child.wait()
                baseline.append(time.monotonic() - _stamp(out))
        finally:
            _unblock(fifo)  # after a failure: let a job or the other client blocked on it go
            if other is not None:
                other.close()
            session.destroy()
    finally:
        remove_state(state)
        shutil.rmtree(workdir, ignore_errors=True)
    e50, e99 = percentile(ended, 0.5) * 1000, percentile(ended, 0.99) * 1000
    b50, b99 = percentile(baseline, 0.5) * 1000, percentile(baseline, 0.99) * 1000
    s50, s99 = percentile(started, 0.5) * 1000, percentile(started, 0.99) * 1000
    count = len(ended)
    return [
        result(
            f"handoff: another client's job ends -> wait_terminated here, p50, ms ({count})",
            e50,
            "ms",
            b50,
            "Popen.wait, same program",
            "reported",
            True,
        ),
        result(
            f"handoff: another client's job ends -> wait_terminated here, p99, ms ({count})",
            e99,
            "ms",
            b99,
            "Popen.wait, same program",
            "<= 2 ms",
            e99 <= 2,
        ),
        result(
            "handoff: another client's release() -> wait_started here, p50, ms",
            s50,
            "ms",
            None,
            "",
            "reported",
            True,
        ),
        result(
            "handoff: another client's release() -> wait_started here, p99, ms",
            s99,
            "ms",
            None,
            "",
            "reported",
            True,
        ),
        result(
            "handoff: events left out (state changed before the wait began)",
            float(late),
            "count",
            None,
            "",
            "reported",
            True,
        ),
    ]


def first_call(n: int) -> list[dict[str, object]]:
    """create_job_session in a fresh state directory, the keeper's start included (median of
    n fresh directories), against the start of a bare interpreter (``python -c pass``: the
    keeper is a fresh interpreter). Also reported: an interpreter importing the keeper's
    server module, and the second call (open_job_session, the keeper running)."""
    firsts: list[float] = []
    seconds: list[float] = []
    bare: list[float] = []
    imports: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import drmaa2_ostracker.keeper.server"], check=True)
        imports.append(time.perf_counter() - start)
        state = state_directory("drmaa2-bench-first-")
        try:
            assert keeper_process(state) is None
            start = time.perf_counter()
            session = drmaa2.create_job_session("first", state, backend="os")
            firsts.append(time.perf_counter() - start)
            session.close()
            start = time.perf_counter()
            session = drmaa2.open_job_session("first", state, backend="os")
            seconds.append(time.perf_counter() - start)
            session.close()
        finally:
            remove_state(state)
    first, base = statistics.median(firsts), statistics.median(bare)
    return [
        result(
            f"first call in a fresh state directory, keeper start included, s (median of {n})",
            first,
            "s",
            base,
            "python -c pass",
            "<= 0.5 s",
            first <= 0.5,
        ),
        result(
            "first call: an interpreter importing the keeper's server, s",
            statistics.median(imports),
            "s",
            base,
            "python -c pass",
            "reported",
            True,
        ),
        result(
            "first call: the next call (open_job_session, keeper running), ms",
            statistics.median(seconds) * 1000,
            "ms",
            None,
            "",
            "reported",
            True,
        ),
    ]


def keeper_memory(n: int) -> list[dict[str, object]]:
    """The keeper's RSS after n finished jobs (/bin/true, submitted 100 at a time), against
    its RSS after the first job."""
    state = state_directory("drmaa2-bench-memory-")
    try:
        session = drmaa2.create_job_session("memory", state, backend="os")
        try:
            template = drmaa2.JobTemplate(remote_command=TRUE)
            session.run_job(template).wait_terminated()
            keeper = keeper_process(state)
            assert keeper is not None, "no keeper found for the session"
            first = keeper.memory_info().rss
            threads, fds = keeper.num_threads(), keeper.num_fds()
            done = 1
            while done < n:
                batch = min(100, n - done)
                jobs = [session.run_job(template) for _ in range(batch)]
                session.wait_all_terminated(jobs)
                done += batch
            last = keeper.memory_info().rss
            threads, fds = keeper.num_threads() - threads, keeper.num_fds() - fds
        finally:
            session.destroy()
    finally:
        remove_state(state)
    mib = last / 2**20
    return [
        result(
            f"keeper RSS after {n} finished jobs, MiB",
            mib,
            "MiB",
            first / 2**20,
            "its RSS after the first job",
            "<= 40 MiB",
            mib <= 40,
        ),
        result(
            f"keeper RSS growth from the first job to {n}, MiB",
            (last - first) / 2**20,
            "MiB",
            None,
            "",
            "reported",
            True,
        ),
        result(
            f"keeper threads and fds grown from the first job to {n}",
            float(threads + fds),
            "count",
            None,
            "",
            "reported",
            True,
        ),
    ]
