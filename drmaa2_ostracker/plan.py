"""A checked job template as the keeper starts it: the plan, its wire and stored forms.

A :class:`Plan` is made by :func:`drmaa2_ostracker.template.plan_job` in the submitting
process, sent to the keeper (:meth:`Plan.to_wire`, :func:`plan_from_wire`) and resolved there
for each job or array task when it starts (:meth:`Plan.launch_spec`): the paths that depend on
a task's index, and their placeholders, are checked then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import stat
from typing import Any

from drmaa2.enums import HOME_DIR, PARAMETRIC_INDEX, WORKING_DIR
from drmaa2.errors import InvalidArgumentException
from drmaa2.types import JobTemplate
from drmaa2_ostracker.limits import (
    path_length_problem,
    shortened,
    shown,
    stream_file_problem,
)
from drmaa2_ostracker.process import LaunchSpec
from drmaa2_ostracker.process.forkexec import encode_command
from drmaa2_ostracker.process.origins import origin_of
from drmaa2_ostracker.process.settings import ProcessSettings
from drmaa2_ostracker.store.records import template_document
from drmaa2_ostracker.supervisor import Group, LaunchError

__all__ = [
    "OWN_STREAMS",
    "Plan",
    "check_length",
    "check_lengths",
    "close_streams",
    "launch_document",
    "plan_from_wire",
    "substitute",
]

#: Stream paths that stand for the submitting process's own stdin, stdout and stderr.
OWN_STREAMS = ("/dev/stdin", "/dev/stdout", "/dev/stderr")


@dataclasses.dataclass
class Plan:
    """A checked template: what is the same for every task, and what each task resolves."""

    template: JobTemplate
    executable: str
    argv: list[str]
    #: Environment at submission plus job_environment (JOB_ID / TASK_ID added per job), as
    #: bytes: that is what exec takes, and copying it costs nothing.
    env: dict[bytes, bytes]
    #: The caller's working directory at submission (the default, and the base of
    #: relative paths).
    submit_cwd: str
    rlimits: list[tuple[int, int]]
    nice: int
    held: bool
    start_at: float | None
    deadline: float | None
    wallclock_limit: float | None
    join_files: bool = False
    #: A single job's directory and paths, resolved and checked at submission.
    _resolved: tuple[str, dict[str, str | None]] | None = None
    #: The template as stored (see :func:`~drmaa2_ostracker.store.template_document`).
    _document: str | None = None
    #: The launch group its single jobs share (they have no limit in common: one serves all).
    single_group: Group | None = None
    #: :attr:`env` as exec takes it (``K=V``), without JOB_ID and TASK_ID: made once.
    _env_list: list[bytes] | None = None
    #: :attr:`argv` and :attr:`executable` as exec takes them: made once.
    _encoded: tuple[list[bytes], bytes] | None = None
    #: The submitting process's umask, limits and nice value (None: the keeper's own).
    settings: ProcessSettings | None = None
    #: The descriptors standing for "/dev/stdin", "/dev/stdout", "/dev/stderr": the
    #: submitting process's own streams (in the keeper: received with the job).
    streams: dict[str, int] = dataclasses.field(default_factory=dict)
    #: (the client, the token, the keeper's pid) by which that keeper knows this plan, once
    #: it was sent.
    keeper_token: tuple[object, int, int | None] | None = None
    #: In the keeper: how many of the plan's jobs are still to start; the descriptors of
    #: :attr:`streams` are closed once the last has (a client's stream reaches its end when
    #: its jobs are done with it, not when the keeper exits).
    unlaunched: int | None = None
    #: In the keeper: the pid of the client that sent :attr:`streams` (for their origins).
    submitter: int | None = None
    #: In the keeper: what of the submitter's own limits and nice value it cannot give
    #: (see :func:`~drmaa2_ostracker.process.settings.beyond_keeper`), once looked at.
    beyond: list[str] | None = None
    #: A plan restored from the store: where each of the submitting process's streams came
    #: from, to open it again (see :mod:`~drmaa2_ostracker.process.origins`); else None.
    origins: dict[str, dict[str, Any]] | None = None

    def release_streams(self) -> None:
        """Close the descriptors of :attr:`streams` (in the keeper: they were received)."""
        close_streams(self.streams)

    def _launched(self) -> None:
        if self.unlaunched is not None:
            self.unlaunched -= 1
            if self.unlaunched <= 0:
                self.release_streams()

    def to_wire(self) -> dict[str, Any]:
        """The plan as plain data, for the keeper (see :func:`plan_from_wire`)."""
        return {
            "template": self.document,
            "executable": self.executable,
            "argv": self.argv,
            "env": self.env,
            "cwd": self.submit_cwd,
            "rlimits": self.rlimits,
            "nice": self.nice,
            "held": self.held,
            "start_at": self.start_at,
            "deadline": self.deadline,
            "wallclock": self.wallclock_limit,
            "join": self.join_files,
            "resolved": self._resolved,
            "settings": None if self.settings is None else self.settings.to_wire(),
            "streams": sorted(self.streams),
        }

    def stream_fds(self) -> list[int]:
        """The descriptors of :attr:`streams`, in the order :meth:`to_wire` names them;
        InvalidArgumentException naming the field if one of them is closed here."""
        if not self.streams:
            return []
        fds = [self.streams[name] for name in sorted(self.streams)]
        for name, fd in zip(sorted(self.streams), fds, strict=True):
            try:
                fcntl.fcntl(fd, fcntl.F_GETFD)
            except OSError:
                fields = [
                    field
                    for field in ("input_path", "output_path", "error_path")
                    if getattr(self.template, field) == name
                ]
                raise InvalidArgumentException(
                    f"{'/'.join(fields)} {name}: this process's {name[5:]} is closed"
                ) from None
        return fds

    @property
    def document(self) -> str:
        """The template as stored, made once per plan."""
        if self._document is None:
            self._document = template_document(self.template)
        return self._document

    def resolve(self, index: int | None) -> tuple[str, dict[str, str | None]]:
        """The working directory and stream paths of a job; LaunchError if unusable."""
        if index is None and self._resolved is not None:
            # Checked at submission; but an output may have become the input since (a hard
            # link made meanwhile), and starting the job would empty it.
            _check_streams(self._resolved[1], self.join_files)
            return self._resolved
        template = self.template
        cwd = self._working_directory(index)
        paths = {
            name: self._path(name, getattr(template, name), cwd, index)
            for name in ("input_path", "output_path", "error_path")
        }
        _check_streams(paths, self.join_files)
        if index is None:
            self._resolved = (cwd, paths)
        return cwd, paths

    def launch_spec(self, job_id: str, index: int | None) -> LaunchSpec:
        """The spec of one job or task; LaunchError names what stands in the way."""
        cwd, paths = self.resolve(index)
        env = dict(self.env)
        own = [b"JOB_ID=" + job_id.encode()]
        env[b"JOB_ID"] = job_id.encode()
        if index is not None:
            env[b"TASK_ID"] = str(index).encode()
            own.append(b"TASK_ID=" + env[b"TASK_ID"])
        else:  # a single job is no task, whatever it was given
            env.pop(b"TASK_ID", None)
        if self._env_list is None:
            self._env_list = [
                key + b"=" + value
                for key, value in self.env.items()
                if key not in (b"JOB_ID", b"TASK_ID")
            ]
        if self._encoded is None:
            self._encoded = encode_command(self.argv, self.executable)
        return LaunchSpec(
            env_list=[*self._env_list, *own],
            encoded=self._encoded,
            settings=self.settings,
            streams=self.streams,
            origins=self.origins,
            launched=self._launched if self.unlaunched is not None else None,
            executable=self.executable,
            argv=self.argv,
            cwd=cwd,
            env=env,
            input_path=paths["input_path"],
            output_path=paths["output_path"],
            error_path=paths["error_path"],
            join_files=self.join_files,
            rlimits=self.rlimits,
            nice=self.nice,
        )

    def _working_directory(self, index: int | None) -> str:
        value = self.template.working_directory
        if value is None:
            return self.submit_cwd
        resolved = substitute(value, "working_directory", self.submit_cwd, index, allow_wd=False)
        resolved = os.path.normpath(os.path.join(self.submit_cwd, resolved))
        check_length("working_directory", value, resolved)
        if not os.path.isdir(resolved):
            raise LaunchError(
                f"working_directory {_where(value, resolved)} is not an existing directory"
            )
        return resolved

    def _path(self, name: str, value: str | None, cwd: str, index: int | None) -> str | None:
        if value is None or value in OWN_STREAMS:
            return value
        resolved = substitute(value, name, cwd, index, allow_wd=True)
        resolved = os.path.normpath(os.path.join(cwd, resolved))
        check_length(name, value, resolved)
        where = _where(value, resolved)
        problem = stream_file_problem(resolved, reading=name == "input_path")
        if problem is not None:
            raise LaunchError(f"{name} {where} {problem}")
        if name == "input_path":
            if not os.path.exists(resolved):
                raise LaunchError(f"{name} {where} is not an existing file")
            if not os.access(resolved, os.R_OK):
                raise LaunchError(f"{name} {where} is not readable")
            return resolved
        parent = os.path.dirname(resolved) or "/"
        if not os.path.isdir(parent):
            raise LaunchError(f"{name} {shown(value)}: the directory {parent} does not exist")
        target = resolved if os.path.exists(resolved) else parent
        if not os.access(target, os.W_OK):
            raise LaunchError(f"{name} {where} is not writable")
        return resolved


def check_length(name: str, value: str, resolved: str) -> None:
    """LaunchError if the kernel would refuse the path ``resolved`` of the template field
    ``name`` (given as ``value``) as too long."""
    problem = path_length_problem(resolved)
    if problem is not None:
        raise LaunchError(f"{name} {_where(value, resolved)}: {problem}")


def check_lengths(template: JobTemplate, submit_cwd: str, index: int) -> None:
    """LaunchError if a path of the template's task ``index`` (remote_command,
    working_directory, the stream paths) is too long for the kernel; nothing else is checked."""
    t = template
    cwd = submit_cwd
    if t.working_directory is not None:
        value = substitute(t.working_directory, "working_directory", cwd, index, allow_wd=False)
        cwd = os.path.normpath(os.path.join(cwd, value))
        check_length("working_directory", t.working_directory, cwd)
    command = t.remote_command or ""
    if "/" in command:
        check_length("remote_command", command, os.path.normpath(os.path.join(cwd, command)))
    for name in ("input_path", "output_path", "error_path"):
        value = getattr(t, name)
        if value is not None and value not in OWN_STREAMS:
            path = substitute(value, name, cwd, index, allow_wd=True)
            check_length(name, value, os.path.normpath(os.path.join(cwd, path)))


def _where(value: str, resolved: str) -> str:
    """A path field's value, and what it resolved to if that differs."""
    if resolved == value:
        return shown(value)
    return f"{shown(value)} ({shortened(resolved)})"


def _check_streams(paths: dict[str, str | None], join: bool) -> None:
    """LaunchError if an output file of the job is its input file, by whatever name (a hard
    link too): opening it for writing would truncate the input."""
    source = paths["input_path"]
    if source is None or source in OWN_STREAMS:
        return
    try:
        found = os.stat(source)
    except OSError:
        return  # no input to lose; opening it fails the job
    if not stat.S_ISREG(found.st_mode):
        return  # a device (/dev/null, say) may well be read and written by one job
    for name in ("output_path",) if join else ("output_path", "error_path"):
        target = paths[name]
        if target is None or target in OWN_STREAMS:
            continue
        try:
            other = os.stat(target)
        except OSError:
            continue  # not there: a new file
        if (other.st_dev, other.st_ino) == (found.st_dev, found.st_ino):
            names = source if target == source else f"{source} and {target}"
            raise LaunchError(
                f"input_path and {name} are the same file ({names}): the job would read "
                f"what it writes, and opening it for writing would empty it"
            )


def substitute(value: str, name: str, cwd: str, index: int | None, *, allow_wd: bool) -> str:
    """``value`` of the template field ``name`` with its placeholders replaced (the task's
    index, the home directory, with ``allow_wd`` the working directory ``cwd``); LaunchError
    if one cannot be."""
    if PARAMETRIC_INDEX in value:
        if index is None:
            raise LaunchError(
                f"{name} {value!r}: {PARAMETRIC_INDEX} is only defined for array tasks"
            )
        value = value.replace(PARAMETRIC_INDEX, str(index))
    if HOME_DIR in value:
        value = value.replace(HOME_DIR, os.path.expanduser("~"))
    if WORKING_DIR in value:
        if not allow_wd:
            raise LaunchError(f"{name} {value!r}: {WORKING_DIR} cannot be used in itself")
        value = value.replace(WORKING_DIR, cwd)
    return value


def close_streams(streams: dict[str, int]) -> None:
    """Close the descriptors of a plan's streams, and forget them (so, never twice)."""
    fds = list(streams.values())
    streams.clear()
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def launch_document(plan: Plan) -> dict[str, Any]:
    """What must be stored for a job that starts later (e.g. after a restart)."""
    env = {os.fsdecode(k): os.fsdecode(v) for k, v in plan.env.items()}
    document: dict[str, Any] = {"env": env, "cwd": plan.submit_cwd}
    if plan.streams:  # to open them again if the keeper holding them is gone by then
        document["streams"] = {
            name: origin_of(name, fd, plan.submitter) for name, fd in plan.streams.items()
        }
    if plan.settings is not None:
        umask, rlimits, nice = plan.settings.to_wire()
        document["settings"] = [umask, [list(r) for r in rlimits], nice]
    return document


def plan_from_wire(value: dict[str, Any], fds: list[int]) -> Plan:
    """The plan a client sent (:meth:`Plan.to_wire`), with the descriptors that came with it.

    The client checked it; what no longer holds when a job starts fails that job.
    """
    template = JobTemplate.from_json(value["template"])
    names = list(value["streams"])
    if len(names) != len(fds):
        raise InvalidArgumentException(
            f"the job's streams {names} came with {len(fds)} descriptor(s)"
        )
    resolved = value["resolved"]
    settings = value["settings"]
    return Plan(
        template=template,
        executable=value["executable"],
        argv=list(value["argv"]),
        env=dict(value["env"]),
        submit_cwd=value["cwd"],
        rlimits=[(int(w), int(v)) for w, v in value["rlimits"]],
        nice=int(value["nice"]),
        held=bool(value["held"]),
        start_at=value["start_at"],
        deadline=value["deadline"],
        wallclock_limit=value["wallclock"],
        join_files=bool(value["join"]),
        _resolved=None if resolved is None else (resolved[0], dict(resolved[1])),
        _document=value["template"],
        settings=None if settings is None else ProcessSettings.from_wire(settings),
        streams=dict(zip(names, fds, strict=True)),
    )
