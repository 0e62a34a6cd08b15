"""Finding and stopping the keepers that tests started (they detach: nobody's children)."""

from __future__ import annotations

import contextlib

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


def stop_keepers(keepers: list[psutil.Process]) -> None:
    """Stop keepers by pid (SIGTERM: their jobs, if any, keep running), waiting until gone."""
    for keeper in keepers:
        with contextlib.suppress(psutil.Error):
            keeper.terminate()
    _, alive = psutil.wait_procs(keepers, timeout=GRACE_SECONDS)
    for keeper in alive:
        with contextlib.suppress(psutil.Error):
            keeper.kill()
    psutil.wait_procs(alive, timeout=GRACE_SECONDS)
