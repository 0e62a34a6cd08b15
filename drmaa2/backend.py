"""The backend contract: what a DRMAA2 backend provides to the ``drmaa2`` session layer.

A backend is a plain object returned by the ``factory`` of a :class:`BackendSpec`. The front
classes (:class:`drmaa2.JobSession`, :class:`drmaa2.Job`, :class:`drmaa2.JobArray`,
:class:`drmaa2.MonitoringSession`) do the work common to every backend before calling it:

- argument checks (timeouts, indices, empty job lists, jobs of another session);
- conversion of mappings to :class:`~drmaa2.types.JobTemplate` / :class:`~drmaa2.types.JobInfo`;
- the closed-session guard (a backend session is never called after ``close()``);
- error wrapping: an exception that is not a :class:`~drmaa2.errors.Drmaa2Exception` becomes an
  :class:`~drmaa2.errors.InternalException` naming the backend and the operation.

So a backend only implements the methods below and raises the DRMAA2 exception that fits. Job
ids are strings chosen by the backend, unique within a session and never reused.

A backend may also offer :class:`ArrayControlBackend`: one call acting on every task of an
array. Without it, the front classes act on an array task by task. A job session backend may
offer :class:`SessionIdentity`: it tells a session from one made again under its name after
it was destroyed. Without it, an object of a destroyed session destroys a session of its name
made since, and its jobs are taken for that session's jobs of the same ids.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from drmaa2.enums import Capability, JobState
from drmaa2.errors import Drmaa2Exception
from drmaa2.types import JobInfo, JobTemplate, MachineInfo, Notification, QueueInfo, Version

__all__ = [
    "Action",
    "ArrayControlBackend",
    "ArrayOperation",
    "ArrayOutcome",
    "Backend",
    "BackendSpec",
    "ExtensionKey",
    "JobSessionBackend",
    "MonitoringSessionBackend",
    "NotificationCallback",
    "SessionIdentity",
    "SubmittedId",
    "WaitFor",
]

#: Called with a :class:`~drmaa2.types.Notification` for every job state change.
NotificationCallback = Callable[[Notification], None]


@runtime_checkable
class SubmittedId(Protocol):
    """The id of a job submitted ahead: :meth:`JobSessionBackend.run_job` may return this
    instead of the id, when the job was handed over but its id is not known yet (a burst of
    submissions then costs no round trip each). The session's :class:`~drmaa2.Job` asks for
    the id when it is first needed."""

    def result(self) -> str:
        """The job's id; raises the DRMAA2 exception of a submission that failed (nothing
        was recorded then)."""
        ...


class Action(str, enum.Enum):
    """A job control action (``Job.suspend()`` … ``Job.terminate()``)."""

    SUSPEND = "suspend"
    RESUME = "resume"
    HOLD = "hold"
    RELEASE = "release"
    TERMINATE = "terminate"


class WaitFor(enum.Enum):
    """What a wait waits for."""

    #: The job left QUEUED / QUEUED_HELD (RUNNING, SUSPENDED, DONE and FAILED all count).
    STARTED = "started"
    #: The job is DONE or FAILED.
    TERMINATED = "terminated"

    def reached(self, state: JobState) -> bool:
        """Tell whether a job in ``state`` satisfies this condition."""
        return state.is_started if self is WaitFor.STARTED else state.is_terminal


@runtime_checkable
class JobSessionBackend(Protocol):
    """One open job session of a backend.

    Unknown job ids (never submitted, or reaped) raise InvalidArgumentException naming the id.
    """

    @property
    def name(self) -> str:
        """The session's name."""
        ...

    @property
    def contact(self) -> str:
        """Where the session lives (for the ``os`` backend: its state directory)."""
        ...

    def run_job(self, template: JobTemplate) -> str | SubmittedId:
        """Submit one job and return its id; the job is recorded before this returns, or,
        for a :class:`SubmittedId`, handed over so that it will be whatever happens to the
        caller (its id, or the error of a submission that failed, then comes from
        ``result()``).

        Raises InvalidArgumentException for a template that cannot run (naming the field and
        value) and UnsupportedAttributeException for a set attribute the backend cannot honour.
        Nothing is recorded when it raises.
        """
        ...

    def run_bulk_jobs(
        self,
        template: JobTemplate,
        begin_index: int,
        end_index: int,
        step: int,
        max_parallel: int | None,
    ) -> tuple[str, list[str]]:
        """Submit an array job; return the array id and its task ids in index order.

        The arguments are already checked (begin ≥ 1, end ≥ begin, step ≥ 1, max_parallel None
        or ≥ 1). Template errors raise as in :meth:`run_job`.
        """
        ...

    def job_ids(self, job_filter: JobInfo | None) -> list[str]:
        """Ids of the session's jobs and array tasks that pass ``job_filter``
        (see :func:`drmaa2.filter.job_matches`), oldest first."""
        ...

    def array_task_ids(self, array_id: str) -> list[str]:
        """Task ids of an array of this session; InvalidArgumentException if unknown."""
        ...

    def array_template(self, array_id: str) -> JobTemplate:
        """The template an array was submitted with; InvalidArgumentException if unknown."""
        ...

    def job_state(self, job_id: str) -> tuple[JobState, str]:
        """The job's state and sub-state text ("" if none)."""
        ...

    def job_info(self, job_id: str) -> JobInfo:
        """Everything known about the job; its ``job_state`` equals :meth:`job_state`'s."""
        ...

    def job_template(self, job_id: str) -> JobTemplate:
        """The template the job was submitted with."""
        ...

    def control(self, job_id: str, action: Action) -> None:
        """Suspend, resume, hold, release or terminate a job.

        Raises InvalidStateException when the job's state does not allow the action (any action
        on a finished job; suspend/resume of a queued job; hold/release of a started job).
        """
        ...

    def wait(
        self, job_ids: Sequence[str], condition: WaitFor, wait_all: bool, timeout: float
    ) -> list[str]:
        """Block until one (``wait_all`` False) or all of the jobs satisfy ``condition``.

        ``timeout`` is in seconds: -1 waits forever, 0 checks once. Returns the ids that
        satisfied the condition (for "any": exactly one). Raises TimeoutException when the
        time runs out, InvalidArgumentException for an unknown id.
        """
        ...

    def reap(self, job_id: str) -> None:
        """Forget a finished job; InvalidStateException while it has not finished."""
        ...

    def job_categories(self) -> list[str]:
        """The job categories this backend knows."""
        ...

    def close(self) -> None:
        """Release the session's resources; running jobs keep running."""
        ...


#: What an array-wide call does to every task: a control action's name, or ``"reap"``.
ArrayOperation = Literal["suspend", "resume", "hold", "release", "terminate", "reap"]


@dataclasses.dataclass(frozen=True)
class ArrayOutcome:
    """What an array-wide operation did to the tasks it was asked to act on."""

    #: How many tasks it applied to (a task already where the action would take it counts).
    applied: int
    #: The tasks it does not apply to (a running task for hold, a finished one for terminate
    #: …), each with why: the message its InvalidStateException would have had, in the order
    #: the tasks were given. Only reported when the operation applied to no task, so a backend
    #: may leave it empty when ``applied`` is not 0.
    skipped: Sequence[tuple[str, str]] = ()
    #: The tasks it failed on for any other reason, each with its DRMAA2 exception, in the
    #: order the tasks were given.
    failed: Sequence[tuple[str, Drmaa2Exception]] = ()


@runtime_checkable
class ArrayControlBackend(Protocol):
    """The optional array-wide control of a job session backend: one call for an array of any
    size. A backend without it is called task by task, with the same outcome."""

    def control_array(
        self, array_id: str, job_ids: Sequence[str], operation: ArrayOperation
    ) -> ArrayOutcome:
        """Apply ``operation`` to each of ``job_ids`` (tasks of the array ``array_id``), as
        :meth:`JobSessionBackend.control` or :meth:`JobSessionBackend.reap` would one by one
        in that order, and say how it went; a task it cannot act on never stops the others.

        The front class orders the tasks so that acting one by one is safe: hold and terminate
        come last index first, so no task starts meanwhile that they would have held or
        ended. A backend acting on all at once under one lock may act in any order. An error
        of the call as a whole (the backend cannot be reached) raises.
        """
        ...


@runtime_checkable
class SessionIdentity(Protocol):
    """The optional identity of a job session backend: which session of its name it is.

    A session destroyed and made again under its name is another session. The front classes
    use this to keep the objects of the old one (a :class:`drmaa2.JobSession`, its
    :class:`drmaa2.Job` and :class:`drmaa2.JobArray` objects) from acting on the new one:
    they are not equal to its objects, their jobs are refused by its waits, their
    ``destroy()`` never destroys it, and their ``close()`` (with ``destroy_on_exit``) passes.
    """

    @property
    def incarnation(self) -> object:
        """A value (hashable, with a stable ``str``) that two objects of one session share,
        and that differs for a session made again under its name after it was destroyed
        (the os backend: when it was made)."""
        ...

    def destroy(self) -> None:
        """Destroy this session: the one this object opened, never a session made again
        under its name since; InvalidSessionException if it was destroyed already. The
        object is closed afterwards, with :meth:`JobSessionBackend.close`."""
        ...


@runtime_checkable
class MonitoringSessionBackend(Protocol):
    """A read-only view of a backend's machines and jobs."""

    @property
    def name(self) -> str:
        """The session's name."""
        ...

    def all_jobs(self, job_filter: JobInfo | None) -> list[JobInfo]:
        """Every job the backend can see that passes ``job_filter``; ``job_id`` is set."""
        ...

    def job_info(self, job_id: str) -> JobInfo:
        """What is known of one job now; InvalidArgumentException if it no longer exists."""
        ...

    def all_machines(self, names: Sequence[str] | None) -> list[MachineInfo]:
        """The machines (all, or those named: unknown names are left out)."""
        ...

    def all_queues(self, names: Sequence[str] | None) -> list[QueueInfo]:
        """The queues (all, or those named: unknown names are left out)."""
        ...

    def close(self) -> None:
        """Release the session's resources."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A DRMAA2 backend: session management and what the backend can do."""

    def drms_name(self) -> str:
        """The name of the resource manager behind this backend."""
        ...

    def drms_version(self) -> Version:
        """The version of the resource manager behind this backend."""
        ...

    def supports(self, capability: Capability) -> bool:
        """Whether an optional DRMAA2 capability is offered."""
        ...

    def create_job_session(self, name: str | None, contact: str | None) -> JobSessionBackend:
        """Create and open a persistent job session.

        ``name`` None asks the backend to generate a fresh name. A name that exists raises
        InvalidArgumentException.
        """
        ...

    def open_job_session(self, name: str, contact: str | None) -> JobSessionBackend:
        """Open an existing job session; InvalidArgumentException if there is none by that name."""
        ...

    def destroy_job_session(self, name: str, contact: str | None) -> None:
        """Forget a job session and its records; InvalidArgumentException if unknown."""
        ...

    def job_session_names(self, contact: str | None) -> list[str]:
        """Names of the existing job sessions."""
        ...

    def open_monitoring_session(
        self, name: str | None, contact: str | None
    ) -> MonitoringSessionBackend:
        """Open a monitoring session (UnsupportedOperationException if the backend has none)."""
        ...

    def register_event_notification(self, callback: NotificationCallback | None) -> None:
        """Call ``callback`` on every job state change of this backend; None stops the calls.

        Backends without :attr:`~drmaa2.enums.Capability.CALLBACK` raise
        UnsupportedOperationException.
        """
        ...


@dataclasses.dataclass(frozen=True)
class ExtensionKey:
    """An implementation-specific key a backend sets or reads in the ``implementation_specific``
    dict of one data type, for example ``ExtensionKey("JobInfo", "pid", "process id")``."""

    #: The data type carrying the key: "JobTemplate", "JobInfo", "MachineInfo" or "QueueInfo".
    data_type: str
    #: The key.
    name: str
    #: What its value means, in one line (shown by ``drmaa2.describe_attribute``).
    description: str


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """A backend offered by a plugin: its name, how to make it, and what it declares."""

    #: The name users select the backend by (``backend="os"``).
    name: str
    #: Called once, on first use, to build the backend object.
    factory: Callable[[], Backend]
    #: One line for listings.
    description: str = ""
    #: The implementation-specific keys of the backend (optional): what
    #: ``JobInfo.get_implementation_specific_keys()`` and the other accessors know.
    extension_keys: tuple[ExtensionKey, ...] = ()
    #: The backend used when several are installed and none is chosen (``backend=`` or
    #: ``$DRMAA2_BACKEND``). The ``os`` backend says so: a laptop's code runs on it unchanged.
    default: bool = False
