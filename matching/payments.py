"""From statements to the payments the engine matches: incoming, booked, not reversals.

A batch entry whose transactions each carry an amount becomes one payment per
transaction (each may settle different invoices); any other entry is one payment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from matching.model import Payment
from parsers.identity import entry_ids
from parsers.model import Entry, EntryStatus, Statement


def incoming(entry: Entry) -> bool:
    return entry.status is EntryStatus.BOOKED and entry.amount.amount > 0 and not entry.reversal


def payments_from_statements(statements: Iterable[Statement]) -> Iterator[Payment]:
    """Each incoming line once, even when overlapping statements report it twice; keys are
    the bank's references, made unique with the entry id where a bank repeats one."""
    seen: set[tuple[str, str]] = set()
    seen_keys: set[str] = set()
    for payment in _payments(statements):
        if (payment.entry_id, payment.key) in seen:
            continue
        seen.add((payment.entry_id, payment.key))
        if payment.key in seen_keys:
            payment = dataclasses.replace(payment, key=f"{payment.key}#{payment.entry_id[:12]}")
        seen_keys.add(payment.key)
        yield payment


def _payments(statements: Iterable[Statement]) -> Iterator[Payment]:
    for statement in statements:
        for entry, entry_id in zip(statement.entries, entry_ids(statement), strict=True):
            if not incoming(entry) or entry.booking_date is None:
                continue
            parts = [(t, t.amount) for t in entry.transactions]
            if len(parts) > 1 and all(amount is not None for _, amount in parts):
                for number, (part, amount) in enumerate(parts, 1):
                    if amount is None:  # excluded just above; says so to the type checker
                        continue
                    reference = part.bank_reference or (
                        f"{entry.bank_reference}#{number}" if entry.bank_reference else None)
                    yield Payment(
                        key=reference or f"{entry_id}#{number}",
                        entry_id=entry_id,
                        booking_date=entry.booking_date,
                        amount=amount,
                        bank_reference=reference,
                        payer_name=part.counterparty_name,
                        payer_account=part.counterparty_account,
                        remittance=part.remittance,
                        end_to_end_id=part.end_to_end_id,
                        creditor_reference=part.creditor_reference,
                        fx=part.fx,
                        charges=part.charges,
                    )
                continue
            yield Payment(
                key=entry.bank_reference or entry_id,
                entry_id=entry_id,
                booking_date=entry.booking_date,
                amount=entry.amount,
                bank_reference=entry.bank_reference,
                payer_name=entry.counterparty_name,
                payer_account=entry.counterparty_account,
                remittance=entry.remittance or entry.additional_info,
                end_to_end_id=entry.end_to_end_id,
                creditor_reference=entry.creditor_reference,
                fx=entry.fx,
                charges=entry.charges,
            )
