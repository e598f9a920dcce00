from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.engine import Engine, reconcile
from matching.fx import read_rates_csv
from matching.invoices import Customer
from matching.model import Allocation, Decision, Settlement
from parsers.model import Charge, FxDetails
from parsers.money import Money
from tests.matching.helpers import invoice, payment

ALPHA = Customer("C1", "Alpha GmbH", ("DE89370400440532013000",))
BETA = Customer("C2", "Beta Trading Ltd")


def only(allocations: list[Allocation]) -> Allocation:
    assert len(allocations) == 1, allocations
    return allocations[0]


def decided(allocations: list[Allocation]) -> list[tuple[str | None, str | None, str]]:
    return [(a.invoice_id, str(a.amount.amount) if a.amount else None, a.decision.value)
            for a in allocations]


def test_a_clean_payment_is_automatic_and_explained() -> None:
    result = only(reconcile([payment("100.00", remittance="INV-1001", name="ALPHA GMBH")],
                            [invoice("INV-1001", "100.00"), invoice("INV-1002", "100.00")],
                            [ALPHA]))
    assert (result.invoice_id, result.decision, result.settlement) == (
        "INV-1001", Decision.AUTO, Settlement.FULL)
    assert result.confidence > 0.99
    assert {r.code for r in result.reasons} >= {"reference_exact", "amount_exact", "payer_name"}


def test_no_reference_but_known_iban_and_a_unique_amount_is_automatic() -> None:
    result = only(reconcile(
        [payment("250.00", name="A. GMBH", iban="DE89370400440532013000")],
        [invoice("INV-1", "250.00"), invoice("INV-2", "99.00"),
         invoice("INV-3", "250.00", customer="C2", name="Beta Trading Ltd")], [ALPHA, BETA]))
    assert (result.invoice_id, result.decision) == ("INV-1", Decision.AUTO)


def test_an_amount_alone_is_never_automatic() -> None:
    result = only(reconcile([payment("250.00", name="Unknown Person")],
                            [invoice("INV-1", "250.00")]))
    assert result.decision is not Decision.AUTO


def test_identical_amounts_of_different_customers_without_a_payer_are_not_guessed() -> None:
    result = only(reconcile([payment("75.00")], [
        invoice("INV-1", "75.00"), invoice("INV-2", "75.00", customer="C2", name="Beta")]))
    assert result.decision is not Decision.AUTO


def test_one_payment_for_several_invoices_of_a_customer() -> None:
    allocations = reconcile(
        [payment("350.00", remittance="INV-11 INV-12 INV-13", name="Alpha GmbH")],
        [invoice("INV-11", "100.00"), invoice("INV-12", "200.00"), invoice("INV-13", "50.00"),
         invoice("INV-14", "350.00", customer="C2", name="Beta Trading Ltd")], [ALPHA, BETA])
    assert sorted(decided(allocations)) == [("INV-11", "100.00", "auto"),
                                            ("INV-12", "200.00", "auto"),
                                            ("INV-13", "50.00", "auto")]


def test_instalments_fill_an_invoice_and_then_settle_it() -> None:
    payments = [payment(amount, remittance="Rate INV-77", name="Alpha GmbH", key=key,
                        booked=date(2026, 10, day))
                for amount, key, day in (("300.00", "A", 5), ("300.00", "B", 15),
                                         ("400.00", "C", 25))]
    allocations = reconcile(payments, [invoice("INV-77", "1000.00")], [ALPHA])
    assert [(a.payment_key, str(a.amount.amount) if a.amount else None, a.settlement)
            for a in allocations] == [
        ("A", "300.00", Settlement.PARTIAL), ("B", "300.00", Settlement.PARTIAL),
        ("C", "400.00", Settlement.FULL)]
    assert all(a.decision is Decision.AUTO for a in allocations)


def test_a_bank_fee_short_payment_settles_with_the_difference_recorded() -> None:
    result = only(reconcile(
        [payment("992.50", remittance="INV-5", name="Alpha GmbH",
                 charges=(Charge(Money(Decimal("-7.50"), "EUR")),))],
        [invoice("INV-5", "1000.00")], [ALPHA]))
    assert (result.amount, result.settlement, result.difference, result.decision) == (
        Money(Decimal("992.50"), "EUR"), Settlement.SHORT, Money(Decimal("7.50"), "EUR"),
        Decision.AUTO)
    assert "amount_short_by_charges" in {r.code for r in result.reasons}
    unreported = only(reconcile([payment("992.50", remittance="INV-5", name="Alpha GmbH")],
                                [invoice("INV-5", "1000.00")], [ALPHA]))
    assert (unreported.amount, unreported.settlement, unreported.difference) == (
        Money(Decimal("992.50"), "EUR"), Settlement.SHORT, Money(Decimal("7.50"), "EUR"))


def test_an_overpayment_allocates_the_open_amount_and_records_the_surplus() -> None:
    result = only(reconcile([payment("1200.00", remittance="INV-5", name="Alpha GmbH")],
                            [invoice("INV-5", "1000.00")], [ALPHA]))
    assert (result.amount, result.settlement, result.difference) == (
        Money(Decimal("1000.00"), "EUR"), Settlement.OVERPAID, Money(Decimal("200.00"), "EUR"))


def test_a_second_payment_of_a_paid_invoice_is_not_allocated_again() -> None:
    paid = invoice("INV-9", "500.00", open_amount="0")
    also_open = invoice("INV-10", "500.00")
    result = only(reconcile([payment("500.00", remittance="INV-9", name="Alpha GmbH")],
                            [paid, also_open], [ALPHA]))
    assert result.invoice_id != "INV-9"
    assert result.decision is not Decision.AUTO
    assert "quotes_settled_invoice" in {r.code for r in result.reasons}


def test_two_payments_of_one_invoice_in_one_batch_allocate_it_once() -> None:
    allocations = reconcile(
        [payment("500.00", remittance="INV-9", name="Alpha GmbH", key="FIRST"),
         payment("500.00", remittance="INV-9", name="Alpha GmbH", key="AGAIN")],
        [invoice("INV-9", "500.00")], [ALPHA])
    assert sorted(decided(allocations), key=str) == sorted(
        [("INV-9", "500.00", "auto"), (None, None, "unmatched")], key=str)


def test_a_wrong_reference_does_not_win_over_amount_and_payer() -> None:
    result = only(reconcile(
        [payment("120.00", remittance="INV-900", iban="DE89370400440532013000")],
        [invoice("INV-100", "120.00"),
         invoice("INV-900", "870.00", customer="C2", name="Beta Trading Ltd")], [ALPHA, BETA]))
    assert result.invoice_id != "INV-900"
    assert result.decision is not Decision.AUTO


def test_fx_from_the_rates_table_and_from_what_the_bank_reports() -> None:
    rates, _ = read_rates_csv("date,from_currency,to_currency,rate\n2026-10-19,EUR,USD,1.0800\n")
    by_table = only(reconcile([payment("925.93", remittance="INV-U1", name="Alpha GmbH")],
                              [invoice("INV-U1", "1000.00", currency="USD")], [ALPHA], rates))
    assert (by_table.invoice_id, by_table.decision) == ("INV-U1", Decision.AUTO)
    assert "nearest earlier" in by_table.explanation
    reported = only(reconcile(
        [payment("920.00", remittance="INV-U1", name="Alpha GmbH",
                 fx=FxDetails(Money(Decimal("1000.00"), "USD"), Decimal("0.92"), "USD", "EUR"))],
        [invoice("INV-U1", "1000.00", currency="USD")], [ALPHA]))
    assert (reported.amount, reported.settlement) == (Money(Decimal("1000.00"), "USD"),
                                                      Settlement.FULL)


def test_a_payment_without_a_rate_is_not_converted_by_guess() -> None:
    result = only(reconcile([payment("925.93", remittance="INV-U1", name="Alpha GmbH")],
                            [invoice("INV-U1", "1000.00", currency="USD")], [ALPHA]))
    assert result.decision is Decision.UNMATCHED


def test_payments_before_the_invoice_was_issued_are_doubted() -> None:
    result = only(reconcile([payment("100.00", remittance="INV-1", booked=date(2026, 9, 1))],
                            [invoice("INV-1", "100.00")]))
    assert "paid_before_issued" in {r.code for r in result.reasons}
    assert result.decision is not Decision.AUTO


amounts = st.integers(1, 500).map(lambda n: f"{n}.00")


@settings(max_examples=60, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=12), st.lists(
    st.tuples(amounts, st.integers(0, 11), st.booleans()), min_size=1, max_size=12))
def test_allocations_never_exceed_what_is_open_or_paid_and_are_deterministic(
        invoice_amounts: list[str], payments_spec: list[tuple[str, int, bool]]) -> None:
    invoices = [invoice(f"INV-{n:04}", a, customer=f"C{n % 3}", name=f"Customer {n % 3}")
                for n, a in enumerate(invoice_amounts)]
    payments = [payment(a, remittance=f"INV-{ref:04}" if quoted else None,
                        name=f"Customer {ref % 3}", key=f"P{n}")
                for n, (a, ref, quoted) in enumerate(payments_spec)]
    first = Engine(invoices).match(payments)
    assert first == Engine(invoices).match(list(payments))
    taken: dict[str, Decimal] = {}
    used: dict[str, Decimal] = {}
    for allocation in first:
        if allocation.invoice_id is None or allocation.decision is Decision.UNMATCHED:
            continue
        assert allocation.amount is not None
        used[allocation.payment_key] = used.get(allocation.payment_key, Decimal(0)) \
            + allocation.amount.amount
        taken[allocation.invoice_id] = taken.get(allocation.invoice_id, Decimal(0)) \
            + allocation.amount.amount
    opened = {i.invoice_id: i.open_amount.amount for i in invoices}
    paid = {p.key: p.amount.amount for p in payments}
    assert all(taken[i] <= opened[i] for i in taken)
    assert all(used[k] <= paid[k] for k in used)
    assert {a.payment_key for a in first} == set(paid)
