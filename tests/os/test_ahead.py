"""Submissions sent ahead (``drmaa2_ostracker.keeper.ahead``): in a burst of run_job, a
client sends each submission without waiting for the keeper's answer; the job learns its id
when it is first asked for. Every job is recorded exactly once and in order, whatever happens
to the client; a submission that fails raises from its job; submissions a keeper that died
left unanswered are made again with the next keeper, each once.

The tests widen the burst window (``BURST_GAP``) so that every run_job after the first is
sent ahead, however loaded the machine."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import job_session
from drmaa2_ostracker.keeper.ahead import WINDOW
from tests.behaviour.conftest import TIMEOUT, wait_until
from tests.keepers import gone
from tests.os.test_persistence import keeper_pid, python

TRUE = {"remote_command": "/bin/true"}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(job_session, "BURST_GAP", 3600.0)
    return tmp_path / "state"


@pytest.fixture
def js(state: Path) -> Iterator[drmaa2.JobSession]:
    session = drmaa2.JobSession("burst", str(state), backend="os")
    try:
        yield session
    finally:
        session.close()


def sent_ahead(jobs: list[drmaa2.Job]) -> int:
    """How many of the jobs do not know their id yet (their submission was sent ahead)."""
    return sum(not isinstance(job._id, str) for job in jobs)


def test_a_burst_is_sent_ahead_and_recorded_in_order(js: drmaa2.JobSession) -> None:
    jobs = [js.run_job(TRUE) for _ in range(3 * WINDOW + 5)]
    # The first sends the template and waits; the others go ahead, more than a window.
    assert sent_ahead(jobs) == len(jobs) - 1
    # Printed, as scripts print what they submitted, each shows its id (learnt then).
    assert (
        repr(jobs[:3])
        == "[" + ", ".join(f"Job(id='{n}', session='burst')" for n in (1, 2, 3)) + "]"
    )
    ids = [job.id for job in jobs]
    assert sent_ahead(jobs) == 0
    assert ids == [str(number) for number in range(1, len(jobs) + 1)]
    js.wait_all_terminated(jobs, TIMEOUT)
    assert {job.get_state()[0] for job in jobs} == {JobState.DONE}
    assert [job.id for job in js.get_jobs()] == ids


def test_a_call_after_a_burst_sees_every_job_of_it(js: drmaa2.JobSession) -> None:
    jobs = [js.run_job({"remote_command": "/bin/sleep", "args": ["60"]}) for _ in range(6)]
    try:
        assert sent_ahead(jobs) == 5
        # Another call (here, a listing) is answered after the submissions before it.
        listed = js.get_jobs()
        assert sent_ahead(jobs) == 5  # read, not yet asked for by the jobs
        assert [job.id for job in listed] == [job.id for job in jobs]
        assert {job.get_state()[0] for job in listed} == {JobState.RUNNING}
    finally:
        for job in jobs:
            with contextlib.suppress(drmaa2.InvalidStateException):
                job.terminate()
        js.wait_all_terminated(jobs, TIMEOUT)


def test_jobs_sent_ahead_by_a_client_killed_at_once_are_all_recorded(state: Path) -> None:
    # The client stops the keeper, sends 20 submissions ahead (they wait in the keeper's
    # socket), and is SIGKILLed: the keeper, once continued, handles every one of them.
    result = python(
        f"""
        import os, signal, drmaa2
        from drmaa2_ostracker import job_session
        job_session.BURST_GAP = 3600.0
        js = drmaa2.JobSession("killed", {str(state)!r}, backend="os")
        first = js.run_job({{"remote_command": "/bin/true"}})
        keeper = js._backend._client.keeper_pid
        os.kill(keeper, signal.SIGSTOP)
        jobs = [js.run_job({{"remote_command": "/bin/true"}}) for _ in range(20)]
        print(keeper, sum(not isinstance(job._id, str) for job in jobs), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    keeper, ahead = map(int, result.stdout.split())
    assert ahead == 20
    os.kill(keeper, signal.SIGCONT)
    js = drmaa2.JobSession("killed", str(state), backend="os")
    try:
        wait_until(lambda: len(js.get_jobs()) == 21, what="the 21 jobs to be recorded")
        jobs = js.get_jobs()
        js.wait_all_terminated(jobs, TIMEOUT)
        assert [job.id for job in jobs] == [str(number) for number in range(1, 22)]
        assert {job.get_state()[0] for job in jobs} == {JobState.DONE}
        assert keeper_pid(state) == keeper  # handled by that keeper, not a new one
    finally:
        js.close()


def test_a_listing_right_after_a_client_was_killed_shows_every_job_it_was_given(
    state: Path,
) -> None:
    """The submissions a SIGKILLed client sent ahead (its run_job returned for each) are in
    the first listing another process makes, not some milliseconds later (it missed up to
    half of them)."""
    for attempt in range(3):
        result = python(
            f"""
            import os, signal, drmaa2
            from drmaa2_ostracker import job_session
            job_session.BURST_GAP = 3600.0
            js = drmaa2.JobSession("killed{attempt}", {str(state)!r}, backend="os")
            jobs = [js.run_job({{"remote_command": "/bin/true"}}) for _ in range(30)]
            print(sum(not isinstance(job._id, str) for job in jobs), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        assert result.returncode == -signal.SIGKILL, result.stderr
        assert int(result.stdout) > 0  # some were sent ahead
        js = drmaa2.JobSession(f"killed{attempt}", str(state), backend="os")
        try:
            assert len(js.get_jobs()) == 30
            js.wait_all_terminated(js.get_jobs(), TIMEOUT)
        finally:
            js.close()


def test_a_submission_sent_ahead_that_fails_raises_from_its_job(
    js: drmaa2.JobSession, state: Path
) -> None:
    js.run_job(TRUE)  # and no other call from this process: the next one goes ahead
    # Another process destroys the session: the next submission, sent ahead, is refused.
    result = python(
        f"import drmaa2; drmaa2.destroy_job_session('burst', {str(state)!r}, backend='os')"
    )
    assert result.returncode == 0, result.stderr
    job = js.run_job(TRUE)
    assert sent_ahead([job]) == 1
    # Showing the job says its submission failed, and raises nothing.
    assert repr(job).startswith("Job(id=\"(not submitted: job session 'burst' ")
    for _ in range(2):  # every use of the job raises, not only the first
        with pytest.raises(drmaa2.Drmaa2Exception, match="burst"):
            _ = job.id
        with pytest.raises(drmaa2.Drmaa2Exception, match="burst"):
            job.get_state()


def test_a_run_job_after_another_call_is_not_sent_ahead(js: drmaa2.JobSession, state: Path) -> None:
    # Only back-to-back submissions are a burst: after any other call of this process (here,
    # destroying the session), run_job waits for its answer, and raises the refusal itself.
    js.run_job(TRUE).wait_terminated(TIMEOUT)
    js.run_job(TRUE)
    drmaa2.destroy_job_session("burst", str(state), backend="os")
    with pytest.raises(drmaa2.Drmaa2Exception, match="burst"):
        js.run_job(TRUE)


def test_submissions_unanswered_when_the_keeper_dies_are_made_again_once(
    js: drmaa2.JobSession, state: Path, tmp_path: Path
) -> None:
    # Each goes again to the next keeper with its key: made once (these five were never
    # read by the keeper that died, so the next one makes them; see
    # test_persistence's SIGKILL test for submissions a dying keeper had made).
    out = tmp_path / "out"
    template = {"remote_command": "/bin/sh", "args": ["-c", f"echo $JOB_ID >> {out}"]}
    first = js.run_job(template)
    keeper = keeper_pid(state)
    os.kill(keeper, signal.SIGSTOP)
    try:
        jobs = [js.run_job(template) for _ in range(5)]
        assert sent_ahead(jobs) == 5
    finally:
        os.kill(keeper, signal.SIGKILL)
    wait_until(lambda: gone(keeper), what=f"keeper {keeper} to end")
    ids = [job.id for job in jobs]
    assert len(set(ids)) == 5 and "1" not in ids
    js.wait_all_terminated([first, *jobs], TIMEOUT)
    assert all(job.get_state()[0] is JobState.DONE for job in jobs)
    assert sorted(out.read_text().split()) == sorted(["1", *ids]), "each ran once"
    after = js.run_job(TRUE)
    after.wait_terminated(TIMEOUT)
    assert [job.id for job in js.get_jobs()] == ["1", *ids, after.id]


def test_a_fork_after_a_burst_leaves_the_ids_to_both(state: Path) -> None:
    result = python(
        f"""
        import os, drmaa2
        from drmaa2_ostracker import job_session
        job_session.BURST_GAP = 3600.0
        js = drmaa2.JobSession("forked", {str(state)!r}, backend="os")
        jobs = [js.run_job({{"remote_command": "/bin/true"}}) for _ in range(10)]
        pid = os.fork()
        if pid == 0:
            print("child", *[job.id for job in jobs], flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent", *[job.id for job in jobs], flush=True)
        js.wait_all_terminated(jobs, 60)
        js.close()
        """
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    expected = " ".join(str(number) for number in range(1, 11))
    assert lines == {"child": expected, "parent": expected}


def test_a_submission_whose_plan_the_keeper_forgot_is_made_again(
    js: drmaa2.JobSession, state: Path
) -> None:
    template = {"remote_command": "/bin/true", "job_name": "mine"}
    js.run_job(template)  # the keeper learns its plan
    # Another process makes the keeper learn more plans than it keeps: it forgets this one.
    result = python(
        f"""
        import drmaa2
        js = drmaa2.JobSession("other", {str(state)!r}, backend="os")
        jobs = [js.run_job({{"remote_command": "/bin/true", "job_name": f"other{{n}}"}})
                for n in range(300)]
        js.wait_all_terminated(jobs, 120)
        js.close()
        """
    )
    assert result.returncode == 0, result.stderr
    job = js.run_job(template)
    assert sent_ahead([job]) == 1
    job.wait_terminated(TIMEOUT)  # answered "unknown plan": sent again, whole
    assert job.id == "2"
    assert job.get_state()[0] is JobState.DONE
    assert job.job_name == "mine"


def test_a_client_exiting_while_its_keeper_is_stopped_does_not_hang(state: Path) -> None:
    result = python(
        f"""
        import os, signal, drmaa2
        from drmaa2_ostracker import job_session
        from drmaa2_ostracker.keeper import client
        job_session.BURST_GAP = 3600.0
        client.SETTLE_TIMEOUT = 0.5
        js = drmaa2.JobSession("stopped", {str(state)!r}, backend="os")
        js.run_job({{"remote_command": "/bin/true"}})
        keeper = js._backend._client.keeper_pid
        os.kill(keeper, signal.SIGSTOP)
        jobs = [js.run_job({{"remote_command": "/bin/true"}}) for _ in range(5)]
        print(keeper, sum(not isinstance(job._id, str) for job in jobs), flush=True)
        """  # and exits, the keeper stopped: its answers are waited for half a second
    )
    keeper, ahead = map(int, result.stdout.split())
    os.kill(keeper, signal.SIGCONT)
    assert result.returncode == 0, result.stderr
    assert ahead == 5
    # Sent, so made: the keeper, continued, handles them.
    js = drmaa2.JobSession("stopped", str(state), backend="os")
    try:
        wait_until(lambda: len(js.get_jobs()) == 6, what="the six jobs to be recorded")
        js.wait_all_terminated(js.get_jobs(), TIMEOUT)
        assert {job.get_state()[0] for job in js.get_jobs()} == {JobState.DONE}
    finally:
        js.close()


def test_a_burst_right_after_the_keeper_was_killed_goes_to_the_next_keeper(
    js: drmaa2.JobSession, state: Path
) -> None:
    first = [js.run_job(TRUE), js.run_job(TRUE)]
    assert sent_ahead(first) == 1
    assert [job.id for job in first] == ["1", "2"]  # read: no call made
    old = keeper_pid(state)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: gone(old), what=f"keeper {old} to end")
    # The next goes ahead, to the killed keeper: it cannot be sent on the connection that
    # keeper closed, so it is made as a call, by a new keeper; the others go ahead to that one.
    jobs = [js.run_job(TRUE) for _ in range(5)]
    assert sent_ahead(jobs) == 4
    ids = [int(job.id) for job in jobs]
    # (Ids the killed keeper had reserved and not used are skipped.)
    assert ids == list(range(ids[0], ids[0] + 5)) and ids[0] > 2
    js.wait_all_terminated(first + jobs, TIMEOUT)
    assert {job.get_state()[0] for job in jobs} == {JobState.DONE}
    assert keeper_pid(state) != old
