"""Run every benchmark case, print figure / baseline / ratio / target, and write JSON.

python -m benchmarks              # the full run (several minutes)
python -m benchmarks --quick      # a smoke run of a few seconds (CI)
python -m benchmarks --only sequential,array
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

from benchmarks import (
    bench_arrays,
    bench_jobs,
    bench_keeper,
    bench_latency,
    bench_monitoring,
    bench_scale,
    common,
)

Case = Callable[[bool], list[dict[str, object]]]

CASES: dict[str, Case] = {
    "sequential": lambda q: bench_jobs.sequential(100 if q else 1000, 3 if q else 5),
    "burst": lambda q: bench_jobs.burst(200 if q else 2000, 3),
    "array": lambda q: bench_jobs.array_throughput(300 if q else 5000, 3),
    "latency": lambda q: bench_latency.wait_latency(100 if q else 1000),
    "control": lambda q: bench_latency.control_latency(10 if q else 200),
    "memory": lambda q: bench_scale.memory(200 if q else 10_000),
    "scale": lambda q: bench_scale.scale(2000 if q else 100_000),
    "monitoring": lambda q: bench_monitoring.run(quick=q),
    "handoff": lambda q: bench_keeper.handoff(200 if q else 1000),
    "first_call": lambda q: bench_keeper.first_call(5 if q else 10),
    "keeper_memory": lambda q: bench_keeper.keeper_memory(1000 if q else 10_000),
    "huge_array": lambda q: bench_arrays.huge_array(10_000 if q else 1_000_000),
}


def install_peers() -> None:
    """Set-up: the peers compared against are OS packages (xargs comes with findutils;
    GNU parallel is installed here when missing and this is a Debian-like machine as root)."""
    if shutil.which("parallel") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    print("set-up: installing GNU parallel (apt-get install parallel)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "parallel"]):
        try:
            subprocess.run(command, check=True, env=env, timeout=600, capture_output=True)
        except (OSError, subprocess.SubprocessError) as error:
            print(f"set-up: could not install GNU parallel ({error}); it is left out")
            return


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": common.when(),
    }


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if a target is missed (with --strict)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-seconds smoke run")
    parser.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    parser.add_argument("--output", help="JSON file to write (default: a temporary file)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    chosen = list(CASES) if not args.only else args.only.split(",")
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    if not args.quick and "array" in chosen:
        install_peers()
    info = machine()
    print(
        f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"kernel {info['kernel']}, {info['date']}" + (" (quick smoke run)" if args.quick else "")
    )
    results: list[dict[str, object]] = []
    header = f"{'case':<64} {'value':>10} {'baseline':>10} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for name in chosen:
        for row in CASES[name](args.quick):
            row["group"] = name
            results.append(row)
            mark = "ok" if row["ok"] else "MISSED"
            print(
                f"{row['case']:<64} {_fmt(row['value']):>10} {_fmt(row['baseline']):>10} "
                f"{_fmt(row['ratio']):>7}  {row['target']} {mark}",
                flush=True,
            )
    output = args.output or os.path.join(tempfile.gettempdir(), "drmaa2-benchmarks.json")
    with open(output, "w") as handle:
        json.dump({"machine": info, "quick": args.quick, "results": results}, handle, indent=2)
    print(f"results written to {output}")
    missed = [row["case"] for row in results if not row["ok"]]
    if missed and not args.quick:
        print(f"targets missed: {len(missed)}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
