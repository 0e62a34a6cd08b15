"""Sessions and jobs as code written for Grid Engine's binding (``uge-drmaa2``) uses them: the
terminate variants, open after close, the monitoring session's arguments, a
contact that is no state directory, ``auth`` where the binding takes it, jobs equal across
session objects, and session names with ``@``. Each runs the real ``os`` backend.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobSession, JobState
from drmaa2.plugins import registry
from tests.behaviour.conftest import wait_until
from tests.compat.conftest import TIMEOUT
from tests.keepers import keepers_under, stop_keepers

SLEEPER = {"remote_command": "/bin/sleep", "args": ["60"]}


def ended_by_sigkill(job: drmaa2.Job) -> bool:
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    return (info.job_state, info.terminating_signal) == (JobState.FAILED, "SIGKILL")


# -- 1. terminate_forced, terminate_all, terminate_forced_all, JobArray.terminate_all -----------


def test_terminate_forced_kills_a_running_job(js: JobSession) -> None:
    job = js.run_job(SLEEPER)
    job.wait_started(TIMEOUT)
    job.terminate_forced()
    assert ended_by_sigkill(job)


@pytest.mark.parametrize("method", ["terminate_all", "terminate_forced_all"])
def test_terminate_all_of_a_task_ends_its_whole_array(js: JobSession, method: str) -> None:
    array = js.run_bulk_jobs(SLEEPER, 1, 3)
    bystander = js.run_job(SLEEPER)
    js.wait_all_started([*array.job_list, bystander], TIMEOUT)
    getattr(array.job_list[1], method)()
    assert all(ended_by_sigkill(task) for task in array.job_list)
    assert bystander.get_state()[0] is JobState.RUNNING  # another job: left alone
    getattr(bystander, method)()  # a job of no array: ends alone
    assert ended_by_sigkill(bystander)


def test_terminate_all_of_finished_tasks_is_an_invalid_state(js: JobSession) -> None:
    array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 2)
    js.wait_all_terminated(array.job_list, TIMEOUT)
    with pytest.raises(drmaa2.InvalidStateException, match="applies to none"):
        array.job_list[0].terminate_all()


def test_job_array_terminate_all_ends_every_task(js: JobSession) -> None:
    array = js.run_bulk_jobs(SLEEPER, 1, 4, 1, 2)  # two run, two queue
    js.wait_all_started(array.job_list[:2], TIMEOUT)
    array.terminate_all()
    assert [task.get_state()[0] for task in js.wait_all_terminated(array.job_list, TIMEOUT)] == [
        JobState.FAILED
    ] * 4


# -- 2. close and open as the binding uses them, within the contract ----------------------------


def test_a_kept_session_opens_again_after_close(state_dir: str) -> None:
    """The binding's close() then open(): a named session is kept when closed, so the same
    object opens it again and sees its jobs."""
    js = JobSession("closed-then-opened")
    job = js.run_job({"remote_command": "/bin/true"})
    js.close()
    with pytest.raises(drmaa2.InvalidSessionException):
        js.get_jobs()
    js.open()
    js.open()  # open already: nothing
    job.wait_terminated(TIMEOUT)
    assert js.get_jobs() == [job]
    js.destroy()
    assert JobSession.list_session_names() == []


@pytest.mark.parametrize("named", [False, True], ids=["unnamed", "named destroy_on_exit"])
def test_close_destroys_a_destroy_on_exit_session_and_open_says_so(
    state_dir: str, named: bool
) -> None:
    """The contract keeps close() as the end of a destroy_on_exit session (the binding waits
    for the object to be dropped; a documented difference): open() after it names the
    session that is gone, and a second close() or a destroy() raises, as after any close."""
    js = JobSession("temporary", destroy_on_exit=True) if named else JobSession()
    name = js.name
    js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
    js.close()
    assert name not in JobSession.list_session_names()
    for call in (js.close, js.destroy):
        with pytest.raises(drmaa2.InvalidSessionException):
            call()
    with pytest.raises(drmaa2.InvalidArgumentException, match="no job session named"):
        js.open()


def test_objects_of_a_destroyed_session_say_the_session_is_gone(state_dir: str) -> None:
    """A JobSession or Job object whose session was destroyed elsewhere (by name) raises
    InvalidSessionException, whether or not a session was made again under its name since;
    a name that names no session (open, destroy) stays an InvalidArgumentException."""
    js = JobSession("gone-soon")
    job = js.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    JobSession.destroy_by_name("gone-soon")
    for call in (
        js.get_jobs,
        job.get_info,
        job.get_state,
        lambda: js.run_job({"remote_command": "/bin/true"}),
    ):
        with pytest.raises(drmaa2.InvalidSessionException, match=r"'gone-soon' .* was destroyed"):
            call()
    with pytest.raises(drmaa2.InvalidArgumentException, match="no job session named"):
        JobSession.destroy_by_name("gone-soon")
    again = JobSession("gone-soon")  # made again under its name
    with pytest.raises(drmaa2.InvalidSessionException, match="made again under its name"):
        job.get_info()
    assert again.get_jobs() == []
    js.close()  # passes (a script's clean-up), and leaves the new session alone
    assert again.get_jobs() == []
    again.destroy()


def test_an_object_of_a_destroyed_session_never_destroys_one_made_again(state_dir: str) -> None:
    """An object whose session was destroyed elsewhere, and made again under its name since,
    never acts on the new session: its destroy() raises InvalidSessionException, its close()
    and its being dropped (with destroy_on_exit) pass and leave the new one alone, the new
    session's waits refuse its jobs, which are not equal to the new ones of their ids, and it
    cannot be opened again onto the new one. (Its close() and destroy() by name destroyed the
    new session; the new session's wait answered for an old job with the new job's state.)"""
    old = JobSession("twice", destroy_on_exit=True)
    dropped = JobSession("twice", destroy_on_exit=True)
    kept = JobSession("twice")
    kept.close()
    old_job = old.run_job({"remote_command": "/bin/true"})
    old_job.wait_terminated(TIMEOUT)
    JobSession.destroy_by_name("twice")
    new = JobSession("twice")
    new_job = new.run_job({"remote_command": "/bin/sh", "args": ["-c", "sleep 0.2; exit 3"]})
    assert new_job.id == old_job.id
    assert new_job != old_job
    assert len({new_job, old_job}) == 2
    with pytest.raises(drmaa2.InvalidSessionException, match="earlier job session"):
        new.wait_any_terminated([old_job], TIMEOUT)
    with pytest.raises(drmaa2.InvalidSessionException, match="made again under its name"):
        old.destroy()
    old = JobSession("twice", destroy_on_exit=True)  # an object of the new session: kept
    del dropped
    gc.collect()
    with pytest.raises(drmaa2.InvalidSessionException, match="made again under its name"):
        kept.open()
    assert JobSession.list_session_names() == ["twice"]
    new.wait_all_terminated([new_job], TIMEOUT)
    assert new_job.get_info().exit_status == 3
    old.close()  # this one is of the new session: destroyed, as destroy_on_exit says
    assert JobSession.list_session_names() == []
    with pytest.raises(drmaa2.InvalidSessionException, match="was destroyed"):
        new.get_jobs()
    new.close()


def test_close_with_destroy_on_exit_passes_when_the_session_was_destroyed(state_dir: str) -> None:
    """close() of an object whose session another process destroyed passes, with
    destroy_on_exit too (it raised InvalidArgumentException: no job session named ...), so
    that a script's clean-up and a ``with`` block's exit run; its destroy() raises."""
    with JobSession("short-lived", destroy_on_exit=True):
        JobSession.destroy_by_name("short-lived")
    js2 = JobSession("short-lived-2", destroy_on_exit=True)
    JobSession.destroy_by_name("short-lived-2")
    with pytest.raises(drmaa2.InvalidSessionException, match="was destroyed"):
        js2.destroy()
    assert JobSession.list_session_names() == []


def test_waits_going_on_when_the_session_is_destroyed_say_the_session_is_gone(
    state_dir: str,
) -> None:
    """A wait in progress when its session is destroyed (here by name, as another process
    would) raises InvalidSessionException, whether it waited for a job that never starts or
    for one that runs on unrecorded: at once, not when that job ends (before: "no such job",
    or a normal return for an end nobody recorded; then, only once the job ended)."""
    js = JobSession("destroyed-under-waits")
    running = js.run_job({"remote_command": "/bin/sleep", "args": ["600"]})
    held = js.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    running.wait_started(TIMEOUT)
    pid = int(running.get_info().implementation_specific["pid"])
    outcomes: dict[str, BaseException | None] = {}

    def wait(name: str, job: drmaa2.Job) -> None:
        try:
            job.wait_terminated(TIMEOUT)
            outcomes[name] = None
        except BaseException as error:  # what the wait ended with is the result
            outcomes[name] = error

    threads = [
        threading.Thread(target=wait, args=("running", running)),
        threading.Thread(target=wait, args=("held", held)),
    ]
    client = js._backend._client
    calls = client.calls
    for thread in threads:
        thread.start()
    # Both waits sent (the destroy then goes after them, nearly always once they wait).
    wait_until(lambda: client.calls >= calls + 2, what="both waits sent")
    JobSession.destroy_by_name("destroyed-under-waits")
    try:
        for thread in threads:
            thread.join(TIMEOUT)
    finally:
        os.kill(pid, signal.SIGKILL)  # it ran on, unrecorded
    assert set(outcomes) == {"running", "held"}
    for name, error in outcomes.items():
        assert isinstance(error, drmaa2.InvalidSessionException), (name, error)
        assert "was destroyed" in str(error)


# -- 3. the monitoring session's arguments ------------------------------------------------------


def test_monitoring_session_takes_the_bindings_arguments_and_opens_again(state_dir: str) -> None:
    assert drmaa2.MonitoringSession(name=None, session_dict={}).name
    assert drmaa2.MonitoringSession(session_dict={"name": "ms-dict"}).name == "ms-dict"
    assert drmaa2.MonitoringSession(None, {"name": "ms-second"}).name == "ms-second"
    ms = drmaa2.MonitoringSession("ms-reopened")
    ms.close()
    with pytest.raises(drmaa2.InvalidSessionException):
        ms.get_all_machines()
    ms.open()
    ms.open()  # open already: nothing
    assert ms.name == "ms-reopened"
    assert ms.get_all_jobs({"job_id": str(os.getpid())})[0].id == str(os.getpid())
    ms.close()


# -- 4. a contact that is no state directory ----------------------------------------------------


def test_a_grid_engine_contact_is_refused_and_leaves_nothing_behind(
    state_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    try:
        with pytest.raises(drmaa2.InvalidArgumentException) as caught:
            JobSession("js", "qmaster.example.com")
        message = str(caught.value)
        assert "'qmaster.example.com'" in message and "state directory" in message
        assert list(here.iterdir()) == []
        assert keepers_under((str(here),)) == []
        # An existing directory of that name, or one named as a path, is a state directory.
        (here / "qmaster.example.com").mkdir()
        with JobSession("js", "qmaster.example.com", destroy_on_exit=True) as js:
            assert js.contact == str(here / "qmaster.example.com")
        with JobSession("js", "./new.d", destroy_on_exit=True) as js:
            assert js.contact == str(here / "new.d")
        with JobSession("js", "state", destroy_on_exit=True) as js:  # a plain name: made
            assert js.contact == str(here / "state")
    finally:
        stop_keepers(keepers_under((str(here),)))


def test_an_empty_contact_is_no_contact(state_dir: str) -> None:
    for js in (JobSession(session_dict={"name": "empty", "contact": ""}), JobSession("e", "")):
        assert js.contact == state_dir
        js.destroy()


# -- 5. and 7. auth where the binding takes it --------------------------------------------------


def test_destroy_by_name_takes_auth_second_as_the_binding_does(state_dir: str) -> None:
    JobSession("a", destroy_on_exit=False).close()
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        JobSession.destroy_by_name("a", drmaa2.Sudo(username="someone"))
    with pytest.raises(drmaa2.UnsupportedOperationException, match="auth"):
        JobSession.destroy_by_name("a", {"username": "someone"})
    JobSession.destroy_by_name("a", {})
    JobSession("b", destroy_on_exit=False).close()
    JobSession.destroy_by_name("b", state_dir, auth=None)  # the contact, as a str
    assert JobSession.list_session_names() == []


def test_a_false_auth_is_the_calling_user(state_dir: str) -> None:
    js = JobSession("auth", auth={})
    js.run_job({"remote_command": "/bin/true"}, {}).wait_terminated(TIMEOUT)
    array = js.run_bulk_jobs(SLEEPER, 1, 2, 1, None, {})
    array.job_list[0].terminate(auth={})
    array.terminate({})
    js.destroy(auth={})
    assert JobSession.list_session_names() == []


# -- 6. a job is equal to itself through any session object -------------------------------------


def test_jobs_and_arrays_are_equal_through_another_object_of_their_session(
    js: JobSession,
) -> None:
    job = js.run_job({"remote_command": "/bin/true", "job_name": "eq"})
    array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 2)
    other = drmaa2.open_job_session(js.name)
    try:
        (seen,) = other.get_jobs({"job_name": "eq"})
        assert seen == job and hash(seen) == hash(job)
        assert job in set(other.get_jobs())
        assert other.get_job_array(array.id) == array
        assert hash(other.get_job_array(array.id)) == hash(array)
        assert seen != array.job_list[0]
    finally:
        other.close()
    elsewhere = drmaa2.create_job_session(js.name, os.path.join(js.contact, "elsewhere"))
    try:
        twin = elsewhere.run_job({"remote_command": "/bin/true"})
        assert twin.id == job.id and twin != job  # same id, another session
        twin.wait_terminated(TIMEOUT)
    finally:
        elsewhere.destroy()
        js.wait_all_terminated([job, *array.job_list], TIMEOUT)


def test_jobs_and_arrays_have_the_bindings_to_dict(js: JobSession) -> None:
    """``to_dict()`` of a job and of an array, as Grid Engine's binding gives them (its
    examples print them)."""
    job = js.run_job({"remote_command": "/bin/true"})
    array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 3, 2)
    assert job.to_dict() == {"id": job.id, "session_name": js.name}
    assert array.to_dict() == {
        "id": array.id,
        "job_list": array.job_list,
        "session_name": js.name,
    }
    assert [task.to_dict()["id"] for task in array.to_dict()["job_list"]] == [  # type: ignore[attr-defined]
        f"{array.id}.1",
        f"{array.id}.3",
    ]
    js.wait_all_terminated([job, *array.job_list], TIMEOUT)


# -- 9. session names with @ --------------------------------------------------------------------


def test_a_new_session_name_with_an_at_sign_is_refused(state_dir: str) -> None:
    for create in (lambda: JobSession("me@x"), lambda: drmaa2.create_job_session("me@x")):
        with pytest.raises(drmaa2.InvalidArgumentException, match="'me@x'"):
            create()
    assert JobSession.list_session_names() == []
    # One already in a store (made by other means) is still opened and destroyed by name.
    _, backend = registry.get("os")
    backend.create_job_session("you@y", None).close()
    js = JobSession("you@y", check_for_existing_session=False)
    assert js.name == "you@y"
    js.close()
    JobSession.destroy_by_name("you@y")
    assert JobSession.list_session_names() == []
