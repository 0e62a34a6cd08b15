"""Finding and stopping the keepers that tests started (they detach: nobody's children)."""

from __future__ import annotations

import contextlib
import os
import time

import psutil

#: How long a keeper has to exit once told to (seconds).
GRACE_SECONDS = 10.0


def keepers_under(roots: tuple[str, ...]) -> list[psutil.Process]:
    """The keepers serving state directories of this test run (found by their command line:
    they are nobody's children here, they detach)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if (
            len(cmdline) >= 4
            and cmdline[1:3] == ["-m", "drmaa2_ostracker.keeper"]
            and cmdline[3].startswith(roots)
        ):
            found.append(process)
    return found


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie nobody reaps counts as ended), all its threads
    included: a killed process's leader is a zombie while its other threads still exit, and
    its descriptors (the keeper's sockets) close only when the last one has. A keeper is
    nobody's child here: its zombie lasts until the machine's init reaps it, which may take a
    second or more."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return False
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
        return True


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone (see :func:`gone`); those still alive then."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not gone(p.pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.005)
        alive = [p for p in alive if not gone(p.pid)]
    return alive


def stop_keepers(keepers: list[psutil.Process]) -> None:
    """Stop keepers by pid (SIGTERM: their jobs, if any, keep running), waiting until gone."""
    for keeper in keepers:
        with contextlib.suppress(psutil.Error):
            keeper.terminate()
    alive = _wait_gone(keepers, GRACE_SECONDS)
    for keeper in alive:
        with contextlib.suppress(psutil.Error):
            keeper.kill()
    _wait_gone(alive, GRACE_SECONDS)
