"""The ``drmaa2`` program: the top-level parser built from the command modules, and running
one command line to an exit status."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

import drmaa2
from drmaa2.cli import control, jobs, monitor, run, sessions, wait
from drmaa2.cli.environment import restore_shell_environment
from drmaa2.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    UsageError,
    one_line,
    print_error,
)
from drmaa2.cli.parser import (
    Commands,
    Parser,
    add_global_options,
    add_session_option,
    settle_session,
)

#: The command modules, in the order ``drmaa2 --help`` lists their commands.
COMMAND_MODULES = (run, jobs, wait, control, sessions, monitor)

_EPILOG = """\
exit status: 0 ok; 1 DRMAA2 error, timeout, or a failed job without exit status (or a failed
array task); 2 usage error; 130 interrupted; 141 output reader gone; with run --wait and wait:
the exit status of a job that failed (of the last one named, if several failed).
With the os backend, jobs are owned by a background keeper process per state directory.
The reference (commands, --json formats, exit statuses): docs/cli.md in the source of
drmaa2-ostracker (not installed with it)."""


def build_parser() -> Parser:
    """The parser of the whole command line, each command added by its module."""
    top = Parser(
        prog=PROG,
        description="Run, watch and control DRMAA2 jobs from a shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(top, None)
    add_session_option(top, argparse.SUPPRESS, before=True)
    top.add_argument("--version", action="version", version=f"%(prog)s {drmaa2.__version__}")
    commands = Commands(top)
    for module in COMMAND_MODULES:
        module.register(commands)
    return top


def _command_parser(top: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    """The parser of the command ``name`` (the top parser if there is none)."""
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]  # type: ignore[no-any-return]
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the ``drmaa2`` command line with ``argv`` (default: ``sys.argv[1:]``); return the
    exit status. First it undoes the one change the interpreter made to its own environment
    at start-up, so that jobs start from the shell's (see :mod:`~drmaa2.cli.environment`)."""
    restore_shell_environment()
    _closed_streams_discard()
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(arguments)
        if unknown:  # said by the command's own parser, which names the command
            command = _command_parser(parser, getattr(args, "command_name", None))
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
        misplaced = settle_session(args)
        if misplaced is not None:
            parser.error(misplaced)
    except SystemExit as done:  # --help, --version, a usage error: written, flushed here
        code = done.code if isinstance(done.code, int) else EXIT_USAGE
        return _flushed(code)
    except BrokenPipeError:  # --help's text larger than the pipe, its reader gone
        return _flushed(EXIT_BROKEN_PIPE)
    except OSError as error:  # --help's text cannot be written (a full disk)
        return _flushed(EXIT_ERROR, error)
    out = sys.stdout
    try:
        with _one_line_warnings():
            status: int = args.handler(args, out)
        out.flush()
        return status
    except UsageError as error:
        sys.stderr.write(
            f"{PROG} {args.command_name}: error: {error} "
            f"(see '{PROG} {args.command_name} --help')\n"
        )
        return EXIT_USAGE
    except drmaa2.Drmaa2Exception as error:
        print_error(one_line(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped reading: say nothing more, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as error:
        print_error(_unwritten(error) if _is_output_error(error) else one_line(error))
        return EXIT_ERROR
    except Exception as error:  # a bug: still one line, naming it
        sys.stderr.write(f"{PROG}: internal error: {type(error).__name__}: {one_line(error)}\n")
        return EXIT_ERROR


def _closed_streams_discard() -> None:
    """Started with stdout or stderr closed (``>&-``): what would go there goes nowhere, as
    Python's own ``print`` does then, and the command does its work and gives its exit
    status (it failed with an AttributeError, and ``wait`` did not wait). Started with stdin
    closed (``<&-``): a job given ``--input /dev/stdin`` reads nothing. (Each opened in its
    place, the lowest descriptor free.)"""
    if sys.stdin is None:
        sys.stdin = open(os.devnull)  # noqa: SIM115 (the process's own stdin)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process's own stdout)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


#: Errors writing a command's output (to stdout: it names no file).
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _is_output_error(error: OSError) -> bool:
    return error.filename is None and error.errno in _OUTPUT_ERRNOS


def _unwritten(error: OSError) -> str:
    """The one line saying that the output could not be written, and why."""
    return f"cannot write the output to stdout: {error.strerror or one_line(error)}"


def _flushed(status: int, failed: OSError | None = None) -> int:
    """``status``, once what was written to stdout is out: 141 if its reader went away (as
    for every command's output), 1 if it cannot be written (``failed``: it could not; a
    full disk), said in one line if stderr takes it."""
    out = sys.stdout
    if out is None:  # started with stdout closed: nothing was written
        return status
    if failed is None:
        try:
            out.flush()
        except BrokenPipeError:
            status = EXIT_BROKEN_PIPE
        except OSError as error:
            failed = error
        else:
            if status != EXIT_BROKEN_PIPE:
                return status
    if failed is not None and not isinstance(failed, BrokenPipeError):
        status = EXIT_ERROR
        with contextlib.suppress(OSError, AttributeError):
            print_error(_unwritten(failed))
    # Say nothing more, not even at exit.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return status


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings (a broken backend plugin, say) as one ``drmaa2: warning:`` line."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        sys.stderr.write(f"{PROG}: warning: {' '.join(str(message).split())}\n")

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved
