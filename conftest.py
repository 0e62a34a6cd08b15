"""Test-wide set-up: an isolated state directory, and a check that no test leaves a process
behind (no zombie, no stray child, no job of a keeper it started); every keeper a test
started is stopped by pid after it."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.keepers import keepers_under, stop_keepers

# Never touch the user's real state directory, whatever the tests do.
_STATE_ROOT = tempfile.mkdtemp(prefix="drmaa2-tests-")
os.environ["DRMAA2_OS_STATE_DIR"] = os.path.join(_STATE_ROOT, "default")
os.environ.pop("DRMAA2_BACKEND", None)

_GRACE_SECONDS = 10.0

# A suite started in the background by a shell without job control (`pytest &` in a script,
# `nohup`) inherits SIGINT and SIGQUIT ignored, and so would every process a test starts: the
# tests that interrupt a client (Ctrl-C) would wait in vain. They start at their defaults.
for _signum in (signal.SIGINT, signal.SIGQUIT):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(
            _signum,
            signal.default_int_handler if _signum == signal.SIGINT else signal.SIG_DFL,
        )


def _leftovers(keepers: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for parent in [psutil.Process(), *keepers]:
        try:
            children = parent.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                child.status()
            except psutil.NoSuchProcess:
                continue
            found.append(child)
    return found


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {process.status()} {' '.join(process.cmdline())[:80]}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture(autouse=True)
def no_process_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail a test that leaves a process behind (its own child, or a job of a keeper it
    started: running or zombie), and kill what it left; then stop the keepers it started."""
    yield
    roots = (_STATE_ROOT, str(tmp_path_factory.getbasetemp()))
    keepers = keepers_under(roots)
    deadline = time.monotonic() + _GRACE_SECONDS
    leftovers = _leftovers(keepers)
    while leftovers and time.monotonic() < deadline:
        # Jobs being reaped right now disappear within moments; give them that moment.
        psutil.wait_procs(leftovers, timeout=0.1)
        leftovers = _leftovers(keepers)
    stop_keepers(keepers)
    if leftovers:
        described = [_describe(p) for p in leftovers]
        for process in leftovers:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                process.kill()
        pytest.fail(f"the test left processes behind: {described}")


def pytest_report_header() -> list[str]:
    """Say which backends the backend-agnostic suite runs on, and why not on the others."""
    import drmaa2
    from tests.behaviour.conftest import SUITE_BACKENDS

    others = [name for name in drmaa2.backends() if name not in SUITE_BACKENDS]
    line = f"behaviour suite backends: {', '.join(SUITE_BACKENDS)}"
    if others:
        line += f" (not yet: {', '.join(others)}: see tests/behaviour/conftest.py)"
    return [line]
