"""``python -m drmaa2_ostracker.keeper STATE_DIR READY_FD``: start the keeper of a state
directory in the background. Clients run this themselves (see
:mod:`drmaa2_ostracker.keeper.client`); there is no reason to run it by hand.

The process forks once and exits, so the keeper is not its starter's child; the keeper writes
"ready" (or "error: <why>") and a newline to READY_FD once it serves, or could not start.
"""

from __future__ import annotations

import logging
import os
import sys


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
        from drmaa2_ostracker.keeper.server import Keeper, install_signal_handlers

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
        ready(f"error: {error}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
