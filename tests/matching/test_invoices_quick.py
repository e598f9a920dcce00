"""The quick reader of invoice records takes only what the careful one accepts, identically.

``read_invoices`` reads each record with ``_quick_invoice`` first (one pass, for big CSV
files) and with ``read_invoice`` when the quick one declines; the quick one must never
accept a record the careful one refuses, nor read one differently.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.invoices import Invoice, _quick_invoice, read_invoice

FIELDS = {
    "invoice_id": ["INV-1", " INV-2 ", "", "x" * 101, "A\x01B", None],
    "customer_id": ["C1", "", "  ", None],
    "currency": ["EUR", "JPY", "BHD", "eur", "XXX", "DEM", " EUR", None],
    "amount": ["100", "100.50", "100.505", "+7", "-5", "0", ".5", "5.", ".", "1e3", "NaN",
               " 12.00 ", "1,00", "١٢", "", None],
    "open_amount": ["100", "0", "50.25", "", "200", "-1", "0.001", None],
    "issue_date": ["2026-10-01", "2026-13-01", "2026-W40-1", "20261001", " 2026-10-01", "",
                   None],
    "due_date": ["2026-10-31", "2026-09-01", "2026-10-0", "", None],
    "customer_name": ["Alpha GmbH", "", "x" * 501, "Tab\there", None],
    "reference": ["RF18539007547034", "", None, "x" * 500],
    "related_invoice_id": [None, "", "INV-0", "y" * 101],
    "kind": [None, "", "invoice", "credit_note", "other"],
    "status": [None, "", "open", "cancelled", "paid"],
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, object]:
    """A good record (the first value of each field) with up to three fields changed."""
    record: dict[str, object] = {name: values[0] for name, values in FIELDS.items()}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3)):
        value: object = draw(st.sampled_from(FIELDS[name]))
        if draw(st.integers(0, 10)) == 0:
            value = draw(st.sampled_from([7, 7.5, ["x"], True]))
        if value is None and draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = value
    return record


@settings(max_examples=2000, deadline=None)
@given(records())
def test_the_quick_reader_reads_as_the_careful_one_or_declines(record: dict[str, object]) -> None:
    quick = _quick_invoice(record)
    if quick is not None:
        careful = read_invoice(record, 1)
        assert isinstance(careful, Invoice)
        assert quick == careful


def test_a_plain_row_is_read_quickly() -> None:
    row = {"invoice_id": "INV-1", "customer_id": "C1", "customer_name": "Alpha",
           "currency": "EUR", "amount": "100.00", "open_amount": "40.00",
           "issue_date": "2026-10-01", "due_date": "2026-10-31", "reference": ""}
    assert _quick_invoice(row) == read_invoice(row, 1)
