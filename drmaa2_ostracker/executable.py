"""A job's executable, found as the job itself would find it: an absolute path, a path
relative to the job's working directory, or a name on the job's PATH (whose relative entries
are in the job's working directory too). Checked at submission, with the submitter's
permissions: InvalidArgumentException naming ``remote_command`` and why.
"""

from __future__ import annotations

import os
import shutil
import stat

from drmaa2.enums import PARAMETRIC_INDEX
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import JobTemplate
from drmaa2_ostracker.limits import DEFAULT_NAME_MAX, path_length_problem, shortened, shown
from drmaa2_ostracker.plan import check_length, substitute
from drmaa2_ostracker.supervisor import LaunchError

__all__ = ["command_base", "find_executable", "invalid"]


def invalid(field: str, value: object, why: str) -> InvalidArgumentException:
    """The error of a template field's value: InvalidArgumentException naming both."""
    return InvalidArgumentException(f"JobTemplate.{field} {shown(value)}: {why}")


def command_base(t: JobTemplate, submit_cwd: str) -> str | None:
    """The directory a relative remote_command is relative to: the job's working directory
    (None when that depends on the task index: the command is found when the task starts).
    ``submit_cwd``: the submitting process's working directory."""
    value = t.working_directory
    if value is None:
        return submit_cwd
    if PARAMETRIC_INDEX in value:
        return None
    try:
        resolved = substitute(value, "working_directory", submit_cwd, None, allow_wd=False)
        resolved = os.path.normpath(os.path.join(submit_cwd, resolved))
        check_length("working_directory", value, resolved)
    except LaunchError as error:
        raise InvalidArgumentException(f"JobTemplate: {error}") from None
    return resolved


def find_executable(t: JobTemplate, env: dict[bytes, bytes], cwd: str | None) -> str:
    """The path of the job's executable (``env``: the job's environment; ``cwd``: its working
    directory, None when that depends on the task index), or a relative command left to be
    found when each task starts."""
    command = t.remote_command
    if not command:
        raise InvalidArgumentException("JobTemplate.remote_command is required")
    if "/" in command and cwd is None and not command.startswith("/"):
        return command  # relative to each task's own working directory
    if "/" in command:
        assert cwd is not None or command.startswith("/")
        path = command if command.startswith("/") else os.path.join(cwd or "/", command)
        path = os.path.normpath(path)
        problem = path_length_problem(path)
        if problem is not None:
            where = "" if path == command else f"as {shortened(path)}, "
            raise invalid("remote_command", command, where + problem)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise invalid("remote_command", command, "no such file") from None
    else:
        if len(os.fsencode(command)) > DEFAULT_NAME_MAX:
            raise invalid(
                "remote_command",
                command,
                f"a command name takes at most {DEFAULT_NAME_MAX} bytes (NAME_MAX)",
            )
        search = env.get(b"PATH")
        searched = _search_path(search, cwd)
        found = None if searched is None else shutil.which(command, path=searched)
        if found is None:
            raise invalid(
                "remote_command",
                command,
                "not found on PATH"
                + (
                    ""
                    if cwd is not None
                    else " (its absolute entries: the working directory, "
                    "which relative ones name, depends on the task index)"
                ),
            )
        path = found
        mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise invalid("remote_command", command, f"{shortened(path)} is a directory")
    if not stat.S_ISREG(mode):
        raise invalid("remote_command", command, f"{shortened(path)} is not a regular file")
    if not os.access(path, os.X_OK):
        raise invalid("remote_command", command, f"{shortened(path)} is not executable")
    return path


def _search_path(search: bytes | None, cwd: str | None) -> str | None:
    """The job's PATH, its relative entries (an empty one is ".") taken in the job's working
    directory, as the job's own lookup would. ``cwd`` None (it depends on the task index):
    its absolute entries only, which are the same for every task (None if it has none)."""
    entries = (os.fsdecode(search) if search else os.defpath).split(os.pathsep)
    if cwd is None:
        return os.pathsep.join(entry for entry in entries if entry.startswith("/")) or None
    return os.pathsep.join(
        entry if entry.startswith("/") else os.path.join(cwd, entry) for entry in entries
    )
