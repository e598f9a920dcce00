"""Money: a ``Decimal`` amount with its ISO 4217 currency. Never a float.

Signs follow the statement's point of view: credit (money in) is positive, debit negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 active codes (list one, 2024) plus the funds and special codes banks use
# (XXX: "no currency", which some CAMT files carry as a placeholder).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG
    XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()
)

_MINOR_UNITS_NOT_TWO = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


# ISO 4217 list three: codes withdrawn from use, which historic statements still carry (the
# euro's predecessors above all), with the minor units they had. A statement in one of them
# is read, not refused, and flagged ``withdrawn_currency`` (``parsers.checks``); they are
# not in ``ISO_4217``, so nothing new (an invoice, an API request) can be made in them.
WITHDRAWN_4217 = {
    **dict.fromkeys(
        "ATS CYP DEM EEK FIM FRF HRK IEP LTL LVL MTL NLG SIT SKK XEU "
        "BGL ROL CSK DDM YUM ZWD ZMK VEB GHC SDD AZM MZM TMM STD MRO BYR".split(), 2),
    **dict.fromkeys("BEF ESP GRD ITL LUF PTE TRL ADP ECS".split(), 0),
}


class MoneyError(ValueError):
    """An amount or currency that is not valid money."""


def is_currency(code: str) -> bool:
    """True if ``code`` is an ISO 4217 currency code we know."""
    return code in ISO_4217


def is_withdrawn_currency(code: str) -> bool:
    """True if ``code`` is an ISO 4217 code withdrawn from use (DEM, FRF, ITL, ...)."""
    return code in WITHDRAWN_4217 and code not in ISO_4217


def is_statement_currency(code: str) -> bool:
    """True if a statement may carry ``code``: an active ISO 4217 code or a withdrawn one."""
    return code in ISO_4217 or code in WITHDRAWN_4217


def minor_units(currency: str) -> int:
    """Number of decimal places of ``currency`` (JPY 0, EUR 2, BHD 3; ITL 0, DEM 2)."""
    if currency in WITHDRAWN_4217 and currency not in ISO_4217:
        return WITHDRAWN_4217[currency]
    return _MINOR_UNITS_NOT_TWO.get(currency, 2)


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal string (``-12.50``); raise ``MoneyError`` on anything else.

    Unlike ``Decimal(text)`` this refuses ``NaN``, ``Infinity``, exponents and blanks,
    none of which is a bank amount.
    """
    cleaned = text.strip()
    body = cleaned[1:] if cleaned[:1] in "+-" else cleaned
    if not body or not all(c in "0123456789." for c in body) or body.count(".") > 1:
        raise MoneyError(f"not a decimal amount: {text!r}")
    if body == ".":
        raise MoneyError(f"not a decimal amount: {text!r}")
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the checks above
        raise MoneyError(f"not a decimal amount: {text!r}") from exc


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise MoneyError(f"amount must be a finite Decimal, got {self.amount!r}")
        if not is_statement_currency(self.currency):
            raise MoneyError(f"not an ISO 4217 currency code: {self.currency!r}")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise MoneyError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)
