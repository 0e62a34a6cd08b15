"""The reaper: one thread that waits on the pidfds of all running jobs and on the timers with
one epoll set, and reaps by explicit pid.

There is no per-job thread and no polling. A thread waiting for one job of ours takes that
job's pidfd out of the set and reaps it itself (see :mod:`~drmaa2_ostracker.supervisor.waits`),
saving the hand-over. The thread exits when no session is open and nothing is left to watch,
and is started again when needed.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import select
import threading
import time

from drmaa2.enums import JobState
from drmaa2_ostracker import extension
from drmaa2_ostracker.process import (
    WHOLE_PEEK,
    ExitStatus,
    ProcessIdentity,
    collect,
    peek,
    peek_end,
    reap,
)
from drmaa2_ostracker.store.orphans import ANCHOR_WAIT
from drmaa2_ostracker.supervisor.jobs import ADOPTED_NOTE, UNOBSERVED, TrackedJob, now_us
from drmaa2_ostracker.supervisor.states import Changes
from drmaa2_ostracker.supervisor.timers import Timers

__all__ = ["MAX_SLEEP", "Reaper"]

_log = logging.getLogger(__name__)

#: While jobs were submitted this recently (seconds), the reaper gathers exits for as long.
_BURST_WINDOW = 0.01
#: The longest single sleep (seconds): longer timeouts are slept in slices.
MAX_SLEEP = 3600.0

#: A finished job's rusage extension keys as stored: a JSON object of strings.
_USAGE = (
    "{{"
    + ",".join(
        f'"{key}":"{{}}"'
        for key in (
            extension.JSESSION_MAX_RSS,
            extension.JSESSION_SWAP,
            extension.JSESSION_IN_BLOCK,
            extension.JSESSION_OUT_BLOCK,
            extension.JSESSION_SYSTEM_TIME,
            extension.JSESSION_USER_TIME,
        )
    )
    + "}}"
)


class _ReaperDone(Exception):
    """The reaper thread has nothing left to watch."""


class Reaper(Timers):
    """The supervisor's reaper thread: watching pidfds, reaping, recording how jobs ended."""

    def _watch(self, job: TrackedJob) -> None:
        """Watch a started job's pidfd: it joins the reaper's epoll set at once, so the
        reaper records the job's end as soon as it exits, whether or not anyone waits (a
        client that submits a job and waits for it finds the end recorded, by the time its
        wait arrives, for a job shorter than the hop between them)."""
        assert job.spawned is not None
        self._ensure_thread()
        assert self._epoll is not None
        self._by_fd[job.spawned.pidfd] = job
        self._epoll.register(job.spawned.pidfd, select.EPOLLIN)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        if self._epoll is None:
            self._epoll = select.epoll()
            self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread = threading.Thread(target=self._reaper, name="drmaa2-os-reaper", daemon=True)
        self._thread.start()

    def _reaper(self) -> None:
        try:
            while self._reaper_round():
                pass
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _reaper_round(self) -> bool:
        """One round of the reaper thread; False when it has nothing left to do."""
        try:
            self._reap_round()
        except _ReaperDone:
            return False
        except Exception:  # keep reaping whatever went wrong with one job or the store
            if self._closing:  # its store closed under it: the keeper exits
                return False
            _log.exception("drmaa2 os backend: the reaper thread hit an error; going on")
            time.sleep(0.01)
        return True

    def _reap_round(self) -> None:
        epoll = self._epoll
        assert epoll is not None
        with self._lock:
            if self._closing:
                raise _ReaperDone
            # Stay while sessions are open: restarting a thread per job costs more than
            # the job. With no session open, end once nothing is left to watch.
            if not self._by_fd and not self._sessions and not self._continuing:
                self._drop_void_timers()
                if not self._timers:
                    self.flush()
                    self._thread = None
                    raise _ReaperDone
            timeout = 0.0 if self._continuing else -1.0
            if self._timers and not self._continuing:
                timeout = max(0.0, self._timers[0].when - time.time())
            now = time.monotonic()
            for at in (self._flush_at, self._retry_at):
                if at is not None:
                    due = max(0.0, at - now)
                    timeout = due if timeout < 0 else min(timeout, due)
            timeout = min(timeout, MAX_SLEEP) if timeout >= 0 else MAX_SLEEP
            self._reaper_until = now + timeout
        events = epoll.poll(timeout)
        self._reaper_until = 0.0  # awake: it looks at every deadline before it sleeps again
        if events and len(self._by_fd) > 1 and time.monotonic() - self._last_submit < _BURST_WINDOW:
            # Jobs are being submitted right now, and several run: let the exits gather and
            # handle them in one round, instead of taking the interpreter from the submitting
            # thread for each. (Never for a lone job: a client that submits one job and waits
            # for it, again and again, would wait the window out each time its job's end
            # reached this thread before its wait reached the keeper.)
            time.sleep(_BURST_WINDOW)
            events = epoll.poll(0)
        if self._flush_at is not None and time.monotonic() >= self._flush_at:
            self.flush()
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self.retry_unwritten()
        with self._changing(lazy=True) as changes:
            for fd, _ in events:
                if fd == self._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(fd)
                    continue
                job = self._by_fd.get(fd)
                if job is not None:
                    self._reaped(changes, job)
            if self._held_back and not self._unwritten:  # the store takes writes again
                groups, self._held_back = self._held_back, set()
                for group in groups:
                    self._dispatch(changes, group)
            if self._continuing:  # the next batch of large groups' starts
                groups, self._continuing = self._continuing, set()
                for group in groups:
                    self._dispatch(changes, group)
            now = time.time()
            while self._timers and self._timers[0].when <= now:
                heapq.heappop(self._timers).action(changes)

    def _reaped(self, changes: Changes, job: TrackedJob) -> None:
        spawned = job.spawned
        assert spawned is not None
        if not spawned.child:  # adopted: its dead keeper's anchor reaps it, if it lives
            self._unwatch(job)
            self._ended_elsewhere(changes, job, spawned.identity, ANCHOR_WAIT, ADOPTED_NOTE)
            return
        pid = spawned.identity.pid
        try:
            if WHOLE_PEEK:
                # Seen whole first, left to collect: its end is in the ring (or the store's
                # transaction) before its exit status is collected (no one else could know
                # it then: see drmaa2_ostracker.store.ends).
                status = peek_end(pid)
            else:
                # Seen first, its end provisional until it is collected with its usage.
                seen = peek(pid)
                if seen is None:
                    return
                self._provisional_end(job, *seen)
                status = reap(pid)
        except ChildProcessError:  # someone else reaped it (never in the keeper)
            self._unwatch(job)
            self._unobserved(changes, job, "its exit status was collected by another party")
            return
        if status is None:
            return
        self._unwatch(job)
        self._finish(changes, job, status)
        if WHOLE_PEEK:
            store = job.store
            if (
                job.detached  # its end is recorded nowhere: its session was destroyed
                or (
                    store.path not in self._unwritten
                    and (job.record.session, job.record.job_id) in store.ends.pending
                )
            ):
                with contextlib.suppress(ChildProcessError):
                    collect(pid)  # its end is in the ring: safe
            else:
                self._collect_later(store, pid)

    def _provisional_end(self, job: TrackedJob, exit_status: int, signal_name: str) -> None:
        """Put a job's end in the ring before its exit status is collected (not its
        resource usage, which comes with it): what the next keeper applies if this one is
        killed in between (see :mod:`~drmaa2_ostracker.store.ends`)."""
        if job.detached or job.store.path in self._unwritten:
            return
        state, sub_state, annotation = _end_state(job, exit_status, signal_name)
        values = {
            "state": int(state),
            "sub_state": sub_state,
            "annotation": annotation,
            "exit_status": exit_status,
            "terminating_signal": signal_name,
            "finish_us": now_us(),
        }
        with contextlib.suppress(OSError):
            job.store.provisional_end(job.record, values)

    def _ended_elsewhere(
        self,
        changes: Changes,
        job: TrackedJob,
        identity: ProcessIdentity,
        wait: float,
        note: str,
    ) -> None:
        """A job whose process ended and is not this keeper's child: its exact end if the
        dead keeper's anchor reaped it (see :mod:`~drmaa2_ostracker.store.orphans`; waiting
        ``wait`` seconds for it), else FAILED with its exit status unobserved (``note``)."""
        orphans = job.store.orphans
        found = orphans.end_of(identity, wait)
        if found is None:
            self._unobserved(changes, job, note)
            return
        status, finish_us, path = found
        self._finish(changes, job, status, finish_us)
        if job.store.path not in self._unwritten:
            # Removed once the end is committed (it may be in the store's open transaction
            # only: a keeper killed before the commit lost it, its file removed already).
            changes.forget.append((orphans, job.store.path, path))
            changes.must_commit = True

    def _unobserved(self, changes: Changes, job: TrackedJob, note: str) -> None:
        """The job ended and its exit status cannot be known (``note`` says why)."""
        sub_state, annotation = job.kill_reason or (UNOBSERVED, note)
        if job.kill_reason is not None:
            annotation = f"{annotation}; {note}"
        self._transition(
            changes,
            job,
            JobState.FAILED,
            sub_state,
            ended=True,
            annotation=annotation,
            exit_status=None,
            finish_us=now_us(),
        )

    def _unwatch(self, job: TrackedJob) -> None:
        """Forget an ended job's process: from now on nothing may signal its pid."""
        spawned = job.spawned
        assert self._epoll is not None and spawned is not None
        job.spawned = None
        del self._by_fd[spawned.pidfd]
        if job.helpers:  # threads poll it (see Waits._reap_here): the last of them closes it
            job.orphan_fd = spawned.pidfd
        else:
            self._epoll.unregister(spawned.pidfd)
            os.close(spawned.pidfd)
        if spawned.popen is not None:
            # Tell subprocess the child is reaped, so it never waits for it nor warns about it.
            spawned.popen.returncode = -1

    def _finish(
        self, changes: Changes, job: TrackedJob, status: ExitStatus, finish_us: int | None = None
    ) -> None:
        state, sub_state, annotation = _end_state(
            job, status.exit_status, status.terminating_signal
        )
        # The extension keys as a JSON object of strings, written out directly: this runs
        # once per job, on the way from its exit to the wait that returns it.
        usage = _USAGE.format(
            status.max_rss_kib,
            status.swaps,
            status.in_blocks,
            status.out_blocks,
            round(status.system_time * 1000),
            round(status.user_time * 1000),
        )
        self._transition(
            changes,
            job,
            state,
            sub_state,
            ended=True,
            annotation=annotation,
            exit_status=status.exit_status,
            terminating_signal=status.terminating_signal,
            finish_us=now_us() if finish_us is None else finish_us,
            cpu_time=status.user_time + status.system_time,
            rusage=usage,
        )


def _end_state(
    job: TrackedJob, exit_status: int, signal_name: str
) -> tuple[JobState, str, str | None]:
    """(state, sub-state, annotation) of a job that ended so."""
    ok = exit_status == 0 and not signal_name
    sub_state, annotation = job.kill_reason or ("", None)
    if annotation is None and not ok:
        annotation = (
            f"killed by {signal_name}" if signal_name else f"exited with status {exit_status}"
        )
    return (
        (JobState.DONE if ok and job.kill_reason is None else JobState.FAILED),
        sub_state,
        annotation,
    )
