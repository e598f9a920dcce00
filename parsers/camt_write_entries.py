"""Writing camt.053 entries (``Ntry``, ``TxDtls``) and the values in them.

``EntryWriter`` builds elements in the order the schema of camt.053.001.02, .04 and .08
wants; ``parsers.camt_write`` adds the statement around them. Every value is checked to be
one a camt reader takes back unchanged (``text``, ``digits``, ``remittance_lines``); what
is not is a ``WriteError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from parsers.camt_entries import NOT_PROVIDED, dk_codes
from parsers.errors import WriteError
from parsers.model import (
    BankTransactionCode,
    Charge,
    Entry,
    EntryStatus,
    FxDetails,
    Transaction,
)
from parsers.money import Money

Element = etree._Element

_STATUS = {EntryStatus.BOOKED: "BOOK", EntryStatus.PENDING: "PDNG", EntryStatus.INFO: "INFO"}
IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_BIC_OLD = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?")  # .02 and .04
_BIC_2014 = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")  # .08 on
# Characters XML 1.0 cannot hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_USTRD = 140  # Max140Text per Ustrd line


def text(value: str, limit: int, what: str) -> str:
    """``value`` checked to come back unchanged from a camt text element of ``limit``."""
    if not value or value != value.strip():
        raise WriteError(f"{what} {value!r} cannot be written: camt readers strip blanks "
                         "around text and take empty text as none")
    if _NOT_XML.search(value):
        raise WriteError(f"{what} {value!r} holds characters XML cannot carry")
    if len(value) > limit:
        raise WriteError(f"{what} is {len(value)} characters, over the {limit} camt allows")
    return value


def digits(value: Decimal, fraction: int, total: int, what: str) -> str:
    """``value`` as plain decimal text within the schema's digit limits."""
    for candidate in (value, value.normalize()):
        written = format(candidate, "f")
        whole, _, part = written.lstrip("-").partition(".")
        if len(part) <= fraction and len(whole.lstrip("0")) + len(part) <= total:
            return written
    raise WriteError(f"{what} {value} has more digits than camt allows "
                     f"({total} in all, {fraction} after the point)")


def remittance_lines(remittance: str) -> list[str]:
    """Split ``remittance`` into Ustrd lines at single spaces, so joining them with a space
    gives it back; a WriteError if no such split exists."""
    text(remittance, len(remittance), "remittance")
    lines: list[str] = []
    rest = remittance
    while len(rest) > _USTRD:
        cut = next((i for i in range(min(_USTRD, len(rest) - 2), 0, -1)
                    if rest[i] == " " and not rest[i - 1].isspace()
                    and not rest[i + 1].isspace()), None)
        if cut is None:
            raise WriteError(f"remittance {remittance[:40]!r}... has a run of over {_USTRD} "
                             "characters without a single space: it cannot be cut into "
                             "Ustrd lines and read back the same")
        lines.append(rest[:cut])
        rest = rest[cut + 1:]
    lines.append(rest)
    return lines


@dataclass(frozen=True, slots=True)
class EntryWriter:
    """Builds camt.053 elements of one schema version (``number``: 2, 4 or 8)."""

    namespace: str
    number: int  # 2, 4 or 8

    def el(self, parent: Element, name: str, value: str | None = None,
           **attributes: str) -> Element:
        node = etree.SubElement(parent, f"{{{self.namespace}}}{name}", attributes)
        if value is not None:
            node.text = value
        return node

    # -- values ---------------------------------------------------------------------------

    def amount(self, parent: Element, name: str, money: Money, what: str) -> Element:
        return self.el(parent, name, digits(abs(money.amount), 5, 18, what),
                       Ccy=money.currency)

    def direction(self, parent: Element, money: Money) -> None:
        self.el(parent, "CdtDbtInd", "DBIT" if money.amount < 0 else "CRDT")

    def bic(self, institution: Element, bic: str, what: str) -> None:
        pattern = _BIC_OLD if self.number < 8 else _BIC_2014
        if not pattern.fullmatch(bic):
            raise WriteError(f"{what} {bic!r} is not a BIC camt.053.001.0{self.number} accepts")
        self.el(institution, "BIC" if self.number == 2 else "BICFI", bic)

    def account_id(self, parent: Element, ident: str, what: str) -> None:
        node = self.el(parent, "Id")
        if IBAN.fullmatch(ident):
            self.el(node, "IBAN", ident)
        else:
            self.el(self.el(node, "Othr"), "Id", text(ident, 34, what))

    def party(self, parent: Element, name: str, party_name: str) -> None:
        holder = self.el(parent, name)
        if self.number >= 8:
            holder = self.el(holder, "Pty")
        self.el(holder, "Nm", text(party_name, 140, "counterparty name"))
    # -- entries --------------------------------------------------------------------------

    def entry(self, parent: Element, entry: Entry, where: str) -> None:
        ntry = self.el(parent, "Ntry")
        if entry.customer_reference is not None:
            self.el(ntry, "NtryRef", text(entry.customer_reference, 35, "entry reference"))
        self.amount(ntry, "Amt", entry.amount, f"{where} amount")
        self.direction(ntry, entry.amount)
        if entry.reversal:
            self.el(ntry, "RvslInd", "true")
        status = _STATUS[entry.status]
        if self.number >= 8:
            self.el(self.el(ntry, "Sts"), "Cd", status)
        else:
            self.el(ntry, "Sts", status)
        if entry.booking_date is not None:
            self.el(self.el(ntry, "BookgDt"), "Dt", entry.booking_date.isoformat())
        if entry.value_date is not None:
            self.el(self.el(ntry, "ValDt"), "Dt", entry.value_date.isoformat())
        if entry.bank_reference is not None:
            self.el(ntry, "AcctSvcrRef", text(entry.bank_reference, 35, "bank reference"))
        self.transaction_code(ntry, entry.bank_transaction_code, where, required=True)
        self.fx(ntry, entry.fx, entry.amount, where)
        self.charges(ntry, entry.charges, where)
        if entry.transactions:
            self._batch(ntry, entry, where)
        elif _has_details(entry):
            details = self.el(self.el(ntry, "NtryDtls"), "TxDtls")
            self.details(details, _folded(entry), entry, where, folded=True)
        if entry.additional_info is not None:
            self.el(ntry, "AddtlNtryInf", text(entry.additional_info, 500, "additional info"))

    def _batch(self, ntry: Element, entry: Entry, where: str) -> None:
        if _has_details(entry):
            raise WriteError(f"{where}: a batch entry carries counterparty, references and "
                             "remittance per transaction (TxDtls), not on the entry")
        holder = self.el(ntry, "NtryDtls")
        batch = self.el(holder, "Btch")
        if len(entry.transactions) > 1:  # a batch of one is told by Btch without NbOfTxs
            self.el(batch, "NbOfTxs", str(len(entry.transactions)))
        for index, tx in enumerate(entry.transactions, 1):
            self.details(self.el(holder, "TxDtls"), tx, entry, f"{where} transaction {index}",
                         folded=False)

    def details(self, node: Element, tx: Transaction, entry: Entry, where: str,
                *, folded: bool) -> None:
        """One TxDtls. ``folded``: the entry's own details, its amount is the entry's."""
        money = entry.amount if folded else tx.amount
        credit = (money if money is not None else entry.amount).amount >= 0
        if self.number == 2 and not folded and credit != (entry.amount.amount >= 0):
            raise WriteError(f"{where}: camt.053.001.02 has no direction for a transaction "
                             "against its entry's")
        refs = [(name, value) for name, value in (
            ("AcctSvcrRef", None if folded else tx.bank_reference),
            ("EndToEndId", tx.end_to_end_id), ("MndtId", tx.mandate_id)) if value is not None]
        if refs:
            holder = self.el(node, "Refs")
            for name, value in refs:
                if name == "EndToEndId" and value == NOT_PROVIDED:
                    raise WriteError(f"{where}: end-to-end id {NOT_PROVIDED} means none to a "
                                     "camt reader")
                self.el(holder, name, text(value, 35, f"{where} {name}"))
        if self.number >= 4:
            if money is None and self.number == 4:
                raise WriteError(f"{where}: camt.053.001.04 needs a transaction amount")
            if money is not None:
                self.amount(node, "Amt", money, f"{where} amount")
                self.direction(node, money)
        if not folded:
            tx_amount = money if self.number == 2 else None
            self.fx(node, tx.fx, money, where, tx_amount=tx_amount)
            self.transaction_code(node, tx.bank_transaction_code, where, required=False)
            self.charges(node, tx.charges, where)
        side, agent = ("Dbtr", "DbtrAgt") if credit != entry.reversal else ("Cdtr", "CdtrAgt")
        if tx.counterparty_name is not None or tx.counterparty_account is not None:
            parties = self.el(node, "RltdPties")
            if tx.counterparty_name is not None:
                self.party(parties, side, tx.counterparty_name)
            if tx.counterparty_account is not None:
                self.account_id(self.el(parties, f"{side}Acct"), tx.counterparty_account,
                                "counterparty account")
        if tx.counterparty_bic is not None:
            self.bic(self.el(self.el(self.el(node, "RltdAgts"), agent), "FinInstnId"),
                     tx.counterparty_bic, f"{where} counterparty BIC")
        if tx.remittance is not None or tx.creditor_reference is not None:
            rmt = self.el(node, "RmtInf")
            for line in remittance_lines(tx.remittance) if tx.remittance is not None else []:
                self.el(rmt, "Ustrd", line)
            if tx.creditor_reference is not None:
                self.el(self.el(self.el(rmt, "Strd"), "CdtrRefInf"), "Ref",
                        text(tx.creditor_reference, 35, "creditor reference"))

    def transaction_code(self, parent: Element, code: BankTransactionCode | None, where: str,
                         *, required: bool) -> None:
        if code == BankTransactionCode():
            raise WriteError(f"{where}: an empty bank transaction code reads back as none")
        if code is None:
            if required:
                self.el(parent, "BkTxCd")
            return
        node = self.el(parent, "BkTxCd")
        domain = (code.domain, code.family, code.subfamily)
        if any(domain):
            if not all(domain):
                raise WriteError(f"{where}: camt needs domain, family and sub-family of a bank "
                                 f"transaction code together, not {domain}")
            domn = self.el(node, "Domn")
            self.el(domn, "Cd", text(code.domain or "", 4, "domain code"))
            family = self.el(domn, "Fmly")
            self.el(family, "Cd", text(code.family or "", 4, "family code"))
            self.el(family, "SubFmlyCd", text(code.subfamily or "", 4, "sub-family code"))
        if (code.swift, code.gvc) != dk_codes(code.proprietary, code.issuer):
            raise WriteError(f"{where}: camt carries a SWIFT code or GVC only inside a DK "
                             f"proprietary code (such as NMSC+201), not {code}")
        if code.proprietary is not None:
            prtry = self.el(node, "Prtry")
            self.el(prtry, "Cd", text(code.proprietary, 35, "proprietary code"))
            if code.issuer is not None:
                self.el(prtry, "Issr", text(code.issuer, 35, "code issuer"))
        elif code.issuer is not None:
            raise WriteError(f"{where}: an issuer without a proprietary code (BkTxCd/Prtry)")

    def fx(self, parent: Element, fx: FxDetails | None, money: Money | None, where: str,
           *, tx_amount: Money | None = None) -> None:
        if fx == FxDetails():
            raise WriteError(f"{where}: empty FX details read back as none")
        exchange = fx is not None and (fx.rate is not None or fx.source_currency is not None
                                       or fx.target_currency is not None)
        if fx is None or (fx.instructed_amount is None and not exchange):
            if tx_amount is not None:
                self.amount(self.el(self.el(parent, "AmtDtls"), "TxAmt"), "Amt", tx_amount,
                            f"{where} amount")
            return
        if exchange and (fx.rate is None or fx.source_currency is None):
            raise WriteError(f"{where}: a camt currency exchange (CcyXchg) needs a source "
                             "currency and a rate")
        details = self.el(parent, "AmtDtls")
        if fx.instructed_amount is not None:
            if fx.instructed_amount.amount < 0:
                raise WriteError(f"{where}: an instructed amount is never negative in camt")
            instructed = self.el(details, "InstdAmt")
            self.amount(instructed, "Amt", fx.instructed_amount, f"{where} instructed amount")
            if exchange:
                self._exchange(instructed, fx, where)
        if tx_amount is not None or (exchange and fx.instructed_amount is None):
            holder = tx_amount if tx_amount is not None else money
            if holder is None:
                raise WriteError(f"{where}: a currency exchange without an instructed amount "
                                 "needs the transaction amount to hang on")
            tx = self.el(details, "TxAmt")
            self.amount(tx, "Amt", holder, f"{where} amount")
            if exchange and fx.instructed_amount is None:
                self._exchange(tx, fx, where)

    def _exchange(self, parent: Element, fx: FxDetails, where: str) -> None:
        xchg = self.el(parent, "CcyXchg")
        self.el(xchg, "SrcCcy", fx.source_currency or "")
        if fx.target_currency is not None:
            self.el(xchg, "TrgtCcy", fx.target_currency)
        self.el(xchg, "XchgRate", digits(fx.rate or Decimal(0), 10, 11, f"{where} rate"))

    def charges(self, parent: Element, charges: Sequence[Charge], where: str) -> None:
        if not charges:
            return
        holder = self.el(parent, "Chrgs") if self.number >= 4 else parent
        for charge in charges:
            record = self.el(holder, "Rcrd" if self.number >= 4 else "Chrgs")
            self.amount(record, "Amt", charge.amount, f"{where} charge")
            self.direction(record, charge.amount)
            if charge.included is not None:
                if self.number < 4:
                    raise WriteError(f"{where}: camt.053.001.02 cannot say whether a charge "
                                     "is included (ChrgInclInd)")
                self.el(record, "ChrgInclInd", "true" if charge.included else "false")
            if charge.code is not None:
                code = text(charge.code, 35, "charge code")
                short = code in ("BRKF", "COMM") if self.number < 4 else len(code) <= 4
                tp = self.el(record, "Tp")
                if short:
                    self.el(tp, "Cd", code)
                else:
                    self.el(self.el(tp, "Prtry"), "Id", code)


def _has_details(entry: Entry) -> bool:
    return any(v is not None for v in (
        entry.end_to_end_id, entry.mandate_id, entry.counterparty_name,
        entry.counterparty_account, entry.counterparty_bic, entry.remittance,
        entry.creditor_reference))


def _folded(entry: Entry) -> Transaction:
    return Transaction(
        end_to_end_id=entry.end_to_end_id, mandate_id=entry.mandate_id,
        counterparty_name=entry.counterparty_name,
        counterparty_account=entry.counterparty_account,
        counterparty_bic=entry.counterparty_bic, remittance=entry.remittance,
        creditor_reference=entry.creditor_reference)
