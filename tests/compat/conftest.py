"""Fixtures of the bad-input suite: the ``os`` backend in a private state directory, whose
jobs are ended and keeper stopped at the end, so nothing is left running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import drmaa2
from tests.behaviour.conftest import cleanup_session
from tests.keepers import keepers_under, stop_keepers

#: Generous: these tests must pass on a loaded 2-core machine.
TIMEOUT = 60.0


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh state directory, the default one; its keeper is stopped at the end."""
    path = str(tmp_path / "state")
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", path)
    monkeypatch.setenv("DRMAA2_BACKEND", "os")
    yield path
    stop_keepers(keepers_under((path,)))


@pytest.fixture
def js(state_dir: str) -> Iterator[drmaa2.JobSession]:
    """An open job session; its jobs are ended and waited for, and it is destroyed, at the
    end."""
    session = drmaa2.create_job_session(backend="os")
    yield session
    cleanup_session(session)
