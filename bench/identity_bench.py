"""The identity rule's own cost: ``parsers.overlap.decide`` on a statement sent again.

    python bench/identity_bench.py [--entries 10000,100000]

For each size, a booked statement whose lines are all stored already (a copy in another
format: every line must be found) is decided against those stored lines, twice: once with
every line different, once with every line alike (one day of identical standing orders,
the case where lines cannot be told apart by their fields). The floor, in the same run, is
the least any rule must do: count the stored lines and the incoming ones by date, amount
and currency with ``collections.Counter``. Pure Python, no database.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from parsers import overlap
from parsers.model import Account, Balance, BalanceKind, Entry, Statement
from parsers.money import Money

ACCOUNT = Account(iban="DE89370400440532013000", currency="EUR")
DAY = date(2026, 11, 2)


def statement(n: int, *, alike: bool) -> Statement:
    entries = tuple(Entry(
        amount=Money(Decimal("9.99") if alike else Decimal(i % 5000 + 1) / 100, "EUR"),
        booking_date=DAY if alike else DAY + timedelta(days=i % 20),
        counterparty_name="Standing order" if alike else f"Payer {i % 997}",
        remittance="Subscription" if alike else f"INV {i}") for i in range(n))
    entries = tuple(sorted(entries, key=lambda e: e.booking_date or DAY))
    total = sum((e.amount.amount for e in entries), Decimal(0))
    return Statement(
        source="bench", format="camt.053", account=ACCOUNT, entries=entries,
        opening_balance=Balance(Money(Decimal("1000.00"), "EUR"), DAY,
                                BalanceKind.OPENING_BOOKED),
        closing_balance=Balance(Money(Decimal("1000.00") + total, "EUR"),
                                DAY + timedelta(days=20), BalanceKind.CLOSING_BOOKED))


def stored(s: Statement) -> tuple[list[overlap.StoredStatement], list[overlap.StoredLine]]:
    """The lines as the first copy (another format, no end-to-end ids) left them."""
    ledger = overlap.ledger_of(s)
    assert ledger is not None
    ranks = {position: rank for rank, position in enumerate(overlap.ledger_order(s))}
    lines = [overlap.StoredLine(
        entry_id=f"e{i}", day=e.booking_date, amount=e.amount.amount, currency="EUR",
        provisional=False, scheme="swift", bank_reference=None, end_to_end_id=None,
        counterparty_name=(e.counterparty_name or "").upper(), counterparty_account=None,
        remittance=e.remittance, reports=frozenset({(1, ranks[i])}),
        balance_after=ledger.afters[ranks[i]]) for i, e in enumerate(s.entries)]
    return [overlap.StoredStatement(1, ledger)], lines


def measure(n: int, *, alike: bool) -> tuple[float, float]:
    s = statement(n, alike=alike)
    statements, lines = stored(s)
    started = time.perf_counter()
    _, decisions = overlap.decide(s, statements, lines)
    ours = time.perf_counter() - started
    if any(d.outcome is not overlap.Outcome.KNOWN for d in decisions):
        raise SystemExit("a line sent again was not found: benchmark void")
    started = time.perf_counter()
    have = Counter((line.day, line.amount, line.currency) for line in lines)
    new = Counter((e.booking_date, e.amount.amount, e.amount.currency) for e in s.entries)
    if new - have:
        raise SystemExit("floor: counts differ")
    floor = time.perf_counter() - started
    return ours, floor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", default="10000,100000")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.entries.split(",")]
    print(f"command: python bench/identity_bench.py --entries {args.entries}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| lines | lines alike | decide (s) | lines/s | floor (s) | floor/ours |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in sizes:
        for alike in (False, True):
            ours, floor = measure(n, alike=alike)
            print(f"| {n:,} | {'all' if alike else 'none'} | {ours:.2f} | {n / ours:,.0f} "
                  f"| {floor:.3f} | {floor / ours:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
