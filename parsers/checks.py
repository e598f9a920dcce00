"""Checks every statement gets after parsing, whatever its format.

The balance check: opening booked balance + booked entries = closing booked balance.
A mismatch is a flag on the statement; with ``strict`` it is a ``ParseError``.
"""

from __future__ import annotations

import dataclasses

from parsers.errors import ParseError
from parsers.model import EntryStatus, Flag, Statement


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


def check_statement(statement: Statement, *, strict: bool) -> Statement:
    """Return ``statement`` with its balance flags added; raise on a mismatch if strict."""
    flags = balance_flags(statement)
    if not flags:
        return statement
    if strict:
        raise ParseError(
            "; ".join(f.message for f in flags),
            source=statement.source,
            field=f"statement {statement.statement_id or ''}".strip(),
        )
    return dataclasses.replace(statement, flags=statement.flags + flags)
