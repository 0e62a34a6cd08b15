"""Waiting, sessions, notifications, concurrency and hygiene (issue 3 §4, §7, §9, §10)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading
import time

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, cleanup_session, wait_until


def sleeper(seconds: float = 60) -> dict[str, object]:
    return {"remote_command": "/bin/sleep", "args": [str(seconds)]}


def test_wait_started_and_terminated(session: drmaa2.JobSession) -> None:
    job = session.run_job(sleeper(0.3))
    job.wait_started(TIMEOUT)
    assert job.get_state()[0] in (JobState.RUNNING, JobState.DONE)
    job.wait_terminated(TIMEOUT)
    assert job.get_state()[0] is JobState.DONE
    job.wait_started(drmaa2.ZERO_TIME)  # a finished job has started


def test_timeouts(session: drmaa2.JobSession) -> None:
    job = session.run_job(sleeper())
    with pytest.raises(drmaa2.TimeoutException):
        job.wait_terminated(drmaa2.ZERO_TIME)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        job.wait_terminated(0.3)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(drmaa2.TimeoutException):
        session.wait_all_terminated([job], 0.1)
    with pytest.raises(drmaa2.TimeoutException):
        session.wait_any_terminated([job], 0)
    for negative in (datetime.timedelta(seconds=-1), datetime.timedelta(seconds=-0.5)):
        with pytest.raises(drmaa2.InvalidArgumentException, match="duration of 0 or more"):
            job.wait_terminated(negative)  # a duration: -1 s is not INFINITE_TIME
    job.terminate()


def test_wait_any_and_all(session: drmaa2.JobSession) -> None:
    slow = session.run_job(sleeper())
    quick = session.run_job(sleeper(0.2))
    assert session.wait_any_terminated([slow, quick], TIMEOUT) == quick
    assert session.wait_any_started([slow, quick], TIMEOUT) in (slow, quick)
    assert session.wait_all_started([slow, quick], TIMEOUT) == [slow, quick]
    slow.terminate()
    assert session.wait_all_terminated([slow, quick], TIMEOUT) == [slow, quick]


def test_waiting_for_nothing_is_invalid(session: drmaa2.JobSession) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException):
        session.wait_all_terminated([])
    with pytest.raises(drmaa2.InvalidArgumentException):
        session.wait_any_started([], 1)


def test_a_waiter_wakes_when_another_thread_terminates(session: drmaa2.JobSession) -> None:
    job = session.run_job(sleeper())
    job.wait_started(TIMEOUT)
    woke: list[float] = []

    def waiter() -> None:
        job.wait_terminated(TIMEOUT)
        woke.append(time.monotonic())

    thread = threading.Thread(target=waiter)
    thread.start()
    job.terminate()
    thread.join(TIMEOUT)
    assert woke and job.get_state()[0] is JobState.FAILED


def test_get_jobs_filters(session: drmaa2.JobSession) -> None:
    ok = session.run_job({"remote_command": "/bin/true", "job_name": "ok"})
    bad = session.run_job({"remote_command": "/bin/false", "job_name": "bad"})
    session.wait_all_terminated([ok, bad], TIMEOUT)
    running = session.run_job(sleeper())
    running.wait_started(TIMEOUT)
    assert [j.id for j in session.get_jobs()] == [ok.id, bad.id, running.id]
    assert session.get_jobs({"job_state": JobState.DONE}) == [ok]
    assert session.get_jobs(drmaa2.JobInfo(exit_status=1)) == [bad]
    assert session.get_jobs({"job_name": "bad"}) == [bad]
    assert session.get_jobs({"job_state": "RUNNING"}) == [running]
    machine = ok.get_info().allocated_machines
    assert session.get_jobs({"allocated_machines": machine, "job_state": "DONE"}) == [ok]
    assert session.get_jobs({"allocated_machines": ["nowhere"]}) == []
    since = bad.get_info().submission_time
    assert session.get_jobs({"submission_time": since}) == [bad, running]
    with pytest.raises(drmaa2.InvalidArgumentException, match="no_such_field"):
        session.get_jobs({"no_such_field": 1})
    running.terminate()


def test_session_persists_after_close(backend: str, state_dir: str) -> None:
    js = drmaa2.create_job_session("persistent", backend=backend)
    job = js.run_job({"remote_command": "/bin/false", "job_name": "kept"})
    job.wait_terminated(TIMEOUT)
    js.close()
    with pytest.raises(drmaa2.InvalidSessionException):
        js.get_jobs()
    with pytest.raises(drmaa2.InvalidSessionException):
        job.get_state()
    assert "persistent" in drmaa2.get_job_session_names(backend=backend)
    again = drmaa2.open_job_session("persistent", backend=backend)
    (reopened,) = again.get_jobs()
    info = reopened.get_info()
    assert (reopened.id, info.job_name, info.exit_status) == (job.id, "kept", 1)
    assert reopened.get_template().remote_command == "/bin/false"
    next_job = again.run_job({"remote_command": "/bin/true"})
    assert int(next_job.id) > int(job.id)
    next_job.wait_terminated(TIMEOUT)
    cleanup_session(again)
    assert "persistent" not in drmaa2.get_job_session_names(backend=backend)


def test_close_leaves_running_jobs_running_and_reaped(backend: str, state_dir: str) -> None:
    js = drmaa2.create_job_session("leave-running", backend=backend)
    job = js.run_job(sleeper(0.5))
    job.wait_started(TIMEOUT)
    js.close()
    again = drmaa2.open_job_session("leave-running", backend=backend)
    (same,) = again.get_jobs()
    same.wait_terminated(TIMEOUT)
    assert same.get_state()[0] is JobState.DONE
    cleanup_session(again)


def test_another_process_sees_the_session(backend: str, state_dir: str) -> None:
    js = drmaa2.create_job_session("shared", backend=backend)
    job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", "exit 4"]})
    job.wait_terminated(TIMEOUT)
    code = (
        "import drmaa2, sys\n"
        f"s = drmaa2.open_job_session('shared', backend={backend!r})\n"
        "info = s.get_jobs()[0].get_info()\n"
        "print(info.job_id, info.exit_status, info.job_state.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == [job.id, "4", "FAILED"]
    cleanup_session(js)


def test_job_session_constructor_creates_or_opens(backend: str, state_dir: str) -> None:
    with drmaa2.JobSession("ctor", backend=backend) as js:
        js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    with drmaa2.JobSession("ctor", backend=backend) as js:
        assert len(js.get_jobs()) == 1
    with drmaa2.JobSession(backend=backend) as generated:
        name = generated.name
    assert "ctor" in drmaa2.get_job_session_names(backend=backend)
    assert name not in drmaa2.get_job_session_names(backend=backend)
    drmaa2.destroy_job_session("ctor", backend=backend)


def test_another_object_of_the_same_session_waits_for_its_jobs(
    backend: str, state_dir: str
) -> None:
    # Grid Engine's binding identifies a job by (id, session name): code that submits through
    # one JobSession("name") and waits through another must work.
    first = drmaa2.JobSession("same", backend=backend)
    second = drmaa2.JobSession("same", backend=backend)  # opened before the job exists
    other = drmaa2.JobSession("other", backend=backend)
    try:
        job = first.run_job({"remote_command": "/bin/true"})
        assert second.wait_all_terminated([job], TIMEOUT) == [job]
        assert second.wait_any_terminated(first.get_jobs(), TIMEOUT).id == job.id
        belongs = r"'same'.*not to job session 'other'"
        with pytest.raises(drmaa2.InvalidArgumentException, match=belongs):
            other.wait_all_terminated([job], TIMEOUT)
    finally:
        other.destroy()
        second.close()
        cleanup_session(first)


def test_the_bindings_constructor_arguments(backend: str, state_dir: str) -> None:
    with drmaa2.JobSession(session_dict={"name": "from-dict"}, backend=backend) as js:
        assert js.name == "from-dict"
    assert "from-dict" in drmaa2.get_job_session_names(backend=backend)
    # Told not to look for it first, the constructor tries to create it, and opens it.
    with drmaa2.JobSession("from-dict", None, False, False, backend=backend) as js:
        assert js.name == "from-dict"
    drmaa2.destroy_job_session("from-dict", backend=backend)
    with drmaa2.JobSession("", backend=backend) as generated:  # an empty name: none
        name = generated.name
    assert name and name not in drmaa2.get_job_session_names(backend=backend)
    with pytest.raises(drmaa2.InvalidArgumentException, match="session_dict: unknown keys nam"):
        drmaa2.JobSession(session_dict={"nam": "x"}, backend=backend)
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        drmaa2.JobSession("x", auth={"username": "someone"}, backend=backend)
    assert "x" not in drmaa2.get_job_session_names(backend=backend)
    js = drmaa2.JobSession("reopened", backend=backend)
    job = js.run_job({"remote_command": "/bin/true"})
    js.close()
    js.open()  # as the binding allows; then usable again
    job.wait_terminated(TIMEOUT)
    assert [j.id for j in js.get_jobs()] == [job.id]
    js.open()  # open already: nothing
    # auth=None (the calling user) is taken where the binding takes it; any other raises.
    js.run_job({"remote_command": "/bin/true"}, auth=None).wait_terminated(TIMEOUT)
    array = js.run_bulk_jobs(sleeper(), 1, 2, 1, None, None)
    array.job_list[0].terminate(auth=None)
    array.terminate(None)  # the other task
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        array.job_list[0].suspend(drmaa2.Sudo(username="root"))
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        js.run_job({"remote_command": "/bin/true"}, drmaa2.Sudo(username="root"))
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        js.destroy(auth=drmaa2.Sudo(username="root"))
    cleanup_session(js)


def test_event_notification_for_every_state_change(session: drmaa2.JobSession) -> None:
    if not drmaa2.supports(drmaa2.Capability.CALLBACK, backend=session.backend):
        with pytest.raises(drmaa2.UnsupportedOperationException):
            drmaa2.register_event_notification(print, backend=session.backend)
        return
    seen: list[drmaa2.Notification] = []
    lock = threading.Lock()

    def callback(note: drmaa2.Notification) -> None:
        with lock:
            seen.append(note)

    drmaa2.register_event_notification(callback, backend=session.backend)
    try:
        job = session.run_job({"remote_command": "/bin/sleep", "args": ["60"]})
        job.wait_started(TIMEOUT)
        job.suspend()
        job.resume()
        job.terminate()
    finally:
        drmaa2.register_event_notification(None, backend=session.backend)
    with lock:
        mine = [n for n in seen if n.job_id == job.id]
    assert [n.job_state for n in mine] == [
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.SUSPENDED,
        JobState.RUNNING,
        JobState.FAILED,
    ]
    assert all(n.event is drmaa2.Event.NEW_STATE and n.session_name == session.name for n in mine)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_stress_8_threads_x_100_jobs(backend: str, state_dir: str) -> None:
    warm = drmaa2.create_job_session("warm-up", backend=backend)
    warm.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    warm.close()
    fds_before = _open_fds()
    threads_before = _thread_names()
    js = drmaa2.create_job_session("stress", backend=backend)
    failures: list[BaseException] = []
    jobs: list[drmaa2.Job] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            mine = []
            for i in range(100):
                job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", f": {n} {i}"]})
                mine.append(job)
                if i % 10 == 0:
                    js.wait_all_terminated(mine[-5:], TIMEOUT)
            js.wait_all_terminated(mine, TIMEOUT)
            with lock:
                jobs.extend(mine)
        except BaseException as error:  # reported below
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(TIMEOUT * 3)
    assert not failures, failures
    assert len(jobs) == 800 and len({job.id for job in jobs}) == 800
    assert all(job.get_state()[0] is JobState.DONE for job in jobs)
    assert len(js.get_jobs({"job_state": "DONE"})) == 800
    js.close()
    wait_until(lambda: _thread_names() <= threads_before, timeout=10, what="threads to end")
    assert _open_fds() <= fds_before, "no file descriptor is leaked"
    again = drmaa2.open_job_session("stress", backend=backend)
    again.destroy()
    drmaa2.destroy_job_session("warm-up", backend=backend)


def test_no_thread_left_after_last_session_closes(backend: str, state_dir: str) -> None:
    before = _thread_names()
    js = drmaa2.create_job_session(backend=backend)
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    js.close()
    assert _thread_names() <= before


def test_waits_take_a_single_job_any_iterable_and_long_timeouts(
    session: drmaa2.JobSession,
) -> None:
    import datetime
    import math

    job = session.run_job({"remote_command": "/bin/true"})
    assert session.wait_any_terminated(job, datetime.timedelta(days=30)) == job
    assert session.wait_all_terminated(iter([job]), math.inf) == [job]
    job.wait_terminated(1e12)
    assert job.get_state()[0] is JobState.DONE
