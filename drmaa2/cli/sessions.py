"""``drmaa2 sessions`` and ``drmaa2 destroy``: the job sessions themselves."""

from __future__ import annotations

import argparse
from typing import TextIO

import drmaa2
from drmaa2.cli.errors import EXIT_OK
from drmaa2.cli.output import print_json
from drmaa2.cli.parser import Commands, session_name


def register(commands: Commands) -> None:
    """Add ``sessions`` and ``destroy``."""
    commands.add("sessions", _sessions, "list the job sessions", as_json=True)
    destroy = commands.add("destroy", _destroy, "forget a job session and its jobs' records")
    destroy.add_argument(
        "name", metavar="SESSION", type=session_name, help="the job session to forget"
    )


def _sessions(args: argparse.Namespace, out: TextIO) -> int:
    names = drmaa2.get_job_session_names(args.contact, backend=args.backend)
    if args.json:
        print_json(out, names)
    else:
        out.writelines(name + "\n" for name in names)
    return EXIT_OK


def _destroy(args: argparse.Namespace, out: TextIO) -> int:
    drmaa2.destroy_job_session(args.name, args.contact, backend=args.backend)
    return EXIT_OK
