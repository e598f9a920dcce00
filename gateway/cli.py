"""The ``recon-gateway`` command.

Exit status: 0 when everything asked for succeeded, 1 when some input failed (each
failure is listed on standard error), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import parsers
from gateway import commands as service_commands
from gateway import match_cli
from gateway.output import csv_rows, table
from parsers.jsonl import statement_to_dict


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _input_files(arguments: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files named directly or found under named folders (sorted, hidden ones skipped)."""
    files: list[Path] = []
    missing: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path)))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(f"{argument}: no such file or folder")
    return files, missing


def _parse_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files, problems = _input_files(args.paths)
    missing = len(problems)
    first_csv = True
    for path in files:
        try:
            statements = parsers.parse_path(path, strict=args.strict)
        except parsers.ParseError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # a bug in a parser: report it, go on with the other files
            problems.append(f"{path}: internal error, please report: {type(exc).__name__}: {exc}")
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
        err.write(f"{len(problems)} of {total} input(s) failed\n")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon-gateway",
        description="Bank-integration reconciliation gateway.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parse = commands.add_parser(
        "parse",
        help="parse bank statements (MT940/MT942, camt.052/053/054, OFX) to normalized output",
        description="Parse statement files, or every file under folders, and print them. "
        "Bad files are listed on standard error; the others are still printed.",
    )
    parse.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    parse.add_argument("--format", choices=("jsonl", "table", "csv"), default="jsonl",
                       help="output form (default: jsonl, one JSON object per statement)")
    parse.add_argument("--strict", action="store_true",
                       help="treat a statement whose balances do not add up as an error")
    parse.set_defaults(run=_parse_command)
    service_commands.register(commands)
    match_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = service_commands.guarded(args.run)(args, out or sys.stdout, err or sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
