"""The reconciliation pipeline: payments and invoices in, allocations out. Pure, deterministic.

::

    invoices ──> ReferenceIndex (numbering learned from the invoices)
             ──> PayerIndex (IBANs, names, aliases)        ──┐
             ──> amount index (per currency, sorted)         ├─> candidates per payment
    payment  ──> references found, payers recognised  ───────┘        │
                                                         scoring (log-odds, reasons)
                                                                      │
                            allocation: payments in order of confidence, each scored
                            against what earlier ones left open, so no invoice is
                            claimed beyond its open amount and no payment beyond itself
                                                                      │
                                               decision: auto / review / unmatched

Candidates come only from the indexes (a reference, the payer's customer, or an open
amount near the payment's), so the cost grows with the data, not with its square. Sets of
invoices one payment settles together are searched in ``matching.combinations``; proposals
and what a run leaves open are in ``matching.proposals``.
"""

from __future__ import annotations

import bisect
import gc
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal

from matching.book import Change, InvoiceBook
from matching.combinations import CombinationSearch
from matching.fx import RateTable
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Decision, MatchConfig, Payment, Reason, Settlement
from matching.payers import PayerMatch
from matching.proposals import Conversion, Proposal, State
from matching.references import HIT_STRENGTH, ReferenceHit
from matching.scoring import (
    AMOUNT_EXACT,
    AMOUNT_OLDEST_OF_EQUAL,
    AMOUNT_UNIQUE,
    PRIOR,
    amount_fit,
    confidence,
    date_reasons,
    fee_tolerance,
    payer_reasons,
    reference_reasons,
)
from parsers.money import Money

Evidence = tuple[list[ReferenceHit], list[PayerMatch]]   # references found, payers recognised

_AMOUNT_NEIGHBOURS = 6       # invoices looked at around a payment's amount, by amount alone
AMBIGUITY_MARGIN = 1.5      # log-odds: a runner-up this close makes the best uncertain
_PAYER_FOR_CUSTOMER = 80.0   # name similarity that brings a customer's invoices in
_PAYER_KNOWN = 95.0          # ... and that makes the amount alone no reason to look further


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused for the block, resumed after if it ran before.

    Building the indexes and matching make millions of small objects that hold no cycles;
    the collector would walk all of them again and again as they grow (a quarter of the
    time at 30,000 payments). Cycles made meanwhile are collected once it runs again.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def is_known_payer(payers: list[PayerMatch]) -> bool:
    """The payer is known well enough (an IBAN, or a name this alike) that only its own
    customers' invoices are weighed by amount, not every invoice of a near amount."""
    return any(p.how == "iban" or p.score >= _PAYER_KNOWN for p in payers)


class Engine:
    """Matches payments against invoices, customers and rates; the invoices and customers
    can be changed between runs (``put_invoices`` and the like), at the cost of the change."""

    def __init__(self, invoices: Sequence[Invoice], customers: Sequence[Customer] = (),
                 rates: RateTable | None = None, config: MatchConfig | None = None) -> None:
        self.config = config or MatchConfig()
        self._auto_logit = math.log(self.config.auto_threshold
                                    / (1 - self.config.auto_threshold))
        self.rates = rates or RateTable()
        with collector_paused():
            self.book = InvoiceBook(invoices, customers)
        # The book's indexes, read directly; the book updates them in place.
        self.invoices = self.book.invoices
        self.references = self.book.references
        self.payers = self.book.payers
        self._open_ids = self.book.open_ids
        self._by_customer = self.book.by_customer
        self._amounts = self.book.amounts
        self._amount_keys = self.book.amount_keys
        self._combinations = CombinationSearch(self.book, self.config, self._auto_logit)

    # -- changes ------------------------------------------------------------------------

    def put_invoices(self, invoices: Iterable[Invoice]) -> Change:
        """Add invoices or replace those of the same id (``InvoiceBook.put_invoices``)."""
        return self.book.put_invoices(invoices)

    def remove_invoices(self, invoice_ids: Iterable[str]) -> Change:
        """Forget invoices by id (``InvoiceBook.remove_invoices``)."""
        return self.book.remove_invoices(invoice_ids)

    def put_customers(self, customers: Iterable[Customer]) -> Change:
        """Add customers or replace those of the same id (``InvoiceBook.put_customers``)."""
        return self.book.put_customers(customers)

    def remove_customers(self, customer_ids: Iterable[str]) -> Change:
        """Forget the CRM's records of customers (``InvoiceBook.remove_customers``)."""
        return self.book.remove_customers(customer_ids)

    # -- the pipeline -------------------------------------------------------------------

    def match(self, payments: Iterable[Payment],
              excluded: frozenset[tuple[str, str]] = frozenset(),
              never_auto: frozenset[tuple[str, str]] = frozenset(),
              progress: Callable[[int, int], None] | None = None) -> list[Allocation]:
        """Allocations for ``payments``: at least one row per payment, in payment order.

        ``excluded`` holds (payment key, invoice id) pairs a person has rejected: never
        proposed again. ``never_auto`` holds pairs a person has undone: they may be proposed
        for review (the reason says so), never allocated automatically. ``progress`` hears
        (payments decided, payments) as they are decided (a command line's progress line).
        """
        with collector_paused():
            return self._match(payments, excluded, never_auto, progress)

    def _match(self, payments: Iterable[Payment], excluded: frozenset[tuple[str, str]],
               never_auto: frozenset[tuple[str, str]],
               progress: Callable[[int, int], None] | None) -> list[Allocation]:
        payments = list(payments)
        self._never_auto: frozenset[tuple[str, str]] = never_auto
        self._evidence_of: dict[str, Evidence] = {}
        self._conversions: dict[tuple[str, str], Conversion | None] = {}
        self._windows: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        state = State(self.book, excluded)
        # The payments with the strongest evidence choose first, so a payment naming an
        # invoice gets it before one that only fits its amount; then the earliest booked.
        order = sorted(payments, key=lambda p: (*self._strength(p), p.booking_date, p.key))
        decided: dict[str, list[Allocation]] = {}
        # First the automatic allocations, so that a proposal waiting for a person never
        # takes an amount a sure match needs; then the rest against what is left.
        deferred = []
        for payment in order:
            best = self._best(payment, state)
            if best is not None and confidence(best.logit) >= self.config.auto_threshold:
                decided[payment.key] = self._decide(payment, best, state)
                if progress is not None:
                    progress(len(decided), len(payments))
            else:
                deferred.append(payment)
        for payment in deferred:
            decided[payment.key] = self._decide(payment, self._best(payment, state), state)
            if progress is not None:
                progress(len(decided), len(payments))
        return [a for p in payments for a in decided[p.key]]

    def _decide(self, payment: Payment, best: Proposal | None,
                state: State) -> list[Allocation]:
        if best is None:
            return [Allocation(payment.key, None, None, 0.0, Decision.UNMATCHED, reasons=(
                Reason("no_candidate", 0.0, "no open invoice is referenced, fits the amount "
                       "or belongs to the payer"),))]
        sure = confidence(best.logit)
        if sure < self.config.review_floor:
            return [Allocation(payment.key, None, None, sure, Decision.UNMATCHED,
                               reasons=tuple(best.reasons))]
        decision = Decision.AUTO if sure >= self.config.auto_threshold else Decision.REVIEW
        allocations = []
        last = len(best.invoice_ids) - 1
        for n, (invoice_id, applied) in enumerate(zip(best.invoice_ids, best.applied,
                                                      strict=True)):
            invoice = self.invoices[invoice_id]
            remaining = state.remaining(invoice_id)
            if invoice_id not in state.tentative:
                state.uncount(invoice, remaining)
            settles = n == last and best.settlement in (Settlement.SHORT, Settlement.OVERPAID)
            # A short payment settles the invoice: its shortfall is written off, so nothing
            # is left open for another payment to take (that would settle it twice).
            remaining = Decimal(0) if settles else remaining - applied.amount
            state.set_remaining(invoice, remaining)
            if decision is Decision.REVIEW:
                state.tentative.add(invoice_id)
                state.count(invoice, invoice.open_amount.amount)
            elif invoice_id not in state.tentative and remaining > 0:
                state.count(invoice, remaining)
            if remaining <= 0 or settles:
                state.settle(invoice_id)
            allocations.append(Allocation(
                payment.key, invoice_id, applied, sure, decision,
                settlement=best.settlement if n == last else Settlement.FULL,
                difference=best.difference if n == last else None,
                fx_rate=best.rate, reasons=tuple(best.reasons)))
        return allocations

    # -- proposals ----------------------------------------------------------------------

    def _strength(self, payment: Payment) -> tuple[int, int]:
        """How strong a payment's own evidence is (smaller sorts first)."""
        hits, payers = self._evidence(payment)
        reference = max((HIT_STRENGTH[h.kind] for h in hits), default=0)
        payer = 2 if any(p.how == "iban" for p in payers) else int(bool(payers))
        return -reference, -payer

    def _evidence(self, payment: Payment) -> Evidence:
        """What the payment's texts and payer say, whatever is open: found once per run."""
        found = self._evidence_of.get(payment.key)
        if found is None:
            found = self._evidence_of[payment.key] = self._find_evidence(payment)
        return found

    def _find_evidence(self, payment: Payment) -> Evidence:
        return (self.references.find(remittance=payment.remittance,
                                     end_to_end_id=payment.end_to_end_id,
                                     creditor_reference=payment.creditor_reference),
                self.payers.match(name=payment.payer_name, iban=payment.payer_account))

    def _best(self, payment: Payment, state: State) -> Proposal | None:
        hits, payers = self._evidence(payment)
        proposals = [p for p in (self._single(payment, i, hits, payers, state)
                                 for i in self._candidates(payment, hits, payers, state)) if p]
        auto_logit = self._auto_logit
        settled_in_full = [p for p in proposals if p.settlement in (Settlement.FULL,
                                                                    Settlement.SHORT)]
        if len({h.invoice_id for h in hits}) > 1 or not settled_in_full or max(
                p.logit for p in settled_in_full) < auto_logit + AMBIGUITY_MARGIN:
            proposals += self._combinations.proposals(payment, hits, payers, state,
                                                       self._convert)
        if not proposals:
            return None
        if self._never_auto:
            for proposal in proposals:
                self._hold_undone(payment, proposal)
        proposals.sort(key=lambda p: p.rank)
        best = proposals[0]
        runner_up = next((p for p in proposals[1:]
                          if not set(p.invoice_ids) & set(best.invoice_ids)), None)
        if runner_up is not None and best.logit - runner_up.logit < AMBIGUITY_MARGIN \
                and best.logit >= auto_logit:
            best.reasons.append(Reason(
                "ambiguous", auto_logit - 0.01 - best.logit,
                f"invoice(s) {', '.join(runner_up.invoice_ids)} fit almost as well"))
            best.logit = auto_logit - 0.01
        return best

    def _hold_undone(self, payment: Payment, proposal: Proposal) -> None:
        """A proposal with a pair a person undid is kept below automatic, however strong."""
        undone = [i for i in proposal.invoice_ids if (payment.key, i) in self._never_auto]
        if undone:
            capped = min(proposal.logit, self._auto_logit - 0.01)
            proposal.reasons.append(Reason(
                "undone_before", capped - proposal.logit,
                f"a person undid the allocation of this payment to invoice {undone[0]}: "
                f"never again without a person"))
            proposal.logit = capped

    def _candidates(self, payment: Payment, hits: list[ReferenceHit],
                    payers: list[PayerMatch], state: State) -> list[str]:
        """Invoices worth scoring: those referenced, and those whose open amount the
        payment could settle (exactly or short by fees; after a conversion, a little
        either way) among the payer's customers' and among all invoices near the amount.
        Overpayments and partial payments need a reference."""
        found: set[str] = {h.invoice_id for h in hits}
        currency = payment.amount.currency
        keys = self._amount_keys.get(currency)
        known_payer = is_known_payer(payers)
        if keys and not known_payer:  # a known payer's own invoices are looked at below
            low_amount, high_amount = self._window(payment, currency)
            low = bisect.bisect_left(keys, low_amount)
            high = bisect.bisect_right(keys, high_amount)
            if high - low > _AMOUNT_NEIGHBOURS:  # keep those nearest the amount
                at = bisect.bisect_left(keys, payment.amount.amount)
                low = max(low, at - _AMOUNT_NEIGHBOURS // 2)
                high = min(high, low + _AMOUNT_NEIGHBOURS)
            found.update(i for _, i in self._amounts[currency][low:high])
        for payer in payers:
            if payer.how == "iban" or payer.score >= _PAYER_FOR_CUSTOMER:
                self._payer_candidates(payment, payer.customer_id, state, found)
        return sorted(i for i in found if state.allows(payment, i))

    def _payer_candidates(self, payment: Payment, customer_id: str, state: State,
                          found: set[str]) -> None:
        """Add to ``found`` the customer's invoices whose open amount (what the batch left
        of it) is in the payment's window in the invoice's currency: by bisection in the
        book's amounts of those the batch has not touched, one by one for those it has."""
        for currency, rows in self.book.customer_amounts.get(customer_id, {}).items():
            low, high = self._window(payment, currency)
            start = bisect.bisect_left(rows, low, key=_open_amount)
            end = bisect.bisect_right(rows, high, key=_open_amount)
            found.update(i for _, i in rows[start:end] if not state.changed(i))
        for invoice_id in state.touched(customer_id) or ():
            low, high = self._window(payment, self.invoices[invoice_id].currency)
            if low <= state.remaining(invoice_id) <= high:
                found.add(invoice_id)

    def _window(self, payment: Payment, currency: str) -> tuple[Decimal, Decimal]:
        """The open amounts (in ``currency``) the payment could settle without a reference:
        exactly or short by fees; after a conversion by rate, a little either way. Empty
        (low above high) when the payment cannot be converted."""
        key = (payment.key, currency)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = self._window_of(payment, currency)
        return window

    def values_of(self, payment: Payment) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """Per currency the payment can be valued in (its own, the instructed amount's, those
        the rate table converts it to): (its value there, the lowest and the highest open
        amount it could settle there without a reference). ``matching.pending`` indexes
        payments by these."""
        found = {}
        for currency in self.payment_currencies(payment):
            conversion = self._conversion(payment, currency)
            if conversion is not None:
                low, high = self._window_for(conversion)
                found[currency] = (conversion.amount.amount, low, high)
        return found

    def payment_currencies(self, payment: Payment) -> set[str]:
        """The currencies an invoice may be in for the payment to be weighed against it."""
        found = {payment.amount.currency} | self.rates.targets(payment.amount.currency)
        if payment.fx is not None and payment.fx.instructed_amount is not None:
            found.add(payment.fx.instructed_amount.currency)
        return found

    def _window_of(self, payment: Payment, currency: str) -> tuple[Decimal, Decimal]:
        conversion = self._convert(payment, currency)
        if conversion is None:
            return Decimal(1), Decimal(0)
        return self._window_for(conversion)

    def _window_for(self, conversion: Conversion) -> tuple[Decimal, Decimal]:
        paid = conversion.amount.amount
        slack = fee_tolerance(paid, self.config)
        if conversion.converted:
            slack = max(slack, paid * self.config.fx_tolerance_ratio)
            return paid - slack, paid + slack
        return paid, paid + slack

    def _convert(self, payment: Payment, currency: str) -> Conversion | None:
        key = (payment.key, currency)
        if key not in self._conversions:
            self._conversions[key] = self._conversion(payment, currency)
        return self._conversions[key]

    def _conversion(self, payment: Payment, currency: str) -> Conversion | None:
        if payment.amount.currency == currency:
            return Conversion(payment.amount, False, None, None)
        fx = payment.fx
        if fx is not None and fx.instructed_amount is not None \
                and fx.instructed_amount.currency == currency:
            return Conversion(Money(abs(fx.instructed_amount.amount), currency), False, fx.rate,
                               Reason("fx_reported", 0.0,
                                      f"the bank reports the instructed amount "
                                      f"{fx.instructed_amount}"))
        found = self.rates.convert(payment.amount, currency, payment.booking_date)
        if found is None:
            return None
        return Conversion(found.amount, True, found.rate,
                           Reason("fx_converted", 0.0, f"{payment.amount} is {found.amount} at "
                                  f"the {found.note}"))

    def _charges(self, payment: Payment, currency: str) -> Decimal:
        if not payment.charges:
            return _ZERO
        return sum((abs(c.amount.amount) for c in payment.charges
                    if c.amount.currency == currency), Decimal(0))

    def _single(self, payment: Payment, invoice_id: str, hits: list[ReferenceHit],
                payers: list[PayerMatch], state: State) -> Proposal | None:
        invoice = self.invoices[invoice_id]
        conversion = self._convert(payment, invoice.currency)
        if conversion is None:
            return None
        open_amount = Money(state.remaining(invoice_id), invoice.currency)
        referenced = any(h.invoice_id == invoice_id for h in hits)
        fit = amount_fit(conversion.amount, open_amount,
                         charges=self._charges(payment, invoice.currency),
                         converted=conversion.converted, has_reference=referenced,
                         config=self.config)
        if fit.settlement is None:
            return None
        reasons = reference_reasons({invoice_id}, hits, state.settled)
        reasons += payer_reasons(invoice.customer_id, payers)
        reasons += [r for r in (conversion.reason, fit.reason) if r is not None]
        if fit.settlement is Settlement.FULL or (fit.reason and fit.reason.weight >= AMOUNT_EXACT):
            reasons += self._uniqueness(invoice, open_amount, payers, state)
        reasons += date_reasons(invoice, payment.booking_date.toordinal(), self.config)
        return Proposal((invoice_id,), [fit.applied], fit.settlement, fit.difference,
                         PRIOR + sum(r.weight for r in reasons), reasons, conversion.rate)

    def _uniqueness(self, invoice: Invoice, open_amount: Money, payers: list[PayerMatch],
                    state: State) -> list[Reason]:
        """The invoice is the only open one of its amount, for its customer when the payer
        is recognised as that customer, else among all invoices."""
        recognised = any(p.customer_id == invoice.customer_id for p in payers)
        scope = f"of customer {invoice.customer_id}" if recognised else "of all customers"
        # A set of all open invoices of an amount can be long (round amounts): looked into,
        # never sorted.
        same = state.equal(
            (invoice.customer_id if recognised else "*", invoice.currency, open_amount.amount))
        if len(same) == 1 and invoice.invoice_id in same:
            return [Reason("amount_unique", AMOUNT_UNIQUE,
                           f"the only open invoice {scope} with {open_amount} open")]
        if recognised and invoice.invoice_id in same:
            oldest = min(same, key=lambda i: (self.invoices[i].due_date
                                              or self.invoices[i].issue_date, i))
            if oldest == invoice.invoice_id:
                return [Reason("amount_oldest_of_equal", AMOUNT_OLDEST_OF_EQUAL,
                               f"the oldest of {len(same)} open invoices {scope} with "
                               f"{open_amount} open: paid first")]
        return []


_ZERO = Decimal(0)


def _open_amount(row: tuple[Decimal, str]) -> Decimal:
    return row[0]


def reconcile(payments: Iterable[Payment], invoices: Sequence[Invoice],
              customers: Sequence[Customer] = (), rates: RateTable | None = None,
              config: MatchConfig | None = None) -> list[Allocation]:
    """The whole pipeline in one call."""
    return Engine(invoices, customers, rates, config).match(payments)
