"""Hypothesis strategies for the engine's update and reverse-index properties.

Small pools on purpose: a handful of invoice numbers, customers, names, IBANs and amounts,
so that generated invoices and payments collide the ways that matter (the same amount open
twice, a number quoted or mistyped, a customer's name or IBAN on a payment, a payment for
several invoices of one customer, a fee short, an FX payment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from hypothesis import strategies as st

from matching.fx import RateTable
from matching.invoices import Customer, Invoice, InvoiceKind
from matching.model import Payment
from parsers.model import Charge, FxDetails
from parsers.money import Money

NUMBERS = ("INV-10010", "INV-10011", "INV-10012", "INV-10021", "RE-2026-0042", "RE-2026-0043",
           "F-00475-K", "77001")
REFERENCES = (None, None, None, "RF18539007547034", "ORDER 55501", "INV-10013")
CUSTOMER_IDS = ("C1", "C2", "C3", "C4")
NAMES = ("Alpha GmbH", "Alpha Trading GmbH", "Beta Ltd", "Jane Doe", "Müller & Söhne KG",
         "Mueller Logistik AG")
IBANS = ("DE89370400440532013000", "GB29NWBK60161331926819", "FR1420041010050500013M02606")
AMOUNTS = ("100.00", "250.00", "350.00", "99.00", "1000.00", "400.00", "600.00", "45.50")
RATES = RateTable([(date(2026, 9, 1), "EUR", "USD", Decimal("1.1"))])


@st.composite
def invoices(draw: st.DrawFn, invoice_id: str | None = None) -> Invoice:
    amount = Decimal(draw(st.sampled_from(AMOUNTS)))
    open_amount = draw(st.sampled_from([amount, amount, amount, Decimal(0),
                                        (amount / 2).quantize(Decimal("0.01"))]))
    currency = draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"]))
    issued = draw(st.sampled_from([date(2026, 9, 1), date(2026, 10, 1), date(2026, 10, 25)]))
    return Invoice(
        invoice_id=invoice_id or draw(st.sampled_from(NUMBERS)),
        customer_id=draw(st.sampled_from(CUSTOMER_IDS)),
        amount=Money(amount, currency), open_amount=Money(open_amount, currency),
        issue_date=issued, due_date=draw(st.sampled_from([None, date(2026, 10, 31)])),
        customer_name=draw(st.sampled_from((None, *NAMES))),
        reference=draw(st.sampled_from(REFERENCES)),
        kind=draw(st.sampled_from([InvoiceKind.INVOICE] * 5 + [InvoiceKind.CREDIT_NOTE])),
        cancelled=draw(st.booleans().map(lambda b: b and draw(st.booleans()))))


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    return Customer(draw(st.sampled_from(CUSTOMER_IDS)), draw(st.sampled_from(NAMES)),
                    tuple(draw(st.lists(st.sampled_from(IBANS), max_size=2, unique=True))),
                    tuple(draw(st.lists(st.sampled_from(NAMES), max_size=1))))


def _mistyped(number: str) -> str:
    """One digit of the number changed (the last one), as people mistype."""
    last = max(i for i, c in enumerate(number) if c.isdigit())
    return number[:last] + str((int(number[last]) + 3) % 10) + number[last + 1:]


@st.composite
def remittances(draw: st.DrawFn) -> str | None:
    quoted = draw(st.lists(st.sampled_from(NUMBERS + ("RF18539007547034", "ORDER 55501")),
                           max_size=3))
    words = []
    for number in quoted:
        form = draw(st.sampled_from(["as is", "digits", "typo", "lower"]))
        digits = "".join(c for c in number if c.isdigit())
        words.append({"as is": number, "digits": digits, "typo": _mistyped(number),
                      "lower": number.lower().replace("-", " ")}[form])
    words += draw(st.lists(st.sampled_from(["Danke", "Rechnung", "payment", "2026-10-14"]),
                           max_size=2))
    return " ".join(words) or None


@st.composite
def payments(draw: st.DrawFn, key: str) -> Payment:
    currency = draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"]))
    base = Decimal(draw(st.sampled_from(AMOUNTS + ("450.00", "700.00", "1100.00"))))
    amount = base - draw(st.sampled_from([Decimal(0), Decimal(0), Decimal("2.50"),
                                          Decimal("12.00")]))
    fx = None
    if currency == "EUR" and draw(st.integers(0, 5)) == 0:
        fx = FxDetails(instructed_amount=Money(base, "USD"))
    charges: tuple[Charge, ...] = ()
    if draw(st.integers(0, 5)) == 0:
        charges = (Charge(Money(Decimal("2.50"), currency)),)
    return Payment(
        key=key, entry_id=key,
        booking_date=draw(st.sampled_from([date(2026, 9, 20), date(2026, 10, 20)])),
        amount=Money(amount, currency), bank_reference=key,
        payer_name=draw(st.sampled_from((None, "ALPHA GMBH", "Jane Doe", "MUELLER UND SOEHNE",
                                         "Stranger Person", "BETA LTD"))),
        payer_account=draw(st.sampled_from((None, None, *IBANS))),
        remittance=draw(remittances()), fx=fx, charges=charges)


@dataclass(frozen=True, slots=True)
class Step:
    """One change: put an invoice or customer, or remove one by id."""

    what: str                                # put_invoice, remove_invoice, put_customer ...
    invoice: Invoice | None = None
    customer: Customer | None = None
    key: str = ""


@st.composite
def steps(draw: st.DrawFn) -> Step:
    what = draw(st.sampled_from(["put_invoice", "put_invoice", "put_invoice",
                                 "remove_invoice", "put_customer", "remove_customer"]))
    if what == "put_invoice":
        return Step(what, invoice=draw(invoices()))
    if what == "put_customer":
        return Step(what, customer=draw(customers()))
    return Step(what, key=draw(st.sampled_from(
        NUMBERS if what == "remove_invoice" else CUSTOMER_IDS)))


def payment_lists(max_size: int = 6) -> st.SearchStrategy[list[Payment]]:
    return st.integers(0, max_size).flatmap(
        lambda n: st.tuples(*(payments(f"P{k}") for k in range(n))).map(list))
