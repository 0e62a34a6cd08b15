"""The os backend's monitoring session: every process of the machine as a read-only job.

Real child processes stand for each case (spinning, idle, stopped, zombie, in another working
directory); every child is killed and reaped when its test ends.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies
import pytest

import drmaa2
from drmaa2 import (
    Cpu,
    InvalidArgumentException,
    InvalidSessionException,
    JobState,
    Os,
    UnsupportedOperationException,
    Version,
)
from drmaa2_ostracker import extension, host
from tests.behaviour.conftest import TIMEOUT, wait_until

Spawn = Callable[..., "subprocess.Popen[bytes]"]

SLEEP = shutil.which("sleep") or "/bin/sleep"
SPIN = [sys.executable, "-c", "while True: pass"]
IDLE = [SLEEP, "600"]
# Burns one CPU second, then idles: its lifetime average stays high while its current load is 0.
BURN_THEN_IDLE = [
    sys.executable,
    "-c",
    "import time\nwhile time.process_time() < 1.0: pass\ntime.sleep(600)",
]


def open_session(name: str | None = None) -> drmaa2.MonitoringSession:
    """A monitoring session of the os backend (its jobs are this machine's processes)."""
    return drmaa2.open_monitoring_session(name, backend="os")


@pytest.fixture
def monitoring() -> Iterator[drmaa2.MonitoringSession]:
    opened = open_session()
    yield opened
    with contextlib.suppress(InvalidSessionException):
        opened.close()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a child process; all of them are killed and reaped (zombies too) at teardown."""
    children: list[subprocess.Popen[bytes]] = []

    def start(
        args: Sequence[str | os.PathLike[str]], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()  # a no-op for a child already reaped; SIGKILL ends stopped ones too
    for child in children:
        child.wait(timeout=TIMEOUT)


def status(pid: int) -> str | None:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return None


def started(child: subprocess.Popen[bytes], state: str = "sleeping") -> subprocess.Popen[bytes]:
    """Wait until the child has exec'd its program and reached ``state``."""
    wait_until(lambda: status(child.pid) == state, what=f"process {child.pid} to be {state}")
    return child


def job_of(monitoring: drmaa2.MonitoringSession, pid: int) -> drmaa2.Job:
    jobs = [job for job in monitoring.get_all_jobs() if job.id == str(pid)]
    assert len(jobs) == 1, f"process {pid} listed {len(jobs)} times"
    return jobs[0]


def ext(info: drmaa2.JobInfo) -> dict[str, str]:
    assert info.implementation_specific is not None
    return info.implementation_specific


# -- 1. every process is a job ---------------------------------------------------------------


def test_every_process_is_a_job_whose_id_is_its_pid(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = started(spawn(IDLE))
    ids = [job.id for job in monitoring.get_all_jobs()]
    assert str(os.getpid()) in ids
    assert str(child.pid) in ids
    assert len(ids) == len(set(ids))
    assert all(job_id.isdigit() for job_id in ids)
    # Processes come and go meanwhile, but most of psutil's pids must be there.
    assert len({str(pid) for pid in psutil.pids()} & set(ids)) >= 0.9 * len(ids)


def test_job_info_of_an_idle_process_in_another_working_directory(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, tmp_path: Path
) -> None:
    child = started(spawn(IDLE, cwd=tmp_path))
    job = job_of(monitoring, child.pid)
    info = job.get_info()
    process = psutil.Process(child.pid)
    start = datetime.datetime.fromtimestamp(process.create_time(), datetime.timezone.utc)
    hostname = socket.gethostname()

    assert info.job_id == job.id == str(child.pid)
    assert info.job_name == job.job_name == "sleep"
    assert job.get_state() == (JobState.RUNNING, "sleeping")
    assert info.job_state is JobState.RUNNING
    assert info.dispatch_time == info.submission_time
    assert info.dispatch_time is not None
    assert abs(info.dispatch_time - start) < datetime.timedelta(milliseconds=20)
    assert info.wallclock_time is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs(info.wallclock_time - (now - start)) < datetime.timedelta(seconds=1.5)
    assert info.allocated_machines == [hostname]
    assert info.submission_machine == hostname
    assert info.job_owner == pwd.getpwuid(os.getuid()).pw_name
    assert info.slots == 1
    assert info.exit_status is None
    assert info.finish_time is None

    values = ext(info)
    assert values[extension.MSESSION_PROCESS_NAME] == "sleep"
    assert values[extension.MSESSION_COMMAND_LINE] == f"{SLEEP} 600"
    assert values[extension.MSESSION_WORKING_DIR] == os.path.realpath(tmp_path)
    assert values[extension.MSESSION_CPU_AFFINITY] == " ".join(
        str(cpu) for cpu in sorted(os.sched_getaffinity(child.pid))
    )
    memory = json.loads(values[extension.MSESSION_MEMORY_USAGE])
    assert memory["rss"] == int(values[extension.MSESSION_MEMORY_USAGE_RSS]) > 0
    assert memory["vms"] == int(values[extension.MSESSION_MEMORY_USAGE_VMS]) >= memory["rss"]
    assert memory == process.memory_info()._asdict()
    assert 0.0 <= float(values[extension.MSESSION_CPU_USAGE]) < 10.0


def test_a_long_process_name_is_not_cut_at_15_characters(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, tmp_path: Path
) -> None:
    name = "drmaa2-monitoring-test-sleeper"
    program = tmp_path / name
    program.symlink_to(SLEEP)
    child = started(spawn([program, "600"]))
    job = job_of(monitoring, child.pid)
    assert job.job_name == name
    assert ext(job.get_info())[extension.MSESSION_PROCESS_NAME] == name


# -- 2. cpu_usage is the current load ---------------------------------------------------------


def test_a_spinning_process_reads_about_100_percent_on_the_first_call(
    spawn: Spawn,
) -> None:
    child = spawn(SPIN)
    spinner = psutil.Process(child.pid)
    wait_until(lambda: sum(spinner.cpu_times()[:2]) > 0.1, what="the spinner to spin")
    cpu_before, clock_before = sum(spinner.cpu_times()[:2]), time.monotonic()
    monitoring = open_session()
    try:
        usage = float(ext(job_of(monitoring, child.pid).get_info())[extension.MSESSION_CPU_USAGE])
    finally:
        monitoring.close()
    cpu_after, clock_after = sum(spinner.cpu_times()[:2]), time.monotonic()
    # What the spinner really got meanwhile: about 100 on a machine with a core to spare, less
    # when other work crowds the CPUs.
    share = 100.0 * (cpu_after - cpu_before) / (clock_after - clock_before)
    assert usage == pytest.approx(share, abs=25.0)


def test_cpu_usage_is_the_current_load_not_the_lifetime_average(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = spawn(BURN_THEN_IDLE)
    wait_until(
        lambda: (
            sum(psutil.Process(child.pid).cpu_times()[:2]) >= 0.9
            and status(child.pid) == "sleeping"
        ),
        what="the child to burn a CPU second and fall idle",
    )
    fresh = open_session()
    try:
        info = job_of(fresh, child.pid).get_info()
    finally:
        fresh.close()
    assert info.cpu_time is not None and info.wallclock_time is not None
    lifetime_average = 100.0 * info.cpu_time / info.wallclock_time.total_seconds()
    assert lifetime_average > 20.0
    assert float(ext(info)[extension.MSESSION_CPU_USAGE]) < 10.0


def test_a_sample_younger_than_100_ms_is_reported_again(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = spawn(SPIN)
    job = job_of(monitoring, child.pid)
    begin = time.monotonic()
    first = ext(job.get_info())[extension.MSESSION_CPU_USAGE]
    second = ext(job.get_info())[extension.MSESSION_CPU_USAGE]
    if time.monotonic() - begin < 0.09:  # a loaded machine may stretch the two calls
        assert second == first


# -- 1. (states) stopped and zombie processes -------------------------------------------------


def test_a_stopped_process_is_suspended(monitoring: drmaa2.MonitoringSession, spawn: Spawn) -> None:
    child = started(spawn(IDLE))
    job = job_of(monitoring, child.pid)
    child.send_signal(signal.SIGSTOP)
    started(child, "stopped")
    assert job.get_state() == (JobState.SUSPENDED, "stopped")
    assert job.get_info().job_state is JobState.SUSPENDED
    child.send_signal(signal.SIGCONT)
    started(child, "sleeping")
    assert job.get_state() == (JobState.RUNNING, "sleeping")


def test_a_zombie_is_reported_with_a_zombie_sub_state(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = spawn(["true"])  # not waited for: it stays a zombie until teardown reaps it
    started(child, "zombie")
    job = job_of(monitoring, child.pid)
    assert job.get_state() == (JobState.RUNNING, "zombie")
    info = job.get_info()
    assert info.job_sub_state == "zombie"
    assert info.job_owner == pwd.getpwuid(os.getuid()).pw_name
    # A zombie has no command line or working directory left: unset, not an error.
    assert extension.MSESSION_WORKING_DIR not in ext(info)
    assert extension.MSESSION_COMMAND_LINE not in ext(info)
    assert ext(info)[extension.MSESSION_PROCESS_NAME] == "true"
    assert monitoring.get_all_jobs({"job_sub_state": "zombie", "job_id": job.id}) == [job]


# -- 3. robustness ----------------------------------------------------------------------------


def test_a_process_gone_before_it_is_read_is_left_out(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = spawn(IDLE)
    gone.kill()
    gone.wait()
    alive = started(spawn(IDLE))
    real_pids = psutil.pids
    monkeypatch.setattr(psutil, "pids", lambda: [*real_pids(), gone.pid])
    ids = [job.id for job in monitoring.get_all_jobs()]
    assert str(gone.pid) not in ids
    assert str(alive.pid) in ids


def test_a_process_vanishing_between_two_reads_is_left_out(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = started(spawn(IDLE))
    real_cmdline = psutil.Process.cmdline

    def cmdline(self: psutil.Process) -> list[str]:
        if self.pid == child.pid:
            raise psutil.NoSuchProcess(self.pid)
        return list(real_cmdline(self))

    monkeypatch.setattr(psutil.Process, "cmdline", cmdline)
    assert str(child.pid) not in [job.id for job in monitoring.get_all_jobs()]


def test_a_field_the_user_may_not_read_is_left_unset(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = started(spawn(IDLE))
    real_cwd = psutil.Process.cwd

    def cwd(self: psutil.Process) -> str:
        if self.pid == child.pid:
            raise psutil.AccessDenied(self.pid)
        return str(real_cwd(self))

    monkeypatch.setattr(psutil.Process, "cwd", cwd)
    info = job_of(monitoring, child.pid).get_info()
    assert extension.MSESSION_WORKING_DIR not in ext(info)
    assert ext(info)[extension.MSESSION_COMMAND_LINE] == f"{SLEEP} 600"
    assert info.job_state is JobState.RUNNING


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to scan as another user")
def test_another_users_working_directory_is_left_unset(spawn: Spawn, tmp_path: Path) -> None:
    # A forked child drops to "nobody" and scans: root's working directories are closed to it.
    child = started(spawn(IDLE, cwd=tmp_path))
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        # Whatever happens, the forked copy of pytest must end here.
        try:
            os.close(read_end)
            outcome: dict[str, object]
            try:
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                scan = open_session()
                jobs = scan.get_all_jobs()
                info = next(job for job in jobs if job.id == str(child.pid)).get_info()
                outcome = {"jobs": len(jobs), "owner": info.job_owner, "ext": ext(info)}
            except BaseException as error:
                outcome = {"error": f"{type(error).__name__}: {error}"}
            os.write(write_end, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    report = json.loads(data)
    assert "error" not in report, report["error"]
    assert report["jobs"] > 1
    assert report["owner"] == "root"
    assert extension.MSESSION_WORKING_DIR not in report["ext"]
    assert report["ext"][extension.MSESSION_COMMAND_LINE] == f"{SLEEP} 600"


def test_scans_while_processes_come_and_go_never_raise(
    monitoring: drmaa2.MonitoringSession,
) -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            subprocess.run(["true"], check=True)

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for _ in range(20):
            for job in monitoring.get_all_jobs():
                assert job.id.isdigit()
    finally:
        stop.set()
        churner.join()


def test_get_info_of_an_ended_process_raises_invalid_argument(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = started(spawn(IDLE))
    job = job_of(monitoring, child.pid)
    child.kill()
    child.wait()
    with pytest.raises(InvalidArgumentException, match=str(child.pid)):
        job.get_info()
    with pytest.raises(InvalidArgumentException):
        job.get_state()


# -- 3. filters -------------------------------------------------------------------------------


def test_a_job_id_filter_reads_only_that_process(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = started(spawn(IDLE))

    def no_scan() -> list[int]:
        raise AssertionError("a job_id filter must not list every process")

    monkeypatch.setattr(psutil, "pids", no_scan)
    jobs = monitoring.get_all_jobs({"job_id": str(child.pid)})
    assert [job.id for job in jobs] == [str(child.pid)]
    assert jobs[0].job_name == "sleep"
    assert monitoring.get_all_jobs({"job_id": str(child.pid), "job_name": "other"}) == []
    assert monitoring.get_all_jobs({"job_id": "no-such-pid"}) == []
    assert monitoring.get_all_jobs({"job_id": f"0{child.pid}"}) == []


def test_a_job_id_filter_for_an_ended_process_finds_nothing(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    child = spawn(IDLE)
    child.kill()
    child.wait()
    assert monitoring.get_all_jobs(drmaa2.JobInfo(job_id=str(child.pid))) == []


def test_filter_by_job_name(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, tmp_path: Path
) -> None:
    name = f"d2mon-{os.getpid()}"  # unique, and short enough for the kernel's 15 characters
    program = tmp_path / name
    program.symlink_to(SLEEP)
    children = [started(spawn([program, "600"])) for _ in range(2)]
    other = started(spawn(IDLE))
    jobs = monitoring.get_all_jobs({"job_name": name})
    assert sorted(job.id for job in jobs) == sorted(str(child.pid) for child in children)
    assert str(other.pid) not in [job.id for job in jobs]


def test_filter_by_job_state(monitoring: drmaa2.MonitoringSession, spawn: Spawn) -> None:
    stopped = started(spawn(IDLE))
    running = started(spawn(IDLE))
    stopped.send_signal(signal.SIGSTOP)
    started(stopped, "stopped")
    suspended = monitoring.get_all_jobs({"job_state": JobState.SUSPENDED})
    assert str(stopped.pid) in [job.id for job in suspended]
    assert str(running.pid) not in [job.id for job in suspended]
    by_name = monitoring.get_all_jobs({"job_state": "RUNNING"})
    assert str(running.pid) in [job.id for job in by_name]
    assert str(stopped.pid) not in [job.id for job in by_name]


def test_filter_by_extension_key_and_owner(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, tmp_path: Path
) -> None:
    child = started(spawn(IDLE, cwd=tmp_path))
    jobs = monitoring.get_all_jobs(
        {
            "implementation_specific": {extension.MSESSION_WORKING_DIR: os.path.realpath(tmp_path)},
            "job_owner": pwd.getpwuid(os.getuid()).pw_name,
        }
    )
    assert [job.id for job in jobs] == [str(child.pid)]


# -- 4. jobs are read-only --------------------------------------------------------------------


@pytest.mark.parametrize(
    "control",
    [
        drmaa2.Job.suspend,
        drmaa2.Job.resume,
        drmaa2.Job.hold,
        drmaa2.Job.release,
        drmaa2.Job.terminate,
        drmaa2.Job.reap,
        drmaa2.Job.get_template,
    ],
)
def test_jobs_are_read_only(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn, control: Callable[[drmaa2.Job], object]
) -> None:
    child = started(spawn(IDLE))
    job = job_of(monitoring, child.pid)
    with pytest.raises(UnsupportedOperationException):
        control(job)
    assert child.poll() is None
    assert status(child.pid) == "sleeping"


def test_job_accessors(monitoring: drmaa2.MonitoringSession, spawn: Spawn) -> None:
    child = started(spawn(IDLE))
    job = job_of(monitoring, child.pid)
    assert job.id == job.job_id == job.get_id() == str(child.pid)
    assert job.session_name == monitoring.name == monitoring.session_name


def test_sessions_get_distinct_generated_names_or_keep_the_given_one() -> None:
    first, second, named = open_session(), open_session(), open_session("watcher")
    try:
        assert first.name != second.name
        assert first.name.startswith("monitoring-")
        assert named.name == "watcher"
    finally:
        for opened in (first, second, named):
            opened.close()


# -- 5. machines, queues, reservations, close -------------------------------------------------


def test_the_machine(monitoring: drmaa2.MonitoringSession) -> None:
    machines = monitoring.get_all_machines()
    assert len(machines) == 1
    machine = machines[0]
    assert machine.name == socket.gethostname()
    assert machine.available is True
    assert machine.sockets and machine.cores_per_socket and machine.threads_per_core
    assert machine.sockets * machine.cores_per_socket * machine.threads_per_core == os.cpu_count()
    assert machine.load is not None and machine.load >= 0
    ram = psutil.virtual_memory().total // 1024
    swap = psutil.swap_memory().total // 1024
    assert machine.phys_memory == ram
    assert machine.virt_memory == ram + swap
    assert machine.virt_memory is not None and machine.phys_memory is not None
    assert machine.virt_memory >= machine.phys_memory
    assert machine.os is Os.LINUX
    assert machine.architecture is host.this_cpu()
    assert machine.os_version == Version(
        major=platform.release().split(".")[0], minor=platform.release().partition(".")[2]
    )
    values = machine.implementation_specific or {}
    assert values[extension.MACHINE_TEMPDIR] == tempfile.gettempdir()
    assert float(values[extension.MACHINE_LOAD_5MIN]) >= 0
    assert float(values[extension.MACHINE_LOAD_15MIN]) >= 0
    uptime = time.time() - psutil.boot_time()
    assert abs(int(values[extension.MACHINE_UPTIME_SECONDS]) - uptime) < 5


def test_machine_names_filter(monitoring: drmaa2.MonitoringSession) -> None:
    assert [m.name for m in monitoring.get_all_machines([socket.gethostname()])] == [
        socket.gethostname()
    ]
    assert monitoring.get_all_machines(["no-such-machine.invalid"]) == []
    assert monitoring.get_all_machines([]) == []


def test_an_os_has_no_queues(monitoring: drmaa2.MonitoringSession) -> None:
    assert monitoring.get_all_queues() == []
    assert monitoring.get_all_queues(["default"]) == []


def test_reservations_are_unsupported(monitoring: drmaa2.MonitoringSession) -> None:
    with pytest.raises(UnsupportedOperationException):
        monitoring.get_all_reservations()


def test_a_closed_session_raises_invalid_session(
    monitoring: drmaa2.MonitoringSession, spawn: Spawn
) -> None:
    job = job_of(monitoring, started(spawn(IDLE)).pid)
    monitoring.close()
    calls: list[Callable[[], object]] = [
        monitoring.get_all_jobs,
        monitoring.get_all_machines,
        monitoring.get_all_queues,
        monitoring.get_all_reservations,
        job.get_info,
        job.get_state,
        monitoring.close,
    ]
    for call in calls:
        with pytest.raises(InvalidSessionException):
            call()


# -- host facts the job session checks templates against -------------------------------------


@pytest.mark.parametrize(
    ("machine", "cpu"),
    [
        ("x86_64", Cpu.X64),
        ("AMD64", Cpu.X64),
        ("aarch64", Cpu.ARM64),
        ("arm64", Cpu.ARM64),
        ("i386", Cpu.X86),
        ("i686", Cpu.X86),
        ("armv7l", Cpu.ARM),
        ("ppc64le", Cpu.PPC64LE),
        ("ppc64", Cpu.PPC64),
        ("mips64", Cpu.MIPS64),
        ("mips", Cpu.MIPS),
        ("sparc64", Cpu.SPARC64),
        ("riscv64", Cpu.OTHER_CPU),
    ],
)
def test_cpu_architecture_names(monkeypatch: pytest.MonkeyPatch, machine: str, cpu: Cpu) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    host.this_cpu.cache_clear()
    try:
        assert host.this_cpu() is cpu
    finally:
        host.this_cpu.cache_clear()


@pytest.mark.parametrize(
    ("release", "version"),
    [("6.18.44-fc", Version(major="6", minor="18.44-fc")), ("10", Version(major="10", minor="0"))],
)
def test_os_version_from_the_kernel_release(
    monkeypatch: pytest.MonkeyPatch, release: str, version: Version
) -> None:
    monkeypatch.setattr(platform, "release", lambda: release)
    host.os_version.cache_clear()
    try:
        assert host.os_version() == version
    finally:
        host.os_version.cache_clear()


@pytest.mark.parametrize(
    ("cpus", "cores", "threads_per_core"),
    [(8, 4, 2), (16, 12, 1), (6, 6, 1), (4, None, 1)],
)
def test_the_cpu_topology_always_multiplies_to_the_logical_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, cores: int | None, threads_per_core: int
) -> None:
    # (16, 12): a hybrid CPU whose performance cores run two threads and efficiency cores one;
    # (4, None): psutil cannot tell the cores.
    def cpu_count(logical: bool = True) -> int | None:
        return cpus if logical else cores

    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(psutil, "cpu_count", cpu_count)
    machine = host.machine_info()
    assert machine.sockets and machine.cores_per_socket and machine.threads_per_core
    assert machine.sockets * machine.cores_per_socket * machine.threads_per_core == cpus
    assert machine.threads_per_core == threads_per_core


def test_user_name_falls_back_to_the_uid() -> None:
    assert host.user_name(0) == pwd.getpwuid(0).pw_name
    unknown = 2**31 - 7
    with pytest.raises(KeyError):
        pwd.getpwuid(unknown)
    assert host.user_name(unknown) == str(unknown)
