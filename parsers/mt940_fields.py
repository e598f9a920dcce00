"""The value of each MT940/MT942 field, read and checked: balances, ``:61:``, ``:25:``, ...

Header and balance fields go through the regular expressions of the ``mt-940`` package
(``mt940.tags``), required to match the whole value: the package's own parser accepts a
prefix, so ``000000000482.41`` would silently become ``482``. Where it is too narrow for
real files (a ``.`` decimal separator, ``:28C: /1``) we fall back on our own pattern and say
so with a flag; anything else is a ``ParseError``. Field ``:61:`` has our own pattern below,
because the package's lets a ``.`` amount swallow the lines that follow.

Dates are checked, never repaired: 30 February is an error, not 28 or 29 February.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from mt940.tags import Tags as PackageTags

from parsers.errors import ParseError
from parsers.iban import normalize_iban
from parsers.model import Account, Flag
from parsers.money import MoneyError, is_statement_currency, parse_decimal

# Debit/credit marks of :61: and what they mean: (sign, reversal, expected).
# RC reverses a credit, so money leaves the account; RD reverses a debit, money comes back.
# EC/ED are expected (not yet booked) credits and debits.
MARKS = {
    "C": (1, False, False),
    "D": (-1, False, False),
    "RC": (-1, True, False),
    "RD": (1, True, False),
    "EC": (1, False, True),
    "ED": (-1, False, True),
}

# Field 61, SWIFT notation 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x] and on a second line [34x].
_STATEMENT_LINE = re.compile(
    r"""
    (?P<value_date>\d{6})          # 6!n    value date, YYMMDD
    (?P<entry_date>\d{4}|[ ]{4})?  # [4!n]  entry (booking) date, MMDD; some banks send 4 blanks
    (?P<mark>R?[CD]|E[CD])         # 2a     C, D, RC, RD, EC, ED (see MARKS)
    (?P<funds_code>[A-Z](?=\d))?   # [1!a]  funds code: third letter of the currency code
    (?P<amount>\d[\d,.]*)          # 15d    amount; SWIFT has a decimal comma
    [ ]?                           #        a blank some banks put before the type
    (?P<type>[NFS][A-Z0-9 ]{3})?   # 1!a3!c transaction type: N, F or S and a code (NTRF, NMSC)
    (?P<rest>.*)                   # 16x[//16x] owner's reference, then // and the bank's
    """,
    re.VERBOSE,
)
# Balances with a '.' for a decimal separator, which the package does not read (1!a6!n3!a15d).
_BALANCE_WITH_POINT = re.compile(
    r"(?P<status>[CD])(?P<year>\d{2})(?P<month>\d{2})(?P<day>\d{2})"
    r"(?P<currency>[A-Z]{3})(?P<amount>\d+\.\d*)"
)
_BLANK_STATEMENT_NUMBER = re.compile(r" */\d{1,5}")  # ":28C: /1": number left blank
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_REFERENCE_WIDTH = 16


_SHOWN_LINES = 10


class FlagLog:
    """Flags of one statement, one per code, each naming the lines it applies to (the
    first ten, and how many more: a flag on every entry keeps ten numbers, not all)."""

    def __init__(self) -> None:
        self._messages: dict[str, str] = {}
        self._lines: dict[str, list[int]] = {}  # the first lines, as many as are shown
        self._counts: dict[str, int] = {}
        self._extra: list[Flag] = []

    def add(self, code: str, message: str, line: int) -> None:
        self._messages.setdefault(code, message)
        lines = self._lines.setdefault(code, [])
        if len(lines) < _SHOWN_LINES:
            lines.append(line)
        self._counts[code] = self._counts.get(code, 0) + 1

    def extend(self, flags: tuple[Flag, ...] | list[Flag]) -> None:
        self._extra.extend(flags)

    def flags(self) -> tuple[Flag, ...]:
        out = list(self._extra)
        for code, message in self._messages.items():
            lines, count = self._lines[code], self._counts[code]
            shown = ", ".join(map(str, lines)) + (f" and {count - len(lines)} more"
                                                  if count > len(lines) else "")
            word = "line" if count == 1 else "lines"
            out.append(Flag(code, f"{message} ({word} {shown})", f"line {lines[0]}"))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Where:
    """Where a value comes from, for error messages."""

    source: str
    line: int
    field: str

    def error(self, message: str) -> ParseError:
        return ParseError(message, source=self.source, line=self.line, field=self.field)


def single_line(lines: tuple[str, ...], where: Where, log: FlagLog) -> str:
    """The value of a one-line field; continuation lines are a wrap, joined and flagged."""
    if len(lines) > 1:
        log.add("field_wrapped", "a one-line field continues on the next line; the lines "
                "were joined", where.line)
    return "".join(part.strip() for part in lines)


_DATE = re.compile(r"\d{6}")
_AMOUNT_COMMA = re.compile(r"\d+,\d*")
_AMOUNT_POINT = re.compile(r"\d+\.\d*")
_AMOUNT_WHOLE = re.compile(r"\d+")
# An entry date this near its value date lies in the value date's year: a year before or
# after is at least 365 - 182 days away, so never nearer.
_SAME_YEAR = timedelta(days=182)


def parse_date(text: str, where: Where, what: str) -> date:
    """A SWIFT date ``YYMMDD``; years 80-99 are 1980-1999, 00-79 are 2000-2079."""
    if not _DATE.fullmatch(text):
        raise where.error(f"{what}: expected a date YYMMDD, found {text!r}")
    return _six_digit_date(text, where, what)


def _six_digit_date(text: str, where: Where, what: str) -> date:
    """``parse_date`` of six digits already matched as such."""
    yy, month, day = int(text[:2]), int(text[2:4]), int(text[4:])
    try:
        return date(1900 + yy if yy >= 80 else 2000 + yy, month, day)
    except ValueError:
        raise where.error(f"{what}: {text!r} is not a calendar date (YYMMDD)") from None


def entry_date(mmdd: str, value_date: date, where: Where, log: FlagLog) -> date:
    """The booking date MMDD, in the year that puts it nearest the value date."""
    month, day = int(mmdd[:2]), int(mmdd[2:])
    try:
        same_year = date(value_date.year, month, day)
    except ValueError:
        pass
    else:
        if abs(same_year - value_date) <= _SAME_YEAR:
            return same_year
    candidates = []
    for year in (value_date.year - 1, value_date.year, value_date.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue
    if not candidates:
        raise where.error(f"entry date: {mmdd!r} is not a calendar date (MMDD)")
    best = min(candidates, key=lambda d: abs(d - value_date))
    if best.year != value_date.year:
        log.add("entry_date_year_inferred", "an entry date MMDD lies across a year end "
                "from its value date; its year was taken as the one nearest the value date",
                where.line)
    return best


def parse_amount(text: str, where: Where, log: FlagLog, *, what: str = "amount") -> Decimal:
    """A SWIFT amount (``15d``: digits with a decimal comma), exactly as written."""
    if _AMOUNT_COMMA.fullmatch(text):
        if text.isascii():  # ASCII digits and a comma: what parse_decimal would check
            return Decimal(text.replace(",", "."))
        normal = text.replace(",", ".")
    elif _AMOUNT_POINT.fullmatch(text):
        log.add("decimal_point", "amounts are written with '.' for the decimal comma; "
                "read as a decimal point", where.line)
        normal = text
    elif _AMOUNT_WHOLE.fullmatch(text):
        log.add("amount_without_decimal_comma", "amounts without the mandatory decimal "
                "comma were read as whole units", where.line)
        normal = text
    else:
        raise where.error(f"{what}: expected digits with a decimal comma (15d), found {text!r}")
    try:
        return parse_decimal(normal)
    except MoneyError:  # pragma: no cover - the patterns above only let decimals through
        raise where.error(f"{what}: {text!r} is not a decimal amount") from None


def _currency(text: str, where: Where) -> str:
    if not is_statement_currency(text):
        raise where.error(f"expected an ISO 4217 currency code, found {text!r}")
    return text


def _package_groups(pattern: re.Pattern[str], value: str) -> dict[str, str | None] | None:
    """The groups of an ``mt940.tags`` pattern, only if it matches the whole value."""
    match = pattern.match(value)
    if match is None or match.end() != len(value):
        return None
    return match.groupdict()


@dataclass(frozen=True, slots=True)
class BalanceValue:
    amount: Decimal  # signed: D is negative
    currency: str
    date: date


def parse_balance(value: str, where: Where, log: FlagLog) -> BalanceValue:
    """A balance field (``:60F:``, ``:62F:``, ``:64:``, ``:65:``): ``1!a6!n3!a15d``."""
    groups = _package_groups(PackageTags.FINAL_OPENING_BALANCE.value.re, value)
    if groups is None:
        match = _BALANCE_WITH_POINT.fullmatch(value)
        if match is None:
            raise where.error(
                "expected a balance: D/C mark, date YYMMDD, currency and amount "
                f"(1!a6!n3!a15d), found {value!r}"
            )
        groups = dict(match.groupdict())
    status = groups["status"] or ""
    if status not in ("C", "D"):
        raise where.error(f"balance: expected the mark C or D, found {status!r}")
    when = parse_date(f"{groups['year']}{groups['month']}{groups['day']}", where, "balance date")
    currency = _currency(groups["currency"] or "", where)
    text = groups["amount"] or ""
    if text.isdigit():  # also what a file cut inside the amount looks like
        raise where.error(f"balance amount: expected digits with a decimal comma (15d), "
                          f"found {text!r}")
    amount = parse_amount(text, where, log, what="balance amount")
    return BalanceValue(-amount if status == "D" else amount, currency, when)


def parse_statement_number(value: str, where: Where) -> str:
    """``:28C:`` statement number and sequence (``5n[/5n]``), as written."""
    text = value.strip()
    if _package_groups(PackageTags.STATEMENT_NUMBER.value.re, text) is not None:
        return text
    if _BLANK_STATEMENT_NUMBER.fullmatch(value):
        return text  # the number is blank, only the page (sequence) is given
    raise where.error(f"expected a statement number 5n[/5n], found {value!r}")


def parse_creation_time(value: str, where: Where, log: FlagLog) -> datetime:
    """MT942 ``:13D:`` date and time with UTC offset (``6!n4!n1!x4!n``), as UTC."""
    groups = _package_groups(PackageTags.DATE_TIME_INDICATION.value.re, value.strip())
    if groups is None:
        raise where.error(
            f"expected date, time and UTC offset YYMMDDhhmm+hhmm, found {value!r}"
        )
    day = parse_date(f"{groups['year']}{groups['month']}{groups['day']}", where, "creation date")
    hour, minute = int(groups["hour"] or 0), int(groups["minute"] or 0)
    if hour > 23 or minute > 59:
        raise where.error(f"creation time: {hour:02d}:{minute:02d} is not a time of day")
    offset = groups["offset"]
    if offset is None:
        log.add("timezone_assumed", "the creation time has no UTC offset; taken as UTC",
                where.line)
        zone = UTC
    else:
        minutes = int(offset[:2]) * 60 + int(offset[2:])
        if int(offset[2:]) > 59 or minutes > 14 * 60:
            raise where.error(f"creation time: UTC offset {offset!r} is not an offset hhmm")
        sign = -1 if groups["offset_sign"] == "-" else 1
        zone = timezone(sign * timedelta(minutes=minutes))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)


def parse_floor_limit_currency(value: str, where: Where) -> str:
    """The currency of an MT942 floor limit ``:34F:`` (``3!a[1!a]15d``); the limit is unused."""
    groups = _package_groups(PackageTags.FLOOR_LIMIT_INDICATOR.value.re, value.strip())
    if groups is None or not groups["amount"]:
        raise where.error(f"expected a floor limit: currency, [D/C mark], amount; found {value!r}")
    return _currency(groups["currency"] or "", where)


@dataclass(frozen=True, slots=True)
class EntryTotal:
    count: int
    currency: str
    amount: Decimal


def parse_entry_total(value: str, where: Where, log: FlagLog) -> EntryTotal:
    """MT942 ``:90D:``/``:90C:``: number of entries, currency, sum (``5n3!a15d``)."""
    text = value.strip()
    groups = _package_groups(PackageTags.SUM_DEBIT_ENTRIES.value.re, text)
    if groups is None or not groups["number"]:
        raise where.error(f"expected number of entries, currency and sum (5n3!a15d), found "
                          f"{value!r}")
    return EntryTotal(
        int(groups["number"]),
        _currency(groups["currency"] or "", where),
        parse_amount(groups["amount"] or "", where, log, what="sum of entries"),
    )


@dataclass(frozen=True, slots=True)
class AccountValue:
    account: Account
    currency: str | None  # a currency written after the account (ING, Rabobank)


def parse_account(value: str, where: Where, log: FlagLog) -> AccountValue:
    """``:25:``: IBAN (check digits verified), BIC/account, bank code/account, or a number.

    A currency code after the account (``NL..INGB..EUR``, ``1291.99.348EUR``,
    ``UBRTHUHB/123/HUF``) is returned apart.
    """
    text = value.strip().lstrip("/").strip()
    if not text:
        raise where.error("the account identification is empty")
    currency = None
    parts = text.split("/")
    if len(parts) == 3 and is_statement_currency(parts[2]):
        currency, text, parts = parts[2], "/".join(parts[:2]), parts[:2]
    elif normalize_iban(text) is None:
        found = re.fullmatch(r"(?P<body>.*?[0-9.]) ?(?P<ccy>[A-Z]{3})", text)
        if found and is_statement_currency(found.group("ccy")):
            currency, text = found.group("ccy"), found.group("body")
            parts = text.split("/")
    if len(parts) == 2 and parts[0] and parts[1]:
        bank, number = parts
        iban = normalize_iban(number)
        if _BIC.fullmatch(bank):
            return AccountValue(Account(iban=iban, number=None if iban else number, bic=bank),
                                currency)
        if bank.isdigit():
            return AccountValue(Account(iban=iban, number=None if iban else number,
                                        bank_id=bank), currency)
    iban = normalize_iban(text)
    if iban is not None:
        return AccountValue(Account(iban=iban), currency)
    if _IBAN_SHAPE.fullmatch(text.replace(" ", "")):
        log.add("account_not_iban", "the account looks like an IBAN but its check digits "
                "are wrong; kept as an account number", where.line)
    return AccountValue(Account(number=text), currency)


@dataclass(frozen=True, slots=True)
class StatementLine:
    """Field ``:61:`` read: subfields 1 to 9."""

    value_date: date
    booking_date: date | None
    mark: str
    amount: Decimal  # unsigned, as written
    transaction_type: str | None
    customer_reference: str | None
    bank_reference: str | None
    supplementary: str | None  # subfield 9, and text after a padded 16-character reference


_NONREF_REST = re.compile(r"EF(?://.*)?")


def _reference(text: str) -> str | None:
    text = text.strip()
    return None if not text or text.upper() == "NONREF" else text


def parse_statement_line(lines: tuple[str, ...], where: Where, log: FlagLog) -> StatementLine:
    """Field ``:61:``: the statement line and, on a second line, supplementary details."""
    if len(lines) > 2:
        raise where.error(
            f":61: runs over {len(lines)} lines; SWIFT allows the statement line and one "
            "line of supplementary details, so where its references end is ambiguous"
        )
    first = lines[0].rstrip()
    match = _STATEMENT_LINE.fullmatch(first)
    if match is None:
        raise where.error(
            "expected a statement line: value date YYMMDD, [entry date MMDD], mark C/D/RC/RD, "
            f"amount and transaction type (6!n[4!n]2a[1!a]15d1!a3!c), found {first!r}"
        )
    valued, booked, mark, _, written, kind, rest = match.groups()
    value_date = _six_digit_date(valued, where, "value date")
    booking_date = (entry_date(booked, value_date, where, log)
                    if booked and booked.strip() else None)
    amount = parse_amount(written, where, log)
    if kind == "NONR" and _NONREF_REST.fullmatch(rest):
        kind, rest = None, "NONREF" + rest[2:]  # "D20,00NONREF": the type is missing
    if kind is None:
        log.add("transaction_type_missing", ":61: lines without the transaction type "
                "(1!a3!c) were read with none", where.line)
    owner, _, bank = rest.partition("//")
    supplementary = []
    if len(owner) > _REFERENCE_WIDTH and owner[:_REFERENCE_WIDTH].endswith(" "):
        # Rabobank's old format: a 16-character padded reference, then the counterparty.
        owner, overflow = owner[:_REFERENCE_WIDTH], owner[_REFERENCE_WIDTH:].strip()
        if overflow:
            supplementary.append(overflow)
    if len(lines) == 2 and lines[1].strip():
        supplementary.append(lines[1].rstrip())
    return StatementLine(value_date, booking_date, mark, amount,
                         kind.strip() if kind else None, _reference(owner), _reference(bank),
                         "\n".join(supplementary) or None)
