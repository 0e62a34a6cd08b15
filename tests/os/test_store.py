"""The store: its write-ahead log copied into the database file by a thread of its own, not
inside a commit on the request path (drmaa2_ostracker.store.checkpoints); single jobs' starts
kept in the ring of ends until their rows are inserted (drmaa2_ostracker.store.ends)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from drmaa2 import JobState
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.checkpoints import EVERY, FALLBACK_PAGES
from drmaa2_ostracker.store.schema import STORE_FILE
from tests.behaviour.conftest import wait_until


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "store-checkpoints" and t.is_alive()]


def test_the_log_is_checkpointed_by_the_thread_after_its_commits(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    store = Store(str(state))
    try:
        assert len(_checkpoint_threads()) == 1
        database = state / STORE_FILE
        store.create_session("s", 1)
        # Written to the log only: the database file is as it was made.
        before = database.read_bytes()
        for _ in range(EVERY - 2):
            with store.transaction():
                store.allocate_id("s")
        assert database.read_bytes() == before
        for _ in range(2):
            with store.transaction():
                store.allocate_id("s")
        # Far below the writer's own automatic checkpoint, which never ran: the thread did it.
        wal = state / (STORE_FILE + "-wal")
        assert wal.stat().st_size < FALLBACK_PAGES * 4096 // 2
        wait_until(
            lambda: database.read_bytes() != before,
            what="the checkpoint thread to copy the log into the database file",
        )
        assert store.allocate_id("s") == EVERY + 1
    finally:
        store.close()
    assert _checkpoint_threads() == []


_KILLED_AFTER_START = """
import os, sys
from drmaa2.enums import JobState
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import JobRecord

store = Store(sys.argv[1])
store.open_ends()
if sys.argv[2] == "new":
    store.create_session("s", 1000)
job = JobRecord(
    session="s", job_id=sys.argv[4], state=JobState.RUNNING, submission_us=1, dispatch_us=2,
    pid=4242, pid_start=99, template='{"remote_command":"/bin/true"}',
)
assert store.start_later(job)
if sys.argv[3] == "ended":
    job.state, job.exit_status, job.finish_us = JobState.DONE, 3, 5
    assert store.end_later(job, ("exit_status", "finish_us"))
os._exit(0)  # killed: nothing committed
"""


def _rows(state: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(state / STORE_FILE) as conn:
        rows = conn.execute(
            "SELECT session, job_id, state, pid, pid_start, exit_status, template FROM jobs"
        ).fetchall()
    conn.close()
    return rows


def _killed_after_start(state: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_START, str(state), *args], check=True, timeout=60
    )


def test_a_start_in_the_ring_is_inserted_by_the_next_keeper_with_its_end(tmp_path: Path) -> None:
    """A single job's first record is written to the ring and its row inserted later: a
    keeper killed before that leaves the next one to insert it, its end after it."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    _killed_after_start(state, "new", "running", "7")
    assert _rows(state) == [], "in the ring only"
    store = Store(str(state))
    try:
        assert store.open_ends() == 1
        running = int(JobState.RUNNING)
        template = '{"remote_command":"/bin/true"}'
        assert _rows(state) == [("s", "7", running, 4242, 99, None, template)]
    finally:
        store.close()
    # A job that also ended: the ring holds its start and its end.
    _killed_after_start(state, "again", "ended", "8")
    assert len(_rows(state)) == 1
    store = Store(str(state))
    try:
        assert store.open_ends() == 2
        assert _rows(state)[1] == ("s", "8", int(JobState.DONE), 4242, 99, 3, template)
    finally:
        store.close()


def test_a_start_in_the_ring_never_goes_to_a_session_made_again(tmp_path: Path) -> None:
    """A start names its session by when it was made: a session destroyed and made again
    under the same name before the ring is read never gets the other one's job."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    _killed_after_start(state, "new", "running", "7")
    conn = sqlite3.connect(state / STORE_FILE)
    with conn:
        conn.execute("UPDATE sessions SET created_us = 2000 WHERE name = 's'")
    conn.close()
    store = Store(str(state))
    try:
        assert store.open_ends() == 0
        assert _rows(state) == []
    finally:
        store.close()
