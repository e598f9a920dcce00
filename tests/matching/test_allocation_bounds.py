"""Allocations stay inside their bounds: more than zero, never more than an invoice has open,
never more than the payment brought.

The case that broke it: a 95.95 payment naming the 5.00 invoice of a customer who also
owes 100.00. The set of both (105.00) looked "short by 9.05" and the whole shortfall was
written off against the last member, proposing -4.05 for it. A set whose shortfall reaches
a member's open amount is no set: that member would be paid nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.engine import Engine
from matching.fx import RateTable
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Payment, Settlement
from matching.payments import payments_from_statements
from parsers import mt940
from parsers.model import Charge, FxDetails
from parsers.money import Money, minor_units
from tests.corpus import CORPUS, SKIP_REASON
from tests.matching.helpers import invoice

HERE = Path(__file__).parent / "data"
KONTIST = "mt940/php-mt940__Kontist-sample"


def _two_invoices(issued: date) -> list[Invoice]:
    """The 5.00 invoice the payment names sorts last; its customer also owes 100.00. Both
    are issued after the payment was booked, so no single invoice is a convincing match."""
    due = date(issued.year, issued.month, 28)
    return [invoice("INV-00001", "100.00", name="Acme Plaster", issued=issued, due=due),
            invoice("INV-00002", "5.00", name="Acme Plaster", issued=issued, due=due)]


def check_bounds(allocations: list[Allocation], payments: list[Payment],
                 invoices: list[Invoice], rates: RateTable | None = None) -> None:
    """The engine's promises about amounts, for any input.

    * every allocation's amount is more than zero, in its invoice's currency;
    * per invoice, the amounts allocated plus the shortfalls written off (``short``) are at
      most its open amount. An overpayment's surplus is never allocated: the allocation
      takes the open amount and records the surplus as its ``difference``;
    * per payment, the amounts allocated are at most what it brought, converted into the
      invoice's currency as the engine converts it (the instructed amount the bank
      reports, else the rate table).
    """
    by_id = {i.invoice_id: i for i in invoices}
    by_key = {p.key: p for p in payments}
    taken: dict[str, Decimal] = defaultdict(Decimal)
    used: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for allocation in allocations:
        if allocation.invoice_id is None:
            assert allocation.amount is None
            continue
        assert allocation.amount is not None
        target = by_id[allocation.invoice_id]
        assert allocation.amount.currency == target.currency
        assert allocation.amount.amount > 0, allocation
        taken[allocation.invoice_id] += allocation.amount.amount
        if allocation.settlement is Settlement.SHORT and allocation.difference is not None:
            assert allocation.difference.amount > 0
            taken[allocation.invoice_id] += allocation.difference.amount
        used[(allocation.payment_key, target.currency)] += allocation.amount.amount
    for invoice_id, amount in taken.items():
        assert amount <= by_id[invoice_id].open_amount.amount, invoice_id
    for (key, currency), amount in used.items():
        assert len({c for k, c in used if k == key}) == 1  # one payment, one currency
        assert amount <= _paid_in(by_key[key], currency, rates or RateTable()), key


def _paid_in(payment: Payment, currency: str, rates: RateTable) -> Decimal:
    if payment.amount.currency == currency:
        return payment.amount.amount
    fx = payment.fx
    if fx is not None and fx.instructed_amount is not None \
            and fx.instructed_amount.currency == currency:
        return abs(fx.instructed_amount.amount)
    converted = rates.convert(payment.amount, currency, payment.booking_date)
    assert converted is not None
    return converted.amount.amount


def test_a_short_set_never_writes_off_more_than_a_member_has_open() -> None:
    """Our own file with the construct of the corpus case: it must never skip."""
    statements = mt940.parse((HERE / "short-combination.sta").read_bytes(),
                             source="short-combination.sta")
    payments = list(payments_from_statements(statements))
    invoices = _two_invoices(date(2026, 12, 1))
    allocations = Engine(invoices).match(payments)
    check_bounds(allocations, payments, invoices)
    assert [p.amount.amount for p in payments] == [Decimal("95.95")]


@pytest.mark.skipif(not (CORPUS / KONTIST).exists(), reason=SKIP_REASON)
def test_the_corpus_case_proposes_no_negative_amount() -> None:
    statements = mt940.parse((CORPUS / KONTIST).read_bytes(), source=KONTIST)
    payments = list(payments_from_statements(statements))
    invoices = _two_invoices(date(2026, 11, 1))
    allocations = Engine(invoices).match(payments)
    check_bounds(allocations, payments, invoices)


def test_a_short_settled_invoice_takes_no_second_payment() -> None:
    """992.50 settles 1000.00 (7.50 written off as fees): a later 7.50 naming it is not
    allocated to it, or the invoice would count as settled twice over."""
    payments = [Payment("A", "A", date(2026, 10, 20), Money(Decimal("992.50"), "EUR"),
                        remittance="INV-5"),
                Payment("B", "B", date(2026, 10, 21), Money(Decimal("7.50"), "EUR"),
                        remittance="INV-5")]
    invoices = [invoice("INV-5", "1000.00")]
    allocations = Engine(invoices).match(payments)
    check_bounds(allocations, payments, invoices)
    assert [a.invoice_id for a in allocations if a.payment_key == "B"] == [None]


# -- the property ------------------------------------------------------------------------

CURRENCIES = ("EUR", "USD", "JPY", "BHD")
BOOKED = date(2026, 10, 20)
RATES = RateTable([(date(2026, 10, 1), "EUR", "USD", Decimal("1.0800")),
                   (date(2026, 10, 1), "EUR", "JPY", Decimal("161.5")),
                   (date(2026, 10, 1), "EUR", "BHD", Decimal("0.407"))])
CUSTOMERS = [Customer(f"C{n}", name) for n, name in
             enumerate(("Alpha GmbH", "Beta Trading Ltd", "Gamma SARL"))]


def _amount(currency: str, units: int) -> Decimal:
    return Decimal(units).scaleb(-minor_units(currency))


# Strategies built once: Hypothesis checks every new strategy before it draws from it, and
# building them inside each draw took most of the property's time.
COUNTS = st.integers(1, 10)
CURRENCY = st.sampled_from(CURRENCIES)
CUSTOMER = st.sampled_from(CUSTOMERS)
ISSUE_DAY = st.integers(1, 30)
SHARE = st.sampled_from((Decimal(1), Decimal("0.5"), Decimal("0.97"), Decimal("1.03"),
                         Decimal("0.333")))
PAYER = st.one_of(st.none(), st.sampled_from([c.name for c in CUSTOMERS]))
INSTRUCTED_SHARE = st.sampled_from((Decimal(1), Decimal("0.99"), Decimal("0.5")))


@st.composite
def invoice_sets(draw: st.DrawFn) -> list[Invoice]:
    found = []
    for n in range(draw(COUNTS)):
        currency = draw(CURRENCY)
        units = draw(st.integers(1, 200_000))
        open_units = draw(st.one_of(st.just(units), st.integers(1, units)))
        customer = draw(CUSTOMER)
        found.append(invoice(f"INV-{n:04}", str(_amount(currency, units)), currency=currency,
                             open_amount=str(_amount(currency, open_units)),
                             customer=customer.customer_id, name=customer.name,
                             issued=date(2026, 9, draw(ISSUE_DAY))))
    return found


@st.composite
def payment_sets(draw: st.DrawFn, invoices: list[Invoice]) -> list[Payment]:
    found = []
    targets = st.sampled_from(invoices)
    quotes = st.lists(st.sampled_from([i.invoice_id for i in invoices]), max_size=2)
    for n in range(draw(COUNTS)):
        target = draw(targets)
        currency = draw(CURRENCY)
        # Near an invoice's open amount (whole, a part, a little short or over) or anything.
        share = draw(SHARE)
        near = RATES.convert(Money(target.open_amount.amount * share, target.currency),
                             currency, BOOKED)
        units = draw(st.integers(1, 300_000))
        amount = near.amount.amount if near and draw(st.booleans()) \
            else _amount(currency, units)
        quantum = Decimal(1).scaleb(-minor_units(currency))
        amount = max(amount.quantize(quantum), quantum)
        quoted = draw(quotes)
        payer = draw(PAYER)
        fx = None
        if currency != target.currency and draw(st.booleans()):
            instructed = target.open_amount.amount * draw(INSTRUCTED_SHARE)
            instructed = instructed.quantize(Decimal(1).scaleb(-minor_units(target.currency)))
            fx = FxDetails(Money(instructed, target.currency), None, target.currency, currency)
        charges: tuple[Charge, ...] = ()
        if draw(st.booleans()):
            charges = (Charge(Money(-_amount(currency, draw(st.integers(1, 5000))), currency)),)
        found.append(Payment(f"P{n}", f"E{n}", BOOKED, Money(amount, currency),
                             payer_name=payer, remittance=" ".join(quoted) or None, fx=fx,
                             charges=charges))
    return found


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_allocations_stay_within_the_payment_and_the_open_amounts(data: st.DataObject) -> None:
    invoices = data.draw(invoice_sets())
    payments = data.draw(payment_sets(invoices))
    allocations = Engine(invoices, CUSTOMERS, RATES).match(payments)
    check_bounds(allocations, payments, invoices, RATES)
    assert {a.payment_key for a in allocations} == {p.key for p in payments}
