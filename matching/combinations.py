"""One payment for several invoices of one customer: the sets of open invoices it pays.

For each customer the payment's evidence points to (a known IBAN, a name alike enough, an
invoice its texts name), the customer's open invoices (those named first, then the newest,
at most ``max_combination_candidates``) are searched per currency for sets of two to
``max_combination_size`` whose open amounts add up to what was paid (exactly, short by fees,
or after a conversion within its tolerance). The best set of each becomes a ``Proposal``
with its reasons: named members, twins of the same amount (never automatic), whether it
is the only set that adds up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from matching.book import InvoiceBook
from matching.model import MatchConfig, Payment, Reason, Settlement
from matching.payers import PayerMatch
from matching.proposals import Conversion, Proposal, State
from matching.references import HitKind, ReferenceHit
from matching.scoring import AMOUNT_EXACT, PRIOR, fee_tolerance, payer_reasons
from parsers.money import Money, minor_units

_PAYER_FOR_COMBINATION = 88.0   # name similarity that makes a customer's sets worth a search

Convert = Callable[[Payment, str], Conversion | None]


class CombinationSearch:
    """Proposals of sets of invoices for a payment, over an ``InvoiceBook`` as it is now."""

    def __init__(self, book: InvoiceBook, config: MatchConfig, auto_logit: float) -> None:
        self.book = book
        self.config = config
        self.auto_logit = auto_logit

    def proposals(self, payment: Payment, hits: list[ReferenceHit], payers: list[PayerMatch],
                  state: State, convert: Convert) -> list[Proposal]:
        """The best set per customer and currency (``convert`` values the payment in a
        currency, or says it cannot be)."""
        invoices = self.book.invoices
        customers = {p.customer_id for p in payers
                     if p.how == "iban" or p.score >= _PAYER_FOR_COMBINATION}
        customers |= {invoices[h.invoice_id].customer_id for h in hits
                      if h.kind is not HitKind.TYPO}
        proposals = []
        for customer_id in sorted(customers):
            pool = [i for i in self.book.by_customer.get(customer_id, [])
                    if state.allows(payment, i)]
            named = {h.invoice_id for h in hits}
            referenced = [i for i in pool if i in named]
            others = [i for i in reversed(pool) if i not in named]
            limit = self.config.max_combination_candidates
            complete = len(referenced) + len(others) <= limit
            pool = (referenced + others)[:limit]
            by_currency: dict[str, list[str]] = defaultdict(list)
            for invoice_id in pool:
                by_currency[invoices[invoice_id].currency].append(invoice_id)
            for currency, members in by_currency.items():
                proposal = self._best(payment, customer_id, currency, members, hits, payers,
                                      state, complete, convert(payment, currency))
                if proposal is not None:
                    proposals.append(proposal)
        return proposals

    def _best(self, payment: Payment, customer_id: str, currency: str, members: list[str],
              hits: list[ReferenceHit], payers: list[PayerMatch], state: State,
              complete: bool, conversion: Conversion | None) -> Proposal | None:
        """The best set of ``members`` whose open amounts add up to the payment.

        ``complete`` says ``members`` are all the customer's open invoices: only then can
        a set be called the only one that adds up.
        """
        if conversion is None or len(members) < 2:
            return None
        config = self.config
        paid = conversion.amount.amount
        tolerance = fee_tolerance(paid, config)
        if conversion.converted:
            tolerance = max(tolerance, paid * config.fx_tolerance_ratio)
        scale = Decimal(10) ** minor_units(currency)
        low = int((paid if not conversion.converted else paid - tolerance) * scale)
        high = int((paid + tolerance) * scale)
        cents = {i: int(state.remaining(i) * scale) for i in members}
        named_ids = {h.invoice_id for h in hits}
        referenced = sorted(i for i in members if i in named_ids)
        found: list[tuple[str, ...]] = []
        if referenced:  # first the sets made of every invoice named, plus unnamed ones
            base = sum(cents[i] for i in referenced)
            if len(referenced) >= 2 and low <= base <= high:
                found.append(tuple(referenced))
            room = config.max_combination_size - len(referenced)
            if room > 0 and base < high:
                rest = sorted((cents[i], i) for i in members if i not in named_ids)
                found += [tuple(sorted((*referenced, *extra))) for extra in subsets(
                    rest, low - base, high - base, max_size=room, limit=8, min_size=1)]
        if not found:
            found = subsets(sorted((c, i) for i, c in cents.items()), low, high,
                            max_size=config.max_combination_size, limit=8)
        # A set whose shortfall reaches the open amount of one of its members does not
        # settle that member at all (the set without it is paid in full): writing the
        # shortfall off against it would allocate nothing or less than nothing to it.
        solutions = [(combo, total) for combo, total in (
            (combo, sum((state.remaining(i) for i in combo), Decimal(0))) for combo in found)
            if total - paid < min(state.remaining(i) for i in combo)]
        if not solutions:
            return None
        solutions.sort(key=lambda s: (-len(set(s[0]) & named_ids), s[1] - paid, len(s[0]),
                                      s[0]))
        combo, total = solutions[0]
        named = set(combo) & named_ids
        reasons: list[Reason] = []
        for hit in hits:
            if hit.invoice_id in combo:
                reasons.append(Reason(f"reference_{hit.kind.value}",
                                      3.0 if len(named) < len(combo) else 6.0 / len(combo),
                                      f"{hit} names invoice {hit.invoice_id}"))
        unnamed = [i for i in combo if i not in named]
        if named and unnamed:
            reasons.append(Reason("combination_partly_named", -1.5 * len(unnamed),
                                  f"the remittance names {len(named)} of the {len(combo)} "
                                  f"invoices"))
        invoices = self.book.invoices
        twins = [i for i in unnamed if any(
            state.remaining(other) == state.remaining(i) and other != i
            and invoices[other].currency == currency
            for other in self.book.by_customer.get(customer_id, []))]
        if twins:
            reasons.append(Reason("combination_member_ambiguous", -3.0,
                                  f"invoice {twins[0]} has a twin of the same amount open, "
                                  f"so which one is meant is a person's call"))
        gap = total - paid
        exact = gap == 0
        reasons.append(Reason(
            "amount_sum_exact" if exact else "amount_sum_close", AMOUNT_EXACT if exact else 1.5,
            f"pays {conversion.amount}, the sum of {len(combo)} open invoices ({total})"))
        if len(solutions) == 1 and complete:
            reasons.append(Reason("combination_unique", 2.0,
                                  "no other set of the customer's open invoices adds up to it"))
        elif len(solutions) > 1 and not named:
            reasons.append(Reason("combination_ambiguous", -2.0,
                                  f"{len(solutions)} sets of open invoices add up to it"))
        reasons.append(Reason("combination_size", -0.5 * (len(combo) - 2),
                              f"{len(combo)} invoices in one payment"))
        reasons += payer_reasons(customer_id, payers)
        if conversion.reason:
            reasons.append(conversion.reason)
        logit = PRIOR + sum(r.weight for r in reasons)
        if twins:  # never automatic, however strong the rest
            logit = min(logit, self.auto_logit - 0.01)
        applied = [Money(state.remaining(i), currency) for i in combo]
        settlement = Settlement.FULL
        difference = None
        if gap > 0:  # short: the last invoice takes the shortfall, written off
            applied[-1] = Money(applied[-1].amount - gap, currency)
            settlement, difference = Settlement.SHORT, Money(gap, currency)
        elif gap < 0:  # the surplus is recorded, never allocated
            settlement, difference = Settlement.OVERPAID, Money(-gap, currency)
        return Proposal(combo, applied, settlement, difference, logit, reasons,
                        conversion.rate)


def subsets(amounts: list[tuple[int, str]], low: int, high: int, *, max_size: int,
            limit: int, min_size: int = 2) -> list[tuple[str, ...]]:
    """Sets of min_size..max_size invoices whose amounts (minor units, ascending) sum into
    [low, high]; a depth-first search that stops adding once the sum passes ``high``."""
    found: list[tuple[str, ...]] = []
    chosen: list[str] = []
    # top[k]: the sum of the amounts from k on; the largest r of amounts[k:] are its last r
    # (ascending), so a set that cannot reach ``low`` even with those is not extended.
    top = [0] * (len(amounts) + 1)
    for k in range(len(amounts) - 1, -1, -1):
        top[k] = top[k + 1] + amounts[k][0]
    last = len(amounts)

    def extend(start: int, total: int) -> None:
        if len(found) >= limit:
            return
        if len(chosen) >= min_size and low <= total <= high:
            found.append(tuple(sorted(chosen)))
        room = max_size - len(chosen)
        if room == 0 or total + top[max(start, last - room)] < low:
            return
        for k in range(start, len(amounts)):
            cents, invoice_id = amounts[k]
            if total + cents > high:
                break
            chosen.append(invoice_id)
            extend(k + 1, total + cents)
            chosen.pop()

    extend(0, 0)
    return found
