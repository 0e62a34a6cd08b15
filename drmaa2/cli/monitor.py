"""``drmaa2 ps`` and ``drmaa2 machines``: what a monitoring session sees of the machine."""

from __future__ import annotations

import argparse
import contextlib
import math
from typing import Any, TextIO

import drmaa2
from drmaa2.cli.errors import EXIT_OK
from drmaa2.cli.output import number, print_json, size, table
from drmaa2.cli.parser import Commands

# Extension keys read by name, so the CLI depends on no backend package.
_CPU_USAGE = "cpu_usage"
_MEMORY_RSS = "memory_usage_rss"
_PROCESS_NAME = "name"
_COMMAND_LINE = "commandline"


def register(commands: Commands) -> None:
    """Add ``ps`` and ``machines``."""
    ps = commands.add("ps", _ps, "list the machine's processes (monitoring session)", as_json=True)
    ps.add_argument("--user", "-u", metavar="U", help="only processes of this user")
    ps.add_argument("--sort", choices=("cpu", "mem"), help="largest first by CPU or memory")

    commands.add("machines", _machines, "list the machines (monitoring session)", as_json=True)


def _process(info: drmaa2.JobInfo) -> dict[str, Any]:
    """One ``ps --json`` object: its keys are documented in docs/cli.md."""
    ext = info.implementation_specific or {}
    rss = number(ext.get(_MEMORY_RSS))
    return {
        "job_id": info.job_id,
        "user": info.job_owner,
        "state": None if info.job_state is None else info.job_state.name,
        "sub_state": info.job_sub_state,
        "cpu_percent": number(ext.get(_CPU_USAGE)),
        "rss_bytes": None if rss is None else int(rss),
        "name": ext.get(_PROCESS_NAME, info.job_name),
        "command": ext.get(_COMMAND_LINE),
    }


def _ps(args: argparse.Namespace, out: TextIO) -> int:
    job_filter = None if args.user is None else {"job_owner": args.user}
    with drmaa2.open_monitoring_session(None, args.contact, backend=args.backend) as monitor:
        processes = []
        for job in monitor.get_all_jobs(job_filter):
            with contextlib.suppress(drmaa2.InvalidArgumentException):  # ended meanwhile
                processes.append(_process(job.get_info()))
    key = {"cpu": "cpu_percent", "mem": "rss_bytes"}.get(args.sort or "")
    if key is None:
        processes.sort(key=lambda p: (len(p["job_id"] or ""), p["job_id"] or ""))
    else:
        processes.sort(key=lambda p: -1 if p[key] is None else p[key], reverse=True)
    if args.json:
        print_json(out, processes)
        return EXIT_OK
    rows = [
        [
            p["job_id"] or "-",
            p["user"] or "-",
            p["sub_state"] or p["state"] or "-",
            "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}",
            size(None if p["rss_bytes"] is None else p["rss_bytes"] / 1024),
            p["name"] or "-",
            p["command"] or "-",
        ]
        for p in processes
    ]
    table(out, ["PID", "USER", "STATE", "%CPU", "RSS", "NAME", "COMMAND"], rows, right=(0, 3, 4))
    return EXIT_OK


def _machines(args: argparse.Namespace, out: TextIO) -> int:
    with drmaa2.open_monitoring_session(None, args.contact, backend=args.backend) as monitor:
        machines = monitor.get_all_machines()
    if args.json:
        print_json(out, [machine.to_dict() for machine in machines])
        return EXIT_OK
    rows = []
    for m in machines:
        topology = (m.sockets, m.cores_per_socket, m.threads_per_core)
        cpus = "-" if None in topology else str(math.prod(n for n in topology if n is not None))
        rows.append(
            [
                m.name or "-",
                {True: "yes", False: "no", None: "-"}[m.available],
                cpus,
                "-" if m.load is None else f"{m.load:.2f}",
                size(m.phys_memory),
                size(m.virt_memory),
                "-" if m.architecture is None else m.architecture.name,
                "-" if m.os is None else m.os.name,
                "-" if m.os_version is None else str(m.os_version),
            ]
        )
    headers = ["NAME", "AVAILABLE", "CPUS", "LOAD", "MEMORY", "VIRTUAL", "ARCH", "OS", "VERSION"]
    table(out, headers, rows, right=(2, 3, 4, 5))
    return EXIT_OK
