from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from matching.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    read_customer,
    read_invoice,
    read_invoices,
    read_invoices_csv,
)

GOOD: dict[str, Any] = {
    "invoice_id": "INV-1", "customer_id": "C1", "customer_name": "Alpha", "currency": "JPY",
    "amount": "15000", "open_amount": "5000", "issue_date": "2026-11-01",
    "due_date": "2026-11-30", "reference": "INV-1",
}


def test_a_good_invoice_is_read_exactly() -> None:
    invoice = read_invoice(GOOD, 1)
    assert isinstance(invoice, Invoice)
    assert (invoice.amount.amount, invoice.open_amount.amount) == (Decimal(15000), Decimal(5000))
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID
    assert invoice.due_date == date(2026, 11, 30)
    assert invoice.kind is InvoiceKind.INVOICE


def test_open_amount_defaults_to_the_amount() -> None:
    invoice = read_invoice({**GOOD, "open_amount": ""}, 1)
    assert isinstance(invoice, Invoice) and invoice.status is InvoiceStatus.OPEN


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"amount": "150.5"}, "amount", "more decimals than JPY"),
    ({"amount": 1.5}, "amount", "floats lose cents"),
    ({"amount": "1e3"}, "amount", "decimal amount"),
    ({"amount": "0"}, "amount", "greater than zero"),
    ({"open_amount": "20000"}, "open_amount", "between 0 and the amount"),
    ({"due_date": "2026-10-01"}, "due_date", "before the issue date"),
    ({"issue_date": "2026-02-30"}, "issue_date", "YYYY-MM-DD"),
    ({"customer_id": None}, "customer_id", "required"),
    ({"reference": "a\x00b"}, "reference", "control characters"),
    ({"kind": "refund"}, "kind", "invoice or credit_note"),
    ({"status": "paid"}, "status", "open or cancelled"),
    ({"invoice_id": "x" * 101}, "invoice_id", "longer than 100"),
])
def test_bad_fields_are_named(change: dict[str, Any], field: str, words: str) -> None:
    errors = read_invoice({**GOOD, **change}, 7)
    assert isinstance(errors, list)
    assert [(e.index, e.field) for e in errors] == [(7, field)]
    assert words in errors[0].message


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    errors = read_invoice({**GOOD, "currency": "EURO", "amount": "-1", "issue_date": "x"}, 1)
    assert isinstance(errors, list)
    assert sorted(e.field for e in errors) == ["amount", "currency", "issue_date"]


def test_a_batch_refuses_duplicate_ids() -> None:
    invoices, errors = read_invoices([GOOD, GOOD])
    assert len(invoices) == 1
    assert [str(e) for e in errors] == [
        "record 2 (INV-1): invoice_id: appears twice in the batch (also record 1)"]


def test_csv_names_missing_columns_and_counts_lines_from_the_header() -> None:
    _, errors = read_invoices_csv("invoice_id,amount\nA,1\n")
    assert "missing column(s)" in errors[0].message
    header = ",".join(GOOD)
    row = ",".join(str(v) for v in {**GOOD, "currency": "XYZ"}.values())
    _, errors = read_invoices_csv(f"{header}\n{row}\n")
    assert (errors[0].index, errors[0].field) == (2, "currency")


def test_customers_need_valid_ibans() -> None:
    customer = read_customer({"customer_id": "C1", "name": "Alpha",
                              "ibans": ["de89 3704 0044 0532 0130 00"]}, 1)
    assert not isinstance(customer, list)
    assert customer.ibans == ("DE89370400440532013000",)
    errors = read_customer({"customer_id": "C1", "name": "A", "ibans": ["DE00123"]}, 1)
    assert isinstance(errors, list) and errors[0].field == "ibans"
