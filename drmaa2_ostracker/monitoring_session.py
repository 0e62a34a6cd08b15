"""The ``os`` backend's monitoring session: every process of this machine as a read-only job.

A job's id is its process id. What a job's :class:`~drmaa2.JobInfo` holds:

=====================  ===========================================================
JobInfo                process
=====================  ===========================================================
job_id                 pid
job_name               process name (the full executable name when the kernel's
                       15-character name is a prefix of it, as psutil does)
job_state              RUNNING; SUSPENDED when stopped (by a signal or a tracer)
job_sub_state          the process status as psutil names it: "running",
                       "sleeping", "disk-sleep", "stopped", "tracing-stop",
                       "idle", … and "zombie" for a process that has exited but
                       not been reaped by its parent
dispatch_time          process start time
submission_time        same as dispatch_time
wallclock_time         now - start
cpu_time               user + system CPU seconds
allocated_machines     [hostname]
submission_machine     hostname
job_owner              user name of the real uid (the uid when it has no name)
slots                  1
=====================  ===========================================================

Extension keys (:mod:`drmaa2_ostracker.extension`): ``name``, ``commandline`` (arguments joined
by spaces), ``workingdir``, ``cpu_usage``, ``cpu_affinity`` (CPU numbers, space separated),
``memory_usage`` (psutil's memory_info as a JSON object, bytes), ``memory_usage_rss`` and
``memory_usage_vms`` (bytes).

A zombie stays RUNNING with sub-state "zombie": it still holds its pid, and its exit status,
which would decide between DONE and FAILED, is for its parent alone to read. Its command line
and working directory are gone, so those keys are absent.

**cpu_usage** is the percentage of one CPU the process used since this session's previous
sample of it (100 = one core busy, more for several threads), not a lifetime average. Opening
the session samples every process; each scan or ``get_info`` takes a new sample, except that a
sample younger than 100 ms is kept and its value reported again (so ``get_info()`` right after
``get_all_jobs()`` returns the scan's value; CPU times advance in 10 ms ticks, so a shorter
interval would mostly measure rounding). For the same reason the first call made less than
100 ms after the session opened waits until the opening sample is 100 ms old: that call already
reports the current load (about 100 for a process spinning on one core). A process started
since the previous sample is measured over its whole life, which lies inside that interval.

**Robustness.** A process that ends during a scan is left out of it, and ``get_info`` of an
ended process raises InvalidArgumentException. A value the user may not read (another user's
working directory, say) is left unset: the field stays None, the extension key is absent.
Neither ever raises.

**Where the values come from** (Linux: procfs). psutil caches a process's start time, so it
cannot tell that a pid was reused; and its per-call overhead would make a scan cost more than a
bare ``psutil.process_iter``. So the three fixed-format files are read directly:
``/proc/<pid>/stat`` (start time, which with the pid is the process's identity, state, name and
CPU times), ``status`` (the real uid) and ``statm`` (memory, the numbers psutil's memory_info
gives). psutil reads what has edge cases: the command line (zombies, rewritten command lines),
the working directory (permissions) and the CPU affinity, through a ``psutil.Process`` kept per
tracked process and replaced when the pid's start time changes. A job id names the process the
session last saw under that pid: if that process has ended and the pid been reused, ``get_info``
raises until a scan lists the new process. A filter on ``job_id`` reads that one process only.
A full ``get_all_jobs`` costs about 0.9 times a bare ``psutil.process_iter`` fetching the same
attributes (``benchmarks/bench_monitoring.py``).
"""

from __future__ import annotations

import datetime
import itertools
import os
import threading
import time
from collections.abc import Sequence

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

from drmaa2.errors import InvalidArgumentException, InvalidSessionException
from drmaa2.filter import job_matches
from drmaa2.types import JobInfo, MachineInfo, QueueInfo
from drmaa2_ostracker import extension
from drmaa2_ostracker.host import hostname, machine_info
from drmaa2_ostracker.process.procfs import (
    CLOCK_TICKS,
    COMM_LENGTH,
    STATES,
    UNKNOWN_STATE,
    UTC,
    read_memory,
    read_owner,
    read_stat,
)

__all__ = ["MIN_SAMPLE_INTERVAL", "OsMonitoringSession"]

#: Seconds a CPU sample must age before it is replaced (see the module docstring).
MIN_SAMPLE_INTERVAL = 0.1

_session_numbers = itertools.count(1)

# psutil's answers for a value that exists but cannot be read: leave the value unset.
# ZombieProcess is a NoSuchProcess, so it must be caught before the "process gone" handler.
_UNREADABLE = (psutil.AccessDenied, psutil.ZombieProcess)


class _Tracked:
    """A process this session has seen: its identity, psutil handle and last CPU sample."""

    __slots__ = ("at", "cpu", "process", "start", "usage")

    def __init__(self, start: int, process: psutil.Process | None, cpu: float, at: float) -> None:
        self.start = start
        #: Made on first full read (the opening sample needs none).
        self.process = process
        #: CPU seconds, and CLOCK_BOOTTIME seconds, of the sample.
        self.cpu = cpu
        self.at = at
        #: CPU percent measured at this sample (None for the opening sample).
        self.usage: float | None = None


def _pid_of(job_id: str) -> int | None:
    """The pid a job id names, or None: ids are pids written the way ``str(pid)`` writes them."""
    if job_id.isascii() and job_id.isdigit() and str(int(job_id)) == job_id:
        return int(job_id)
    return None


class OsMonitoringSession:
    """A monitoring session of the ``os`` backend (implements ``MonitoringSessionBackend``).

    ``name`` None generates one (``"monitoring-<pid>-<n>"``). Opening takes the first CPU
    sample of every process.
    """

    def __init__(self, name: str | None) -> None:
        if name is None:
            name = f"monitoring-{os.getpid()}-{next(_session_numbers)}"
        self._name = name
        self._lock = threading.Lock()
        self._closed = False
        # Busy threads of one process can use every CPU, but no more: caps rounding noise.
        self._max_usage = 100.0 * (os.cpu_count() or 1)
        self._affinity_texts: dict[tuple[int, ...], str] = {}
        self._tracked: dict[int, _Tracked] = {}
        for pid in psutil.pids():
            try:
                stat = read_stat(pid)
            except psutil.NoSuchProcess:
                continue
            if stat is not None:
                self._tracked[pid] = _Tracked(
                    stat.start, None, stat.cpu, time.clock_gettime(time.CLOCK_BOOTTIME)
                )
        # The time of the youngest opening sample: every one is at least this old.
        self._opened_at = time.clock_gettime(time.CLOCK_BOOTTIME)

    @property
    def name(self) -> str:
        """The session's name."""
        return self._name

    def all_jobs(self, job_filter: JobInfo | None) -> list[JobInfo]:
        """Every process that passes ``job_filter``, in pid order; a ``job_id`` filter reads
        that one process only."""
        with self._lock:
            self._ready()
            host, boot_time = hostname(), psutil.boot_time()
            if job_filter is not None and job_filter.job_id is not None:
                pid = _pid_of(job_filter.job_id)
                if pid is None:
                    return []
                try:
                    info = self._read(pid, host, boot_time, self._tracked, None)
                except psutil.NoSuchProcess:
                    return []
                return [info] if job_matches(info, job_filter) else []
            # Rebuilt on every full scan, so ended processes are forgotten.
            tracked: dict[int, _Tracked] = {}
            infos: list[JobInfo] = []
            for pid in sorted(psutil.pids()):
                try:
                    info = self._read(pid, host, boot_time, tracked, None)
                except psutil.NoSuchProcess:
                    continue
                if job_filter is None or job_matches(info, job_filter):
                    infos.append(info)
            self._tracked = tracked
            return infos

    def job_info(self, job_id: str) -> JobInfo:
        """The process's information now; InvalidArgumentException once it has ended."""
        pid = _pid_of(job_id)
        if pid is None:
            raise InvalidArgumentException(
                f"job {job_id!r}: no such job (the jobs of an os monitoring session are "
                f"process ids)"
            )
        with self._lock:
            self._ready()
            known = self._tracked.get(pid)
            try:
                return self._read(
                    pid,
                    hostname(),
                    psutil.boot_time(),
                    self._tracked,
                    None if known is None else known.start,
                )
            except psutil.NoSuchProcess:
                raise InvalidArgumentException(f"job {job_id!r}: process {pid} has ended") from None

    def all_machines(self, names: Sequence[str] | None) -> list[MachineInfo]:
        """This machine, unless ``names`` leaves it out."""
        self._check_open()
        if names is not None and hostname() not in names:
            return []
        return [machine_info()]

    def all_queues(self, names: Sequence[str] | None) -> list[QueueInfo]:
        """Always empty: an operating system has no queues."""
        self._check_open()
        return []

    def close(self) -> None:
        """Forget the samples; later calls raise InvalidSessionException."""
        with self._lock:
            self._check_open()
            self._closed = True
            self._tracked = {}

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionException(f"monitoring session {self._name!r} is closed")

    def _ready(self) -> None:
        """Check the session is open; wait until the opening sample can give a CPU load."""
        self._check_open()
        wait = self._opened_at + MIN_SAMPLE_INTERVAL - time.clock_gettime(time.CLOCK_BOOTTIME)
        if wait > 0:
            time.sleep(wait)

    def _read(
        self,
        pid: int,
        host: str,
        boot_time: float,
        into: dict[int, _Tracked],
        expect_start: int | None,
    ) -> JobInfo:
        """Read one process into a JobInfo and record its CPU sample in ``into``.

        Raises psutil.NoSuchProcess when the process has ended, or when ``expect_start`` is
        given and the pid now belongs to a process started at another time.
        """
        stat = read_stat(pid)
        if stat is None:
            return JobInfo(
                job_id=str(pid), allocated_machines=[host], submission_machine=host, slots=1
            )
        if expect_start is not None and stat.start != expect_start:
            raise psutil.NoSuchProcess(pid)
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        started = stat.start / CLOCK_TICKS
        sample = self._tracked.get(pid)
        if sample is not None and sample.start == stat.start:
            process = sample.process
            if process is None:
                process = sample.process = psutil.Process(pid)
            age = now - sample.at
            if age >= MIN_SAMPLE_INTERVAL or sample.usage is None:
                sample.usage = min(
                    self._max_usage, (stat.cpu - sample.cpu) * 100.0 / age if age > 0 else 0.0
                )
                sample.cpu, sample.at = stat.cpu, now
        else:
            # Unseen, or the pid was reused: the process's whole life lies in the interval.
            process = psutil.Process(pid)
            sample = _Tracked(stat.start, process, stat.cpu, now)
            age = now - started
            sample.usage = min(self._max_usage, stat.cpu * 100.0 / age if age > 0 else 0.0)
        into[pid] = sample

        name = stat.name
        ext: dict[str, str] = {}
        try:
            cmdline: list[str] | None = process.cmdline()
        except _UNREADABLE:
            cmdline = None
        if cmdline is not None:
            ext[extension.MSESSION_COMMAND_LINE] = " ".join(cmdline)
            if len(name) >= COMM_LENGTH and cmdline:
                # The kernel's name is truncated; psutil's rule recovers the full one.
                full = os.path.basename(cmdline[0])
                if full.startswith(name):
                    name = full
        ext[extension.MSESSION_PROCESS_NAME] = name
        try:
            cwd = process.cwd()
        except _UNREADABLE:
            cwd = ""
        if cwd:
            ext[extension.MSESSION_WORKING_DIR] = cwd
        ext[extension.MSESSION_CPU_USAGE] = f"{sample.usage:.1f}"
        try:
            cpus = tuple(process.cpu_affinity())
        except _UNREADABLE:
            pass
        else:
            text = self._affinity_texts.get(cpus)
            if text is None:
                text = self._affinity_texts[cpus] = " ".join(map(str, cpus))
            ext[extension.MSESSION_CPU_AFFINITY] = text
        ext.update(read_memory(pid))

        state, sub_state = STATES.get(stat.state, UNKNOWN_STATE)
        start_time = datetime.datetime.fromtimestamp(boot_time + started, UTC)
        return JobInfo(
            job_id=str(pid),
            job_name=name,
            job_state=state,
            job_sub_state=sub_state,
            allocated_machines=[host],
            submission_machine=host,
            job_owner=read_owner(pid),
            slots=1,
            wallclock_time=datetime.timedelta(seconds=max(0.0, now - started)),
            cpu_time=stat.cpu,
            submission_time=start_time,
            dispatch_time=start_time,
            implementation_specific=ext,
        )
