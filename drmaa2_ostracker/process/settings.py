"""A process's settings that its jobs inherit: the umask, resource limits and nice value of
the process that submitted a job (read there, :func:`client_settings`), what the job's child
process sets before ``exec`` so that the job starts with them (and the template's own), and
what an unprivileged keeper cannot give it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import resource
from collections.abc import Callable
from typing import Any

from drmaa2_ostracker.process.identity import in_user_namespace

__all__ = [
    "ProcessSettings",
    "beyond_keeper",
    "beyond_own",
    "client_settings",
    "setup_for",
    "still_current",
]

_log = logging.getLogger(__name__)


#: Every resource limit a process has, in a fixed order.
_ALL_RLIMITS = tuple(
    getattr(resource, name)
    for name in sorted(dir(resource))
    if name.startswith("RLIMIT_") and isinstance(getattr(resource, name), int)
)


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """What a process passes on to the processes it starts, besides its environment and
    working directory: its umask, resource limits (soft and hard) and nice value."""

    umask: int
    #: (resource.RLIMIT_*, soft, hard) for every limit.
    rlimits: tuple[tuple[int, int, int], ...]
    nice: int

    def to_wire(self) -> tuple[int, tuple[tuple[int, int, int], ...], int]:
        """The plain-data form (see :mod:`drmaa2_ostracker.keeper.protocol`)."""
        return (self.umask, self.rlimits, self.nice)

    @classmethod
    def from_wire(cls, value: Any) -> ProcessSettings:
        """Read :meth:`to_wire`'s form back."""
        umask, rlimits, nice = value
        return cls(int(umask), tuple((int(w), int(s), int(h)) for w, s, h in rlimits), int(nice))


def _umask() -> int:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    # Reading the umask means setting it; another thread may create a file meanwhile.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def client_settings() -> ProcessSettings:
    """This process's umask, resource limits and nice value, now."""
    return ProcessSettings(
        umask=_umask(),
        rlimits=tuple((which, *resource.getrlimit(which)) for which in _ALL_RLIMITS),
        nice=os.getpriority(os.PRIO_PROCESS, 0),
    )


def still_current(settings: ProcessSettings) -> bool:
    """Whether this process's umask, limits and nice value are still ``settings`` (a few µs,
    against :func:`client_settings`'s tens: a reused plan is checked at every submission).
    The umask is read by setting it to the value it should have: unchanged, nothing changes;
    changed since, it is set back at once (a file another thread creates in that moment gets
    the earlier umask)."""
    old = os.umask(settings.umask)
    if old != settings.umask:
        os.umask(old)
        return False
    if os.getpriority(os.PRIO_PROCESS, 0) != settings.nice:
        return False
    global _checked
    if _checked[0] is not settings:
        rlimits = settings.rlimits
        _checked = (settings, [w for w, _, _ in rlimits], [(s, h) for _, s, h in rlimits])
    return list(map(resource.getrlimit, _checked[1])) == _checked[2]


#: The settings :func:`still_current` last looked at, with their limits and values as lists.
_checked: tuple[ProcessSettings | None, list[int], list[tuple[int, int]]] = (None, [], [])


def _own_settings() -> tuple[dict[int, tuple[int, int]], int]:
    """This process's limits and nice value (read once: the keeper never changes them)."""
    global _own
    if _own is None:
        limits = {which: resource.getrlimit(which) for which in _ALL_RLIMITS}
        _own = (limits, os.getpriority(os.PRIO_PROCESS, 0))
    return _own


_own: tuple[dict[int, tuple[int, int]], int] | None = None


@functools.lru_cache(maxsize=64)  # the same few settings, for every job of a client
def setup_for(
    settings: ProcessSettings | None, rlimits: tuple[tuple[int, int], ...], increment: int
) -> Callable[[], None] | None:
    own_limits, own_nice = _own_settings()
    limits: dict[int, tuple[int, int]] = {}
    nice = own_nice
    if settings is not None:
        nice = settings.nice
        for which, soft, hard in settings.rlimits:
            if own_limits.get(which) != (soft, hard):
                limits[which] = (soft, hard)
    for which, value in rlimits:
        limits[which] = (value, value)
    nice += increment
    if not limits and nice == own_nice:
        return None
    _warn_if_beyond_own(limits, nice, own_limits, own_nice)

    def apply() -> None:  # runs in the child between fork and exec
        for which, (soft, hard) in limits.items():
            try:  # as asked: a privileged keeper (root) may raise a hard limit
                resource.setrlimit(which, (soft, hard))
                continue
            except (OSError, ValueError):
                pass
            _, own_hard = resource.getrlimit(which)
            if own_hard != resource.RLIM_INFINITY and (
                hard == resource.RLIM_INFINITY or hard > own_hard
            ):
                hard = own_hard  # only a privileged process may raise a hard limit
            if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
                soft = hard
            resource.setrlimit(which, (soft, hard))
        if nice != own_nice:
            with contextlib.suppress(OSError):  # below ours needs privilege
                os.setpriority(os.PRIO_PROCESS, 0, nice)

    return apply


def _warn_if_beyond_own(
    limits: dict[int, tuple[int, int]],
    nice: int,
    own_limits: dict[int, tuple[int, int]],
    own_nice: int,
) -> None:
    """Say in the keeper's log when jobs must start with less than they asked for (see
    :func:`beyond_own`); a privileged keeper gives them what they ask (one with the
    capability: root without it, as in some containers, cannot either)."""
    beyond = beyond_own(
        limits if not _capable(_CAP_SYS_RESOURCE) else {},
        nice if not _capable(_CAP_SYS_NICE) else own_nice,
        own_limits,
        own_nice,
    )
    if beyond:
        _log.warning(
            "jobs asking for %s start with the keeper's values instead: it has those of the "
            "process that started it, and cannot raise them; it exits when idle, and the "
            "next call starts a new one",
            ", ".join(beyond),
        )


#: The capabilities that let a process raise a hard limit, and lower its nice value.
_CAP_SYS_RESOURCE = 24
_CAP_SYS_NICE = 23


def beyond_keeper(settings: ProcessSettings) -> list[str]:
    """What of a client's own limits and nice value (``settings``) this process, the keeper,
    cannot give its jobs (see :func:`beyond_own`; none if it has the capability to), though
    a keeper that client started could: it would have them."""
    own_limits, own_nice = _own_settings()
    limits = {} if _capable(_CAP_SYS_RESOURCE) else {w: (s, h) for w, s, h in settings.rlimits}
    nice = own_nice if _capable(_CAP_SYS_NICE) else settings.nice
    return beyond_own(limits, nice, own_limits, own_nice)


@functools.cache  # the keeper's capabilities do not change
def _capable(capability: int) -> bool:
    """Whether this process has ``capability`` in its effective set (Linux), in the initial
    user namespace (in another, the kernel does not let it raise a hard limit)."""
    if in_user_namespace():
        return False
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> capability & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def beyond_own(
    limits: dict[int, tuple[int, int]],
    nice: int,
    own_limits: dict[int, tuple[int, int]],
    own_nice: int,
) -> list[str]:
    """What of ``limits`` ((soft, hard) by ``RLIMIT_*``) and ``nice`` an unprivileged process
    with ``own_limits`` and ``own_nice`` cannot give a child: a hard limit above its own, a
    nice value below its own. Each as text naming the value asked for and the process's own."""
    beyond = []
    for which, (_, hard) in sorted(limits.items()):
        own_hard = own_limits.get(which, (0, resource.RLIM_INFINITY))[1]
        if own_hard != resource.RLIM_INFINITY and (
            hard == resource.RLIM_INFINITY or hard > own_hard
        ):
            beyond.append(
                f"{_limit_name(which)} hard limit {_limit(hard)} (the keeper's {own_hard})"
            )
    if nice < own_nice:
        beyond.append(f"nice value {nice} (the keeper's {own_nice})")
    return beyond


def _limit_name(which: int) -> str:
    for name in dir(resource):
        if name.startswith("RLIMIT_") and getattr(resource, name) == which:
            return name
    return str(which)


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)
