"""Jobs Slurm's controller forgets: a session records how they really ended (from sacct, or
its own cancel), and calls them purged only when nothing knows their end."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_slurm.info import PURGED
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import TIMEOUT

#: MinJobAge while a test needs slurmctld to forget finished jobs soon (its purge pass runs
#: about every 10 s).
SHORT_MIN_JOB_AGE = 2


def _reconfigure(cluster: Cluster, min_job_age: str) -> None:
    text = cluster.conf.read_text()
    cluster.conf.write_text(re.sub(r"(?m)^MinJobAge=.*$", f"MinJobAge={min_job_age}", text))
    subprocess.run(["scontrol", "reconfigure"], env=cluster.env(), check=True)


@pytest.fixture
def forgetful_cluster(slurm_cluster: Cluster) -> Iterator[Cluster]:
    """The test cluster with MinJobAge lowered to :data:`SHORT_MIN_JOB_AGE`, restored after."""
    if not slurm_cluster.accounting:
        pytest.skip("the test cluster started without slurmdbd: sacct cannot be asked")
    saved = re.search(r"(?m)^MinJobAge=(.*)$", slurm_cluster.conf.read_text())
    assert saved is not None
    _reconfigure(slurm_cluster, str(SHORT_MIN_JOB_AGE))
    try:
        yield slurm_cluster
    finally:
        _reconfigure(slurm_cluster, saved.group(1))


def _known_to_squeue(cluster: Cluster, slurm_ids: list[str]) -> set[str]:
    done = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i", "-j", ",".join(slurm_ids)],
        env=cluster.env(),
        capture_output=True,
        text=True,
    )
    return set(done.stdout.split())


def test_a_job_slurmctld_forgot_ends_as_sacct_says(forgetful_cluster: Cluster) -> None:
    """Reopened after MinJobAge, a session takes each end from sacct, not "purged"."""
    contact = str(forgetful_cluster.conf)
    js = drmaa2.create_job_session(backend="slurm", contact=contact)
    name = js.name

    def shell(code: str) -> dict[str, object]:
        return {"remote_command": "/bin/sh", "args": ["-c", code]}

    jobs = {
        "done": js.run_job(shell("exit 0")),
        "exit 3": js.run_job(shell("exit 3")),
        "exit 128": js.run_job(shell("exit 128")),
        "exit 200": js.run_job(shell("exit 200")),
        "killed": js.run_job(shell("kill -9 $$")),
    }
    ids = {label: job.id for label, job in jobs.items()}
    js.close()
    deadline = time.monotonic() + TIMEOUT
    while _known_to_squeue(forgetful_cluster, list(ids.values())):
        assert time.monotonic() < deadline, "slurmctld did not forget the jobs"
        time.sleep(1)
    js = drmaa2.open_job_session(name, contact, backend="slurm")
    try:
        reopened = {job.id: job for job in js.get_jobs()}
        infos = {label: reopened[job_id].get_info() for label, job_id in ids.items()}
        for label, info in infos.items():
            assert info.job_sub_state != PURGED, label
            assert info.allocated_machines and info.finish_time is not None, label
        assert (infos["done"].job_state, infos["done"].exit_status) == (JobState.DONE, 0)
        assert (infos["exit 3"].job_state, infos["exit 3"].exit_status) == (JobState.FAILED, 3)
        assert "131" in (infos["exit 3"].annotation or "")
        assert infos["exit 128"].exit_status == 128
        # sacct shows exit statuses modulo 128: the annotation says what else it may be.
        assert infos["exit 200"].exit_status == 72
        assert "200" in (infos["exit 200"].annotation or "")
        killed = infos["killed"]
        assert (killed.exit_status, killed.terminating_signal) == (137, "SIGKILL")
    finally:
        js.close()
        drmaa2.destroy_job_session(name, contact, backend="slurm")


def test_a_job_nothing_knows_any_more_is_purged(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    """A pending array task cancelled behind the session's back leaves no trace in sacct
    (but the last, which holds the array's own record)."""
    array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 3, 1, 1)
    first, second, _ = array.job_list
    first.wait_started(TIMEOUT)
    subprocess.run(["scancel", second.id.replace(".", "_")], env=slurm_cluster.env(), check=True)
    second.wait_terminated(TIMEOUT)
    info = second.get_info()
    assert (info.job_state, info.job_sub_state, info.exit_status) == (JobState.FAILED, PURGED, None)
    array.terminate()


def test_a_pending_task_this_session_cancels_is_cancelled_while_others_wait(
    session: drmaa2.JobSession,
) -> None:
    """The poller seeing the cancelled task vanish before terminate() does must agree."""
    wrong = []
    for _ in range(3):
        array = session.run_bulk_jobs({"remote_command": "/bin/sleep", "args": ["60"]}, 1, 20, 1, 1)
        array.job_list[0].wait_started(TIMEOUT)
        waiter = threading.Thread(
            target=session.wait_all_terminated, args=(array.job_list, TIMEOUT)
        )
        waiter.start()
        for job in array.job_list[1:]:
            job.terminate()
        array.job_list[0].terminate()
        waiter.join(TIMEOUT)
        wrong += [
            (job.id, job.get_state())
            for job in array.job_list[1:]
            if job.get_state()[1] != "CANCELLED"
        ]
    assert wrong == []
