"""Array tasks that exist only once they are touched.

An array of a million tasks must be submitted in a moment and cost the keeper nothing for the
tasks that wait. So a task is written to the store (and tracked in memory) only when it is
*touched*: when dispatch starts it, in index order (the array's *cursor* moves past it), or
when it is controlled by its id before that (hold, terminate … of one task: it is then
*touched* out of order). Every other task of the array is *untouched*: QUEUED (QUEUED_HELD
while the array's ``held`` flag is set: submitted held, or held as a whole), with the array's
submission time, and nothing else known.
Queries answer for untouched tasks from the array's record; listings name them in their
places (an array reserves its tasks' places in the session's order when it is submitted).

The cursor is in the store (``arrays.next_index``), written with the task it moves past only
every :data:`CURSOR_EVERY` tasks (a statement less for every task an array starts), when the
last task is touched, and before a task is reaped while the stored cursor lags (see
``Unfolding.store_cursors``). So the stored cursor may lag behind, but never past a task
whose row is gone. A keeper that starts after a crash goes on from it: every task from there
on that is in the store was touched (in order, or out of order), and the cursor moves past
those in order (:meth:`Untouched.of`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from drmaa2.enums import Event, JobState
from drmaa2.types import JobTemplate, Notification
from drmaa2_ostracker.store import Store
from drmaa2_ostracker.store.records import ArrayRecord, JobRecord

__all__ = ["CURSOR_EVERY", "Untouched", "split_task_id"]

#: The stored cursor is written again once it lags this many tasks behind.
CURSOR_EVERY = 256


def split_task_id(job_id: str) -> tuple[str, int] | None:
    """(array id, index) of an array task's id; None for any other id."""
    array_id, dot, index = job_id.rpartition(".")
    if not dot or not index.isdigit() or not index.isascii():
        return None
    return array_id, int(index)


@dataclasses.dataclass(eq=False)
class Untouched:
    """The untouched tasks of one array: every index from ``cursor`` on (by its step, up to
    its end), except those touched out of order."""

    store: Store
    array: ArrayRecord
    #: The next index dispatch starts (beyond the array's end: none left).
    cursor: int
    #: Indices at or after the cursor whose tasks were touched out of order.
    touched: set[int] = dataclasses.field(default_factory=set)
    #: The tasks' job_name (the array template's).
    job_name: str | None = None
    #: The cursor as the store has it (it may lag behind :attr:`cursor`).
    stored: int | None = None

    @classmethod
    def of(cls, store: Store, array: ArrayRecord, touched: set[int] | None = None) -> Untouched:
        """The untouched tasks of ``array``, from its cursor (``touched``: indices at or after
        it that are in the store)."""
        rest = cls(store, array, array.next_index or array.begin_index, set(touched or ()))
        rest.stored = array.next_index
        rest.job_name = JobTemplate.from_json(array.template).job_name
        while rest.cursor in rest.touched and not rest.exhausted:
            rest.touched.discard(rest.cursor)
            rest.cursor += array.step
        rest.touched = {index for index in rest.touched if index > rest.cursor}
        return rest

    def snapshot(self) -> Untouched:
        """A copy that later touches do not change (for a listing made outside the lock)."""
        return dataclasses.replace(self, touched=set(self.touched))

    @property
    def session(self) -> str:
        """The array's session."""
        return self.array.session

    @property
    def array_id(self) -> str:
        """The array's id."""
        return self.array.array_id

    @property
    def held(self) -> bool:
        """Whether untouched tasks are held (none of them starts)."""
        return self.array.held

    @property
    def exhausted(self) -> bool:
        """Whether every task has been touched."""
        return self.cursor > self.array.end_index

    def lagging(self) -> bool:
        """Whether the stored cursor is :data:`CURSOR_EVERY` tasks or more behind."""
        stored = self.array.begin_index if self.stored is None else self.stored
        return (self.cursor - stored) // self.array.step >= CURSOR_EVERY

    def has(self, index: int) -> bool:
        """Whether the task ``index`` is untouched."""
        array = self.array
        return (
            self.cursor <= index <= array.end_index
            and (index - array.begin_index) % array.step == 0
            and index not in self.touched
        )

    def indices(self) -> Iterator[int]:
        """The untouched indices, in order."""
        array = self.array
        touched = self.touched
        for index in range(self.cursor, array.end_index + 1, array.step):
            if index not in touched:
                yield index

    def notes(self, state: JobState) -> Iterator[Notification]:
        """A state change to ``state`` of every untouched task, as callbacks get it."""
        array = self.array
        for index in self.indices():
            yield Notification(
                event=Event.NEW_STATE,
                job_id=f"{array.array_id}.{index}",
                session_name=array.session,
                job_state=state,
            )

    def count(self) -> int:
        """How many tasks are untouched."""
        array = self.array
        return len(range(self.cursor, array.end_index + 1, array.step)) - len(self.touched)

    def advance(self) -> int:
        """Take the cursor's task (it is being touched in order); its index."""
        index = self.cursor
        step = self.array.step
        self.cursor += step
        while self.cursor in self.touched:  # touched before its turn: not again
            self.touched.discard(self.cursor)
            self.cursor += step
        return index

    def touch(self, index: int) -> None:
        """Take a task out of order (it must be untouched)."""
        if index == self.cursor:  # the cursor never rests on a touched task
            self.advance()
        else:
            self.touched.add(index)

    def record(self, index: int) -> JobRecord:
        """The record of an untouched task, as it would be written when touched."""
        array = self.array
        return JobRecord(
            session=array.session,
            job_id=f"{array.array_id}.{index}",
            state=JobState.QUEUED_HELD if array.held else JobState.QUEUED,
            submission_us=array.submission_us or 0,
            array_id=array.array_id,
            task_index=index,
            job_name=self.job_name,
            seq=array.seq_of(index),
        )
