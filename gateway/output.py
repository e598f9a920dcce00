"""Rendering parsed statements for people (``table``) and spreadsheets (``csv``).

The ``jsonl`` form is ``parsers.jsonl``; this module only adds the two others. The CSV has
one row per entry and a column for every field of the entry (the columns of earlier
releases first, in their order; the FX details, charges and a batch entry's transactions
each as one JSON cell, in the form of docs/parse-output.md), so nothing the bank said of a
line is lost on the way to a spreadsheet. The table is for reading at a terminal:
aligned by display width (Chinese names take two columns a character), the entry's whole
description in its last column.

Both can be written a piece at a time, for statements read as a stream: ``csv_header`` and
``csv_row`` per entry; ``table_head``, ``table_cells`` per entry (whose widths set the
columns), ``table_lines`` and ``table_flags``. ``csv_rows`` and ``table`` put the pieces
together for whole statements.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence

from gateway.textwidth import clip, pad, printable, width
from parsers.identity import entry_ids
from parsers.jsonl import decimal_text, entry_details
from parsers.model import Balance, BankTransactionCode, Entry, Statement

CSV_COLUMNS = (
    "source", "format", "account_iban", "account_number", "account_bic", "statement_id",
    "entry_id", "bank_reference", "booking_date", "value_date", "amount", "currency", "status",
    "reversal", "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
    "creditor_reference",
    # Added later, after the columns others already read by position.
    "customer_reference", "counterparty_bic", "mandate_id", "bank_transaction_code",
    "additional_info", "fx", "charges", "transactions",
)

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_JSON_CELLS = ("fx", "charges", "transactions")

TABLE_HEADERS = ("booking date", "value date", "amount", "currency", "status", "counterparty",
                 "bank reference", "description")
_AMOUNT, _COUNTERPARTY, _REFERENCE = 2, 5, 6
_COUNTERPARTY_COLUMNS = 32
_REFERENCE_COLUMNS = 35  # the longest reference ISO 20022 allows: never clipped


def _cell(text: str | None) -> str:
    """Text as a CSV cell that no spreadsheet will evaluate."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def transaction_code(code: BankTransactionCode | None) -> str:
    """The bank's classification as one text: ``NTRF``, ``GVC 166``, ``PMNT/RCDT/ESCT``,
    a proprietary code with its issuer; the forms given, separated by ``; ``."""
    if code is None:
        return ""
    iso = "/".join(p for p in (code.domain, code.family, code.subfamily) if p)
    proprietary = code.proprietary or ""
    if proprietary and code.issuer:
        proprietary += f" ({code.issuer})"
    return "; ".join(p for p in (code.swift, code.gvc and f"GVC {code.gvc}", iso, proprietary)
                     if p)


def _json_cells(entry: Entry) -> tuple[str, ...]:
    """The FX details, charges and transactions of an entry as JSON, each empty if none."""
    details = entry_details(entry)
    return tuple(json.dumps(details[name], ensure_ascii=False, separators=(",", ":"))
                 if name in details else "" for name in _JSON_CELLS)


class _CsvLine:
    """Rows as CSV text, one at a time, lines ended as RFC 4180 says."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        # RFC 4180 line ends: with "\r\n" as the terminator, a cell holding either
        # character is quoted (with "\n" alone, a bare "\r" in a bank text went out
        # unquoted and split the row in every reader).
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def __call__(self, row: Sequence[str]) -> str:
        self.writer.writerow(row)
        line = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return line


_csv_line = _CsvLine()


def csv_header() -> str:
    """The CSV header line."""
    return _csv_line(CSV_COLUMNS)


def csv_row(statement: Statement, entry: Entry, entry_id: str) -> str:
    """One entry's CSV line (the statement's own entries are not looked at)."""
    account = statement.account
    return _csv_line((
        _cell(statement.source), statement.format, account.iban or "",
        _cell(account.number), account.bic or "", _cell(statement.statement_id),
        entry_id, _cell(entry.bank_reference),
        entry.booking_date.isoformat() if entry.booking_date else "",
        entry.value_date.isoformat() if entry.value_date else "",
        decimal_text(entry.amount.amount), entry.amount.currency, entry.status.value,
        "true" if entry.reversal else "false",
        _cell(entry.counterparty_name), _cell(entry.counterparty_account),
        _cell(entry.end_to_end_id), _cell(entry.remittance),
        _cell(entry.creditor_reference),
        _cell(entry.customer_reference), _cell(entry.counterparty_bic),
        _cell(entry.mandate_id), _cell(transaction_code(entry.bank_transaction_code)),
        _cell(entry.additional_info), *_json_cells(entry),
    ))


def csv_rows(statements: Iterable[Statement]) -> Iterator[str]:
    """The header, then one CSV line per entry."""
    yield csv_header()
    for statement in statements:
        for entry, entry_id in zip(statement.entries, entry_ids(statement), strict=True):
            yield csv_row(statement, entry, entry_id)


def _balance(balance: Balance | None) -> str:
    if balance is None:
        return "-"
    return (f"{decimal_text(balance.amount.amount)} {balance.amount.currency} "
            f"on {balance.date.isoformat()}")


def description(entry: Entry) -> str:
    """What the bank says of the entry in words: the remittance and the text not
    structured into fields (both when both differ), and the size of a batch."""
    texts: list[str] = []
    for text in (entry.remittance, entry.additional_info):
        text = printable(text)
        if text and text not in texts:
            texts.append(text)
    if entry.transactions:
        texts.append(f"(batch of {len(entry.transactions)} transactions)")
    return " | ".join(texts)


def _entry_row(entry: Entry) -> tuple[str, ...]:
    status = entry.status.value + (", reversal" if entry.reversal else "")
    return (entry.booking_date.isoformat() if entry.booking_date else "-",
            entry.value_date.isoformat() if entry.value_date else "-",
            decimal_text(entry.amount.amount), entry.amount.currency, status,
            entry.counterparty_name or "", entry.bank_reference or "", description(entry))


def table_head(statement: Statement, entries: int) -> list[str]:
    """The lines of a statement's table before its entries (``entries``: how many)."""
    account = statement.account
    ident = account.iban or account.number or "(no account id)"
    period = ""
    if statement.period_start or statement.period_end:
        start, end = statement.period_start, statement.period_end
        period = f"  {start.isoformat() if start else '?'} .. {end.isoformat() if end else '?'}"
    return [
        f"{printable(statement.source)}  [{statement.format_version or statement.format}]",
        f"  account {printable(ident)} {account.currency or ''}  statement "
        f"{printable(statement.statement_id) or '-'}{period}",
        f"  opening {_balance(statement.opening_balance)}",
        f"  closing {_balance(statement.closing_balance)}",
        f"  {entries} entries",
    ]


_CAPS = {_COUNTERPARTY: _COUNTERPARTY_COLUMNS, _REFERENCE: _REFERENCE_COLUMNS}
_LAST = len(TABLE_HEADERS) - 1


def table_cells(entry: Entry | None) -> list[str]:
    """The cells of one entry's table row as shown (the headers' for None)."""
    row = TABLE_HEADERS if entry is None else _entry_row(entry)
    cells = [printable(c) for c in row]
    return [clip(c, _CAPS[i]) if i in _CAPS else c for i, c in enumerate(cells)]


def cell_widths(cells: Sequence[str]) -> list[int]:
    return [width(c) for c in cells]


def table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One row of the entries' table, its columns ``widths`` wide (the widest cell of
    each column, headers included); the last column is not padded."""
    return "    " + "  ".join(
        cell if i == _LAST else pad(cell, widths[i], right=i == _AMOUNT)
        for i, cell in enumerate(cells)).rstrip()


def table_flags(statement: Statement) -> list[str]:
    """The lines of a statement's table after its entries: its flags."""
    return [f"  ! {flag.code}: {printable(flag.message)}" for flag in statement.flags]


def table(statement: Statement) -> str:
    """One statement as a block of text: what it is about, then its entries under a header."""
    lines = table_head(statement, len(statement.entries))
    if statement.entries:
        rows = [table_cells(None), *(table_cells(e) for e in statement.entries)]
        widths = [max(column) for column in zip(*map(cell_widths, rows), strict=True)]
        lines.extend(table_line(row, widths) for row in rows)
    lines.extend(table_flags(statement))
    return "\n".join(lines) + "\n"
