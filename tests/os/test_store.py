"""The store's write-ahead log is copied into the database file by a thread of its own, not
inside a commit on the request path (drmaa2_ostracker.store.checkpoints)."""

from __future__ import annotations

import threading
from pathlib import Path

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
