"""The JSON form of a statement: what ``recon-gateway parse --format jsonl`` prints.

Others rely on it (docs/parse-output.md). Amounts are signed decimal strings exactly as
the bank wrote them (credit positive), dates ISO 8601, absent values ``null``.

A statement read as a stream is written without holding its entries: ``statement_line``
gives the text of its line before and after the entries, ``entry_json`` each entry's text,
and the line is ``head + ", ".join(entries) + tail``, the same text as ``json.dumps`` of
``statement_to_dict`` (``ensure_ascii=False``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from parsers.identity import entry_ids
from parsers.model import Balance, BankTransactionCode, Entry, Statement
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


def _code(code: BankTransactionCode | None) -> dict[str, str | None] | None:
    if code is None:
        return None
    return {"swift": code.swift, "gvc": code.gvc, "domain": code.domain,
            "family": code.family, "subfamily": code.subfamily,
            "proprietary": code.proprietary, "issuer": code.issuer}


def entry_to_dict(entry: Entry, entry_id: str) -> dict[str, Any]:
    """One entry as the documented JSON object (its fields written out one by one, for
    speed: a test holds it to ``generic_entry_to_dict``, which follows the dataclass)."""
    booked, valued = entry.booking_date, entry.value_date
    fx, charges, transactions = entry.fx, entry.charges, entry.transactions
    return {
        "id": entry_id,
        "amount": format(entry.amount.amount, "f"),
        "currency": entry.amount.currency,
        "booking_date": None if booked is None else booked.isoformat(),
        "value_date": None if valued is None else valued.isoformat(),
        "status": entry.status.value,
        "reversal": entry.reversal,
        "bank_reference": entry.bank_reference,
        "customer_reference": entry.customer_reference,
        "bank_transaction_code": _code(entry.bank_transaction_code),
        "counterparty_name": entry.counterparty_name,
        "counterparty_account": entry.counterparty_account,
        "counterparty_bic": entry.counterparty_bic,
        "end_to_end_id": entry.end_to_end_id,
        "mandate_id": entry.mandate_id,
        "remittance": entry.remittance,
        "creditor_reference": entry.creditor_reference,
        "fx": None if fx is None else _plain(fx),
        "charges": [_plain(c) for c in charges] if charges else [],
        "transactions": [_plain(t) for t in transactions] if transactions else [],
        "additional_info": entry.additional_info,
    }


def generic_entry_to_dict(entry: Entry, entry_id: str) -> dict[str, Any]:
    """``entry_to_dict`` as the dataclass's fields give it: every field, in order."""
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


# json.dumps(value, ensure_ascii=False) makes an encoder at each call; this one is kept.
_ENCODER = json.JSONEncoder(ensure_ascii=False)
# Under it, the C encoder json.dumps uses, made once (JSONEncoder.encode makes one a call),
# without the check for circular references (an entry's dict holds none).
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENTRY_ENCODER: Any = None if _C_ENCODER is None else _C_ENCODER(
    None, _ENCODER.default, json.encoder.encode_basestring, None, ": ", ", ", False, False,
    True)


# A string as JSON text ("..." with what must be escaped escaped; json's C function where
# there is one): what the encoder writes for a string with ensure_ascii=False.
_STRING: Any = json.encoder.encode_basestring


def _json_text(value: Any) -> str:
    """``value`` (made of dicts, lists, strings, numbers, booleans and None) as JSON text."""
    if _ENTRY_ENCODER is None:
        return _ENCODER.encode(value)
    return "".join(_ENTRY_ENCODER(value, 0))


# The JSON text of bank transaction codes met so far, by the code's identity (a parser hands
# on the same object for the same code): (the code, its text).
_CODE_TEXTS: dict[int, tuple[BankTransactionCode, str]] = {}
_CODE_TEXTS_MAX = 4096


def _code_json(code: BankTransactionCode | None) -> str:
    if code is None:
        return "null"
    known = _CODE_TEXTS.get(id(code))
    if known is not None and known[0] is code:
        return known[1]
    text = _json_text(_code(code))
    if len(_CODE_TEXTS) < _CODE_TEXTS_MAX:
        _CODE_TEXTS[id(code)] = (code, text)
    return text


def _quoted(text: str) -> str:
    return '"' + text + '"'


def entry_json(entry: Entry, entry_id: str) -> str:
    """One entry's JSON text, as it stands inside its statement's line: the text of
    ``entry_to_dict`` (a test holds them to each other), written field by field, for speed.
    Currency codes, dates, decimals and the status need no escaping."""
    string = _STRING
    booked, valued = entry.booking_date, entry.value_date
    fx, charges, transactions = entry.fx, entry.charges, entry.transactions
    bank_reference, customer_reference = entry.bank_reference, entry.customer_reference
    name, account, bic = entry.counterparty_name, entry.counterparty_account, \
        entry.counterparty_bic
    end_to_end_id, mandate_id = entry.end_to_end_id, entry.mandate_id
    remittance, creditor_reference = entry.remittance, entry.creditor_reference
    additional_info = entry.additional_info
    return (
        f'{{"id": {string(entry_id)}, "amount": "{format(entry.amount.amount, "f")}", '
        f'"currency": "{entry.amount.currency}", '
        f'"booking_date": {"null" if booked is None else _quoted(booked.isoformat())}, '
        f'"value_date": {"null" if valued is None else _quoted(valued.isoformat())}, '
        f'"status": "{entry.status.value}", '
        f'"reversal": {"true" if entry.reversal else "false"}, '
        f'"bank_reference": {"null" if bank_reference is None else string(bank_reference)}, '
        f'"customer_reference": '
        f'{"null" if customer_reference is None else string(customer_reference)}, '
        f'"bank_transaction_code": {_code_json(entry.bank_transaction_code)}, '
        f'"counterparty_name": {"null" if name is None else string(name)}, '
        f'"counterparty_account": {"null" if account is None else string(account)}, '
        f'"counterparty_bic": {"null" if bic is None else string(bic)}, '
        f'"end_to_end_id": {"null" if end_to_end_id is None else string(end_to_end_id)}, '
        f'"mandate_id": {"null" if mandate_id is None else string(mandate_id)}, '
        f'"remittance": {"null" if remittance is None else string(remittance)}, '
        f'"creditor_reference": '
        f'{"null" if creditor_reference is None else string(creditor_reference)}, '
        f'"fx": {"null" if fx is None else _json_text(_plain(fx))}, '
        f'"charges": {_json_text(_plain(charges)) if charges else "[]"}, '
        f'"transactions": {_json_text(_plain(transactions)) if transactions else "[]"}, '
        f'"additional_info": '
        f'{"null" if additional_info is None else string(additional_info)}}}'
    )


def statement_line(statement: Statement) -> tuple[str, str]:
    """The text of ``statement``'s JSON line before its entries and after them (with the
    newline): the line is ``head + ", ".join(entry_json(...)) + tail``. The statement's
    own entries are not looked at."""
    whole = statement_to_dict(dataclasses.replace(statement, entries=()))
    flags = whole.pop("flags")
    del whole["entries"]
    head = _ENCODER.encode(whole)
    return head[:-1] + ', "entries": [', '], "flags": ' + _ENCODER.encode(flags) + "}\n"
