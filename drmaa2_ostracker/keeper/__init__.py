"""The keeper: one background process per state directory that owns its jobs and its store.

- :mod:`~drmaa2_ostracker.keeper.protocol`: the messages between clients and the keeper.
- :mod:`~drmaa2_ostracker.keeper.server`: the keeper process.
- :mod:`~drmaa2_ostracker.keeper.session_requests` and
  :mod:`~drmaa2_ostracker.keeper.requests`: its answers to requests about sessions, and jobs.
- :mod:`~drmaa2_ostracker.keeper.events`: its event streams.
- :mod:`~drmaa2_ostracker.keeper.client`: how a client starts it and talks to it
  (:class:`KeeperClient`, the package's one public entry).
- :mod:`~drmaa2_ostracker.keeper.sessions`: a job session as the keeper runs it.
- :mod:`~drmaa2_ostracker.keeper.files`: its files, and what makes a state directory safe.
"""

from drmaa2_ostracker.keeper.client import KeeperClient

__all__ = ["KeeperClient"]
