"""What one matching run works with: proposals, conversions, and what is still open.

A ``Proposal`` is one way a payment could settle one invoice or a set of invoices, with the
log-odds and the reasons for it; a ``Conversion`` is the payment's value in an invoice's
currency; a ``State`` holds what earlier payments of the run left open, so no invoice is
claimed beyond its open amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from matching.book import InvoiceBook, equal_keys
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


class State:
    """What is still open while a batch is allocated: the book's open amounts, with what
    the batch's own allocations changed laid over them. Starting a batch costs nothing
    (the book keeps its open amounts and equal-amount sets up to date); a batch costs the
    invoices it touches, not every open one."""

    __slots__ = ("_changed", "_customer_of", "_equal", "_open", "_settled",
                 "_touched", "book", "excluded", "settled", "tentative")

    def __init__(self, book: InvoiceBook,
                 excluded: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.book = book
        self.excluded = excluded                # (payment key, invoice id) refused
        self.tentative: set[str] = set()        # reserved by proposals under review
        self._open = book.open_amounts
        self._changed: dict[str, Decimal] = {}  # open amounts this batch changed
        self._touched: dict[str, set[str]] = {}  # ... by customer
        self._settled: set[str] = set()         # settled by this batch
        self.settled = _Settled(self)
        # Copies of the book's ``equal`` sets this batch changed: invoices by (customer or
        # "*", currency, amount) that count as open with that amount: their remaining
        # amount, or for those held under review their original one (until a person
        # decides, the ambiguity they make stays).
        self._equal: dict[tuple[str, str, Decimal], set[str]] = {}

    def remaining(self, invoice_id: str) -> Decimal:
        """What is left open of an invoice (0 for one that was not open to begin with)."""
        left = self._changed.get(invoice_id)
        return self._open.get(invoice_id, _ZERO) if left is None else left

    def set_remaining(self, invoice: Invoice, amount: Decimal) -> None:
        self._changed[invoice.invoice_id] = amount
        self._touched.setdefault(invoice.customer_id, set()).add(invoice.invoice_id)

    def touched(self, customer_id: str) -> set[str] | None:
        """The ids of the customer's invoices whose open amount this batch changed."""
        return self._touched.get(customer_id)

    def changed(self, invoice_id: str) -> bool:
        return invoice_id in self._changed

    def settle(self, invoice_id: str) -> None:
        self._settled.add(invoice_id)

    def is_settled(self, invoice_id: str) -> bool:
        """Settled by the batch, or an invoice the book holds that was not open."""
        return invoice_id in self._settled or (
            invoice_id in self.book.invoices and invoice_id not in self.book.open_ids)

    def allows(self, payment: Payment, invoice_id: str) -> bool:
        left = self._changed.get(invoice_id)
        if left is None:
            left = self._open.get(invoice_id, _ZERO)
        return left > 0 and (payment.key, invoice_id) not in self.excluded

    def equal(self, key: tuple[str, str, Decimal]) -> set[str] | frozenset[str]:
        """The invoices that count as open with an amount (``InvoiceBook.equal`` keys)."""
        same = self._equal.get(key)
        return same if same is not None else self.book.equal.get(key, _NONE)

    def count(self, invoice: Invoice, amount: Decimal) -> None:
        for key in equal_keys(invoice, amount):
            self._own(key).add(invoice.invoice_id)

    def uncount(self, invoice: Invoice, amount: Decimal) -> None:
        for key in equal_keys(invoice, amount):
            self._own(key).discard(invoice.invoice_id)

    def _own(self, key: tuple[str, str, Decimal]) -> set[str]:
        same = self._equal.get(key)
        if same is None:
            same = self._equal[key] = set(self.book.equal.get(key, ()))
        return same


class _Settled:
    """The invoices settled when a batch started or by it (``in`` is all it answers)."""

    __slots__ = ("_state",)

    def __init__(self, state: State) -> None:
        self._state = state

    def __contains__(self, invoice_id: object) -> bool:
        return isinstance(invoice_id, str) and self._state.is_settled(invoice_id)


_NONE: frozenset[str] = frozenset()
_ZERO = Decimal(0)
