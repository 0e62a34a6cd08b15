"""The store's WAL checkpoints, off the request path: a thread of the keeper with a connection
of its own copies the write-ahead log into the database file every :data:`EVERY` commits.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold (1000 pages),
so every few hundred jobs one ``run_job`` or one job end waited for a copy of the whole log and
its two ``fsync`` calls (5-7 ms here; a burst of submissions about 7 % slower, see
docs/performance.md). Here the writer's connection only counts its commits; the copy is a
PASSIVE checkpoint on the thread's connection, which never waits for a lock and runs with the
GIL released.

The writer's automatic checkpoint stays, at :data:`FALLBACK_PAGES`: it then finds the log
copied already but for the last few commits, and copies those. A PASSIVE checkpoint copies
the log as it was when it began, and the log restarts from its beginning only once all of it
is copied, so during a burst the thread alone never catches up: the writer's checkpoint is
what keeps the log at about 1000 pages, as before. A checkpoint that fails (a full disk) is
tried again after the next :data:`EVERY` commits.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import urllib.parse

__all__ = ["EVERY", "FALLBACK_PAGES", "Checkpointer"]

_log = logging.getLogger(__name__)

#: Commits between two checkpoints (a job's start and end write 2 to 4 pages each).
EVERY = 50
#: The writer's own automatic checkpoint, in pages of the log: a bound, not the rule.
FALLBACK_PAGES = 1000


class Checkpointer:
    """Checkpoints of the store at ``path``, by a thread of their own, asked for by
    :meth:`committed` (called by the writer after each commit)."""

    def __init__(self, path: str) -> None:
        # mode=rw: the writer opened (and made) the store; this never creates one.
        self._conn = sqlite3.connect(
            f"file:{urllib.parse.quote(path)}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        self._commits = 0
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="store-checkpoints", daemon=True)
        try:
            # Its files (the log, the index) opened now: the keeper's descriptors stay as many.
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            self._thread.start()
        except BaseException:
            self._conn.close()
            raise

    def committed(self) -> None:
        """The writer committed a transaction (no lock: a count that is off by one is fine)."""
        self._commits += 1
        if self._commits >= EVERY:
            self._commits = 0
            self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # a full disk: the writer's bound still holds
                _log.debug("checkpoint of the store failed: %s", error)

    def close(self) -> None:
        """Stop the thread and close its connection (before the writer's: the last connection
        to close checkpoints the whole log and removes it)."""
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
