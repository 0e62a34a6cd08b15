"""Requests made again: what a keeper answers to a request whose keeper died before it
answered (the client sends it to the next keeper, marked ``again``).

The dead keeper may have done the request, all of it or part: the next keeper answers as if
it had done it then. A control the job's state now refuses succeeds if that state is where
the action led (:func:`reached`); an array's control counts such tasks as acted on
(:func:`again_outcome`), and so, for a reap, tasks no longer known (the dead keeper reaped
them). Submissions, reaps and sessions' creation and destruction have their own rules, in
their handlers (see :meth:`Requests._do_again
<drmaa2_ostracker.keeper.requests.Requests._do_again>`).
"""

from __future__ import annotations

from collections.abc import Sequence

from drmaa2.backend import Action
from drmaa2.enums import JobState
from drmaa2.errors import Drmaa2Exception, InvalidArgumentException
from drmaa2_ostracker.keeper.sessions import SessionEngine

__all__ = ["MADE_AGAIN", "again_outcome", "reached"]

#: The requests that may be made again (each handler takes ``again=True``).
MADE_AGAIN = frozenset(
    {
        "run_job",
        "run_bulk_jobs",
        "control",
        "control_array",
        "create_session",
        "reap",
        "destroy_session",
    }
)


def again_outcome(
    engine: SessionEngine,
    operation: str,
    applied: int,
    skipped: list[tuple[str, str]],
    failures: Sequence[tuple[str, Drmaa2Exception]],
) -> tuple[int, list[tuple[str, str]], Sequence[tuple[str, Drmaa2Exception]]]:
    """The outcome of an array's control made again, from the one it had now: (how many it
    applied to, the tasks passed over with why, those it failed on). For "reap", a task no
    longer known counts as applied to; for a control action, a task passed over whose state
    is where the action led."""
    if operation == "reap":
        gone = [(job_id, e) for job_id, e in failures if isinstance(e, InvalidArgumentException)]
        failures = [(job_id, e) for job_id, e in failures if (job_id, e) not in gone]
        return applied + len(gone), skipped, failures
    action = Action(operation)
    passed = [(job_id, why) for job_id, why in skipped if not _done(engine, job_id, action)]
    return applied + len(skipped) - len(passed), passed, failures


def _done(engine: SessionEngine, job_id: str, action: Action) -> bool:
    """Whether job ``job_id``, which refuses ``action`` now, is where it led (see
    :func:`reached`)."""
    try:
        state = engine.job_state(job_id)[0]
    except Drmaa2Exception:  # reaped since: it had finished
        state = JobState.DONE
    return reached(action, state)


def reached(action: Action, state: JobState) -> bool:
    """Whether a job in ``state`` may be where ``action`` led it, for a control made again
    that the state refuses: a job terminated has finished; a job released, or resumed,
    may have started, or finished, since."""
    if action is Action.TERMINATE or action is Action.RESUME:
        return state.is_terminal
    if action is Action.RELEASE:
        return state not in (JobState.QUEUED_HELD, JobState.REQUEUED_HELD)
    return False
