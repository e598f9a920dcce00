"""What one matching run works with: proposals, conversions, and what is still open.

A ``Proposal`` is one way a payment could settle one invoice or a set of invoices, with the
log-odds and the reasons for it; a ``Conversion`` is the payment's value in an invoice's
currency; a ``State`` holds what earlier payments of the run left open, so no invoice is
claimed beyond its open amount.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from matching.invoices import Invoice
from matching.model import Payment, Reason, Settlement
from parsers.money import Money


@dataclass(frozen=True, slots=True)
class Conversion:
    amount: Money
    converted: bool          # through a rate table (approximate), not reported by the bank
    rate: Decimal | None
    reason: Reason | None


@dataclass(slots=True)
class Proposal:
    invoice_ids: tuple[str, ...]
    applied: list[Money]
    settlement: Settlement
    difference: Money | None
    logit: float
    reasons: list[Reason]
    rate: Decimal | None = None

    @property
    def rank(self) -> tuple[float, int, tuple[str, ...]]:
        return (-self.logit, len(self.invoice_ids), self.invoice_ids)


@dataclass(slots=True)
class State:
    """What is still open while a batch is allocated."""

    remaining: dict[str, Decimal]
    settled: set[str] = field(default_factory=set)
    excluded: frozenset[tuple[str, str]] = frozenset()   # (payment key, invoice id) refused
    tentative: set[str] = field(default_factory=set)    # reserved by proposals under review
    # Invoices by (customer or "*", currency, amount) that count as open with that amount:
    # their remaining amount, or for those held under review their original one (until a
    # person decides, the ambiguity they make stays).
    equal: dict[tuple[str, str, Decimal], set[str]] = field(
        default_factory=lambda: defaultdict(set))

    def allows(self, payment: Payment, invoice_id: str) -> bool:
        return self.remaining.get(invoice_id, Decimal(0)) > 0 and (
            payment.key, invoice_id) not in self.excluded

    def count(self, invoice: Invoice, amount: Decimal) -> None:
        for scope in (invoice.customer_id, "*"):
            self.equal[(scope, invoice.currency, amount)].add(invoice.invoice_id)

    def uncount(self, invoice: Invoice, amount: Decimal) -> None:
        for scope in (invoice.customer_id, "*"):
            self.equal[(scope, invoice.currency, amount)].discard(invoice.invoice_id)
