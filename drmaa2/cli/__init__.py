"""The ``drmaa2`` command line: run, watch and control DRMAA2 jobs from a shell.

In the spirit of qsub/qstat/qdel for one machine, written only against the ``drmaa2`` API, so
it works with every backend (``--backend``)::

    drmaa2 run --array 1-4 --wait --output 'task-$DRMAA2_INDEX$.out' -- sh -c 'echo $TASK_ID'
    drmaa2 jobs
    drmaa2 info 1.2 --json

One module per command group (``run``, ``jobs``, ``wait``, ``control``, ``sessions``,
``monitor``), each registering its own sub-command with :mod:`~drmaa2.cli.parser`;
:mod:`~drmaa2.cli.app` puts them together. See ``docs/cli.md`` for the commands, the ``--json``
formats and the exit statuses.
"""

from drmaa2.cli.app import main

__all__ = ["main"]
