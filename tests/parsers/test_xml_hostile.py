"""Hostile and broken XML handed to the camt parser: always a ParseError, fast, no leak.

XXE, billion laughs, external DTDs, deep nesting, truncation, other XML formats, and a
document of tens of megabytes parsed in bounded memory.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import parsers
from parsers import camt
from parsers.errors import ParseError

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ROOT = Path(__file__).resolve().parents[2]

# A whole, valid statement; hostile variants are built around it.
BODY = (
    "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId><CreDtTm>2024-03-14T10:00:00Z</CreDtTm></GrpHdr>"
    "<Stmt><Id>S1</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy>"
    "<Ownr><Nm>{owner}</Nm></Ownr></Acct>"
    '<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
    "<BkTxCd/></Ntry></Stmt></BkToCstmrStmt>"
)


def camt_document(owner: str = "Owner", prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
            f'<Document xmlns="{NS}">{BODY.format(owner=owner)}</Document>\n').encode()


def refused(data: bytes, *, within: float = 5.0) -> ParseError:
    """The ParseError camt.parse gives for ``data``, checked to come quickly."""
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        camt.parse(data, source="hostile.xml")
    assert time.monotonic() - started < within
    assert caught.value.source == "hostile.xml"
    return caught.value


def test_the_plain_document_parses() -> None:
    (statement,) = camt.parse(camt_document(), source="plain.xml")
    assert statement.account.owner_name == "Owner"


def test_xxe_external_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT-4711", encoding="utf-8")
    prolog = f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
    data = camt_document("&xxe;", prolog)
    assert camt.sniff(data)  # it is claimed as camt, so the refusal is camt's
    error = refused(data)
    assert error.line == 2
    assert "DOCTYPE is not allowed" in error.message
    assert "TOP-SECRET" not in str(error)
    with pytest.raises(ParseError) as through_pipeline:
        parsers.parse(data, source="hostile.xml")
    assert "TOP-SECRET" not in str(through_pipeline.value)


def test_xxe_in_utf16_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT-4711", encoding="utf-8")
    prolog = f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
    text = camt_document("&xxe;", prolog).decode().replace('"UTF-8"', '"UTF-16"')
    error = refused(text.encode("utf-16"))
    assert "DOCTYPE" in error.message


def test_external_dtd_and_parameter_entities_are_refused() -> None:
    external = camt_document(prolog='<!DOCTYPE Document SYSTEM "http://198.51.100.7/camt.dtd">\n')
    assert "DOCTYPE" in refused(external).message
    parameter = camt_document(prolog=(
        '<!DOCTYPE Document [<!ENTITY % remote SYSTEM "http://198.51.100.7/x.dtd"> %remote;]>\n'))
    assert "DOCTYPE" in refused(parameter).message
    hidden = camt_document(prolog="<!-- innocent -->\n<?pi x?>\n<!DOCTYPE Document>\n")
    assert refused(hidden).line == 4
    assert refused(hidden.replace(b"\n", b"\r")).line == 4  # CR-only line ends


def test_billion_laughs_is_refused_fast() -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{"".join(f"&lol{i - 1};" for _ in range(10))}">' for i in range(1, 10)
    ]
    prolog = f"<!DOCTYPE Document [{''.join(entities)}]>\n"
    error = refused(camt_document("&lol9;", prolog), within=2.0)
    assert "DOCTYPE" in error.message


def test_a_doctype_the_prolog_scan_misses_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: lxml's own view of the document is checked too."""
    monkeypatch.setattr(camt, "_prolog", lambda head: camt._Prolog(None, "Document", ""))
    prolog = '<!DOCTYPE Document [<!ENTITY x "expanded">]>\n'
    error = refused(camt_document("&x;", prolog))
    assert "DOCTYPE is not allowed" in error.message


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    depth = 100_000
    opening = f'<Document xmlns="{NS}"><BkToCstmrStmt><Stmt><Ntry>'
    closing = "</Ntry></Stmt></BkToCstmrStmt></Document>"
    error = refused((opening + "<a>" * depth + "</a>" * depth + closing).encode())
    assert error.line == 1
    assert "depth" in error.message.lower()


def test_truncated_documents_are_refused() -> None:
    data = camt_document()
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 12):
        error = refused(data[:cut])
        assert error.line is not None, cut


def test_huge_text_node_is_refused() -> None:
    """Without huge_tree, libxml2 refuses a text node over 10 MB."""
    data = camt_document("x" * (11 * 1024 * 1024))
    error = refused(data, within=10.0)
    assert error.line == 2


def test_ofx2_handed_to_camt_is_refused() -> None:
    ofx = (b'<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="211"?>\n'
           b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR</CURDEF></STMTRS></STMTTRNRS>"
           b"</BANKMSGSRSV1></OFX>\n")
    assert not camt.sniff(ofx)
    error = refused(ofx)
    assert error.path == "/OFX"


def test_other_xml_is_refused() -> None:
    assert refused(b"<note><to>you</to></note>").path == "/note"
    other = f'<Document xmlns="{NS}"><Stmt/></Document>'.encode()
    assert refused(other).path == "/Document/Stmt[1]"


# A child process builds a large document, parses it, and reports how much its resident
# memory grew (ru_maxrss, which sees libxml2's memory that tracemalloc cannot).
_MEMORY_PROBE = textwrap.dedent("""
    import itertools, resource, sys
    from parsers import camt
    count = int(sys.argv[1])
    head = (b'<?xml version="1.0" encoding="UTF-8"?>\\n<Document xmlns="{ns}">'
            b'<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId><CreDtTm>2024-03-14T10:00:00Z</CreDtTm>'
            b'</GrpHdr><Stmt><Id>S</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id>'
            b'<Ccy>EUR</Ccy></Acct>\\n')
    lines = b''.join(b'<AdrLine>' + b'x' * 140 + b'</AdrLine>' for _ in range(60))
    entry = (b'<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd>'
             b'</Sts><BkTxCd/><NtryDtls><TxDtls><RltdPties><Dbtr><Pty><Nm>Payer</Nm><PstlAdr>'
             + lines + b'</PstlAdr></Pty></Dbtr></RltdPties></TxDtls></NtryDtls></Ntry>\\n')
    tail = b'</Stmt></BkToCstmrStmt></Document>\\n'
    data = b''.join(itertools.chain([head], itertools.repeat(entry, count), [tail]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (statement,) = camt.parse(data, source='big.xml')
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(statement.entries) == count
    print(len(data), (after - before) * 1024)
""").replace("{ns}", NS)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_large_document_is_parsed_in_bounded_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, "6000"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    size, growth = map(int, done.stdout.split())
    assert size > 50 * 1024 * 1024
    # Whole-tree parsing takes about three times the document; streaming, with each entry
    # freed once read, needs a small fraction of it (the result here is a few MB).
    assert growth < size // 5, f"memory grew by {growth} bytes for a {size}-byte document"
