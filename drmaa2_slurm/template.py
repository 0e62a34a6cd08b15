"""From a DRMAA2 job template to an sbatch submission: options, the job script and the job's
environment.

The script runs ``exec`` on the shell-quoted command and arguments, so no shell interprets a
user string and a signal that kills the command is reported as that signal. Anything Slurm
cannot honour raises UnsupportedAttributeException, anything malformed InvalidArgumentException,
both naming the field, before anything is submitted.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import shlex
import stat
from collections.abc import Callable, Sequence

from drmaa2.enums import HOME_DIR, PARAMETRIC_INDEX, WORKING_DIR, Cpu, Os, ResourceLimit
from drmaa2.errors import InvalidArgumentException, UnsupportedAttributeException
from drmaa2.types import JobTemplate
from drmaa2_slurm import extension
from drmaa2_slurm.environment import job_environment

__all__ = ["Submission", "plan_submission"]

# DRMAA2 resource limits → (prlimit option, multiplier from the DRMAA2 unit: KiB or seconds).
_PRLIMITS: dict[ResourceLimit, tuple[str, int]] = {
    ResourceLimit.CORE_FILE_SIZE: ("--core", 1024),
    ResourceLimit.CPU_TIME: ("--cpu", 1),
    ResourceLimit.DATA_SIZE: ("--data", 1024),
    ResourceLimit.FILE_SIZE: ("--fsize", 1024),
    ResourceLimit.OPEN_FILES: ("--nofile", 1),
    ResourceLimit.STACK_SIZE: ("--stack", 1024),
    ResourceLimit.VIRTUAL_MEMORY: ("--as", 1024),
}
#: implementation_specific keys → sbatch options.
_EXTENSION_OPTIONS = {
    extension.TEMPLATE_CONSTRAINT: "--constraint",
    extension.TEMPLATE_QOS: "--qos",
    extension.TEMPLATE_GRES: "--gres",
    extension.TEMPLATE_DEPENDENCY: "--dependency",
    extension.TEMPLATE_WCKEY: "--wckey",
}
#: The shell expression of an array task's index.
_TASK_INDEX = '"$SLURM_ARRAY_TASK_ID"'


@dataclasses.dataclass
class Submission:
    """What sbatch gets for one job or array."""

    options: list[str]
    script: str
    environment: dict[str, str]
    #: Whether Slurm might keep the job pending forever for its resource requests, so that a
    #: ``--test-only`` submission should check it first.
    asks_resources: bool


def _invalid(field: str, value: object, why: str) -> InvalidArgumentException:
    return InvalidArgumentException(f"JobTemplate.{field} {value!r}: {why}")


#: Characters squeue's rows cannot carry in a job's name or working directory: the field and
#: row separators of :meth:`~drmaa2_slurm.commands.Slurm.squeue`, and NUL.
_SEPARATORS = {"\x1f": "\\x1f", "\x1e": "\\x1e", "\0": "\\0"}


def _check_separators(field: str, value: str) -> None:
    """InvalidArgumentException naming ``field`` and the character if ``value`` holds one
    that squeue's rows cannot carry."""
    for char, shown in _SEPARATORS.items():
        if char in value:
            raise _invalid(
                field,
                value,
                f"it holds the character {shown}, which the slurm backend uses to read "
                f"squeue's output: remove it",
            )


def _unsupported(field: str, value: object, why: str) -> UnsupportedAttributeException:
    return UnsupportedAttributeException(f"JobTemplate.{field} {value!r}: {why} (backend slurm)")


def _check_unsupported(t: JobTemplate) -> None:
    if t.stage_in_files:
        raise _unsupported("stage_in_files", t.stage_in_files, "Slurm does not stage files")
    if t.stage_out_files:
        raise _unsupported("stage_out_files", t.stage_out_files, "Slurm does not stage files")
    if t.job_category is not None:
        raise _unsupported("job_category", t.job_category, "Slurm has no job categories")
    if t.max_slots is not None and t.max_slots > (t.min_slots or 1):
        raise _unsupported("max_slots", t.max_slots, "a slot range cannot be requested")
    if t.machine_os is not None and t.machine_os is not Os.LINUX:
        raise _invalid("machine_os", t.machine_os.name, "Slurm nodes run LINUX")
    for key in t.implementation_specific or {}:
        if key not in _EXTENSION_OPTIONS:
            known = ", ".join(sorted(_EXTENSION_OPTIONS))
            raise _unsupported(
                "implementation_specific", key, f"unknown key (the slurm backend knows {known})"
            )


@dataclasses.dataclass
class _Paths:
    """Resolves placeholders; an array task's index is Slurm's ``%a`` or the shell's."""

    submit_cwd: str
    array: bool

    def working_directory(self, value: str | None) -> tuple[str, str | None]:
        """(the shell word of the job's directory, the --chdir value or None)."""
        if value is None:
            return shlex.quote(self.submit_cwd), self.submit_cwd
        if WORKING_DIR in value:
            raise _invalid("working_directory", value, f"{WORKING_DIR} cannot be used in itself")
        value = value.replace(HOME_DIR, os.path.expanduser("~"))
        value = os.path.join(self.submit_cwd, value)
        if PARAMETRIC_INDEX in value:
            if not self.array:
                raise _invalid(
                    "working_directory", value, f"{PARAMETRIC_INDEX} is only defined for arrays"
                )
            parts = [shlex.quote(part) for part in value.split(PARAMETRIC_INDEX)]
            return _TASK_INDEX.join(parts), None
        return shlex.quote(os.path.normpath(value)), os.path.normpath(value)

    def stream(self, field: str, value: str, workdir: str) -> str:
        """A stream path as an sbatch filename pattern (absolute; ``%`` escaped)."""
        value = value.replace(HOME_DIR, os.path.expanduser("~"))
        value = value.replace(WORKING_DIR, workdir)
        if PARAMETRIC_INDEX in value and not self.array:
            raise _invalid(field, value, f"{PARAMETRIC_INDEX} is only defined for arrays")
        if "\\" in os.path.join(workdir, value):
            # Slurm takes a backslash in a file name as the sign to substitute nothing, and
            # drops it: the job would write another file than the one named.
            raise _invalid(
                field,
                value,
                "Slurm drops a backslash from a stream's file name, so the job would write "
                "another file; name the file without one",
            )
        value = os.path.join(workdir.replace("%", "%%"), value.replace("%", "%%"))
        return value.replace(PARAMETRIC_INDEX, "%a")


def _utc(field: str, value: datetime.datetime) -> str:
    # The commands run with TZ=UTC; Slurm takes whole seconds only.
    moment = value.astimezone(datetime.timezone.utc)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _limits(t: JobTemplate) -> tuple[list[str], list[str]]:
    """(sbatch options, prlimit options) of the resource limits."""
    options: list[str] = []
    prlimit: list[str] = []
    for key, value in (t.resource_limits or {}).items():
        limit = ResourceLimit(key)
        if limit is ResourceLimit.WALLCLOCK_TIME:
            if value <= 0:
                raise _invalid(
                    "resource_limits",
                    {limit.value: value},
                    "WALLCLOCK_TIME must be > 0 here (a time limit of 0 is none for Slurm)",
                )
            # Slurm's limits are whole minutes.
            options.append(f"--time={math.ceil(value / 60)}")
            continue
        option, unit = _PRLIMITS[limit]
        amount = math.ceil(value * unit)
        prlimit.append(f"{option}={amount}:{amount}")
    return options, prlimit


def _mail(t: JobTemplate) -> list[str]:
    options = []
    if t.email:
        options.append(f"--mail-user={','.join(t.email)}")
    kinds = (["BEGIN"] if t.email_on_started else []) + (
        ["END", "FAIL"] if t.email_on_terminated else []
    )
    if kinds:
        options.append(f"--mail-type={','.join(kinds)}")
    return options


def _excluded(t: JobTemplate, nodes: Callable[[], list[str]]) -> list[str]:
    """--exclude of every node not among candidate_machines ("any of" them)."""
    if not t.candidate_machines:  # an empty list is unset, as in the C binding
        return []
    everything = nodes()
    wanted = set(t.candidate_machines)
    if not wanted.intersection(everything):
        raise _invalid(
            "candidate_machines",
            t.candidate_machines,
            f"no such node (the cluster has {everything})",
        )
    others = [node for node in everything if node not in wanted]
    return [f"--exclude={','.join(others)}"] if others else []


def plan_submission(
    t: JobTemplate,
    *,
    session: str,
    conf: str,
    array: tuple[int, int, int, int | None] | None,
    nodes: Callable[[], list[str]],
    architectures: Callable[[], set[Cpu]],
) -> Submission:
    """Check a template and build its submission (``conf``: the cluster's slurm.conf;
    ``array``: begin, end, step, max_parallel).

    ``nodes`` and ``architectures`` are asked only when the template names machines or an
    architecture.
    """
    _check_unsupported(t)
    if not t.remote_command:
        raise InvalidArgumentException("JobTemplate.remote_command is required")
    if t.machine_arch is not None and t.machine_arch not in architectures():
        raise _invalid("machine_arch", t.machine_arch.name, "no node of the cluster has it")
    cwd = os.getcwd()
    paths = _Paths(cwd, array is not None)
    cd_word, chdir = paths.working_directory(t.working_directory)
    workdir = chdir if chdir is not None else _stream_base(t.working_directory, cwd)
    name = t.job_name if t.job_name is not None else os.path.basename(t.remote_command)
    if "\n" in name or "\r" in name:
        raise _invalid("job_name", t.job_name, "a job name cannot hold a line break in Slurm")
    _check_separators("job_name", name)
    _check_separators("working_directory", chdir if chdir is not None else cwd)
    options = ["-J", name, f"--comment=drmaa2:{session}"]
    if chdir is not None:
        options.append(f"--chdir={chdir}")
    streams = _streams(t, paths, workdir)
    _check_same_files(t, streams, array)
    if "input_path" in streams:
        options.append(f"--input={streams['input_path']}")
    options.append(f"--output={streams.get('output_path', '/dev/null')}")
    if not t.join_files:
        options.append(f"--error={streams.get('error_path', '/dev/null')}")
    if t.start_time is not None:
        options.append(f"--begin={_utc('start_time', t.start_time)}")
    if t.deadline_time is not None:
        if t.deadline_time <= datetime.datetime.now(datetime.timezone.utc):
            raise _invalid("deadline_time", t.deadline_time.isoformat(), "it has passed")
        options.append(f"--deadline={_utc('deadline_time', t.deadline_time)}")
    limit_options, prlimit = _limits(t)
    options += limit_options
    if t.priority is not None:
        options.append(f"--nice={t.priority}")
    if t.min_slots is not None:
        options.append(f"--ntasks={t.min_slots}")
    if t.min_phys_memory is not None:
        options.append(f"--mem={math.ceil(t.min_phys_memory / 1024)}")
    options += _excluded(t, nodes)
    if t.queue_name is not None:
        options.append(f"--partition={t.queue_name}")
    if t.accounting_id is not None:
        options.append(f"--account={t.accounting_id}")
    if t.reservation_id is not None:
        options.append(f"--reservation={t.reservation_id}")
    if t.submit_as_hold:
        options.append("--hold")
    if t.rerunnable is not None:
        options.append("--requeue" if t.rerunnable else "--no-requeue")
    options += _mail(t)
    for key, value in (t.implementation_specific or {}).items():
        options.append(f"{_EXTENSION_OPTIONS[key]}={value}")
    if array is not None:
        begin, end, step, parallel = array
        spec = f"{begin}-{end}:{step}" + (f"%{parallel}" if parallel is not None else "")
        options.append(f"--array={spec}")
    environment = job_environment(t.job_environment, conf)
    script = _script(t, cd_word, prlimit, array is not None)
    asks = (
        t.min_slots is not None or t.min_phys_memory is not None or bool(t.implementation_specific)
    )
    return Submission(options, script, environment, asks)


def _streams(t: JobTemplate, paths: _Paths, workdir: str) -> dict[str, str]:
    """The stream paths the template sets and uses (no error_path with join_files), as sbatch
    patterns; InvalidArgumentException if the job would write the file it reads (opening the
    output truncates it before it is read)."""
    fields = ("input_path", "output_path") + (() if t.join_files else ("error_path",))
    streams = {
        field: paths.stream(field, value, workdir)
        for field in fields
        if (value := getattr(t, field)) is not None
    }
    source = streams.get("input_path")
    if source is not None and not source.startswith("/dev/"):
        for field in fields[1:]:
            target = streams.get(field)
            if target is not None and os.path.normpath(target) == os.path.normpath(source):
                raise _invalid(
                    "input_path",
                    t.input_path,
                    f"it is also the {field}: the job would read what it writes",
                )
    return streams


def _check_same_files(
    t: JobTemplate, streams: dict[str, str], array: tuple[int, int, int, int | None] | None
) -> None:
    """InvalidArgumentException if an output file of the job (of any task of an array) is
    its input file by another name (a symbolic or hard link): opening it for writing would
    empty it before it is read. Files that do not exist yet are new ones."""
    source = streams.get("input_path")
    if source is None or source.startswith("/dev/"):
        return
    targets = [
        (field, streams[field]) for field in ("output_path", "error_path") if field in streams
    ]
    indices: Sequence[int | None] = [None]
    if array is not None and any("%a" in path for path in (source, *dict(targets).values())):
        indices = range(array[0], array[1] + 1, array[2])
    for index in indices:
        try:
            found = os.stat(_file_of(source, index))
        except OSError:
            continue
        if not stat.S_ISREG(found.st_mode):
            continue
        for field, pattern in targets:
            try:
                other = os.stat(_file_of(pattern, index))
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (found.st_dev, found.st_ino):
                task = "" if index is None else f" (task {index})"
                raise _invalid(
                    "input_path",
                    t.input_path,
                    f"it is the same file as the {field}, {getattr(t, field)!r}{task}: the "
                    f"job would read what it writes, and opening it for writing would empty it",
                )


def _file_of(pattern: str, index: int | None) -> str:
    """The file an sbatch stream pattern names for an array task (``index``; None: a
    single job): ``%a`` is the index, ``%%`` a ``%``."""
    parts = pattern.split("%%")
    if index is not None:
        parts = [part.replace("%a", str(index)) for part in parts]
    return "%".join(parts)


def _stream_base(working_directory: str | None, cwd: str) -> str:
    """The base of relative stream paths when the working directory depends on the index."""
    assert working_directory is not None
    value = working_directory.replace(HOME_DIR, os.path.expanduser("~"))
    return os.path.join(cwd, value)


def _script(t: JobTemplate, cd_word: str, prlimit: list[str], array: bool) -> str:
    assert t.remote_command is not None
    lines = ["#!/bin/sh"]
    if array:
        lines.append('JOB_ID="$SLURM_ARRAY_JOB_ID.$SLURM_ARRAY_TASK_ID"')
        lines.append('TASK_ID="$SLURM_ARRAY_TASK_ID"')
        lines.append("export JOB_ID TASK_ID")
    else:  # a single job has no TASK_ID, whatever the submitter had (as on the os backend)
        lines.append('JOB_ID="$SLURM_JOB_ID"; export JOB_ID; unset TASK_ID')
    # Slurm runs a job whose directory is missing in /tmp instead: fail it.
    lines.append(f"cd -- {cd_word} || exit 1")
    if prlimit:
        lines.append(f"prlimit --pid $$ {' '.join(prlimit)} || exit 1")
    lines.append("exec " + shlex.join([t.remote_command, *(t.args or [])]))
    return "\n".join(lines) + "\n"
