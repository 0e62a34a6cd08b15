"""What an unprivileged keeper cannot give a job (the keeper logs it): a hard limit above its
own, a nice value below its own."""

from __future__ import annotations

import resource

from drmaa2_ostracker.process.settings import beyond_own

INF = resource.RLIM_INFINITY
NOFILE = resource.RLIMIT_NOFILE
CPU = resource.RLIMIT_CPU


def test_hard_limits_above_the_keepers_and_a_lower_nice_value_are_named() -> None:
    own = {NOFILE: (256, 256), CPU: (INF, INF)}
    beyond = beyond_own({NOFILE: (1024, 4096), CPU: (10, 10)}, -1, own, 0)
    assert beyond == [
        "RLIMIT_NOFILE hard limit 4096 (the keeper's 256)",
        "nice value -1 (the keeper's 0)",
    ]
    assert beyond_own({NOFILE: (INF, INF)}, 0, own, 0) == [
        "RLIMIT_NOFILE hard limit unlimited (the keeper's 256)"
    ]


def test_what_the_keeper_can_give_is_not_named() -> None:
    own = {NOFILE: (256, 4096)}
    assert beyond_own({NOFILE: (1024, 4096), CPU: (10, 10)}, 5, own, 0) == []
    assert beyond_own({}, 0, own, 0) == []
