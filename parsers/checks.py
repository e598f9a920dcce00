"""Checks every statement gets after parsing, whatever its format.

The balance check: opening booked balance + booked entries = closing booked balance.
A mismatch is a flag on the statement; with ``strict`` it is a ``ParseError``.

A statement in a currency withdrawn from ISO 4217 (DEM, FRF, ITL, ...: a historic
statement) is read as it is and flagged ``withdrawn_currency`` with the codes named; that
flag is information, not a failure, so ``strict`` does not refuse it.

``StreamCheck`` gives the same flags for a statement read as a stream (``parsers.stream``)
without holding its entries: it keeps per entry currency a count and the first entry's
number, the running booked net and the currencies seen, and judges them against the
statement as it stands at its end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

from parsers.errors import ParseError
from parsers.model import Entry, EntryStatus, Flag, Statement
from parsers.money import is_withdrawn_currency


def balance_flags(statement: Statement) -> tuple[Flag, ...]:
    """Flags for what does not add up in ``statement`` (empty when all is well)."""
    foreign = [
        i for i, e in enumerate(statement.entries, 1)
        if statement.currency and e.amount.currency != statement.currency
    ]

    def net(zero: Decimal) -> Decimal:
        return sum(
            (e.amount.amount for e in statement.entries if e.status is EntryStatus.BOOKED),
            start=zero,
        )

    return _balance_flags(statement, len(foreign), foreign[0] if foreign else 0, net)


def _balance_flags(statement: Statement, foreign: int, first_foreign: int,
                   booked: Callable[[Decimal], Decimal]) -> tuple[Flag, ...]:
    """The balance flags from what was gathered of the entries: how many are ``foreign``
    (not in the statement currency), the number of the first, and ``booked``, which adds
    the booked entries to a zero of the balances' exponent."""
    opening, closing = statement.opening_balance, statement.closing_balance
    flags = []
    if foreign:
        flags.append(Flag(
            "entry_currency_mismatch",
            f"{foreign} entries are not in the statement currency {statement.currency} "
            f"(first: entry {first_foreign})",
        ))
    if opening is None or closing is None:
        return tuple(flags)
    if opening.amount.currency != closing.amount.currency:
        flags.append(Flag(
            "balance_currency_mismatch",
            f"opening balance is in {opening.amount.currency}, "
            f"closing balance in {closing.amount.currency}",
        ))
        return tuple(flags)
    if foreign:
        return tuple(flags)
    net = booked(opening.amount.amount * 0)
    expected = opening.amount.amount + net
    if expected != closing.amount.amount:
        flags.append(Flag(
            "balance_mismatch",
            f"opening {opening.amount.amount} + booked entries {net} = {expected}, "
            f"but the closing balance is {closing.amount.amount} "
            f"(difference {closing.amount.amount - expected})",
        ))
    return tuple(flags)


def currency_flags(statement: Statement) -> tuple[Flag, ...]:
    """A ``withdrawn_currency`` flag naming the withdrawn ISO 4217 codes ``statement`` uses."""
    return _currency_flags(statement, {e.amount.currency for e in statement.entries})


def _currency_flags(statement: Statement, entry_currencies: set[str]) -> tuple[Flag, ...]:
    used = {statement.currency or ""}
    used.update(b.amount.currency for b in (statement.opening_balance,
                                             statement.closing_balance) if b is not None)
    used.update(b.amount.currency for b in statement.available_balances)
    used.update(entry_currencies)
    withdrawn = sorted(c for c in used if is_withdrawn_currency(c))
    if not withdrawn:
        return ()
    return (Flag("withdrawn_currency",
                 f"amounts in {', '.join(withdrawn)}, withdrawn from ISO 4217: a historic "
                 "statement, read with the minor units the currency had"),)


def check_statement(statement: Statement, *, strict: bool) -> Statement:
    """Return ``statement`` with its check flags added; raise on a mismatch if strict."""
    return _with_flags(statement, balance_flags(statement), currency_flags(statement),
                       strict=strict)


def _with_flags(statement: Statement, flags: tuple[Flag, ...],
                information: tuple[Flag, ...], *, strict: bool) -> Statement:
    """``statement`` with ``flags`` (refused if strict) and ``information`` added."""
    if flags and strict:
        raise ParseError(
            "; ".join(f.message for f in flags),
            source=statement.source,
            field=f"statement {statement.statement_id or ''}".strip(),
        )
    flags += information
    if not flags:
        return statement
    return dataclasses.replace(statement, flags=statement.flags + flags)


class StreamCheck:
    """The checks of one statement, fed its entries one by one (``add``) and then the
    statement without them (``finish``): the flags ``check_statement`` would give the
    whole statement, in memory that does not grow with the entries."""

    __slots__ = ("booked_net", "count", "first", "per_currency")

    def __init__(self) -> None:
        self.count = 0
        self.per_currency: dict[str, int] = {}  # entries by currency
        self.first: dict[str, int] = {}  # number (from 1) of each currency's first entry
        self.booked_net: Decimal | None = None  # None until a booked entry came

    def add(self, entry: Entry) -> None:
        """Take one entry, in statement order."""
        self.count += 1
        amount = entry.amount
        currency = amount.currency
        seen = self.per_currency.get(currency)
        if seen is None:
            self.per_currency[currency] = 1
            self.first[currency] = self.count
        else:
            self.per_currency[currency] = seen + 1
        if entry.status is EntryStatus.BOOKED:
            net = self.booked_net
            self.booked_net = amount.amount if net is None else net + amount.amount

    def balance_flags(self, statement: Statement) -> tuple[Flag, ...]:
        """The balance flags of ``statement`` with the entries taken."""
        foreign, first_foreign = 0, 0
        if statement.currency:
            own = statement.currency
            foreign = self.count - self.per_currency.get(own, 0)
            if foreign:
                first_foreign = min(n for c, n in self.first.items() if c != own)
        booked_net = self.booked_net

        def net(zero: Decimal) -> Decimal:  # the exponent sum(..., start=zero) would give
            return zero if booked_net is None else zero + booked_net

        return _balance_flags(statement, foreign, first_foreign, net)

    def finish(self, statement: Statement, *, strict: bool) -> Statement:
        """``statement`` (its entries are not looked at) with its check flags added;
        raise on a mismatch if strict."""
        return _with_flags(statement, self.balance_flags(statement),
                           _currency_flags(statement, set(self.per_currency)), strict=strict)
