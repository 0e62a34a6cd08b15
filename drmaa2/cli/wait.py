"""``drmaa2 wait``: wait until jobs have finished, and exit with how they ended."""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TextIO

import drmaa2
from drmaa2.cli.errors import EXIT_ERROR, EXIT_OK
from drmaa2.cli.output import ProgressLine
from drmaa2.cli.parser import Commands
from drmaa2.cli.targets import find, jobs_of, open_session

# The progress line is redrawn, and job states looked up for it, at most this often (s).
_TICK = 0.1
# The longest single wait for jobs to end (seconds): a backend need not take any timeout.
_LONGEST_WAIT = 3600.0
# Seconds the whole command has beyond --timeout before it gives up on a backend that does
# not answer at all (an os keeper stopped with SIGSTOP answers no call, not even the first).
_GRACE = 5.0
# A --timeout longer than this (a year) sets no bound on the backend beyond the wait's own.
_LONGEST_BOUND = 366 * 86400.0


def register(commands: Commands) -> None:
    """Add ``wait``."""
    wait = commands.add("wait", _wait, "wait until jobs have finished", in_session=True)
    wait.add_argument("jobs", metavar="JOB", nargs="+", help="job, task or array ids")
    wait.add_argument(
        "--timeout",
        "-t",
        metavar="SECONDS",
        type=_seconds_arg,
        help="give up after this long (exit status 1)",
    )


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _wait(args: argparse.Namespace, out: TextIO) -> int:
    with _bounded(args.timeout), open_session(args) as session:
        targets = [find(session, job_id) for job_id in args.jobs]
        return wait_for(session, targets, args.timeout, out)


@contextlib.contextmanager
def _bounded(timeout: float | None) -> Iterator[None]:
    """With --timeout, the command gives up once it and :data:`_GRACE` have passed, whatever
    its backend does (TimeoutException, exit status 1): a wait's own timeout holds only once
    the session is open, and looking up the jobs has none. (Only in the main thread, where
    signals are handled; and not beyond a year, which the timer could not hold.)"""
    if (
        timeout is None
        or timeout > _LONGEST_BOUND
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    limit = timeout + _GRACE

    def expired(signum: int, frame: FrameType | None) -> None:
        raise drmaa2.TimeoutException(
            f"timed out: the backend did not answer within the --timeout of {timeout:g} s "
            f"and {_GRACE:g} s more"
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def wait_for(
    session: drmaa2.JobSession,
    targets: Sequence[drmaa2.Job | drmaa2.JobArray],
    timeout: float | None,
    out: TextIO,
) -> int:
    """Wait for jobs and arrays (a progress line on a terminal if an array is among them);
    0 if every one ended DONE, else the exit status of the last one named that did not."""
    jobs = [job for target in targets for job in jobs_of(target)]
    progress = None
    if out.isatty() and any(isinstance(target, drmaa2.JobArray) for target in targets):
        ids = ", ".join(target.id for target in targets)
        progress = ProgressLine(out, f"{'array' if len(targets) == 1 else 'jobs'} {ids}")
    try:
        _wait_terminated(session, jobs, timeout, progress)
    finally:
        if progress is not None:
            progress.finish()
    failed = [status for status in map(exit_status, targets) if status != EXIT_OK]
    return failed[-1] if failed else EXIT_OK


def exit_status(target: drmaa2.Job | drmaa2.JobArray) -> int:
    """0 for a DONE job or an array whose tasks are all DONE; a failed job's exit status
    (1 if it has none, or for an array with a task not DONE)."""
    if isinstance(target, drmaa2.JobArray):
        states = [job.get_state()[0] for job in target.job_list]
        return EXIT_OK if all(state is drmaa2.JobState.DONE for state in states) else EXIT_ERROR
    info = target.get_info()
    if info.job_state is drmaa2.JobState.DONE:
        return EXIT_OK
    status = info.exit_status
    return status if status is not None and 0 < status <= 255 else EXIT_ERROR


def _wait_terminated(
    session: drmaa2.JobSession,
    jobs: Sequence[drmaa2.Job],
    timeout: float | None,
    progress: ProgressLine | None,
) -> None:
    """Wait until every job is DONE or FAILED: with the session's own wait, which returns
    the moment the last one ends (the keeper says so, nothing is polled), for the whole
    time (no job is looked up unless it times out), or for a tick at a time while a progress
    line shows the states (finished jobs are not looked up again). TimeoutException after
    ``timeout`` seconds (None: forever)."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    pending = list(jobs)
    done = failed = 0
    while True:
        if progress is None:  # nothing to show meanwhile: until the last one ends
            left = None if deadline is None else deadline - time.monotonic()
            if (left is None or left > 0) and _wait_all(session, pending, left):
                return
        polled = time.monotonic()
        unfinished: collections.Counter[drmaa2.JobState] = collections.Counter()
        still: list[drmaa2.Job] = []
        for job in pending:
            state = job.get_state()[0]
            if state is drmaa2.JobState.DONE:
                done += 1
            elif state is drmaa2.JobState.FAILED:
                failed += 1
            else:
                still.append(job)
                unfinished[state] += 1
        pending = still
        now = time.monotonic()
        if progress is not None:
            progress.update(done, failed, unfinished, now - started)
        if not pending:
            return
        if deadline is not None and now >= deadline:
            named = ", ".join(job.id for job in pending[:3]) + (", ..." if len(pending) > 3 else "")
            raise drmaa2.TimeoutException(
                f"timed out after {timeout:g} s: {len(pending)} of {len(jobs)} job(s) have not "
                f"finished ({named})"
            )
        if progress is not None:  # looking up a big array costs time: at most half of it
            pause = max(_TICK, 2 * (now - polled))
            _wait_all(session, pending, pause if deadline is None else min(pause, deadline - now))


def _wait_all(
    session: drmaa2.JobSession, jobs: Sequence[drmaa2.Job], seconds: float | None
) -> bool:
    """Whether every job has ended, waiting for that for ``seconds`` (None: however long),
    never longer than :data:`_LONGEST_WAIT` at a time (the caller goes round again)."""
    wait = drmaa2.INFINITE_TIME if seconds is None else min(seconds, _LONGEST_WAIT)
    try:
        session.wait_all_terminated(jobs, wait)
    except drmaa2.TimeoutException:
        return False
    return True
