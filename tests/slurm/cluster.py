"""A one-node Slurm cluster on loopback, for the tests: munged, slurmctld, slurmd and, where
MariaDB and slurmdbd start, accounting so that ``sacct`` works.

Everything lives under one directory (keys, sockets, configuration, state, logs, spool); every
daemon is started detached and stopped by the pid it wrote. Debian's packages are installed
when missing and this runs as root. As a script::

    python -m tests.slurm.cluster start DIR [--no-accounting]   # prints SLURM_CONF=...
    python -m tests.slurm.cluster stop DIR
    python -m tests.slurm.cluster install [--no-accounting]     # only the packages
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

__all__ = ["Cluster", "ClusterError", "install_packages"]

#: Debian packages of the cluster itself, and of its accounting.
PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client"]
ACCOUNTING_PACKAGES = ["slurmdbd", "mariadb-server-core", "mariadb-client-core"]
#: Environment variable: set to "0" to start without slurmdbd and MariaDB.
ACCOUNTING_ENV = "DRMAA2_TEST_SLURM_ACCOUNTING"
#: Seconds a daemon gets to come up, and to go away after SIGTERM before SIGKILL.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: The node's CPU count as Slurm sees it (overriding the real one), so that tests can run
#: many small jobs at once, as they do with the os backend.
NODE_CPUS = 64
PARTITION = "debug"

_POLICY_RC = Path("/usr/sbin/policy-rc.d")


class ClusterError(RuntimeError):
    """The cluster could not be installed or started; the message says why."""


def _missing(accounting: bool) -> list[str]:
    needed = {"munged": "munge", "slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "x"}
    if accounting:
        needed |= {"slurmdbd": "slurmdbd", "mariadbd": "mariadb-server-core"}
    return [name for name in needed if shutil.which(name, path=_SEARCH_PATH) is None]


_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])


def install_packages(accounting: bool) -> dict[str, float]:
    """Install the Debian packages the cluster needs when they are missing (as root, via apt).

    Returns the time taken per step. Raises ClusterError naming why it cannot install.
    """
    timings: dict[str, float] = {}
    if not _missing(accounting):
        return timings
    if os.geteuid() != 0:
        raise ClusterError(
            f"Slurm is not installed ({', '.join(_missing(accounting))} missing) "
            "and installing it needs root"
        )
    if shutil.which("apt-get") is None:
        raise ClusterError("Slurm is not installed and there is no apt-get to install it")
    packages = PACKAGES + (ACCOUNTING_PACKAGES if accounting else [])
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Package scripts would start the packaged daemons through invoke-rc.d; a policy-rc.d
    # answering 101 forbids it, so that only our own daemons run.
    added_policy = not _POLICY_RC.exists()
    if added_policy:
        _POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        _POLICY_RC.chmod(0o755)
    try:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
        start = time.monotonic()
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            # A fresh machine has empty package lists.
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
        timings["install packages"] = time.monotonic() - start
        if done.returncode != 0:
            raise ClusterError(f"apt-get install {' '.join(packages)} failed: {done.stderr[-500:]}")
    finally:
        if added_policy:
            _POLICY_RC.unlink()
    return timings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        # pid 1 may reap re-parented daemons late: a zombie is dead for us.
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(pids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the processes, and SIGKILL those still alive after ``timeout`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_for(what: str, check: Callable[[], bool], log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.01
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise ClusterError(f"timed out waiting for {what}; log {log}:\n{tail}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Cluster:
    """A one-node Slurm cluster under ``root``; ``conf`` is its slurm.conf."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.conf = self.root / "etc" / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.accounting = False
        #: Seconds per start step, for the log.
        self.timings: dict[str, float] = {}

    # -- paths -------------------------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def munge_socket(self) -> Path:
        """The socket of this cluster's munged."""
        return self._path("munge", "munge.socket")

    def env(self) -> dict[str, str]:
        """The environment for Slurm commands of this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    # -- start -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.timings[name] = time.monotonic() - start

    def start(self, accounting: bool = True) -> None:
        """Start every daemon and wait until the node runs jobs; stops what started on error."""
        for sub in ("etc", "munge", "run", "log", "state", "spool", "bin", "db"):
            self._path(sub).mkdir(parents=True, exist_ok=True)
        self._path("munge").chmod(0o700)
        try:
            with self._step("munged"):
                self._start_munge()
            self.accounting = accounting and not _missing(True)
            if self.accounting:
                with self._step("mariadb"):
                    self._start_mariadb()
            self._write_config()
            if self.accounting:
                with self._step("slurmdbd"):
                    self._start_slurmdbd()
            with self._step("slurmctld + slurmd"):
                self._start_slurm()
            with self._step("first scheduling pass"):
                self._wait_first_pass()
        except BaseException:
            self.stop()
            raise

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run(
            argv, env=self.env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise ClusterError(f"{what} failed (rc {done.returncode}): {done.stderr.strip()}")

    def _start_munge(self) -> None:
        key = self._path("munge", "munge.key")
        self._run(["mungekey", "-c", "-b", "1024", "-k", str(key)], "mungekey")
        key.chmod(0o400)
        self._run(
            [
                "munged",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self._path('run', 'munged.pid')}",
                f"--log-file={self._path('log', 'munged.log')}",
                f"--seed-file={self._path('munge', 'munged.seed')}",
                "--force",
            ],
            "munged",
        )
        _wait_for("munged", self.munge_socket.exists, self._path("log", "munged.log"))

    def _start_mariadb(self) -> None:
        datadir = self._path("db", "data")
        self._mysql_port = _free_port()
        self._run(
            [
                "mariadb-install-db",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ],
            "mariadb-install-db",
        )
        log = self._path("log", "mariadb.log")
        argv = [
            "mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--socket={self._path('db', 'mysqld.sock')}",
            f"--pid-file={self._path('run', 'mariadb.pid')}",
            f"--log-error={log}",
            "--bind-address=127.0.0.1",
            f"--port={self._mysql_port}",
            "--innodb-buffer-pool-size=64M",
            "--skip-name-resolve",
        ]
        self._detach(argv)
        _wait_for("MariaDB", self._path("db", "mysqld.sock").exists, log)

    def _detach(self, argv: list[str]) -> None:
        """Start a daemon that does not fork by itself, re-parented away from this process."""
        subprocess.run(
            ["setsid", "sh", "-c", 'nohup "$@" </dev/null >/dev/null 2>&1 &', "sh", *argv],
            env=self.env(),
            check=True,
        )

    def _write_config(self) -> None:
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        mail = self._path("bin", "mailprog")
        mail.write_text(f'#!/bin/sh\necho "$@" >> {self._path("log", "mail.log")}\n')
        mail.chmod(0o755)
        sock = self.munge_socket
        lines = [
            "ClusterName=drmaa2test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={sock}",
            f"StateSaveLocation={self._path('state')}",
            f"SlurmctldPidFile={self._path('run', 'slurmctld.pid')}",
            f"SlurmctldLogFile={self._path('log', 'slurmctld.log')}",
            f"SlurmdPidFile={self._path('run', 'slurmd-%n.pid')}",
            f"SlurmdLogFile={self._path('log', 'slurmd-%n.log')}",
            f"SlurmdSpoolDir={self._path('spool', '%n')}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=task=5",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            # Nothing happens in Slurm when a job's start_time comes: the job waits for the
            # next periodic scheduling pass, run every second here instead of every 60 s.
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1",
            f"MailProg={mail}",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self._path('log', 'jobcomp.log')}",
            "MinJobAge=3600",
            "MaxJobCount=100000",
            "MaxArraySize=100001",
            "KillWait=2",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "MpiDefault=none",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={_memory_mib()} "
            "State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        if self.accounting:
            self.dbd_port = _free_port()
            lines += [
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={self.dbd_port}",
                f"AccountingStoragePass={sock}",
            ]
            dbd = self.conf.with_name("slurmdbd.conf")
            dbd.write_text(
                "\n".join(
                    [
                        "AuthType=auth/munge",
                        f"AuthInfo=socket={sock}",
                        "DbdHost=localhost",
                        "DbdAddr=127.0.0.1",
                        f"DbdPort={self.dbd_port}",
                        "SlurmUser=root",
                        f"PidFile={self._path('run', 'slurmdbd.pid')}",
                        f"LogFile={self._path('log', 'slurmdbd.log')}",
                        "StorageType=accounting_storage/mysql",
                        "StorageHost=127.0.0.1",
                        f"StoragePort={self._mysql_port}",
                        "StorageUser=root",
                        "StorageLoc=slurm_acct_db",
                    ]
                )
                + "\n"
            )
            dbd.chmod(0o600)
        self.conf.write_text("\n".join(lines) + "\n")

    def _start_slurmdbd(self) -> None:
        self._run(["slurmdbd"], "slurmdbd")
        log = self._path("log", "slurmdbd.log")
        _wait_for("slurmdbd", lambda: _port_open(self.dbd_port), log)

    def _start_slurm(self) -> None:
        self._run(["slurmctld", "-f", str(self.conf)], "slurmctld")
        self._run(["slurmd", "-f", str(self.conf)], "slurmd")
        _wait_for("the node to be idle", self._node_idle, self._path("log", "slurmctld.log"))

    def _node_idle(self) -> bool:
        done = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env=self.env(), capture_output=True, text=True
        )
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def _wait_first_pass(self) -> None:
        # slurmctld's first scheduling pass comes about 3 s after it starts; until then a job
        # stays pending. Run one and wait for it: then the cluster is really ready.
        done = subprocess.run(
            ["sbatch", "--parsable", "-J", "warmup", "-o", "/dev/null", "--wrap", "true"],
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ClusterError(f"the warm-up job was refused: {done.stderr.strip()}")
        job = done.stdout.strip()

        def finished() -> bool:
            out = subprocess.run(
                ["squeue", "-h", "-j", job, "-t", "all", "-o", "%T"],
                env=self.env(),
                capture_output=True,
                text=True,
            ).stdout.strip()
            return out in ("COMPLETED", "FAILED")

        _wait_for("the first job", finished, self._path("log", "slurmctld.log"))

    # -- stop --------------------------------------------------------------------------------

    def _pid(self, name: str) -> int | None:
        path = self._path("run", name)
        return _read_pid(path) if path.exists() else None

    def pid(self, daemon: str) -> int:
        """The pid of a running daemon of the cluster (``slurmctld``, ``munged`` …)."""
        pid = self._pid(f"{daemon}.pid")
        if pid is None:
            raise ClusterError(f"{daemon} of {self.root} is not running")
        return pid

    def stop(self) -> None:
        """Cancel every job, kill what they left, then stop every daemon, by pid."""
        env = self.env()
        if self.conf.exists() and self._pid(f"slurmd-{self.node}.pid"):
            subprocess.run(
                ["scancel", "--full", "-p", PARTITION], env=env, capture_output=True, check=False
            )
            _kill(self._job_pids(), timeout=STOP_TIMEOUT)
        _kill(self._stepds(), timeout=STOP_TIMEOUT)
        daemons = [f"slurmd-{self.node}.pid", "slurmctld.pid", "slurmdbd.pid"]
        _kill([pid for name in daemons if (pid := self._pid(name)) is not None])
        _kill([pid for name in ("mariadb.pid", "munged.pid") if (pid := self._pid(name))])

    def _job_pids(self) -> list[int]:
        """Pids of the processes of every job still known to slurmd."""
        done = subprocess.run(
            ["scontrol", "listpids"], env=self.env(), capture_output=True, text=True
        )
        pids = []
        for line in done.stdout.splitlines()[1:]:
            field = line.split()[0] if line.split() else ""
            if field.isdigit() and int(field) != os.getpid():
                pids.append(int(field))
        return pids

    def _stepds(self) -> list[int]:
        """slurmstepd processes of this cluster (they outlive slurmd)."""
        found = []
        root = str(self.root)
        for process in psutil.process_iter(["exe", "cmdline"]):
            exe = process.info["exe"] or ""
            if "slurmstepd" not in os.path.basename(exe):
                continue
            with contextlib.suppress(psutil.Error):
                if any(f.path.startswith(root) for f in process.open_files()) or (
                    process.cwd().startswith(root)
                ):
                    found.append(process.pid)
        return found


def _memory_mib() -> int:
    return int(psutil.virtual_memory().total // 2**20)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    """Start or stop a cluster from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "install"])
    parser.add_argument("directory", nargs="?", default="")
    parser.add_argument("--no-accounting", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "install":
        for step, seconds in install_packages(not args.no_accounting).items():
            print(f"{step}: {seconds:.2f} s")
        return 0
    if not args.directory:
        parser.error("start and stop need the cluster's directory")
    cluster = Cluster(args.directory)
    if args.action == "stop":
        cluster.stop()
        return 0
    accounting = not args.no_accounting
    timings = install_packages(accounting)
    cluster.start(accounting)
    for step, seconds in {**timings, **cluster.timings}.items():
        print(f"{step}: {seconds:.2f} s", file=sys.stderr)
    print(f"SLURM_CONF={cluster.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
