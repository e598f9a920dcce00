"""``parsers.stream``: a file read as a stream of parts gives what ``parse`` and
``parse_each`` give, and the streaming checks give ``check_statement``'s flags."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import parsers
from parsers.checks import StreamCheck, check_statement
from parsers.errors import ParseError
from parsers.model import Account, Balance, BalanceKind, Entry, EntryStatus, Statement
from parsers.money import Money
from parsers.stream import StatementEnd, StatementFailed, StatementStart, collect
from tests.strategies import statements

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = sorted(p for p in DATA.glob("*/*") if not p.name.endswith(".json"))


def _streamed(data: bytes, *, source: str, strict: bool = False) -> list[object]:
    return list(collect(parsers.stream(io.BytesIO(data), source=source, strict=strict)))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stream_gives_what_parse_each_gives(path: Path) -> None:
    data = path.read_bytes()
    assert _streamed(data, source=path.name) == list(parsers.parse_each(data, source=path.name))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stream_parts_are_in_order(path: Path) -> None:
    parts = list(parsers.stream(io.BytesIO(path.read_bytes()), source=path.name))
    assert isinstance(parts[0], StatementStart)
    assert isinstance(parts[-1], StatementEnd | StatementFailed)
    for part in parts:
        if isinstance(part, StatementStart | StatementEnd):
            assert part.statement.entries == ()


def test_stream_reads_from_where_the_file_stands_and_unseekable_files() -> None:
    data = (DATA / "camt" / "camt053_v08.xml").read_bytes()

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

        def seek(self, offset: int, whence: int = 0) -> int:
            raise io.UnsupportedOperation("seek")

    whole = parsers.parse(data, source="x")
    assert tuple(collect(parsers.stream(Pipe(data), source="x"))) == whole
    padded = io.BytesIO(b"junk" + data)
    padded.seek(4)
    assert tuple(collect(parsers.stream(padded, source="x"))) == whole


def test_stream_refuses_unknown_and_empty_input() -> None:
    with pytest.raises(parsers.UnknownFormatError, match="empty"):
        list(parsers.stream(io.BytesIO(b""), source="empty"))
    with pytest.raises(parsers.UnknownFormatError, match="not a recognised"):
        list(parsers.stream(io.BytesIO(b"hello"), source="hello"))


def test_strict_mismatch_is_a_failed_statement() -> None:
    data = (DATA / "camt" / "camt053_v08.xml").read_bytes()
    statement = parsers.parse(data, source="x")[0]
    assert statement.closing_balance is not None
    closing = statement.closing_balance.amount.amount
    off = data.replace(str(closing).encode(), str(closing + 1).encode(), 1)
    if off == data:
        pytest.skip("the closing balance is not written as Python writes it")
    loose = _streamed(off, source="x")
    assert isinstance(loose[0], Statement)
    assert "balance_mismatch" in [f.code for f in loose[0].flags]
    strict = _streamed(off, source="x", strict=True)
    assert isinstance(strict[0], ParseError)
    with pytest.raises(ParseError) as raised:
        parsers.parse(off, source="x", strict=True)
    assert str(strict[0]) == str(raised.value)


@st.composite
def _checked_statements(draw: st.DrawFn) -> Statement:
    """Generated statements, some made not to add up: a closing balance off, an opening
    balance missing or in another currency, entries in other (or withdrawn) currencies,
    a statement without a currency."""
    statement = draw(statements(format="camt.053"))
    entries = list(statement.entries)
    for i in draw(st.lists(st.integers(0, max(len(entries) - 1, 0)), max_size=3)):
        if entries:
            entry = entries[i]
            currency = draw(st.sampled_from(("USD", "DEM", "EUR", "JPY")))
            entries[i] = dataclasses.replace(
                entry, amount=Money(entry.amount.amount, currency),
                status=draw(st.sampled_from(EntryStatus)))
    change: dict[str, object] = {"entries": tuple(entries)}
    closing = statement.closing_balance
    if closing is not None and draw(st.booleans()):
        change["closing_balance"] = Balance(
            Money(closing.amount.amount + draw(st.decimals(-5, 5, places=2)),
                  draw(st.sampled_from((closing.amount.currency, "FRF")))),
            closing.date, BalanceKind.CLOSING_BOOKED)
    if draw(st.booleans()):
        change["account"] = dataclasses.replace(
            statement.account, currency=draw(st.sampled_from((None, "ITL", "EUR"))))
    if draw(st.booleans()):
        change["opening_balance"] = None
    return dataclasses.replace(statement, **change)  # type: ignore[arg-type]


def _stream_checked(statement: Statement, *, strict: bool) -> Statement:
    check = StreamCheck()
    for entry in statement.entries:
        check.add(entry)
    return dataclasses.replace(
        check.finish(dataclasses.replace(statement, entries=()), strict=strict),
        entries=statement.entries)


@given(_checked_statements(), st.booleans())
def test_streaming_check_agrees_with_check_statement(statement: Statement,
                                                      strict: bool) -> None:
    try:
        expected: Statement | str = check_statement(statement, strict=strict)
    except ParseError as exc:
        expected = str(exc)
    try:
        got: Statement | str = _stream_checked(statement, strict=strict)
    except ParseError as exc:
        got = str(exc)
    assert got == expected


def test_streaming_check_keeps_the_exponent_of_the_sum() -> None:
    day = date(2026, 1, 1)
    balance = Balance(Money(Decimal("10.00"), "EUR"), day, BalanceKind.OPENING_BOOKED)
    entries = (Entry(Money(Decimal("1"), "EUR"), day),
               Entry(Money(Decimal("1E+1"), "EUR"), day))
    statement = Statement(
        source="x", format="camt.053", account=Account(currency="EUR"),
        entries=entries, opening_balance=balance,
        closing_balance=dataclasses.replace(balance, kind=BalanceKind.CLOSING_BOOKED))
    assert _stream_checked(statement, strict=False) == check_statement(statement, strict=False)


def test_open_path_refuses_a_file_over_the_limit_and_one_that_grows(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    data = (DATA / "camt" / "camt053_v08.xml").read_bytes()
    path.write_bytes(data)
    with pytest.raises(parsers.TooLargeError, match="over the limit"):
        parsers.open_path(path, max_bytes=len(data) - 1)
    with parsers.open_path(path, max_bytes=len(data) + 10) as file:
        with path.open("ab") as grow:
            grow.write(b" " * 1000)
        with pytest.raises(parsers.TooLargeError, match="over the limit"):
            file.read()
    with parsers.open_path(path.with_name("s.xml"), max_bytes=10**9) as file:
        assert tuple(collect(parsers.stream(file, source="s.xml"))) == parsers.parse(
            path.read_bytes(), source="s.xml")
    with pytest.raises(ParseError, match="cannot read the file"):
        parsers.open_path(tmp_path / "missing.xml")
