"""One camt statement element (``Stmt``, ``Rpt`` or ``Ntfctn``): header, account, balances.

``StatementReader`` is given the statement's children one by one as the document streams
past: it hands back each entry as it is read (keeping only their number and currencies),
tells what is known of the statement before its first entry (``head``), and builds the
``Statement``, without its entries, at the end (``finish``).

Balances: our model keeps only booked balances as opening and closing (``split_balances``):
opening is OPBD, else PRCD, else the first of two or more ITBD; closing is CLBD, else the
last ITBD. Every other balance of a type the model knows goes to ``available_balances`` in
document order; one of another type (XPCD, proprietary) is left out with a flag.

Decisions, each reported as a flag on the statement when it applies:

- An opening or closing balance that is not OPBD/CLBD (``opening_balance_substitute``,
  ``closing_balance_substitute``).
- A ``CreDtTm`` without a UTC offset is taken as UTC (``timezone_assumed``); digits past
  microseconds are dropped (``time_truncated``).
- A balance without ``CdtDbtInd`` is taken as a credit (``balance_sign_assumed``).
- An account without ``Ccy`` gets the currency of its closing balance, else of its other
  balances, else of its entries when they agree (``currency_inferred``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from parsers import camt_entries, camt_fast
from parsers.camt_xml import (
    Element,
    Notes,
    Scope,
    Shapes,
    amount,
    child,
    credit_debit,
    currency_code,
    date_choice,
    iso_date,
    iso_datetime,
    signed,
    text,
)
from parsers.errors import ParseError
from parsers.model import Account, Balance, BalanceKind, Entry, Flag, Statement


def split_balances(
    balances: Sequence[Balance],
) -> tuple[Balance | None, Balance | None, tuple[Balance, ...]]:
    """(opening, closing, others) of one statement's balances, in document order.

    Opening: OPBD, else PRCD, else the first ITBD when there are two or more. Closing: CLBD,
    else the last ITBD (when it is not the opening). Others keep their order.
    """
    kinds = [b.kind for b in balances]

    def first(kind: BalanceKind) -> int | None:
        return kinds.index(kind) if kind in kinds else None

    interim = [i for i, k in enumerate(kinds) if k is BalanceKind.INTERIM_BOOKED]
    opening = first(BalanceKind.OPENING_BOOKED)
    if opening is None:
        opening = first(BalanceKind.PREVIOUSLY_CLOSED)
    if opening is None and len(interim) >= 2:
        opening = interim[0]
    closing = first(BalanceKind.CLOSING_BOOKED)
    if closing is None and interim and interim[-1] != opening:
        closing = interim[-1]
    others = tuple(b for i, b in enumerate(balances) if i not in (opening, closing))
    return (None if opening is None else balances[opening],
            None if closing is None else balances[closing], others)


def _account(scope: Scope, acct: Element) -> Account:
    ident = child(acct, "Id")
    iban = text(ident, "IBAN")
    number = None if iban else (
        text(ident, "Othr", "Id") or text(ident, "BBAN") or text(ident, "PrtryAcct", "Id")
        or text(ident, "UPIC"))
    if iban is None and number is None:
        raise scope.missing(acct, "Id", "an account identification (IBAN or Othr/Id)")
    currency_node = child(acct, "Ccy")
    institution = child(acct, "Svcr", "FinInstnId")
    return Account(
        iban=iban,
        number=number,
        bic=text(institution, "BICFI") or text(institution, "BIC"),
        bank_id=(text(institution, "ClrSysMmbId", "MmbId")
                 or text(institution, "ClrSysMmbId", "Id")),  # .01
        currency=currency_code(scope, currency_node) if currency_node is not None else None,
        owner_name=text(acct, "Ownr", "Nm") or text(acct, "Ownr", "Pty", "Nm"),
    )


_KINDS = {k.value: k for k in BalanceKind}


def _balance(scope: Scope, bal: Element, notes: Notes) -> Balance | None:
    kind_code = (text(bal, "Tp", "CdOrPrtry", "Cd") or text(bal, "Tp", "Cd")
                 or text(bal, "Tp", "CdOrPrtry", "Prtry") or text(bal, "Tp", "Prtry"))
    amount_node, day = child(bal, "Amt"), child(bal, "Dt")
    if amount_node is None:
        raise scope.missing(bal, "Amt", "the balance amount")
    if day is None:
        raise scope.missing(bal, "Dt", "the balance date")
    credit = credit_debit(scope, child(bal, "CdtDbtInd"))
    if credit is None:
        notes.add("balance_sign_assumed", "a balance has no CdtDbtInd: taken as a credit",
                  scope.path(bal))
    money = signed(amount(scope, amount_node), credit is not False)
    balance_date = date_choice(scope, day)
    kind = _KINDS.get(kind_code or "")
    if kind is None:
        notes.add("balance_type_unsupported",
                  f"a balance of type {kind_code!r} was left out: no such balance type in "
                  "the statement model", scope.path(bal))
        return None
    return Balance(money, balance_date, kind)


@dataclass(slots=True)
class StatementReader:
    """Collects one ``Stmt``/``Rpt``/``Ntfctn`` from its children as they end."""

    source: str
    path: str
    format: str
    format_version: str | None
    notes: Notes = field(default_factory=Notes)
    statement_id: str | None = None
    sequences: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    period: tuple[date | None, date | None] = (None, None)
    account: Account | None = None
    balances: list[Balance] = field(default_factory=list)
    entries: int = 0  # how many were read
    entry_currencies: set[str] = field(default_factory=set)
    shapes: Shapes = field(default_factory=Shapes)

    def add(self, node: Element, name: str, node_path: str) -> Entry | None:
        """Take in the child ``node`` (local name ``name``) of the statement element; the
        entry, if it is one."""
        scope = Scope(self.source, node, node_path)
        if name == "Ntry":
            nodes, layout = self.shapes.layout(node)
            entry = camt_fast.entry(scope, nodes, layout, self.notes)
            if entry is None:
                entry = camt_entries.entry(scope, layout.subtree(nodes), self.notes)
            self.entries += 1
            self.entry_currencies.add(entry.amount.currency)
            return entry
        if name == "Bal":
            balance = _balance(scope, node, self.notes)
            if balance is not None:
                self.balances.append(balance)
        elif name == "Acct":
            self.account = _account(scope, node)
        elif name == "Id":
            self.statement_id = text(node)
        elif name in ("ElctrncSeqNb", "LglSeqNb"):
            value = text(node)
            if value is not None:
                self.sequences[name] = value
        elif name == "CreDtTm":
            instant = iso_datetime(scope, node)
            self.created_at = instant.utc
            if instant.naive:
                self.notes.add("timezone_assumed", "the creation time has no UTC offset: "
                               "taken as UTC", node_path)
            if instant.truncated:
                self.notes.add("time_truncated", "the creation time was cut to microseconds",
                               node_path)
        elif name == "FrToDt":
            self.period = (self._period_end(scope, node, "Fr"), self._period_end(scope, node, "To"))
        return None

    @staticmethod
    def _period_end(scope: Scope, node: Element, side: str) -> date | None:
        moment = child(node, f"{side}DtTm")
        if moment is not None:
            return iso_datetime(scope, moment).local_date
        day = child(node, f"{side}Dt")
        return None if day is None else iso_date(scope, day)

    def head(self) -> Statement:
        """The statement as far as it is read, without entries (an account not read yet
        is an empty one): what a stream says before the first entry."""
        opening, closing, others = split_balances(self.balances)
        return self._statement(self.account or Account(), opening, closing, others,
                               self.notes.flags())

    def _statement(self, account: Account, opening: Balance | None, closing: Balance | None,
                   others: tuple[Balance, ...], flags: tuple[Flag, ...]) -> Statement:
        return Statement(
            source=self.source,
            format=self.format,
            account=account,
            entries=(),
            format_version=self.format_version,
            statement_id=self.statement_id,
            sequence=self.sequences.get("ElctrncSeqNb") or self.sequences.get("LglSeqNb"),
            created_at=self.created_at,
            period_start=self.period[0],
            period_end=self.period[1],
            opening_balance=opening,
            closing_balance=closing,
            available_balances=others,
            flags=flags,
        )

    def finish(self) -> Statement:
        """The whole statement but its entries (``entries`` says how many were read)."""
        if self.account is None:
            raise ParseError("expected an account (Acct) in the statement, found none",
                             source=self.source, path=f"{self.path}/Acct", field="Acct")
        opening, closing, others = split_balances(self.balances)
        for balance, which, usual in ((opening, "opening", "OPBD"), (closing, "closing", "CLBD")):
            if balance is not None and balance.kind.value != usual:
                self.notes.add(f"{which}_balance_substitute",
                               f"no {usual} balance: the {which} balance is the "
                               f"{balance.kind.value} balance of {balance.date}", self.path)
        account = self.account
        if account.currency is None:
            account = self._infer_currency(account, opening, closing, others)
        return self._statement(account, opening, closing, others, self.notes.flags())

    def _infer_currency(self, account: Account, opening: Balance | None,
                        closing: Balance | None, others: tuple[Balance, ...]) -> Account:
        candidates = [(b.amount.currency, f"{b.kind.value} balance")
                      for b in (closing, opening, *others[:1]) if b is not None]
        if len(self.entry_currencies) == 1:
            candidates.append((next(iter(self.entry_currencies)), "entries"))
        if not candidates:
            return account
        currency, what = candidates[0]
        self.notes.add("currency_inferred",
                       f"the account has no currency (Acct/Ccy): {currency} taken from the "
                       f"{what}", f"{self.path}/Acct")
        return replace(account, currency=currency)
