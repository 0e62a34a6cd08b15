"""A process's identity (pid, start time) recognises that process and no other, also when the
start time is only known to be one of two clock ticks (a child forked across a tick)."""

from __future__ import annotations

import os
import time

from drmaa2_ostracker.process import LaunchSpec, ProcessIdentity, identity_of, is_running, spawn


def test_an_exact_identity_matches_its_tick_only() -> None:
    identity = ProcessIdentity(123, 500)
    assert [identity.started_at(t) for t in (499, 500, 501)] == [False, True, False]


def test_an_identity_of_two_ticks_matches_both_only() -> None:
    identity = ProcessIdentity(123, -(500 + 1))
    assert [identity.started_at(t) for t in (499, 500, 501, 502)] == [False, True, True, False]


def test_is_running_knows_a_live_process_by_either_tick_and_nothing_else() -> None:
    me = identity_of(os.getpid())
    assert me is not None
    start = me.start_ticks
    assert is_running(ProcessIdentity(me.pid, -(start + 1)))  # start or start + 1
    assert is_running(ProcessIdentity(me.pid, -start))  # start - 1 or start
    assert not is_running(ProcessIdentity(me.pid, -(start + 2)))  # start + 1 or start + 2
    assert not is_running(ProcessIdentity(me.pid, start + 1))


def test_a_spawned_childs_identity_is_its_own() -> None:
    spec = LaunchSpec(
        executable="/bin/sleep",
        argv=["sleep", "5"],
        cwd=os.getcwd(),
        env={},
        input_path=None,
        output_path=None,
        error_path=None,
    )
    spawned = [spawn(spec) for _ in range(20)]
    try:
        for child in spawned:
            found = identity_of(child.identity.pid)
            assert found is not None
            assert child.identity.started_at(found.start_ticks)
            assert is_running(child.identity)
    finally:
        for child in spawned:
            os.kill(child.identity.pid, 9)
            os.waitpid(child.identity.pid, 0)
            os.close(child.pidfd)
    deadline = time.monotonic() + 5
    while any(is_running(child.identity) for child in spawned):
        assert time.monotonic() < deadline
        time.sleep(0.01)
