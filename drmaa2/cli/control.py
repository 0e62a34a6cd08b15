"""``drmaa2 suspend|resume|hold|release|terminate|reap``: job control, one command each."""

from __future__ import annotations

import argparse
from typing import TextIO

from drmaa2.cli.errors import EXIT_ERROR, EXIT_OK, print_error
from drmaa2.cli.parser import Commands
from drmaa2.cli.targets import act_on, open_session

#: Each control command: its name (the Job and JobArray method it calls) and what it does.
ACTIONS = {
    "suspend": "stop running jobs (SUSPENDED) until they are resumed",
    "resume": "continue suspended jobs",
    "hold": "keep queued jobs from starting (QUEUED_HELD)",
    "release": "let held jobs start",
    "terminate": "end jobs (queued ones end without starting)",
    "reap": "forget finished jobs (afterwards they are unknown)",
}


def register(commands: Commands) -> None:
    """Add one command per control action."""
    for action, summary in ACTIONS.items():
        control = commands.add(action, _control, summary, in_session=True)
        control.add_argument("jobs", metavar="JOB", nargs="+", help="job, task or array ids")
        control.set_defaults(action=action)


def _control(args: argparse.Namespace, out: TextIO) -> int:
    """Act on every id named (an error for one does not stop the others); each error is one
    line, and the exit status 1 if there was any."""
    with open_session(args) as session:
        errors = act_on(session, args.action, args.jobs)
    for error in errors:
        if error is not None:
            print_error(error)
    return EXIT_ERROR if any(error is not None for error in errors) else EXIT_OK
