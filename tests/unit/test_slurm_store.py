"""The slurm backend's store: destroying a session names every pending job it had, read in
the same transaction as the destruction, so that a job another process records meanwhile is
either among them (and cancelled) or refused (its session gone). A real SQLite file, two
connections to it as two processes have; no cluster needed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from drmaa2.enums import JobState
from drmaa2.errors import InvalidArgumentException
from drmaa2_slurm.store import JobRecord, Store


def _record(job_id: str, state: JobState = JobState.QUEUED) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        slurm_id=job_id,
        array_id=None,
        task_index=None,
        job_name=None,
        submitted=time.time(),
        submission_machine="here",
        template=None,
        state=state,
    )


def test_destroy_names_the_unfinished_jobs_and_a_later_record_is_refused(
    tmp_path: Path,
) -> None:
    one, other = Store(str(tmp_path), "c"), Store(str(tmp_path), "c")
    try:
        one.create_session("s")
        one.add("s", [_record("11"), _record("12", JobState.DONE)], None)
        other.add("s", [_record("13", JobState.RUNNING)], None)
        assert other.destroy_session("s") == ["11", "13"]
        assert not one.session_exists("s")
        with pytest.raises(sqlite3.IntegrityError):
            one.add("s", [_record("14")], None)
        with pytest.raises(InvalidArgumentException, match="no job session named 's'"):
            one.destroy_session("s")
    finally:
        one.close()
        other.close()


def test_destroy_waits_for_a_record_being_written_and_names_its_job(tmp_path: Path) -> None:
    one, other = Store(str(tmp_path), "c"), Store(str(tmp_path), "c")
    try:
        one.create_session("s")
        # Another process is recording a submission: its transaction is open.
        writer = sqlite3.connect(one.path, timeout=30.0, isolation_level=None)
        writer.execute("PRAGMA foreign_keys=ON")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO jobs (session, job_id, slurm_id, submitted, submission_machine, state) "
            "VALUES ('s', '21', '21', 0, 'here', 1)"
        )
        named: list[list[str]] = []
        destroying = threading.Thread(target=lambda: named.append(other.destroy_session("s")))
        destroying.start()
        destroying.join(0.5)
        assert destroying.is_alive(), "the destroy did not wait for the open transaction"
        writer.execute("COMMIT")
        writer.close()
        destroying.join(30)
        assert named == [["21"]]
    finally:
        one.close()
        other.close()


def test_destroy_of_another_incarnation_changes_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "c")
    try:
        store.create_session("s")
        store.add("s", [_record("31")], None)
        with pytest.raises(InvalidArgumentException):
            store.destroy_session("s", created=1.0)
        assert store.session_exists("s")
        assert [r.job_id for r in store.jobs("s")] == ["31"]
    finally:
        store.close()
