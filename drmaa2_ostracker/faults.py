"""What ran out, in words: the limits of the machine a failed call ran into.

A resource that ran out is never the job's or the user's input's fault: it is reported as
:class:`~drmaa2.errors.OutOfResourceException` naming the limit and its value, and what waits
for it (a queued task) starts once the limit allows.
"""

from __future__ import annotations

import errno
import resource

__all__ = ["limit_reached", "limit_text"]


def limit_reached(error: OSError) -> str | None:
    """The limit a failed start ran into, named with its value; None if it was no limit."""
    if error.errno == errno.EAGAIN:
        soft = limit_text(resource.getrlimit(resource.RLIMIT_NPROC)[0])
        return (
            f"no process can be created: the limit on processes or threads is reached "
            f"(RLIMIT_NPROC = {soft} for the keeper, from the process that started it; or "
            f"the system's kernel.threads-max or kernel.pid_max)"
        )
    if error.errno == errno.EMFILE:
        soft = limit_text(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return f"the keeper has too many open files (RLIMIT_NOFILE = {soft})"
    if error.errno == errno.ENFILE:
        return "the system has too many open files (fs.file-max)"
    if error.errno == errno.ENOMEM:
        return "out of memory"
    return None


def limit_text(value: int) -> str:
    """A resource limit's value as a user reads it ("unlimited" for RLIM_INFINITY)."""
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)
