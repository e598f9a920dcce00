"""Checks every statement gets after parsing, whatever its format.

The balance check: opening booked balance + booked entries = closing booked balance.
A mismatch is a flag on the statement; with ``strict`` it is a ``ParseError``.

A statement in a currency withdrawn from ISO 4217 (DEM, FRF, ITL, ...: a historic
statement) is read as it is and flagged ``withdrawn_currency`` with the codes named; that
flag is information, not a failure, so ``strict`` does not refuse it.
"""

from __future__ import annotations

import dataclasses

from parsers.errors import ParseError
from parsers.model import EntryStatus, Flag, Statement
from parsers.money import is_withdrawn_currency


def balance_flags(statement: Statement) -> tuple[Flag, ...]:
    """Flags for what does not add up in ``statement`` (empty when all is well)."""
    opening, closing = statement.opening_balance, statement.closing_balance
    flags = []
    foreign = [
        i for i, e in enumerate(statement.entries, 1)
        if statement.currency and e.amount.currency != statement.currency
    ]
    if foreign:
        flags.append(Flag(
            "entry_currency_mismatch",
            f"{len(foreign)} entries are not in the statement currency {statement.currency} "
            f"(first: entry {foreign[0]})",
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
    net = sum(
        (e.amount.amount for e in statement.entries if e.status is EntryStatus.BOOKED),
        start=opening.amount.amount * 0,
    )
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
    used = {statement.currency or ""}
    used.update(b.amount.currency for b in (statement.opening_balance,
                                             statement.closing_balance) if b is not None)
    used.update(b.amount.currency for b in statement.available_balances)
    used.update(e.amount.currency for e in statement.entries)
    withdrawn = sorted(c for c in used if is_withdrawn_currency(c))
    if not withdrawn:
        return ()
    return (Flag("withdrawn_currency",
                 f"amounts in {', '.join(withdrawn)}, withdrawn from ISO 4217: a historic "
                 "statement, read with the minor units the currency had"),)


def check_statement(statement: Statement, *, strict: bool) -> Statement:
    """Return ``statement`` with its check flags added; raise on a mismatch if strict."""
    flags = balance_flags(statement)
    if flags and strict:
        raise ParseError(
            "; ".join(f.message for f in flags),
            source=statement.source,
            field=f"statement {statement.statement_id or ''}".strip(),
        )
    flags += currency_flags(statement)
    if not flags:
        return statement
    return dataclasses.replace(statement, flags=statement.flags + flags)
