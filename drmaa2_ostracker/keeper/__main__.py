"""``python -m drmaa2_ostracker.keeper STATE_DIR READY_FD``: start the keeper of a state
directory in the background. Clients run this themselves (see
:mod:`drmaa2_ostracker.keeper.client`); there is no reason to run it by hand.

The process forks once and exits, so the keeper is not its starter's child; the keeper writes
a line to READY_FD once it serves ("ready"), or could not start: "error: <DRMAA2 exception
class>: <message>" when the reason is one the user can act on (a store that is not usable,
a resource that ran out), else "error: <why>" (the traceback is in the keeper's log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from drmaa2.errors import Drmaa2Exception

if TYPE_CHECKING:
    from drmaa2_ostracker.keeper.server import Keeper


def main(argv: list[str]) -> int:
    """Start the keeper (see the module docstring)."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    state_dir, ready_fd = os.path.abspath(argv[1]), int(argv[2])
    if os.fork():
        os._exit(0)  # the starter reaps this process at once; the keeper goes on alone
    os.chdir("/")
    told = False

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
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s keeper[%(process)d] %(levelname)s %(name)s: %(message)s",
        )
        keeper = Keeper(state_dir)
        install_signal_handlers(keeper)
        keeper.run(ready)
    except BaseException as error:
        ready(_failure(state_dir, error))
        if isinstance(error, Drmaa2Exception):
            logging.getLogger("drmaa2_ostracker.keeper").error("cannot start: %s", error)
            return 1
        raise
    return 0


def install_signal_handlers(keeper: Keeper) -> None:
    """Start from a clean slate: nothing blocked, nothing ignored but SIGPIPE (which Python
    needs and a job gets back at its default), SIGTERM stops the keeper, SIGINT and SIGHUP
    (a terminal going away) do nothing to it."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
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

    fault = (
        error
        if isinstance(error, Drmaa2Exception)
        else faults.resource_fault(state_dir, error, "start the keeper of")
    )
    line = f"error: {error}" if fault is None else "error: {}: {}".format(*encode_error(fault))
    return " ".join(line.splitlines())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
