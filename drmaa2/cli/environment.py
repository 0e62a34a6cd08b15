"""The environment a job of ``drmaa2 run`` starts from: the shell's, as it ran ``drmaa2``.

The interpreter changes its own environment at start-up in one case: when the locale is C or
POSIX, it sets ``LC_CTYPE`` to a UTF-8 locale (PEP 538, locale coercion), for its own
children's sake. The job is the shell's, not the interpreter's, so the command line undoes
that. (The Python API does not: there ``os.environ`` is the program's environment.)
"""

from __future__ import annotations

import os
import sys

__all__ = ["restore_shell_environment"]

#: The locales PEP 538 coerces to, in CPython's order of preference.
_COERCED = (b"C.UTF-8", b"C.utf8", b"UTF-8")


def restore_shell_environment() -> None:
    """Undo the interpreter's own change to ``os.environ``: an ``LC_CTYPE`` set by locale
    coercion is removed, or set back to the shell's value. Nothing else is touched, and
    nothing at all where the interpreter did not coerce."""
    started_with = _environment_at_exec()
    if started_with is None:
        return
    now = os.environb.get(b"LC_CTYPE")
    before = started_with.get(b"LC_CTYPE")
    if now == before or now not in _COERCED:
        return
    # The conditions under which CPython never coerces: then someone else set it.
    if started_with.get(b"LC_ALL"):
        return
    if not sys.flags.ignore_environment and started_with.get(b"PYTHONCOERCECLOCALE") == b"0":
        return
    if before is None:
        del os.environb[b"LC_CTYPE"]
    else:
        os.environb[b"LC_CTYPE"] = before


def _environment_at_exec() -> dict[bytes, bytes] | None:
    """The environment this process was started with (None where /proc cannot tell)."""
    try:
        with open("/proc/self/environ", "rb") as environ:
            data = environ.read()
    except OSError:
        return None
    variables: dict[bytes, bytes] = {}
    for entry in data.split(b"\0"):
        name, equals, value = entry.partition(b"=")
        if equals:
            variables.setdefault(name, value)  # the first one counts, as for getenv(3)
    return variables
