"""How sure the engine is that a payment settles an invoice (or a set of invoices).

Evidence adds up as log-odds, each piece a ``Reason`` with its weight, from a prior that
says most pairs are wrong; the confidence is the logistic of the sum. The weights are set
so that an automatic match needs two independent kinds of evidence (a reference and the
amount, or the amount and who paid) and one contradiction sends a payment to review.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from matching.invoices import Invoice
from matching.model import MatchConfig, Reason, Settlement
from matching.payers import PayerMatch
from matching.references import HitKind, ReferenceHit
from parsers.money import Money

PRIOR = -5.0
REFERENCE_WEIGHT = {HitKind.RF: 7.0, HitKind.EXACT: 6.0, HitKind.REFORMATTED: 5.0,
                    HitKind.TYPO: 3.0}
AMOUNT_EXACT = 3.0
AMOUNT_UNIQUE = 2.0          # the only open invoice of this amount (for this customer)
AMOUNT_OLDEST_OF_EQUAL = 0.5  # the oldest of equal open invoices: preferred, never enough
AMOUNT_FEE = 1.5
AMOUNT_FEE_REPORTED = 2.5    # the shortfall is exactly the charge the bank reports
AMOUNT_FX = 2.5
AMOUNT_OVER_SMALL = 1.0
AMOUNT_PARTIAL_WITH_REFERENCE = 0.0
PAYER_IBAN = 3.5
PAYER_NAME = ((97.0, 3.5), (90.0, 2.5), (80.0, 1.0))   # (similarity at least, weight)
PAYER_IS_ANOTHER_CUSTOMER = -3.0
QUOTES_OTHER_INVOICE = -3.0
QUOTES_SETTLED_INVOICE = -4.0
PAID_BEFORE_ISSUED = -4.0
PAID_LONG_AFTER_DUE = -1.0


def confidence(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


@dataclass(frozen=True, slots=True)
class AmountFit:
    """How a payment's amount (in the invoice's currency) fits what is open."""

    settlement: Settlement | None      # None: it does not fit at all
    applied: Money                     # allocated to the invoice: never more than is open
    difference: Money | None           # shortfall written off, or the surplus paid
    reason: Reason | None


def fee_tolerance(open_amount: Decimal, config: MatchConfig) -> Decimal:
    """How short a payment may be and still settle (bank fees): a share of the amount,
    at least a minimum, at most a maximum, and never a fifth of the invoice."""
    tolerance = max(config.fee_tolerance_min, open_amount * config.fee_tolerance_ratio)
    return min(tolerance, config.fee_tolerance_max, open_amount / 5)


def amount_fit(paid: Money, open_amount: Money, *, charges: Decimal, converted: bool,
               has_reference: bool, config: MatchConfig) -> AmountFit:
    """Compare what was paid (already in the invoice currency) with what is open."""
    gap = open_amount.amount - paid.amount
    currency = open_amount.currency
    if paid.amount <= 0 or open_amount.amount <= 0:
        # Nothing arrived in this currency (a tiny amount converted to zero minor units), or
        # nothing is open: there is nothing to allocate, so no fit.
        return AmountFit(None, paid, None, None)
    if gap == 0:
        return AmountFit(Settlement.FULL, paid, None,
                         Reason("amount_exact", AMOUNT_EXACT, f"pays exactly {open_amount}"))
    if converted and abs(gap) <= open_amount.amount * config.fx_tolerance_ratio:
        settlement = Settlement.SHORT if gap > 0 else Settlement.OVERPAID
        applied = paid if gap > 0 else open_amount
        return AmountFit(settlement, applied, Money(abs(gap), currency), Reason(
            "amount_fx", AMOUNT_FX,
            f"pays {paid} after conversion against {open_amount} open: FX difference {gap}"))
    if gap > 0 and charges and gap == charges:
        # The bank kept its charges on the way: what arrived is allocated, the charges are
        # written off and the invoice is settled.
        return AmountFit(Settlement.SHORT, paid, Money(gap, currency), Reason(
            "amount_short_by_charges", AMOUNT_FEE_REPORTED,
            f"short by {gap} {currency}, exactly the charges the bank reports"))
    if 0 < gap <= fee_tolerance(open_amount.amount, config):
        return AmountFit(Settlement.SHORT, paid, Money(gap, currency), Reason(
            "amount_short", AMOUNT_FEE,
            f"short by {gap} {currency} of {open_amount}: within the tolerance for bank fees"))
    if gap < 0 and has_reference:
        # At most the open amount is allocated; the surplus is recorded as an overpayment.
        weight = AMOUNT_OVER_SMALL if -gap <= fee_tolerance(open_amount.amount, config) else 0.0
        return AmountFit(Settlement.OVERPAID, open_amount, Money(-gap, currency), Reason(
            "amount_over", weight, f"pays {-gap} {currency} more than the {open_amount} open"))
    if gap > 0 and has_reference:
        return AmountFit(Settlement.PARTIAL, paid, None, Reason(
            "amount_partial", AMOUNT_PARTIAL_WITH_REFERENCE,
            f"pays {paid} of {open_amount} open: a partial payment"))
    return AmountFit(None, paid, None, None)  # no fit: the caller drops the pair


def payer_reasons(customer_id: str, payers: list[PayerMatch]) -> list[Reason]:
    """What the payer's identity says about an invoice of ``customer_id``."""
    own = next((p for p in payers if p.customer_id == customer_id), None)
    if own is not None:
        if own.how == "iban":
            return [Reason("payer_iban", PAYER_IBAN, "the payer's IBAN is the customer's")]
        for threshold, weight in PAYER_NAME:
            if own.score >= threshold:
                return [Reason(f"payer_{own.how}", weight, own.detail)]
        return []
    strong_other = next((p for p in payers if p.how == "iban" or p.score >= 95.0), None)
    if strong_other is not None:
        return [Reason("payer_other_customer", PAYER_IS_ANOTHER_CUSTOMER,
                       f"the payer looks like customer {strong_other.customer_id} "
                       f"({strong_other.detail})")]
    return []


def reference_reasons(invoice_ids: set[str], hits: list[ReferenceHit],
                      settled: Container[str]) -> list[Reason]:
    """What the references found say about a proposal for ``invoice_ids``."""
    reasons: list[Reason] = []
    own = [h for h in hits if h.invoice_id in invoice_ids]
    for hit in own:
        reasons.append(Reason(f"reference_{hit.kind.value}", REFERENCE_WEIGHT[hit.kind],
                              f"{hit} names invoice {hit.invoice_id}"))
    others = [h for h in hits if h.invoice_id not in invoice_ids
              and h.kind in (HitKind.RF, HitKind.EXACT, HitKind.REFORMATTED)]
    if others and not own:
        closed = [h for h in others if h.invoice_id in settled]
        if closed:
            reasons.append(Reason("quotes_settled_invoice", QUOTES_SETTLED_INVOICE,
                                  f"{closed[0]} names invoice {closed[0].invoice_id}, "
                                  f"which is already settled"))
        else:
            reasons.append(Reason("quotes_other_invoice", QUOTES_OTHER_INVOICE,
                                  f"{others[0]} names another invoice, {others[0].invoice_id}"))
    return reasons


def date_reasons(invoice: Invoice, booking_date_ordinal: int, config: MatchConfig) -> list[Reason]:
    booked = invoice.issue_date.fromordinal(booking_date_ordinal)
    if booked < invoice.issue_date:
        return [Reason("paid_before_issued", PAID_BEFORE_ISSUED,
                       f"booked {booked}, before the invoice was issued on {invoice.issue_date}")]
    due = invoice.due_date or invoice.issue_date
    if booked > due + timedelta(days=config.payment_window_days):
        return [Reason("paid_long_after_due", PAID_LONG_AFTER_DUE,
                       f"booked {booked}, more than {config.payment_window_days} days after "
                       f"the due date {due}")]
    return []
