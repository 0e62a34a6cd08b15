"""One Slurm cluster, named by its slurm.conf: its commands, its session store, and the few
facts about it that the sessions need (nodes, architectures, accounting)."""

from __future__ import annotations

import functools
import os
import platform
import re
import threading

from drmaa2.enums import Cpu
from drmaa2.errors import DrmCommunicationException
from drmaa2_slurm.commands import Slurm
from drmaa2_slurm.states import parse_duration
from drmaa2_slurm.store import Store

__all__ = ["Cluster", "cluster_name", "parse_key_values"]

_ARCHITECTURES = {
    "x86_64": Cpu.X64,
    "amd64": Cpu.X64,
    "i386": Cpu.X86,
    "i686": Cpu.X86,
    "aarch64": Cpu.ARM64,
    "arm64": Cpu.ARM64,
    "armv7l": Cpu.ARM,
    "ppc64le": Cpu.PPC64LE,
    "ppc64": Cpu.PPC64,
}
_KEY = re.compile(r"^[A-Z][A-Za-z0-9_:/]*=")
_SIZE_UNITS = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}


def cpu_of(machine: str) -> Cpu:
    """The DRMAA2 Cpu of an architecture name as uname prints it."""
    return _ARCHITECTURES.get(machine.lower(), Cpu.OTHER_CPU)


def cluster_name(conf: str) -> str:
    """The ClusterName of a slurm.conf ("slurm" if it names none)."""
    try:
        with open(conf) as handle:
            for line in handle:
                key, _, value = line.split("#", 1)[0].strip().partition("=")
                if key.strip().lower() == "clustername" and value.strip():
                    return value.strip()
    except OSError as error:
        raise DrmCommunicationException(
            f"cannot read the Slurm configuration {conf}: {error.strerror}"
        ) from None
    return "slurm"


def parse_key_values(line: str) -> dict[str, str]:
    """``scontrol -o show …`` output: ``Key=value`` pairs whose values may hold spaces."""
    pairs: dict[str, str] = {}
    key = None
    for word in line.split(" "):
        if _KEY.match(word):
            key, _, value = word.partition("=")
            pairs[key] = value
        elif key is not None:
            pairs[key] += " " + word
    return {key: value.strip() for key, value in pairs.items()}


def _kib(text: str) -> int | None:
    if not text:
        return None
    unit = _SIZE_UNITS.get(text[-1].upper())
    try:
        return round(float(text[:-1]) * unit) if unit else round(float(text) / 1024)
    except ValueError:
        return None


class Cluster:
    """A Slurm cluster and the store of its sessions."""

    def __init__(self, conf: str, state_dir: str) -> None:
        if not os.path.isfile(conf):
            raise DrmCommunicationException(
                f"no Slurm cluster at {conf!r}: the file does not exist (the contact is the "
                f"path of the cluster's slurm.conf, by default $SLURM_CONF)"
            )
        self.conf = conf
        self.slurm = Slurm(conf)
        self.name = cluster_name(conf)
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The session store of this cluster (opened on first use)."""
        with self._lock:
            if self._store is None:
                self._store = Store(self._state_dir, self.name)
            return self._store

    def check_reachable(self) -> None:
        """DrmCommunicationException naming the cluster unless slurmctld answers."""
        done = self.slurm.scontrol("ping")
        if done.returncode != 0 or "UP" not in done.stdout:
            raise DrmCommunicationException(
                f"the Slurm cluster {self.name!r} of {self.conf} is not reachable: "
                f"{done.message or 'slurmctld is down'}"
            )

    def version(self) -> str:
        """Slurm's version, e.g. ``22.05.8``."""
        done = self.slurm.run(["sinfo", "--version"])
        return done.stdout.split()[-1] if done.returncode == 0 and done.stdout else "0.0"

    @functools.cached_property
    def _config(self) -> dict[str, str]:
        """``scontrol show config``, key → value (empty if it fails)."""
        done = self.slurm.scontrol("show", "config")
        found = {}
        for line in done.stdout.splitlines():
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
        return found

    @property
    def accounting(self) -> bool:
        """Whether the cluster stores accounting (so that sacct knows its jobs)."""
        return self._config.get("AccountingStorageType", "") not in ("", "accounting_storage/none")

    @property
    def max_array_size(self) -> int | None:
        """The cluster's ``MaxArraySize``: array indices must be below it (None: unknown)."""
        value = self._config.get("MaxArraySize", "")
        return int(value) if value.isdigit() else None

    def nodes(self) -> list[dict[str, str]]:
        """Every node, as ``scontrol -o show node`` describes it."""
        done = self.slurm.scontrol("-o", "show", "node")
        if done.returncode != 0:
            raise DrmCommunicationException(f"scontrol show node failed: {done.message}")
        return [parse_key_values(line) for line in done.stdout.splitlines() if line.strip()]

    def node_names(self) -> list[str]:
        """The names of every node."""
        return [node["NodeName"] for node in self.nodes() if "NodeName" in node]

    def architectures(self) -> set[Cpu]:
        """The CPU architectures of the nodes."""
        found = {cpu_of(node.get("Arch", "")) for node in self.nodes()}
        return found or {cpu_of(platform.machine())}

    def expand_hostlist(self, hostlist: str) -> list[str]:
        """``n[1-3],m`` → ``["n1", "n2", "n3", "m"]`` (through scontrol when needed)."""
        if "[" not in hostlist and "," not in hostlist:
            return [hostlist]
        done = self.slurm.scontrol("show", "hostnames", hostlist)
        return done.stdout.split() if done.returncode == 0 else hostlist.split(",")

    def usage(self, slurm_id: str) -> tuple[float, int | None] | None:
        """(cpu seconds, max rss KiB) of a finished job from sacct; None if not there yet."""
        rows = self.slurm.sacct(["JobID", "TotalCPU", "MaxRSS"], [slurm_id])
        cpu: float | None = None
        rss: int | None = None
        for job, total, maxrss in (row for row in rows if len(row) == 3):
            if job == slurm_id:
                used = parse_duration(total)
                cpu = used.total_seconds() if used is not None else None
            elif job.endswith(".batch"):
                rss = _kib(maxrss)
        return None if cpu is None else (cpu, rss)
