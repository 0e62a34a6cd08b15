"""``drmaa2 run``: submit a job or a job array, print its id, and optionally wait for it."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, TextIO

import drmaa2
from drmaa2.cli.errors import EXIT_INTERRUPTED, EXIT_OK, PROG, UsageError
from drmaa2.cli.parser import Commands
from drmaa2.cli.targets import find
from drmaa2.cli.wait import wait_for
from drmaa2.types import INT_MAX

_LIMIT_NAMES = ", ".join(limit.name for limit in drmaa2.ResourceLimit)

_EPILOG = """\
examples:
  drmaa2 run -- sleep 60
  drmaa2 run --wait --output out.txt -- ./build.sh --fast
  drmaa2 run --array 1-100 --max-parallel 4 --wait -o 'log.$DRMAA2_INDEX$' -- sh -c 'work $TASK_ID'

The job starts from this shell's environment, directory, umask and limits; with the os
backend its parent is the state directory's keeper, so it goes on after this command exits."""


def register(commands: Commands) -> None:
    """Add ``run``."""
    run = commands.add(
        "run",
        _run,
        "submit a job or job array and print its id",
        in_session=True,
        epilog=_EPILOG,
    )
    run.add_argument("--name", "-N", metavar="N", help="job name")
    run.add_argument(
        "--array",
        "-a",
        metavar="BEGIN-END[:STEP]",
        type=_array_arg,
        help="submit a job array; each task gets $TASK_ID, and $DRMAA2_INDEX$ in paths "
        "is replaced by its index",
    )
    run.add_argument(
        "--max-parallel", metavar="N", type=_positive_int, help="run at most N tasks at once"
    )
    run.add_argument("--cwd", metavar="DIR", help="working directory (default: the current one)")
    run.add_argument(
        "--env",
        "-e",
        metavar="K=V",
        action="append",
        type=_env_arg,
        help="set an environment variable (repeatable); the job inherits this shell's too",
    )
    run.add_argument("--output", "-o", metavar="PATH", help="file for the job's stdout")
    run.add_argument("--error", metavar="PATH", help="file for the job's stderr")
    run.add_argument("--join", "-j", action="store_true", help="send stderr to --output too")
    run.add_argument("--input", "-i", metavar="PATH", help="file for the job's stdin")
    run.add_argument("--hold", action="store_true", help="submit held (start with 'release')")
    run.add_argument(
        "--limit",
        "-l",
        metavar="NAME=VALUE",
        action="append",
        type=_limit_arg,
        help=f"resource limit (repeatable; sizes in KiB, times in seconds): {_LIMIT_NAMES}",
    )
    run.add_argument(
        "--wait",
        "-w",
        action="store_true",
        help="wait and exit with the job's exit status (array: 0 only if every task is "
        "DONE); shows progress on a terminal",
    )
    run.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]", help="what to run"
    )


def _run(args: argparse.Namespace, out: TextIO) -> int:
    template = _template(args)
    _refuse_unreachable_paths(
        {"--output": args.output, "--error": args.error, "--input": args.input}
    )
    # Create-or-open, so that the session exists for whoever submits to it.
    session = drmaa2.JobSession(
        args.session, args.contact, destroy_on_exit=False, backend=args.backend
    )
    with session:
        if args.array is None:
            job_id = session.run_job(template).id
        else:
            begin, end, step = args.array
            job_id = session.run_bulk_jobs(template, begin, end, step, args.max_parallel).id
        try:
            out.write(job_id + "\n")
            out.flush()
            if not args.wait:
                return EXIT_OK
            target = session.get_job_array(job_id) if args.array else find(session, job_id)
            return wait_for(session, [target], None, out)
        except KeyboardInterrupt:
            sys.stderr.write(
                f"{PROG}: interrupted; job {job_id} keeps running "
                f"('{PROG} terminate {job_id}' ends it)\n"
            )
            return EXIT_INTERRUPTED


def _refuse_unreachable_paths(paths: dict[str, str | None]) -> None:
    """UsageError for a path that names this process's terminal or descriptors by a name the
    job cannot reach: the job does not run on this terminal. (/dev/stdin, /dev/stdout and
    /dev/stderr work: they are this command's own streams, handed to the job.)"""
    for option, path in paths.items():
        if path is not None and (path == "/dev/tty" or path.startswith("/dev/fd/")):
            what = "this terminal" if path == "/dev/tty" else "this command's descriptors"
            raise UsageError(
                f"{option} {path}: the job cannot reach {what} (it is started by the keeper, "
                f"not by this command); give a file, or /dev/stdin, /dev/stdout, /dev/stderr "
                f"for this command's own streams"
            )


def _template(args: argparse.Namespace) -> dict[str, Any]:
    """The JobTemplate, as a dict, that the options describe."""
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command or not command[0]:  # (an empty word is no command either)
        raise UsageError("a command to run is required: drmaa2 run [OPTIONS] -- COMMAND [ARG...]")
    if args.max_parallel is not None and args.array is None:
        raise UsageError("--max-parallel needs --array")
    template: dict[str, Any] = {"remote_command": command[0], "args": command[1:]}
    optional = {
        "job_name": args.name,
        "working_directory": args.cwd,
        "output_path": args.output,
        "error_path": args.error,
        "input_path": args.input,
        "join_files": True if args.join else None,
        "submit_as_hold": True if args.hold else None,
        "job_environment": dict(args.env) if args.env else None,
        "resource_limits": dict(args.limit) if args.limit else None,
    }
    template.update({key: value for key, value in optional.items() if value is not None})
    return template


def _key_value(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected {what}=VALUE, got {text!r}")
    return key, value


def _env_arg(text: str) -> tuple[str, str]:
    """``K=V`` of ``--env``."""
    return _key_value(text, "NAME")


def _limit_arg(text: str) -> tuple[str, int | float]:
    """``NAME=VALUE`` of ``--limit``: a ResourceLimit name (any case) and a number."""
    name, value = _key_value(text, "LIMIT")
    limit = drmaa2.ResourceLimit.__members__.get(name.upper())
    if limit is None:
        raise argparse.ArgumentTypeError(
            f"unknown resource limit {name!r} in {text!r}; expected one of {_LIMIT_NAMES}"
        )
    amount: int | float
    try:
        amount = int(value)
    except ValueError:
        try:
            amount = float(value)
        except ValueError:
            amount = -1
    if not (math.isfinite(amount) and 0 <= amount <= INT_MAX):
        raise argparse.ArgumentTypeError(
            f"the value of {limit.name} must be a non-negative number up to 2**63 - 1 "
            f"(KiB or seconds), got {value!r}"
        )
    return limit.name, amount


def _array_arg(text: str) -> tuple[int, int, int]:
    """``BEGIN-END[:STEP]`` of ``--array``."""
    span, _, step_text = text.partition(":")
    begin_text, dash, end_text = span.partition("-")
    try:
        begin, end = int(begin_text), int(end_text)
        step = int(step_text) if step_text else 1
    except ValueError:
        begin = end = step = 0
    if not dash or begin < 1 or end < begin or step < 1 or max(end, step) > INT_MAX:
        raise argparse.ArgumentTypeError(
            f"expected BEGIN-END[:STEP] with 1 <= BEGIN <= END <= 2**63 - 1 and "
            f"1 <= STEP <= 2**63 - 1, got {text!r}"
        )
    return begin, end, step


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= INT_MAX:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to 2**63 - 1, got {text!r}"
        )
    return value
