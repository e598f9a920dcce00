"""Rendering parsed statements for people (``table``) and spreadsheets (``csv``).

The ``jsonl`` form is ``parsers.jsonl``; this module only adds the two others. The CSV has
one row per entry and a column for every field of the entry (the columns of earlier
releases first, in their order; the FX details, charges and a batch entry's transactions
each as one JSON cell, in the form of docs/parse-output.md), so nothing the bank said of a
line is lost on the way to a spreadsheet. The table is for reading at a terminal:
aligned by display width (Chinese names take two columns a character), the entry's whole
description in its last column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from gateway.textwidth import aligned, printable
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


def csv_rows(statements: Iterable[Statement]) -> Iterator[str]:
    """The header, then one CSV line per entry."""
    buffer = io.StringIO()
    # RFC 4180 line ends: with "\r\n" as the terminator, a cell holding either character
    # is quoted (with "\n" alone, a bare "\r" in a bank text went out unquoted and split
    # the row in every reader).
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return line

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for statement in statements:
        account = statement.account
        for entry, entry_id in zip(statement.entries, entry_ids(statement), strict=True):
            writer.writerow((
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
            yield flush()


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


def table(statement: Statement) -> str:
    """One statement as a block of text: what it is about, then its entries under a header."""
    account = statement.account
    ident = account.iban or account.number or "(no account id)"
    period = ""
    if statement.period_start or statement.period_end:
        start, end = statement.period_start, statement.period_end
        period = f"  {start.isoformat() if start else '?'} .. {end.isoformat() if end else '?'}"
    lines = [
        f"{printable(statement.source)}  [{statement.format_version or statement.format}]",
        f"  account {printable(ident)} {account.currency or ''}  statement "
        f"{printable(statement.statement_id) or '-'}{period}",
        f"  opening {_balance(statement.opening_balance)}",
        f"  closing {_balance(statement.closing_balance)}",
        f"  {len(statement.entries)} entries",
    ]
    if statement.entries:
        lines.extend("    " + line for line in aligned(
            TABLE_HEADERS, [_entry_row(e) for e in statement.entries], right={_AMOUNT},
            caps={_COUNTERPARTY: _COUNTERPARTY_COLUMNS, _REFERENCE: _REFERENCE_COLUMNS}))
    lines.extend(f"  ! {flag.code}: {printable(flag.message)}" for flag in statement.flags)
    return "\n".join(lines) + "\n"
