"""OFX layer 4: ofxparse reads the cleaned document, and must agree with our reading.

ofxparse is the project's OFX library. It is given the document as ``ofx_tree.serialize``
writes it after the repairs of ``ofx_clean`` (every element closed, data escaped, empty
elements and misplaced balances dealt with), which is what lets it read the real files it
fails on by itself (a header run together on one line, an empty ``BALAMT``, ...).

Its values are not what the statement is built from, because ofxparse
- moves DTPOSTED to UTC and drops the offset, so a booking late in the day west of
  Greenwich lands on the next day;
- reads amounts by guessing separators (``1.234,56`` becomes 1234.56, unreported);
- does not read CURRENCY/ORIGCURRENCY, PAYEE, BANKACCTTO/CCACCTTO, REFNUM or DTAVAIL.

Instead it is the second reader every statement must pass: the same statements in the
same order, the same account ids, the same FITID and amount for every transaction, the
same ledger balance. Where the two differ, one of them misread the file, and the file is
refused rather than half-trusted. No ofxparse object leaves this module.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from ofxparse import OfxParser

from parsers.errors import ParseError

# A 1.x header naming UTF-8, so ofxparse decodes the serialized text as we wrote it.
_HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:UTF-8\n"
    "CHARSET:NONE\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
)
_KINDS = {1: "STMTRS", 2: "CCSTMTRS", 3: "INVSTMTRS"}  # ofxparse AccountType values


@dataclass(frozen=True, slots=True)
class StatementReading:
    """What one reader found in one statement aggregate, for comparison."""

    kind: str  # STMTRS or CCSTMTRS
    account_id: str | None
    transactions: tuple[tuple[str | None, Decimal], ...]  # (FITID, TRNAMT) in order
    ledger_balance: Decimal | None
    line: int | None = None
    path: str | None = None

    def first(self, count: int) -> StatementReading:
        """The same reading of the first ``count`` transactions only."""
        if len(self.transactions) <= count:
            return self
        return StatementReading(self.kind, self.account_id, self.transactions[:count],
                                self.ledger_balance, self.line, self.path)


@dataclass(frozen=True, slots=True)
class _Reading:
    statements: tuple[StatementReading, ...]
    discarded: tuple[int, ...]  # per statement: transactions ofxparse set aside as invalid


def read_with_ofxparse(document: str, *, source: str) -> _Reading:
    """ofxparse's reading of ``document`` (serialized OFX); ``ParseError`` if it fails."""
    data = (_HEADER + document).encode("utf-8")
    with warnings.catch_warnings():
        # bs4 deprecations triggered by ofxparse's old call style, and bs4's advice about
        # markup: neither is about the bank's data. Filtered here only, not process-wide.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
        warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
        try:
            result = OfxParser.parse(io.BytesIO(data), fail_fast=False)
        except Exception as exc:  # any failure of the library is a refusal of the file
            raise ParseError(f"ofxparse cannot read the document even after repairs: "
                             f"{type(exc).__name__}: {exc}", source=source) from exc
    statements = []
    discarded = []
    for account in result.accounts:
        statement = account.statement
        transactions = tuple(
            (_text(t.id), Decimal(t.amount)) for t in statement.transactions
        ) if statement is not None else ()
        balance = getattr(statement, "balance", None)
        statements.append(StatementReading(
            kind=_KINDS.get(account.type, "unknown"),
            account_id=_text(account.account_id),
            transactions=transactions,
            ledger_balance=Decimal(balance) if balance is not None else None,
        ))
        discarded.append(len(statement.discarded_entries) if statement is not None else 0)
    return _Reading(tuple(statements), tuple(discarded))


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def cross_check(ours: list[StatementReading], document: str, *, source: str) -> None:
    """Refuse the file unless ofxparse reads ``document`` as ``ours`` says it is."""
    for problem in differences(ours, document, source=source):
        if problem is not None:
            raise problem


def differences(ours: list[StatementReading], document: str, *,
                source: str) -> list[ParseError | None]:
    """For each of ``ours``, in its order, the ``ParseError`` saying how ofxparse reads that
    statement of ``document`` differently, or None. Raises ``ParseError`` when ofxparse
    cannot read the document or finds another number of statements."""
    reading = read_with_ofxparse(document, source=source)
    # ofxparse lists bank statements first, then credit card statements.
    order = sorted(range(len(ours)), key=lambda i: ours[i].kind != "STMTRS")
    if len(order) != len(reading.statements):
        raise ParseError(f"ofxparse finds {len(reading.statements)} statements where this "
                         f"parser finds {len(order)}", source=source)
    found: list[ParseError | None] = [None] * len(ours)
    for number, (index, theirs, discarded) in enumerate(
            zip(order, reading.statements, reading.discarded, strict=True), 1):
        mine = ours[index]
        problem = _difference(mine, theirs, discarded)
        if problem:
            found[index] = ParseError(f"ofxparse and this parser read statement {number} "
                                      f"differently: {problem}", source=source,
                                      line=mine.line, path=mine.path)
    return found


def _difference(mine: StatementReading, theirs: StatementReading, discarded: int) -> str:
    if mine.kind != theirs.kind:
        return f"a {theirs.kind} for ofxparse, a {mine.kind} here"
    if mine.account_id is not None and mine.account_id != theirs.account_id:
        return f"account {theirs.account_id!r} for ofxparse, {mine.account_id!r} here"
    if mine.ledger_balance != theirs.ledger_balance:
        return f"ledger balance {theirs.ledger_balance} for ofxparse, {mine.ledger_balance} here"
    if discarded == 0 and mine.transactions != theirs.transactions:
        return _first_transaction_difference(mine.transactions, theirs.transactions)
    if discarded and not _is_subsequence(theirs.transactions, mine.transactions):
        return _first_transaction_difference(mine.transactions, theirs.transactions)
    if len(theirs.transactions) + discarded != len(mine.transactions):
        return (f"{len(theirs.transactions)} transactions (and {discarded} set aside) for "
                f"ofxparse, {len(mine.transactions)} here")
    return ""


def _first_transaction_difference(mine: tuple[tuple[str | None, Decimal], ...],
                                  theirs: tuple[tuple[str | None, Decimal], ...]) -> str:
    for index, (a, b) in enumerate(zip(mine, theirs, strict=False), 1):
        if a != b:
            return (f"transaction {index} is FITID {b[0]} amount {b[1]} for ofxparse, "
                    f"FITID {a[0]} amount {a[1]} here")
    return f"{len(theirs)} transactions for ofxparse, {len(mine)} here"


def _is_subsequence(part: tuple[object, ...], whole: tuple[object, ...]) -> bool:
    remaining = iter(whole)
    return all(any(item == candidate for candidate in remaining) for item in part)
