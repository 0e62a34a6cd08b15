"""``drmaa2 ps`` and ``drmaa2 machines``."""

from __future__ import annotations

import os

import psutil

import drmaa2
from tests.cli.conftest import Cli

PS_KEYS = {"job_id", "user", "state", "sub_state", "cpu_percent", "rss_bytes", "name", "command"}


def test_ps_shows_a_running_job(cli: Cli) -> None:
    job_id = cli.run("--", "sleep", "61")
    pid = cli.info(job_id)["implementation_specific"]["pid"]
    processes = cli.json("ps")
    assert isinstance(processes, list)
    assert all(set(p) == PS_KEYS for p in processes)
    (mine,) = [p for p in processes if p["job_id"] == pid]
    assert mine["name"] == "sleep" and mine["command"] == "sleep 61"
    assert mine["state"] == "RUNNING" and mine["user"] == psutil.Process().username()
    assert isinstance(mine["rss_bytes"], int) and isinstance(mine["cpu_percent"], float)
    table = cli.ok("ps").splitlines()
    assert table[0].split() == ["PID", "USER", "STATE", "%CPU", "RSS", "NAME", "COMMAND"]
    assert any(line.split()[0] == pid and line.endswith("sleep 61") for line in table[1:])
    cli.ok("terminate", job_id)


def test_ps_user_filter_and_sort(cli: Cli) -> None:
    me = psutil.Process().username()
    mine = cli.json("ps", "--user", me)
    assert isinstance(mine, list) and mine and {p["user"] for p in mine} == {me}
    assert cli.json("ps", "--user", "no-such-user-here") == []
    for order, key in (("mem", "rss_bytes"), ("cpu", "cpu_percent")):
        listed = cli.json("ps", "--sort", order)
        assert isinstance(listed, list)
        values = [p[key] for p in listed if p[key] is not None]
        assert values == sorted(values, reverse=True)
        assert all(p[key] is None for p in listed[len(values) :])


def test_machines(cli: Cli) -> None:
    machines = cli.json("machines")
    assert isinstance(machines, list) and len(machines) == 1
    (machine,) = machines
    assert list(machine) == list(drmaa2.MachineInfo().to_dict())
    assert drmaa2.MachineInfo.from_dict(machine).name == machine["name"]
    table = cli.ok("machines").splitlines()
    assert table[0].split()[:4] == ["NAME", "AVAILABLE", "CPUS", "LOAD"]
    assert table[1].split()[0] == machine["name"]
    assert table[1].split()[2] == str(os.cpu_count())
