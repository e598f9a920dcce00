"""``parsers.identity.IdMaker``: the ids of a statement's entries one at a time, the same
as ``entry_ids`` gives the whole statement."""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from parsers.identity import IdMaker, _Taken, entry_ids
from parsers.model import Statement
from tests.strategies import statements


@st.composite
def _with_repeats(draw: st.DrawFn) -> Statement:
    """Generated statements where some entries are repeated (the same line twice or more)."""
    statement = draw(statements(format="camt.053", max_entries=8))
    entries = list(statement.entries)
    if entries:
        for _ in range(draw(st.integers(0, 6))):
            entries.insert(draw(st.integers(0, len(entries))),
                           entries[draw(st.integers(0, len(entries) - 1))])
    return dataclasses.replace(statement, entries=tuple(entries))


@given(_with_repeats())
def test_ids_one_at_a_time_are_the_ids_of_the_whole(statement: Statement) -> None:
    make = IdMaker(statement.account.key)
    assert tuple(make(e) for e in statement.entries) == entry_ids(statement)


def test_the_flat_table_holds_every_number_once_as_it_grows() -> None:
    numbers = [int.from_bytes(hashlib.sha256(str(i).encode()).digest()[:8]) or 1
               for i in range(20_000)]
    taken = _Taken()
    assert all(taken.add(n) for n in numbers)
    assert not any(taken.add(n) for n in numbers[::7])
    assert taken.add(12345678)
