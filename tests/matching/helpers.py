"""Small builders for matching tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count
from typing import Any

from matching.invoices import Invoice
from matching.model import Payment
from parsers.money import Money

_numbers = count(1)


def invoice(invoice_id: str, amount: str, *, customer: str = "C1", name: str = "Alpha GmbH",
            currency: str = "EUR", open_amount: str | None = None,
            issued: date = date(2026, 10, 1), due: date = date(2026, 10, 31),
            reference: str | None = None, **extra: Any) -> Invoice:
    return Invoice(invoice_id=invoice_id, customer_id=customer,
                   amount=Money(Decimal(amount), currency),
                   open_amount=Money(Decimal(open_amount or amount), currency),
                   issue_date=issued, due_date=due, customer_name=name,
                   reference=reference, **extra)


def payment(amount: str, *, remittance: str | None = None, name: str | None = None,
            iban: str | None = None, currency: str = "EUR", key: str | None = None,
            booked: date = date(2026, 10, 20), **extra: Any) -> Payment:
    key = key or f"P{next(_numbers)}"
    return Payment(key=key, entry_id=key, booking_date=booked,
                   amount=Money(Decimal(amount), currency), bank_reference=key,
                   payer_name=name, payer_account=iban, remittance=remittance, **extra)
