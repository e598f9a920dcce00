"""``recon-gateway parse``: statement files to jsonl, csv or a table, in flat memory.

Each file is read as a stream of parts (``parsers.stream``), and each statement is written
when it ends, without its entries ever being held together: its entries go to a spool
file in the temporary folder as they come (jsonl: each entry's JSON text; csv: the
entries, pickled; table: their cells), and when the statement ends its output is written
from its head, the spool and its tail. The output is the one a whole statement gives (the
jsonl line of docs/parse-output.md, ``gateway.output``'s csv rows and table).

A bad statement (``StatementFailed``) is reported and its spool dropped; the good
statements of its file are still printed. A file that cannot be read on (not well-formed,
not a statement at all) is reported; statements of it that ended before the problem was
met have been printed.

Entry ids need the account of the whole statement: they are made as the entries come with
the account the statement's start gave, and made again from the spool in the rare case
that the statement's end gives another (a camt account without currency whose currency
is then taken from the entries).

This module imports what parsing needs and nothing of the service.
"""

from __future__ import annotations

import argparse
import codecs
import json
import pickle
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO

import parsers
from gateway.inputs import input_files
from gateway.output import (
    cell_widths,
    csv_header,
    csv_row,
    table_cells,
    table_flags,
    table_head,
    table_line,
)
from gateway.progress import Progress, is_terminal
from parsers.identity import IdMaker
from parsers.jsonl import entry_json, statement_line
from parsers.model import Entry, EntryStatus, Statement
from parsers.money import Money
from parsers.stream import StatementEnd, StatementFailed, StatementStart

_CHUNK = 1 << 20
_BATCH = 256  # entries' JSON spooled at once


def _spool() -> IO[bytes]:
    return tempfile.TemporaryFile(prefix="recon-parse-")


class _Writer:
    """Takes the parts of statements and writes each statement when it ends."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.spool = _spool()
        self.count = 0
        self.started: Statement | None = None

    def start(self, statement: Statement) -> None:
        self.spool.seek(0)
        self.spool.truncate()
        self.count = 0
        self.started = statement

    def entry(self, entry: Entry) -> None:
        raise NotImplementedError

    def end(self, statement: Statement) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        """The statement begun failed: forget what was taken of it."""
        self.started = None

    def file_done(self) -> None:
        """A file was read to its end."""

    def close(self) -> None:
        self.spool.close()

    def _entries(self) -> Iterator[Entry]:
        """The spooled entries (pickled), in order."""
        self.spool.seek(0)
        for _ in range(self.count):
            entry: Entry = pickle.load(self.spool)  # noqa: S301  (our own spool)
            yield entry


def _text_copy(spool: IO[bytes], out: TextIO, separator: bytes) -> None:
    """The spool (entries' JSON, one a line) to ``out``, its newlines as ``separator``."""
    spool.flush()
    spool.seek(0)
    binary = getattr(out, "buffer", None)
    utf8 = binary is not None and codecs.lookup(getattr(out, "encoding", None) or "ascii"
                                                ).name == "utf-8"
    if binary is not None and utf8 and getattr(out, "errors", "strict") == "strict":
        out.flush()
        while chunk := spool.read(_CHUNK):
            binary.write(chunk.replace(b"\n", separator))
        binary.flush()
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    text_separator = separator.decode()
    while chunk := spool.read(_CHUNK):
        out.write(decoder.decode(chunk).replace("\n", text_separator))
    out.write(decoder.decode(b"", final=True))


class _Jsonl(_Writer):
    """One JSON line a statement: each entry's JSON text is spooled as it comes, one a
    line (JSON text holds no raw newline), and joined with ", " when the line is written."""

    def start(self, statement: Statement) -> None:
        super().start(statement)
        self.ids = IdMaker(statement.account.key)
        self.pending: list[str] = []  # entries' JSON not spooled yet

    def entry(self, entry: Entry) -> None:
        pending = self.pending
        pending.append(entry_json(entry, self.ids(entry)))
        self.count += 1
        if len(pending) >= _BATCH:
            self._spill()

    def _spill(self) -> None:
        """The pending entries' JSON to the spool (in one write: one a call costs more
        than writing it)."""
        pending = self.pending
        if pending:
            text = "\n".join(pending)
            self.spool.write((text if self.count == len(pending) else "\n" + text).encode())
            pending.clear()

    def end(self, statement: Statement) -> None:
        self._spill()
        started = self.started
        if started is not None and statement.account.key != started.account.key:
            self._make_ids_again(statement.account.key)
        head, tail = statement_line(statement)
        self.out.write(head)
        _text_copy(self.spool, self.out, b", ")
        self.out.write(tail)
        self.started = None

    def _make_ids_again(self, account_key: str) -> None:
        """The spooled entries with the ids of ``account_key``'s statement."""
        ids = IdMaker(account_key)
        again = _spool()
        self.spool.flush()
        self.spool.seek(0)
        for number, line in enumerate(self.spool):
            text = line.rstrip(b"\n")
            entry_id = ids(_identity_entry(json.loads(text)))
            prefix = b'{"id": "'
            if not text.startswith(prefix):
                raise RuntimeError("an entry's JSON does not begin with its id")
            text = prefix + entry_id.encode() + text[len(prefix) + len(entry_id):]
            again.write(b"\n" + text if number else text)
        self.spool.close()
        self.spool = again


def _identity_entry(fields: dict[str, Any]) -> Entry:
    """An entry with what its JSON form says of the fields its id is made of."""
    def day(value: str | None) -> date | None:
        return None if value is None else date.fromisoformat(value)

    return Entry(
        amount=Money(Decimal(fields["amount"]), fields["currency"]),
        booking_date=day(fields["booking_date"]),
        value_date=day(fields["value_date"]),
        status=EntryStatus(fields["status"]),
        bank_reference=fields["bank_reference"],
        counterparty_name=fields["counterparty_name"],
        counterparty_account=fields["counterparty_account"],
        end_to_end_id=fields["end_to_end_id"],
        remittance=fields["remittance"],
        additional_info=fields["additional_info"],
    )


class _Csv(_Writer):
    """One row an entry, the header once, before the first rows (or at the end of the
    first file read to its end, when no row came before)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.header_due = True

    def entry(self, entry: Entry) -> None:
        pickle.dump(entry, self.spool, pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def end(self, statement: Statement) -> None:
        self._header()
        ids = IdMaker(statement.account.key)
        out = self.out
        for entry in self._entries():
            out.write(csv_row(statement, entry, ids(entry)))
        self.started = None

    def file_done(self) -> None:
        self._header()

    def _header(self) -> None:
        if self.header_due:
            self.out.write(csv_header())
            self.header_due = False


class _Table(_Writer):
    """A block a statement: the entries' cells are spooled (and their widths kept) as
    they come, then written under the header, aligned."""

    def start(self, statement: Statement) -> None:
        super().start(statement)
        self.widths = cell_widths(table_cells(None))

    def entry(self, entry: Entry) -> None:
        cells = table_cells(entry)
        self.widths = [max(a, b) for a, b in zip(self.widths, cell_widths(cells),
                                                  strict=True)]
        # Shown cells hold no control character: one line each, cells apart by US.
        self.spool.write("\x1f".join(cells).encode() + b"\n")
        self.count += 1

    def end(self, statement: Statement) -> None:
        out = self.out
        out.write("\n".join(table_head(statement, self.count)) + "\n")
        if self.count:
            out.write(table_line(table_cells(None), self.widths) + "\n")
            self.spool.seek(0)
            for row in self.spool:
                out.write(table_line(row.decode().rstrip("\n").split("\x1f"), self.widths)
                          + "\n")
        for line in table_flags(statement):
            out.write(line + "\n")
        out.write("\n")  # blocks apart by an empty line
        self.started = None


_WRITERS: dict[str, type[_Writer]] = {"jsonl": _Jsonl, "csv": _Csv, "table": _Table}


def _read(path: Path, writer: _Writer, strict: bool, problems: list[str]) -> int:
    """Write the statements of one file; its problems go to ``problems``. How many."""
    bad = 0
    try:
        with parsers.open_path(path) as file:
            for part in parsers.stream(file, source=str(path), strict=strict):
                if part.__class__ is Entry:
                    writer.entry(part)
                elif isinstance(part, StatementStart):
                    writer.start(part.statement)
                elif isinstance(part, StatementEnd):
                    writer.end(part.statement)
                elif isinstance(part, StatementFailed):
                    writer.drop()
                    problems.append(str(part.error))
                    bad += 1
    except parsers.ParseError as exc:
        writer.drop()
        problems.append(str(exc))
        return bad + 1
    except (BrokenPipeError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # a bug in a parser: report it, go on with the other files
        writer.drop()
        problems.append(f"{path}: internal error, please report: {type(exc).__name__}: {exc}")
        return bad + 1
    writer.file_done()
    return bad


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The ``parse`` command."""
    try:
        return _run(args, out, err)
    except BrokenPipeError:
        raise  # the reader went away: the caller stops quietly
    except (OSError, RuntimeError) as exc:
        err.write(f"error: {type(exc).__name__}: {exc}\n")
        return 1


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files, problems = input_files(args.paths)
    missing = len(problems)
    partly_bad = 0
    writer = _WRITERS[args.format](out)
    # On a terminal the output itself shows the work going on; progress is for output
    # going to a file or a pipe while a person watches standard error.
    try:
        with Progress(err, enabled=is_terminal(err) and not is_terminal(out)) as progress:
            for done, path in enumerate(files):
                progress.update(f"parse: {done} of {len(files)} files done, reading {path}")
                bad = _read(path, writer, args.strict, problems)
                partly_bad += max(bad - 1, 0)  # one input, counted once below
    finally:
        writer.close()
    for problem in problems:
        err.write(f"error: {problem}\n")
    if problems:
        total = len(files) + missing
        err.write(f"{len(problems) - partly_bad} of {total} input(s) failed\n")
    return 1 if problems else 0


def register(commands: Any) -> None:
    """Add the ``parse`` command to the top-level subcommand parser."""
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
    parse.set_defaults(run=run)
