"""OFX data types (OFX 2.1.1 §3.2): dates and times, amounts, and IBANs in account ids.

Kept apart from the readers so each rule is tested alone. Nothing here raises anything
but ``ValueError`` with a sentence saying what was expected; callers turn it into a
``ParseError`` naming the element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from parsers.money import MoneyError, parse_decimal

# OFX 2.1.1 §3.2.8.2: YYYYMMDD[HHMM[SS[.XXX]]][ [gmt offset[:tz name]]], e.g.
# 20231231120000.000[-5:EST]. Offsets are hours, fractions allowed ([-3.5:NST]).
_DATETIME = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})"
    r"(?:([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{1,6}))?)?)?"
    r"\s*(?:\[\s*([+-]?[0-9]{1,2}(?:\.[0-9]{1,2})?)\s*(?::\s*[A-Za-z][A-Za-z0-9_/+-]{0,9})?\s*\])?"
)
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


@dataclass(frozen=True, slots=True)
class OfxDateTime:
    """A date and time as the bank wrote it, with the offset it gave (None: none given)."""

    date: date
    time: time
    offset: timedelta | None

    def to_utc(self) -> datetime:
        """The instant in UTC; a missing offset is taken as UTC (the OFX default)."""
        local = datetime.combine(self.date, self.time)
        return (local - (self.offset or timedelta(0))).replace(tzinfo=UTC)


def parse_datetime(text: str) -> OfxDateTime:
    """Read an OFX date or datetime; ``ValueError`` saying what was expected otherwise."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected an OFX date like 20231231 or 20231231120000.000[-5:EST], "
                         f"got {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        day_ = date(int(year), int(month), int(day))
        time_ = time(int(hour or 0), int(minute or 0), int(second or 0),
                     int((fraction or "0").ljust(6, "0")))
    except ValueError as exc:
        raise ValueError(f"not a real date or time: {text!r} ({exc})") from exc
    shift = None
    if offset is not None:
        hours = Decimal(offset)
        if abs(hours) > 14:
            raise ValueError(f"time zone offset {offset} hours is out of range in {text!r}")
        shift = timedelta(minutes=int(hours * 60))
    return OfxDateTime(day_, time_, shift)


def parse_amount(text: str) -> Decimal:
    """An OFX amount (``-12.50``, ``+3``, ``3858.6713352286442``), exactly as written."""
    try:
        return parse_decimal(text)
    except (MoneyError, InvalidOperation) as exc:
        raise ValueError(f"expected a decimal amount like -12.50, got {text!r}") from exc


def decimal_comma(text: str) -> str | None:
    """``-200.00`` for ``-200,00`` (one comma, no point); None if ``text`` is not that form."""
    if re.fullmatch(r"\s*[+-]?[0-9]*,[0-9]+\s*", text):
        return text.strip().replace(",", ".")
    return None


def as_iban(account_id: str) -> str | None:
    """``account_id`` as a compact IBAN if it is one (ISO 13616 mod-97 check), else None."""
    compact = account_id.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact):
        return None
    digits = "".join(str(int(char, 36)) for char in compact[4:] + compact[:4])
    return compact if int(digits) % 97 == 1 else None
