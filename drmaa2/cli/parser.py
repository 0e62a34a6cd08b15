"""The command line's grammar: one-line usage errors, the global options, and the registry
through which each command module adds its own sub-command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from drmaa2.cli.errors import EXIT_USAGE

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

#: The session used when ``--session`` is not given.
DEFAULT_SESSION = "default"

#: What a command runs: the parsed arguments and stdout in, the exit status out.
Handler = Callable[[argparse.Namespace, TextIO], int]


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, with a pointer to ``--help``, and that
    takes options only as spelled (``--js`` is no ``--json``: a typo is an error)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 and one line naming what was wrong."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops an error writing --help or --version (a reader gone, a full
        # disk), and the command exited 0: an error writing to stdout is raised here, for
        # the exit status it calls for. One writing a usage error to stderr is dropped, as
        # argparse does: the exit status (2) says it all.
        file = file or sys.stderr
        if not message or file is None:
            return
        try:
            file.write(message)
        except (AttributeError, OSError):
            if file is sys.stdout:
                raise


def add_global_options(parser: Parser, default: object) -> None:
    """Add ``--backend`` and ``--contact``, which every command accepts."""
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--backend",
        metavar="NAME",
        default=default,
        help="DRMAA2 backend (default: $DRMAA2_BACKEND, else the only installed one, else os)",
    )
    group.add_argument(
        "--contact",
        metavar="PATH",
        default=default,
        help="backend contact string; for the os backend, the state directory "
        "(default: $DRMAA2_OS_STATE_DIR, else $XDG_STATE_HOME/drmaa2-ostracker, else "
        "~/.local/state/drmaa2-ostracker)",
    )


def add_session_option(parser: Parser, default: object, before: bool = False) -> None:
    """Add ``--session`` (``-s``), which the commands that work in a job session accept,
    after them or (``before``: in the top-level parser) before them."""
    where = "run, jobs, info, wait and the control commands" if before else "the command"
    parser.add_argument(
        "--session",
        "-s",
        metavar="S",
        type=session_name,
        default=default,
        help=f"job session of {where} (default: {DEFAULT_SESSION!r}, created by the first "
        f"run; before or after the command)",
    )


def session_name(text: str) -> str:
    """A ``--session`` value: not empty (the API would take an empty name for none, and make
    a session of a generated name that the command could not name again)."""
    if not text:
        raise argparse.ArgumentTypeError("a session's name cannot be empty: ''")
    return text


class Commands:
    """The ``COMMAND`` argument of the top-level parser: each command module calls
    :meth:`add` for its commands from its ``register(commands)``."""

    def __init__(self, top: Parser) -> None:
        self._commands = top.add_subparsers(
            title="commands", dest="command_name", metavar="COMMAND"
        )
        self._commands.required = True
        # The commands' copies of the global options set them only when given, so that a value
        # given before the command stands unless the same option follows it.
        self._common = Parser(add_help=False)
        add_global_options(self._common, argparse.SUPPRESS)
        # Given only when given (as the global options), so that a --session before the
        # command stands unless one follows it (see :func:`settle_session`).
        self._in_session = Parser(add_help=False)
        add_session_option(self._in_session, argparse.SUPPRESS)
        self._as_json = Parser(add_help=False)
        self._as_json.add_argument(
            "--json", action="store_true", help="print JSON (see docs/cli.md)"
        )

    def add(
        self,
        name: str,
        handler: Handler,
        summary: str,
        *,
        in_session: bool = False,
        as_json: bool = False,
        epilog: str | None = None,
    ) -> Parser:
        """Add the command ``name``, run by ``handler``; with ``in_session`` it takes
        ``--session``, with ``as_json`` ``--json``. Returns its parser for its own arguments."""
        parents = [self._common]
        if in_session:
            parents.append(self._in_session)
        if as_json:
            parents.append(self._as_json)
        sub: Parser = self._commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
            parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler, in_session=in_session)
        return sub


def settle_session(args: argparse.Namespace) -> str | None:
    """Give a command that works in a job session its session (``--session`` after the
    command, else before it, else :data:`DEFAULT_SESSION`); for a command that takes none,
    the usage error of a ``--session`` given before it (None if there is none)."""
    given = getattr(args, "session", None)
    if args.in_session:
        args.session = DEFAULT_SESSION if given is None else given
        return None
    if given is not None:
        return f"--session {given}: the {args.command_name} command works in no job session"
    return None
