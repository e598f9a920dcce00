"""How a payment spread over several invoices is divided in its own currency."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gateway.reconcile_apply import payment_shares as _payment_shares


@given(st.integers(1, 10**9), st.sampled_from([0, 2, 3]),
       st.lists(st.integers(1, 10**9), min_size=1, max_size=6))
def test_shares_add_up_to_the_payment_and_each_uses_some_of_it(
        units: int, places: int, weights: list[int]) -> None:
    paid = Decimal(units).scaleb(-places)
    amounts = [Decimal(w).scaleb(-2) for w in weights]
    shares = _payment_shares(paid, amounts)
    assert sum(shares) == paid
    assert all(s == s.quantize(Decimal(1).scaleb(-places)) for s in shares)
    if units >= len(amounts):  # enough minor units for every allocation to get one
        assert all(s > 0 for s in shares)
