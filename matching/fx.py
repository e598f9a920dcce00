"""Exchange rates: a table of ``date,from_currency,to_currency,rate`` rows.

``rate`` converts one unit of ``from_currency`` into ``rate`` units of ``to_currency``;
the inverse direction is derived. A conversion uses the rate of the booking date; without
one it falls back to the nearest earlier date and says so. Never a later rate, never a
guess: no earlier rate means no conversion.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from matching.invoices import RecordError
from parsers.money import Money, MoneyError, is_currency, minor_units, parse_decimal

RATE_COLUMNS = ("date", "from_currency", "to_currency", "rate")


@dataclass(frozen=True, slots=True)
class Conversion:
    amount: Money
    rate: Decimal
    rate_date: date
    note: str           # "rate of 2026-11-20" or "no rate for 2026-11-22: used 2026-11-20"


class RateTable:
    def __init__(self, rows: list[tuple[date, str, str, Decimal]] | None = None) -> None:
        table: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
        for day, source, target, rate in rows or ():
            table[(source, target)][day] = rate
            table[(target, source)].setdefault(day, Decimal(1) / rate)
        self._days = {pair: sorted(rates) for pair, rates in table.items()}
        self._rates = dict(table)

    def targets(self, source: str) -> set[str]:
        """The currencies an amount in ``source`` can be converted into (on some day)."""
        return {target for origin, target in self._days if origin == source}

    def rate(self, source: str, target: str, on: date) -> tuple[Decimal, date] | None:
        days = self._days.get((source, target))
        if not days:
            return None
        at = bisect.bisect_right(days, on) - 1
        if at < 0:
            return None
        day = days[at]
        return self._rates[(source, target)][day], day

    def convert(self, amount: Money, target: str, on: date) -> Conversion | None:
        if amount.currency == target:
            return Conversion(amount, Decimal(1), on, "same currency")
        found = self.rate(amount.currency, target, on)
        if found is None:
            return None
        rate, day = found
        quantum = Decimal(1).scaleb(-minor_units(target))
        converted = Money((amount.amount * rate).quantize(quantum), target)
        note = (f"rate {rate.normalize()} of {day}" if day == on else
                f"no {amount.currency}/{target} rate for {on}: used the rate "
                f"{rate.normalize()} of {day}, the nearest earlier")
        return Conversion(converted, rate, day, note)


def read_rates_csv(text: str) -> tuple[RateTable, list[RecordError]]:
    """A rate table from CSV, or the rows that are wrong (line numbers count the header)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in RATE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return RateTable(), [RecordError(1, None, ",".join(missing),
                                         "missing column(s); expected " + ",".join(RATE_COLUMNS))]
    rows: list[tuple[date, str, str, Decimal]] = []
    errors: list[RecordError] = []
    seen: dict[tuple[date, str, str], int] = {}
    for line, record in enumerate(reader, 2):
        try:
            day = date.fromisoformat((record["date"] or "").strip())
        except ValueError:
            errors.append(RecordError(line, None, "date", f"not a date: {record['date']!r}"))
            continue
        source = (record["from_currency"] or "").strip()
        target = (record["to_currency"] or "").strip()
        bad = [c for c in (source, target) if not is_currency(c)]
        if bad:
            errors.append(RecordError(line, None, "currency", f"not ISO 4217: {bad[0]!r}"))
            continue
        try:
            rate = parse_decimal(record["rate"] or "")
        except MoneyError:
            errors.append(RecordError(line, None, "rate", f"not a decimal: {record['rate']!r}"))
            continue
        if rate <= 0:
            errors.append(RecordError(line, None, "rate", "must be greater than zero"))
            continue
        key = (day, source, target)
        if key in seen:
            errors.append(RecordError(line, None, "date",
                                      f"a second {source}/{target} rate for {day} "
                                      f"(first on line {seen[key]})"))
            continue
        seen[key] = line
        rows.append((day, source, target, rate))
    return RateTable(rows), errors
