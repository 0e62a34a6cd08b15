"""Unit tests of the job filter rule, drmaa2.filter.job_matches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import drmaa2
from drmaa2 import JobInfo, JobState
from drmaa2.filter import job_matches, set_filter_fields

UTC = timezone.utc
CET = timezone(timedelta(hours=1))
SUBMITTED = datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
DISPATCHED = datetime(2024, 3, 1, 12, 0, 5, 0, tzinfo=UTC)
FINISHED = datetime(2024, 3, 1, 12, 1, 0, 999999, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def finished_job(**changes: Any) -> JobInfo:
    values: dict[str, Any] = {
        "job_id": "7",
        "job_name": "build",
        "exit_status": 0,
        "terminating_signal": "",
        "annotation": "note",
        "job_state": JobState.DONE,
        "job_sub_state": "",
        "allocated_machines": ["node1", "node2"],
        "submission_machine": "login1",
        "job_owner": "alice",
        "slots": 1,
        "queue_name": "all.q",
        "wallclock_time": timedelta(seconds=55, microseconds=999999),
        "cpu_time": 12,
        "submission_time": SUBMITTED,
        "dispatch_time": DISPATCHED,
        "finish_time": FINISHED,
        "implementation_specific": {"pid": "4242", "ru_maxrss": "2048"},
    }
    values.update(changes)
    return JobInfo(**values)


def queued_job() -> JobInfo:
    return JobInfo(
        job_id="8",
        job_name="later",
        job_state=JobState.QUEUED,
        submission_machine="login1",
        job_owner="alice",
        slots=1,
        submission_time=SUBMITTED,
    )


def test_job_matches_is_exported() -> None:
    assert drmaa2.job_matches is job_matches


def test_none_filter_passes_every_job() -> None:
    assert job_matches(finished_job(), None) is True
    assert job_matches(queued_job(), None) is True
    assert job_matches(JobInfo(), None) is True


def test_empty_filter_passes_every_job() -> None:
    assert job_matches(finished_job(), JobInfo()) is True
    assert job_matches(queued_job(), JobInfo()) is True
    assert job_matches(JobInfo(), JobInfo()) is True


def test_set_filter_fields_lists_only_set_fields() -> None:
    assert set_filter_fields(JobInfo()) == {}
    assert set_filter_fields(JobInfo(job_name="x", exit_status=0, allocated_machines=[])) == {
        "job_name": "x",
        "exit_status": 0,
        "allocated_machines": [],
    }


EQUALITY_CASES = [
    ("job_id", "7", "70"),
    ("job_name", "build", "Build"),
    ("exit_status", 0, 1),
    ("terminating_signal", "", "SIGKILL"),
    ("annotation", "note", "note2"),
    ("job_state", JobState.DONE, JobState.FAILED),
    ("job_sub_state", "", "x"),
    ("submission_machine", "login1", "login2"),
    ("job_owner", "alice", "bob"),
    ("slots", 1, 2),
    ("queue_name", "all.q", "short.q"),
]


@pytest.mark.parametrize(("field", "same", "different"), EQUALITY_CASES)
def test_equality_fields(field: str, same: Any, different: Any) -> None:
    job = finished_job()
    assert job_matches(job, JobInfo(**{field: same})) is True
    assert job_matches(job, JobInfo(**{field: different})) is False


@pytest.mark.parametrize(("field", "same", "different"), EQUALITY_CASES)
def test_set_field_unknown_to_the_job_does_not_match(field: str, same: Any, different: Any) -> None:
    assert job_matches(JobInfo(), JobInfo(**{field: same})) is False


def test_exit_status_zero_is_a_set_filter() -> None:
    """0 is a value, not "unset": a failed job with exit status 1 does not pass."""
    assert job_matches(finished_job(exit_status=1), JobInfo(exit_status=0)) is False
    assert job_matches(finished_job(exit_status=0), JobInfo(exit_status=0)) is True


def test_empty_string_is_a_set_filter() -> None:
    """ "" is a value, not "unset": a job killed by a signal does not match a normal exit."""
    killed = finished_job(terminating_signal="SIGTERM")
    assert job_matches(killed, JobInfo(terminating_signal="")) is False
    assert job_matches(finished_job(), JobInfo(terminating_signal="")) is True


def test_job_state_filter_by_value() -> None:
    assert job_matches(queued_job(), JobInfo(job_state=JobState.QUEUED)) is True
    assert job_matches(queued_job(), JobInfo(job_state=JobState.QUEUED_HELD)) is False
    assert job_matches(queued_job(), JobInfo(job_state=JobState.RUNNING)) is False
    # A filter built from a mapping (as sessions accept) behaves the same.
    assert job_matches(queued_job(), JobInfo.from_dict({"job_state": "QUEUED"})) is True
    assert job_matches(queued_job(), JobInfo.from_dict({"job_state": "DONE"})) is False


def test_several_fields_must_all_match() -> None:
    job = finished_job()
    assert job_matches(job, JobInfo(job_name="build", exit_status=0, job_owner="alice")) is True
    assert job_matches(job, JobInfo(job_name="build", exit_status=0, job_owner="bob")) is False
    assert job_matches(job, JobInfo(job_name="other", exit_status=0, job_owner="alice")) is False


# -- allocated_machines: containment ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ([], True),
        (["node1"], True),
        (["node2"], True),
        (["node2", "node1"], True),
        (["node1", "node2"], True),
        (["node3"], False),
        (["node1", "node3"], False),
        (["node"], False),
        (["node1", "node2", "node3"], False),
    ],
)
def test_allocated_machines_containment(wanted: list[str], expected: bool) -> None:
    job = finished_job(allocated_machines=["node1", "node2"])
    assert job_matches(job, JobInfo(allocated_machines=wanted)) is expected


def test_allocated_machines_unknown_fails_a_set_filter() -> None:
    job = queued_job()
    assert job.allocated_machines is None
    assert job_matches(job, JobInfo(allocated_machines=["node1"])) is False
    assert job_matches(job, JobInfo(allocated_machines=[])) is False


def test_allocated_machines_empty_job_list() -> None:
    job = finished_job(allocated_machines=[])
    assert job_matches(job, JobInfo(allocated_machines=[])) is True
    assert job_matches(job, JobInfo(allocated_machines=["node1"])) is False


# -- wallclock_time and cpu_time: at or above ---------------------------------------------------


def test_wallclock_time_at_or_above() -> None:
    job = finished_job(wallclock_time=timedelta(seconds=10))
    assert job_matches(job, JobInfo(wallclock_time=timedelta(seconds=10))) is True
    assert job_matches(job, JobInfo(wallclock_time=timedelta(seconds=10) - ONE_US)) is True
    assert job_matches(job, JobInfo(wallclock_time=timedelta(0))) is True
    assert job_matches(job, JobInfo(wallclock_time=timedelta(seconds=10) + ONE_US)) is False
    assert job_matches(job, JobInfo(wallclock_time=timedelta(hours=1))) is False


def test_wallclock_time_from_seconds() -> None:
    job = finished_job(wallclock_time=timedelta(seconds=2, milliseconds=500))
    assert job_matches(job, JobInfo(wallclock_time=2.5)) is True
    assert job_matches(job, JobInfo(wallclock_time=2)) is True
    assert job_matches(job, JobInfo(wallclock_time=2.500001)) is False


def test_wallclock_time_unknown_fails() -> None:
    assert job_matches(queued_job(), JobInfo(wallclock_time=timedelta(0))) is False


def test_cpu_time_at_or_above() -> None:
    job = finished_job(cpu_time=12)
    assert job_matches(job, JobInfo(cpu_time=12)) is True
    assert job_matches(job, JobInfo(cpu_time=11.999)) is True
    assert job_matches(job, JobInfo(cpu_time=0)) is True
    assert job_matches(job, JobInfo(cpu_time=12.001)) is False
    assert job_matches(job, JobInfo(cpu_time=13)) is False
    fractional = finished_job(cpu_time=0.25)
    assert job_matches(fractional, JobInfo(cpu_time=0.25)) is True
    assert job_matches(fractional, JobInfo(cpu_time=0.26)) is False


def test_cpu_time_unknown_fails() -> None:
    assert job_matches(queued_job(), JobInfo(cpu_time=0)) is False


# -- timestamps: at or after -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "moment"),
    [
        ("submission_time", SUBMITTED),
        ("dispatch_time", DISPATCHED),
        ("finish_time", FINISHED),
    ],
)
def test_timestamps_at_or_after(field: str, moment: datetime) -> None:
    job = finished_job()
    assert job_matches(job, JobInfo(**{field: moment})) is True
    assert job_matches(job, JobInfo(**{field: moment - ONE_US})) is True
    assert job_matches(job, JobInfo(**{field: moment - timedelta(days=365)})) is True
    assert job_matches(job, JobInfo(**{field: moment + ONE_US})) is False
    assert job_matches(job, JobInfo(**{field: moment + timedelta(days=1)})) is False


@pytest.mark.parametrize("field", ["submission_time", "dispatch_time", "finish_time"])
def test_timestamps_compare_instants_across_time_zones(field: str) -> None:
    job = finished_job()
    moment = getattr(job, field)
    in_cet = moment.astimezone(CET)
    assert in_cet.utcoffset() == timedelta(hours=1)
    assert job_matches(job, JobInfo(**{field: in_cet})) is True
    assert job_matches(job, JobInfo(**{field: in_cet + ONE_US})) is False
    assert job_matches(job, JobInfo(**{field: in_cet - ONE_US})) is True


def test_timestamps_unknown_to_a_queued_job_fail() -> None:
    job = queued_job()
    early = SUBMITTED - timedelta(days=1)
    assert job_matches(job, JobInfo(submission_time=early)) is True
    assert job_matches(job, JobInfo(dispatch_time=early)) is False
    assert job_matches(job, JobInfo(finish_time=early)) is False


def test_time_window() -> None:
    """Two lower bounds on different timestamps must both hold."""
    job = finished_job()
    assert job_matches(job, JobInfo(submission_time=SUBMITTED, finish_time=FINISHED)) is True
    assert (
        job_matches(job, JobInfo(submission_time=SUBMITTED, finish_time=FINISHED + ONE_US)) is False
    )


# -- implementation_specific -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({}, True),
        ({"pid": "4242"}, True),
        ({"ru_maxrss": "2048", "pid": "4242"}, True),
        ({"pid": "4243"}, False),
        ({"pid": "4242", "ru_maxrss": "1"}, False),
        ({"missing": "x"}, False),
        ({"missing": ""}, False),
    ],
)
def test_implementation_specific_items(wanted: dict[str, str], expected: bool) -> None:
    job = finished_job(implementation_specific={"pid": "4242", "ru_maxrss": "2048"})
    assert job_matches(job, JobInfo(implementation_specific=wanted)) is expected


def test_implementation_specific_unknown_fails() -> None:
    job = finished_job(implementation_specific=None)
    assert job_matches(job, JobInfo(implementation_specific={"pid": "1"})) is False


def test_implementation_specific_empty_value_must_be_present() -> None:
    job = finished_job(implementation_specific={"pid": ""})
    assert job_matches(job, JobInfo(implementation_specific={"pid": ""})) is True
    assert job_matches(job, JobInfo(implementation_specific={"other": ""})) is False


# -- the filter is not changed ---------------------------------------------------------------


def test_matching_changes_neither_job_nor_filter() -> None:
    job = finished_job()
    job_filter = JobInfo(
        allocated_machines=["node1"],
        implementation_specific={"pid": "4242"},
        wallclock_time=timedelta(seconds=1),
    )
    job_before = job.copy()
    filter_before = job_filter.copy()
    assert job_matches(job, job_filter) is True
    assert job == job_before
    assert job_filter == filter_before
