"""The JSON form of a statement: what ``recon-gateway parse --format jsonl`` prints.

Others rely on it (docs/parse-output.md). Amounts are signed decimal strings exactly as
the bank wrote them (credit positive), dates ISO 8601, absent values ``null``.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from parsers.identity import entry_ids
from parsers.model import Balance, Entry, Statement
from parsers.money import Money


def decimal_text(value: Decimal) -> str:
    """A decimal as plain digits, never in exponent form (``0E-16`` -> ``0.0000000000000000``)."""
    return format(value, "f")


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    """Dataclasses, money, decimals, dates and enums as JSON-ready values."""
    if value is None or value.__class__ in _AS_IS:
        return value
    if isinstance(value, Money):
        return {"amount": decimal_text(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


_AS_IS = frozenset({str, bool, int})


def _balance(balance: Balance | None) -> dict[str, str] | None:
    if balance is None:
        return None
    return {
        "amount": decimal_text(balance.amount.amount),
        "currency": balance.amount.currency,
        "date": balance.date.isoformat(),
        "kind": balance.kind.value,
    }


def entry_to_dict(entry: Entry, entry_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry_id}
    for name in _field_names(Entry):
        value = getattr(entry, name)
        if name == "amount":
            out["amount"] = decimal_text(value.amount)
            out["currency"] = value.currency
        else:
            out[name] = _plain(value)
    return out


def _sparse(value: Any) -> Any:
    """Like ``_plain``, but dataclasses keep only the fields that say something."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type) \
            and not isinstance(value, Money):
        out = {}
        for name in _field_names(type(value)):
            field_value = getattr(value, name)
            if field_value is not None and field_value != ():
                out[name] = _sparse(field_value)
        return out
    if isinstance(value, tuple | list):
        return [_sparse(v) for v in value]
    return _plain(value)


@cache
def _kept_fields(leave_out: frozenset[str]) -> tuple[str, ...]:
    return tuple(name for name in _field_names(Entry) if name not in leave_out)


def entry_details(entry: Entry, *, leave_out: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The entry's fields that say something (no nulls or empty lists), less those in
    ``leave_out``: a compact form for storage."""
    details: dict[str, Any] = {}
    for name in _kept_fields(leave_out):
        value = getattr(entry, name)
        if value is None or value == ():
            continue
        details[name] = value if value.__class__ in _AS_IS else _sparse(value)
    return details


def statement_to_dict(statement: Statement) -> dict[str, Any]:
    """One statement as the documented JSON object."""
    ids = entry_ids(statement)
    return {
        "source": statement.source,
        "format": statement.format,
        "format_version": statement.format_version,
        "account": _plain(statement.account),
        "statement_id": statement.statement_id,
        "sequence": statement.sequence,
        "created_at": _plain(statement.created_at),
        "period_start": _plain(statement.period_start),
        "period_end": _plain(statement.period_end),
        "opening_balance": _balance(statement.opening_balance),
        "closing_balance": _balance(statement.closing_balance),
        "available_balances": [_balance(b) for b in statement.available_balances],
        "entries": [entry_to_dict(e, i) for e, i in zip(statement.entries, ids, strict=True)],
        "flags": [_plain(f) for f in statement.flags],
    }
