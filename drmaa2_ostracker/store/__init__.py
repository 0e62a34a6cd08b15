"""The SQLite session store of a state directory (written only by its keeper).

- :mod:`~drmaa2_ostracker.store.schema`: the schema, its migrations, opening a file safely.
- :mod:`~drmaa2_ostracker.store.records`: job and array records, stored templates.
- :mod:`~drmaa2_ostracker.store.transactions`: the connection's transactions, deferred commits.
- :mod:`~drmaa2_ostracker.store.ends`: job ends and starts kept in the ring (:mod:`.ring`, its
  file) until their rows are written.
- :mod:`~drmaa2_ostracker.store.checkpoints`: the write-ahead log's checkpoints, by a thread.
- :mod:`~drmaa2_ostracker.store.queries`: :class:`Store`, the package's public entry.
"""

from drmaa2_ostracker.store.queries import Store

__all__ = ["Store"]
