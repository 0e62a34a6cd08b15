"""Damaged and foreign files in a state directory (issue 14, point 5), each a real file made
with the sqlite3 module or a real directory or FIFO in a file's place.

- A store that is not usable (a garbage, missing or unmigratable schema version, a table or
  column missing, another program's database) raises SessionManagementException from every
  entry point, naming the path and what to do, and is left byte for byte as it was: no -wal,
  -shm or -journal is made for it, and no keeper stays.
- Any other file that cannot be used (a lock, the log, the socket, a companion of the store,
  a -wal that is no log) is set aside as ``<name>.damaged-<time>``, reported, and the session
  works, with nothing recorded lost.
- A full disk or a descriptor limit at open is an OutOfResourceException, never "not a usable
  store"; once the resource is back, the same call works.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from drmaa2_ostracker.store.schema import STORE_FILE
from tests.behaviour.conftest import TIMEOUT, file_text, wait_until
from tests.os.test_persistence import keepers_of, python, stop_keeper

BACKEND = "os"
COMPANIONS = ("-wal", "-shm", "-journal")

#: Every entry point that needs the keeper, and so the store.
ENTRY_POINTS: dict[str, Callable[[Path], object]] = {
    "create_job_session": lambda state: drmaa2.create_job_session(
        "new", str(state), backend=BACKEND
    ),
    "open_job_session": lambda state: drmaa2.open_job_session("kept", str(state), backend=BACKEND),
    "get_job_session_names": lambda state: drmaa2.get_job_session_names(
        str(state), backend=BACKEND
    ),
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store: session "kept" with one finished job; its keeper stopped (so the store
    is one file, checkpointed)."""
    state = tmp_path_factory.mktemp("healthy") / "state"
    js = drmaa2.create_job_session("kept", str(state), backend=BACKEND)
    js.run_job({"remote_command": "/bin/true", "job_name": "recorded"}).wait_terminated(TIMEOUT)
    js.close()
    stop_keeper(state)
    assert sorted(p.name for p in state.iterdir() if p.name.startswith(STORE_FILE)) == [STORE_FILE]
    return state / STORE_FILE


@pytest.fixture
def state(tmp_path: Path, healthy: Path) -> Path:
    """A state directory holding a copy of the healthy store."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    shutil.copy2(healthy, state / STORE_FILE)
    return state


def store_files(state: Path) -> dict[str, tuple[bytes, int] | None]:
    """The store and its companions: bytes and mtime (None for a -shm, an index SQLite
    rebuilds from the -wal whenever it reads one)."""
    return {
        path.name: None
        if path.name.endswith("-shm")
        else (path.read_bytes(), path.stat().st_mtime_ns)
        for path in state.iterdir()
        if path.name.startswith(STORE_FILE)
    }


def damage(store: Path, *statements: str) -> None:
    """Change a store with the sqlite3 module as another program would."""
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def damage_in_wal(store: Path, *statements: str) -> None:
    """Change a store in a process that dies before its change leaves the -wal."""
    done = python(
        f"""
        import os, sqlite3
        conn = sqlite3.connect({str(store)!r}, isolation_level=None)
        for statement in {list(statements)!r}:
            conn.execute(statement)
        os._exit(0)
        """
    )
    assert done.returncode == 0, done.stderr
    assert (store.parent / (STORE_FILE + "-wal")).stat().st_size > 0


def assert_refused_untouched(state: Path, *words: str) -> None:
    """Every entry point raises SessionManagementException naming the store and what to do;
    the store files are as they were, none is added; no keeper stays."""
    before = store_files(state)
    for name, call in ENTRY_POINTS.items():
        with pytest.raises(drmaa2.SessionManagementException) as raised:
            call(state)
        message = str(raised.value)
        assert type(raised.value) is drmaa2.SessionManagementException, (name, message)
        assert str(state / STORE_FILE) in message, (name, message)
        assert "move it away" in message, (name, message)
        for word in words:
            assert word in message, (name, word, message)
        assert store_files(state) == before, name
    wait_until(lambda: not keepers_of(state), what="no keeper to serve a refused store")


# -- a store that is not usable: refused, untouched ------------------------------------------

UNUSABLE = {
    "no schema version": (["DELETE FROM meta WHERE key = 'schema_version'"], "no schema version"),
    "version abc": (["UPDATE meta SET value = 'abc'"], "'abc' is not a number"),
    "version empty": (["UPDATE meta SET value = ''"], "'' is not a number"),
    "version negative": (["UPDATE meta SET value = '-1'"], "'-1' is not a number"),
    "version 0, no migration": (["UPDATE meta SET value = '0'"], "schema version 0"),
    "jobs dropped": (["DROP TABLE jobs"], "table jobs"),
    "sessions dropped": (["DROP TABLE sessions"], "table sessions"),
    "arrays dropped": (["DROP TABLE arrays"], "table arrays"),
    "meta dropped": (["DROP TABLE meta"], "no meta table"),
    "column dropped": (["ALTER TABLE jobs DROP COLUMN launch"], "jobs.launch"),
    "meta column renamed": (["ALTER TABLE meta RENAME COLUMN value TO v"], "meta.value"),
}


@pytest.mark.parametrize("case", UNUSABLE)
def test_a_damaged_store_is_refused_untouched(state: Path, case: str) -> None:
    statements, words = UNUSABLE[case]
    damage(state / STORE_FILE, *statements)
    assert_refused_untouched(state, words)


@pytest.mark.parametrize("case", ["version abc", "jobs dropped", "column dropped"])
def test_a_store_damaged_in_its_wal_is_refused_untouched(state: Path, case: str) -> None:
    statements, words = UNUSABLE[case]
    damage_in_wal(state / STORE_FILE, *statements)
    assert_refused_untouched(state, words)


@pytest.mark.parametrize("journal", ["delete", "wal", "wal, pending"])
def test_another_programs_database_is_refused_and_not_switched_to_wal(
    tmp_path: Path, journal: str
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    store = state / STORE_FILE
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal.split(',')[0]}")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('precious')")
    conn.close()
    if journal == "wal, pending":
        damage_in_wal(store, "INSERT INTO notes VALUES ('more')")
    assert_refused_untouched(state, "not a drmaa2-ostracker store", "notes")
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert mode == journal.split(",")[0]


def test_a_store_that_is_not_a_database_is_refused_untouched(state: Path) -> None:
    (state / STORE_FILE).write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    assert_refused_untouched(state)


# -- other files that cannot be used: set aside, reported, nothing lost ----------------------


def make(path: Path, kind: str) -> None:
    """Put a file of ``kind`` at ``path`` (a directory with something in it)."""
    if kind == "directory":
        path.mkdir()
        (path / "inside").write_text("kept\n")
    elif kind == "FIFO":
        os.mkfifo(path, 0o600)
    elif kind == "another user's file":
        if os.geteuid() != 0:
            pytest.skip("giving a file to another user needs root")
        path.write_text("not ours\n")
        os.chown(path, 65534, 65534)
    else:
        raise AssertionError(kind)


#: The keeper's socket (anything else in its place is set aside too).
SOCKET = "keeper.sock"

UNUSABLE_FILES = [
    *[
        (name, kind)
        for name in ("keeper.lock", "keeper-start.lock", "keeper.log")
        for kind in ("directory", "FIFO", "another user's file")
    ],
    *[(SOCKET, kind) for kind in ("directory", "FIFO", "another user's file")],
    *[(STORE_FILE + suffix, kind) for suffix in COMPANIONS for kind in ("directory", "FIFO")],
]


@pytest.mark.parametrize(("name", "kind"), UNUSABLE_FILES)
def test_a_file_that_cannot_be_used_is_set_aside(
    state: Path,
    name: str,
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.WARNING)
    make(state / name, kind)
    found = state / name
    inode = found.lstat().st_ino
    js = drmaa2.open_job_session("kept", str(state), backend=BACKEND)
    try:
        (kept,) = js.get_jobs()
        assert kept.get_info().job_name == "recorded"
        assert kept.get_state()[0] is JobState.DONE
        job = js.run_job({"remote_command": "/bin/true"})
        job.wait_terminated(TIMEOUT)
        assert job.get_state()[0] is JobState.DONE
    finally:
        js.close()
    (aside,) = [p for p in state.iterdir() if p.name.startswith(f"{name}.damaged-")]
    assert aside.lstat().st_ino == inode, "the very file is set aside, not copied"
    if kind == "directory":
        assert (aside / "inside").read_text() == "kept\n"
    reported = caplog.text + capfd.readouterr().err + file_text(state / "keeper.log")
    assert f"{state / name} is a" in reported or f"{state / name} belongs" in reported
    assert str(aside) in reported


@pytest.mark.parametrize("kind", ["symbolic link", "file", "another user's directory"])
def test_an_unusable_orphans_directory_is_set_aside_and_the_anchor_keeps_ends(
    tmp_path: Path, kind: str
) -> None:
    """The directory where a killed keeper's anchor keeps its jobs' ends, planted as a
    symbolic link (its target untouched), a file or another user's directory, is set aside
    and made anew: an end that comes while no keeper runs is still exact. (The keeper ran
    without a working anchor, saying so in its log only.)"""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    orphans = state / "orphans"
    target = tmp_path / "elsewhere"
    target.mkdir()
    if kind == "symbolic link":
        orphans.symlink_to(target)
    elif kind == "file":
        orphans.write_text("not a directory\n")
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        orphans.mkdir()
        os.chown(orphans, 65534, 65534)
    inode = orphans.lstat().st_ino
    go = tmp_path / "go"
    js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
    job = js.run_job(
        {
            "remote_command": "/bin/sh",
            "args": ["-c", f"while [ ! -e {go} ]; do sleep 0.01; done; exit 3"],
        }
    )
    job.wait_started(TIMEOUT)
    (aside,) = [p for p in state.iterdir() if p.name.startswith("orphans.damaged-")]
    assert aside.lstat().st_ino == inode, "the very file is set aside"
    assert orphans.is_dir() and not orphans.is_symlink()
    assert orphans.stat().st_uid == os.geteuid()
    (keeper,) = keepers_of(state)
    keeper.kill()
    keeper.wait(TIMEOUT)
    go.touch()  # the job ends while no keeper runs: its anchor keeps the end
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 3), info.annotation
    assert list(target.iterdir()) == []
    js.destroy()


def test_a_wal_that_is_no_log_is_set_aside(state: Path) -> None:
    garbage = os.urandom(4096)
    (state / (STORE_FILE + "-wal")).write_bytes(garbage)
    js = drmaa2.open_job_session("kept", str(state), backend=BACKEND)
    try:
        assert [j.get_info().job_name for j in js.get_jobs()] == ["recorded"]
    finally:
        js.close()
    (aside,) = state.glob(f"{STORE_FILE}-wal.damaged-*")
    assert aside.read_bytes() == garbage
    assert "is not an SQLite write-ahead log" in file_text(state / "keeper.log")


def test_a_symlink_companion_of_the_store_is_refused_and_its_target_untouched(
    state: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"")
    (state / (STORE_FILE + "-wal")).symlink_to(target)
    with pytest.raises(drmaa2.SessionManagementException, match="symbolic link"):
        drmaa2.open_job_session("kept", str(state), backend=BACKEND)
    assert target.read_bytes() == b""
    wait_until(lambda: not keepers_of(state), what="no keeper to serve")


# -- a resource that runs out is not a damaged store ----------------------------------------


@contextlib.contextmanager
def small_file_system(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        stop_keeper(where / "state")
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            # Still held by a descriptor of this process (a client's): detach it now, the
            # kernel frees it when that closes.
            subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; the file that fills it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return filler


def test_a_full_disk_at_first_open_is_out_of_resource_and_then_works(tmp_path: Path) -> None:
    with small_file_system(tmp_path / "small") as small:
        state = small / "state"
        state.mkdir(mode=0o700)
        filler = fill(small)
        with pytest.raises(drmaa2.OutOfResourceException) as raised:
            drmaa2.create_job_session("s", str(state), backend=BACKEND)
        assert str(state) in str(raised.value)
        assert "free" in str(raised.value)
        assert not list(state.glob(f"{STORE_FILE}*")), "no half-made store is left"
        wait_until(lambda: not keepers_of(state), what="no keeper to stay")
        filler.unlink()
        js = drmaa2.create_job_session("s", str(state), backend=BACKEND)
        try:
            js.run_job({"remote_command": "/bin/true"}).wait_terminated(TIMEOUT)
        finally:
            js.close()


_OPEN_WITH_FEW_DESCRIPTORS = """
import os, resource, sys
import drmaa2
from drmaa2_ostracker.store import Store
state, free = sys.argv[1], int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
taken = []
try:
    while True:
        taken.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
for fd in taken[len(taken) - free:]:
    os.close(fd)
try:
    Store(state).close()
    print("opened")
except drmaa2.Drmaa2Exception as error:
    print(type(error).__name__, error)
"""


@pytest.mark.parametrize("free", [0, 1, 2])
def test_a_descriptor_limit_at_open_is_out_of_resource(state: Path, free: int) -> None:
    before = store_files(state)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OPEN_WITH_FEW_DESCRIPTORS), str(state), str(free)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OutOfResourceException"), done.stdout
    assert str(state / STORE_FILE) in done.stdout and "RLIMIT_NOFILE = 64" in done.stdout
    after = store_files(state)
    assert after[STORE_FILE] == before[STORE_FILE]
    # Once the limit is lifted, the store opens with everything in it.
    js = drmaa2.open_job_session("kept", str(state), backend=BACKEND)
    try:
        assert [j.get_info().job_name for j in js.get_jobs()] == ["recorded"]
    finally:
        js.close()


def test_a_descriptor_limit_when_starting_the_keeper_is_out_of_resource(tmp_path: Path) -> None:
    code = f"""
    import resource, drmaa2
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        drmaa2.create_job_session("s", {str(tmp_path / "state")!r}, backend="os")
        print("opened")
    except drmaa2.Drmaa2Exception as error:
        print(type(error).__name__, error)
    """
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(("OutOfResourceException", "opened")), done.stdout
    if done.stdout.startswith("OutOfResourceException"):
        assert "RLIMIT_NOFILE = 8" in done.stdout and str(tmp_path / "state") in done.stdout
