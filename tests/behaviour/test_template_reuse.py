"""Submitting the same (or an equal) template again: every submission sees the environment,
working directory, executable and template of its own moment, never those of an earlier one."""

from __future__ import annotations

from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, Documented


def exit_status(job: drmaa2.Job) -> int | None:
    job.wait_terminated(TIMEOUT)
    return job.get_info().exit_status


def test_each_submission_reads_the_environment_of_its_moment(
    session: drmaa2.JobSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = drmaa2.JobTemplate(
        remote_command="/bin/sh", args=["-c", 'test "$DRMAA2_TEST_REUSE" = one']
    )
    monkeypatch.setenv("DRMAA2_TEST_REUSE", "one")
    assert exit_status(session.run_job(template)) == 0
    assert exit_status(session.run_job(template)) == 0
    monkeypatch.setenv("DRMAA2_TEST_REUSE", "two")
    assert exit_status(session.run_job(template)) == 1
    monkeypatch.delenv("DRMAA2_TEST_REUSE")
    assert exit_status(session.run_job(template)) == 1


def test_each_submission_runs_in_the_working_directory_of_its_moment(
    session: drmaa2.JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    template = {"remote_command": "/bin/sh", "args": ["-c", f'test "$(pwd -P)" = {first}']}
    monkeypatch.chdir(first)
    assert exit_status(session.run_job(template)) == 0
    assert exit_status(session.run_job(template)) == 0
    monkeypatch.chdir(second)
    assert exit_status(session.run_job(template)) == 1


def test_each_submission_checks_the_executable_again(
    session: drmaa2.JobSession, documented: Documented, tmp_path: Path
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 4\n")
    script.chmod(0o755)
    template = drmaa2.JobTemplate(remote_command=str(script))
    assert exit_status(session.run_job(template)) == 4
    assert exit_status(session.run_job(template)) == 4

    def cannot_start(status: int) -> None:
        # Refused where the backend checks files at submission; else the job fails with the
        # shell's status for a command that is not executable (126) or not found (127).
        if documented.checks_files_at_submission:
            with pytest.raises(drmaa2.InvalidArgumentException, match="remote_command"):
                session.run_job(template)
        else:
            assert exit_status(session.run_job(template)) == status

    script.chmod(0o644)
    cannot_start(126)
    script.unlink()
    cannot_start(127)
    script.mkdir()
    cannot_start(126)
    recorded = 2 if documented.checks_files_at_submission else 5
    assert len(session.get_jobs()) == recorded, "nothing recorded for the refused ones"


def test_a_template_changed_after_submission_runs_as_changed(
    session: drmaa2.JobSession,
) -> None:
    template = drmaa2.JobTemplate(remote_command="/bin/sh", args=["-c", "exit 1"], job_name="a")
    first = session.run_job(template)
    template.args = ["-c", "exit 2"]
    template.job_name = "b"
    second = session.run_job(template)
    template.args = ["-c", "exit 1"]
    template.job_name = "a"
    third = session.run_job(template)
    assert [exit_status(job) for job in (first, second, third)] == [1, 2, 1]
    assert [job.get_info().job_name for job in (first, second, third)] == ["a", "b", "a"]
    assert first.get_template().args == ["-c", "exit 1"]
    assert second.get_template().args == ["-c", "exit 2"]
    assert {job.get_state()[0] for job in (first, second, third)} == {JobState.FAILED}
    # An equal template submitted after the first one was changed: it runs as itself.
    original = template.copy()
    template.job_name = "changed"
    fourth = session.run_job(original)
    assert exit_status(fourth) == 1
    assert fourth.get_info().job_name == "a"
