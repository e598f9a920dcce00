"""The ``recon-gateway`` command.

Exit status: 0 when everything asked for succeeded, 1 when some input failed (each
failure is listed on standard error), 2 for a usage error (a command without its action
prints that command's help), 130 when interrupted with Ctrl-C, and 141 when the reader of
standard output went away (``recon-gateway parse ... | head``): then the command stops at
once and quietly, as a Unix tool stopped by SIGPIPE does, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TextIO

from gateway import parse_cli

PACKAGE = "recon-gateway"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def version() -> str:
    """The installed package's version (what ``pip`` installed), not a copy in the code."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (reading the
    package metadata costs every other command 30 ms at start)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        sys.stdout.write(f"{parser.prog} {version()}\n")
        parser.exit()


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of a command line (the first argument not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser. For ``command="parse"`` it knows that command only, so
    that parsing statements loads nothing of the service (its other commands import the
    web server, the database driver and the matching engine)."""
    parser = argparse.ArgumentParser(
        prog="recon-gateway",
        description="Bank-integration reconciliation gateway: parse bank statements, match "
        "payments to invoices, and run the service that does both for CRMs.",
        epilog="`recon-gateway COMMAND --help` describes a command. Commands that use a "
        "database say on standard error which one.",
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show the program's version number and exit")
    parser.set_defaults(help_of=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parse_cli.register(commands)
    if command != "parse":
        from gateway import audit_cli, keyring_cli, keys_cli, match_cli
        from gateway import commands as service_commands

        service_commands.register(commands)
        keys_cli.register(commands)
        keyring_cli.register(commands)
        match_cli.register(commands)
        audit_cli.register(commands)
    return parser


def _silence(*streams: TextIO) -> None:
    """Point the process's standard output and error, where they are among ``streams``,
    at /dev/null, so that the interpreter's last flush at exit finds no broken pipe to
    complain about."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            if stream is sys.stdout or stream is sys.stderr:
                os.dup2(null, stream.fileno())
    finally:
        os.close(null)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:  # a command without its action, or none: say what there is
        args.help_of.print_help(out)
        return 2
    if args.command != "parse":  # (parse reports its own errors)
        from gateway import commands as service_commands

        run = service_commands.guarded(run)
    try:
        code: int = run(args, out, err)
        out.flush()
    except BrokenPipeError:
        for stream in (out, err):
            with contextlib.suppress(OSError):
                stream.flush()
        _silence(out, err)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
