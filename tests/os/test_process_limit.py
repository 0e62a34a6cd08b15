"""The process limit (issue 14, point 2): a keeper whose user reached RLIMIT_NPROC refuses a
job naming the limit, leaves nothing running unrecorded, and starts jobs again once the limit
allows.

Root is not bound by RLIMIT_NPROC, so the test runs its client as a second local user, made
for it (as root; skipped with the reason otherwise), from a copy of the installed packages that
user may read.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pluggy
import psutil

import drmaa2
import drmaa2_ostracker
import drmaa2_slurm
from tests.behaviour.conftest import TIMEOUT
from tests.os.test_keeper import other_user, python_for

# Run as the second user with RLIMIT_NPROC at LIMIT: sleep jobs until one is refused; then
# the record of what runs, and a job once some ended. Prints one JSON object.
_CLIENT = """
import json, resource, sys
sys.path[:0] = [sys.argv[1]]
import drmaa2, psutil
state, limit = sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
js = drmaa2.create_job_session("nproc", state, backend="os")
started, refusal = [], None
for _ in range(4 * limit):
    try:
        started.append(js.run_job({"remote_command": "/bin/sleep", "args": ["300"]}))
    except drmaa2.OutOfResourceException as error:
        refusal = str(error)
        break
recorded = sorted(job.id for job in js.get_jobs())
infos = [job.get_info() for job in started]
states = [(info.job_state.name, info.job_sub_state, info.annotation) for info in infos]
pids = [info.implementation_specific.get("pid") for info in infos]
if any(state[0] != "RUNNING" for state in states):
    print(json.dumps({"not running": states}))
    sys.exit(1)
keeper = psutil.Process(int(pids[0])).parent()
children = sorted(str(child.pid) for child in keeper.children())
for job in started[: max(1, len(started) // 2)]:
    job.terminate()
    job.wait_terminated(60)
after = js.run_job({"remote_command": "/bin/true"})
after.wait_terminated(60)
result = {
    "started": sorted(job.id for job in started),
    "refusal": refusal,
    "recorded": recorded,
    "pids": pids,
    "children": children,
    "after": after.get_state()[0].name,
}
for job in started[len(started) // 2 :]:
    if not job.get_state()[0].is_terminal:
        job.terminate()
js.wait_all_terminated(started, 60)
js.close()
print(json.dumps(result))
"""


def _copy_installed(into: Path) -> None:
    """The packages and their distribution metadata (entry points), readable by anyone."""
    for module in (drmaa2, drmaa2_ostracker, drmaa2_slurm, psutil, pluggy):
        assert module.__file__ is not None
        source = Path(module.__file__).parent
        shutil.copytree(source, into / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("drmaa2-ostracker", "psutil", "pluggy"):
        metadata = Path(str(getattr(importlib.metadata.distribution(name), "_path")))  # noqa: B009
        shutil.copytree(metadata, into / metadata.name)


@contextlib.contextmanager
def _shared_dir() -> Iterator[Path]:
    """A directory a second user can reach (not under pytest's private base directory)."""
    path = Path(tempfile.mkdtemp(prefix="drmaa2-nproc-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_other_user(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a client script as a second local user (made for it), with a copy of the
    installed packages it may read (its first argument) and a home of its own (its state
    directory there: the second argument); every process of that user is killed after."""
    with other_user() as user, _shared_dir() as shared:
        packages = shared / "packages"
        _copy_installed(packages)
        for path in [packages, *packages.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        home = shared / "home"
        home.mkdir()
        shutil.chown(home, user.pw_uid, user.pw_gid)
        interpreter = python_for(user)
        try:
            return subprocess.run(
                [interpreter, "-I", "-c", script, str(packages), str(home / "state"), *args],
                capture_output=True,
                text=True,
                timeout=TIMEOUT * 4,
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                cwd=str(home),
            )
        finally:
            for process in psutil.process_iter(["uids"]):
                uids = process.info["uids"]
                if uids is not None and uids.real == user.pw_uid:
                    with contextlib.suppress(psutil.Error):
                        process.kill()


def test_a_process_limit_refuses_a_job_naming_it_and_the_keeper_recovers() -> None:
    done = _as_other_user(_CLIENT, "12")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    refusal = result["refusal"]
    assert refusal is not None, "jobs kept starting beyond RLIMIT_NPROC 12"
    assert "RLIMIT_NPROC" in refusal and "12" in refusal, refusal
    assert result["started"], "the limit left no room for a single job"
    # Every job that ran is recorded, and the refused one is not.
    assert result["recorded"] == result["started"]
    assert len(set(result["pids"])) == len(result["started"])
    assert result["children"] == sorted(result["pids"]), "nothing else runs"
    assert result["after"] == "DONE", "a job starts once the limit allows it"


# As the second user, with RLIMIT_NPROC at 2: this process and the keeper's starter fit, the
# keeper the starter forks does not. Prints the exception the first call raised.
_STARTER_CLIENT = """
import resource, sys
sys.path[:0] = [sys.argv[1]]
import drmaa2
resource.setrlimit(resource.RLIMIT_NPROC, (2, 2))
try:
    drmaa2.create_job_session("nproc", sys.argv[2], backend="os")
except drmaa2.Drmaa2Exception as error:
    print(type(error).__name__, error)
else:
    print("no error")
"""


def test_a_keeper_that_cannot_be_forked_is_reported_naming_the_limit() -> None:
    done = _as_other_user(_STARTER_CLIENT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OutOfResourceException"), done.stdout
    assert "RLIMIT_NPROC" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr  # the starter's fork, reported
