"""Spawning a job the supervisor starts: its launch recorded before its fork, its process
after, one launch in flight at a time; and why a job that was to start did not.
"""

from __future__ import annotations

import contextlib
import errno
import threading

from drmaa2_ostracker.faults import limit_reached
from drmaa2_ostracker.process import Spawned, boot_ticks, spawn
from drmaa2_ostracker.supervisor.jobs import LaunchError, TrackedJob, launch_marks

__all__ = ["INTERRUPTED", "Limited", "spawn_job"]

#: Why a job that was to start did not: the start was interrupted (KeyboardInterrupt …).
INTERRUPTED = "not started: the start was interrupted"
#: Held from the record that a launch begins to the record of its process (see
#: :func:`spawn_job`).
_ONE_LAUNCH_IN_FLIGHT = threading.Lock()


class Limited(str):
    """Why a job did not start, when that was a limit of the machine (it waits, not fails)."""


def spawn_job(job: TrackedJob) -> tuple[Spawned | None, str, BaseException | None]:
    """Spawn a job: (its process, or None and why not, and an interruption to re-raise
    once the failure is recorded).

    One launch at a time is *in flight* (its beginning recorded in the launches file, its
    process not yet), whichever threads start jobs: a keeper killed then leaves a single
    launch whose process is unknown, so the next keeper can tell that an unknown process
    forked since its beginning is that launch's. (Two in flight, a process of either
    could be taken for the other's: one job then shows another's end, and never ran.)"""
    with _ONE_LAUNCH_IN_FLIGHT:
        return _spawn_alone(job)


def _spawn_alone(job: TrackedJob) -> tuple[Spawned | None, str, BaseException | None]:
    spec, job.spec = job.spec, None
    try:
        spec = spec or job.group.prepare(job.record)
        record = job.record
        launches = job.store.launches
        if job.unsaved:
            key, job.submission = job.submission, None
            if key is None:
                return spawn(spec), "", None
            # Started before it is recorded: the client's key for it is recorded first,
            # and its process after, so that a client whose keeper was killed meanwhile
            # gets this job when it makes the submission again (Recovery.resubmitted).
            fork = launches.forking(key, record.job_id, boot_ticks())
            spec.announce, spec.forked, unstarted = fork
            try:
                return spawn(spec), "", None
            except BaseException:
                unstarted()
                raise
        # Marked STARTING in the store (or about to be): the next keeper must know.
        mark = launch_marks(record)[0]
        spec.announce = launches.beginning(record.session, record.job_id, mark)
        spawned = spawn(spec)
    except LaunchError as error:
        return None, str(error), None
    except OSError as error:
        limit = limit_reached(error)
        if limit is not None:  # the job waits until the limit allows it
            return None, Limited(limit), None
        if error.errno in (errno.ENOSPC, errno.EDQUOT):  # its launch could not be recorded
            return None, Limited(f"the state directory's file system is full ({error})"), None
        return None, f"could not start the job: {error.strerror or error}", None
    except Exception as error:  # the job fails, the supervisor goes on
        reason = getattr(error, "strerror", None) or str(error)
        return None, f"could not start the job: {reason}", None
    except BaseException as error:  # KeyboardInterrupt: record, then re-raise
        return None, INTERRUPTED, error
    identity = spawned.identity
    with contextlib.suppress(OSError):  # without it, the next keeper looks for the process
        launches.forked(record.session, record.job_id, mark, identity.pid, identity.start_ticks)
    return spawned, "", None
