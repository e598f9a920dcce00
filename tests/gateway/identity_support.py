"""A bank's true ledger, and statements cut from it the way banks and formats do.

``Ledger`` holds an account's true lines, day by day, in segments (one booked statement
each). From it come booked statements (a segment, or several segments merged, as
camt.053, MT940 or OFX would carry them), intraday reports (MT942, camt.052: no balances,
the day's lines so far) and the bytes of real files through our own writers.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from parsers.model import Account, Balance, BalanceKind, Entry, Statement
from parsers.money import Money

ACCOUNT = Account(iban="DE89370400440532013000", currency="EUR")
FIRST_DAY = date(2026, 11, 2)

# What a line can say. Identical picks are distinct payments that look exactly alike.
TEMPLATES = (
    (Decimal("10.00"), "ACME GmbH", "DE02120300000000202051", "INV 1", "E2E-1"),
    (Decimal("10.00"), "ACME GmbH", "DE02120300000000202051", "INV 1", None),
    (Decimal("-5.50"), "Bank fee", None, "FEE", None),
    (Decimal("20.00"), "Beta Ltd", "GB33BUKB20201555555555", "INV 2", "E2E-2"),
)
BOOKED_FORMATS = ("camt.053", "mt940", "ofx")
# A format listing lines in another order than the ledger's (within one day it cannot be
# told): nothing may be lost, and what is stored twice must be flagged.
UNORDERED_FORMATS = (*BOOKED_FORMATS, "ofx-newest-first")
INTRADAY_FORMATS = ("mt942", "camt.052")


@dataclass(frozen=True, slots=True)
class Line:
    uid: int  # which true line (OFX's FITID is made from it)
    day: date
    template: int


@dataclass(frozen=True, slots=True)
class Segment:
    day: date
    lines: tuple[Line, ...]
    opening: Decimal
    closing: Decimal


@dataclass(frozen=True, slots=True)
class Ledger:
    segments: tuple[Segment, ...]

    @classmethod
    def from_days(cls, segments: list[list[int]], *, same_day: bool = False) -> Ledger:
        """A ledger of these segments (lists of template numbers), one a day, or all on
        one day with ``same_day``."""
        balance, uid, out = Decimal("1000.00"), 0, []
        for number, picks in enumerate(segments):
            day = FIRST_DAY + timedelta(days=0 if same_day else number)
            lines = tuple(Line(uid + i, day, t) for i, t in enumerate(picks))
            uid += len(picks)
            closing = balance + sum((TEMPLATES[t][0] for t in picks), Decimal(0))
            out.append(Segment(day, lines, balance, closing))
            balance = closing
        return cls(tuple(out))

    def truth(self) -> Counter[tuple[date, Decimal]]:
        return Counter((line.day, TEMPLATES[line.template][0])
                       for s in self.segments for line in s.lines)


@st.composite
def ledgers(draw: st.DrawFn) -> Ledger:
    balance, uid, segments = Decimal("1000.00"), 0, []
    for offset in range(draw(st.integers(1, 3))):
        day = FIRST_DAY + timedelta(days=offset)
        for _ in range(draw(st.integers(1, 2))):
            picks = draw(st.lists(st.integers(0, len(TEMPLATES) - 1), max_size=3))
            lines = []
            for template in picks:
                lines.append(Line(uid, day, template))
                uid += 1
            closing = balance + sum((TEMPLATES[t][0] for t in picks), Decimal(0))
            segments.append(Segment(day, tuple(lines), balance, closing))
            balance = closing
    return Ledger(tuple(segments))


def _entry(line: Line, fmt: str) -> Entry:
    amount, name, account, remittance, e2e = TEMPLATES[line.template]
    entry = Entry(amount=Money(amount, "EUR"), booking_date=line.day, value_date=line.day,
                  counterparty_name=name, counterparty_account=account,
                  remittance=remittance, end_to_end_id=e2e)
    if fmt in ("mt940", "mt942"):  # no end-to-end id; names in capitals; no reference
        return replace(entry, end_to_end_id=None,
                       counterparty_name=name.upper())
    if fmt == "ofx":  # the bank's FITID; a short NAME; no account, no end-to-end id
        return replace(entry, bank_reference=f"FIT{line.uid:06d}", counterparty_name=name[:6],
                       counterparty_account=None, end_to_end_id=None)
    return entry


def booked(ledger: Ledger, first: int, last: int, fmt: str) -> Statement:
    """Segments ``first``..``last`` as one booked statement in format ``fmt``."""
    segments = ledger.segments[first:last + 1]
    opening, closing = segments[0], segments[-1]
    newest_first = fmt == "ofx-newest-first"  # as many OFX files list them
    fmt = "ofx" if newest_first else fmt
    entries = tuple(_entry(line, fmt) for s in segments for line in s.lines)
    if newest_first:
        entries = entries[::-1]
    open_balance = Balance(Money(opening.opening, "EUR"), opening.day, BalanceKind.OPENING_BOOKED)
    close_balance = Balance(Money(closing.closing, "EUR"), closing.day,
                            BalanceKind.CLOSING_BOOKED)
    return Statement(
        source=f"{fmt}-{first}-{last}", format=fmt, account=ACCOUNT, entries=entries,
        statement_id=f"S{first}-{last}",
        opening_balance=None if fmt == "ofx" else open_balance, closing_balance=close_balance,
        created_at=datetime.combine(closing.day, datetime.min.time(), UTC)
        if fmt == "camt.053" else None)


def intraday(ledger: Ledger, day: date, count: int, fmt: str) -> Statement:
    """The first ``count`` lines of ``day`` as an intraday report."""
    lines = [line for s in ledger.segments if s.day == day for line in s.lines][:count]
    return Statement(source=f"{fmt}-{day}-{count}", format=fmt, account=ACCOUNT,
                     entries=tuple(_entry(line, fmt) for line in lines),
                     statement_id=f"I{day:%m%d}-{count}")


def document_bytes(statement: Statement) -> bytes:
    """Bytes standing for the file: the same statement in the same format, the same bytes."""
    return json.dumps([statement.format, statement.statement_id, [
        [str(e.amount.amount), str(e.booking_date), e.bank_reference, e.counterparty_name]
        for e in statement.entries]]).encode()


@st.composite
def uploads(draw: st.DrawFn, ledger: Ledger,
            formats: tuple[str, ...] = BOOKED_FORMATS) -> list[Statement]:
    """Every segment at least once as a booked statement, plus copies in other formats,
    merged statements and intraday reports, in any order."""
    count = len(ledger.segments)
    chosen = [booked(ledger, i, i, draw(st.sampled_from(formats))) for i in range(count)]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("copy", "merged", "intraday")))
        if kind == "copy":
            i = draw(st.integers(0, count - 1))
            chosen.append(booked(ledger, i, i, draw(st.sampled_from(formats))))
        elif kind == "merged":
            i = draw(st.integers(0, count - 1))
            j = draw(st.integers(i, count - 1))
            chosen.append(booked(ledger, i, j, draw(st.sampled_from(formats))))
        else:
            segment = draw(st.sampled_from(ledger.segments))
            size = sum(len(s.lines) for s in ledger.segments if s.day == segment.day)
            chosen.append(intraday(ledger, segment.day, draw(st.integers(1, max(size, 1))),
                                   draw(st.sampled_from(INTRADAY_FORMATS))))
    return draw(st.permutations(chosen))
