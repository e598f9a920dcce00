"""Stable identity of a bank line (DESIGN.md: "Identity of a bank line").

An entry is known by the bank's own reference where it has a real one, else by a hash of
what the bank says of it: account, booking date, amount, currency, counterparty and
remittance. ``occurrence`` (the how-many-th identical line of that statement) tells apart
two lines the bank reports identically, while staying the same when the same line is
reported again in an overlapping statement.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from parsers.model import Entry, Statement

# References banks write when they have none: not an identity.
_PLACEHOLDER_REFERENCES = frozenset({"NONREF", "NOTPROVIDED", "NOT PROVIDED", "NONE", "N/A", "-"})


def is_real_reference(reference: str | None) -> bool:
    """True if ``reference`` can identify a line (not blank, a placeholder or all zeros)."""
    if reference is None:
        return False
    ref = reference.strip().upper()
    return bool(ref) and ref not in _PLACEHOLDER_REFERENCES and ref.strip("0") != ""


def _amount(entry: Entry) -> str:
    """The amount as text, the same however many zeros the file wrote (12.5 == 12.50)."""
    return f"{entry.amount.amount.normalize():f}"


def _natural_key(entry: Entry) -> tuple[str, ...]:
    reference = entry.bank_reference if is_real_reference(entry.bank_reference) else None
    if reference is not None:
        return ("ref", reference.strip(), str(entry.booking_date or entry.value_date),
                _amount(entry), entry.amount.currency)
    return (
        "content",
        str(entry.booking_date),
        str(entry.value_date),
        _amount(entry),
        entry.amount.currency,
        entry.status.value,
        entry.counterparty_account or "",
        entry.counterparty_name or "",
        entry.end_to_end_id or "",
        entry.remittance or entry.additional_info or "",
    )


def entry_ids(statement: Statement) -> tuple[str, ...]:
    """One stable id per entry of ``statement``, in entry order."""
    seen: Counter[tuple[str, ...]] = Counter()
    ids = []
    for entry in statement.entries:
        key = _natural_key(entry)
        occurrence = seen[key]
        seen[key] += 1
        material = "\x1f".join((statement.account.key, *key, str(occurrence)))
        ids.append(hashlib.sha256(material.encode()).hexdigest()[:32])
    return tuple(ids)
