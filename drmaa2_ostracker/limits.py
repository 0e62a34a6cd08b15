"""What the kernel takes: the size of a program's arguments and environment, the length of
file names, the kind of file a job's stream may be. A template beyond these is refused when it
is submitted, instead of failing when its job starts.

Linux's limits (execve(2), path_resolution(7)):

- each argument or environment string, with its terminating NUL, at most
  ``MAX_ARG_STRLEN`` = 32 pages (128 KiB with 4 KiB pages);
- all of them, each with its NUL and a pointer, with the program's path: at most a quarter
  of the stack limit the program starts with, capped at 6 MiB and never below 32 pages (what
  ``sysconf(_SC_ARG_MAX)`` says for a process with that stack limit);
- a path, with its NUL, at most ``PATH_MAX`` = 4096 bytes; each of its names at most
  ``NAME_MAX`` bytes of the file system holding it (``pathconf``; 255 where it cannot be
  asked).

Each function returns why a value is beyond a limit (None if it is not), for the caller to
raise with the field's name.
"""

from __future__ import annotations

import os
import resource
import stat
import struct
from collections.abc import Iterable, Mapping

__all__ = [
    "DEFAULT_NAME_MAX",
    "MAX_ARG_STRLEN",
    "PATH_MAX",
    "START_RESERVE",
    "arg_max",
    "exec_size_problem",
    "path_length_problem",
    "shortened",
    "shown",
    "stream_file_problem",
]

#: The longest argument or environment string, with its NUL (bytes).
MAX_ARG_STRLEN = 32 * os.sysconf("SC_PAGE_SIZE")
#: The longest path, with its NUL (bytes).
PATH_MAX = 4096
#: A file name's longest length where the file system cannot be asked (bytes).
DEFAULT_NAME_MAX = 255
#: What a job's start may add to the template's arguments and environment (bytes): JOB_ID and
#: TASK_ID, and for a script the interpreter of its ``#!`` line (at most 256 bytes) and the
#: script's path (counted apart, with the executable's).
START_RESERVE = 512

# The kernel's cap on the arguments' share of the stack: three quarters of its 8 MiB _STK_LIM.
_ARG_CAP = 6 * 1024 * 1024
# Every file system takes names of this length (POSIX's _POSIX_NAME_MAX): not worth asking.
_SURE_NAME = 14
_POINTER = struct.calcsize("P")
_LONGEST_SHOWN = 120

# The controlling terminal, whatever process opens it: a job has none (it runs in a session
# of its own), so it cannot open it.
_CONTROLLING_TTY = os.makedev(5, 0)
# Paths naming the descriptors of the process that opens them: the job's own, in the keeper.
# (Written exactly so, /dev/stdin, /dev/stdout and /dev/stderr are the submitter's streams and
# never reach these checks; written otherwise, "//dev/stdout" say, they are the keeper's.)
_SELF_NAMES = ("/dev/stdin", "/dev/stdout", "/dev/stderr")
_SELF_PREFIXES = ("/dev/fd/", "/proc/self/", "/proc/thread-self/")
# The links by which a path names its opener: never followed (they would lead to our own).
_SELF_LINKS = ("/proc/self", "/proc/thread-self")
# Symbolic links followed at most in one path, as the kernel's MAXSYMLINKS.
_MAX_HOPS = 40


def shown(value: object) -> str:
    """``repr(value)``, shortened in the middle if long, with its full length said."""
    text = repr(value)
    if len(text) <= _LONGEST_SHOWN:
        return text
    return f"{text[:80]}…{text[-24:]} ({_length_of(value)})"


def shortened(text: str) -> str:
    """``text``, shortened in the middle if long, with its full length said."""
    if len(text) <= _LONGEST_SHOWN:
        return text
    return f"{text[:80]}…{text[-24:]} ({len(text)} characters)"


def _length_of(value: object) -> str:
    if isinstance(value, str):
        return f"{len(value)} characters"
    if isinstance(value, (list, tuple, dict)):
        return f"{len(value)} items"
    return f"{len(repr(value))} characters shown"


def arg_max(stack_limit: int) -> int:
    """The bytes of arguments and environment a program starting with ``stack_limit`` (bytes,
    or ``resource.RLIM_INFINITY``) may take."""
    if stack_limit == resource.RLIM_INFINITY or stack_limit < 0:
        limit = _ARG_CAP
    else:
        limit = min(stack_limit // 4, _ARG_CAP)
    return max(limit, MAX_ARG_STRLEN)


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def exec_size_problem(
    argv: list[str],
    env: Mapping[bytes, bytes],
    given: Iterable[str],
    executable: str,
    stack_limit: int,
) -> tuple[str, object, str] | None:
    """Whether a program can be started with ``argv`` and ``env``: None, or the template field
    to blame (``remote_command``, ``args`` or ``job_environment``), the value to show and why.

    ``given`` names the variables of ``env`` that the template set (job_environment); the
    others are inherited. ``stack_limit`` is the stack limit the program starts with.
    """
    longest = MAX_ARG_STRLEN - 1
    args_bytes = 0
    for position, item in enumerate(argv):
        size = _size(item)
        if size > longest:
            field = "remote_command" if position == 0 else "args"
            return field, item, _one_too_long(size, f"argument {position}")
        args_bytes += size + 1
    env_bytes = given_bytes = 0
    own = {os.fsencode(key) for key in given}
    for key, value in env.items():
        size = len(key) + 1 + len(value)
        if size > longest:
            where = "set by job_environment" if key in own else "inherited from this process"
            what = f"the variable {os.fsdecode(key)} ({where})"
            return "job_environment", os.fsdecode(key), _one_too_long(size, what)
        env_bytes += size + 1
        if key in own:
            given_bytes += size + 1
    pointers = (len(argv) + len(env) + 1) * _POINTER
    path_bytes = 2 * (_size(executable) + 1)  # the program's path, and a script's once more
    total = args_bytes + env_bytes + pointers + path_bytes + START_RESERVE
    limit = arg_max(stack_limit)
    if total <= limit:
        return None
    stack = "unlimited" if stack_limit == resource.RLIM_INFINITY else f"{stack_limit} bytes"
    why = (
        f"the job's arguments and environment would take {total} bytes "
        f"({_count(len(argv), 'argument')}: {args_bytes} bytes; "
        f"{_count(len(env), 'environment variable')}: "
        f"{env_bytes} bytes, {given_bytes} of them from job_environment; pointers and the "
        f"program's path: {pointers + path_bytes + START_RESERVE}); the kernel takes at most "
        f"{limit} (ARG_MAX for a stack limit of {stack}: a quarter of it, at least "
        f"{MAX_ARG_STRLEN // 1024} KiB and at most 6 MiB)"
    )
    if args_bytes >= env_bytes:
        return "args", argv[1:], why
    return "job_environment", sorted(os.fsdecode(key) for key in own), why


def _count(number: int, what: str) -> str:
    return f"{number} {what}" if number == 1 else f"{number} {what}s"


def _one_too_long(size: int, what: str) -> str:
    return (
        f"{what} takes {size + 1} bytes with its NUL; the kernel takes at most "
        f"{MAX_ARG_STRLEN} for one argument or environment string (MAX_ARG_STRLEN)"
    )


def path_length_problem(path: str) -> str | None:
    """Why the kernel would refuse the absolute ``path`` as too long (None if it would not):
    longer than PATH_MAX, or a name in it longer than its file system takes."""
    data = os.fsencode(path)
    if len(data) + 1 > PATH_MAX:
        return (
            f"the path takes {len(data) + 1} bytes with its NUL; the kernel takes at most "
            f"{PATH_MAX} (PATH_MAX)"
        )
    parts = data.split(b"/")
    for position, name in enumerate(parts):
        if len(name) <= _SURE_NAME:
            continue
        directory = b"/".join(parts[:position]) or b"/"
        most = _name_max(directory)
        if len(name) > most:
            return (
                f"a name in it, {shown(os.fsdecode(name))}, takes {len(name)} bytes; the "
                f"file system of {os.fsdecode(_existing(directory))} takes names of at most "
                f"{most} (NAME_MAX)"
            )
    return None


def _existing(directory: bytes) -> bytes:
    """The directory, or its nearest ancestor that exists."""
    while directory != b"/" and not os.path.isdir(directory):
        directory = os.path.dirname(directory) or b"/"
    return directory


def _name_max(directory: bytes) -> int:
    try:
        return int(os.pathconf(_existing(directory), "PC_NAME_MAX"))
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def stream_file_problem(path: str, *, reading: bool) -> str | None:
    """Why the absolute ``path`` cannot be a job's input (``reading``) or output file, as
    found now (None if it can, or does not exist yet): a directory, a FIFO or socket, the
    controlling terminal, or a name for the descriptors of whoever opens it."""
    if _names_its_opener(path):
        return (
            "names a descriptor of the process that opens it (the job), not of this one; "
            "/dev/stdin, /dev/stdout and /dev/stderr, written so, are this process's own "
            "streams, handed to the job"
        )
    try:
        found = os.stat(path)
    except OSError:
        return None
    mode = found.st_mode
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return (
            "is a FIFO (named pipe): the job would block until another process opened its "
            "other end; give a regular file, or /dev/stdin, /dev/stdout, /dev/stderr for "
            "this process's own streams"
        )
    if stat.S_ISSOCK(mode):
        return "is a socket, which cannot be opened as a file"
    if stat.S_ISCHR(mode) and found.st_rdev == _CONTROLLING_TTY:
        direction = "read from" if reading else "write to"
        return (
            "is the controlling terminal, and a job has none (it runs in a session of its "
            f"own); to {direction} this process's terminal, give "
            f"{'/dev/stdin' if reading else '/dev/stdout or /dev/stderr'}"
        )
    if reading and not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        return "is not a file"
    return None


def _names_its_opener(path: str) -> bool:
    """Whether the absolute ``path`` names the descriptors of whoever opens it, however it is
    written: "//dev/stdout", "/dev/../dev/fd/1", a symbolic link to /dev/stderr … Its names
    are resolved one by one as the kernel would, up to /proc/self or /proc/thread-self."""
    if path in _SELF_NAMES or path.startswith(_SELF_PREFIXES):
        return True
    pending = path.split("/")[::-1]
    done = "/"
    hops = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            done = os.path.dirname(done)
            continue
        here = os.path.join(done, name)
        if here in _SELF_LINKS:
            return True
        try:
            target = os.readlink(here)
        except OSError:  # not a symbolic link, or not there: the name stays as it is
            done = here
            continue
        hops += 1
        if hops > _MAX_HOPS:
            return False  # the kernel refuses it (ELOOP): opening it says so
        pending.extend(target.split("/")[::-1])
        if target.startswith("/"):
            done = "/"
    return done in _SELF_NAMES
