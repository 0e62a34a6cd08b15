"""How a ``drmaa2`` command ends: its exit statuses, and errors as one line on stderr."""

from __future__ import annotations

import sys

#: The program's name, which starts every line it writes to stderr.
PROG = "drmaa2"

#: Exit statuses (a job's own exit status is passed on by ``run --wait`` and ``wait``).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (its class name if it has no message)."""
    return " ".join(str(error).split()) or type(error).__name__


def print_error(message: str) -> None:
    """Write ``drmaa2: error: MESSAGE`` to stderr."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
