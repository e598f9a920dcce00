"""The MT940 and OFX readers as streams: the parts they yield, gathered, are what the
documents gave before they streamed; they read as they go; nothing is lost or doubled.

``stream_regression.json`` holds what the readers gave, before they streamed (commit
2887e62), for every golden MT940 and OFX file and twelve damaged copies of each (cut,
a byte changed, a run of bytes deleted, a line or tag inserted; the copies are made here
again, seeded by the file's name): per statement its ParseError (message, line, path,
field) or its reference, number of entries, their net amount and number of flags (not
the fields of each entry, which the ``:86:`` layouts keep refining), or the error the
whole file raised. The one change
made on purpose: a bad statement of a multi-statement OFX file is named
(``statement 2 of 3: ...``), as MT940 names it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import mt940, mt940_lines, ofx, ofx_stream, ofx_tree
from parsers.errors import ParseError
from parsers.model import Entry, Statement
from parsers.mt940_write import write
from parsers.ofx_statement import read_whole
from parsers.stream import Part, StatementEnd, StatementFailed, StatementStart, collect
from tests.parsers.test_mt940_write import mt940_statements

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = json.loads((Path(__file__).with_name("stream_regression.json")).read_text("utf-8"))
INSERTS = [b"\r\n", b"-\r\n", b":61:", b"{", b"}", b"\x1a", b":20:X\r\n", b"<", b"</STMTTRN>",
           b"&", b"<STMTTRN>", b":86:", b"\r\n:61:1201010101C1,NTRF\r\n"]


def _variants(data: bytes, key: str, count: int) -> Iterator[bytes]:
    """``data`` and ``count`` damaged copies of it, the same every run."""
    rnd = random.Random(key)  # noqa: S311 - seeded damage, not a secret
    yield data
    for _ in range(count):
        damaged = bytearray(data)
        op, at = rnd.randrange(4), rnd.randrange(len(damaged))
        if op == 0:
            del damaged[at:at + rnd.randrange(1, 40)]
        elif op == 1:
            damaged[at] = rnd.randrange(256)
        elif op == 2:
            damaged[at:at] = rnd.choice(INSERTS)
        else:
            damaged = damaged[:at]
        yield bytes(damaged)


def _described(result: Statement | ParseError) -> list[object]:
    if isinstance(result, ParseError):
        return ["error", result.message, result.line, result.path, result.field]
    net = sum((e.amount.amount for e in result.entries), start=0)
    return ["ok", result.statement_id, len(result.entries), str(net), len(result.flags)]


def _read(folder: str, data: bytes) -> list[list[object]]:
    """MT940: ``parse_each``; OFX: ``parse`` (what was recorded), its error unnamed."""
    try:
        if folder == "mt940":
            return [_described(r) for r in mt940.parse_each(data, source="damaged")]
        return [_described(s) for s in ofx.parse(data, source="damaged")]
    except ParseError as exc:
        return [_unnamed(["raises", exc.message, exc.line, exc.path, exc.field])]


def _unnamed(described: list[object]) -> list[object]:
    """An OFX error without the statement's name (the one change made on purpose)."""
    if isinstance(described[1], str):
        return [described[0], re.sub(r"^statement \d+ of \d+: ", "", described[1]),
                *described[2:]]
    return described


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_golden_files_and_damaged_copies_read_as_before(key: str) -> None:
    folder, name = key.split("/")
    data = (DATA / folder / name).read_bytes()
    for number, (variant, before) in enumerate(
            zip(_variants(data, key, 12), EXPECTED[key], strict=True)):
        assert _read(folder, variant) == before, f"copy {number}"


def _check_parts(parts: list[Part]) -> None:
    """Each statement: a start, its entries, an end counting them (or a failure)."""
    open_, entries = False, 0
    for part in parts:
        if isinstance(part, StatementStart):
            assert not open_ and part.statement.entries == ()
            open_, entries = True, 0
        elif isinstance(part, Entry):
            assert open_
            entries += 1
        elif isinstance(part, StatementEnd):
            assert open_ and part.entries == entries and part.statement.entries == ()
            open_ = False
        else:
            assert isinstance(part, StatementFailed)
            open_ = False
    assert not open_


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mt940_statements(), min_size=1, max_size=3), st.integers(1, 5))
def test_mt940_stream_gives_every_entry_once_whatever_the_pieces(
        generated: list[Statement], piece: int) -> None:
    """Statements read in pieces of any size: each entry once, in order, as written."""
    written = write(generated)
    whole = mt940.parse_each(written, source="generated")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mt940_lines, "PIECE_FIELDS", piece)
        parts = list(mt940.stream(io.BytesIO(written), source="generated"))
    _check_parts(parts)
    assert tuple(collect(parts)) == whole
    assert [e for e in parts if isinstance(e, Entry)] == [
        e for s in whole if isinstance(s, Statement) for e in s.entries]
    assert [dataclasses.replace(s, flags=()) for s in whole if isinstance(s, Statement)] == (
        generated)


_MUTATION_BYTES = st.sampled_from(list(b"<>/0123456789.,-&\r\n ABCMSTRNX"))


@settings(deadline=None, max_examples=120)
@given(st.data())
def test_ofx_stream_gives_what_the_whole_document_gives(data: st.DataObject) -> None:
    """Damaged OFX: the stream, gathered, is the document read whole as one tree, as
    before it streamed (the same statements, or the same error)."""
    paths = sorted(p for p in (DATA / "ofx").iterdir() if not p.name.endswith(".json"))
    document = bytearray(data.draw(st.sampled_from(paths)).read_bytes())
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(document) - 1))
        if data.draw(st.booleans()):
            document[at] = data.draw(_MUTATION_BYTES)
        else:
            del document[at]
    try:
        whole: tuple[Statement | ParseError, ...] | ParseError = read_whole(
            bytes(document), source="d")
    except ParseError as exc:
        whole = exc
    try:
        parts = list(ofx.stream(io.BytesIO(bytes(document)), source="d"))
    except ParseError as exc:
        assert isinstance(whole, ParseError)
        assert (exc.message, exc.line, exc.path, exc.field) == (
            whole.message, whole.line, whole.path, whole.field)
        return
    _check_parts(parts)
    assert not isinstance(whole, ParseError)
    assert [_exactly(r) for r in collect(parts)] == [_exactly(r) for r in whole]


def _exactly(result: Statement | ParseError) -> object:
    """A result comparable by value (a ParseError is equal only to itself)."""
    if isinstance(result, ParseError):
        return (result.message, result.source, result.line, result.path, result.field)
    return result


def _ofx(transactions: int) -> bytes:
    rows = "".join(
        f"<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261101<TRNAMT>{n}.50<FITID>F{n}"
        f"<NAME>Payer {n}</STMTTRN>\n" for n in range(transactions))
    return (
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n"
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<DTSERVER>20261101</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>1"
        "<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>EUR<BANKACCTFROM>"
        "<BANKID>1<ACCTID>2<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>"
        "<DTSTART>20261101<DTEND>20261101\n" + rows +
        "</BANKTRANLIST><LEDGERBAL><BALAMT>0<DTASOF>20261101</LEDGERBAL></STMTRS>"
        "</STMTTRNRS></BANKMSGSRSV1></OFX>\n").encode("ascii")


def test_ofx_entries_come_as_their_transactions_are_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first entry is yielded long before the document's last token is read, and the
    tree keeps only ofxparse's sample of the transactions."""
    read: list[int] = []
    real = ofx_tree.iter_tokens

    def counted(*args: object, **kwargs: object) -> Iterator[object]:
        for token in real(*args, **kwargs):  # type: ignore[arg-type]
            read.append(1)
            yield token

    monkeypatch.setattr(ofx_stream, "iter_tokens", counted)
    kept: list[int] = []
    real_end = ofx_stream._Reader._end

    def end(self: ofx_stream._Reader, root: ofx_tree.Element,
            repairs: ofx_tree.Repairs) -> Iterator[Part]:
        kept.append(sum(1 for e in root.iter() if e.tag == "STMTTRN"))
        return real_end(self, root, repairs)

    monkeypatch.setattr(ofx_stream._Reader, "_end", end)
    parts = ofx.stream(io.BytesIO(_ofx(1000)), source="big.ofx")
    assert isinstance(next(parts), StatementStart)
    assert isinstance(next(parts), Entry)
    assert 0 < len(read) < 100
    rest = list(parts)
    assert sum(isinstance(p, Entry) for p in rest) == 999
    assert isinstance(rest[-1], StatementEnd) and rest[-1].entries == 1000
    assert kept == [200]


def test_mt940_messages_come_as_their_lines_are_read() -> None:
    """The line layer hands a long statement on in pieces while it reads."""
    lines = [":20:R", ":25:NL91ABNA0417164300", ":60F:C261127EUR0,"]
    lines += [":61:2611271127C1,NTRFNONREF", ":86:text"] * 1000
    lines += [":62F:C261127EUR1000,", "-"]
    taken: list[str] = []

    def lazily() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    messages = mt940_lines.read_messages(lazily(), source="s")
    first = next(messages)
    assert first.more and len(first.fields) == mt940_lines.PIECE_FIELDS
    assert len(taken) < mt940_lines.PIECE_FIELDS + 10
    rest = list(messages)
    assert not rest[-1].more
    assert sum(len(m.fields) for m in (first, *rest)) == len(lines) - 1


def test_mt940_stream_reads_from_where_the_file_stands_and_unseekable_files() -> None:
    data = (DATA / "mt940" / "nl-ing-old-format.sta").read_bytes()

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    whole = mt940.parse_each(data, source="x")
    assert tuple(collect(mt940.stream(Pipe(data), source="x"))) == whole
    padded = io.BytesIO(b"junk" + data)
    padded.seek(4)
    assert tuple(collect(mt940.stream(padded, source="x"))) == whole
    assert not padded.closed
