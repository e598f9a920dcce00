"""``parsers.camt.stream``: camt read from a file as a stream of parts, in flat memory.

It gives what ``parse`` gives for every golden file; a bad statement of a well-formed
document is a ``StatementFailed`` in its place and the others are read (``parse_each``);
a document that is not well-formed raises; the file is read in small pieces.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

import parsers
from parsers import camt
from parsers.errors import ParseError
from parsers.model import Entry, Statement
from parsers.stream import StatementEnd, StatementFailed, StatementStart, collect
from tests.parsers.test_camt import ACCT, GOOD_ENTRY, document

DATA = Path(__file__).resolve().parents[1] / "data" / "camt"
CASES = sorted(DATA.glob("*.xml"))
BAD_ENTRY = GOOD_ENTRY.replace("CRDT", "CR")
OTHER_ENTRY = GOOD_ENTRY.replace("1.00", "2.00")


class _Reads(io.BytesIO):
    """A file that remembers the largest read asked of it."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.largest = max(self.largest, len(chunk))
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.largest = max(self.largest, count)
        return count


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_the_stream_gives_what_parse_gives(path: Path) -> None:
    data = path.read_bytes()
    assert tuple(collect(camt.stream(io.BytesIO(data), source=path.name))) == camt.parse(
        data, source=path.name)


def test_a_big_document_is_read_in_small_pieces() -> None:
    data = document(ACCT + GOOD_ENTRY * 20_000)
    assert len(data) > 2_000_000
    file = _Reads(data)
    parts = camt.stream(file, source="big.xml")
    assert isinstance(next(parts), StatementStart)
    assert sum(1 for p in parts if isinstance(p, Entry)) == 20_000
    assert 0 < file.largest <= 64 * 1024


def test_a_bad_statement_fails_alone() -> None:
    data = document(ACCT + GOOD_ENTRY, ACCT + GOOD_ENTRY + BAD_ENTRY, ACCT + OTHER_ENTRY)
    parts = list(camt.stream(io.BytesIO(data), source="three.xml"))
    kinds = [type(p).__name__ for p in parts]
    assert kinds == ["StatementStart", "Entry", "StatementEnd",
                     "StatementStart", "Entry", "StatementFailed",
                     "StatementStart", "Entry", "StatementEnd"]
    failed = parts[5]
    assert isinstance(failed, StatementFailed)
    assert failed.error.path == "/Document/BkToCstmrStmt/Stmt[2]/Ntry[2]/CdtDbtInd"
    first, error, third = camt.parse_each(data, source="three.xml")
    assert isinstance(first, Statement) and isinstance(third, Statement)
    assert (first.statement_id, third.statement_id) == ("S1", "S3")
    assert [e.amount.amount for e in third.entries] == [Decimal("2.00")]
    assert str(error) == str(failed.error)
    with pytest.raises(ParseError) as raised:  # parse: all or nothing, the first problem
        camt.parse(data, source="three.xml")
    assert str(raised.value) == str(failed.error)


def test_a_statement_without_account_fails_alone_in_parse_each() -> None:
    data = document(GOOD_ENTRY, ACCT + GOOD_ENTRY)
    error, second = parsers.parse_each(data, source="two.xml")
    assert isinstance(error, ParseError) and "account" in error.message
    assert isinstance(second, Statement) and len(second.entries) == 1


def test_xml_broken_after_a_good_statement_raises_after_it() -> None:
    data = document(ACCT + GOOD_ENTRY, ACCT + GOOD_ENTRY).replace(b"</Stmt>\n", b"</Stm>\n")
    parts = camt.stream(io.BytesIO(data), source="broken.xml")
    got: list[object] = []
    with pytest.raises(ParseError, match="not well-formed XML"):
        got.extend(parts)
    assert [type(p) for p in got] == [StatementStart, Entry, StatementEnd, StatementStart,
                                      Entry]
    with pytest.raises(ParseError, match="not well-formed XML"):
        camt.parse_each(data, source="broken.xml")


def test_statement_start_and_end_carry_no_entries() -> None:
    data = (DATA / "camt053_v08.xml").read_bytes()
    whole = camt.parse(data, source="v08.xml")[0]
    parts = list(camt.stream(io.BytesIO(data), source="v08.xml"))
    start = parts[0]
    end = next(p for p in parts if isinstance(p, StatementEnd))
    assert isinstance(start, StatementStart) and isinstance(end, StatementEnd)
    assert start.statement.entries == end.statement.entries == ()
    assert start.statement.account == whole.account
    assert end.entries == len(whole.entries)
