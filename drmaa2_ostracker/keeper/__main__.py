"""``python -m drmaa2_ostracker.keeper STATE_DIR READY_FD``: start the keeper of a state
directory in the background. Clients run this themselves (see
:mod:`drmaa2_ostracker.keeper.client`); there is no reason to run it by hand.

The process forks once and exits, so the keeper is not its starter's child; the child forks
the keeper and becomes its anchor (see :mod:`drmaa2_ostracker.keeper.anchor`). The keeper writes
a line to READY_FD once it serves ("ready"), or could not start: "error: <DRMAA2 exception
class>: <message>" when the reason is one the user can act on (a store that is not usable,
a resource that ran out, a bad ``$DRMAA2_OS_KEEPER_IDLE``), else "error: <why>" (the
traceback is in the keeper's log). The starter reports that line. What the keeper logs
before its log is open (a damaged log file set aside) goes to the log once it is: the stderr
it inherited from its starter, often a terminal, gets only the traceback of an error that
came before the log could be opened.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import signal
import sqlite3
import sys
from typing import TYPE_CHECKING

from drmaa2.errors import (
    Drmaa2Exception,
    InvalidArgumentException,
    OutOfResourceException,
    SessionManagementException,
)

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.server import Keeper


def main(argv: list[str]) -> int:
    """Start the keeper (see the module docstring)."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    # Its real path: the one its client checked (see files.check_state_dir).
    state_dir, ready_fd = os.path.realpath(argv[1]), int(argv[2])
    try:
        forked = os.fork()
    except OSError as error:  # a process limit (RLIMIT_NPROC): the starter says which
        os.write(ready_fd, f"{_failure(state_dir, error)}\n".encode(errors="replace"))
        return 1
    if forked:
        os._exit(0)  # the starter reaps this process at once; the keeper goes on alone
    os.chdir("/")
    from drmaa2_ostracker.keeper.lock import Served
    from drmaa2_ostracker.process.forkexec import find_out_vfork

    find_out_vfork()  # here: the children it starts are neither the keeper's nor its anchor's
    anchor = _leave_an_anchor(state_dir, ready_fd)
    told = False
    early = _EarlyRecords()
    logging.getLogger().addHandler(early)

    def ready(message: str) -> None:
        nonlocal told
        if not told:
            told = True
            try:
                os.write(ready_fd, f"{message}\n".encode(errors="replace"))
            finally:
                os.close(ready_fd)

    try:
        from drmaa2_ostracker.keeper import files
        from drmaa2_ostracker.keeper.server import Keeper

        files.check_state_dir(state_dir)
        log = files.open_private(os.path.join(state_dir, files.KEEPER_LOG), os.O_WRONLY)
        os.lseek(log, 0, os.SEEK_END)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        logging.getLogger().removeHandler(early)
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s keeper[%(process)d] %(levelname)s %(name)s: %(message)s",
        )
        early.replay()
        keeper = Keeper(state_dir, idle=idle_setting(state_dir), anchor=anchor)
        install_signal_handlers(keeper)
        keeper.run(ready)
    except Served:  # the keeper there serves again: its clients reach it
        logging.getLogger("drmaa2_ostracker.keeper").info("not started: a keeper serves")
        ready("ready")
    except BaseException as error:
        ready(_failure(state_dir, error))
        if isinstance(error, Drmaa2Exception):
            # Into the log if it is open; else the starter's report is the only one.
            logging.getLogger("drmaa2_ostracker.keeper").error("cannot start: %s", error)
            return 1
        raise
    return 0


def _leave_an_anchor(state_dir: str, ready_fd: int) -> int | None:
    """Fork: this process becomes the keeper's anchor (see
    :mod:`~drmaa2_ostracker.keeper.anchor`), the child goes on as the keeper, and gets its
    anchor's pid. Without a fork (a process limit) or a subreaper, the keeper goes on alone
    (None)."""
    from drmaa2_ostracker.keeper.anchor import become_subreaper

    if not become_subreaper():
        return None
    anchor = os.getpid()
    try:
        keeper = os.fork()
    except OSError:
        return None
    if keeper == 0:
        return anchor
    try:
        os.close(ready_fd)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "anchor.py")
        os.execv(sys.executable, [sys.executable, "-I", "-S", script, state_dir, str(keeper)])
    finally:
        os._exit(1)  # the keeper goes on, nobody's child


class _EarlyRecords(logging.Handler):
    """Keeps what is logged before the keeper's log is open, for the log (not the starter's
    stderr, where logging would otherwise write it)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def replay(self) -> None:
        """Log the kept records, now that the log is open."""
        for record in self.records:
            logging.getLogger(record.name).handle(record)
        self.records.clear()


def idle_setting(state_dir: str) -> float | None:
    """``$DRMAA2_OS_KEEPER_IDLE``: the seconds the keeper stays without jobs and clients
    before it exits (None: not set, the default). InvalidArgumentException, naming the
    variable and its value, for anything but a number of seconds, 0 or more: a keeper that
    silently used the default instead would linger, or leave, when the user said otherwise."""
    from drmaa2_ostracker.keeper.server import DEFAULT_IDLE_SECONDS, IDLE_ENV

    value = os.environ.get(IDLE_ENV, "")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:  # nan too
        raise InvalidArgumentException(
            f"cannot start the keeper of {state_dir}: ${IDLE_ENV} is {value!r}, not a number "
            f"of seconds (0 or more; default {DEFAULT_IDLE_SECONDS:g}): correct or unset it"
        )
    return seconds


def install_signal_handlers(keeper: Keeper) -> None:
    """Start from a clean slate: nothing blocked, nothing ignored but SIGPIPE (which Python
    needs and a job gets back at its default), SIGTERM stops the keeper, SIGINT and SIGHUP
    (a terminal going away) do nothing to it."""
    from drmaa2_ostracker.process.dispositions import default_reserved_signals

    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    default_reserved_signals()  # glibc's 32 and 33, which signal.signal cannot set
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE):
            continue
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            if signal.getsignal(signum) is signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, keeper.stop)
    # Handled, not ignored: a job must not inherit an ignored SIGINT or SIGHUP.
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGHUP, _ignore)


def _ignore(signum: int, frame: object) -> None:
    """A signal the keeper takes no action on."""


def _failure(state_dir: str, error: BaseException) -> str:
    """The line that tells the starter why the keeper could not start."""
    from drmaa2_ostracker import faults
    from drmaa2_ostracker.keeper.protocol import encode_error

    fault: Drmaa2Exception | None
    if isinstance(error, Drmaa2Exception):
        fault = error
    elif isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.OperationalError
    ):  # damage the store's inspection did not see, met while reading it (recovery)
        from drmaa2_ostracker.store.inspection import LEFT
        from drmaa2_ostracker.store.schema import STORE_FILE

        store = os.path.join(state_dir, STORE_FILE)
        fault = SessionManagementException(
            f"{store} is not a usable drmaa2-ostracker store ({error}); {LEFT}"
        )
    elif isinstance(error, OSError) and error.errno == errno.EAGAIN:  # fork: a process limit
        fault = OutOfResourceException(
            f"cannot start the keeper of {state_dir}: {faults.limit_reached(error)}"
        )
    else:
        fault = faults.resource_fault(state_dir, error, "start the keeper of")
    line = f"error: {error}" if fault is None else "error: {}: {}".format(*encode_error(fault))
    return " ".join(line.splitlines())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
