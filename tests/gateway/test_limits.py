"""The limits every request and document is held to (gateway.limits), as pure functions."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import parsers
from gateway import limits
from parsers.errors import ParseError
from parsers.money import Money
from tests.paths import DEMO_MT940

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30)


@given(JSON)
def test_what_json_problem_passes_can_be_stored(document: object) -> None:
    """Never a crash; and whatever passes encodes as UTF-8 with no NUL and fits in bigint."""
    if limits.json_problem(document) is None:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
        assert "\x00" not in text
        text.encode("utf-8")


@given(st.text())
def test_identifiers_that_pass_hold_only_visible_characters(text: str) -> None:
    if limits.identifier_problem(text) is None:
        text.encode("utf-8")
        assert len(text) <= limits.MAX_IDENTIFIER
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
                       for c in text)


@given(st.text() | st.integers().map(str))
def test_ids_are_ascii_digits_within_bigint(text: str) -> None:
    number = limits.int64_of(text)
    if number is not None:
        assert text.isascii() and text.isdigit()
        assert 0 <= number <= 2**63 - 1
        assert str(number) == text.lstrip("0") or number == 0


@given(st.text(max_size=12) | st.dates().map(lambda d: d.isoformat()))
def test_dates_are_exactly_yyyy_mm_dd(text: str) -> None:
    day = limits.date_of(text)
    if day is not None:
        assert day.isoformat() == text


@pytest.mark.parametrize(("amount", "currency", "ok"), [
    ("999999999999999.99", "EUR", True), ("1000000000000000", "EUR", False),
    ("1E+30", None, False), ("12.345", "EUR", False), ("12.345", "BHD", True),
    ("12.5", "JPY", False), ("0.0000001", None, False), ("NaN", None, False),
])
def test_amounts(amount: str, currency: str | None, ok: bool) -> None:
    assert (limits.amount_problem(Decimal(amount), currency) is None) is ok


def _demo_with(**changes: object) -> list[parsers.Statement]:
    statements = list(parsers.parse(DEMO_MT940.read_bytes(), source="demo.sta"))
    first = statements[0]
    entries = list(first.entries)
    entries[1] = dataclasses.replace(entries[1], **changes)
    statements[0] = dataclasses.replace(first, entries=tuple(entries))
    return statements


def test_a_10_mb_remittance_refuses_the_document_naming_entry_and_field() -> None:
    assert limits.statement_problems(parsers.parse(DEMO_MT940.read_bytes(),
                                                   source="demo.sta")) == []
    statements = _demo_with(remittance="x" * 10_000_000)
    with pytest.raises(ParseError) as caught:
        limits.check_statements(statements, source="demo.sta")
    error = caught.value
    assert error.source == "demo.sta"
    assert error.field == "remittance"
    assert "statement 1, entry 2, remittance" in error.message
    assert "nothing was stored" in error.message


def test_a_statement_amount_of_10_to_the_30_is_refused() -> None:
    entry = parsers.parse(DEMO_MT940.read_bytes(), source="demo.sta")[0].entries[1]
    huge = Money(Decimal(10) ** 30, entry.amount.currency)
    found = limits.statement_problems(_demo_with(amount=huge))
    assert [(where, field) for where, field, _ in found] == [
        ("statement 1, entry 2, amount", "amount")]


def test_nul_in_a_statement_field_is_refused() -> None:
    found = limits.statement_problems(_demo_with(counterparty_name="A\x00B"))
    assert [field for _, field, _ in found] == ["counterparty_name"]


@given(st.text(max_size=40) | st.datetimes(timezones=st.timezones()).map(str))
def test_instants_need_an_offset_and_a_utc_time(text: str) -> None:
    instant = limits.instant_of(text)
    if instant is not None:
        assert instant.utcoffset() is not None
