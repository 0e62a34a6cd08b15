"""What the store holds, as Python values: job and array records, and stored templates."""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
from collections.abc import Sequence
from typing import Any

from drmaa2.enums import JobState
from drmaa2.types import JobTemplate

__all__ = [
    "JOB_COLUMNS",
    "JOB_INSERT",
    "JOB_SELECT",
    "JOB_UPSERT",
    "MAX_ARRAY_TASKS",
    "ArrayRecord",
    "JobRecord",
    "dumps",
    "gone_indices",
    "record_of",
    "row_of",
    "template_document",
    "update_sql",
]


@dataclasses.dataclass
class JobRecord:
    """One job (or array task) as stored."""

    session: str
    job_id: str
    state: JobState
    submission_us: int
    array_id: str | None = None
    task_index: int | None = None
    job_name: str | None = None
    sub_state: str = ""
    annotation: str | None = None
    exit_status: int | None = None
    terminating_signal: str | None = None
    dispatch_us: int | None = None
    finish_us: int | None = None
    cpu_time: float | None = None
    pid: int | None = None
    pid_start: int | None = None
    #: Extension keys of a finished job's rusage, JSON.
    rusage: str | None = None
    #: The job's template as JSON (None for array tasks: the array's template is used).
    template: str | None = None
    #: What a job that has not started needs to start later (environment snapshot …), JSON.
    launch: str | None = None
    #: The keeper that started the job (pid, start time): unused since one keeper owns a
    #: state directory's jobs; kept in the schema.
    owner_pid: int | None = None
    owner_start: int | None = None
    #: The job's place in its session's order (oldest first): given by the store when the
    #: record is first written; an array's tasks have places reserved in index order.
    seq: int | None = None

    def to_values(self) -> tuple[Any, ...]:
        """The record as plain values, in field order (the state as its int code)."""
        return row_of(self)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> JobRecord:
        """Read :meth:`to_values`'s form back."""
        return record_of(values)


JOB_COLUMNS = tuple(f.name for f in dataclasses.fields(JobRecord))
JOB_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
JOB_INSERT = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' for _ in JOB_COLUMNS)})"
)
# A whole record, inserted or overwritten; nothing for a session destroyed meanwhile (its
# values, then the session's name).
JOB_UPSERT = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) "
    f"SELECT {', '.join('?' for _ in JOB_COLUMNS)} "
    "WHERE EXISTS (SELECT 1 FROM sessions WHERE name = ?) "
    "ON CONFLICT (session, job_id) DO UPDATE SET "
    + ", ".join(
        f"{name} = excluded.{name}" for name in JOB_COLUMNS if name not in ("session", "seq")
    )
)
_UPDATABLE = frozenset(JOB_COLUMNS) - {"session", "job_id", "seq"}
_fields = operator.attrgetter(*JOB_COLUMNS)
_STATE_AT = JOB_COLUMNS.index("state")


def row_of(record: JobRecord) -> tuple[Any, ...]:
    """A record as a database row (and as plain values on the wire)."""
    # A plain int for the state: sqlite3 binds an IntEnum through its slow adapter path.
    row = list(_fields(record))
    row[_STATE_AT] = int(row[_STATE_AT])
    return tuple(row)


@functools.lru_cache(maxsize=64)
def update_sql(columns: tuple[str, ...], guarded: bool) -> str:
    """The UPDATE of some columns of one job (``guarded``: only in a given state)."""
    unknown = set(columns) - _UPDATABLE
    if unknown:
        raise KeyError(f"not job columns: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in columns)
    sql = f"UPDATE jobs SET {assignments} WHERE session = ? AND job_id = ?"
    return sql + " AND state = ? AND sub_state = ?" if guarded else sql


def record_of(row: Sequence[Any]) -> JobRecord:
    """A record from a database row (or its plain values)."""
    record = JobRecord(*row)
    record.state = JobState(record.state)
    return record


#: The most tasks one job array may have (documented in the README; a larger array raises
#: InvalidArgumentException naming this). Tasks cost nothing until they are touched, but a
#: listing of the array still names each of them.
MAX_ARRAY_TASKS = 1_000_000


@dataclasses.dataclass
class ArrayRecord:
    """One job array as stored."""

    session: str
    array_id: str
    begin_index: int
    end_index: int
    step: int
    max_parallel: int | None
    template: str
    launch: str | None
    #: The place of the first task in the session's order; the tasks' places follow it.
    first_seq: int | None = None
    #: The next index whose task is not in the store yet (its tasks exist only once touched:
    #: started, controlled); None when every task is (arrays of schema version 1).
    next_index: int | None = None
    submission_us: int | None = None
    #: Whether the tasks not in the store yet are held (the array was submitted held).
    held: bool = False
    #: The indices of tasks touched ahead of the cursor and reaped since (a JSON list, or
    #: None): not in the store, and not untouched either.
    gone: str | None = None

    @property
    def gone_indices(self) -> set[int]:
        """:attr:`gone` read (a value that is not a JSON list of ints, in a damaged store,
        reads as none)."""
        return gone_indices(self.gone)

    @property
    def tasks(self) -> int:
        """How many tasks the array has."""
        return len(range(self.begin_index, self.end_index + 1, self.step))

    def seq_of(self, index: int) -> int | None:
        """The place of the task ``index`` in the session's order."""
        if self.first_seq is None:
            return None
        return self.first_seq + (index - self.begin_index) // self.step


def dumps(value: Any) -> str:
    """Compact JSON, as stored."""
    return json.dumps(value, separators=(",", ":"))


_TEMPLATE_FIELDS = tuple(field.name for field in dataclasses.fields(JobTemplate))
# Fields whose values are not JSON as they are (times, enums, ResourceLimit keys).
_ENCODED_FIELDS = frozenset(
    {"start_time", "deadline_time", "machine_os", "machine_arch", "resource_limits"}
)


def template_document(template: JobTemplate) -> str:
    """A template as stored: compact JSON of its set fields (``JobTemplate.from_json`` reads
    it back; small rows make every write of the job cheaper)."""
    data = {}
    for name in _TEMPLATE_FIELDS:
        value = getattr(template, name)
        if value is not None:
            if name in _ENCODED_FIELDS:  # rare: let the type encode all of it
                data = template.to_dict()
                return dumps({key: val for key, val in data.items() if val is not None})
            data[name] = value
    return dumps(data)


def gone_indices(text: str | None) -> set[int]:
    """The indices an array's ``gone`` column lists (see :attr:`ArrayRecord.gone`); none for
    NULL or for a value that is not a JSON list of ints."""
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return set()
    if not isinstance(found, list):
        return set()
    return {index for index in found if isinstance(index, int)}
