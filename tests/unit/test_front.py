"""Unit tests of the front classes and session-manager functions (drmaa2.session), using the
"os" backend with a private state directory. The few jobs started are /bin/true, always waited
for."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import drmaa2
from drmaa2 import (
    INFINITE_TIME,
    ZERO_TIME,
    Capability,
    InvalidArgumentException,
    InvalidSessionException,
    JobState,
    UnsupportedOperationException,
    Version,
)

BACKEND = "os"
TRUE = {"remote_command": "/bin/true"}
WAIT = 60.0


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", str(path))
    monkeypatch.delenv("DRMAA2_BACKEND", raising=False)
    return path


@pytest.fixture
def js(state_dir: Path) -> Iterator[drmaa2.JobSession]:
    session = drmaa2.create_job_session("front", backend=BACKEND)
    yield session
    with contextlib.suppress(InvalidSessionException):
        session.close()


def names() -> list[str]:
    return drmaa2.get_job_session_names(backend=BACKEND)


def finished_true_job(session: drmaa2.JobSession) -> drmaa2.Job:
    job = session.run_job(TRUE)
    job.wait_terminated(WAIT)
    return job


# -- version, name, capabilities --------------------------------------------------------------


def test_drmaa_version_and_name() -> None:
    version = drmaa2.get_drmaa_version()
    assert version == Version("2", "0")
    assert version == Version(major="2", minor="0")
    assert (version.major, version.minor) == ("2", "0")
    name = drmaa2.get_drmaa_name()
    assert isinstance(name, str)
    assert name


def test_drms_name_and_version(state_dir: Path) -> None:
    assert isinstance(drmaa2.get_drms_name(backend=BACKEND), str)
    assert drmaa2.get_drms_name(backend=BACKEND)
    version = drmaa2.get_drms_version(backend=BACKEND)
    assert isinstance(version, Version)
    assert version.major


SUPPORTED = {Capability.BULK_JOBS_MAXPARALLEL, Capability.CALLBACK, Capability.JT_DEADLINE}
UNSUPPORTED = {
    Capability.ADVANCE_RESERVATION,
    Capability.RESERVE_SLOTS,
    Capability.JT_EMAIL,
    Capability.JT_STAGING,
    Capability.JT_MAXSLOTS,
    Capability.RT_STARTNOW,
    Capability.RT_DURATION,
    Capability.RT_MACHINEOS,
    Capability.RT_MACHINEARCH,
}


@pytest.mark.parametrize("capability", sorted(SUPPORTED | UNSUPPORTED), ids=lambda c: c.name)
def test_supports_per_contract(state_dir: Path, capability: Capability) -> None:
    expected = capability in SUPPORTED
    assert drmaa2.supports(capability, backend=BACKEND) is expected
    assert drmaa2.drmaa_supports(capability, backend=BACKEND) is expected
    # The only installed backend is chosen without backend=.
    assert drmaa2.supports(capability) is expected
    # By its name and its int code too, as enum fields are set.
    assert drmaa2.supports(capability.name, backend=BACKEND) is expected
    assert drmaa2.supports(int(capability), backend=BACKEND) is expected


def test_supports_alias() -> None:
    assert drmaa2.drmaa_supports is drmaa2.supports


@pytest.mark.parametrize("bad", [99, -2, "CALLBACK_X", "callback", None, True, 2.0])
def test_supports_rejects_a_non_capability(state_dir: Path, bad: Any) -> None:
    with pytest.raises(InvalidArgumentException, match=r"capability: .*its name .*CALLBACK"):
        drmaa2.supports(bad, backend=BACKEND)


# -- reservations -----------------------------------------------------------------------------

RESERVATION_CALLS: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
    ("create_reservation_session", drmaa2.create_reservation_session, ()),
    ("create_reservation_session named", drmaa2.create_reservation_session, ("r",)),
    ("open_reservation_session", drmaa2.open_reservation_session, ("r",)),
    ("destroy_reservation_session", drmaa2.destroy_reservation_session, ("r",)),
    ("get_reservation_session_names", drmaa2.get_reservation_session_names, ()),
]


@pytest.mark.parametrize(
    ("call", "args"),
    [(c, a) for _, c, a in RESERVATION_CALLS],
    ids=[n for n, _, _ in RESERVATION_CALLS],
)
def test_reservations_are_unsupported(
    state_dir: Path, call: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    with pytest.raises(UnsupportedOperationException) as caught:
        call(*args, backend=BACKEND)
    assert caught.value.error_code == drmaa2.StatusCode.UNSUPPORTED_OPERATION
    with pytest.raises(UnsupportedOperationException):
        call(*args)


# -- event notification -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, "print", ["f"], object()])
def test_register_event_notification_rejects_non_callable(state_dir: Path, bad: Any) -> None:
    with pytest.raises(InvalidArgumentException, match="callback"):
        drmaa2.register_event_notification(bad, backend=BACKEND)


def test_register_event_notification_accepts_callable_and_none(state_dir: Path) -> None:
    seen: list[drmaa2.Notification] = []
    drmaa2.register_event_notification(seen.append, backend=BACKEND)
    drmaa2.register_event_notification(None, backend=BACKEND)
    assert seen == []


# -- session manager --------------------------------------------------------------------------


def test_create_open_destroy_named_session(state_dir: Path) -> None:
    assert names() == []
    created = drmaa2.create_job_session("alpha", backend=BACKEND)
    assert created.name == "alpha"
    assert created.session_name == "alpha"
    assert created.contact == str(state_dir)
    assert names() == ["alpha"]
    created.close()
    # A job session is persistent: close() keeps it.
    assert names() == ["alpha"]
    opened = drmaa2.open_job_session("alpha", backend=BACKEND)
    assert opened.name == "alpha"
    opened.close()
    drmaa2.destroy_job_session("alpha", backend=BACKEND)
    assert names() == []


def test_create_job_session_generates_distinct_names(state_dir: Path) -> None:
    first = drmaa2.create_job_session(backend=BACKEND)
    second = drmaa2.create_job_session(backend=BACKEND)
    try:
        assert isinstance(first.name, str)
        assert first.name
        assert first.name != second.name
        assert sorted(names()) == sorted([first.name, second.name])
    finally:
        first.destroy()
        second.destroy()
    assert names() == []


def test_create_job_session_with_existing_name(state_dir: Path) -> None:
    session = drmaa2.create_job_session("taken", backend=BACKEND)
    try:
        with pytest.raises(InvalidArgumentException, match="taken"):
            drmaa2.create_job_session("taken", backend=BACKEND)
        # Still there, still usable, and only once.
        assert names() == ["taken"]
        assert session.get_jobs() == []
    finally:
        session.destroy()


def test_create_job_session_with_existing_name_after_close(state_dir: Path) -> None:
    drmaa2.create_job_session("kept", backend=BACKEND).close()
    with pytest.raises(InvalidArgumentException, match="kept"):
        drmaa2.create_job_session("kept", backend=BACKEND)
    assert names() == ["kept"]


def test_open_unknown_session(state_dir: Path) -> None:
    with pytest.raises(InvalidArgumentException, match="no-such-session"):
        drmaa2.open_job_session("no-such-session", backend=BACKEND)
    assert names() == []


def test_destroy_unknown_session(state_dir: Path) -> None:
    with pytest.raises(InvalidArgumentException, match="no-such-session"):
        drmaa2.destroy_job_session("no-such-session", backend=BACKEND)
    assert names() == []


def test_destroy_twice(state_dir: Path) -> None:
    drmaa2.create_job_session("once", backend=BACKEND).close()
    drmaa2.destroy_job_session("once", backend=BACKEND)
    with pytest.raises(InvalidArgumentException, match="once"):
        drmaa2.destroy_job_session("once", backend=BACKEND)
    with pytest.raises(InvalidArgumentException, match="once"):
        drmaa2.open_job_session("once", backend=BACKEND)


def test_explicit_contact(state_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    session = drmaa2.create_job_session("c", str(other), backend=BACKEND)
    try:
        assert session.contact == str(other)
        assert drmaa2.get_job_session_names(str(other), backend=BACKEND) == ["c"]
        # The default state directory does not see it.
        assert names() == []
    finally:
        session.destroy()
    assert drmaa2.get_job_session_names(str(other), backend=BACKEND) == []


def test_sessions_persist_jobs_across_open(state_dir: Path) -> None:
    session = drmaa2.create_job_session("persist", backend=BACKEND)
    job = finished_true_job(session)
    assert job.id == "1"
    session.close()
    again = drmaa2.open_job_session("persist", backend=BACKEND)
    try:
        assert [j.id for j in again.get_jobs()] == ["1"]
        assert again.get_jobs()[0].get_state()[0] is JobState.DONE
    finally:
        again.destroy()


# -- JobSession constructor -------------------------------------------------------------------


def test_job_session_generated_name_is_destroyed_on_close(state_dir: Path) -> None:
    session = drmaa2.JobSession(backend=BACKEND)
    name = session.name
    assert name in names()
    session.close()
    assert name not in names()
    with pytest.raises(InvalidArgumentException):
        drmaa2.open_job_session(name, backend=BACKEND)


def test_job_session_given_name_is_kept_on_close(state_dir: Path) -> None:
    session = drmaa2.JobSession("mine", backend=BACKEND)
    assert session.name == "mine"
    assert names() == ["mine"]
    session.close()
    assert names() == ["mine"]


def test_job_session_opens_an_existing_session(state_dir: Path) -> None:
    first = drmaa2.JobSession("shared", backend=BACKEND)
    job = finished_true_job(first)
    first.close()
    second = drmaa2.JobSession("shared", backend=BACKEND)
    try:
        assert second.name == "shared"
        assert [j.id for j in second.get_jobs()] == [job.id]
        assert names() == ["shared"]
    finally:
        second.close()
    # Opened by name: kept.
    assert names() == ["shared"]


def test_job_session_opens_a_session_that_is_open_elsewhere(state_dir: Path) -> None:
    first = drmaa2.create_job_session("twice", backend=BACKEND)
    second = drmaa2.JobSession("twice", backend=BACKEND)
    try:
        assert second.name == "twice"
        assert names() == ["twice"]
    finally:
        second.close()
        first.close()
    assert names() == ["twice"]


def test_job_session_destroy_on_exit_true_with_given_name(state_dir: Path) -> None:
    with drmaa2.JobSession("temporary", destroy_on_exit=True, backend=BACKEND) as session:
        assert names() == ["temporary"]
        assert session.name == "temporary"
    assert names() == []


def test_job_session_destroy_on_exit_false_with_generated_name(state_dir: Path) -> None:
    session = drmaa2.JobSession(destroy_on_exit=False, backend=BACKEND)
    name = session.name
    session.close()
    assert names() == [name]
    drmaa2.destroy_job_session(name, backend=BACKEND)


def test_job_session_destroy_on_exit_keyword(state_dir: Path) -> None:
    """The UGE signature: JobSession(name, contact, destroy_on_exit)."""
    session = drmaa2.JobSession("positional", None, True, backend=BACKEND)
    session.close()
    assert names() == []


def test_job_session_generated_with_block_is_destroyed(state_dir: Path) -> None:
    with drmaa2.JobSession(backend=BACKEND) as session:
        name = session.name
        assert names() == [name]
    assert names() == []


def test_create_job_session_is_never_destroyed_on_close(state_dir: Path) -> None:
    session = drmaa2.create_job_session(backend=BACKEND)
    name = session.name
    session.close()
    assert names() == [name]
    drmaa2.destroy_job_session(name, backend=BACKEND)


# -- context manager and closed sessions ------------------------------------------------------


def test_context_manager_closes(state_dir: Path) -> None:
    with drmaa2.create_job_session("ctx", backend=BACKEND) as session:
        assert session.get_jobs() == []
    with pytest.raises(InvalidSessionException):
        session.get_jobs()
    with pytest.raises(InvalidSessionException):
        session.close()
    assert names() == ["ctx"]


def test_context_manager_closes_on_error(state_dir: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="inside"),
        drmaa2.create_job_session("ctx-error", backend=BACKEND) as session,
    ):
        raise RuntimeError("inside")
    with pytest.raises(InvalidSessionException):
        session.get_jobs()


def test_context_manager_after_explicit_close(state_dir: Path) -> None:
    with drmaa2.create_job_session("ctx-closed", backend=BACKEND) as session:
        session.close()
    with pytest.raises(InvalidSessionException):
        session.get_job_categories()


def test_context_manager_after_destroy(state_dir: Path) -> None:
    with drmaa2.create_job_session("ctx-destroyed", backend=BACKEND) as session:
        session.destroy()
    assert names() == []


def _job_session_calls(
    session: drmaa2.JobSession, job: drmaa2.Job
) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("get_job_categories", session.get_job_categories),
        ("run_job", lambda: session.run_job(TRUE)),
        ("run_job template", lambda: session.run_job(drmaa2.JobTemplate(remote_command="/x"))),
        ("run_bulk_jobs", lambda: session.run_bulk_jobs(TRUE, 1, 2)),
        ("get_jobs", session.get_jobs),
        ("get_jobs filter", lambda: session.get_jobs({"job_id": "1"})),
        ("get_job_array", lambda: session.get_job_array("1")),
        ("wait_any_started", lambda: session.wait_any_started([job], ZERO_TIME)),
        ("wait_any_terminated", lambda: session.wait_any_terminated([job], ZERO_TIME)),
        ("wait_all_started", lambda: session.wait_all_started([job], ZERO_TIME)),
        ("wait_all_terminated", lambda: session.wait_all_terminated([job], ZERO_TIME)),
        ("wait_all_terminated infinite", lambda: session.wait_all_terminated([job])),
        ("close", session.close),
        ("destroy", session.destroy),
    ]


def test_closed_session_every_method_raises(state_dir: Path) -> None:
    session = drmaa2.create_job_session("shut", backend=BACKEND)
    job = finished_true_job(session)
    session.close()
    raised = []
    for label, call in _job_session_calls(session, job):
        with pytest.raises(InvalidSessionException) as caught:
            call()
        assert "shut" in str(caught.value), label
        assert "closed" in str(caught.value), label
        raised.append(label)
    assert len(raised) == 14
    # Still the name, and nothing was submitted or destroyed by the failed calls.
    assert session.name == "shut"
    assert names() == ["shut"]
    again = drmaa2.open_job_session("shut", backend=BACKEND)
    try:
        assert [j.id for j in again.get_jobs()] == ["1"]
    finally:
        again.close()


def test_destroyed_session_every_method_raises(state_dir: Path) -> None:
    session = drmaa2.create_job_session("gone", backend=BACKEND)
    job = finished_true_job(session)
    session.destroy()
    assert names() == []
    for label, call in _job_session_calls(session, job):
        with pytest.raises(InvalidSessionException):
            call()
        assert names() == [], label


def test_jobs_of_a_closed_session_raise(state_dir: Path) -> None:
    session = drmaa2.create_job_session("closed-jobs", backend=BACKEND)
    job = finished_true_job(session)
    session.close()
    for call in (job.get_state, job.get_info, job.get_template, job.reap, job.wait_terminated):
        with pytest.raises(InvalidSessionException):
            call()


def test_closed_monitoring_session_raises(state_dir: Path) -> None:
    monitoring = drmaa2.open_monitoring_session(backend=BACKEND)
    monitoring.close()
    calls: list[Callable[[], Any]] = [
        monitoring.get_all_jobs,
        monitoring.get_all_machines,
        monitoring.get_all_queues,
        monitoring.get_all_reservations,
        monitoring.close,
    ]
    for call in calls:
        with pytest.raises(InvalidSessionException):
            call()


def test_monitoring_session_context_manager(state_dir: Path) -> None:
    with drmaa2.MonitoringSession(backend=BACKEND) as monitoring:
        assert isinstance(monitoring.name, str)
    with pytest.raises(InvalidSessionException):
        monitoring.get_all_machines()


# -- timeouts and waits -----------------------------------------------------------------------

BAD_TIMEOUTS = [-2, -1.5, -0.001, -100, math.nan, -math.inf, "1", "forever", None, True, [1]]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_bad_timeouts_are_rejected(js: drmaa2.JobSession, timeout: Any) -> None:
    job = finished_true_job(js)
    calls: list[Callable[[], Any]] = [
        lambda: js.wait_any_started([job], timeout),
        lambda: js.wait_any_terminated([job], timeout),
        lambda: js.wait_all_started([job], timeout),
        lambda: js.wait_all_terminated([job], timeout),
        lambda: job.wait_started(timeout),
        lambda: job.wait_terminated(timeout),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentException, match="timeout"):
            call()


@pytest.mark.parametrize("timeout", [INFINITE_TIME, ZERO_TIME, 0.0, 1, 2.5, WAIT, math.inf])
def test_good_timeouts_are_accepted(js: drmaa2.JobSession, timeout: Any) -> None:
    job = finished_true_job(js)
    assert js.wait_any_started([job], timeout) == job
    assert js.wait_any_terminated([job], timeout) == job
    assert js.wait_all_started([job], timeout) == [job]
    assert js.wait_all_terminated([job], timeout) == [job]
    assert job.wait_started(timeout) is None
    assert job.wait_terminated(timeout) is None


@pytest.mark.parametrize(
    "method", ["wait_any_started", "wait_any_terminated", "wait_all_started", "wait_all_terminated"]
)
@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_waiting_for_no_jobs_is_rejected(js: drmaa2.JobSession, method: str, empty: Any) -> None:
    with pytest.raises(InvalidArgumentException, match="empty"):
        getattr(js, method)(empty)
    with pytest.raises(InvalidArgumentException, match="empty"):
        getattr(js, method)(empty, ZERO_TIME)


@pytest.mark.parametrize(
    "method", ["wait_any_started", "wait_any_terminated", "wait_all_started", "wait_all_terminated"]
)
def test_waiting_for_non_jobs_is_rejected(js: drmaa2.JobSession, method: str) -> None:
    with pytest.raises(InvalidArgumentException, match="jobs"):
        getattr(js, method)(["1"], ZERO_TIME)
    with pytest.raises(InvalidArgumentException, match="jobs"):
        getattr(js, method)("1", ZERO_TIME)


def test_waiting_for_a_job_of_another_session_is_rejected(
    js: drmaa2.JobSession, state_dir: Path
) -> None:
    other = drmaa2.create_job_session("other", backend=BACKEND)
    try:
        foreign = finished_true_job(other)
        with pytest.raises(InvalidArgumentException, match="other"):
            js.wait_all_terminated([foreign], ZERO_TIME)
    finally:
        other.destroy()


# -- run_job / run_bulk_jobs arguments --------------------------------------------------------


def test_run_job_ids_and_states(js: drmaa2.JobSession) -> None:
    first = js.run_job(TRUE)
    second = js.run_job(drmaa2.JobTemplate(remote_command="/bin/true", job_name="second"))
    js.wait_all_terminated([first, second], WAIT)
    assert (first.id, second.id) == ("1", "2")
    assert first.job_id == first.get_id() == "1"
    assert first.session_name == "front"
    assert second.job_name == "second"
    assert first.get_state() == (JobState.DONE, "")
    assert second.get_info().exit_status == 0
    assert [job.id for job in js.get_jobs()] == ["1", "2"]
    assert [job.id for job in js.get_jobs({"job_name": "second"})] == ["2"]


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ((0, 3), {}, "begin_index"),
        ((-1, 3), {}, "begin_index"),
        ((3, 2), {}, "end_index"),
        ((5, 1), {}, "end_index"),
        ((1, 3), {"step": 0}, "step"),
        ((1, 3), {"step": -1}, "step"),
        ((1, 3), {"max_parallel": 0}, "max_parallel"),
        ((1, 3), {"max_parallel": -2}, "max_parallel"),
        (("1", 3), {}, "begin_index"),
        ((1, 3.0), {}, "end_index"),
        ((1, 3), {"step": True}, "step"),
        ((1, 3), {"max_parallel": 1.5}, "max_parallel"),
    ],
)
def test_run_bulk_jobs_argument_validation(
    js: drmaa2.JobSession, args: tuple[Any, ...], kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgumentException, match=named):
        js.run_bulk_jobs(TRUE, *args, **kwargs)
    # Nothing was submitted.
    assert js.get_jobs() == []


def test_run_bulk_jobs_single_task_and_valid_arguments(js: drmaa2.JobSession) -> None:
    array = js.run_bulk_jobs(TRUE, 3, 3, step=7, max_parallel=1)
    js.wait_all_terminated(array.job_list, WAIT)
    assert [task.id for task in array.job_list] == [f"{array.id}.3"]
    assert js.get_job_array(array.id).id == array.id


def test_get_job_array_unknown(js: drmaa2.JobSession) -> None:
    with pytest.raises(InvalidArgumentException, match="42"):
        js.get_job_array("42")


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ({"remote_command": "/bin/true", "bogus_key": 1}, "bogus_key"),
        ({"remote_command": "/bin/true", "remotecommand": "/bin/true"}, "remotecommand"),
        ({"remote_command": "/bin/true", "job_state": "DONE"}, "job_state"),
    ],
)
def test_dict_template_with_unknown_key(
    js: drmaa2.JobSession, template: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgumentException, match=named):
        js.run_job(template)
    with pytest.raises(InvalidArgumentException, match=named):
        js.run_bulk_jobs(template, 1, 2)
    assert js.get_jobs() == []


def test_dict_filter_with_unknown_key(js: drmaa2.JobSession) -> None:
    with pytest.raises(InvalidArgumentException, match="not_a_field"):
        js.get_jobs({"not_a_field": "x"})


@pytest.mark.parametrize("bad", ["/bin/true", 42, ["/bin/true"]], ids=repr)
def test_template_of_wrong_type(js: drmaa2.JobSession, bad: Any) -> None:
    with pytest.raises(InvalidArgumentException):
        js.run_job(bad)
    assert js.get_jobs() == []


def test_the_default_state_directory_ignores_a_relative_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$XDG_STATE_HOME counts only when absolute (the XDG specification): a relative value
    would make the state directory, and so the sessions seen, depend on the current one."""
    from drmaa2_ostracker.plugin import default_state_dir

    monkeypatch.delenv("DRMAA2_OS_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    home_default = str(tmp_path / "home" / ".local" / "state" / "drmaa2-ostracker")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == str(tmp_path / "xdg" / "drmaa2-ostracker")
    for ignored in ("rel/x", ""):
        monkeypatch.setenv("XDG_STATE_HOME", ignored)
        assert default_state_dir() == home_default
    monkeypatch.setenv("DRMAA2_OS_STATE_DIR", "mine")
    assert default_state_dir() == str(tmp_path / "mine")
