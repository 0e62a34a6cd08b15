"""``drmaa2 jobs`` and ``drmaa2 info``: what a session knows about its jobs."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TextIO

import drmaa2
from drmaa2.cli.errors import EXIT_OK
from drmaa2.cli.output import duration, number, print_json, size, table
from drmaa2.cli.parser import DEFAULT_SESSION, Commands
from drmaa2.cli.targets import find, infos_of, jobs_of, open_session

# Extension keys read by name, so the CLI depends on no backend package: the os backend's
# (getrusage's name) and the slurm backend's (sacct's MaxRSS), both KiB.
_MAX_RSS_KIB = ("ru_maxrss", "max_rss")

#: The states a job of these backends can be in (not uge-drmaa2's UNSET_JSTATE and
#: RUNNING_HELD, which no backend here reports).
_STATES = {
    state.name: state
    for state in drmaa2.JobState
    if state not in (drmaa2.JobState.UNSET_JSTATE, drmaa2.JobState.RUNNING_HELD)
}
_STATE_NAMES = ", ".join(_STATES)


def register(commands: Commands) -> None:
    """Add ``jobs`` and ``info``."""
    jobs = commands.add(
        "jobs",
        _jobs,
        "list the jobs of a session (a table, or JSON)",
        in_session=True,
        as_json=True,
    )
    jobs.add_argument("--state", metavar="STATE", type=_state_arg, help=f"only: {_STATE_NAMES}")

    info = commands.add(
        "info", _info, "show everything known about a job", in_session=True, as_json=True
    )
    info.add_argument("job", metavar="JOB", help="job id, array task id (3.2) or array id")


def _state_arg(text: str) -> drmaa2.JobState:
    state = _STATES.get(text.upper())
    if state is None:
        raise argparse.ArgumentTypeError(
            f"unknown job state {text!r}; expected one of {_STATE_NAMES}"
        )
    return state


def _jobs(args: argparse.Namespace, out: TextIO) -> int:
    infos: list[drmaa2.JobInfo] = []
    never_used = args.session == DEFAULT_SESSION and DEFAULT_SESSION not in (
        drmaa2.get_job_session_names(args.contact, backend=args.backend)
    )
    if not never_used:
        with open_session(args) as session:
            job_filter = None if args.state is None else {"job_state": args.state.name}
            infos = infos_of(session, session.get_jobs(job_filter))
    if args.json:
        print_json(out, [info.to_dict() for info in infos])
        return EXIT_OK
    headers = ["ID", "NAME", "STATE", "EXIT", "SIGNAL", "WALLCLOCK", "MAXRSS"]
    table(out, headers, [_job_row(info) for info in infos], right=(3, 5, 6))
    return EXIT_OK


def _job_row(info: drmaa2.JobInfo) -> list[str]:
    state = info.job_state.name if info.job_state is not None else "-"
    extension = info.implementation_specific or {}
    rss = next((number(extension[key]) for key in _MAX_RSS_KIB if key in extension), None)
    return [
        info.job_id or "-",
        info.job_name or "-",
        state,
        "-" if info.exit_status is None else str(info.exit_status),
        info.terminating_signal or "-",
        duration(info.wallclock_time),
        size(rss),
    ]


def _info(args: argparse.Namespace, out: TextIO) -> int:
    with open_session(args) as session:
        target = find(session, args.job)
        infos = infos_of(session, jobs_of(target))
    if args.json:
        data = [info.to_dict() for info in infos]
        print_json(out, data if isinstance(target, drmaa2.JobArray) else data[0])
        return EXIT_OK
    for index, info in enumerate(infos):
        if index:
            out.write("\n")
        rows = list(_info_rows(info))
        width = max(len(key) for key, _ in rows) + 1
        for key, text in rows:
            out.write(f"{key + ':':<{width}} {text}".rstrip() + "\n")
    return EXIT_OK


def _info_rows(info: drmaa2.JobInfo) -> Iterator[tuple[str, str]]:
    """``(field, text)`` for each JobInfo field, then each implementation-specific key."""
    data = info.to_dict()
    for key, value in data.items():
        if key == "implementation_specific":
            continue
        if key == "wallclock_time":
            text = duration(info.wallclock_time)
        elif value is None or value == "":
            text = "-"
        elif isinstance(value, list):
            text = ", ".join(map(str, value)) or "-"
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        yield key, text
    extension = info.implementation_specific or {}
    yield "implementation_specific", "" if extension else "-"
    for key, value in sorted(extension.items()):
        yield f"  {key}", value
