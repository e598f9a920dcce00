"""What the matching engine works on and what it decides. Pure data, immutable.

A ``Payment`` is an incoming bank line as the engine sees it; an ``Allocation`` ties (part
of) a payment to an invoice with a confidence, a decision and the reasons for it.
Amounts are ``Money``; an allocation's ``amount`` is in the invoice's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from parsers.model import Charge, FxDetails
from parsers.money import Money


class Decision(StrEnum):
    AUTO = "auto"          # confident enough to apply without a person
    REVIEW = "review"      # plausible: a person decides
    UNMATCHED = "unmatched"


class Settlement(StrEnum):
    """How an allocation settles its invoice."""

    FULL = "full"                # the open amount, exactly
    PARTIAL = "partial"          # less than the open amount: an instalment
    SHORT = "short"              # less by a tolerated difference (bank fees, FX): settled
    OVERPAID = "overpaid"        # more than the open amount


@dataclass(frozen=True, slots=True)
class Payment:
    """An incoming payment: a booked credit of a statement (or one transaction of a batch)."""

    key: str                       # the bank's reference, else the entry id: unique in a run
    entry_id: str
    booking_date: date
    amount: Money                  # positive, in the account's currency
    bank_reference: str | None = None
    payer_name: str | None = None
    payer_account: str | None = None
    remittance: str | None = None
    end_to_end_id: str | None = None
    creditor_reference: str | None = None
    fx: FxDetails | None = None
    charges: tuple[Charge, ...] = ()


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing that made the engine more or less sure, with its weight (log-odds)."""

    code: str
    weight: float
    detail: str

    def __str__(self) -> str:
        return f"{self.code} ({self.weight:+.1f}): {self.detail}"


@dataclass(frozen=True, slots=True)
class Allocation:
    payment_key: str
    invoice_id: str | None         # None: the payment stays unmatched
    amount: Money | None           # in the invoice's currency
    confidence: float
    decision: Decision
    settlement: Settlement | None = None
    difference: Money | None = None    # fee/FX shortfall written off, or the overpayment
    fx_rate: Decimal | None = None     # payment currency -> invoice currency, when converted
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def explanation(self) -> str:
        return "; ".join(str(r) for r in self.reasons)


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """The engine's settings. Confidences are probabilities in 0..1."""

    auto_threshold: float = 0.95
    review_floor: float = 0.5
    fee_tolerance_ratio: Decimal = Decimal("0.01")   # short by up to 1% ...
    fee_tolerance_min: Decimal = Decimal("10")       # ... but always up to 10 units ...
    fee_tolerance_max: Decimal = Decimal("50")       # ... and never more than 50 units
    fx_tolerance_ratio: Decimal = Decimal("0.02")    # converted amounts may differ by 2%
    max_combination_size: int = 4
    max_combination_candidates: int = 16
    payment_window_days: int = 365                   # paid at most this long after due
