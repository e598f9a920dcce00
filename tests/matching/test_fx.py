from __future__ import annotations

from datetime import date
from decimal import Decimal

from matching.fx import read_rates_csv
from parsers.money import Money

CSV = ("date,from_currency,to_currency,rate\n"
       "2026-11-02,USD,EUR,0.9200\n"
       "2026-11-05,USD,EUR,0.9300\n")


def test_the_rate_of_the_day_or_the_nearest_earlier_one_said_so() -> None:
    table, errors = read_rates_csv(CSV)
    assert errors == []
    same_day = table.convert(Money(Decimal("100.00"), "USD"), "EUR", date(2026, 11, 5))
    assert same_day is not None and same_day.amount == Money(Decimal("93.00"), "EUR")
    later = table.convert(Money(Decimal("100.00"), "USD"), "EUR", date(2026, 11, 4))
    assert later is not None and later.amount.amount == Decimal("92.00")
    assert "nearest earlier" in later.note and "2026-11-02" in later.note
    assert table.convert(Money(Decimal("1"), "USD"), "EUR", date(2026, 11, 1)) is None


def test_the_inverse_direction_is_derived() -> None:
    table, _ = read_rates_csv(CSV)
    back = table.convert(Money(Decimal("93.00"), "EUR"), "USD", date(2026, 11, 5))
    assert back is not None and back.amount == Money(Decimal("100.00"), "USD")


def test_bad_rows_are_named() -> None:
    _, errors = read_rates_csv(CSV + "2026-13-01,USD,EUR,1\n2026-11-06,USD,EUX,1\n"
                               "2026-11-07,USD,EUR,-1\n2026-11-05,USD,EUR,0.95\n")
    assert [(e.index, e.field) for e in errors] == [(4, "date"), (5, "currency"), (6, "rate"),
                                                    (7, "date")]
    _, errors = read_rates_csv("day,rate\n")
    assert "missing column" in errors[0].message
