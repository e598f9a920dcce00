"""The JSON line of a statement written piece by piece (``statement_line``, ``entry_json``)
is the text ``json.dumps(statement_to_dict(...))`` gives for the whole statement."""

from __future__ import annotations

import json

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
from parsers.model import Statement
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
