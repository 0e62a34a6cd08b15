"""A script whose ``#!`` line cannot be run: the job fails to start, and the reason names the
interpreter (not a bare "No such file or directory" about a script that exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT
from tests.os.test_persistence import stop_keeper


@pytest.mark.parametrize(
    ("first_line", "reason"),
    [
        (b"#!/no/such/interpreter\n", "the interpreter its #! line names, /no/such/interpreter"),
        (b"#!/bin/sh\r\n", "its #! line ends in a carriage return"),
    ],
)
def test_a_script_whose_interpreter_cannot_run_names_it(
    tmp_path: Path, first_line: bytes, reason: str
) -> None:
    script = tmp_path / "script"
    script.write_bytes(first_line + b"echo hello\n")
    script.chmod(0o755)
    state = tmp_path / "state"
    js = drmaa2.create_job_session("s", str(state), backend="os")
    try:
        job = js.run_job({"remote_command": str(script)})
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
        assert reason in (info.annotation or ""), info.annotation
        assert str(script) in (info.annotation or "")
    finally:
        js.close()
        stop_keeper(state)
