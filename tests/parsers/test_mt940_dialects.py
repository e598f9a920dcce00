"""MT940 dialects of real banks: how German ``?2x`` subfields join, the ``:86:`` layouts of
other banks, historic currencies and damaged SWIFT envelopes. Fixtures are written here in
each bank's shape (never copied from a bank file).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import mt940_details
from parsers.mt940_details import SUBFIELD_WIDTH, join_subfields


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
