"""The mapping tables of :mod:`drmaa2_slurm.states`, value by value (values seen on 22.05)."""

from __future__ import annotations

import pytest

from drmaa2 import JobState
from drmaa2_slurm.states import exit_status, job_state, parse_duration


@pytest.mark.parametrize(
    ("raw", "ran", "state", "expected"),
    [
        (0, True, "COMPLETED", (0, "")),
        (1792, True, "FAILED", (7, "")),
        (35072, True, "FAILED", (137, "")),
        (9, True, "CANCELLED", (137, "SIGKILL")),
        (15, True, "CANCELLED", (143, "SIGTERM")),
        (4021, True, "FAILED", (None, None)),
        (253, True, "OUT_OF_MEMORY", (None, None)),
        (1, False, "DEADLINE", (None, None)),
        (0, True, "NODE_FAIL", (None, None)),
        (0, False, "CANCELLED", (None, None)),
    ],
)
def test_exit_status_from_the_raw_wait_status(
    raw: int, ran: bool, state: str, expected: tuple[int | None, str | None]
) -> None:
    assert exit_status(raw, ran, state) == expected


@pytest.mark.parametrize(
    ("state", "reason", "restarts", "expected"),
    [
        ("PENDING", "Priority", 0, (JobState.QUEUED, "Priority")),
        ("PENDING", "JobHeldUser", 0, (JobState.QUEUED_HELD, "JobHeldUser")),
        ("PENDING", "BeginTime", 1, (JobState.REQUEUED, "BeginTime")),
        ("PENDING", "JobHeldUser", 1, (JobState.REQUEUED_HELD, "JobHeldUser")),
        ("SPECIAL_EXIT", "JobHeldUser", 1, (JobState.REQUEUED_HELD, "SPECIAL_EXIT")),
        ("RUNNING", "None", 0, (JobState.RUNNING, "")),
        ("COMPLETING", "None", 0, (JobState.RUNNING, "COMPLETING")),
        ("SUSPENDED", "None", 0, (JobState.SUSPENDED, "SUSPENDED")),
        ("STOPPED", "None", 0, (JobState.SUSPENDED, "STOPPED")),
        ("COMPLETED", "None", 0, (JobState.DONE, "")),
        ("FAILED", "NonZeroExitCode", 0, (JobState.FAILED, "FAILED")),
        ("FAILED", "JobLaunchFailure", 0, (JobState.FAILED, "JobLaunchFailure")),
        ("CANCELLED", "None", 0, (JobState.FAILED, "CANCELLED")),
        ("TIMEOUT", "None", 0, (JobState.FAILED, "TIMEOUT")),
        ("DEADLINE", "None", 0, (JobState.FAILED, "DEADLINE")),
        ("REVOKED", "None", 0, (JobState.UNDETERMINED, "REVOKED")),
    ],
)
def test_every_slurm_state_is_mapped(
    state: str, reason: str, restarts: int, expected: tuple[JobState, str]
) -> None:
    assert job_state(state, reason, restarts) == expected


def test_durations() -> None:
    assert parse_duration("1-02:03:04").total_seconds() == 93784  # type: ignore[union-attr]
    assert parse_duration("00:01.500").total_seconds() == 1.5  # type: ignore[union-attr]
    assert parse_duration("INVALID") is None
