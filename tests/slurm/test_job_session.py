"""Jobs, arrays, control, waits and sessions of the slurm backend on a real cluster."""

from __future__ import annotations

import datetime
import os
import pwd
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_slurm import extension
from tests.behaviour.conftest import wait_until
from tests.slurm.cluster import Cluster
from tests.slurm.conftest import TIMEOUT, scontrol_job


def sleeper(seconds: int = 300) -> dict[str, object]:
    return {"remote_command": "/bin/sleep", "args": [str(seconds)]}


def test_job_ids_are_slurms_and_jobinfo_is_filled(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "job_name": "t"})
    assert job.id.isdigit()
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.DONE and info.job_sub_state == ""
    assert info.allocated_machines and info.slots == 1 and info.queue_name == "debug"
    assert info.submission_time <= info.dispatch_time <= info.finish_time  # type: ignore[operator]
    ext = info.implementation_specific or {}
    assert ext[extension.JOB_SLURM_ID] == job.id and ext[extension.JOB_SLURM_STATE] == "COMPLETED"


def test_a_wait_of_any_length_is_valid(session: drmaa2.JobSession) -> None:
    # Longer than a condition variable may sleep at once (threading.TIMEOUT_MAX): it was
    # OverflowError, an InternalException to the caller.
    job = session.run_job({"remote_command": "/bin/sleep", "args": ["1"]})
    job.wait_terminated(1e10)
    assert job.get_state()[0] is JobState.DONE
    assert session.wait_any_terminated([job], 1e12) is not None


def test_accounting_adds_cpu_time_and_max_rss(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    if not slurm_cluster.accounting:
        pytest.skip("the test cluster started without slurmdbd")
    job = session.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"],
        }
    )
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.cpu_time is not None and info.cpu_time > 0


def test_the_clis_maxrss_column_shows_slurms_max_rss(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    """``drmaa2 jobs`` shows sacct's MaxRSS (it read the os backend's key only: always "-").
    The job outlives the cluster's accounting sample (JobAcctGatherFrequency=task=5)."""
    if not slurm_cluster.accounting:
        pytest.skip("the test cluster started without slurmdbd")
    job = session.run_job(sleeper(7))
    job.wait_terminated(TIMEOUT)
    wait_until(
        lambda: extension.JOB_MAX_RSS in (job.get_info().implementation_specific or {}),
        what="the job's max_rss in sacct",
    )
    max_rss = (job.get_info().implementation_specific or {})[extension.JOB_MAX_RSS]
    assert int(max_rss) > 0
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "drmaa2",
            "--backend",
            "slurm",
            "--contact",
            str(slurm_cluster.conf),
            "-s",
            session.name,
            "jobs",
        ],
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    (row,) = [line.split() for line in listing if line.split()[0] == job.id]
    assert row[-1] != "-" and row[-1][-1] in "KMG", listing


def test_array_tasks_have_job_id_task_id_and_their_own_files(
    session: drmaa2.JobSession, tmp_path: Path
) -> None:
    array = session.run_bulk_jobs(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", 'echo "$JOB_ID $TASK_ID"'],
            "output_path": str(tmp_path / "out.$DRMAA2_INDEX$"),
        },
        5,
        20,
        5,
        2,
    )
    assert [job.id for job in array.job_list] == [f"{array.id}.{i}" for i in (5, 10, 15, 20)]
    session.wait_all_terminated(array.job_list, TIMEOUT)
    for index in (5, 10, 15, 20):
        assert (tmp_path / f"out.{index}").read_text() == f"{array.id}.{index} {index}\n"


def test_a_cancelled_pending_task_is_recorded_though_slurm_erases_it(
    session: drmaa2.JobSession,
) -> None:
    array = session.run_bulk_jobs(sleeper(1), 1, 4, 1, 1)
    last = array.job_list[-1]
    last.terminate()
    info = last.get_info()
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "CANCELLED")
    assert info.dispatch_time is None and info.exit_status is None
    session.wait_all_terminated(array.job_list, TIMEOUT)
    assert [job.get_state()[0] for job in array.job_list] == [JobState.DONE] * 3 + [JobState.FAILED]


def test_suspend_resume_and_terminate(session: drmaa2.JobSession) -> None:
    job = session.run_job(sleeper())
    job.wait_started(TIMEOUT)
    job.suspend()
    assert job.get_state()[0] is JobState.SUSPENDED
    job.resume()
    assert job.get_state() == (JobState.RUNNING, "")
    job.terminate()
    info = job.get_info()
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "CANCELLED")
    assert info.terminating_signal in ("SIGTERM", "SIGKILL")


def test_a_running_job_cannot_be_held_and_is_left_unheld(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    job = session.run_job(sleeper())
    job.wait_started(TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException, match="hold"):
        job.hold()
    assert scontrol_job(slurm_cluster, job.id)["Priority"] != "0"
    with pytest.raises(drmaa2.InvalidStateException):
        job.release()


def test_hold_and_release_a_queued_job(session: drmaa2.JobSession) -> None:
    blocker = session.run_job({**sleeper(), "submit_as_hold": True})
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    assert job.get_state() == (JobState.QUEUED_HELD, "JobHeldUser")
    job.release()
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.DONE
    blocker.terminate()
    assert blocker.get_info().dispatch_time is None


def test_waits_from_many_threads_share_one_poller(session: drmaa2.JobSession) -> None:
    jobs = [session.run_job(sleeper(1)) for _ in range(6)]
    errors: list[BaseException] = []

    def wait(job: drmaa2.Job) -> None:
        try:
            job.wait_terminated(TIMEOUT)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=wait, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    pollers = [t for t in threading.enumerate() if t.name == "drmaa2-slurm-poller"]
    assert len(pollers) <= 1
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors and all(job.get_state()[0] is JobState.DONE for job in jobs)


def test_notifications_for_every_state_change(session: drmaa2.JobSession) -> None:
    seen: list[drmaa2.Notification] = []
    drmaa2.register_event_notification(seen.append, backend="slurm")
    try:
        job = session.run_job(sleeper())
        job.wait_started(TIMEOUT)
        job.suspend()
        job.resume()
        job.terminate()
    finally:
        drmaa2.register_event_notification(None, backend="slurm")
    states = [n.job_state for n in seen if n.job_id == job.id]
    assert states == [
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.SUSPENDED,
        JobState.RUNNING,
        JobState.FAILED,
    ]


def test_a_job_that_starts_and_ends_between_two_polls_has_its_running_event(
    session: drmaa2.JobSession,
) -> None:
    """Short jobs start and end between two polls of squeue: each is published RUNNING (it
    ran: it got a node) before its end, as on the os backend (before: QUEUED, then DONE or
    FAILED only)."""
    seen: list[drmaa2.Notification] = []
    drmaa2.register_event_notification(seen.append, backend="slurm")
    try:
        jobs = [
            session.run_job({"remote_command": "/bin/sh", "args": ["-c", f"exit {k % 2}"]})
            for k in range(4)
        ]
        session.wait_all_terminated(jobs, TIMEOUT)
    finally:
        drmaa2.register_event_notification(None, backend="slurm")
    for k, job in enumerate(jobs):
        states = [n.job_state for n in seen if n.job_id == job.id]
        end = JobState.FAILED if k % 2 else JobState.DONE
        assert states == [JobState.QUEUED, JobState.RUNNING, end], (job.id, states)


def test_another_process_sees_the_session_and_its_jobs(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    job = session.run_job({"remote_command": "/bin/true"})
    code = (
        "import drmaa2\n"
        f"s = drmaa2.open_job_session({session.name!r}, {str(slurm_cluster.conf)!r}, "
        "backend='slurm')\n"
        f"j = [j for j in s.get_jobs() if j.id == {job.id!r}][0]\n"
        "j.wait_terminated(60)\n"
        "print(j.get_state()[0].name)\n"
        "s.close()\n"
    )
    done = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "DONE", done.stderr


def test_an_open_session_sees_a_job_another_process_submits_later(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    """A job another process submits after this object opened the session: its state, a
    filter on it and its events are this object's too. (It stayed QUEUED here, filters
    missed it, no event came.)"""
    events: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda n: events.append((n.job_id, n.job_state)), backend="slurm"
    )
    try:
        code = (
            "import drmaa2\n"
            f"s = drmaa2.open_job_session({session.name!r}, {str(slurm_cluster.conf)!r}, "
            "backend='slurm')\n"
            "print(s.run_job({'remote_command': '/bin/sh', 'args': ['-c', 'exit 4']}).id)\n"
            "s.close()\n"
        )
        done = subprocess.run(
            [__import__("sys").executable, "-c", code], capture_output=True, text=True
        )
        job_id = done.stdout.strip()
        assert job_id, done.stderr
        wait_until(
            lambda: [j.id for j in session.get_jobs({"job_state": JobState.FAILED})] == [job_id],
            what="the other process's job to be seen failed",
            timeout=TIMEOUT,
        )
        (job,) = session.get_jobs()
        assert job.get_state()[0] is JobState.FAILED
        assert job.get_info().exit_status == 4
        wait_until(lambda: (job_id, JobState.FAILED) in events, what="its end's event")
    finally:
        drmaa2.unregister_event_notification(backend="slurm")


def test_an_object_of_a_session_destroyed_elsewhere_submits_nothing(
    slurm_cluster: Cluster,
) -> None:
    """A session destroyed by another process: its object's calls raise
    InvalidSessionException, and run_job submits nothing (it submitted the job, then raised
    an SQLite error and cancelled it). Made again under its name, the new session is left
    alone by the old object's destroy() and close()."""
    conf = str(slurm_cluster.conf)
    old = drmaa2.JobSession("gone-soon", conf, destroy_on_exit=True, backend="slurm")
    drmaa2.destroy_job_session("gone-soon", conf, backend="slurm")
    with pytest.raises(drmaa2.InvalidSessionException, match="was destroyed"):
        old.run_job({"remote_command": "/bin/true"})
    with pytest.raises(drmaa2.InvalidSessionException, match="was destroyed"):
        old.get_jobs()
    new = drmaa2.create_job_session("gone-soon", conf, backend="slurm")
    with pytest.raises(drmaa2.InvalidSessionException, match="made again"):
        old.destroy()
    assert "gone-soon" in drmaa2.get_job_session_names(conf, backend="slurm")
    new.destroy()


@pytest.mark.parametrize("held", [True, False], ids=["held", "running"])
def test_a_wait_going_on_when_the_session_is_destroyed_says_the_session_is_gone(
    slurm_cluster: Cluster, held: bool
) -> None:
    """As on the os backend: a wait of a session that another process destroys raises
    InvalidSessionException (it returned the held job, cancelled by the destroy, as if it had
    ended; a running job's wait went on until the job ended)."""
    conf = str(slurm_cluster.conf)
    session = drmaa2.create_job_session("destroyed-while-waiting", conf, backend="slurm")
    job = session.run_job({**sleeper(60), "submit_as_hold": held})
    if not held:
        job.wait_started(TIMEOUT)
    outcome: list[BaseException | object] = []

    def wait() -> None:
        try:
            outcome.append(session.wait_any_terminated([job], TIMEOUT))
        except BaseException as error:
            outcome.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    poller = session._backend._poller  # type: ignore[attr-defined]
    wait_until(lambda: poller._waiters > 0 or bool(outcome), what="the wait to begin")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import drmaa2, sys; "
            "drmaa2.destroy_job_session(sys.argv[1], sys.argv[2], backend='slurm')",
            session.name,
            conf,
        ],
        check=True,
        env=slurm_cluster.env(),
    )
    waiter.join(TIMEOUT)
    subprocess.run(["scancel", job.id], env=slurm_cluster.env(), check=True)
    assert len(outcome) == 1 and isinstance(outcome[0], drmaa2.InvalidSessionException), outcome
    assert "was destroyed" in str(outcome[0])
    session.close()


def test_a_wait_that_times_out_names_its_jobs(session: drmaa2.JobSession) -> None:
    job = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    with pytest.raises(drmaa2.TimeoutException, match=rf"all of 1 job \['{job.id}'\] .*ZERO"):
        session.wait_all_started([job], drmaa2.ZERO_TIME)
    with pytest.raises(drmaa2.TimeoutException, match=rf"any of 1 job \['{job.id}'\].* 0.5 s"):
        session.wait_any_terminated([job], 0.5)
    job.terminate()


def test_cancelled_pending_tasks_keep_what_they_had_while_they_waited(
    session: drmaa2.JobSession,
) -> None:
    """Array tasks terminated while they waited for a slot (under max_parallel) keep their
    name, owner, slots, partition and submission time, as the task that ran does and as on
    os (they were None: a get_jobs filter on the owner missed them)."""
    array = session.run_bulk_jobs(sleeper(60), 1, 3, 1, 1)
    first, *waiting = array.job_list
    first.wait_started(TIMEOUT)
    array.terminate()
    session.wait_all_terminated(array.job_list, TIMEOUT)
    ran = first.get_info()
    user = pwd.getpwuid(os.getuid()).pw_name
    for job in waiting:
        info = job.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "CANCELLED")
        assert info.dispatch_time is None and info.exit_status is None
        assert info.submission_time is not None and info.finish_time is not None
        assert (info.job_owner, info.slots, info.queue_name) == (user, 1, ran.queue_name)
        assert info.job_name == ran.job_name and info.job_name
    assert {j.id for j in session.get_jobs({"job_owner": user})} >= {j.id for j in waiting}


def test_destroying_a_session_cancels_its_pending_jobs(slurm_cluster: Cluster) -> None:
    """A destroyed session's queued and held jobs never start (they stayed in Slurm, and
    ran or stayed held forever); a running one runs on."""
    session = drmaa2.create_job_session(backend="slurm", contact=str(slurm_cluster.conf))
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    queued = session.run_job({"remote_command": "/bin/true", "start_time": later})
    held = session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    running = session.run_job(sleeper(30))
    running.wait_started(TIMEOUT)
    ids = {job.id for job in (queued, held, running)}
    drmaa2.destroy_job_session(session.name, str(slurm_cluster.conf), backend="slurm")
    left = subprocess.run(
        ["squeue", "-h", "-o", "%i %T", "-j", ",".join(sorted(ids))],
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    subprocess.run(["scancel", running.id], env=slurm_cluster.env(), check=True)
    assert {line.split()[0] for line in left if line.strip()} <= {running.id}, left
    session.close()


def test_a_held_job_ends_at_its_deadline(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    """A held job whose deadline_time passes is ended without starting, FAILED with
    sub-state DEADLINE, and gone from Slurm (Slurm applies --deadline only to jobs it may
    schedule: the job stayed held forever)."""
    deadline = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
    job = session.run_job(
        {"remote_command": "/bin/true", "submit_as_hold": True, "deadline_time": deadline}
    )
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "DEADLINE"), info
    assert info.dispatch_time is None and info.exit_status is None
    assert info.finish_time is not None and info.finish_time >= deadline
    left = subprocess.run(
        ["squeue", "-h", "-j", job.id], env=slurm_cluster.env(), capture_output=True, text=True
    )
    assert left.stdout.strip() == "", left.stdout


def test_two_sessions_and_two_objects_of_one_share_the_poller_cleanly(
    session: drmaa2.JobSession, slurm_cluster: Cluster
) -> None:
    """A held job in another open session never stops the poller (looking for its deadline
    in the wrong session raised, and the poller thread died: no event came any more), and
    two objects of one session in one process publish each change once."""
    conf = str(slurm_cluster.conf)
    other = drmaa2.create_job_session(backend="slurm", contact=conf)
    twin = drmaa2.open_job_session(session.name, conf, backend="slurm")
    seen: list[tuple[str, JobState]] = []
    drmaa2.register_event_notification(
        lambda n: seen.append((n.job_id, n.job_state)), backend="slurm"
    )
    try:
        held = other.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
        job = session.run_job({"remote_command": "/bin/true"})
        twin.wait_all_terminated([drmaa2.Job(twin, job.id)], TIMEOUT)
        wait_until(lambda: (job.id, JobState.DONE) in seen, what="the job's end event")
        states = [state for job_id, state in seen if job_id == job.id]
        assert states.count(JobState.DONE) == 1 and states.count(JobState.RUNNING) == 1, states
        held.terminate()
    finally:
        drmaa2.unregister_event_notification(backend="slurm")
        twin.close()
        other.destroy()


def test_reap_forgets_a_finished_job_only(session: drmaa2.JobSession) -> None:
    running = session.run_job(sleeper())
    with pytest.raises(drmaa2.InvalidStateException):
        running.reap()
    done = session.run_job({"remote_command": "/bin/true"})
    done.wait_terminated(TIMEOUT)
    done.reap()
    assert done.id not in [j.id for j in session.get_jobs()]
    with pytest.raises(drmaa2.InvalidArgumentException, match=done.id):
        done.get_state()


def test_a_missing_or_unreachable_cluster_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nosuch.conf")
    with pytest.raises(drmaa2.DrmCommunicationException, match=r"nosuch\.conf"):
        drmaa2.create_job_session(backend="slurm", contact=missing)
    dead = tmp_path / "slurm.conf"
    dead.write_text(
        "ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
        "AuthType=auth/none\nNodeName=x\nPartitionName=p Nodes=x\n"
    )
    with pytest.raises(drmaa2.DrmCommunicationException, match=re.escape(str(dead))):
        drmaa2.create_job_session(backend="slurm", contact=str(dead))
