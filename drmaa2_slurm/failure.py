"""Why Slurm could not start a job.

When slurmstepd cannot open a job's input, output or error file, Slurm says only
``JobLaunchFailure`` (raw wait status 4021). The annotation of such a job names what its template
asked for and what is missing, as seen from the submitting machine (on a cluster the job's files
are usually on a shared filesystem; where they are not, it says what to check).
"""

from __future__ import annotations

import os
import socket

from drmaa2.enums import HOME_DIR, PARAMETRIC_INDEX, WORKING_DIR
from drmaa2.types import JobTemplate

__all__ = ["launch_failure", "template_paths"]


def _substitute(value: str, index: int | None, working_directory: str | None) -> str:
    value = value.replace(HOME_DIR, os.path.expanduser("~"))
    if index is not None:
        value = value.replace(PARAMETRIC_INDEX, str(index))
    if working_directory is not None:
        value = value.replace(WORKING_DIR, working_directory)
    return value


def template_paths(t: JobTemplate, index: int | None, slurm_work_dir: str) -> dict[str, str]:
    """The job's working directory and stream files, placeholders resolved, as absolute paths.

    ``slurm_work_dir`` is the WorkDir Slurm reports: the ``--chdir`` the backend passed (the
    resolved working directory), or the submission's directory when the working directory
    depends on the array index (the job script then changes into it).
    """
    if t.working_directory is None or PARAMETRIC_INDEX not in t.working_directory:
        workdir = slurm_work_dir
    else:
        workdir = os.path.join(slurm_work_dir, _substitute(t.working_directory, index, None))
    paths = {"working_directory": os.path.normpath(workdir)}
    for field in ("input_path", "output_path", "error_path"):
        value = getattr(t, field)
        if value is not None and not (field == "error_path" and t.join_files):
            resolved = os.path.join(workdir, _substitute(value, index, workdir))
            paths[field] = os.path.normpath(resolved)
    return paths


def launch_failure(t: JobTemplate, index: int | None, slurm_work_dir: str, nodes: str) -> str:
    """The annotation of a job Slurm could not launch on ``nodes``."""
    paths = template_paths(t, index, slurm_work_dir)
    problems = []
    workdir = paths["working_directory"]
    if not os.path.isdir(workdir):
        problems.append(f"working_directory {workdir} does not exist")
    source = paths.get("input_path")
    if source is not None and not os.path.exists(source):
        problems.append(f"input_path {source} does not exist")
    for field in ("output_path", "error_path"):
        target = paths.get(field)
        if target is not None and not os.path.isdir(os.path.dirname(target)):
            problems.append(f"the directory of {field} {target} does not exist")
    where = f" on {nodes}" if nodes else ""
    told = f"Slurm could not start the job{where} (JobLaunchFailure)"
    if problems:
        return f"{told}: {'; '.join(problems)} (as seen from {socket.gethostname()})"
    shown = ", ".join(f"{field} {path}" for field, path in paths.items())
    return f"{told}: a file it reads or writes could not be opened there ({shown})"
