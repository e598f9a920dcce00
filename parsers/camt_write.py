"""Writing statements as camt.053 (BkToCstmrStmt), versions .02, .04 and .08.

``write(statements)`` gives one camt.053 message with one ``Stmt`` per statement, carrying
everything the model holds that camt.053 can carry: account, ids, creation time, period,
all balances, entries with status, reversal, references, bank transaction codes, charges,
FX details, counterparty and remittance, and batch transactions. ``parsers.camt.parse``
reads it back to the same statements (flags, source and format aside).

What camt.053 cannot carry, or would be read back differently, is a ``WriteError``, and
nothing is written: never dropped or changed silently. For example a SWIFT code or GVC
(camt carries them only inside a DK proprietary code), a sequence that is not a number,
a text with leading or trailing blanks or past the schema's length, a statement with no
id or no account currency, or (in .02/.04) no creation time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from parsers.camt_statement import split_balances
from parsers.camt_write_entries import IBAN, EntryWriter, text
from parsers.errors import WriteError
from parsers.model import Account, Balance, Statement

Element = etree._Element

VERSIONS = ("camt.053.001.02", "camt.053.001.04", "camt.053.001.08")
DEFAULT_VERSION = "camt.053.001.08"

_NUMBER = re.compile(r"\d{1,18}")


@dataclass(frozen=True, slots=True)
class _StatementWriter(EntryWriter):
    """Adds the statement, its account and balances around the entries."""

    def statement(self, parent: Element, statement: Statement) -> None:
        where = f"statement {statement.statement_id!r}"
        stmt = self.el(parent, "Stmt")
        if statement.statement_id is None:
            raise WriteError(f"{where}: camt.053 needs a statement id (Stmt/Id)")
        self.el(stmt, "Id", text(statement.statement_id, 35, "statement id"))
        if statement.sequence is not None:
            if not _NUMBER.fullmatch(statement.sequence):
                raise WriteError(f"{where}: sequence {statement.sequence!r} is not a number "
                                 "(ElctrncSeqNb)")
            self.el(stmt, "ElctrncSeqNb", statement.sequence)
        if statement.created_at is not None:
            self.el(stmt, "CreDtTm", statement.created_at.astimezone(UTC).isoformat())
        elif self.number < 8:
            raise WriteError(f"{where}: camt.053.001.0{self.number} needs a creation time "
                             "(Stmt/CreDtTm)")
        if (statement.period_start is None) != (statement.period_end is None):
            raise WriteError(f"{where}: camt needs both ends of the period (FrToDt) or none")
        if statement.period_start is not None and statement.period_end is not None:
            period = self.el(stmt, "FrToDt")
            self.el(period, "FrDtTm", f"{statement.period_start.isoformat()}T00:00:00")
            self.el(period, "ToDtTm", f"{statement.period_end.isoformat()}T23:59:59")
        self.account(stmt, statement.account, where)
        for balance in self._balances(statement, where):
            self.balance(stmt, balance)
        for index, entry in enumerate(statement.entries, 1):
            self.entry(stmt, entry, f"{where} entry {index}")

    def account(self, parent: Element, account: Account, where: str) -> None:
        acct = self.el(parent, "Acct")
        if account.iban is not None and account.number is not None:
            raise WriteError(f"{where}: camt.053 holds an IBAN or another account number "
                             "(Acct/Id), not both")
        if account.iban is not None:
            if not IBAN.fullmatch(account.iban):
                raise WriteError(f"{where}: {account.iban!r} is not an IBAN camt accepts")
            self.el(self.el(acct, "Id"), "IBAN", account.iban)
        elif account.number is not None:
            self.el(self.el(self.el(acct, "Id"), "Othr"), "Id",
                    text(account.number, 34, "account number"))
        else:
            raise WriteError(f"{where}: camt.053 needs an account IBAN or number (Acct/Id)")
        if account.currency is None:
            raise WriteError(f"{where}: the account has no currency (Acct/Ccy); a camt reader "
                             "would take it from the balances")
        self.el(acct, "Ccy", account.currency)
        if account.owner_name is not None:
            self.el(self.el(acct, "Ownr"), "Nm", text(account.owner_name, 140, "owner name"))
        if account.bic is not None or account.bank_id is not None:
            institution = self.el(self.el(acct, "Svcr"), "FinInstnId")
            if account.bic is not None:
                self.bic(institution, account.bic, f"{where}: account BIC")
            if account.bank_id is not None:
                self.el(self.el(institution, "ClrSysMmbId"), "MmbId",
                        text(account.bank_id, 35, "bank id"))

    @staticmethod
    def _balances(statement: Statement, where: str) -> list[Balance]:
        """The balances in an order a reader takes back as the same opening and closing."""
        opening, closing = statement.opening_balance, statement.closing_balance
        others = list(statement.available_balances)
        heads = [b for b in (opening,) if b is not None]
        tails = [b for b in (closing,) if b is not None]
        if not heads + tails + others:
            raise WriteError(f"{where}: camt.053 needs at least one balance (Bal)")
        want = (opening, closing, statement.available_balances)
        for ordered in (heads + others + tails, heads + tails + others):
            if split_balances(ordered) == want:
                return ordered
        raise WriteError(
            f"{where}: these balances would be read back differently (opening {opening}, "
            f"closing {closing}): a camt reader takes OPBD, else PRCD, else the first of "
            "several ITBD as opening, and CLBD, else the last ITBD as closing")

    def balance(self, parent: Element, balance: Balance) -> None:
        bal = self.el(parent, "Bal")
        self.el(self.el(self.el(bal, "Tp"), "CdOrPrtry"), "Cd", balance.kind.value)
        self.amount(bal, "Amt", balance.amount, "balance amount")
        self.direction(bal, balance.amount)
        self.el(self.el(bal, "Dt"), "Dt", balance.date.isoformat())

def _message_id(statements: Sequence[Statement]) -> str:
    material = "\x1f".join(f"{s.account.key}|{s.statement_id}|{s.created_at}"
                           for s in statements)
    return "RG" + hashlib.sha256(material.encode()).hexdigest()[:32].upper()


def write(statements: Sequence[Statement], *, version: str = DEFAULT_VERSION,
          message_id: str | None = None, created_at: datetime | None = None) -> bytes:
    """``statements`` as one camt.053 message (UTF-8 XML bytes).

    ``created_at`` is the message's creation time (GrpHdr/CreDtTm); by default the latest
    statement creation time. ``message_id`` defaults to a hash of the statements' accounts,
    ids and times, so the same statements give the same bytes.
    """
    if version not in VERSIONS:
        raise WriteError(f"cannot write {version!r}: supported are {', '.join(VERSIONS)}")
    if not statements:
        raise WriteError("camt.053 needs at least one statement (Stmt)")
    if created_at is None:
        times = [s.created_at for s in statements if s.created_at is not None]
        if not times:
            raise WriteError("no statement has a creation time: pass created_at for the "
                             "message (GrpHdr/CreDtTm)")
        created_at = max(times)
    if created_at.tzinfo is None:
        raise WriteError("created_at must be timezone-aware")
    namespace = f"urn:iso:std:iso:20022:tech:xsd:{version}"
    builder = _StatementWriter(namespace, int(version.rsplit(".", 1)[1]))
    nsmap = {None: namespace}  # the default namespace; lxml-stubs type keys as str only
    document = etree.Element(f"{{{namespace}}}Document", nsmap=nsmap)  # type: ignore[arg-type]
    message = builder.el(document, "BkToCstmrStmt")
    header = builder.el(message, "GrpHdr")
    builder.el(header, "MsgId", text(message_id or _message_id(statements), 35, "message id"))
    builder.el(header, "CreDtTm", created_at.astimezone(UTC).isoformat())
    for statement in statements:
        builder.statement(message, statement)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
