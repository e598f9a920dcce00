"""Statements out as SWIFT MT940, the inverse of ``parsers.mt940`` for what MT940 carries.

Output: UTF-8, CRLF line ends, no SWIFT envelope; per statement ``:20:`` ``:25:`` (``:25P:``
with the BIC on its second line when there is one) [``:28C:``]
``:60F:``/``:60M:`` then per entry ``:61:`` [``:86:``], then ``:62F:``/``:62M:`` [``:64:``]
[``:65:``...] and a ``-`` line.

``:86:`` is written in the SWIFT / Dutch code dialect, each value closed by ``/``::

    /EREF/<end_to_end_id>//MARF/<mandate_id>//NAME/<counterparty_name>/
    /IBAN/<counterparty_account>//BIC/<counterparty_bic>//REMI/<remittance>/
    /CDTRREF/<creditor_reference>/

cut into lines of at most 65 characters anywhere (the reader joins them without a
separator), at most 6 lines. An entry with only ``additional_info`` gets it as free text.
A missing transaction type is written ``NMSC`` (miscellaneous), a missing owner's reference
``NONREF``; a statement without ``sequence`` gets no ``:28C:``.

Anything MT940 cannot carry raises ``WriteError`` naming the statement, entry and field:
charges, FX details, batch transactions, ISO or GVC transaction codes, an owner name, a
creation time or period, statuses other than booked and pending, references over 16
characters, text over the :86: limits. As a last guard every statement written is read
back with ``parsers.mt940`` and must come out as it went in; nothing is ever truncated.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from parsers import mt940
from parsers.errors import ParseError, WriteError
from parsers.model import (
    Balance,
    BalanceKind,
    BankTransactionCode,
    Entry,
    EntryStatus,
    Statement,
)

LINE = 65  # characters per :86: line
LINES = 6  # lines per :86:
REFERENCE = 16  # 16x references
AMOUNT = 15  # 15d, the comma included
DEFAULT_TYPE = "NMSC"

_OPENING = {BalanceKind.OPENING_BOOKED: "60F", BalanceKind.INTERIM_BOOKED: "60M"}
_CLOSING = {BalanceKind.CLOSING_BOOKED: "62F", BalanceKind.INTERIM_BOOKED: "62M"}
_AVAILABLE = {BalanceKind.CLOSING_AVAILABLE: "64", BalanceKind.FORWARD_AVAILABLE: "65"}
_CODES = (
    ("end_to_end_id", "EREF"),
    ("mandate_id", "MARF"),
    ("counterparty_name", "NAME"),
    ("counterparty_account", "IBAN"),
    ("counterparty_bic", "BIC"),
    ("remittance", "REMI"),
    ("creditor_reference", "CDTRREF"),
)
_SWIFT_TYPE = re.compile(r"[NFS][A-Z0-9]{3}")
_STATEMENT_NUMBER = re.compile(r"\d{1,5}(?:/\d{1,5})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# A :86: continuation line must not start like a tag, a terminator or an envelope block.
_UNSAFE_LINE_START = frozenset(":-{")


def write(statements: Sequence[Statement]) -> bytes:
    """The statements as one MT940 document; ``WriteError`` if any cannot be carried whole."""
    out = []
    for number, statement in enumerate(statements, start=1):
        text = _Writer(statement, number).message()
        _check_read_back(statement, text, number)
        out.append(text)
    return "".join(out).encode("utf-8")


class _Writer:
    def __init__(self, statement: Statement, number: int) -> None:
        self.statement = statement
        self.name = f"statement {number}" + (
            f" ({statement.statement_id})" if statement.statement_id else "")
        self.lines: list[str] = []

    def fail(self, what: str, entry: int | None = None) -> WriteError:
        where = self.name + (f", entry {entry}" if entry is not None else "")
        return WriteError(f"{where}: {what}")

    def text(self, value: str, what: str, entry: int | None = None, *,
             limit: int | None = None) -> str:
        if value != value.strip() or not value:
            raise self.fail(f"{what} {value!r} is blank or has blanks at its ends, which "
                            "MT940 does not keep", entry)
        if _CONTROL.search(value):
            raise self.fail(f"{what} contains a line break or control character", entry)
        if limit is not None and len(value) > limit:
            raise self.fail(f"{what} {value!r} is longer than the {limit} characters MT940 "
                            "allows", entry)
        return value

    def message(self) -> str:
        s = self.statement
        if s.created_at is not None:
            raise self.fail("created_at: MT940 has no creation time (MT942 :13D: has)")
        if s.period_start is not None or s.period_end is not None:
            raise self.fail("period_start/period_end: MT940 has no statement period")
        if s.account.owner_name:
            raise self.fail("account.owner_name: MT940 has no field for the account owner")
        if s.statement_id is None:
            raise self.fail("statement_id: MT940 needs a :20: reference")
        if s.opening_balance is None or s.closing_balance is None:
            raise self.fail("MT940 needs both an opening and a closing booked balance")
        currency = s.opening_balance.amount.currency
        if s.account.currency not in (None, currency):
            raise self.fail(f"account.currency {s.account.currency} differs from the "
                            f"opening balance's {currency}")
        self.put("20", self.text(s.statement_id, "statement_id", limit=REFERENCE))
        account, bic = self.account()
        if bic:
            self.put("25P", account)  # option P: the account, then the BIC on a line of its own
            self.lines.append(bic)
        else:
            self.put("25", account)
        if s.sequence is not None:
            if not _STATEMENT_NUMBER.fullmatch(s.sequence):
                raise self.fail(f"sequence {s.sequence!r} is not an MT940 statement number "
                                "5n[/5n]")
            self.put("28C", s.sequence)
        self.put(self.kind(_OPENING, s.opening_balance, "opening_balance"),
                 self.balance(s.opening_balance, "opening_balance"))
        for index, entry in enumerate(s.entries, start=1):
            if entry.amount.currency != currency:
                raise self.fail(f"amount: in {entry.amount.currency}, the statement is in "
                                f"{currency}; MT940 entries carry no currency", index)
            self.put("61", self.statement_line(entry, index))
            details = self.details(entry, index)
            if details:
                self.lines.append(":86:" + details[0])
                self.lines.extend(details[1:])
        self.put(self.kind(_CLOSING, s.closing_balance, "closing_balance"),
                 self.balance(s.closing_balance, "closing_balance"))
        for position, balance in enumerate(s.available_balances, start=1):
            tag = self.kind(_AVAILABLE, balance, f"available_balances[{position}]")
            self.put(tag, self.balance(balance, f"available_balances[{position}]"))
        self.lines.append("-")
        return "".join(line + "\r\n" for line in self.lines)

    def put(self, tag: str, value: str) -> None:
        self.lines.append(f":{tag}:{value}")

    def kind(self, tags: dict[BalanceKind, str], balance: Balance, what: str) -> str:
        if balance.kind not in tags:
            raise self.fail(f"{what}: MT940 has no field for a {balance.kind.value} balance")
        return tags[balance.kind]

    def account(self) -> tuple[str, str | None]:
        """``:25:`` (bank code/number, IBAN or number), or ``:25P:`` with the BIC apart."""
        a = self.statement.account
        if a.bic and a.bank_id:
            raise self.fail("account: MT940 :25: carries a BIC or a bank code, not both")
        ident = a.iban or a.number
        if ident is None:
            raise self.fail("account: MT940 :25: needs an IBAN or an account number")
        value = f"{a.bank_id}/{ident}" if a.bank_id else ident
        bic = self.text(a.bic, "account.bic", limit=11) if a.bic else None
        return self.text(value, "account", limit=35), bic

    def amount(self, value: Decimal, what: str, entry: int | None = None) -> str:
        text = f"{abs(value):f}".replace(".", ",")
        text = text if "," in text else text + ","
        if len(text) > AMOUNT:
            raise self.fail(f"{what} {value} has more than the 15 characters of an MT940 "
                            "amount", entry)
        return text

    def date(self, value: date, what: str, entry: int | None = None) -> str:
        if not 1980 <= value.year <= 2079:
            raise self.fail(f"{what} {value}: a two-digit MT940 year reads as 1980-2079",
                            entry)
        return value.strftime("%y%m%d")

    def balance(self, balance: Balance, what: str) -> str:
        mark = "D" if balance.amount.amount < 0 else "C"
        return (mark + self.date(balance.date, what) + balance.amount.currency
                + self.amount(balance.amount.amount, what))

    def statement_line(self, entry: Entry, index: int) -> str:
        for name in ("fx", "charges", "transactions"):
            if getattr(entry, name):
                raise self.fail(f"{name}: MT940 has no field for it", index)
        if entry.value_date is None:
            raise self.fail("value_date: MT940 :61: needs a value date", index)
        if entry.status is EntryStatus.INFO:
            raise self.fail("status info: MT940 :61: carries booked or expected entries",
                            index)
        negative = entry.amount.amount < 0
        if entry.status is EntryStatus.PENDING:
            if entry.reversal:
                raise self.fail("a pending reversal: MT940 has no mark for it", index)
            mark = "ED" if negative else "EC"
        elif entry.reversal:
            mark = "RC" if negative else "RD"
        else:
            mark = "D" if negative else "C"
        line = self.date(entry.value_date, "value_date", index)
        if entry.booking_date is not None:
            self.date(entry.booking_date, "booking_date", index)
            line += entry.booking_date.strftime("%m%d")
        line += mark + self.amount(entry.amount.amount, "amount", index)
        line += self.transaction_type(entry.bank_transaction_code, index)
        owner = entry.customer_reference
        if owner is not None and owner.upper() == "NONREF":
            raise self.fail("customer_reference 'NONREF' would read back as none", index)
        line += self.text(owner, "customer_reference", index, limit=REFERENCE) if owner \
            else "NONREF"
        if entry.bank_reference is not None:
            line += "//" + self.text(entry.bank_reference, "bank_reference", index,
                                     limit=REFERENCE)
        return line

    def transaction_type(self, code: BankTransactionCode | None, index: int) -> str:
        if code is None:
            return DEFAULT_TYPE
        others = [f.name for f in dataclasses.fields(code)
                  if f.name != "swift" and getattr(code, f.name) is not None]
        if others:
            raise self.fail("bank_transaction_code: MT940 carries only the SWIFT type, not "
                            + ", ".join(others), index)
        if code.swift is None:
            return DEFAULT_TYPE
        if not _SWIFT_TYPE.fullmatch(code.swift):
            raise self.fail(f"bank_transaction_code.swift {code.swift!r} is not a SWIFT type "
                            "(N, F or S and 3 letters or digits)", index)
        return code.swift

    def details(self, entry: Entry, index: int) -> list[str]:
        coded = [(code, getattr(entry, name), name) for name, code in _CODES
                 if getattr(entry, name) is not None]
        if coded and entry.additional_info is not None:
            raise self.fail("additional_info: MT940 :86: holds either codes or free text; "
                            "this entry has both", index)
        if entry.additional_info is not None:
            return self.free_text(entry.additional_info, index)
        if not coded:
            return []
        text = "".join(f"/{code}/{self.text(value, name, index)}/" for code, value, name
                       in coded)
        lines = _cut(text)
        if len(lines) > LINES:
            raise self.fail(f"the :86: text would take {len(lines)} lines of {LINE} "
                            f"characters; MT940 allows {LINES}", index)
        return lines

    def free_text(self, text: str, index: int) -> list[str]:
        lines = text.split("\n")
        if len(lines) > LINES or any(len(line) > LINE for line in lines):
            raise self.fail(f"additional_info does not fit {LINES} lines of {LINE} "
                            "characters", index)
        for line in lines:
            if line != line.rstrip() or _CONTROL.search(line):
                raise self.fail("additional_info has blanks at a line end or control "
                                "characters", index)
        return lines


def _cut(text: str) -> list[str]:
    """``text`` in lines of at most 65 characters, none starting like a tag or terminator."""
    lines = []
    start = 0
    while len(text) - start > LINE:
        end = start + LINE
        while end > start + 1 and text[end] in _UNSAFE_LINE_START:
            end -= 1
        lines.append(text[start:end])
        start = end
    lines.append(text[start:])
    return lines


def _comparable(statement: Statement) -> Statement:
    """What a read-back statement must equal: without what MT940 does not carry."""
    default = BankTransactionCode(swift=DEFAULT_TYPE)
    entries = tuple(
        dataclasses.replace(e, bank_transaction_code=None)
        if e.bank_transaction_code == default else e
        for e in statement.entries
    )
    return dataclasses.replace(
        statement,
        source="",
        format="mt940",
        format_version=None,
        account=dataclasses.replace(statement.account, currency=None),
        entries=entries,
        flags=(),
    )


def _check_read_back(statement: Statement, text: str, number: int) -> None:
    """Read ``text`` back; it must give ``statement`` again, else name what differs."""
    try:
        (back,) = mt940.parse(text.encode("utf-8"), source="written")
    except (ParseError, ValueError) as exc:
        raise WriteError(f"statement {number}: the MT940 written would not read back: "
                         f"{exc}") from exc
    want, got = _comparable(statement), _comparable(back)
    if want == got:
        return
    for name in ("account", "statement_id", "sequence", "opening_balance", "closing_balance",
                 "available_balances"):
        if getattr(want, name) != getattr(got, name):
            raise WriteError(f"statement {number}: {name} would read back as "
                             f"{getattr(got, name)!r}, not {getattr(want, name)!r}")
    for index, (a, b) in enumerate(zip(want.entries, got.entries, strict=True), start=1):
        for f in dataclasses.fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                raise WriteError(
                    f"statement {number}, entry {index}: {f.name} would read back as "
                    f"{getattr(b, f.name)!r}, not {getattr(a, f.name)!r}"
                )
    raise WriteError(f"statement {number}: would not read back as written")  # pragma: no cover
