"""The supervisor: every job state transition, one reaper thread, array throttling and timers.

It runs in the keeper, the only process that writes the store, and owns the jobs that have
not finished; finished jobs leave memory, their records live in the store only.

- :mod:`~.states` is the one place that changes a job's state: it updates the in-memory
  record, writes it to the store, and queues the notification. Every operation commits the
  store once (or, for the reaper's bookkeeping, within a few milliseconds, and always before
  anyone is shown the result), wakes the waiters that watch a changed job, then calls the event
  callbacks and starts the jobs it marked as starting, outside the lock. One table there says
  which control action each state allows; :mod:`~.control` carries the actions out.
  :mod:`~.queries` looks up one job's record and state, from memory first.
- :mod:`~.reaper`: one thread waits on the pidfds of all running jobs and on the
  :mod:`~.timers` (start times, deadlines, wallclock limits) with one epoll set, and reaps by
  explicit pid. A thread waiting for one job takes it out of the set and reaps it itself
  (:mod:`~.waits`). There is no per-job thread and no polling.
- :mod:`~.dispatch`: jobs start in *groups*: an array's tasks form one group with its
  ``max_parallel`` limit, a single job is a group of one. A group dispatches its queued tasks in
  index order whenever a slot frees, a task is released, or the group's start time arrives.
- :mod:`~.recovery`: a keeper that starts adopts the unfinished jobs of the one before it.
- :mod:`~.jobs` names what is tracked; :mod:`~.core` assembles the :class:`Supervisor` from
  these parts (mixins in one chain, on the shared fields of :mod:`~.base`).
"""

from drmaa2_ostracker.supervisor.core import Supervisor
from drmaa2_ostracker.supervisor.jobs import Group, LaunchError, now_us

__all__ = ["Group", "LaunchError", "Supervisor", "now_us"]
