"""OFX read from a file in pieces: the tokens, the text and the statements are those of the
whole document, whatever the size of the pieces, and memory does not follow the file.

The tokenizer is given the body in pieces of any size from one character up, and the file
is read in blocks of any size from one byte up (``ofx_bytes.BLOCK_BYTES``): a tag, an
entity, a comment, a CRLF or a multi-byte character (UTF-8, GBK, UTF-16) split between two
of them changes nothing.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import ofx, ofx_bytes, ofx_header, ofx_stream
from parsers.errors import ParseError, TooLargeError
from parsers.model import Entry, Statement
from parsers.ofx_statement import read_whole
from parsers.ofx_tokens import Repairs, Token, iter_tokens, tokenize
from parsers.stream import Part, StatementStart, collect
from tests.corpus import CORPUS

DATA = Path(__file__).resolve().parents[1] / "data" / "ofx"

# Pieces of OFX bodies: tags, text (Chinese and accented names, entities good and bad, a
# raw '&' or '<'), what the tokenizer skips or takes as text, and line ends.
_FRAGMENTS = st.one_of(
    st.sampled_from(["<OFX>", "</OFX>", "<STMTTRN>", "</STMTTRN>", "<NAME>", "</NAME>",
                     "<MEMO>", "<BR/>", "<name >", "</memo\t>", "<A.B_1/>", "</X/>"]),
    st.sampled_from(["张伟", "北京科技有限公司", "Müller & Söhne", "Café €5", "a &amp; b",
                     "&#x4E2D;&#25991;", "R&D", "1 &lt; 2", "&bogus;", "&#0;", "&#xD800;",
                     "&amp", "Zoë"]),
    st.sampled_from(["\n", "\r\n", "\r", "  ", "\t", "\n\n"]),
    st.sampled_from(["<!-- c > d -->", "<![CDATA[a <b> & c]]>", "<?pi x?>", "<!DOCTYPE x>",
                     "<!---->", "<", "<1", "< b", "<-", "<!-", "<?", "<![CDATA["]),
    st.text(alphabet=st.sampled_from("ab <>/&;#中文é!?-[]\n"), max_size=12),
)


def _described(tokens: Callable[[Repairs], Iterable[Token]]) -> object:
    """The tokens (kind, value, line, empty) and the repairs, or the error raised."""
    repairs = Repairs()
    try:
        listed = [(t.kind, t.value, t.line, t.empty) for t in tokens(repairs)]
    except ParseError as exc:
        return ("error", exc.message, exc.line)
    return listed, repairs.flags()


def _pieces(text: str, size: int) -> Iterator[str]:
    for at in range(0, len(text), size):
        yield text[at:at + size]


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40), st.data())
def test_tokens_in_pieces_of_any_size_are_the_tokens_of_the_whole_text(
        fragments: list[str], data: st.DataObject) -> None:
    text = "".join(fragments).replace("\r\n", "\n").replace("\r", "\n")
    size = data.draw(st.integers(1, len(text) + 1))
    whole = _described(lambda repairs: tokenize(text, 0, source="t", repairs=repairs))
    assert _described(lambda repairs: iter_tokens(_pieces(text, size), source="t",
                                                  repairs=repairs)) == whole


_HEADERS = {
    "utf-8": "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nENCODING:UTF-8\r\n"
             "CHARSET:NONE\r\n\r\n",
    "cp1252": "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nENCODING:USASCII\r\n"
              "CHARSET:1252\r\n\r\n",
    "gbk": "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nENCODING:USASCII\r\n"
           "CHARSET:936\r\n\r\n",
    "utf-16": '<?xml version="1.0" encoding="UTF-16"?>\r\n'
              '<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE"?>\r\n',
}


def _encodable(text: str, codec: str) -> str:
    return "".join(c for c in text if c.encode(codec, errors="ignore"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_HEADERS)), st.sampled_from(["\r\n", "\n", "\r"]),
       st.lists(_FRAGMENTS, max_size=30), st.data())
def test_a_file_read_in_blocks_of_any_size_gives_the_whole_text_and_its_tokens(
        codec: str, newline: str, fragments: list[str], data: st.DataObject) -> None:
    """Decoded as the whole file is (its charset, or UTF-8 when it is valid UTF-8), its
    line ends normalised, and tokenized the same."""
    body = _encodable("<OFX>" + "".join(fragments), codec)
    text = (_HEADERS[codec] + body).replace("\r\n", "\n").replace("\r", "\n")
    document = text.replace("\n", newline).encode(codec)
    whole = ofx_header.read(document, source="d")
    try:
        expected = document.decode("utf-8")
    except UnicodeDecodeError:
        expected = document.decode(codec)
    assert whole.text == expected.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    tokens = _described(lambda repairs: tokenize(whole.text, whole.body_start, source="d",
                                                  repairs=repairs))
    block = data.draw(st.integers(1, len(document) + 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ofx_bytes, "BLOCK_BYTES", block)
        opened = ofx_header.open_document(io.BytesIO(document), source="d")
        assert (opened.head, opened.version, opened.flags) == (
            whole.text[:whole.body_start], whole.version, whole.flags)
        assert _described(lambda repairs: iter_tokens(
            opened.body(), source="d", repairs=repairs, line=opened.body_line)) == tokens
        assert "".join(opened.body()) == whole.text[whole.body_start:]  # read again


def _files() -> list[Path]:
    files = sorted(p for p in DATA.iterdir() if not p.name.endswith(".json"))
    if CORPUS.is_dir():
        files += sorted((CORPUS / "ofx").glob("*.ofx"))
    return files


def _results(results: Iterable[Statement | ParseError]) -> list[object]:
    return [(r.message, r.source, r.line, r.path, r.field) if isinstance(r, ParseError)
            else r for r in results]


def _whole(data: bytes) -> object:
    try:
        return _results(read_whole(data, source="f"))
    except ParseError as exc:
        return ("raises", exc.message, exc.line, exc.path, exc.field)


def _streamed(data: bytes) -> object:
    try:
        return _results(collect(ofx.stream(io.BytesIO(data), source="f")))
    except ParseError as exc:
        return ("raises", exc.message, exc.line, exc.path, exc.field)


@pytest.mark.parametrize("block", [1, 3, 64, 4096])
@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_golden_and_corpus_files_streamed_in_small_blocks_read_as_whole(
        path: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    whole = _whole(data)
    monkeypatch.setattr(ofx_bytes, "BLOCK_BYTES", block)
    assert _streamed(data) == whole


def _statement(names: list[str], charset: str) -> str:
    rows = "".join(
        f"<STMTTRN>\r\n<TRNTYPE>CREDIT\r\n<DTPOSTED>20261101\r\n<TRNAMT>{n}.25\r\n"
        f"<FITID>F{n}\r\n<NAME>{name}\r\n<MEMO>{name} 发票 {n}\r\n</STMTTRN>\r\n"
        for n, name in enumerate(names))
    return (
        f"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\n{charset}"
        "COMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
        "<OFX>\r\n<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<DTSERVER>20261101000000[0:GMT]</SONRS></SIGNONMSGSRSV1>\r\n<BANKMSGSRSV1>"
        "<STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>CNY"
        "<BANKACCTFROM><BANKID>1<ACCTID>2<ACCTTYPE>CHECKING</BANKACCTFROM>\r\n"
        "<BANKTRANLIST><DTSTART>20261101<DTEND>20261101\r\n" + rows +
        "</BANKTRANLIST><LEDGERBAL><BALAMT>0<DTASOF>20261101</LEDGERBAL></STMTRS>"
        "</STMTTRNRS></BANKMSGSRSV1>\r\n</OFX>\r\n")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["张伟", "王秀英", "北京科技有限公司", "陈 & 李",
                                 "上海浦东发展银行"]), min_size=1, max_size=8),
       st.sampled_from([("ENCODING:UTF-8\r\nCHARSET:NONE\r\n", "utf-8"),
                        ("ENCODING:USASCII\r\nCHARSET:936\r\n", "gbk")]),
       st.integers(1, 64))
def test_chinese_names_and_memos_come_out_whatever_the_blocks(
        names: list[str], charset: tuple[str, str], block: int) -> None:
    header, codec = charset
    document = _statement(names, header).encode(codec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ofx_bytes, "BLOCK_BYTES", block)
        parts = list(ofx.stream(io.BytesIO(document), source="cn.ofx"))
    entries = [p for p in parts if isinstance(p, Entry)]
    assert [e.counterparty_name for e in entries] == [n.replace(" & ", " & ") for n in names]
    assert [e.remittance for e in entries] == [f"{n} 发票 {i}" for i, n in enumerate(names)]
    assert list(collect(parts)) == list(ofx.parse(document, source="cn.ofx"))


def _large(transactions: int) -> bytes:
    return _statement([f"收款人 {n % 97}" for n in range(transactions)],
                      "ENCODING:UTF-8\r\nCHARSET:NONE\r\n").encode("utf-8")


def _traced_peak(data: bytes) -> int:
    """Python's peak allocation while the stream of ``data`` is read through, each part
    let go: what the reader holds (the input is allocated before tracing starts)."""
    file = io.BytesIO(data)
    entries = 0
    tracemalloc.start()
    try:
        parts: Iterator[Part] = ofx.stream(file, source="big.ofx")
        for part in parts:
            entries += isinstance(part, Entry)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entries > 0
    return peak


def test_memory_does_not_follow_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming a file 15 times larger takes no more memory, by far less than the
    difference in their sizes (the reader used to hold the file and its text)."""
    monkeypatch.setattr(ofx_bytes, "BLOCK_BYTES", 1 << 14)
    small, large = _large(400), _large(6_000)
    assert len(large) - len(small) > 750_000
    growth = _traced_peak(large) - _traced_peak(small)
    assert growth < 192 * 1024, f"{growth:,} bytes more for {len(large) - len(small):,} more"


class _Growing(io.BytesIO):
    """A file found past its size limit once ``limit`` is set (as ``parsers.open_path``'s
    file is when it grows while read)."""

    limit: int | None = None

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        if self.limit is not None and self.tell() > self.limit:
            raise TooLargeError("the file is over the limit", source="grown.ofx")
        return block


def test_a_file_that_grows_past_its_limit_is_not_read_again_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ofx_bytes, "BLOCK_BYTES", 1 << 12)

    def whole(data: bytes, *, source: str) -> object:
        raise AssertionError("read whole")

    monkeypatch.setattr(ofx_stream, "read_whole", whole)
    data = _large(2_000)
    file = _Growing(data)
    parts = ofx.stream(file, source="grown.ofx")
    assert isinstance(next(parts), StatementStart)
    assert isinstance(next(parts), Entry)
    file.limit = len(data) // 2
    with pytest.raises(TooLargeError):
        list(parts)


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.97])
def test_a_truncated_file_is_refused_as_whole_without_reading_it_whole(
        cut: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error of a file cut short (in the tokens or the tree) is the whole reading's,
    raised where it is met, without the whole reading's memory."""
    data = _large(2_000)
    data = data[:int(len(data) * cut)]
    with pytest.raises(ParseError) as whole:
        read_whole(data, source="cut.ofx")

    def no_whole(data: bytes, *, source: str) -> object:
        raise AssertionError("read whole")

    monkeypatch.setattr(ofx_stream, "read_whole", no_whole)
    monkeypatch.setattr(ofx_bytes, "BLOCK_BYTES", 1 << 12)
    with pytest.raises(ParseError) as streamed:
        list(ofx.stream(io.BytesIO(data), source="cut.ofx"))
    assert (streamed.value.message, streamed.value.line, streamed.value.field) == (
        whole.value.message, whole.value.line, whole.value.field)
