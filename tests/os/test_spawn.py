"""How the os backend starts a job's process: scripts without ``#!``, and start failures."""

from __future__ import annotations

from pathlib import Path

import drmaa2
from drmaa2 import JobState
from tests.behaviour.conftest import TIMEOUT, file_text

BACKEND = "os"


def test_an_executable_script_without_a_shebang_runs_through_sh(tmp_path: Path) -> None:
    script = tmp_path / "plain-script"
    script.write_text('echo "plain $1 $JOB_ID"\nexit 4\n')
    script.chmod(0o755)
    out = tmp_path / "out"
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        job = js.run_job({"remote_command": str(script), "args": ["arg"], "output_path": str(out)})
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        js.destroy()
    assert (info.job_state, info.exit_status) == (JobState.FAILED, 4)
    assert file_text(out) == f"plain arg {job.id}\n"


def test_a_script_whose_interpreter_is_missing_fails_to_start(tmp_path: Path) -> None:
    script = tmp_path / "broken-script"
    script.write_text("#!/no/such/interpreter\necho never\n")
    script.chmod(0o755)
    with drmaa2.JobSession("spawn", str(tmp_path / "state"), backend=BACKEND) as js:
        job = js.run_job({"remote_command": str(script)})
        job.wait_terminated(TIMEOUT)
        info = job.get_info()
        js.destroy()
    assert (info.job_state, info.job_sub_state) == (JobState.FAILED, "start_failed")
    assert info.exit_status is None
    assert "No such file" in (info.annotation or ""), info.annotation
