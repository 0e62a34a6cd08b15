"""The spawn's baselines for the sequential case (see :mod:`benchmarks.bench_jobs`): the
spawn in one process, the same spawn in a process woken by another's request, and a bare
spawner process, the floor of any keeper."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from benchmarks.common import TRUE

__all__ = ["bare_spawner", "spawn_time", "woken_spawn_time"]


#: A process that, for each byte it reads, starts /bin/true in a session of its own, reaps
#: it and answers: a keeper without any bookkeeping, whose cost over Popen + wait is that of
#: the hop and of spawning in another process, woken for it.
_BARE_SPAWNER = (
    "import os, socket, sys\n"
    "s = socket.socket(fileno=int(sys.argv[1]))\n"
    "argv, env = [sys.argv[2]], dict(os.environ)\n"
    "while s.recv(1):\n"
    "    os.waitpid(os.posix_spawn(argv[0], argv, env, setsid=True), 0)\n"
    "    s.sendall(b'x')\n"
)


@contextlib.contextmanager
def bare_spawner() -> Iterator[Callable[[int], None]]:
    """A :data:`_BARE_SPAWNER` process, and a call that has it run n jobs one after
    another (stopped and reaped on exit)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    spawner = subprocess.Popen(
        [sys.executable, "-c", _BARE_SPAWNER, str(theirs.fileno()), TRUE],
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()

    def run(n: int) -> None:
        for _ in range(n):
            ours.sendall(b"g")
            ours.recv(1)

    try:
        run(20)
        yield run
    finally:
        ours.close()
        spawner.wait()


#: A process that spawns /bin/true each time it reads a byte, and reports the p50 of the
#: spawns (``Popen`` returning) once its socket closes: the keeper's situation, a spawn in a
#: process woken by another's request, without the keeper.
_WOKEN_SPAWNER = (
    "import socket, statistics, subprocess, sys, time\n"
    "s = socket.socket(fileno=int(sys.argv[1]))\n"
    "times = []\n"
    "while s.recv(1):\n"
    "    start = time.perf_counter()\n"
    "    child = subprocess.Popen([sys.argv[2]])\n"
    "    times.append(time.perf_counter() - start)\n"
    "    s.sendall(b'x')\n"
    "    child.wait()\n"
    "print(statistics.median(times[20:]))\n"
)


def woken_spawn_time(n: int) -> float:
    """p50 of ``Popen([/bin/true])`` returning in a process woken for each by this one's
    request over a Unix socket (seconds): on a machine whose scheduler moves the new child to
    the other core, this is slower than the same spawn in a process that is not woken."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    spawner = subprocess.Popen(
        [sys.executable, "-c", _WOKEN_SPAWNER, str(theirs.fileno()), TRUE],
        pass_fds=(theirs.fileno(),),
        stdout=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    try:
        for _ in range(n + 20):
            ours.sendall(b"g")
            ours.recv(1)
    finally:
        ours.close()
        out, _ = spawner.communicate()
    return float(out)


def spawn_time(n: int) -> float:
    """p50 of ``subprocess.Popen([/bin/true])`` itself (the spawn, not the wait), seconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        child = subprocess.Popen([TRUE])
        times.append(time.perf_counter() - start)
        child.wait()
    return statistics.median(times)
