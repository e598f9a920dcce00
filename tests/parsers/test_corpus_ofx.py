"""Every OFX file of the shared corpus, through the whole pipeline (detection, parse, checks).

A file either parses and matches its FACTS.tsv row, or is listed in ``KNOWN_GAPS`` with
why, and the test then checks it still fails exactly that way. Besides FACTS, the entry
count is compared with the raw truth: the ``<STMTTRN>`` start tags in the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

import parsers
from parsers.errors import ParseError
from tests.corpus import CORPUS, corpus_files, fact_mismatches, facts

# file -> the ParseError message it must raise, and why that is right.
KNOWN_GAPS: dict[str, tuple[str, str]] = {
    "ofx/ofxparse__error_message.ofx": (
        "error instead of a statement: status 2000 (ERROR) 'General Server Error'",
        "an error response (STMTTRNRS status 2000, no STMTRS), not a statement. FACTS count "
        "it as 0 statements; we refuse it and quote the server, so an upload of it is not "
        "taken for an empty statement",
    ),
    "ofx/ofxparse__fidelity.ofx": (
        "investment statements (INVSTMTRS) are not supported",
        "an investment statement (BUYSTOCK, SELLSTOCK, INCOME, INVBANKTRAN): out of scope "
        "for a bank reconciliation parser; FACTS expect 17 investment transactions",
    ),
}


def _raw_transaction_count(data: bytes) -> int:
    return data.upper().count(b"<STMTTRN>")


@pytest.mark.parametrize("name", corpus_files("ofx"))
def test_corpus_file_matches_its_facts(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    if name in KNOWN_GAPS:
        message, _why = KNOWN_GAPS[name]
        with pytest.raises(ParseError) as caught:
            parsers.parse(data, source=name)
        assert caught.value.source == name
        assert message in caught.value.message
        return
    statements = parsers.parse(data, source=name)
    assert fact_mismatches(name, statements) == []
    assert sum(len(s.entries) for s in statements) == _raw_transaction_count(data)
    assert all(s.format == "ofx" for s in statements)


def test_known_gaps_are_corpus_files() -> None:
    if not (CORPUS / "FACTS.tsv").exists():
        pytest.skip("the shared corpus is not here")
    assert set(KNOWN_GAPS) <= set(facts())


@pytest.fixture
def corpus_bytes() -> Callable[[str], bytes]:
    if not (CORPUS / "FACTS.tsv").exists():
        pytest.skip("the shared corpus is not here")
    return lambda name: (CORPUS / "ofx" / name).read_bytes()


def test_empty_tags_file_is_read_from_the_raw_truth(corpus_bytes: Callable[[str], bytes]) -> None:
    # FACTS leave this file's counts blank (both reference libraries fail on it). The raw
    # text has one STMTTRN of 12.34 in AUD (its CURRENCY/CURSYM), under an empty CURDEF.
    name = "ofxparse__ofx-v102-empty-tags.ofx"
    (statement,) = parsers.parse(corpus_bytes(name), source=name)
    (entry,) = statement.entries
    assert (entry.amount.amount, entry.amount.currency) == (Decimal("12.34"), "AUD")
    assert entry.booking_date is not None and entry.booking_date.isoformat() == "2018-05-07"
    assert entry.bank_reference is None  # <FITID></FITID>
    assert statement.account.currency is None  # <CURDEF></CURDEF>
    assert statement.closing_balance is None  # <BALAMT></BALAMT>
    assert statement.created_at is None  # DTSERVER 20180804093914:014
    messages = " | ".join(f.message for f in statement.flags)
    assert "empty elements ignored" in messages
    assert "TRNTYPE values upper-cased (1: Credit)" in messages


def test_sixteen_digit_amounts_survive_exactly(corpus_bytes: Callable[[str], bytes]) -> None:
    name = "ofxgo__moneymrkt1_v103.ofx"
    (statement,) = parsers.parse(corpus_bytes(name), source=name)
    assert [str(e.amount.amount) for e in statement.entries] == [
        "-995.4190396554627", "788.5385340523635", "3070.1328011762807"]
    assert statement.closing_balance is not None
    assert str(statement.closing_balance.amount.amount) == "2607.1664944585727"
