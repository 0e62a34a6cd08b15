"""``keeper.lock``: held (flock) by the keeper of a state directory for its whole life.

It holds the keeper's pid, for people and tools, and, on a second line, ``keepers`` and the
lineages of the last :data:`~drmaa2_ostracker.store.orphans.LINEAGES` keepers, the running
one's last (see :class:`~drmaa2_ostracker.store.orphans.Lineage`): the next keeper reads them
to tell whether a fork that a killed keeper began ever happened.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import time
from collections.abc import Callable

from drmaa2.errors import SessionManagementException
from drmaa2_ostracker import faults
from drmaa2_ostracker.keeper import files
from drmaa2_ostracker.store.orphans import LINEAGES, Lineage

__all__ = ["KeeperLock"]

_log = logging.getLogger(__name__)


class Served(Exception):
    """The keeper that holds the lock serves: this one is not needed (its socket's file had
    been removed, and it listens again)."""


class KeeperLock:
    """The keeper lock of one state directory (see the module docstring)."""

    def __init__(self, state_dir: str) -> None:
        self.fd = files.open_private(os.path.join(state_dir, files.KEEPER_LOCK))
        #: The lineages of the keepers before this one (read by :meth:`take`).
        self.before: list[Lineage] = []

    def take(
        self,
        stopping: Callable[[], bool],
        timeout: float = 30.0,
        served: Callable[[], bool] | None = None,
    ) -> None:
        """Take the lock, and read the lineages the keepers before noted. A keeper that is
        exiting releases it within moments; ``stopping()`` true (a SIGTERM) ends the wait,
        and so does ``served()`` true (the keeper that holds it listens: :class:`Served`)."""
        deadline = time.monotonic() + timeout
        looks = itertools.count()
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stopping():
                    raise SessionManagementException(
                        "the keeper was stopped (SIGTERM) before it started"
                    ) from None
                if served is not None and next(looks) % 10 == 9 and served():
                    raise Served from None
                if time.monotonic() > deadline:
                    raise SessionManagementException(
                        "another keeper holds the state directory and does not let go"
                    ) from None
                time.sleep(0.01)
        old = b""
        with contextlib.suppress(OSError):
            old = os.pread(self.fd, 65536, 0)
        self.before = Lineage.parse_all(old.decode(errors="replace"))

    def note(self, lineage: Lineage) -> None:
        """Write this keeper's pid and the lineages, ``lineage`` (this keeper's) last. On a
        full disk the keeper serves without them (reads must work)."""
        lineages = " ".join(str(each) for each in [*self.before[1 - LINEAGES :], lineage])
        text = f"{os.getpid()}\nkeepers {lineages}\n".encode()
        try:
            os.pwrite(self.fd, text, 0)
            os.ftruncate(self.fd, len(text))
        except OSError as error:
            if faults.resource_fault(files.KEEPER_LOCK, error) is None:
                raise
            _log.warning("cannot write the pid to %s: %s", files.KEEPER_LOCK, error.strerror)

    def close(self) -> None:
        """Let go of the lock."""
        os.close(self.fd)
