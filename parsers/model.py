"""The normalized statement model every parser produces.

One ``Statement`` per account statement or report, whatever the format: MT940/MT942,
camt.052/053/054 or OFX. Everything is immutable; collections are tuples. Dates are
``date``; instants are timezone-aware UTC ``datetime``. Amounts are ``Money`` (Decimal
plus ISO 4217 code), signed from the account holder's view: credit positive, debit
negative.

Field names follow the banks' words: ``booking_date`` (ISO BookgDt, SWIFT entry date),
``value_date``, ``bank_reference`` (the account servicer's reference: SWIFT :61: subfield
after ``//``, ISO AcctSvcrRef, OFX FITID), ``end_to_end_id``, ``mandate_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from parsers.money import Money


class EntryStatus(StrEnum):
    """ISO 20022 entry status (Sts): booked, pending, or for information only."""

    BOOKED = "booked"
    PENDING = "pending"
    INFO = "info"


class BalanceKind(StrEnum):
    """Balance types, named after ISO 20022 BalanceType12Code where one exists."""

    OPENING_BOOKED = "OPBD"  # MT940 :60F:, CAMT OPBD
    PREVIOUSLY_CLOSED = "PRCD"  # CAMT PRCD: previous closing booked, used as opening
    CLOSING_BOOKED = "CLBD"  # MT940 :62F:, CAMT CLBD
    INTERIM_BOOKED = "ITBD"  # CAMT ITBD, MT940 :60M: and :62M:
    OPENING_AVAILABLE = "OPAV"
    INTERIM_AVAILABLE = "ITAV"
    CLOSING_AVAILABLE = "CLAV"  # MT940 :64:
    FORWARD_AVAILABLE = "FWAV"  # MT940 :65:
    INFORMATION = "INFO"


@dataclass(frozen=True, slots=True)
class Balance:
    """A balance on a date. ``kind`` says which (opening booked, closing available, ...)."""

    amount: Money
    date: date
    kind: BalanceKind


@dataclass(frozen=True, slots=True)
class Flag:
    """Something a reader of the statement must know: a repair made, a check that failed.

    ``code`` is stable (``balance_mismatch``, ``encoding_guessed``, ...); ``message``
    says what and where in words; ``location`` is a line number or XML path when known.
    """

    code: str
    message: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """The account a statement is about."""

    iban: str | None = None
    number: str | None = None  # local / proprietary account id when no IBAN
    bic: str | None = None
    bank_id: str | None = None  # national bank code (BLZ, routing number, OFX BANKID)
    currency: str | None = None
    owner_name: str | None = None

    @property
    def key(self) -> str:
        """A stable key for the account: IBAN, else bank id and number, plus currency."""
        ident = self.iban or "/".join(p for p in (self.bank_id or self.bic, self.number) if p)
        return f"{ident}:{self.currency or ''}"


@dataclass(frozen=True, slots=True)
class BankTransactionCode:
    """The bank's classification of an entry, in whichever forms the file gives.

    ``swift`` is the 4-character SWIFT code of MT940 :61: (``NTRF``, ``NMSC``);
    ``gvc`` the German Geschäftsvorfallcode (``166``); ``domain``/``family``/``subfamily``
    the ISO 20022 structured code (``PMNT``/``RCDT``/``ESCT``); ``proprietary`` any
    bank-specific code with its ``issuer``.
    """

    swift: str | None = None
    gvc: str | None = None
    domain: str | None = None
    family: str | None = None
    subfamily: str | None = None
    proprietary: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class FxDetails:
    """Currency exchange behind an entry: the instructed amount and the rate applied.

    ``rate`` converts ``source_currency`` into ``target_currency`` (ISO CcyXchg: one unit
    of source = rate units of target). ``instructed_amount`` is unsigned: what the payer
    instructed, in its own currency; the entry's amount carries the direction.
    """

    instructed_amount: Money | None = None
    rate: Decimal | None = None
    source_currency: str | None = None
    target_currency: str | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge the bank reports on an entry. ``included`` is ISO ChrgInclInd.

    ``amount`` is signed from the account holder's view like entries: a charge the holder
    pays is negative.
    """

    amount: Money
    included: bool | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction inside an entry (ISO TxDtls); a batch entry carries several."""

    amount: Money | None = None
    bank_reference: str | None = None
    end_to_end_id: str | None = None
    mandate_id: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_bic: str | None = None
    remittance: str | None = None
    creditor_reference: str | None = None
    bank_transaction_code: BankTransactionCode | None = None
    fx: FxDetails | None = None
    charges: tuple[Charge, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a statement (MT940 :61:+:86:, ISO Ntry, OFX STMTTRN).

    For an entry with one transaction its details are on the entry itself; a batch entry
    (ISO ``Btch`` or several ``TxDtls``) lists its transactions in ``transactions`` and
    keeps on the entry only what the bank says of the whole.
    """

    amount: Money
    booking_date: date | None
    value_date: date | None = None
    status: EntryStatus = EntryStatus.BOOKED
    reversal: bool = False
    bank_reference: str | None = None
    customer_reference: str | None = None  # MT940 reference for the account owner, ISO NtryRef
    bank_transaction_code: BankTransactionCode | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_bic: str | None = None
    end_to_end_id: str | None = None
    mandate_id: str | None = None
    remittance: str | None = None
    creditor_reference: str | None = None
    fx: FxDetails | None = None
    charges: tuple[Charge, ...] = ()
    transactions: tuple[Transaction, ...] = ()
    additional_info: str | None = None  # raw MT940 :86: or ISO AddtlNtryInf, when not parsed away

    @property
    def currency(self) -> str:
        return self.amount.currency


# What ``Statement.format`` may be: the message type, the one name of a format everywhere
# (parse output, the API, events, the database). A parser module's family ("camt") is not one.
FORMAT_NAMES = ("mt940", "mt942", "camt.052", "camt.053", "camt.054", "ofx")


@dataclass(frozen=True, slots=True)
class Statement:
    """One account statement, report or notification, as the bank sent it.

    ``format`` is one of ``FORMAT_NAMES``: ``mt940``, ``mt942``, ``camt.052``, ``camt.053``,
    ``camt.054``, ``ofx``; ``format_version`` the precise schema (``camt.053.001.02``,
    ``OFX 102``).
    ``opening_balance``/``closing_balance`` are booked balances (``None`` when the file
    has none); other balances are in ``available_balances``.
    """

    source: str
    format: str
    account: Account
    entries: tuple[Entry, ...]
    format_version: str | None = None
    statement_id: str | None = None
    sequence: str | None = None  # MT940 :28C:, ISO ElctrncSeqNb / LglSeqNb
    created_at: datetime | None = None
    period_start: date | None = None
    period_end: date | None = None
    opening_balance: Balance | None = None
    closing_balance: Balance | None = None
    available_balances: tuple[Balance, ...] = ()
    flags: tuple[Flag, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.format not in FORMAT_NAMES:
            raise ValueError(f"Statement.format must be one of {', '.join(FORMAT_NAMES)}, "
                             f"got {self.format!r}")
        if self.created_at is not None and self.created_at.tzinfo is None:
            raise ValueError("Statement.created_at must be timezone-aware")

    @property
    def currency(self) -> str | None:
        return self.account.currency

    def booked_total(self) -> Money | None:
        """Sum of booked entries in the statement's currency, or None without one."""
        if self.currency is None:
            return None
        total = Money(Decimal(0), self.currency)
        for entry in self.entries:
            if entry.status is EntryStatus.BOOKED:
                total = total + entry.amount
        return total
