"""Fixtures of the behaviour suite: written against the drmaa2 API, run for every backend."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import time
from collections.abc import Callable, Iterator

import pytest

import drmaa2
from tests.slurm.fixture import slurm_cluster

__all__ = ["slurm_cluster"]

#: Generous: these tests must pass on a loaded 2-core machine.
TIMEOUT = 60.0


#: The backends this suite runs on, with the same assertions: each test of a backend-dependent
#: choice asks ``drmaa2.supports()`` or the backend's :class:`Documented` behaviour. The slurm
#: tests run on the one-node test cluster (tests/slurm/fixture.py), started once per run.
SUITE_BACKENDS = ("os", "slurm")


@dataclasses.dataclass(frozen=True)
class Documented:
    """What a backend documents where the DRMAA2 contract leaves the choice to it and
    ``supports()`` has no capability to ask (the README's parity table, "Running on a
    cluster")."""

    #: run_job checks the command, the working directory and the stream files where the job
    #: will run, and refuses what could not start (InvalidArgumentException naming the field).
    #: Otherwise the job runs elsewhere: it is accepted and FAILs when it starts, with exit
    #: status 127 (no such command), 126 (not executable), 1 (no working directory), or None
    #: and an annotation naming the missing file (input or output not openable).
    checks_files_at_submission: bool
    #: Seconds in which WALLCLOCK_TIME and deadline_time count. With 60 (whole minutes), a
    #: wallclock limit is rounded up to minutes and the kill may come up to a minute late, and
    #: a job whose deadline comes before it could run a minute is ended without starting.
    time_limit_unit: int
    #: The signals a job ended by terminate() or by its wallclock limit may report as its
    #: terminating_signal (slurm: SIGTERM first, SIGKILL after the cluster's KillWait).
    kill_signals: tuple[str, ...]


DOCUMENTED = {
    "os": Documented(checks_files_at_submission=True, time_limit_unit=1, kill_signals=("SIGKILL",)),
    "slurm": Documented(
        checks_files_at_submission=False,
        time_limit_unit=60,
        kill_signals=("SIGTERM", "SIGKILL"),
    ),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize(
            "backend", [name for name in drmaa2.backends() if name in SUITE_BACKENDS]
        )


@pytest.fixture
def documented(backend: str) -> Documented:
    """What the backend under test documents (see :class:`Documented`)."""
    return DOCUMENTED[backend]


@pytest.fixture
def state_dir(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A fresh state directory for this test's sessions (and the cluster, for slurm)."""
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "slurm":
        request.getfixturevalue("slurm_cluster")
    path = str(tmp_path_factory.mktemp("state"))
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", path)
    monkeypatch.setenv("DRMAA2_SLURM_STATE_DIR", path)
    return path


@pytest.fixture
def session(backend: str, state_dir: str) -> Iterator[drmaa2.JobSession]:
    """An open job session; every job it still has is terminated and waited for at the end."""
    js = drmaa2.create_job_session(backend=backend)
    yield js
    cleanup_session(js)


def cleanup_session(js: drmaa2.JobSession) -> None:
    """Terminate and wait for every unfinished job of a session, then close and destroy it."""
    try:
        js.get_jobs()
    except drmaa2.InvalidSessionException:
        js = drmaa2.open_job_session(js.name, js.contact, backend=js.backend)
    unfinished = [
        job
        for job in js.get_jobs()
        if job.get_state()[0] not in (drmaa2.JobState.DONE, drmaa2.JobState.FAILED)
    ]
    for job in unfinished:
        with contextlib.suppress(drmaa2.InvalidStateException):
            job.terminate()
    if unfinished:
        js.wait_all_terminated(unfinished, TIMEOUT)
    js.destroy()


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Wait for an event outside the API's reach (a file appearing, a process stopping)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def file_text(path: str | os.PathLike[str]) -> str:
    """The text of a file, "" if it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def unchanged(path: str | os.PathLike[str], window: float = 0.3) -> bool:
    """Whether a file's text stays the same for ``window`` seconds: how a test sees that a job
    writing to it has stopped (with the file on a shared filesystem, wherever the job runs)."""
    before = file_text(path)
    time.sleep(window)
    return file_text(path) == before


def counter_loop(path: str | os.PathLike[str]) -> str:
    """Shell code counting up into ``path`` every 10 ms, forever (a job's sign of life)."""
    return f"n=0; while :; do n=$((n+1)); echo $n > {shlex.quote(str(path))}; sleep 0.01; done"
