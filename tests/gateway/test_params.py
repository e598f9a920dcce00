"""Cursors: the pattern the OpenAPI document gives for each list names exactly the cursors
the list reads, every cursor given out is read back as the position it was written from,
and cursors of the form given out before still read. Pure: no server, no database."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import limits
from gateway.api_invoices import CUSTOMERS, INVOICES
from gateway.api_matches import FAILURES, MATCHES
from gateway.api_statements import ACCOUNTS, LINES, STATEMENTS, TRANSACTIONS
from gateway.api_webhooks import DELIVERIES, FEED, SUBSCRIPTIONS
from gateway.params import CursorKind, SortKey, digits_up_to
from gateway.problems import BadRequest

KEYS = {"accounts": ACCOUNTS, "statements": STATEMENTS, "lines": LINES,
        "transactions": TRANSACTIONS, "invoices": INVOICES, "customers": CUSTOMERS,
        "matches": MATCHES, "failures": FAILURES, "subscriptions": SUBSCRIPTIONS,
        "deliveries": DELIVERIES, "feed": FEED}
# Text as ids and bank references hold it, in any script (never NUL or a lone surrogate:
# PostgreSQL cannot store them, gateway.limits).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=100)
INSTANTS = st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC))


def _values(key: SortKey) -> st.SearchStrategy[list[Any]]:
    kinds = {CursorKind.INT: st.integers(0, limits.INT64_MAX),
             CursorKind.INT32: st.integers(0, 2**31 - 1), CursorKind.TEXT: TEXT,
             CursorKind.INSTANT: INSTANTS.map(datetime.isoformat)}
    return st.tuples(*(kinds[kind] for kind in key.kinds)).map(list)


def _old(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("name", sorted(KEYS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_string_the_pattern_matches_is_read(name: str, data: st.DataObject) -> None:
    key = KEYS[name]
    text = data.draw(st.from_regex(key.pattern, fullmatch=True))
    assert len(text) <= limits.MAX_QUERY_VALUE
    values = key.parse(text)
    assert values is None if not text else len(values) == len(key.kinds)


@pytest.mark.parametrize("name", sorted(KEYS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_cursor_given_out_reads_back_as_its_position_and_fits_the_pattern(
        name: str, data: st.DataObject) -> None:
    key = KEYS[name]
    values = data.draw(_values(key))
    cursor = key.encode(values)
    assert re.fullmatch(key.pattern, cursor), cursor
    read = key.parse(cursor)
    assert read is not None
    for kind, written, back in zip(key.kinds, values, read, strict=True):
        if kind is CursorKind.INSTANT:
            assert datetime.fromisoformat(back) == datetime.fromisoformat(written)
        else:
            assert back == written


@pytest.mark.parametrize("name", sorted(KEYS))
@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=40))
def test_any_other_string_is_a_400(name: str, text: str) -> None:
    key = KEYS[name]
    if re.fullmatch(key.pattern, text) or text.startswith("W"):
        return  # a cursor, or possibly one of the old form (tested below)
    with pytest.raises(BadRequest, match="cursor"):
        key.parse(text)


def test_cursors_of_the_old_form_still_read() -> None:
    assert ACCOUNTS.parse(_old([17])) == [17]
    assert INVOICES.parse(_old(["請求書-1"])) == ["請求書-1"]
    assert FAILURES.parse(_old([3, "E1"])) == [3, "E1"]
    assert DELIVERIES.parse(_old(["2026-11-01T00:00:00+00:00", "evt_1"])) == [
        "2026-11-01T00:00:00+00:00", "evt_1"]
    assert FEED.parse(_old([12, 7])) == [12, 7]
    assert FEED.parse(_old(["12", 7])) == [12, 7]  # the transaction id as digits, older still
    for key, values in ((ACCOUNTS, ["17"]), (LINES, [2**31]), (DELIVERIES, ["x", "e"]),
                        (FEED, [-1, 7])):
        with pytest.raises(BadRequest):
            key.parse(_old(values))


def test_the_cursors_given_out_look_like_this() -> None:
    assert ACCOUNTS.encode([17]) == "17"
    assert INVOICES.encode(["INV-1"]) == "~SU5WLTE"
    assert FAILURES.encode([3, "E1"]) == "3.~RTE"
    assert DELIVERIES.encode(["1970-01-01T00:00:01.5+00:00", "e"]) == "1500000.~ZQ"
    # A time past the last one there is reads as that last time: after every row.
    assert DELIVERIES.parse("9" * 18 + ".~ZQ") == ["9999-12-31T23:59:59.999999+00:00", "e"]
    # A text that is not UTF-8, or holds NUL, is a position like any other.
    assert INVOICES.parse("~_wA") == ["\ufffd\ufffd"]


@settings(max_examples=300, deadline=None)
@given(text=st.text("0123456789", min_size=1, max_size=21))
def test_the_pattern_of_a_whole_number_is_what_int64_of_reads(text: str) -> None:
    pattern = re.compile(digits_up_to(limits.INT64_MAX))
    assert bool(pattern.fullmatch(text)) == (limits.int64_of(text) is not None)
    near = str(limits.INT64_MAX + int(text[:3]) - 500)
    assert bool(pattern.fullmatch(near)) == (limits.int64_of(near) is not None)
