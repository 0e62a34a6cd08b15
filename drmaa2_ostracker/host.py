"""Facts about the machine the ``os`` backend runs on.

What cannot change while the process runs (the OS, the CPU architecture, the kernel release,
the installed memory) is computed once and cached; the host name, the CPU topology, the load
and the uptime are read on every call. User names are looked up once per uid.

``os_version()`` splits the kernel release at its first dot, the same rule
:class:`drmaa2.Version` applies to a string: ``"6.18.44-fc"`` is major ``"6"``, minor
``"18.44-fc"`` (a release without a dot gets minor ``"0"``).

``machine_info()`` always keeps sockets * cores_per_socket * threads_per_core equal to the
number of logical CPUs: when the cores are not all alike (a hybrid CPU whose performance cores
run two threads and whose efficiency cores run one), threads_per_core is 1 and every logical
CPU counts as a core; when the cores do not spread evenly over the sockets, the machine is
reported as one socket.
"""

from __future__ import annotations

import functools
import glob
import os
import platform
import pwd
import socket
import tempfile
import time

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

from drmaa2.enums import Cpu, Os
from drmaa2.types import MachineInfo, Version
from drmaa2_ostracker import extension

__all__ = [
    "hostname",
    "machine_info",
    "os_version",
    "phys_memory_kib",
    "this_cpu",
    "this_os",
    "user_name",
]

# platform.system() → Os; anything else is OTHER_OS.
_OS_BY_SYSTEM = {
    "linux": Os.LINUX,
    "darwin": Os.MACOS,
    "freebsd": Os.BSD,
    "openbsd": Os.BSD,
    "netbsd": Os.BSD,
    "dragonfly": Os.BSD,
    "aix": Os.AIX,
    "hp-ux": Os.HPUX,
    "irix": Os.IRIX,
    "irix64": Os.IRIX,
    "sunos": Os.SUNOS,
    "osf1": Os.TRU64,
    "unixware": Os.UNIXWARE,
    # Every Windows that runs Python today is of the NT family.
    "windows": Os.WINNT,
}

# platform.machine() → Cpu, by exact (lower-case) name; see _cpu_of for the name families.
_CPU_BY_MACHINE = {
    "x86_64": Cpu.X64,
    "amd64": Cpu.X64,
    "aarch64": Cpu.ARM64,
    "aarch64_be": Cpu.ARM64,
    "arm64": Cpu.ARM64,
    "x86": Cpu.X86,
    "ppc64le": Cpu.PPC64LE,
    "ppc64": Cpu.PPC64,
    "ppc": Cpu.PPC,
    "powerpc": Cpu.PPC,
    "mips64": Cpu.MIPS64,
    "mips64el": Cpu.MIPS64,
    "mips": Cpu.MIPS,
    "mipsel": Cpu.MIPS,
    "sparc64": Cpu.SPARC64,
    "sparc": Cpu.SPARC,
    "ia64": Cpu.IA64,
    "alpha": Cpu.ALPHA,
    "parisc64": Cpu.PARISC64,
    "parisc": Cpu.PARISC,
}


def hostname() -> str:
    """The name of this machine (not cached: an administrator may rename it)."""
    return socket.gethostname()


@functools.cache
def user_name(uid: int) -> str:
    """The login name of ``uid``, or the uid as a string when the user database has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@functools.cache
def this_os() -> Os:
    """The operating system of this machine."""
    return _OS_BY_SYSTEM.get(platform.system().lower(), Os.OTHER_OS)


def _cpu_of(machine: str) -> Cpu:
    name = machine.lower()
    cpu = _CPU_BY_MACHINE.get(name)
    if cpu is not None:
        return cpu
    # Families named by model: i386 … i686, and 32-bit ARM (armv6l, armv7l, armv8l, armhf …).
    if len(name) == 4 and name[0] == "i" and name.endswith("86"):
        return Cpu.X86
    if name.startswith("arm"):
        return Cpu.ARM
    return Cpu.OTHER_CPU


@functools.cache
def this_cpu() -> Cpu:
    """The CPU architecture of this machine (OTHER_CPU when DRMAA2 has no name for it)."""
    return _cpu_of(platform.machine())


@functools.cache
def os_version() -> Version:
    """The kernel release as a version: ``"6.18.44-fc"`` is major "6", minor "18.44-fc"."""
    major, dot, minor = platform.release().partition(".")
    return Version(major=major or "0", minor=minor if dot else "0")


@functools.cache
def phys_memory_kib() -> int:
    """The installed memory (RAM) in KiB."""
    return int(psutil.virtual_memory().total) // 1024


def _socket_count() -> int:
    packages = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id"):
        try:
            with open(path, encoding="ascii") as file:
                packages.add(file.read().strip())
        except OSError:
            continue  # a CPU going offline while we look
    return len(packages)


def _topology() -> tuple[int, int, int]:
    """(sockets, cores_per_socket, threads_per_core) whose product is the logical CPU count."""
    logical = os.cpu_count() or 1
    cores = psutil.cpu_count(logical=False) or logical
    if logical % cores:
        cores, threads = logical, 1
    else:
        threads = logical // cores
    sockets = _socket_count()
    if sockets < 1 or cores % sockets:
        sockets = 1
    return sockets, cores // sockets, threads


def _uptime_seconds() -> int:
    # CLOCK_BOOTTIME counts from boot including suspend, exactly what "uptime" means; psutil's
    # boot time is only whole seconds and moves with the wall clock.
    if hasattr(time, "CLOCK_BOOTTIME"):
        return int(time.clock_gettime(time.CLOCK_BOOTTIME))
    return int(time.time() - psutil.boot_time())


def machine_info() -> MachineInfo:
    """This machine as a DRMAA2 machine, with its current load and uptime.

    Memory is in KiB and virt_memory is RAM + swap. Extension keys: the temporary directory
    (``tempdir``), the 5 and 15 minute load averages (``load5min``, ``load15min``) and the
    whole seconds since boot (``uptime_seconds``).
    """
    sockets, cores_per_socket, threads_per_core = _topology()
    load1, load5, load15 = os.getloadavg()
    swap_kib = psutil.swap_memory().total // 1024
    return MachineInfo(
        name=hostname(),
        available=True,
        sockets=sockets,
        cores_per_socket=cores_per_socket,
        threads_per_core=threads_per_core,
        load=load1,
        phys_memory=phys_memory_kib(),
        virt_memory=phys_memory_kib() + swap_kib,
        architecture=this_cpu(),
        os=this_os(),
        os_version=os_version(),
        implementation_specific={
            extension.MACHINE_TEMPDIR: tempfile.gettempdir(),
            extension.MACHINE_LOAD_5MIN: f"{load5:.2f}",
            extension.MACHINE_LOAD_15MIN: f"{load15:.2f}",
            extension.MACHINE_UPTIME_SECONDS: str(_uptime_seconds()),
        },
    )
