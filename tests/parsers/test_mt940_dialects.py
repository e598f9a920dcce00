"""MT940 dialects of real banks: how German ``?2x`` subfields join, the ``:86:`` layouts of
other banks, historic currencies and damaged SWIFT envelopes. Fixtures are written here in
each bank's shape (never copied from a bank file).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parsers
from parsers import mt940_details
from parsers.errors import ParseError
from parsers.model import Statement
from parsers.money import (
    ISO_4217,
    WITHDRAWN_4217,
    Money,
    is_statement_currency,
    is_withdrawn_currency,
    minor_units,
)
from parsers.mt940_details import SUBFIELD_WIDTH, join_subfields

DATA = Path(__file__).resolve().parents[1] / "data" / "mt940"


def read(name: str, *, strict: bool = False) -> tuple[Statement, ...]:
    return parsers.parse((DATA / name).read_bytes(), source=name, strict=strict)


def mt(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def details(*lines: str, currency: str = "EUR") -> mt940_details.Details:
    result = mt940_details.Details()
    mt940_details.read_details(list(lines), currency, result)
    return result


def test_a_short_remittance_subfield_ended_a_word() -> None:
    got = details("166?00SPENDE?20PARTNERKEY 0123?21SPENDE?22DANKE")
    assert got.remittance == "PARTNERKEY 0123 SPENDE DANKE"


def test_a_full_width_subfield_was_cut_mid_word() -> None:
    full = "Rechnung 4711 vom 20.11.202"
    assert len(full) == SUBFIELD_WIDTH
    got = details(f"166?20SVWZ+{full}?216 Danke")
    assert got.remittance == "Rechnung 4711 vom 20.11.2026 Danke"
    got = details(f"166?20{full}?216?22Danke")
    assert got.remittance == f"{full}6 Danke"


def test_no_second_blank_where_a_subfield_has_one() -> None:
    assert join_subfields(["ab ", "cd", " ef", ""]) == ("ab cd ef", [0, 3, 5, 8])


_SUBFIELD = st.text(st.characters(exclude_categories=["Cs"]), max_size=SUBFIELD_WIDTH + 3)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SUBFIELD, max_size=8))
def test_joining_subfields_never_loses_a_character(subfields: list[str]) -> None:
    text, starts = join_subfields(subfields)
    assert len(starts) == len(subfields)
    # Every subfield is in the text whole, where it is said to start, in order ...
    for value, start in zip(subfields, starts, strict=True):
        assert text[start:start + len(value)] == value
    # ... and between two of them there is nothing, or one blank after a short one.
    ends = [start + len(value) for value, start in zip(subfields, starts, strict=True)]
    for index, (end, start) in enumerate(zip(ends, starts[1:], strict=False)):
        gap = text[end:start]
        assert gap in ("", " ")
        if gap:
            assert len(subfields[index]) < SUBFIELD_WIDTH or not subfields[index]
    assert text[:starts[0] if starts else 0] == "" and text[max(ends, default=0):] == ""
    assert len(text) - sum(map(len, subfields)) == sum(
        1 for end, start in zip(ends, starts[1:], strict=False) if start > end)


def test_withdrawn_currencies_are_read_with_their_minor_units_and_flagged() -> None:
    dem, itl = read("de-it-historic-dem-itl.sta", strict=True)  # a flag, not a failure
    assert dem.currency == "DEM" and itl.currency == "ITL"
    assert dem.closing_balance is not None
    assert dem.closing_balance.amount == Money(Decimal("14205.83"), "DEM")
    assert [e.amount.amount for e in itl.entries] == [Decimal("-1250000")]
    assert [f.code for f in dem.flags] == ["withdrawn_currency"]
    assert "DEM" in dem.flags[0].message and "ITL" in itl.flags[0].message
    assert (minor_units("DEM"), minor_units("ITL"), minor_units("EUR")) == (2, 0, 2)
    # The German subfields of 1998 as today: PARTNERKEY 0123 and SPENDE stay two words.
    assert dem.entries[1].remittance == "PARTNERKEY 0123 SPENDE"


@pytest.mark.parametrize("code", sorted(WITHDRAWN_4217))
def test_a_withdrawn_code_is_no_active_one(code: str) -> None:
    assert is_withdrawn_currency(code) and is_statement_currency(code)
    assert code not in ISO_4217  # nothing new (an invoice, a request) is made in it


def test_an_unknown_code_is_still_refused() -> None:
    bad = mt(":20:A", ":25:123", ":28C:1", ":60F:C981130QQQ1,00", ":62F:C981130QQQ1,00")
    with pytest.raises(ParseError, match="ISO 4217"):
        parsers.parse(bad, source="bad.sta")


GOOD = (":20:GOOD1", ":25:37040044/0532013000", ":28C:1", ":60F:C981130DEM1,00",
        ":62F:C981130DEM1,00", "-")
BAD = (":20:BAD2", ":25:37040044/0532013000", ":28C:2", ":60F:C981130DEM1,00",
       ":61:9812011201CR1,00NTRFNONREF", "-")


def test_one_bad_statement_does_not_hide_the_good_ones() -> None:
    data = mt(*GOOD, *BAD, *GOOD)
    results = parsers.parse_each(data, source="three.sta")
    assert [type(r).__name__ for r in results] == ["Statement", "ParseError", "Statement"]
    error = results[1]
    assert isinstance(error, ParseError)
    assert error.message.startswith("statement 2 of 3, :20: BAD2: ")
    assert "closing balance" in error.message and error.line == 11
    # Storing stays all or nothing: parse refuses the whole file with that same error.
    with pytest.raises(ParseError) as caught:
        parsers.parse(data, source="three.sta")
    assert str(caught.value) == str(error)


def test_parse_each_checks_balances_per_statement() -> None:
    off = (":20:OFF", ":25:123", ":28C:3", ":60F:C981130DEM1,00",
           ":61:9812011201CR1,00NTRFNONREF", ":62F:C981201DEM1,00", "-")
    results = parsers.parse_each(mt(*GOOD, *off), source="two.sta", strict=True)
    assert isinstance(results[0], Statement) and isinstance(results[1], ParseError)
    loose = parsers.parse_each(mt(*GOOD, *off), source="two.sta")
    assert all(isinstance(r, Statement) for r in loose)


BODY = (":20:ENV", ":25:123", ":28C:1", ":60F:C261127EUR1,00", ":62F:C261127EUR1,00")


@pytest.mark.parametrize(("header", "flag"), [
    ("{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN}{4:", None),
    ("{1:F01SNSBNL2AXXXX0000000000}{2:O940SNSBNL2AXXXXN}{3:}{4:", None),
    ("{1:F01WPACAU2SAXXX0000000000}{2:I940WIBSXXXXN}{4:", None),  # Westpac's own short form
    ("{1:F01WPACAU2SAXXX0000000000}{2:I940XXXXXXXXN}{4:", "envelope_header_anonymised"),
    ("{1:F01XXXXXXXXAXXX0000000000}{2:O94000000000000000000000000000000000N}{3:}{4:",
     "envelope_header_anonymised"),
    ("{1:F01POFICHBEAXXX0000000000}{2:I940XXXXXXXXXXXXN}{4:", "envelope_header_anonymised"),
    (" {1:F02BUCUROBUAXXX0833510237}{2:I940            U3003}{4:",
     "envelope_header_anonymised"),
    ("{1:F01BANKDEFFAXXX0000000000}{2:REDACTED}{4:", "envelope_header_anonymised"),
    ("{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN{4:", "envelope_header_unbalanced"),
    ("{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN}}{4:", "envelope_header_unbalanced"),
])
def test_a_damaged_application_header_around_a_valid_text_block(
        header: str, flag: str | None) -> None:
    (statement,) = parsers.parse(mt(header, *BODY, "-}{5:}"), source="env.sta")
    assert statement.statement_id == "ENV"
    assert statement.closing_balance is not None
    assert [f.code for f in statement.flags] == ([flag] if flag else [])
    if flag:
        assert statement.flags[0].location == "line 1"


def test_a_text_block_left_open_is_still_refused() -> None:
    with pytest.raises(ParseError, match="not closed with '-}'"):
        parsers.parse(mt("{1:F01BANKDEFFAXXX0}{2:I940BANKDEFFXXXXN{4:", *BODY), source="x")
