"""The streaming ingest decides a statement's lines a day at a time (gateway.ingest_decide):
that must be exactly what ``parsers.overlap.decide`` decides for the whole statement."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import overlap
from parsers.model import Account, Balance, BalanceKind, Entry, EntryStatus, Statement
from parsers.money import Money
from parsers.overlap import IncomingLine, Ledger, StoredLine, StoredStatement

DAYS = [date(2026, 3, 2) + timedelta(days=n) for n in range(3)]
AMOUNTS = [Decimal("1.00"), Decimal("-2.00"), Decimal("3.00")]
TEXTS = st.sampled_from([None, "Anna", "ANNA GMBH", "Bert"])


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    return Entry(amount=Money(draw(st.sampled_from(AMOUNTS)), "EUR"),
                 booking_date=draw(st.sampled_from([*DAYS, None])),
                 value_date=draw(st.sampled_from([DAYS[0], None])),
                 status=draw(st.sampled_from([EntryStatus.BOOKED, EntryStatus.BOOKED,
                                              EntryStatus.PENDING])),
                 bank_reference=draw(st.sampled_from([None, "R1", "R2", "NONREF"])),
                 counterparty_name=draw(TEXTS), remittance=draw(TEXTS))


@st.composite
def statements(draw: st.DrawFn) -> Statement:
    lines = tuple(draw(st.lists(entries(), max_size=12)))
    opening = draw(st.sampled_from([None, Decimal("10.00"), Decimal("11.00")]))
    closing = draw(st.sampled_from([None, Decimal("10.00"), Decimal("14.00")]))
    return Statement(
        source="s", format=draw(st.sampled_from(["camt.053", "mt940", "ofx", "mt942"])),
        account=Account(iban="DE89370400440532013000"), entries=lines,
        opening_balance=None if opening is None else Balance(
            Money(opening, "EUR"), DAYS[0], BalanceKind.OPENING_BOOKED),
        closing_balance=None if closing is None else Balance(
            Money(closing, "EUR"), DAYS[-1], BalanceKind.CLOSING_BOOKED))


MARKS = st.sampled_from([Decimal(n) for n in range(8, 16)])


@st.composite
def stored(draw: st.DrawFn) -> tuple[list[StoredStatement], list[StoredLine]]:
    ledgers = [StoredStatement(pk, Ledger(draw(MARKS), draw(MARKS), "EUR",
                                          tuple(draw(st.lists(MARKS, max_size=5)))))
               for pk in range(1, draw(st.integers(0, 3)) + 1)]
    lines = []
    for n in range(draw(st.integers(0, 10))):
        reports = frozenset(draw(st.lists(st.tuples(st.sampled_from([1, 2, 3, 9]),
                                                    st.integers(0, 5)), max_size=2)))
        lines.append(StoredLine(
            entry_id=f"line{n}", day=draw(st.sampled_from([*DAYS, None])),
            amount=draw(st.sampled_from(AMOUNTS)), currency="EUR",
            provisional=draw(st.booleans()), scheme=draw(st.sampled_from(["iso", "swift"])),
            bank_reference=draw(st.sampled_from([None, "R1", "R2"])), end_to_end_id=None,
            counterparty_name=draw(TEXTS), counterparty_account=None, remittance=draw(TEXTS),
            reports=reports, balance_after=draw(st.one_of(st.none(), MARKS))))
    return ledgers, lines


@settings(max_examples=400, deadline=None)
@given(statement=statements(), known=stored())
def test_deciding_day_by_day_decides_as_the_whole_statement(
        statement: Statement, known: tuple[list[StoredStatement], list[StoredLine]]) -> None:
    stored_statements, stored_lines = known
    placement, whole = overlap.decide(statement, stored_statements, stored_lines)
    ledger = overlap.ledger_of(statement)
    ranks: dict[int, tuple[int | None, Decimal | None]] = {}
    if ledger is not None:
        for n, position in enumerate(overlap.ledger_order(statement)):
            ranks[position] = (n, ledger.afters[n])
    windows = overlap.windows_of(ledger, placement, stored_statements)
    by_day: dict[date | None, list[IncomingLine]] = defaultdict(list)
    for position, entry in enumerate(statement.entries):
        found = ranks.get(position, (None, None))
        by_day[entry.booking_date or entry.value_date].append(
            IncomingLine(position, entry, found[0], found[1]))
    daily: dict[int, overlap.Decision] = {}
    for day, lines in by_day.items():
        day_stored = [line for line in stored_lines if line.day == day]
        for line, decision in zip(lines, overlap.decide_lines(
                statement.format, placement, windows, lines, day_stored), strict=True):
            daily[line.position] = decision
    assert [daily[i] for i in range(len(statement.entries))] == whole
