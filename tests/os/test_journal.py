"""The store's journal: a job's start and end are durable when run_job / a wait returns, visible
to every process at once, folded into the database exactly once (also after a crash), and the
job ids reserved in blocks stay unique and contiguous."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker import extension
from drmaa2_ostracker import store as store_module
from drmaa2_ostracker.store import STORE_FILE, JobRecord, Store, _parse_journal
from tests.behaviour.conftest import TIMEOUT, wait_until

BACKEND = "os"

# The controller never folds its journal by itself: only a crash, another process or its own
# close can bring the journaled writes into the database.
_PRELUDE = """
import json, sys, drmaa2
import drmaa2_ostracker.supervisor as supervisor
supervisor._FOLD_DELAY = 3600.0
session = drmaa2.create_job_session("journaled", STATE, backend="os")
job = session.run_job({"remote_command": "/bin/sh", "args": ["-c", "exit 3"]})
job.wait_terminated()
print(json.dumps({"job": job.id}), flush=True)
"""


class Controller:
    """A process that runs one job (exit status 3) and reports it, its journal unfolded."""

    def __init__(self, state: Path, then: str) -> None:
        code = _PRELUDE.replace("STATE", repr(str(state))) + textwrap.dedent(then)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the controller failed to start"
        self.job_id = str(json.loads(line)["job"])

    def step(self) -> str:
        """Let it go on to its next job; that job's id."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the controller died"
        return str(json.loads(line)["job"])

    def finish(self) -> None:
        """Let it go on (it reads a line), and wait for it to exit."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.close()
        assert self.process.wait(TIMEOUT) == 0
        self.process.stdout.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            assert stream is not None
            stream.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def journals(state: Path) -> list[Path]:
    return sorted(state.glob("journal-*.log"))


def records_in(journal: Path) -> list[tuple[int, tuple[object, ...]]]:
    return _parse_journal(journal.read_bytes())


def journal_notes(state: Path) -> list[str]:
    with sqlite3.connect(state / STORE_FILE) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM meta WHERE key LIKE 'journal-%'")]


def rows_of(state: Path, job_id: str) -> list[tuple[int, int | None]]:
    with sqlite3.connect(state / STORE_FILE) as conn:
        return conn.execute(
            "SELECT state, exit_status FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchall()


def test_a_killed_controllers_journal_is_folded_when_the_store_opens(state: Path) -> None:
    controller = Controller(state, "import time; time.sleep(3600)")
    (journal,) = journals(state)
    records = records_in(journal)
    assert [seq for seq, _ in records] == [1, 2], "the start and the end are in the journal"
    assert rows_of(state, controller.job_id) == [], "and not yet in the database"
    controller.kill()
    # A crash in the middle of a record leaves a torn last record: it is ignored.
    data = journal.read_bytes()
    end = 0
    for _ in records:  # each record: its length (4 bytes), its CRC (4 bytes), its payload
        end += 8 + int.from_bytes(data[end : end + 4], "little")
    torn = (100).to_bytes(4, "little") + (12345).to_bytes(4, "little") + b"(3, ('u'"
    journal.write_bytes(data[:end] + torn + data[end + len(torn) :])

    js = drmaa2.open_job_session("journaled", str(state), backend=BACKEND)
    job = next(j for j in js.get_jobs() if j.id == controller.job_id)
    info = job.get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 3)
    assert extension.JSESSION_MAX_RSS in (info.implementation_specific or {})
    assert journals(state) == [] and journal_notes(state) == [], "folded once, then removed"
    assert rows_of(state, controller.job_id) == [(int(JobState.FAILED), 3)]
    js.close()


def test_another_process_sees_a_live_controllers_journaled_jobs_at_once(state: Path) -> None:
    controller = Controller(
        state,
        """
        for _ in range(2):
            sys.stdin.readline()
            job = session.run_job({"remote_command": "/bin/true"})
            job.wait_terminated()
            print(json.dumps({"job": job.id}), flush=True)
        sys.stdin.readline()
        session.close()
        """,
    )
    first = controller.job_id
    try:
        js = drmaa2.open_job_session("journaled", str(state), backend=BACKEND)
        job = next(j for j in js.get_jobs() if j.id == first)
        assert (job.get_info().job_state, job.get_info().exit_status) == (JobState.FAILED, 3)
        job.reap()  # gone from the database: no later fold may bring it back
        second = controller.step()
        assert [(j.id, j.get_state()[0]) for j in js.get_jobs()] == [(second, JobState.DONE)]
        # The third job's records follow the second's in the journal (its id was reserved
        # with the second's): only they are applied, the second's are not applied again.
        js.get_jobs()[0].reap()
        third = controller.step()
        assert [(j.id, j.get_state()[0]) for j in js.get_jobs()] == [(third, JobState.DONE)]
    finally:
        controller.finish()
    assert rows_of(state, first) == rows_of(state, second) == [], "folded exactly once"
    assert rows_of(state, third) == [(int(JobState.DONE), 0)]
    assert journals(state) == [] and journal_notes(state) == []
    js.close()


def test_a_controller_that_exits_folds_and_removes_its_journal(state: Path) -> None:
    controller = Controller(state, "sys.stdin.readline()")
    assert rows_of(state, controller.job_id) == []
    controller.finish()
    assert rows_of(state, controller.job_id) == [(int(JobState.FAILED), 3)]
    assert journals(state) == [] and journal_notes(state) == []


def test_the_journal_is_folded_into_the_database_within_moments(state: Path) -> None:
    js = drmaa2.create_job_session("soon", str(state), backend=BACKEND)
    job = js.run_job({"remote_command": "/bin/true"})
    job.wait_terminated(TIMEOUT)
    # Nothing in this process reads the store: the reaper thread folds on its own.
    wait_until(lambda: rows_of(state, job.id) == [(int(JobState.DONE), 0)])
    wait_until(lambda: all(records_in(j) == [] for j in journals(state)))
    js.close()


def test_job_ids_stay_contiguous_across_close_and_reopen(state: Path) -> None:
    js = drmaa2.create_job_session("ids", str(state), backend=BACKEND)
    jobs = [js.run_job({"remote_command": "/bin/true"}) for _ in range(3)]
    array = js.run_bulk_jobs({"remote_command": "/bin/true"}, 1, 2)
    assert [j.id for j in jobs] + [array.id] == ["1", "2", "3", "4"]
    js.wait_all_terminated([*jobs, *array.job_list], TIMEOUT)
    js.close()
    again = drmaa2.open_job_session("ids", str(state), backend=BACKEND)
    other = drmaa2.open_job_session("ids", str(state), backend=BACKEND)
    mixed = [s.run_job({"remote_command": "/bin/true"}) for s in (again, other, again, other)]
    assert mixed[0].id == "5", "ids reserved and not used were given back on close"
    assert len({j.id for j in mixed}) == 4, "two session objects never share an id"
    for j in mixed:
        j.wait_terminated(TIMEOUT)
    again.close()
    other.close()


def test_without_a_journal_every_write_goes_straight_to_the_database(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A journal this large cannot be allocated: like a full disk.
    monkeypatch.setattr(store_module, "_JOURNAL_SIZE", 1 << 62)
    js = drmaa2.create_job_session("straight", str(state), backend=BACKEND)
    try:
        job = js.run_job({"remote_command": "/bin/sh", "args": ["-c", "exit 2"]})
        job.wait_terminated(TIMEOUT)
        # Committed before the wait returned: another connection sees it at once.
        assert rows_of(state, job.id) == [(int(JobState.FAILED), 2)]
        assert job.get_info().exit_status == 2
        assert all(records_in(journal) == [] for journal in journals(state))
    finally:
        js.close()


def test_two_stores_of_one_directory_in_one_process_keep_their_own_journals(
    state: Path,
) -> None:
    first, second = Store(str(state)), Store(str(state))
    try:
        first.create_session("both", 1)
        for store, job_id in ((first, "1"), (second, "2")):
            store.journal_insert(
                JobRecord(session="both", job_id=job_id, state=JobState.RUNNING, submission_us=1)
            )
        assert len(journals(state)) == 2
        assert [r.job_id for r in first.jobs("both")] == ["1", "2"]
        assert [r.job_id for r in second.jobs("both")] == ["1", "2"]
    finally:
        first.close()
        second.close()
    assert journals(state) == [] and journal_notes(state) == []
    assert rows_of(state, "1") == rows_of(state, "2") == [(int(JobState.RUNNING), None)]


def test_journaled_writes_of_a_transaction_that_is_rolled_back_stay_pending(
    state: Path,
) -> None:
    store = Store(str(state))
    try:
        store.create_session("s", 1)

        def failing_operation() -> None:
            with store.transaction():
                store.journal_insert(
                    JobRecord(session="s", job_id="5", state=JobState.RUNNING, submission_us=1)
                )
                store.update_job("s", "5", state=int(JobState.DONE))  # joins the insert
                raise RuntimeError("the operation fails: its transaction is rolled back")

        with pytest.raises(RuntimeError):
            failing_operation()
        store.journal_insert(
            JobRecord(session="s", job_id="6", state=JobState.RUNNING, submission_us=1)
        )
        store.commit()
        # The insert survives the rollback; the failed operation's own write does not.
        assert [(r.job_id, r.state) for r in store.jobs("s")] == [
            ("5", JobState.RUNNING),
            ("6", JobState.RUNNING),
        ]
    finally:
        store.close()


def test_a_journal_made_after_the_last_was_retired_is_folded_by_others(state: Path) -> None:
    writer, reader = Store(str(state)), Store(str(state))
    try:
        writer.create_session("s", 1)
        writer.journal_insert(
            JobRecord(session="s", job_id="1", state=JobState.DONE, submission_us=1)
        )
        writer.retire_journal()
        writer.journal_insert(
            JobRecord(session="s", job_id="2", state=JobState.DONE, submission_us=1)
        )
        assert [r.job_id for r in reader.jobs("s")] == ["1", "2"]
    finally:
        writer.close()
        reader.close()


def test_a_forked_child_leaves_its_parents_store_alone(state: Path) -> None:
    code = textwrap.dedent(
        f"""
        import os, sys, threading, drmaa2
        session = drmaa2.create_job_session("forked", {str(state)!r}, backend="os")
        session.run_job({{"remote_command": "/bin/true"}}).wait_terminated()
        store = session._backend._store
        journal = os.path.join(store.state_dir, store._journal_name)
        assert os.path.exists(journal)
        with store._lock:  # held by another thread of the parent when it forks
            child = os.fork()
            if child == 0:
                sys.exit(0)  # a normal exit: the at-exit hooks run in the child
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.path.exists(journal), "the child removed its parent's journal"
        print("ok", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
    assert journals(state) == [], "the parent's own exit folded and removed it"
