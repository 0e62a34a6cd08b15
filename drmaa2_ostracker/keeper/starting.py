"""Starting the keeper of a state directory: a fresh interpreter, ``python -m
drmaa2_ostracker.keeper``, detached from the caller, which says on a pipe whether the keeper
serves (see :mod:`drmaa2_ostracker.keeper.__main__`); why it did not, as the DRMAA2 exception
that fits. :class:`~drmaa2_ostracker.keeper.client.KeeperClient` calls it under the state
directory's start lock.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import subprocess
import sys
import time

from drmaa2 import errors
from drmaa2.errors import DrmCommunicationException, SessionManagementException
from drmaa2_ostracker import faults
from drmaa2_ostracker.keeper import files

__all__ = ["START_TIMEOUT", "KeeperVanished", "spawn_keeper"]

#: How long a client waits for a keeper it started to serve (seconds).
START_TIMEOUT = 60.0


def spawn_keeper(state_dir: str) -> None:
    """Start the keeper of ``state_dir`` (the caller holds its start lock): a fresh
    interpreter, detached, which forks the keeper and exits; return once the keeper says it
    serves, or raise what it said instead."""
    try:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
    except OSError as error:
        raise _cannot_start(state_dir, error) from None
    env = dict(os.environ)
    # The keeper imports this very package, wherever it was imported from.
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        os.set_inheritable(write_end, True)
        starter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drmaa2_ostracker.keeper",
                state_dir,
                str(write_end),
            ],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        os.close(read_end)
        os.close(write_end)
        raise _cannot_start(state_dir, error) from None
    os.close(write_end)
    try:
        starter.wait()  # it forks the keeper and exits
        answer = _read_line(read_end, START_TIMEOUT)
    finally:
        os.close(read_end)
    if not answer:
        raise KeeperVanished(
            f"the keeper of {state_dir} did not start: it exited without a word (see "
            f"{os.path.join(state_dir, files.KEEPER_LOG)})"
        )
    if answer != "ready":
        raise _start_failure(state_dir, answer.removeprefix("error: "))


class KeeperVanished(SessionManagementException):
    """The keeper started went away before it said whether it serves: killed while it
    started (a client starts another), or it died of a bug (see its log)."""


def _cannot_start(state_dir: str, error: OSError) -> errors.Drmaa2Exception:
    """The error for a keeper that could not be started: OutOfResourceException when
    descriptors or processes ran out."""
    fault = faults.resource_fault(state_dir, error, "start the keeper of")
    if fault is not None:
        return fault
    if error.errno == errno.EAGAIN:  # fork: RLIMIT_NPROC, or the kernel's thread limit
        soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
        return errors.OutOfResourceException(
            f"cannot start the keeper of {state_dir}: no process can be created "
            f"(RLIMIT_NPROC = {soft}, or the system's limit); end some processes and try "
            f"again"
        )
    return DrmCommunicationException(f"cannot start the keeper of {state_dir}: {error.strerror}")


def _start_failure(state_dir: str, reason: str) -> errors.Drmaa2Exception:
    """Why the keeper did not start, as the DRMAA2 exception it named (a store that is not
    usable, a resource that ran out: the message says what to do), else as a
    SessionManagementException pointing to the keeper's log."""
    name, _, message = reason.partition(": ")
    cls = getattr(errors, name, None)
    if (
        message
        and name.endswith("Exception")
        and isinstance(cls, type)
        and issubclass(cls, errors.Drmaa2Exception)
        and cls is not errors.InternalException
    ):
        return cls(message)
    return SessionManagementException(
        f"the keeper of {state_dir} did not start: {reason or 'it exited without a word'} "
        f"(see {os.path.join(state_dir, files.KEEPER_LOG)})"
    )


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"error: no answer within {timeout:g} s"
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()
