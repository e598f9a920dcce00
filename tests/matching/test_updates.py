"""An engine kept up to date by changes decides as one built anew on the result.

A service keeps one engine per tenant and tells it what changed (``put_invoices``,
``remove_invoices``, ``put_customers``, ``remove_customers``); every index it keeps
(references, payers, open invoices, a customer's invoices, amounts) must then hold what a
fresh build on the final invoices and customers holds, or payments would be matched
against invoices that are gone or miss those that came.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.book import Change, InvoiceBook
from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Payment
from parsers.money import Money
from tests.matching.helpers import invoice, payment
from tests.matching.strategies import (
    RATES,
    Step,
    customers,
    invoices,
    payment_lists,
    steps,
)


def apply(engine: Engine, step: Step) -> Change:
    if step.what == "put_invoice":
        assert step.invoice is not None
        return engine.put_invoices([step.invoice])
    if step.what == "remove_invoice":
        return engine.remove_invoices([step.key])
    if step.what == "put_customer":
        assert step.customer is not None
        return engine.put_customers([step.customer])
    return engine.remove_customers([step.key])


def final_state(invoice_list: list[Invoice], customer_list: list[Customer],
                changes: list[Step]) -> tuple[list[Invoice], list[Customer]]:
    """The invoices and customers after the changes, kept as dicts keep them."""
    by_id = {i.invoice_id: i for i in invoice_list}
    by_customer = {c.customer_id: c for c in customer_list}
    for step in changes:
        if step.invoice is not None:
            by_id[step.invoice.invoice_id] = step.invoice
        elif step.customer is not None:
            by_customer[step.customer.customer_id] = step.customer
        elif step.what == "remove_invoice":
            by_id.pop(step.key, None)
        else:
            by_customer.pop(step.key, None)
    return list(by_id.values()), list(by_customer.values())


def unique_invoices(items: list[Invoice]) -> list[Invoice]:
    return list({i.invoice_id: i for i in items}.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(invoices(), max_size=8).map(unique_invoices),
       st.lists(customers(), max_size=3), st.lists(steps(), min_size=1, max_size=6),
       payment_lists())
def test_an_updated_engine_matches_as_one_built_on_the_result(
        start: list[Invoice], known: list[Customer], changes: list[Step],
        payments: list[Payment]) -> None:
    updated = Engine(start, known, RATES)
    for step in changes:
        apply(updated, step)
    final_invoices, final_customers = final_state(start, known, changes)
    fresh = Engine(final_invoices, final_customers, RATES)
    assert open_indexes(updated.book) == open_indexes(fresh.book)
    assert updated.match(payments) == fresh.match(payments)
    for one in payments:
        assert updated.match([one]) == fresh.match([one])
    # A batch works on its own view of what is open: the book is as it was after it.
    assert open_indexes(updated.book) == open_indexes(fresh.book) == open_indexes(
        Engine(final_invoices, final_customers, RATES).book)


def open_indexes(book: InvoiceBook) -> tuple[object, ...]:
    """Everything the book keeps of its open invoices, for comparison."""
    return (book.open_ids, book.open_amounts, book.by_customer, book.customer_amounts,
            book.equal, book.amounts, book.amount_keys)


def test_a_change_says_what_each_invoice_and_customer_was_and_is() -> None:
    engine = Engine([invoice("INV-1", "100.00"), invoice("INV-2", "50.00")],
                    [Customer("C1", "Alpha GmbH")])
    paid = invoice("INV-1", "100.00", open_amount="0.00")
    change = engine.put_invoices([paid, invoice("INV-2", "50.00")])   # INV-2 as it was
    assert [(b and b.invoice_id, a and a.open_amount) for b, a in change.invoices] == [
        ("INV-1", Money(Decimal("0.00"), "EUR"))]
    assert change.customers == ()   # the name the invoices give is the customer's own
    renamed = engine.put_invoices([invoice("INV-3", "10.00", name="Alpha Trading")])
    assert [(b.aliases if b else None, a.aliases if a else None)
            for b, a in renamed.customers] == [((), ("Alpha Trading",))]
    gone = engine.remove_invoices(["INV-3", "INV-404"])
    assert [(b and b.invoice_id, a) for b, a in gone.invoices] == [("INV-3", None)]
    assert not engine.remove_invoices(["INV-404"])


def test_a_paid_invoice_is_no_longer_offered_and_a_new_one_is() -> None:
    engine = Engine([invoice("INV-10001", "100.00")], [Customer("C1", "Alpha GmbH")])
    pay = payment("100.00", remittance="INV-10001", name="Alpha GmbH")
    assert engine.match([pay])[0].invoice_id == "INV-10001"
    engine.put_invoices([invoice("INV-10001", "100.00", open_amount="0")])
    assert engine.match([pay])[0].invoice_id is None
    engine.put_invoices([invoice("INV-10002", "100.00", issued=date(2026, 10, 2))])
    found = engine.match([pay])[0]   # scored against the new one, which it does not name
    assert {"quotes_settled_invoice", "amount_unique"} <= {r.code for r in found.reasons}


def test_a_customers_iban_learned_later_brings_its_invoices_in() -> None:
    engine = Engine([invoice("INV-1", "250.00"),
                     invoice("INV-2", "250.00", customer="C2", name="Beta Ltd")])
    pay = payment("250.00", name="Someone", iban="DE89370400440532013000")
    assert engine.match([pay])[0].decision.value != "auto"
    engine.put_customers([Customer("C1", "Alpha GmbH", ("DE89370400440532013000",))])
    allocation: Allocation = engine.match([pay])[0]
    assert (allocation.invoice_id, allocation.decision.value) == ("INV-1", "auto")
    engine.remove_customers(["C1"])
    assert engine.match([pay])[0].decision.value != "auto"
