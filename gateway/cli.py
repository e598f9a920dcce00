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
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import TextIO

import parsers
from gateway import commands as service_commands
from gateway import keys_cli, match_cli
from gateway.inputs import input_files
from gateway.output import csv_rows, table
from gateway.progress import Progress, is_terminal
from parsers.jsonl import statement_to_dict

PACKAGE = "recon-gateway"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def version() -> str:
    """The installed package's version (what ``pip`` installed), not a copy in the code."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _parse_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files, problems = input_files(args.paths)
    missing = len(problems)
    partly_bad = 0
    first_csv = True
    # On a terminal the output itself shows the work going on; progress is for output
    # going to a file or a pipe while a person watches standard error.
    with Progress(err, enabled=is_terminal(err) and not is_terminal(out)) as progress:
        for done, path in enumerate(files):
            progress.update(f"parse: {done} of {len(files)} files done, reading {path}")
            try:  # a bad statement is reported; the good ones of its file are still shown
                results = parsers.parse_each(parsers.read_path(path), source=str(path),
                                             strict=args.strict)
                bad = [str(r) for r in results if isinstance(r, parsers.ParseError)]
                problems.extend(bad)
                partly_bad += max(len(bad) - 1, 0)  # one input, counted once below
                statements = tuple(r for r in results if not isinstance(r, parsers.ParseError))
            except parsers.ParseError as exc:
                problems.append(str(exc))
                continue
            except Exception as exc:  # a bug in a parser: report it, go on with the other files
                problems.append(f"{path}: internal error, please report: "
                                f"{type(exc).__name__}: {exc}")
                continue
            if args.format == "jsonl":
                for statement in statements:
                    out.write(json.dumps(statement_to_dict(statement), ensure_ascii=False) + "\n")
            elif args.format == "csv":
                rows = csv_rows(statements)
                if not first_csv:
                    next(rows)  # the header, once
                out.writelines(rows)
                first_csv = False
            else:
                out.writelines(table(statement) + "\n" for statement in statements)
    for problem in problems:
        err.write(f"error: {problem}\n")
    if problems:
        total = len(files) + missing
        err.write(f"{len(problems) - partly_bad} of {total} input(s) failed\n")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon-gateway",
        description="Bank-integration reconciliation gateway: parse bank statements, match "
        "payments to invoices, and run the service that does both for CRMs.",
        epilog="`recon-gateway COMMAND --help` describes a command. Commands that use a "
        "database say on standard error which one.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.set_defaults(help_of=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parse = commands.add_parser(
        "parse",
        help="parse bank statements (MT940/MT942, camt.052/053/054, OFX) to normalized output",
        description="Parse statement files, or every file under folders, and print them. "
        "Bad files are listed on standard error; the others are still printed. A file "
        "that is not a statement, and a folder with no files (hidden ones are skipped), "
        "is an error: exit status 1.",
    )
    parse.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    parse.add_argument("--format", choices=("jsonl", "table", "csv"), default="jsonl",
                       help="output form (default: jsonl, one JSON object per statement; "
                       "table: for reading; csv: one row per entry, for spreadsheets)")
    parse.add_argument("--strict", action="store_true",
                       help="treat a statement whose balances do not add up as an error")
    parse.set_defaults(run=_parse_command)
    service_commands.register(commands)
    keys_cli.register(commands)
    match_cli.register(commands)
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
    args = build_parser().parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:  # a command without its action, or none: say what there is
        args.help_of.print_help(out)
        return 2
    try:
        code: int = service_commands.guarded(run)(args, out, err)
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
