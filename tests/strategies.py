"""Hypothesis strategies for generated statements, shared by the round-trip tests.

A format carries only some of the model's fields, so ``statements`` takes the names of the
``Entry`` fields (``entry_fields``) and ``Statement`` fields (``statement_fields``) the
writer under test can carry, and the alphabet its text fields may use; every other field
stays at its default. Amounts respect the currency's minor units; entries are in the
statement's currency; balances add up (opening + booked entries = closing).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from parsers.model import (
    Account,
    Balance,
    BalanceKind,
    BankTransactionCode,
    Charge,
    Entry,
    EntryStatus,
    FxDetails,
    Statement,
    Transaction,
)
from parsers.money import Money, minor_units

# SWIFT "x" character set (MT940 text fields).
SWIFT_X = string.ascii_letters + string.digits + "/-?:().,'+ "
# Broad Unicode text that XML 1.0 can carry, without leading/trailing whitespace issues.
XML_TEXT = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zl", "Zp"),
    exclude_characters="\ufffe\uffff",
)

CURRENCIES = ("EUR", "USD", "CHF", "JPY", "BHD", "PLN")

ALL_ENTRY_FIELDS = frozenset({
    "value_date", "status", "reversal", "bank_reference", "customer_reference",
    "bank_transaction_code", "counterparty_name", "counterparty_account", "counterparty_bic",
    "end_to_end_id", "mandate_id", "remittance", "creditor_reference", "fx", "charges",
    "transactions", "additional_info",
})
ALL_STATEMENT_FIELDS = frozenset({
    "statement_id", "sequence", "created_at", "period", "opening_balance", "closing_balance",
    "available_balances", "iban", "number", "bic", "owner_name",
})

# IBANs with valid check digits (generated, not real accounts).
IBANS = ("DE89370400440532013000", "NL91ABNA0417164300", "GB29NWBK60161331926819",
         "CH9300762011623852957", "FR1420041010050500013M02606")
BICS = ("DEUTDEFF", "ABNANL2A", "NWBKGB2LXXX", "UBSWCHZH80A")


@functools.cache
def words(alphabet: str | st.SearchStrategy[str], *, max_size: int = 30) -> st.SearchStrategy[str]:
    """Non-blank text without leading or trailing spaces and without double spaces."""
    chars = alphabet if isinstance(alphabet, st.SearchStrategy) else st.sampled_from(alphabet)
    return (
        st.text(chars, min_size=1, max_size=max_size)
        .map(lambda s: " ".join(s.split()))
        .filter(bool)
    )


# What banks write when they have no reference (NONREF, NOTPROVIDED, ...): read back as
# none, so the writers refuse them as values.
_PLACEHOLDERS = frozenset({"NONREF", "NOTPROVIDED", "NONE"})


@functools.cache
def _identifiers(*, max_size: int = 30) -> st.SearchStrategy[str]:
    """References and ids as banks give them: letters and digits, never a placeholder."""
    return words(string.ascii_uppercase + string.digits, max_size=max_size).filter(
        lambda s: s.upper() not in _PLACEHOLDERS)


@functools.cache
def money(currency: str, *, max_units: int = 10**9,
          signed: bool = True) -> st.SearchStrategy[Money]:
    """Amounts in ``currency``'s minor units, up to ``max_units`` of them."""
    quantum = Decimal(1).scaleb(-minor_units(currency))
    return st.integers(-max_units if signed else 1, max_units).map(
        lambda units: Money((Decimal(units) * quantum).quantize(quantum), currency))


@functools.cache
def _entries(currency: str, fields: frozenset[str],
             text: str | st.SearchStrategy[str]) -> st.SearchStrategy[Callable[[date], Entry]]:
    """Entries in ``currency`` with ``fields``, each waiting for its booking day.

    Built once for each set of arguments (and so cached): Hypothesis checks every new
    strategy before drawing from it, which took most of the round-trip tests' time when
    every entry built its own.
    """
    def maybe(name: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.none() | strategy if name in fields else st.none()

    codes = st.none() | st.builds(
        BankTransactionCode,
        domain=st.just("PMNT"),
        family=st.sampled_from(("RCDT", "ICDT", "IDDT")),
        subfamily=st.sampled_from(("ESCT", "DMCT", "ESDD")),
    )
    rates = st.integers(1, 10**6).map(lambda n: Decimal(n).scaleb(-4))
    conversions = {source: st.builds(
        FxDetails, instructed_amount=money(source, signed=False), rate=rates,
        source_currency=st.just(source), target_currency=st.just(currency),
    ) for source in CURRENCIES if source != currency}
    fx = st.sampled_from(sorted(conversions)).flatmap(conversions.__getitem__)
    charges = st.lists(
        st.builds(Charge, amount=money(currency, max_units=10**4, signed=False),
                  included=st.booleans()),
        max_size=2,
    ).map(tuple) if "charges" in fields else st.just(())
    transactions = st.lists(
        st.builds(
            Transaction,
            amount=money(currency, signed=False),
            end_to_end_id=st.none() | _identifiers(),
            counterparty_name=st.none() | words(text),
            remittance=st.none() | words(text, max_size=60),
        ),
        min_size=2, max_size=4,
    ).map(tuple)
    references = _identifiers(max_size=16)
    ids = _identifiers()
    optional = {  # the optional fields drawn the same way, in this order
        "bank_reference": maybe("bank_reference", references),
        "customer_reference": maybe("customer_reference", references),
        "counterparty_name": maybe("counterparty_name", words(text)),
        "counterparty_account": maybe("counterparty_account", st.sampled_from(IBANS)),
        "counterparty_bic": maybe("counterparty_bic", st.sampled_from(BICS)),
        "end_to_end_id": maybe("end_to_end_id", ids),
        "mandate_id": maybe("mandate_id", ids),
        "remittance": maybe("remittance", words(text, max_size=100)),
        "creditor_reference": maybe("creditor_reference", st.sampled_from(
            ("RF18539007547034", "RF712348231"))),
        "additional_info": maybe("additional_info", words(text, max_size=60)),
    }
    amounts = money(currency).filter(lambda m: m.amount != 0)
    statuses = st.sampled_from((EntryStatus.BOOKED, EntryStatus.PENDING))
    value_shifts = maybe("value_date", st.integers(-3, 3))  # days from the booking day

    @st.composite
    def entry(draw: st.DrawFn) -> Callable[[date], Entry]:
        amount = draw(amounts)
        reversal = draw(st.booleans()) if "reversal" in fields else False
        status = draw(statuses) if "status" in fields else EntryStatus.BOOKED
        code = draw(codes) if "bank_transaction_code" in fields else None
        foreign = draw(fx) if "fx" in fields and draw(st.booleans()) else None
        charged = draw(charges)
        parts = (draw(transactions) if "transactions" in fields and draw(st.booleans())
                 else ())
        shift = draw(value_shifts)
        drawn = {name: draw(strategy) for name, strategy in optional.items()}
        return lambda day: Entry(
            amount=amount, booking_date=day,
            value_date=None if shift is None else day + timedelta(days=shift),
            status=status, reversal=reversal, bank_transaction_code=code, fx=foreign,
            charges=charged, transactions=parts, **drawn)

    return entry()


@functools.cache
def _lines(currency: str, days: int, fields: frozenset[str], text: str | st.SearchStrategy[str],
           max_entries: int) -> st.SearchStrategy[list[tuple[int, Callable[[date], Entry]]]]:
    """Up to ``max_entries`` entries, each with its day of the period (0 to ``days``)."""
    return st.lists(st.tuples(st.integers(0, days), _entries(currency, fields, text)),
                    max_size=max_entries)


@st.composite
def statements(
    draw: st.DrawFn,
    *,
    format: str,
    entry_fields: frozenset[str] = ALL_ENTRY_FIELDS,
    statement_fields: frozenset[str] = ALL_STATEMENT_FIELDS,
    text: str | st.SearchStrategy[str] = XML_TEXT,
    currencies: tuple[str, ...] = CURRENCIES,
    max_entries: int = 12,
) -> Statement:
    """A statement that ``format``'s writer can carry whole; its balances add up."""
    has = statement_fields.__contains__
    currency = draw(st.sampled_from(currencies))
    start = draw(st.dates(date(2000, 1, 1), date(2090, 12, 1)))
    days = draw(st.integers(0, 20))
    end = start + timedelta(days=days)
    lines = [make(start + timedelta(days=d)) for d, make in draw(
        _lines(currency, days, entry_fields, text, max_entries))]
    lines.sort(key=lambda e: e.booking_date or start)
    opening = closing = None
    if has("opening_balance"):
        opening_amount = draw(money(currency))
        opening = Balance(opening_amount, start, BalanceKind.OPENING_BOOKED)
        booked = sum((e.amount.amount for e in lines if e.status is EntryStatus.BOOKED),
                     Decimal(0))
        if has("closing_balance"):
            closing = Balance(Money(opening_amount.amount + booked, currency), end,
                              BalanceKind.CLOSING_BOOKED)
    available: tuple[Balance, ...] = ()
    if has("available_balances") and draw(st.booleans()):
        available = (Balance(draw(money(currency)), end, BalanceKind.CLOSING_AVAILABLE),)
    iban = draw(st.sampled_from(IBANS)) if has("iban") and draw(st.booleans()) else None
    number = None if iban or not has("number") else draw(words(string.digits, max_size=12))
    created = None
    if has("created_at"):
        created = draw(st.none() | st.datetimes(
            datetime(2000, 1, 1), datetime(2090, 12, 31)
        ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC)))
    return Statement(
        source="generated",
        format=format,
        account=Account(
            iban=iban,
            number=number if iban is None else None,
            bic=draw(st.none() | st.sampled_from(BICS)) if has("bic") else None,
            currency=currency,
            owner_name=draw(st.none() | words(text)) if has("owner_name") else None,
        ),
        entries=tuple(lines),
        statement_id=draw(words(string.ascii_uppercase + string.digits, max_size=16))
        if has("statement_id") else None,
        sequence=str(draw(st.integers(1, 99999))) if has("sequence") else None,
        created_at=created,
        period_start=start if has("period") else None,
        period_end=end if has("period") else None,
        opening_balance=opening,
        closing_balance=closing,
        available_balances=available,
    )
