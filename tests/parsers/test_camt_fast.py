"""The fast reader of usual camt entries (``parsers.camt_fast``) gives what the full reader
(``parsers.camt_entries``) gives, or nothing: over generated entries of every shape, with
values good, blank, padded and bad, and over every golden and corpus camt file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from parsers import camt, camt_entries, camt_fast
from parsers.camt_xml import Notes, Scope, Shapes
from parsers.errors import ParseError
from parsers.model import Entry
from tests.corpus import CORPUS
from tests.paths import DATA

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                          remove_pis=True)


def _optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), strategy)


def _element(name: str, texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return texts.map(lambda text: f"<{name}>{text}</{name}>")


def _all(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def _wrapped(name: str, inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return inner.map(lambda text: f"<{name}>{text}</{name}>")


_NINE_IN_TEN = st.sampled_from([True] * 9 + [False])


def _mostly(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """One of ``good`` nine times in ten, else one of ``bad``."""
    return st.tuples(_NINE_IN_TEN, st.sampled_from(good), st.sampled_from(bad)).map(
        lambda choice: choice[1] if choice[0] else choice[2])


def _usually(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``strategy`` nine times in ten, else nothing."""
    return st.tuples(_NINE_IN_TEN, strategy).map(lambda choice: choice[1] if choice[0] else "")


_TEXT = st.sampled_from(["REF-1", "  padded  ", "", " ", "a &amp; b", "Zoë Öztürk", "NOTPROVIDED",
                         "x" * 40])
_AMOUNT = _all(_mostly(['<Amt Ccy="EUR">', '<Amt Ccy=" EUR ">', '<Amt Ccy="JPY">',
                        '<Amt Ccy="DEM">'], ['<Amt Ccy="XYZ">', "<Amt>", '<Amt Ccy="">']),
               _mostly(["12.50", " 7 ", "0", "0.00", ".5", "1.000", "99999999999999999999.99"],
                       ["1e5", "-3", "", "abc", "+2"]),
               st.just("</Amt>"))
_CREDIT = _element("CdtDbtInd", _mostly(["CRDT", "DBIT", " DBIT "], ["", "X"]))
_DATE = st.tuples(
    st.sampled_from(["Dt"] * 6 + ["DtTm"] * 3 + [""]),
    _element("Dt", _mostly(["2024-03-14", " 2024-03-14 ", "2024-03-14Z", "2024-03-14+01:00"],
                           ["2024-02-30", "14.03.2024", ""])),
    _element("DtTm", _mostly(["2024-03-14T23:30:00", "2024-03-14T23:30:00-05:00",
                              "2024-03-14T10:00:00.1234567Z"], ["bad"])),
).map(lambda choice: {"Dt": choice[1], "DtTm": choice[2], "": ""}[choice[0]])
_STATUS = st.one_of(
    _element("Sts", _mostly(["BOOK", "PDNG", "INFO", "FUTR"], ["XXXX", ""])),
    _wrapped("Sts", _element("Cd", _mostly(["BOOK", "PDNG", "FUTR", " INFO "], ["", "X"]))),
)
_CODE = _wrapped("BkTxCd", _all(
    _optional(_wrapped("Domn", _all(_optional(_element("Cd", st.sampled_from(["PMNT", " "]))),
                                    _optional(_wrapped("Fmly", _all(
                                        _element("Cd", st.sampled_from(["RCDT", "ICDT"])),
                                        _optional(_element("SubFmlyCd", st.just("ESCT"))))))))),
    _optional(_wrapped("Prtry", _all(
        _element("Cd", st.sampled_from(["NTRF+153", "NMSC+201+000", "X", ""])),
        _optional(_element("Issr", st.sampled_from(["DK", "BANK", ""])))))),
))
_FX = _mostly([
    '<AmtDtls><InstdAmt><Amt Ccy="USD">5.00</Amt></InstdAmt></AmtDtls>',
    '<AmtDtls><TxAmt><Amt Ccy="EUR">5.00</Amt><CcyXchg><SrcCcy>USD</SrcCcy>'
    "<TrgtCcy>EUR</TrgtCcy><XchgRate>0.9</XchgRate></CcyXchg></TxAmt></AmtDtls>",
], ['<AmtDtls><TxAmt><Amt Ccy="EUR">bad</Amt></TxAmt></AmtDtls>'])
_CHARGES = _mostly([
    '<Chrgs><Rcrd><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd></Rcrd></Chrgs>',
    '<Chrgs><TtlChrgsAndTaxAmt Ccy="EUR">2.00</TtlChrgsAndTaxAmt></Chrgs>',
    '<Chrgs><Amt Ccy="EUR">1.00</Amt><Tp><PrtryCd>X</PrtryCd></Tp></Chrgs>',
], ['<Chrgs><Rcrd><Amt Ccy="EUR">1.00</Amt><ChrgInclInd>maybe</ChrgInclInd></Rcrd></Chrgs>'])


def _party(side: str) -> st.SearchStrategy[str]:
    name = st.one_of(_element("Nm", _TEXT), _wrapped("Pty", _element("Nm", _TEXT)),
                     _all(_element("Nm", _TEXT), _wrapped("Pty", _element("Nm", _TEXT))))
    account = _wrapped("Id", st.one_of(
        _element("IBAN", st.sampled_from(["DE89370400440532013000", " "])),
        _wrapped("Othr", _element("Id", _TEXT)), _element("BBAN", _TEXT),
        _all(_element("IBAN", _TEXT), _wrapped("Othr", _element("Id", _TEXT)),
             _element("BBAN", _TEXT))))
    agent = _wrapped("FinInstnId", st.one_of(_element("BICFI", _TEXT), _element("BIC", _TEXT),
                                             _all(_element("BICFI", _TEXT),
                                                  _element("BIC", _TEXT))))
    return st.tuples(_optional(_wrapped(side, name)), _optional(_wrapped(side + "Acct", account)),
                     _optional(_wrapped("Ultmt" + side, name)),
                     _optional(_wrapped(side + "Agt", agent)))


_PARTIES = st.tuples(_party("Dbtr"), _party("Cdtr")).map(
    lambda sides: (_join(sides[0][:3] + sides[1][:3]), sides[0][3] + sides[1][3]))


def _join(parts: tuple[str, ...]) -> str:
    return "".join(parts)


_TX = st.tuples(
    _optional(_wrapped("Refs", _all(_optional(_element("AcctSvcrRef", _TEXT)),
                                    _optional(_element("EndToEndId", _TEXT)),
                                    _optional(_element("MndtId", _TEXT))))),
    _usually(_AMOUNT), _optional(_CREDIT), _optional(_CODE), _optional(_FX),
    _optional(_CHARGES), _PARTIES,
    _optional(_wrapped("RmtInf", _all(
        st.lists(_element("Ustrd", _TEXT), max_size=3).map("".join),
        st.lists(_wrapped("Strd", _wrapped("CdtrRefInf", _element("Ref", _TEXT))),
                 max_size=2).map("".join)))),
    _optional(_element("AddtlTxInf", _TEXT)),
    _optional(st.just("<Purp><Cd>SALA</Cd></Purp>")),
).map(lambda p: "<TxDtls>" + "".join(p[:6]) + _rltd(p[6]) + "".join(p[7:]) + "</TxDtls>")


def _rltd(parties: tuple[str, str]) -> str:
    related, agents = parties
    return ((f"<RltdPties>{related}</RltdPties>" if related else "")
            + (f"<RltdAgts>{agents}</RltdAgts>" if agents else ""))


_DETAILS = st.one_of(
    st.just(""),
    _TX.map(lambda tx: f"<NtryDtls>{tx}</NtryDtls>"),
    _TX,  # camt.05x.001.01: directly in the Ntry
    st.lists(_TX, min_size=2, max_size=2).map(lambda txs: f"<NtryDtls>{''.join(txs)}</NtryDtls>"),
    _TX.map(lambda tx: f"<NtryDtls><Btch><NbOfTxs>1</NbOfTxs></Btch>{tx}</NtryDtls>"),
)

ENTRIES = st.tuples(
    _usually(_AMOUNT), _usually(_CREDIT),
    _optional(_element("RvslInd", _mostly(["true", "false", "1", "0"], ["yes", ""]))),
    _optional(_STATUS), _optional(_wrapped("BookgDt", _DATE)), _optional(_wrapped("ValDt", _DATE)),
    _optional(_element("AcctSvcrRef", _TEXT)), _optional(_element("NtryRef", _TEXT)),
    _optional(_CODE), _optional(_FX), _optional(_CHARGES), _DETAILS,
    _optional(_element("AddtlNtryInf", _TEXT)),
).map(lambda parts: "<Ntry>" + "".join(parts) + "</Ntry>")


def _both(ntry: etree._Element, shapes: Shapes) -> tuple[object, tuple[object, ...],
                                                          Entry | None, tuple[object, ...]]:
    """(the full reader's entry or error, its flags, the fast reader's entry, its flags)."""
    nodes, layout = shapes.layout(ntry)
    scope = Scope("test.xml", ntry, "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]")
    full_notes, fast_notes = Notes(), Notes()
    full: object
    try:
        full = camt_entries.entry(scope, layout.subtree(nodes), full_notes)
    except ParseError as exc:
        full = str(exc)
    fast = camt_fast.entry(scope, nodes, layout, fast_notes)
    return full, full_notes.flags(), fast, fast_notes.flags()


@settings(max_examples=1000, deadline=None)
@given(ENTRIES)
def test_the_fast_reader_reads_an_entry_as_the_full_reader_or_not_at_all(xml: str) -> None:
    ntry = etree.fromstring(xml.encode(), _PARSER)
    shapes = Shapes()
    for _ in range(2):  # the plan made, then the plan known
        full, full_flags, fast, fast_flags = _both(ntry, shapes)
        if fast is None:
            assert fast_flags == ()
        else:
            assert fast == full
            assert fast_flags == full_flags


def _ntry_elements(path: Path) -> list[etree._Element]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                             remove_pis=True, load_dtd=False)
    try:
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError:
        return []
    return list(tree.iter("{*}Ntry", "Ntry"))


def _camt_files() -> list[Path]:
    files = sorted((DATA / camt.FAMILY).glob("*.xml"))
    if (CORPUS / camt.FAMILY).is_dir():
        files += sorted(p for p in (CORPUS / camt.FAMILY).iterdir() if p.is_file())
    return files


def test_the_fast_reader_reads_the_entries_of_real_files_as_the_full_reader() -> None:
    read = total = 0
    for path in _camt_files():
        shapes = Shapes()
        for ntry in _ntry_elements(path):
            full, full_flags, fast, fast_flags = _both(ntry, shapes)
            total += 1
            if fast is not None:
                read += 1
                assert (fast, fast_flags) == (full, full_flags), path.name
    assert total and read >= total / 2  # most entries are of a usual shape


@pytest.mark.parametrize("reversal", ["true", "false"])
def test_the_fast_reader_reads_the_usual_entry(reversal: str) -> None:
    xml = ('<Ntry><Amt Ccy="EUR">555.68</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
           f"<RvslInd>{reversal}</RvslInd><Sts><Cd>BOOK</Cd></Sts>"
           "<BookgDt><Dt>2025-01-01</Dt></BookgDt><ValDt><Dt>2025-01-01</Dt></ValDt>"
           "<AcctSvcrRef>R1</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>E2E</EndToEndId>"
           '</Refs><Amt Ccy="EUR">555.68</Amt><RltdPties><Dbtr><Pty><Nm>Hotel Zur Post</Nm>'
           "</Pty></Dbtr><Cdtr><Nm>Us</Nm></Cdtr></RltdPties><RmtInf><Ustrd>RE 1</Ustrd>"
           "<Ustrd> </Ustrd><Ustrd>RE 2</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    full, _, fast, _ = _both(etree.fromstring(xml.encode(), _PARSER), Shapes())
    assert isinstance(fast, Entry)
    assert fast == full
    assert fast.counterparty_name == ("Us" if reversal == "true" else "Hotel Zur Post")
    assert fast.remittance == "RE 1 RE 2"
