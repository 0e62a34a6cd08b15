"""The session-manager functions (drmaa2/manager.py): every one the contract names exists at
module level; event notification stops with ``unregister_event_notification``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobSession, Notification

WAIT = 60.0


@pytest.fixture
def js(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobSession]:
    monkeypatch.setenv("DRMAA2_BACKEND", "os")
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", str(tmp_path / "state"))
    session = drmaa2.create_job_session()
    yield session
    session.destroy()


def test_unregister_event_notification_stops_the_calls(js: JobSession) -> None:
    seen: list[Notification] = []
    done = threading.Event()

    def callback(note: Notification) -> None:
        seen.append(note)
        if note.job_state == "DONE":
            done.set()

    drmaa2.register_event_notification(callback)
    try:
        first = js.run_job({"remote_command": "/bin/true"})
        assert done.wait(WAIT)
    finally:
        drmaa2.unregister_event_notification()
    later = js.run_job({"remote_command": "/bin/true"})
    later.wait_terminated(WAIT)
    assert any(note.job_id == first.id for note in seen)
    assert not any(note.job_id == later.id for note in seen)
