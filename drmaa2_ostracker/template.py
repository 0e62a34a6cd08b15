"""From a DRMAA2 job template to a plan (:mod:`drmaa2_ostracker.plan`): checks, limits, the
executable (found by :mod:`drmaa2_ostracker.executable`).

Everything that can be checked when a job is submitted is checked then, with the DRMAA2
exception that fits and a message naming the field and value. What depends on an array
task's index (paths holding ``$DRMAA2_INDEX$``) is checked when the task starts; a task that
cannot start then is FAILED with the reason in its annotation, and the other tasks run.

Nothing is silently ignored: an attribute this backend cannot honour raises
UnsupportedAttributeException, an unsatisfiable machine requirement InvalidArgumentException.
"""

from __future__ import annotations

import datetime
import math
import os
import resource
from typing import Any

from drmaa2.enums import PARAMETRIC_INDEX, ResourceLimit
from drmaa2.errors import InvalidArgumentException, UnsupportedAttributeException
from drmaa2.types import JobTemplate
from drmaa2_ostracker import host
from drmaa2_ostracker.executable import command_base, find_executable
from drmaa2_ostracker.executable import invalid as _invalid
from drmaa2_ostracker.limits import (
    exec_size_problem,
    shown,
)
from drmaa2_ostracker.plan import (
    OWN_STREAMS,
    Plan,
    check_lengths,
    close_streams,
    launch_document,
    plan_from_wire,
)
from drmaa2_ostracker.process.settings import ProcessSettings, client_settings, still_current
from drmaa2_ostracker.supervisor import LaunchError

__all__ = [
    "Plan",
    "ProcessSettings",
    "client_settings",
    "close_streams",
    "launch_document",
    "plan_from_wire",
    "plan_job",
    "restore_plan",
]

# DRMAA2 resource limits → (setrlimit resource, multiplier from the DRMAA2 unit).
_RLIMITS: dict[ResourceLimit, tuple[int, int]] = {
    ResourceLimit.CORE_FILE_SIZE: (resource.RLIMIT_CORE, 1024),
    ResourceLimit.CPU_TIME: (resource.RLIMIT_CPU, 1),
    ResourceLimit.DATA_SIZE: (resource.RLIMIT_DATA, 1024),
    ResourceLimit.FILE_SIZE: (resource.RLIMIT_FSIZE, 1024),
    ResourceLimit.OPEN_FILES: (resource.RLIMIT_NOFILE, 1),
    ResourceLimit.STACK_SIZE: (resource.RLIMIT_STACK, 1024),
    ResourceLimit.VIRTUAL_MEMORY: (resource.RLIMIT_AS, 1024),
}


def _unsupported(field: str, value: object, why: str) -> UnsupportedAttributeException:
    return UnsupportedAttributeException(
        f"JobTemplate.{field} {shown(value)}: {why} (the os backend runs jobs as local processes)"
    )


def _check_unsupported(t: JobTemplate) -> None:
    if t.email:
        raise _unsupported("email", t.email, "e-mail notification is not supported")
    if t.email_on_started:
        raise _unsupported("email_on_started", True, "e-mail notification is not supported")
    if t.email_on_terminated:
        raise _unsupported("email_on_terminated", True, "e-mail notification is not supported")
    if t.stage_in_files:
        raise _unsupported("stage_in_files", t.stage_in_files, "file staging is not supported")
    if t.stage_out_files:
        raise _unsupported("stage_out_files", t.stage_out_files, "file staging is not supported")
    if t.reservation_id is not None:
        raise _unsupported("reservation_id", t.reservation_id, "there are no reservations")
    if t.queue_name is not None:
        raise _unsupported("queue_name", t.queue_name, "there are no queues")
    for field in ("min_slots", "max_slots"):
        slots = getattr(t, field)
        if slots is not None and slots > 1:
            raise _unsupported(field, slots, "a job gets exactly one slot")
    if t.implementation_specific:
        key = next(iter(t.implementation_specific))
        raise _unsupported(
            "implementation_specific", key, "the os backend knows no implementation-specific key"
        )


def _check_machine(t: JobTemplate) -> None:
    if t.candidate_machines:  # an empty list is unset, as in the C binding
        name = host.hostname().lower()
        names = {name, name.split(".")[0], "localhost"}
        if not names.intersection(machine.lower() for machine in t.candidate_machines):
            raise _invalid(
                "candidate_machines",
                t.candidate_machines,
                f"this machine ({host.hostname()}) is not among them",
            )
    if t.machine_os is not None and t.machine_os != host.this_os():
        raise _invalid("machine_os", t.machine_os.name, f"this machine runs {host.this_os().name}")
    if t.machine_arch is not None and t.machine_arch != host.this_cpu():
        raise _invalid(
            "machine_arch", t.machine_arch.name, f"this machine is {host.this_cpu().name}"
        )
    if t.min_phys_memory is not None and t.min_phys_memory > host.phys_memory_kib():
        raise _invalid(
            "min_phys_memory",
            t.min_phys_memory,
            f"this machine has {host.phys_memory_kib()} KiB",
        )


def _environment() -> dict[bytes, bytes]:
    """The caller's environment now, as bytes."""
    # os.environ keeps the bytes it decoded; copying them is a hundred times faster than
    # decoding every variable. os.environb is the same mapping, the slow way.
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        return dict(raw)
    return dict(os.environb)


def _limits(t: JobTemplate) -> tuple[list[tuple[int, int]], float | None]:
    """The template's limits: (setrlimit resource, amount) pairs, and the wallclock limit
    (seconds; 0 ends the job as soon as it has started, as CPU_TIME 0 does)."""
    rlimits: list[tuple[int, int]] = []
    wallclock: float | None = None
    for key, value in (t.resource_limits or {}).items():
        limit = ResourceLimit(key)
        if limit is ResourceLimit.WALLCLOCK_TIME:
            wallclock = float(value)
            continue
        which, unit = _RLIMITS[limit]
        amount = math.ceil(value * unit)
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY and amount > hard:
            raise _invalid(
                "resource_limits",
                {limit.value: value},  # named as the user writes it, not as the enum's repr
                f"above this process's own hard limit ({hard // unit})",
            )
        rlimits.append((which, amount))
    return rlimits, wallclock


def _epoch(value: datetime.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


#: The last plan of a single job whose template depends on nothing but the environment, the
#: working directory and its executable: (a copy of the template, the working directory, the
#: environment, what the executable's status was, the plan). Submitting an equal template again
#: reuses it if the rest is unchanged: a pipeline submits the same template many times.
_last_plan: tuple[JobTemplate, str, dict[bytes, bytes], tuple[int, ...], Plan] | None = None


def _reusable(t: JobTemplate) -> bool:
    """Whether the plan of a single job of this template may be reused for an equal one."""
    return (
        t.remote_command is not None
        and t.remote_command.startswith("/")  # no PATH lookup, whose result may change
        and t.working_directory is None
        and t.input_path in _UNRESOLVED
        and t.output_path in _UNRESOLVED
        and t.error_path in _UNRESOLVED
        and not t.resource_limits
        and t.start_time is None
        and t.deadline_time is None
        and not t.submit_as_hold
    )


_UNRESOLVED = (None, *OWN_STREAMS)


def plan_job(template: JobTemplate, *, array: bool) -> Plan:
    """Check a template and resolve what is common to all its jobs.

    For a single job (``array`` False) everything is checked now, including the paths; for an
    array, index-dependent paths are checked when each task starts.
    """
    global _last_plan
    reusable = not array and _reusable(template)
    if reusable:
        last = _last_plan
        if (
            last is not None
            and last[0] == template
            and last[1] == os.getcwd()
            and last[2] == getattr(os.environ, "_data", None)
            and last[3] == _file_status(last[4].executable)
            # Its umask, limits and nice value as the job's start must have them now.
            and (last[4].settings is None or still_current(last[4].settings))
        ):
            return last[4]
    plan = _plan_job(template, array=array)
    if reusable:
        raw = getattr(os.environ, "_data", None)
        if isinstance(raw, dict):
            plan.template = template.copy()  # the plan must not change with the caller's
            status = _file_status(plan.executable)
            _last_plan = (plan.template.copy(), plan.submit_cwd, dict(raw), status, plan)
    return plan


def _file_status(path: str) -> tuple[int, ...]:
    """What decides whether a file is the same executable file: unchanged, an access check
    made on it still holds (chmod, chown and replacing it all change this)."""
    try:
        found = os.stat(path)
    except OSError:
        return ()
    return (
        found.st_dev,
        found.st_ino,
        found.st_mode,
        found.st_uid,
        found.st_gid,
        found.st_ctime_ns,
    )


def _plan_job(template: JobTemplate, *, array: bool) -> Plan:
    t = template
    _check_unsupported(t)
    _check_machine(t)
    submit_cwd = os.getcwd()
    env = _environment()
    for key, value in (t.job_environment or {}).items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise _invalid("job_environment", {key: value}, "not a valid environment variable")
        env[os.fsencode(key)] = os.fsencode(value)
    executable = find_executable(t, env, command_base(t, submit_cwd))
    priority = t.priority or 0
    if not 0 <= priority <= 19:
        raise _invalid("priority", t.priority, "must be a nice increment from 0 to 19")
    rlimits, wallclock = _limits(t)
    argv = [t.remote_command or executable, *(t.args or [])]
    stack = dict(rlimits).get(resource.RLIMIT_STACK, resource.getrlimit(resource.RLIMIT_STACK)[0])
    too_big = exec_size_problem(argv, env, t.job_environment or (), executable, stack)
    if too_big is not None:
        raise _invalid(*too_big)
    now = datetime.datetime.now(datetime.timezone.utc)
    if t.deadline_time is not None and t.deadline_time <= now:
        raise _invalid("deadline_time", t.deadline_time.isoformat(), "is in the past")
    plan = Plan(
        settings=client_settings(),
        streams={name: fd for fd, name in enumerate(OWN_STREAMS) if name in _used_streams(t)},
        # A single job's paths are resolved now, so only an array's tasks read the template
        # later: only they need a copy safe from the caller changing it.
        template=t.copy() if array else t,
        executable=executable,
        argv=argv,
        env=env,
        submit_cwd=submit_cwd,
        rlimits=rlimits,
        nice=priority,
        held=bool(t.submit_as_hold),
        start_at=_epoch(t.start_time),
        deadline=_epoch(t.deadline_time),
        wallclock_limit=wallclock,
        join_files=bool(t.join_files),
    )
    _check_paths_now(plan, array)
    return plan


def restore_plan(template: JobTemplate, document: dict[str, Any]) -> Plan:
    """The plan of a job submitted by an earlier process, from its stored template and launch
    document. Nothing raises here: what no longer works fails the job when it starts."""
    env = {os.fsencode(k): os.fsencode(v) for k, v in document["env"].items()}
    cwd: str = document["cwd"]
    try:
        executable = find_executable(template, env, cwd)
    except InvalidArgumentException:
        executable = template.remote_command or ""
    try:
        rlimits, wallclock = _limits(template)
    except InvalidArgumentException:
        rlimits, wallclock = [], None
    settings = document.get("settings")
    origins = document.get("streams")
    return Plan(
        settings=None if settings is None else ProcessSettings.from_wire(settings),
        origins=dict(origins) if isinstance(origins, dict) else {},
        template=template,
        executable=executable,
        argv=[template.remote_command or executable, *(template.args or [])],
        env=env,
        submit_cwd=cwd,
        rlimits=rlimits,
        nice=template.priority or 0,
        held=bool(template.submit_as_hold),
        start_at=_epoch(template.start_time),
        deadline=_epoch(template.deadline_time),
        wallclock_limit=wallclock,
        join_files=bool(template.join_files),
    )


def _used_streams(t: JobTemplate) -> set[str]:
    return {p for p in (t.input_path, t.output_path, t.error_path) if p in OWN_STREAMS}


def _check_paths_now(plan: Plan, array: bool) -> None:
    """Check at submission what does not depend on the task index."""
    t = plan.template
    try:
        if not array:
            plan.resolve(None)
            return
        # What depends on the task index is checked when each task starts; but a path too
        # long for the kernel even with the shortest index is refused now.
        check_lengths(t, plan.submit_cwd, 1)
        if t.working_directory is not None and PARAMETRIC_INDEX not in t.working_directory:
            cwd = plan._working_directory(None)
        elif t.working_directory is None:
            cwd = plan.submit_cwd
        else:
            return  # every path depends on the task's directory
        for name in ("input_path", "output_path", "error_path"):
            value = getattr(t, name)
            if value is not None and PARAMETRIC_INDEX not in value:
                plan._path(name, value, cwd, None)
    except LaunchError as error:
        raise InvalidArgumentException(f"JobTemplate: {error}") from None
