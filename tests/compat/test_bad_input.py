"""Bad input never gets past submission (issue 13): arguments and environments larger than the
kernel takes, file names longer than the file system takes, /dev/tty, FIFOs and directories
where files are expected. Each is refused by run_job or run_bulk_jobs with
InvalidArgumentException naming the field, the value and the limit; nothing is recorded and no
job id is used up (the next job accepted is still job 1).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import drmaa2
from drmaa2 import JobSession, JobState
from drmaa2_ostracker import limits
from tests.compat.conftest import TIMEOUT

#: One argument or environment string as long as the kernel takes, without its NUL.
LONGEST = limits.MAX_ARG_STRLEN - 1


def refused(js: JobSession, template: dict[str, Any], *named: str) -> str:
    """Submit a template that must be refused; check that its message names ``named`` and
    that nothing was recorded or used up. The message."""
    with pytest.raises(drmaa2.InvalidArgumentException) as caught:
        js.run_job(template)
    message = str(caught.value)
    for word in named:
        assert word in message, message
    assert len(message) < 1000, "a huge value is shortened in the message"
    assert js.get_jobs() == []
    return message


def first_job_runs(js: JobSession, template: dict[str, Any]) -> None:
    """The template is accepted as job 1 (no refusal before it used up an id) and is DONE."""
    job = js.run_job(template)
    assert job.id == "1"
    job.wait_terminated(TIMEOUT)
    assert job.get_info().job_state is JobState.DONE, job.get_info().annotation


# -- arguments and environment ------------------------------------------------------------------


def test_arg_max_is_what_sysconf_says_for_this_stack_limit() -> None:
    stack, _ = resource.getrlimit(resource.RLIMIT_STACK)
    assert limits.arg_max(stack) == os.sysconf("SC_ARG_MAX")


def test_one_argument_longer_than_the_kernel_takes_is_refused(js: JobSession) -> None:
    template = {"remote_command": "/bin/sh", "args": ["-c", "exit 0", "x" * (LONGEST + 1)]}
    message = refused(js, template, "JobTemplate.args", "MAX_ARG_STRLEN", "argument 3")
    assert str(limits.MAX_ARG_STRLEN) in message
    template["args"][2] = "x" * LONGEST
    first_job_runs(js, template)


def test_one_environment_variable_longer_than_the_kernel_takes_is_refused(
    js: JobSession,
) -> None:
    value = "y" * (LONGEST - len("BIG="))
    refused(
        js,
        {"remote_command": "/bin/true", "job_environment": {"BIG": value + "y"}},
        "JobTemplate.job_environment",
        "BIG",
        "MAX_ARG_STRLEN",
    )
    first_job_runs(js, {"remote_command": "/bin/true", "job_environment": {"BIG": value}})


def test_arguments_beyond_arg_max_are_refused(js: JobSession) -> None:
    count = os.sysconf("SC_ARG_MAX") // LONGEST + 1
    refused(
        js,
        {"remote_command": "/bin/true", "args": ["a" * LONGEST] * count},
        "JobTemplate.args",
        "ARG_MAX",
        str(os.sysconf("SC_ARG_MAX")),
    )


def test_an_environment_beyond_arg_max_is_refused(js: JobSession) -> None:
    count = os.sysconf("SC_ARG_MAX") // LONGEST + 1
    variables = {f"V{i}": "e" * (LONGEST - 10) for i in range(count)}
    refused(
        js,
        {"remote_command": "/bin/true", "job_environment": variables},
        "JobTemplate.job_environment",
        "ARG_MAX",
    )


def test_arg_max_follows_the_jobs_own_stack_limit(js: JobSession) -> None:
    """The job starts with the STACK_SIZE it asks for, so that limit decides what fits."""
    template: dict[str, Any] = {"remote_command": "/bin/true", "args": ["s" * 100_000] * 2}
    refused(
        js,
        {**template, "resource_limits": {"STACK_SIZE": 256}},
        "JobTemplate.args",
        "ARG_MAX",
        "262144",
    )
    first_job_runs(js, template)


# -- resource limits ----------------------------------------------------------------------------


def test_a_limit_above_the_submitters_hard_limit_is_refused_naming_it_plainly(
    js: JobSession,
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this process has no hard limit on open files to go above")
    message = refused(
        js,
        {"remote_command": "/bin/true", "resource_limits": {"OPEN_FILES": 2**62}},
        "JobTemplate.resource_limits",
        f"{{'OPEN_FILES': {2**62}}}",
        f"hard limit ({hard})",
    )
    assert "ResourceLimit" not in message, message


def test_a_wallclock_limit_of_zero_ends_the_job_as_soon_as_it_starts(js: JobSession) -> None:
    """Zero is a limit like any other (values are non-negative numbers): no time to run."""
    job = js.run_job(
        {"remote_command": "/bin/sleep", "args": ["600"], "resource_limits": {"WALLCLOCK_TIME": 0}}
    )
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert info.annotation == "wallclock limit of 0 s exceeded", info.annotation
    assert job.get_template().resource_limits == {drmaa2.ResourceLimit.WALLCLOCK_TIME: 0}


# -- file names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["output_path", "error_path", "input_path", "working_directory", "remote_command"]
)
def test_a_name_longer_than_the_file_system_takes_is_refused(
    js: JobSession, tmp_path: Path, field: str
) -> None:
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    value = str(tmp_path / ("n" * (name_max + 1)))
    template = {"remote_command": "/bin/true", field: value}
    message = refused(js, template, field, "NAME_MAX", str(name_max), str(name_max + 1))
    assert value not in message, "the 256-character name is shortened"


@pytest.mark.parametrize("field", ["output_path", "input_path", "working_directory"])
def test_a_path_longer_than_path_max_is_refused(js: JobSession, tmp_path: Path, field: str) -> None:
    value = str(tmp_path) + "/d" * 2100
    refused(js, {"remote_command": "/bin/true", field: value}, field, "PATH_MAX", "4096")


def test_a_relative_path_is_measured_where_it_resolves(
    js: JobSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path
    while len(str(deep)) < 3900:
        deep = deep / ("p" * 200)
        deep.mkdir()
    monkeypatch.chdir(deep)
    refused(js, {"remote_command": "/bin/true", "output_path": "o" * 200}, "output_path")
    monkeypatch.chdir(tmp_path)
    first_job_runs(js, {"remote_command": "/bin/true", "output_path": "o" * 200})


def test_an_array_path_too_long_even_for_index_1_is_refused(js: JobSession, tmp_path: Path) -> None:
    room = os.pathconf(tmp_path, "PC_NAME_MAX") - 1
    too_long = str(tmp_path / ("t" * (room + 1) + drmaa2.PARAMETRIC_INDEX))
    with pytest.raises(drmaa2.InvalidArgumentException, match=r"output_path.*NAME_MAX"):
        js.run_bulk_jobs({"remote_command": "/bin/true", "output_path": too_long}, 1, 3)
    assert js.get_jobs() == []
    fits = str(tmp_path / ("t" * room + drmaa2.PARAMETRIC_INDEX))
    array = js.run_bulk_jobs({"remote_command": "/bin/true", "output_path": fits}, 1, 3)
    assert array.id == "1"
    js.wait_all_terminated(array.job_list, TIMEOUT)
    assert [job.get_state()[0] for job in array.job_list] == [JobState.DONE] * 3


# -- what is not a file -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["output_path", "error_path", "input_path"])
def test_dev_tty_is_refused(js: JobSession, field: str) -> None:
    refused(js, {"remote_command": "/bin/true", field: "/dev/tty"}, field, "/dev/tty", "terminal")


@pytest.mark.parametrize("field", ["output_path", "error_path", "input_path"])
def test_a_fifo_is_refused_without_opening_it(js: JobSession, tmp_path: Path, field: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(js, {"remote_command": "/bin/true", field: str(fifo)}, field, str(fifo), "FIFO")


@pytest.mark.parametrize("field", ["output_path", "error_path", "input_path", "remote_command"])
def test_a_directory_where_a_file_is_expected_is_refused(
    js: JobSession, tmp_path: Path, field: str
) -> None:
    template = {"remote_command": "/bin/true", field: str(tmp_path)}
    refused(js, template, field, str(tmp_path), "directory")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_path", "/dev/fd/1"),
        ("output_path", "/proc/self/fd/1"),
        ("output_path", "/dev//stdout"),
        # Two leading slashes: the kernel reads them as one, normpath keeps them.
        ("output_path", "//dev/stdout"),
        ("error_path", "//dev/stderr"),
        ("input_path", "//dev/stdin"),
        ("output_path", "//dev/fd/1"),
        ("input_path", "//proc/self/fd/0"),
        ("error_path", "//proc/thread-self/fd/2"),
    ],
)
def test_names_of_the_openers_own_descriptors_are_refused(
    js: JobSession, field: str, value: str
) -> None:
    message = refused(js, {"remote_command": "/bin/true", field: value}, field, value)
    assert "names a descriptor of the process that opens it" in message


@pytest.mark.parametrize(
    ("field", "target"),
    [("output_path", "/dev/stdout"), ("input_path", "/dev/stdin"), ("error_path", "/dev/fd/2")],
)
def test_a_symbolic_link_to_the_openers_own_descriptors_is_refused(
    js: JobSession, tmp_path: Path, field: str, target: str
) -> None:
    (tmp_path / "dev").symlink_to("/dev")
    (tmp_path / "stream").symlink_to(target)
    for value in (str(tmp_path / "stream"), str(tmp_path / "dev" / target[len("/dev/") :])):
        message = refused(js, {"remote_command": "/bin/true", field: value}, field, value)
        assert "names a descriptor of the process that opens it" in message


def test_dev_stdout_written_otherwise_is_not_called_a_fifo_when_stdout_is_a_pipe(
    state_dir: str,
) -> None:
    """With this process's stdout a pipe, "//dev/stdout" is refused for what it is (the job's
    own stdout), not as a FIFO it is not."""
    script = (
        "import drmaa2\n"
        "with drmaa2.JobSession(destroy_on_exit=True) as js:\n"
        "    try:\n"
        "        js.run_job({'remote_command': '/bin/true', 'output_path': '//dev/stdout'})\n"
        "    except drmaa2.InvalidArgumentException as error:\n"
        "        print(error)\n"
        "    else:\n"
        "        print('accepted')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert "names a descriptor of the process that opens it" in done.stdout, done.stdout
    assert "FIFO" not in done.stdout


def test_a_device_as_remote_command_is_refused(js: JobSession) -> None:
    refused(js, {"remote_command": "/dev/null"}, "remote_command", "not a regular file")


def test_dev_null_is_still_a_fine_stream(js: JobSession) -> None:
    first_job_runs(
        js, {"remote_command": "/bin/true", "input_path": "/dev/null", "output_path": "/dev/null"}
    )


def test_the_callers_own_streams_work_when_they_are_pipes(state_dir: str) -> None:
    """/dev/stdin, /dev/stdout and /dev/stderr are this process's streams, handed to the job,
    even when they are pipes (what a FIFO path would be refused for)."""
    script = (
        "import drmaa2\n"
        "with drmaa2.JobSession(destroy_on_exit=True) as js:\n"
        "    job = js.run_job({'remote_command': '/bin/sh', 'args': ['-c', 'cat; echo err >&2'],\n"
        "                      'input_path': '/dev/stdin', 'output_path': '/dev/stdout',\n"
        "                      'error_path': '/dev/stderr'})\n"
        "    job.wait_terminated(60)\n"
        "    assert job.get_info().job_state == 'DONE'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input="piped in\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "piped in\n", "err\n")


# -- input and output one file ------------------------------------------------------------------


def input_file(tmp_path: Path) -> Path:
    """An input file and its text, which no job may empty."""
    path = tmp_path / "in"
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("field", ["output_path", "error_path"])
def test_a_hard_link_to_the_input_is_refused_as_output(
    js: JobSession, tmp_path: Path, field: str
) -> None:
    source = input_file(tmp_path)
    link = tmp_path / "link"
    os.link(source, link)
    template = {"remote_command": "/bin/cat", "input_path": str(source), field: str(link)}
    refused(js, template, "input_path", field, "same file", str(link))
    assert source.read_text() == "precious\n"


def test_a_hard_link_to_the_input_as_an_array_tasks_output_fails_that_task(
    js: JobSession, tmp_path: Path
) -> None:
    source = input_file(tmp_path)
    os.link(source, tmp_path / "out.2")
    array = js.run_bulk_jobs(
        {
            "remote_command": "/bin/cat",
            "input_path": str(source),
            "output_path": str(tmp_path / f"out.{drmaa2.PARAMETRIC_INDEX}"),
        },
        1,
        3,
    )
    js.wait_all_terminated(array.job_list, TIMEOUT)
    one, two, three = (job.get_info() for job in array.job_list)
    assert (one.job_state, three.job_state) == (JobState.DONE, JobState.DONE)
    assert two.job_state is JobState.FAILED
    assert "same file" in (two.annotation or ""), two.annotation
    assert source.read_text() == "precious\n"
    assert (tmp_path / "out.3").read_text() == "precious\n"


def test_an_output_linked_to_the_input_while_the_job_is_held_fails_the_job(
    js: JobSession, tmp_path: Path
) -> None:
    source = input_file(tmp_path)
    output = tmp_path / "out"
    job = js.run_job(
        {
            "remote_command": "/bin/cat",
            "input_path": str(source),
            "output_path": str(output),
            "submit_as_hold": True,
        }
    )
    os.link(source, output)
    job.release()
    job.wait_terminated(TIMEOUT)
    info = job.get_info()
    assert info.job_state is JobState.FAILED
    assert "same file" in (info.annotation or ""), info.annotation
    assert source.read_text() == "precious\n"
