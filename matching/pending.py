"""Unmatched payments, indexed by what an invoice or customer change could alter for them.

A service keeps one engine per tenant (``matching.engine.Engine``) and, beside it, the
payments still waiting for an invoice in a ``PendingIndex``. When invoices or customers
change it applies the change to the engine, hands the returned ``matching.book.Change``
to ``affected``, and re-matches only the payments that returns, not all of them.

The index keys each payment by everything the engine weighs for it:

- references: the invoices its texts name (exact, reformatted, mistyped), and the
  signatures of its texts (``references.text_signatures``), which share a key with any
  invoice whose coming or going could change what the texts name (a typo that stops being
  one, digits that become ambiguous);
- who paid: its IBAN and the prefixes of its name's words (the payer index's keys), and
  the customers it was recognised as;
- customers: those it was recognised as and those of the invoices it names; every open
  invoice of theirs is weighed, alone or in a set (several invoices, one payment);
- amounts: its value in each currency it can be valued in (its own, the instructed
  amount's, those the rate table reaches). An invoice of exactly that open amount changes
  whether a candidate is "the only one open" of its amount; and, unless the payer is known,
  the invoices whose open amount lies in the window the payment is compared with
  (exactly, or short by fees) are candidates by amount alone.

``affected(change)`` returns the keys of every payment whose ``Engine.match`` result could
differ after the change, matched alone (the payments the change reaches directly) and
matched in one batch with all the others (``batch=True``, the default): there, a payment
the change reaches may take another invoice than before, which reaches the payments that
could take that invoice, and so on. What a payment can take without naming it or being its
customer's is an invoice of exactly its amount: anything else found by amount alone scores
below the review floor and is never allocated (checked against the engine's weights and
settings when the index is made; otherwise every invoice in the window is followed). An
invoice's open amount in a batch is its own, or less after partial payments, which only
payments naming it make; those amounts are followed too.

The index must hear of every change made to its engine, in order, right after each is
made (its payments' evidence is brought up to date then); ``add`` a payment again to
replace it, ``remove`` those matched. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations
from typing import TypeVar

from matching.book import Change, is_open
from matching.engine import AMBIGUITY_MARGIN, Engine, is_known_payer
from matching.invoices import Customer, Invoice
from matching.model import Payment
from matching.normalize import compact, name_tokens
from matching.payers import NAME_PREFIX
from matching.pending_keys import MAX_SLOTS, SlotMultimap
from matching.references import invoice_signatures, text_signatures
from matching.scoring import (
    AMOUNT_FEE,
    AMOUNT_FEE_REPORTED,
    AMOUNT_FX,
    AMOUNT_OVER_SMALL,
    AMOUNT_PARTIAL_WITH_REFERENCE,
    PRIOR,
    confidence,
)

logger = logging.getLogger(__name__)

# The best an invoice found by amount alone scores when the payment is not exactly its
# open amount (no reference, not the payer's customer, so no uniqueness either).
_NEAR_AMOUNT_BEST = PRIOR + max(AMOUNT_FEE, AMOUNT_FEE_REPORTED, AMOUNT_FX, AMOUNT_OVER_SMALL,
                                AMOUNT_PARTIAL_WITH_REFERENCE)
_MAX_PARTIAL_PAYERS = 8   # payments naming one invoice whose partial sums are followed
_K = TypeVar("_K", str, tuple[str, Decimal])


@dataclass(slots=True)
class _Entry:
    payment: Payment
    slot: int                                             # its keys' slot (pending_keys)
    values: dict[str, tuple[Decimal, Decimal, Decimal]]   # currency: (value, low, high)
    hits: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    known_payer: bool = False


@dataclass(slots=True)
class _Walk:
    """One ``affected`` call's bookkeeping."""

    found: set[str] = field(default_factory=set)       # payments whose result may differ
    followed: set[str] = field(default_factory=set)    # ... whose allocations may differ
    queue: list[str] = field(default_factory=list)     # followed, not yet expanded
    touched: set[str] = field(default_factory=set)     # invoices whose state may differ
    before: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    named_before: dict[str, set[str]] = field(default_factory=dict)  # invoice: payments

    def reach(self, keys: Iterable[str], *, follow: bool) -> None:
        for key in keys:
            self.found.add(key)
            if follow and key not in self.followed:
                self.followed.add(key)
                self.queue.append(key)


class PendingIndex:
    """The payments an engine left unmatched, keyed by what a change could alter for them."""

    def __init__(self, engine: Engine, payments: Iterable[Payment] = ()) -> None:
        self.engine = engine
        config = engine.config
        auto_logit = _logit(config.auto_threshold)
        # Can an invoice found by amount alone, not exactly paid, be allocated or make the
        # best uncertain? Not with the engine's weights and default settings; if settings
        # allow it, every invoice in a payment's window is followed, not only exact ones.
        self._near_counts = (confidence(_NEAR_AMOUNT_BEST) >= config.review_floor
                             or auto_logit - AMBIGUITY_MARGIN <= _NEAR_AMOUNT_BEST)
        self._fee_max = config.fee_tolerance_max
        self._entries: dict[str, _Entry] = {}
        # Text signatures and payer keys, some 80 a payment, packed (pending_keys); a
        # payment's slot is its number there, None once it is gone.
        self._by_signature = SlotMultimap()
        self._by_payer_key = SlotMultimap()
        self._key_at: list[str | None] = []
        self._by_hit: dict[str, set[str]] = {}
        self._by_customer: dict[str, set[str]] = {}
        self._values: dict[str, list[tuple[Decimal, str]]] = {}   # currency: (value, key)
        self._windows: dict[str, list[tuple[Decimal, str]]] = {}  # own currency: (low, key)
        # Open amounts an invoice can have in a batch after partial payments naming it.
        # invoice: (currency, amounts), amounts None when too many to list
        self._steps_of: dict[str, tuple[str, frozenset[Decimal] | None]] = {}
        self._by_step: dict[tuple[str, Decimal], set[str]] = {}
        self._wide: dict[str, set[str]] = {}                       # currency: invoice ids
        self.add(payments)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def keys(self) -> Iterator[str]:
        return iter(self._entries)

    def payment(self, key: str) -> Payment:
        """The payment held under ``key`` (KeyError when none is)."""
        return self._entries[key].payment

    # -- payments in and out ------------------------------------------------------------

    def add(self, payments: Iterable[Payment]) -> None:
        """Index payments (one of a key already held replaces it), against the engine's
        invoices and customers as they are now."""
        named: set[str] = set()
        for payment in payments:
            if payment.key in self._entries:
                named |= self._unindex(payment.key)
            if len(self._key_at) == MAX_SLOTS:
                self._renumber()
            entry = _Entry(payment, len(self._key_at), self.engine.values_of(payment))
            self._key_at.append(payment.key)
            self._entries[payment.key] = entry
            self._by_signature.put(_text_signatures(payment), entry.slot)
            self._by_payer_key.put(_payer_keys(payment), entry.slot)
            for currency, (value, low, _) in entry.values.items():
                bisect.insort(self._values.setdefault(currency, []), (value, payment.key))
                if currency == payment.amount.currency:
                    bisect.insort(self._windows.setdefault(currency, []), (low, payment.key))
            named |= self._learn(entry)
        self._restep(named)
        self._renumber_if_sparse()

    def remove(self, keys: Iterable[str]) -> None:
        """Forget payments by key (matched, or gone): a key not held is no error."""
        named: set[str] = set()
        for key in keys:
            if key in self._entries:
                named |= self._unindex(key)
        self._restep(named)
        self._renumber_if_sparse()

    def _unindex(self, key: str) -> set[str]:
        entry = self._entries.pop(key)
        self._key_at[entry.slot] = None   # its pairs stay packed until _renumber
        _take(self._by_hit, entry.hits, key)
        _take(self._by_customer, entry.customers, key)
        for currency, (value, low, _) in entry.values.items():
            _delete(self._values, currency, (value, key))
            if currency == entry.payment.amount.currency:
                _delete(self._windows, currency, (low, key))
        return set(entry.hits)

    def _renumber_if_sparse(self) -> None:
        """Renumber once more than half the slots are of payments gone (replaced or
        removed)."""
        if len(self._key_at) > 2 * len(self._entries) + 1024:
            self._renumber()

    def _renumber(self) -> None:
        """Drop the packed pairs of payments gone, numbering those held 0, 1, ..."""
        new: list[int] = []
        kept: list[str | None] = []
        for key in self._key_at:
            new.append(len(kept) if key is not None else -1)
            if key is not None:
                self._entries[key].slot = len(kept)
                kept.append(key)
        self._by_signature.renumber(new)
        self._by_payer_key.renumber(new)
        self._key_at = kept

    def _slots(self, index: SlotMultimap, keys: Iterable[str]) -> set[str]:
        """The payments held under any of ``keys``."""
        at = self._key_at
        return {key for slot in index.get(keys) if (key := at[slot]) is not None}

    def _learn(self, entry: _Entry) -> set[str]:
        """Find (again) what the engine makes of the payment's texts and payer; returns
        the invoices named before or now."""
        key, payment = entry.payment.key, entry.payment
        engine = self.engine
        old_hits = entry.hits
        _take(self._by_hit, entry.hits, key)
        _take(self._by_customer, entry.customers, key)
        hits = engine.references.find(remittance=payment.remittance,
                                      end_to_end_id=payment.end_to_end_id,
                                      creditor_reference=payment.creditor_reference)
        payers = engine.payers.match(name=payment.payer_name, iban=payment.payer_account)
        entry.hits = frozenset(h.invoice_id for h in hits)
        entry.customers = frozenset({p.customer_id for p in payers} | {
            engine.invoices[i].customer_id for i in entry.hits if i in engine.invoices})
        entry.known_payer = is_known_payer(payers)
        _put(self._by_hit, entry.hits, key)
        _put(self._by_customer, entry.customers, key)
        return set(old_hits | entry.hits)

    # -- what a change concerns ---------------------------------------------------------

    def affected(self, change: Change, *, batch: bool = True) -> set[str]:
        """Keys of the payments whose match could differ now that ``change`` (just made to
        the engine) is made: alone, and with ``batch`` also matched all together."""
        walk = _Walk()
        # Payments whose evidence may have changed: found again, followed.
        stale: set[str] = set()
        for before, after in change.invoices:
            for invoice in (before, after):
                if invoice is not None and (before is None or after is None
                                            or before.reference != after.reference):
                    stale |= self._slots(self._by_signature, invoice_signatures(invoice))
        for old, new in change.customers:
            for customer in (old, new):
                if customer is not None:
                    stale |= self._slots(self._by_payer_key, _customer_keys(customer))
                    stale |= self._by_customer.get(customer.customer_id, set())
        renamed = {b.invoice_id for b, a in change.invoices
                   if b is not None and a is not None and b.customer_id != a.customer_id}
        for invoice_id in renamed:
            stale |= self._by_hit.get(invoice_id, set())
        named = {i.invoice_id for versions in change.invoices for i in versions
                 if i is not None}
        for key in stale:
            entry = self._entries[key]
            walk.before[key] = (entry.hits, entry.customers)
            for invoice_id in entry.hits:
                walk.named_before.setdefault(invoice_id, set()).add(key)
            named |= self._learn(entry)
        self._restep(named)
        walk.reach(stale, follow=True)
        for versions in change.invoices:
            for invoice in versions:
                if invoice is not None:
                    self._touch(walk, invoice)
                    walk.touched.add(invoice.invoice_id)
        if batch:
            while walk.queue:
                key = walk.queue.pop()
                for invoice_id in sorted(self._takeable(key, walk)):
                    if invoice_id not in walk.touched:
                        walk.touched.add(invoice_id)
                        self._touch(walk, self.engine.invoices[invoice_id])
        logger.debug("change of %d invoice(s), %d customer(s): %d of %d payments concerned "
                     "(%d followed)", len(change.invoices), len(change.customers),
                     len(walk.found), len(self._entries), len(walk.followed))
        return walk.found

    def _touch(self, walk: _Walk, invoice: Invoice) -> None:
        """The payments whose result depends on ``invoice`` (in the state given)."""
        invoice_id = invoice.invoice_id
        walk.reach(self._by_hit.get(invoice_id, ()), follow=True)
        walk.reach(walk.named_before.get(invoice_id, ()), follow=True)
        walk.reach(self._by_customer.get(invoice.customer_id, ()), follow=True)
        if not is_open(invoice):
            return
        currency = invoice.currency
        steps = self._possible_amounts(invoice, walk.named_before.get(invoice_id, set()))
        if steps is None:   # any amount up to the open one
            top = invoice.open_amount.amount
            walk.reach(self._value_range(currency, Decimal(0), top, low_open=True),
                       follow=True)
            walk.reach(self._window_range(currency, top), follow=self._near_counts)
            return
        for amount in steps:
            walk.reach(self._value_range(currency, amount, amount), follow=True)
            walk.reach(self._window_hits(currency, amount), follow=self._near_counts)

    def _takeable(self, key: str, walk: _Walk) -> set[str]:
        """Open invoices the payment could take (any share of) in a batch, now or before."""
        entry = self._entries.get(key)
        if entry is None:
            return set()
        engine = self.engine
        hits, customers = walk.before.get(key, (frozenset(), frozenset()))
        found = {i for i in entry.hits | hits if i in engine.book.open_ids}
        for customer_id in entry.customers | customers:
            found.update(engine.book.by_customer.get(customer_id, ()))
        currency = entry.payment.amount.currency
        amount = entry.payment.amount.amount
        if self._near_counts:
            low, high = entry.values[currency][1:] if currency in entry.values else (amount,
                                                                                   amount)
        else:
            low = high = amount
        keys = engine.book.amount_keys.get(currency, [])
        rows = engine.book.amounts.get(currency, [])
        found.update(i for _, i in rows[bisect.bisect_left(keys, low):
                                        bisect.bisect_right(keys, high)])
        for owners in self._steps_near(currency, low, high):
            found |= owners
        found.update(i for i in self._wide.get(currency, ())
                     if engine.invoices[i].open_amount.amount >= low)
        return found

    # -- amounts ------------------------------------------------------------------------

    def _value_range(self, currency: str, low: Decimal, high: Decimal, *,
                     low_open: bool = False) -> set[str]:
        rows = self._values.get(currency, [])
        start = bisect.bisect_left(rows, (low, ""))
        found = set()
        for value, key in rows[start:]:
            if value > high:
                break
            if not (low_open and value <= low):
                found.add(key)
        return found

    def _window_hits(self, currency: str, amount: Decimal) -> set[str]:
        """Payments of unknown payers whose window in their own currency holds ``amount``."""
        rows = self._windows.get(currency, [])
        start = bisect.bisect_left(rows, (amount - self._fee_max, ""))
        found = set()
        for low, key in rows[start:]:
            if low > amount:
                break
            entry = self._entries[key]
            if not entry.known_payer and entry.values[currency][2] >= amount:
                found.add(key)
        return found

    def _window_range(self, currency: str, top: Decimal) -> set[str]:
        """Payments of unknown payers whose window holds some amount up to ``top``."""
        rows = self._windows.get(currency, [])
        return {key for low, key in rows[:bisect.bisect_right(rows, (top, "\uffff"))]
                if not self._entries[key].known_payer}

    def _steps_near(self, currency: str, low: Decimal, high: Decimal) -> Iterator[set[str]]:
        """Invoices that can have an open amount in [low, high] after partial payments."""
        if low == high:
            owners = self._by_step.get((currency, low))
            if owners:
                yield owners
            return
        for (step_currency, step), owners in self._by_step.items():  # near amounts count
            if step_currency == currency and low <= step <= high:
                yield owners

    def _possible_amounts(self, invoice: Invoice,
                          extra: set[str]) -> frozenset[Decimal] | None:
        """The open amounts the invoice can have in a batch: its own, less any set of the
        partial payments the payments naming it could make; None when too many name it."""
        payers = self._by_hit.get(invoice.invoice_id, set()) | extra
        top = invoice.open_amount.amount
        parts = []
        for key in payers:
            entry = self._entries.get(key)
            value = entry.values.get(invoice.currency) if entry is not None else None
            if value is not None and 0 < value[0] < top:
                parts.append(value[0])
        if len(parts) > _MAX_PARTIAL_PAYERS:
            return None
        amounts = {top}
        for size in range(1, len(parts) + 1):
            for chosen in combinations(parts, size):
                rest = top - sum(chosen, Decimal(0))
                if rest > 0:
                    amounts.add(rest)
        return frozenset(amounts)

    def _restep(self, invoice_ids: Iterable[str]) -> None:
        """Bring the partial-payment amounts of these invoices up to date."""
        for invoice_id in invoice_ids:
            currency, old = self._steps_of.pop(invoice_id, ("", frozenset()))
            if old is None:
                _take(self._wide, [currency], invoice_id)
            else:
                _take(self._by_step, [(currency, amount) for amount in old], invoice_id)
            invoice = self.engine.invoices.get(invoice_id)
            if invoice is None or not is_open(invoice) or not self._by_hit.get(invoice_id):
                continue
            steps = self._possible_amounts(invoice, set())
            if steps is None:
                self._wide.setdefault(invoice.currency, set()).add(invoice_id)
            else:
                steps = steps - {invoice.open_amount.amount}
                if not steps:
                    continue
                for amount in steps:
                    self._by_step.setdefault((invoice.currency, amount), set()).add(invoice_id)
            self._steps_of[invoice_id] = (invoice.currency, steps)


def _logit(probability: float) -> float:
    return math.log(probability / (1 - probability))


def _text_signatures(payment: Payment) -> set[str]:
    found: set[str] = set()
    for text in (payment.remittance, payment.end_to_end_id, payment.creditor_reference):
        if text:
            found |= text_signatures(text)
    return found


def _payer_keys(payment: Payment) -> set[str]:
    keys = {"P:" + t[:NAME_PREFIX] for t in name_tokens(payment.payer_name or "")}
    if payment.payer_account:
        keys.add("I:" + compact(payment.payer_account))
    return keys


def _customer_keys(customer: Customer) -> set[str]:
    keys = {"I:" + compact(iban) for iban in customer.ibans}
    for name in (customer.name, *customer.aliases):
        keys.update("P:" + t[:NAME_PREFIX] for t in name_tokens(name))
    return keys


def _put(index: dict[_K, set[str]], keys: Iterable[_K], key: str) -> None:
    for k in keys:
        index.setdefault(k, set()).add(key)


def _take(index: dict[_K, set[str]], keys: Iterable[_K], key: str) -> None:
    for k in keys:
        owners = index.get(k)
        if owners is not None:
            owners.discard(key)
            if not owners:
                del index[k]


def _delete(index: dict[str, list[tuple[Decimal, str]]], currency: str,
            row: tuple[Decimal, str]) -> None:
    rows = index[currency]
    at = bisect.bisect_left(rows, row)
    del rows[at]
    if not rows:
        del index[currency]
