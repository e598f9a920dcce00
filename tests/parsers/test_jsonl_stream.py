"""The JSON line of a statement written piece by piece (``statement_line``, ``entry_json``)
is the text ``json.dumps(statement_to_dict(...))`` gives for the whole statement."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from parsers.identity import entry_ids
from parsers.jsonl import (
    entry_json,
    entry_to_dict,
    generic_entry_to_dict,
    statement_line,
    statement_to_dict,
)
from parsers.model import BankTransactionCode, Entry, EntryStatus, Statement
from parsers.money import Money
from tests.strategies import statements

_FORMATS = st.sampled_from(("camt.053", "mt940", "ofx"))


@given(_FORMATS.flatmap(lambda f: statements(format=f)))
def test_the_line_in_pieces_is_the_line_of_the_whole(statement: Statement) -> None:
    head, tail = statement_line(statement)
    entries = [entry_json(e, i) for e, i in zip(statement.entries, entry_ids(statement),
                                                 strict=True)]
    whole = json.dumps(statement_to_dict(statement), ensure_ascii=False) + "\n"
    assert head + ", ".join(entries) + tail == whole


@given(_FORMATS.flatmap(lambda f: statements(format=f)))
def test_entries_written_field_by_field_follow_the_dataclass(statement: Statement) -> None:
    for entry in statement.entries:
        fast, generic = entry_to_dict(entry, "x"), generic_entry_to_dict(entry, "x")
        assert list(fast) == list(generic)
        assert fast == generic


def test_an_entry_written_field_by_field_is_the_encoder_text() -> None:
    odd = 'quote " backslash \\ tab \t nl \n ctl \x01 ls \u2028 é 𝄞'
    code = BankTransactionCode(domain="PMNT", proprietary=odd)
    entry = Entry(Money(Decimal("-0E-2"), "EUR"), date(2024, 3, 14), None,
                  EntryStatus.PENDING, True, odd, odd, code, odd, odd, odd, odd, odd, odd, odd,
                  additional_info=odd)
    for _ in range(2):  # the code's text made, then remembered
        assert entry_json(entry, odd) == json.dumps(entry_to_dict(entry, odd),
                                                    ensure_ascii=False)
