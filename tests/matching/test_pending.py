"""The reverse index of unmatched payments never misses one a change concerns.

When invoices or customers change, a service re-matches only the payments
``PendingIndex.affected`` returns; a payment whose match would differ but is not returned
would keep a stale result (unmatched though its invoice came, or waiting on one gone).
The property: for generated invoices, customers, payments and changes, every payment whose
``Engine.match`` result differs after the changes, matched alone or in one batch with the
others, is among those returned.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Payment
from matching.pending import PendingIndex
from matching.pending_keys import SlotMultimap
from tests.matching.helpers import invoice, payment
from tests.matching.strategies import RATES, Step, customers, invoices, payment_lists, steps
from tests.matching.test_updates import apply, unique_invoices


def by_key(allocations: list[Allocation]) -> dict[str, list[Allocation]]:
    found: dict[str, list[Allocation]] = {}
    for allocation in allocations:
        found.setdefault(allocation.payment_key, []).append(allocation)
    return found


@settings(max_examples=400, deadline=None)
@given(st.lists(invoices(), max_size=8).map(unique_invoices),
       st.lists(customers(), max_size=3), payment_lists(8),
       st.lists(steps(), min_size=1, max_size=3))
def test_every_payment_whose_match_a_change_alters_is_found(
        start: list[Invoice], known: list[Customer], payments: list[Payment],
        changes: list[Step]) -> None:
    engine = Engine(start, known, RATES)
    batch_before = by_key(engine.match(payments))
    alone_before = {p.key: engine.match([p]) for p in payments}
    in_batch = PendingIndex(engine, payments)
    alone = PendingIndex(engine, payments)
    found_batch: set[str] = set()
    found_alone: set[str] = set()
    for step in changes:
        change = apply(engine, step)
        found_batch |= in_batch.affected(change)
        found_alone |= alone.affected(change, batch=False)
    assert found_alone <= found_batch
    batch_after = by_key(engine.match(payments))
    for one in payments:
        if engine.match([one]) != alone_before[one.key]:
            assert one.key in found_alone, one
        if batch_after[one.key] != batch_before[one.key]:
            assert one.key in found_batch, one


def test_a_change_reaches_the_payments_it_concerns_and_no_others() -> None:
    engine = Engine([invoice("INV-10001", "100.00"),
                     invoice("INV-20001", "777.00", customer="C2", name="Beta Ltd")],
                    [Customer("C1", "Alpha GmbH", ("DE89370400440532013000",))])
    named = payment("100.00", remittance="INV-10001", key="named")
    by_iban = payment("55.00", iban="DE89370400440532013000", key="iban")
    by_amount = payment("100.00", name="Someone", key="amount")
    by_typo = payment("40.00", remittance="INV-10002", key="typo")   # mistyped, or a new one
    unrelated = payment("3.50", remittance="Danke", name="Nobody", key="unrelated")
    index = PendingIndex(engine, [named, by_iban, by_amount, by_typo, unrelated])
    assert len(index) == 5
    paid = engine.put_invoices([invoice("INV-10001", "100.00", open_amount="0")])
    assert index.affected(paid, batch=False) == {"named", "iban", "amount", "typo"}
    other = engine.put_invoices([invoice("INV-20001", "780.00", customer="C2", name="Beta Ltd")])
    assert index.affected(other) == set()
    new = engine.put_invoices([invoice("INV-10002", "40.00", customer="C3", name="Gamma",
                                       issued=date(2026, 10, 2))])
    assert "typo" in index.affected(new, batch=False)
    assert "unrelated" not in index.affected(
        engine.put_customers([Customer("C2", "Beta Ltd", ("GB29NWBK60161331926819",))]))
    index.remove(["named", "nobody"])
    assert "named" not in index and len(index) == 4


def test_a_payment_added_again_replaces_the_one_held() -> None:
    engine = Engine([invoice("INV-10001", "100.00"),
                     invoice("INV-30001", "60.00", customer="C2", name="Beta Ltd")])
    index = PendingIndex(engine, [payment("100.00", remittance="INV-10001", key="P")])
    index.add([payment("60.00", remittance="INV-30001", key="P")])
    assert len(index) == 1
    change = engine.put_invoices([invoice("INV-10001", "100.00", open_amount=str(Decimal(0)))])
    assert index.affected(change) == set()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.integers(0, 40)), max_size=300),
       st.sets(st.integers(0, 40)))
def test_packed_keys_return_every_slot_held_under_a_key(
        pairs: list[tuple[str, int]], dropped: set[int]) -> None:
    held = SlotMultimap()
    for key, slot in pairs:
        held.put([key], slot)
    for key, _ in pairs:
        assert {s for k, s in pairs if k == key} <= held.get([key])
    kept = [s for s in range(41) if s not in dropped]
    held.renumber([kept.index(s) if s in kept else -1 for s in range(41)])
    for key, _ in pairs:
        assert {kept.index(s) for k, s in pairs if k == key and s in kept} <= held.get([key])
    assert len(held) == sum(1 for _, s in pairs if s in kept)


def test_payments_replaced_many_times_are_still_found_once_their_slots_are_renumbered(
        ) -> None:
    engine = Engine([invoice("INV-10001", "100.00")])
    index = PendingIndex(engine, [payment("7.00", remittance="INV-10001", key="kept")])
    for n in range(3000):  # each add of a key held gives it a new slot: renumbered now and then
        index.add([payment("9.00", remittance=f"INV-1000{n % 2 + 1}", key="moving")])
        index.remove([f"gone-{n - 1}"])
        index.add([payment("5.00", remittance="INV-10001", key=f"gone-{n}")])
    assert len(index) == 3
    change = engine.put_invoices([invoice("INV-10001", "100.00", open_amount="0")])
    assert index.affected(change, batch=False) == {"kept", "moving", "gone-2999"}
