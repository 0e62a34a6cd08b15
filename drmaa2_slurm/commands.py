"""The small Slurm command core: sbatch, squeue, scontrol, scancel, sacct and sinfo, run with
argument lists (never through a shell) against one cluster's slurm.conf.

Every command gets a clean environment: the caller's ``SBATCH_*``, ``SLURM_*``, ``SQUEUE_*`` …
variables would change submissions and output formats, so they are removed, ``SLURM_CONF``
names the cluster and ``TZ`` is UTC, so that every time Slurm reads or prints is in UTC.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import subprocess
from collections.abc import Mapping, Sequence

from drmaa2.errors import DrmCommunicationException

__all__ = ["CommandResult", "Slurm", "clean_environment"]

#: Prefixes of variables that change what Slurm's commands do.
_SLURM_PREFIXES = (
    "SBATCH_",
    "SLURM_",
    "SQUEUE_",
    "SACCT_",
    "SINFO_",
    "SCANCEL_",
    "SCONTROL_",
    "SALLOC_",
    "SRUN_",
)
#: Fragments of Slurm's messages that mean the cluster cannot be reached.
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Could not establish a configuration source",
    "Connection refused",
    "Unable to establish control machine",
    "Zero Bytes were transmitted or received",
    "Socket timed out",
    "Communication connection failure",
    "Munge encode failed",
    "authentication error",
)
_log = logging.getLogger(__name__)
#: Seconds one Slurm command may take before the cluster counts as unreachable.
COMMAND_TIMEOUT = 60.0


def clean_environment(conf: str) -> dict[str, str]:
    """The environment Slurm's commands run with: the caller's, minus Slurm's option variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SLURM_PREFIXES)}
    env["SLURM_CONF"] = conf
    env["TZ"] = "UTC"
    return env


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a command returned."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """Slurm's message: its stderr, else stdout, on one line."""
        return " ".join((self.stderr.strip() or self.stdout.strip()).split())


class _MemoryFile:
    """An anonymous in-memory file (memfd) holding ``content``, read from its start; closed
    on leaving the ``with`` block. A command reads it like any file, and nothing of it is on
    disk or in ``ps``."""

    def __init__(self, name: str, content: bytes = b"") -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(self.fd, view) :]
            os.lseek(self.fd, 0, os.SEEK_SET)
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _contents(fd: int) -> bytes:
    """Everything written to the memory file ``fd``."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _execute(
    argv: Sequence[str], stdin: bytes | None, env: Mapping[str, str], pass_fds: Sequence[int]
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` to its end: (returncode, stdout, stderr); TimeoutExpired (the command
    killed) after :data:`COMMAND_TIMEOUT` seconds.

    stdin (empty when None: the command reads end of file), stdout and stderr are memory
    files rather than pipes, and the end is awaited on a pidfd: no reader loop, and none of
    the sleep-and-retry of ``subprocess.run(timeout=...)``, whose waitpid polling added about
    0.8 ms to every Slurm command.
    """
    with (
        _MemoryFile("drmaa2-slurm-stdin", stdin or b"") as source,
        _MemoryFile("drmaa2-slurm-stdout") as out,
        _MemoryFile("drmaa2-slurm-stderr") as err,
    ):
        process = subprocess.Popen(
            list(argv),
            stdin=source,
            stdout=out,
            stderr=err,
            env=env,
            pass_fds=tuple(pass_fds),
        )
        with process:
            pidfd = os.pidfd_open(process.pid)
            try:
                watch = select.poll()
                watch.register(pidfd, select.POLLIN)
                ended = watch.poll(COMMAND_TIMEOUT * 1000)
            finally:
                os.close(pidfd)
            if not ended:
                process.kill()
                process.wait()
                raise subprocess.TimeoutExpired(list(argv), COMMAND_TIMEOUT)
            returncode = process.wait()
        return returncode, _contents(out), _contents(err)


class Slurm:
    """The commands of one cluster, named by the path of its slurm.conf."""

    def __init__(self, conf: str) -> None:
        self.conf = conf
        self._env = clean_environment(conf)

    def run(
        self, argv: Sequence[str], *, stdin: bytes | None = None, pass_fds: Sequence[int] = ()
    ) -> CommandResult:
        """Run one command; DrmCommunicationException if it is missing, does not answer in
        :data:`COMMAND_TIMEOUT` seconds or the cluster is unreachable. Other failures come
        back as a non-zero returncode."""
        try:
            returncode, out, err = _execute(argv, stdin, self._env, pass_fds)
        except FileNotFoundError:
            raise DrmCommunicationException(
                f"Slurm's {argv[0]} is not installed (PATH={self._env.get('PATH', '')}); "
                f"install Slurm's client commands to use the cluster of {self.conf}"
            ) from None
        except subprocess.TimeoutExpired:
            raise DrmCommunicationException(
                f"{argv[0]} did not answer in {COMMAND_TIMEOUT:.0f} s: the Slurm cluster of "
                f"{self.conf} is not reachable"
            ) from None
        result = CommandResult(
            returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if result.returncode != 0 and any(text in result.stderr for text in _UNREACHABLE):
            raise DrmCommunicationException(
                f"the Slurm cluster of {self.conf} is not reachable: {argv[0]}: {result.message}"
            )
        return result

    def sbatch(
        self, options: Sequence[str], script: str, environment: Mapping[str, str]
    ) -> CommandResult:
        """Submit ``script`` (on sbatch's stdin) with exactly ``environment`` for the job.

        The environment goes through ``--export-file`` on an in-memory file: values with
        commas or newlines arrive intact, and nothing shows in ``ps``.
        """
        document = "".join(f"{key}={value}\0" for key, value in environment.items())
        with _MemoryFile("drmaa2-slurm-env", os.fsencode(document)) as fd:
            return self.run(
                ["sbatch", "--parsable", f"--export-file={fd}", *options],
                stdin=script.encode(),
                pass_fds=[fd],
            )

    def squeue(self, fields: Sequence[str], job_ids: Sequence[str] | None) -> list[list[str]]:
        """Rows of ``squeue -O fields`` for these Slurm job ids (None: every job), array tasks
        expanded, finished jobs included. Unknown ids are left out."""
        fmt = ",".join(f"{name}:\x1f" for name in fields[:-1]) + f",{fields[-1]}:\x1e"
        argv = ["squeue", "-h", "-r", "-t", "all", "-O", fmt]
        if job_ids is not None:
            if not job_ids:
                return []
            argv += ["-j", ",".join(job_ids)]
        result = self.run(argv)
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return []
            raise DrmCommunicationException(f"squeue failed on {self.conf}: {result.message}")
        rows = []
        for record in result.stdout.split("\x1e\n"):
            if record:
                # The last field (a name) keeps any separator it holds.
                row = record.split("\x1f", len(fields) - 1)
                if len(row) != len(fields):
                    _log.warning(
                        "drmaa2 slurm: squeue on %s printed a row of %d fields instead of %d, "
                        "left out: %r",
                        self.conf,
                        len(row),
                        len(fields),
                        record,
                    )
                    continue
                rows.append(row)
        return rows

    def scontrol(self, *args: str) -> CommandResult:
        """``scontrol ARGS``."""
        return self.run(["scontrol", *args])

    def scancel(self, *args: str) -> CommandResult:
        """``scancel ARGS``."""
        return self.run(["scancel", *args])

    def sacct(self, fields: Sequence[str], job_ids: Sequence[str]) -> list[list[str]]:
        """Rows of ``sacct -P`` (job and step lines), fields separated by \\x1f (the last
        field keeps any it holds); [] when accounting is not there."""
        result = self.run(
            [
                "sacct",
                "-n",
                "-P",
                "--delimiter=\x1f",
                "-o",
                ",".join(fields),
                "-j",
                ",".join(job_ids),
            ]
        )
        if result.returncode != 0:
            return []
        return [line.split("\x1f", len(fields) - 1) for line in result.stdout.splitlines() if line]

    def sinfo(self, fmt: str) -> list[list[str]]:
        """Rows of ``sinfo -h -o FMT`` with fields separated by \\x1f."""
        result = self.run(["sinfo", "-h", "-o", fmt])
        if result.returncode != 0:
            raise DrmCommunicationException(f"sinfo failed on {self.conf}: {result.message}")
        return [line.split("\x1f") for line in result.stdout.splitlines() if line]
