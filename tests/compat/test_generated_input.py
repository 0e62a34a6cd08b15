"""Generated input (issue 13): templates, array bounds, filters and session names, well- and
ill-formed, fed to run_job, run_bulk_jobs, get_jobs and create_job_session of the ``os``
backend. Every call returns or raises a DRMAA2 exception other than InternalException, and a
refused call leaves the session's jobs (or the session names) as they were.

Nothing generated is run: remote_command is /bin/true, /bin/false or a path that does not
exist; paths are relative to a temporary working directory (without ``..``) or chosen files in
it; HOME is that directory; job_environment sets no PATH and no LD_ variable. Every job is
ended and waited for at the end, and the keeper is left with no child.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import drmaa2
from drmaa2 import INFINITE_TIME, JobSession, JobState
from drmaa2.types import INT_MAX
from drmaa2_ostracker import limits
from tests.behaviour.conftest import cleanup_session
from tests.compat.conftest import TIMEOUT
from tests.keepers import keepers_under

#: Bounded: each example submits through the keeper, and may start a job.
BOUNDED = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

UTC = datetime.timezone.utc
HUGE = 99999999999999999999

# -- strings and numbers ------------------------------------------------------------------------

#: Text of every kind, lone surrogates and control characters (NUL too) included.
weird_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "So"]), max_size=6),
    st.sampled_from(["", "\0", "\udcff", "a\nb", "$DRMAA2_INDEX$", "é" * 300, "x" * 5000]),
)
#: Relative path text that stays inside the working directory.
relative_text = weird_text.filter(lambda s: ".." not in s and not s.startswith(("/", "$")))
numbers = st.one_of(
    st.integers(-5, 25),
    st.sampled_from([0, -1, INT_MAX, INT_MAX + 1, 2**64, HUGE, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["60", "1.5", "-1", "1e400", "sixty", None, True, [], {}]),
)
times = st.one_of(
    st.datetimes(timezones=st.none() | st.just(UTC)),  # naive ones are UTC
    st.sampled_from(["2020-01-01T00:00:00", "not a time", 0, -2, None]),
    st.builds(
        lambda seconds: datetime.datetime.now(UTC) + datetime.timedelta(seconds=seconds),
        st.integers(-3600, 3600),
    ),
)


def paths(tmp: Path) -> st.SearchStrategy[Any]:
    """Stream and directory paths: chosen ones in ``tmp``, special files, generated relative
    ones, too-long ones and ones that are no path at all."""
    return st.one_of(
        st.none(),
        st.sampled_from(
            [
                "/dev/stdin",
                "/dev/stdout",
                "/dev/stderr",
                "/dev/null",
                "/dev/tty",
                "/dev/fd/1",
                str(tmp / "fifo"),
                str(tmp / "dir"),
                str(tmp / "out"),
                str(tmp / "missing" / "out"),
                str(tmp / ("n" * 300)),
                str(tmp) + "/d" * 2100,
                f"{drmaa2.WORKING_DIR}/out",
                f"out.{drmaa2.PARAMETRIC_INDEX}",
            ]
        ),
        relative_text,
        st.sampled_from([5, ["a"], b"bytes"]),
    )


#: Text a well-formed template may hold.
plain_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=12)


def good_fields(tmp: Path) -> dict[str, st.SearchStrategy[Any]]:
    """Values each field may well have."""
    soon = st.integers(-3600, 3600).map(
        lambda seconds: datetime.datetime.now(UTC) + datetime.timedelta(seconds=seconds)
    )
    return {
        "args": st.lists(plain_text, max_size=4),
        "job_environment": st.dictionaries(
            st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).filter(
                lambda key: key != "PATH" and not key.startswith("LD_")
            ),
            plain_text,
            max_size=3,
        ),
        "working_directory": st.sampled_from([str(tmp), str(tmp / "dir"), "dir", "."]),
        "input_path": st.sampled_from(["/dev/null", "/dev/stdin"]),
        "output_path": st.sampled_from(
            [str(tmp / "out"), "out", "/dev/null", "/dev/stdout", f"{drmaa2.WORKING_DIR}/o"]
        ),
        "error_path": st.sampled_from([str(tmp / "err"), "err", "/dev/null", "/dev/stderr"]),
        "join_files": st.booleans(),
        "submit_as_hold": st.booleans(),
        "job_name": plain_text,
        "job_category": plain_text,
        "accounting_id": plain_text,
        "priority": st.integers(0, 19),
        "resource_limits": st.dictionaries(
            st.sampled_from(["CPU_TIME", "WALLCLOCK_TIME", "FILE_SIZE", "OPEN_FILES"]),
            st.integers(16, 600),
            max_size=2,
        ),
        "start_time": soon,
        "deadline_time": soon.map(lambda time: time + datetime.timedelta(hours=2)),
        "min_slots": st.just(1),
        "machine_os": st.just("LINUX"),
        "candidate_machines": st.just(["localhost"]),
    }


def wild_fields(tmp: Path) -> dict[str, st.SearchStrategy[Any]]:
    """Values of every kind, for each field."""
    return {
        "remote_command": st.one_of(
            st.sampled_from(
                [
                    "",
                    "/nonexistent/command",
                    str(tmp / "dir"),
                    "/dev/null",
                    "/bin/tr\0ue",
                    "/" + "c" * 300,
                    "c" * 300,
                    None,
                    7,
                ]
            ),
            weird_text.map(lambda text: "/nonexistent/" + text),
        ),
        "args": st.one_of(
            st.lists(weird_text, max_size=4),
            st.just(["a" * limits.MAX_ARG_STRLEN]),
            st.sampled_from(["not a list", [1, 2], None]),
        ),
        "job_environment": st.one_of(
            st.dictionaries(
                weird_text.filter(lambda key: key != "PATH" and not key.startswith("LD_")),
                weird_text,
                max_size=3,
            ),
            st.just({"BIG": "b" * limits.MAX_ARG_STRLEN}),
            st.sampled_from([{"A": 1}, ["A=1"], None]),
        ),
        "working_directory": paths(tmp),
        "input_path": paths(tmp),
        "output_path": paths(tmp),
        "error_path": paths(tmp),
        "join_files": st.sampled_from([0, 1, "TRUE", "yes", 2, None]),
        "submit_as_hold": st.sampled_from([0, 1, "FALSE", 2, None]),
        "job_name": weird_text,
        "job_category": weird_text,
        "accounting_id": weird_text,
        "priority": numbers,
        "min_slots": numbers,
        "max_slots": numbers,
        "min_phys_memory": numbers,
        "resource_limits": st.dictionaries(
            st.sampled_from([*(limit.name for limit in drmaa2.ResourceLimit), "NOPE", 3]),
            numbers,
            max_size=3,
        ),
        "start_time": times,
        "deadline_time": times,
        "machine_os": st.sampled_from(["WIN", 3, 99, "linux", None]),
        "machine_arch": st.sampled_from(["ARM64", 8, -1, None]),
        "candidate_machines": st.sampled_from([["elsewhere"], [], "localhost"]),
        "email": st.sampled_from([["a@b.c"], None]),
        "queue_name": st.sampled_from(["all.q", None]),
        "implementation_specific": st.sampled_from([{"pid": "1"}, {}, None]),
        "bogus": st.just(1),
    }


def templates(tmp: Path) -> st.SearchStrategy[Any]:
    """Job templates as mappings: well-formed ones, ones with one field of any value, and
    (at times) things that are no template at all."""
    good = st.fixed_dictionaries(
        {"remote_command": st.sampled_from(["/bin/true", "/bin/false", "true"])},
        optional=good_fields(tmp),
    )
    wild = wild_fields(tmp)
    one_wild = st.sampled_from(sorted(wild)).flatmap(
        lambda key: wild[key].map(lambda value: {key: value})
    )
    mixed = st.builds(lambda base, change: {**base, **change}, good, one_wild)
    return st.one_of(good, mixed, mixed, st.sampled_from([None, 5, "t", []]))


def bounds() -> st.SearchStrategy[tuple[Any, Any, Any, Any]]:
    """(begin, end, step, max_parallel): a few tasks when valid, else any kind of wrong."""
    wrong = st.sampled_from([0, -1, INT_MAX + 1, 2**64, HUGE, "3", 3.0, None, True])
    begin = st.one_of(st.integers(1, 5), st.integers(1, 5), st.just(INT_MAX - 2), wrong)
    return begin.flatmap(
        lambda b: st.tuples(
            st.just(b),
            st.one_of(st.integers(-2, 2).map(lambda k: b + k), wrong)
            if isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= INT_MAX
            else st.integers(1, 5),
            st.one_of(st.integers(1, 3), st.just(INT_MAX), wrong),
            st.one_of(st.none(), st.integers(1, 3), wrong),
        )
    )


filters = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "job_id": weird_text,
            "job_name": weird_text,
            "job_state": st.sampled_from(["DONE", "HELD", 7, 99, JobState.FAILED, None]),
            "exit_status": numbers,
            "slots": numbers,
            "wallclock_time": numbers,
            "cpu_time": numbers,
            "submission_time": times,
            "allocated_machines": st.sampled_from([["localhost"], "localhost", [1], None]),
            "implementation_specific": st.sampled_from([{"pid": "1"}, {"a": 1}, None]),
            "bogus": st.just(1),
        },
    ),
    st.sampled_from([5, "DONE", [], drmaa2.JobInfo(exit_status=0)]),
)

# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory and HOME of the generated jobs, with a FIFO and a directory."""
    work = tmp_path / "work"
    work.mkdir()
    os.mkfifo(work / "fifo")
    (work / "dir").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))
    return work


@pytest.fixture
def session(state_dir: str, workdir: Path) -> Iterator[JobSession]:
    """A session whose jobs are all ended at the end, leaving the keeper with no child."""
    js = drmaa2.create_job_session(backend="os")
    yield js
    cleanup_session(js)
    for keeper in keepers_under((state_dir,)):
        with contextlib.suppress(psutil.NoSuchProcess):
            assert keeper.children(recursive=True) == [], "a job outlived its session"


def job_ids(js: JobSession) -> list[str]:
    return [job.id for job in js.get_jobs()]


def not_internal(call: Any) -> Any:
    """Make the call: its result, or None if it raised a DRMAA2 exception that is not an
    InternalException (anything else fails the test). Which it was is counted (pytest
    --hypothesis-show-statistics shows how many calls were accepted and refused, and how)."""
    try:
        result = call()
    except drmaa2.InternalException as error:
        pytest.fail(f"InternalException: {error}")
    except drmaa2.Drmaa2Exception as error:
        event(f"refused: {type(error).__name__}")
        return None
    event("accepted")
    return result


# -- properties ---------------------------------------------------------------------------------


@BOUNDED
@given(data=st.data())
def test_run_job_accepts_or_refuses_with_a_drmaa2_exception(
    session: JobSession, workdir: Path, data: st.DataObject
) -> None:
    template = data.draw(templates(workdir), label="template")
    before = job_ids(session)
    job = not_internal(lambda: session.run_job(template))
    if job is None:
        assert job_ids(session) == before
    else:
        assert job_ids(session) == [*before, job.id]


@BOUNDED
@given(data=st.data())
def test_run_bulk_jobs_accepts_or_refuses_with_a_drmaa2_exception(
    session: JobSession, workdir: Path, data: st.DataObject
) -> None:
    template = data.draw(templates(workdir), label="template")
    begin, end, step, max_parallel = data.draw(bounds(), label="bounds")
    before = job_ids(session)
    array = not_internal(lambda: session.run_bulk_jobs(template, begin, end, step, max_parallel))
    if array is None:
        assert job_ids(session) == before
    else:
        assert job_ids(session) == [*before, *(task.id for task in array.job_list)]
        assert len(array.job_list) == len(range(begin, end + 1, step))


@BOUNDED
@given(job_filter=filters)
def test_get_jobs_filters_or_refuses_with_a_drmaa2_exception(
    session: JobSession, job_filter: Any
) -> None:
    if not session.get_jobs():
        for command in ("/bin/true", "/bin/false"):
            session.run_job({"remote_command": command}).wait_terminated(INFINITE_TIME)
    before = job_ids(session)
    found = not_internal(lambda: session.get_jobs(job_filter))
    if found is not None:
        assert {job.id for job in found} <= set(before)
    assert job_ids(session) == before


@BOUNDED
@given(name=st.one_of(weird_text, st.sampled_from([None, 5, b"name", "s" * 300])))
def test_create_job_session_creates_or_refuses_with_a_drmaa2_exception(
    state_dir: str, name: Any
) -> None:
    before = drmaa2.get_job_session_names(state_dir, backend="os")
    created = not_internal(lambda: drmaa2.create_job_session(name, state_dir, backend="os"))
    if created is None:
        assert drmaa2.get_job_session_names(state_dir, backend="os") == before
        return
    assert created.name in drmaa2.get_job_session_names(state_dir, backend="os")
    assert created.name == name or name is None
    created.destroy()
    assert drmaa2.get_job_session_names(state_dir, backend="os") == before


def test_generated_jobs_all_end(session: JobSession) -> None:
    """The fixture's promise, kept on its own: a queued, a held and a running job are ended."""
    later = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    session.run_job({"remote_command": "/bin/true", "start_time": later})
    session.run_job({"remote_command": "/bin/true", "submit_as_hold": True})
    session.run_job({"remote_command": "/bin/sleep", "args": ["60"]}).wait_started(TIMEOUT)
