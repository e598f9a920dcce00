"""Rendering parsed statements for people (``table``) and spreadsheets (``csv``).

The ``jsonl`` form is ``parsers.jsonl``; this module only adds the two others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from parsers.identity import entry_ids
from parsers.jsonl import decimal_text
from parsers.model import Balance, Statement

CSV_COLUMNS = (
    "source", "format", "account_iban", "account_number", "account_bic", "statement_id",
    "entry_id", "bank_reference", "booking_date", "value_date", "amount", "currency", "status",
    "reversal", "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
    "creditor_reference",
)

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Text as a CSV cell that no spreadsheet will evaluate."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_rows(statements: Iterable[Statement]) -> Iterator[str]:
    """The header, then one CSV line per entry."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

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
            ))
            yield flush()


def _balance(balance: Balance | None) -> str:
    if balance is None:
        return "-"
    return f"{balance.amount.amount} {balance.amount.currency} on {balance.date.isoformat()}"


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(statement: Statement) -> str:
    """One statement as a block of aligned text."""
    account = statement.account
    ident = account.iban or account.number or "(no account id)"
    period = ""
    if statement.period_start or statement.period_end:
        period = f"  {statement.period_start or '?'} .. {statement.period_end or '?'}"
    lines = [
        f"{statement.source}  [{statement.format_version or statement.format}]",
        f"  account {ident} {account.currency or ''}  statement {statement.statement_id or '-'}"
        f"{period}",
        f"  opening {_balance(statement.opening_balance)}",
        f"  closing {_balance(statement.closing_balance)}",
        f"  {len(statement.entries)} entries",
    ]
    for entry in statement.entries:
        mark = " R" if entry.reversal else "  "
        lines.append(
            f"    {entry.booking_date or '':10} {entry.amount.amount:>16} {entry.amount.currency}"
            f"{mark} {entry.status.value:7} {_clip(entry.counterparty_name, 28):28} "
            f"{_clip(entry.remittance or entry.additional_info, 50)}"
        )
    lines.extend(f"  ! {flag.code}: {flag.message}" for flag in statement.flags)
    return "\n".join(lines) + "\n"
