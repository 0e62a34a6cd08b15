"""The ``drmaa2`` command line: run, watch and control DRMAA2 jobs from a shell.

See ``docs/cli.md`` for the commands, the ``--json`` formats and the exit statuses.
"""

from drmaa2.cli.app import main

__all__ = ["main"]
