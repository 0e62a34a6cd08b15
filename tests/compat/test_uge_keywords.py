"""Arguments given by the keyword names of Grid Engine's binding (``uge-drmaa2``): the waits'
``job_list``, ``get_job_array``'s ``id``, the monitoring session's ``filter`` and the data
types' ``d``, beside this API's own names. Each runs the real ``os`` backend."""

from __future__ import annotations

import inspect
import socket

import pytest

import drmaa2
from drmaa2 import JobSession, JobState
from tests.compat.conftest import TIMEOUT

TRUE = {"remote_command": "/bin/true"}


@pytest.mark.parametrize(
    "method", ["wait_any_started", "wait_any_terminated", "wait_all_started", "wait_all_terminated"]
)
def test_waits_take_job_list(js: JobSession, method: str) -> None:
    array = js.run_bulk_jobs(TRUE, 1, 2, 1, 2)
    got = getattr(js, method)(job_list=array.job_list, timeout=TIMEOUT)
    expected = array.job_list if method.startswith("wait_all") else array.job_list[:1]
    assert (got if isinstance(got, list) else [got])[0] in expected
    js.wait_all_terminated(jobs=array.job_list, timeout=TIMEOUT)  # this API's name
    assert {job.get_state()[0] for job in array.job_list} == {JobState.DONE}


def test_both_names_of_one_argument_are_refused(js: JobSession) -> None:
    job = js.run_job(TRUE)
    with pytest.raises(TypeError, match="'jobs' and 'job_list'"):
        js.wait_all_terminated(jobs=[job], job_list=[job], timeout=TIMEOUT)
    # The other name's default, None, is no value.
    assert js.wait_all_terminated(jobs=[job], job_list=None, timeout=TIMEOUT) == [job]
    with pytest.raises(TypeError, match="multiple values"):
        js.wait_all_terminated([job], jobs=[job])  # as Python says for any argument
    js.wait_all_terminated([job], TIMEOUT)


def test_get_job_array_takes_id(js: JobSession) -> None:
    array = js.run_bulk_jobs(TRUE, 1, 3, 1, 1)
    assert js.get_job_array(id=array.id) == array
    assert js.get_job_array(job_array_id=array.id) == array
    js.wait_all_terminated(array.job_list, TIMEOUT)


def test_monitoring_session_takes_filter(state_dir: str) -> None:
    ms = drmaa2.MonitoringSession("ms-filter")
    try:
        host = socket.gethostname()
        assert [m.name for m in ms.get_all_machines(filter=[host])] == [host]
        assert ms.get_all_machines(filter=["no-such-machine"]) == []
        assert ms.get_all_machines(names=[host]) == ms.get_all_machines(filter=[host])
        assert ms.get_all_queues(filter=["all.q"]) == []
    finally:
        ms.close()


def test_data_types_take_d() -> None:
    template = drmaa2.JobTemplate.create_from_dict(d={"remote_command": "/bin/echo"})
    assert template.remote_command == "/bin/echo"
    assert drmaa2.JobInfo.from_dict(d={"job_id": "7"}).job_id == "7"
    template.from_dict(d={"args": ["a"]})  # on an object: sets the fields given
    assert (template.remote_command, template.args) == ("/bin/echo", ["a"])
    with pytest.raises(drmaa2.InvalidArgumentException, match="unknown key 'colour'"):
        template.from_dict(d={"colour": "red"})


def test_the_bindings_names_are_in_the_signatures() -> None:
    def keyword_only(function: object) -> set[str]:
        parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}

    assert "job_list" in keyword_only(JobSession.wait_all_terminated)
    assert "id" in keyword_only(JobSession.get_job_array)
    assert "filter" in keyword_only(drmaa2.MonitoringSession.get_all_machines)
    assert "d" in keyword_only(drmaa2.JobTemplate.create_from_dict)


@pytest.mark.parametrize("argument", ["destroy_on_exit", "check_for_existing_session"])
def test_a_flag_that_is_no_bool_is_refused_before_anything_is_made(
    state_dir: str, argument: str
) -> None:
    with pytest.raises(drmaa2.InvalidArgumentException, match=f"{argument}: .*'False'"):
        JobSession("js-flag", **{argument: "False"})
    assert "js-flag" not in JobSession.list_session_names()


def test_a_flag_takes_the_forms_a_template_bool_takes(state_dir: str) -> None:
    kept = JobSession("js-kept", destroy_on_exit="FALSE")
    kept.close()
    assert "js-kept" in JobSession.list_session_names()
    dropped = JobSession("js-dropped", destroy_on_exit=1)
    dropped.close()
    assert "js-dropped" not in JobSession.list_session_names()
    JobSession.destroy_by_name("js-kept")
