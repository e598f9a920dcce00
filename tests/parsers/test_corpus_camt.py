"""Every camt file of the shared corpus through the full pipeline, against FACTS.tsv.

A file either parses and matches its facts, or is listed in ``KNOWN_GAPS`` with the exact
differences we expect and why; the test checks that it still differs in just that way, so
the list cannot go stale.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import parsers
from parsers.model import BalanceKind, Statement
from tests.corpus import CORPUS, corpus_files, fact_mismatches

# file -> (the mismatches fact_mismatches reports, why they are right)
KNOWN_GAPS: dict[str, tuple[list[str], str]] = {
    "camt/genkgo-camt__camt053.v3.xml": (
        ["currency: FACTS say ['SEK'], we have ['EUR']"],
        "A synthetic fixture with balances in four currencies. The account says Acct/Ccy "
        "EUR and we keep it; FACTS took the currency of the closing balance (SEK). The "
        "balance check flags the EUR opening vs SEK closing as balance_currency_mismatch.",
    ),
    "camt/genkgo-camt__camt052.v4.xml": (
        ["currency: FACTS say ['SEK'], we have ['CHF']"],
        "No Acct/Ccy: the only balance (ITBD, our closing) is in CHF, the only entry in SEK. "
        "We infer the account currency from the balance and flag it (currency_inferred, "
        "entry_currency_mismatch); FACTS did not use the single ITBD and took the entry's "
        "currency.",
    ),
    "camt/moov-iso20022__statement_1.xml": (
        ["opening: FACTS say [Decimal('2768.08')], we have [None]",
         "closing: FACTS say [Decimal('0')], we have [None]"],
        "The file has only available balances (OPAV/CLAV). FACTS used them for want of "
        "booked ones; our model keeps opening/closing for booked balances only and puts "
        "OPAV/CLAV in available_balances (checked below), so no balance check is claimed.",
    ),
}


def _parse(name: str) -> tuple[Statement, ...]:
    return parsers.parse((CORPUS / name).read_bytes(), source=name)


@pytest.mark.parametrize("name", corpus_files("camt"))
def test_corpus_file_matches_its_facts(name: str) -> None:
    statements = _parse(name)
    mismatches = fact_mismatches(name, statements)
    if name in KNOWN_GAPS:
        expected, why = KNOWN_GAPS[name]
        assert mismatches == expected, why
    else:
        assert mismatches == []


@pytest.mark.parametrize("name", corpus_files("camt"))
def test_corpus_file_is_detected_as_camt(name: str) -> None:
    assert parsers.detect((CORPUS / name).read_bytes(), source=name) is parsers.camt


def test_available_only_balances_are_kept_as_available() -> None:
    name = "camt/moov-iso20022__statement_1.xml"
    if not (CORPUS / name).exists():
        pytest.skip("the shared corpus is not here")
    (statement,) = _parse(name)
    assert [(b.kind, b.amount.amount) for b in statement.available_balances] == [
        (BalanceKind.OPENING_AVAILABLE, Decimal("2768.08")),
        (BalanceKind.CLOSING_AVAILABLE, Decimal("0")),
    ]


def test_corpus_quirks_are_flagged() -> None:
    """Repairs on real files are reported, not made silently."""
    cases = {
        # Bal without CdtDbtInd, Ntry without Sts (LT export).
        "camt/camt-to-coda__LT625883379695428516-CAMT_053-2024-03-14.xml":
            {"balance_sign_assumed", "entry_status_assumed"},
        # Balances of proprietary types (anonymised BIC-like codes) are left out.
        "camt/camt-to-coda__LT809872649478701594-CAMT_052-2024-03-14.xml":
            {"balance_type_unsupported"},
        # PRCD as opening; nanosecond time without offset.
        "camt/hbci4java__test-camt-parse-05200102.xml": {"opening_balance_substitute"},
        "camt/genkgo-camt__camt53.only-Dt-with-DtTm.xml": {"timezone_assumed"},
    }
    if not all((CORPUS / name).exists() for name in cases):
        pytest.skip("the shared corpus is not here")
    for name, codes in cases.items():
        found = {f.code for s in _parse(name) for f in s.flags}
        assert codes <= found, name


def test_corpus_reversal_and_batches() -> None:
    name = "camt/moov-iso20022__FI_camt_054_sample.xml.xml"
    if not (CORPUS / name).exists():
        pytest.skip("the shared corpus is not here")
    (statement,) = _parse(name)
    (reversal,) = [e for e in statement.entries if e.reversal]
    # CRDT with RvslInd: returned direct debits. The sign stays as written; the sample
    # names only the debtors, the payers of the returned payments, and they are the
    # counterparties (the creditor is the account holder itself).
    assert reversal.amount.amount == Decimal("100.00")
    assert [t.counterparty_name for t in reversal.transactions] == [
        "PAYERS NAME3", "PAYERS NAME4"]
    assert [t.creditor_reference for t in reversal.transactions] == ["2345678917",
                                                                     "1234567897"]
    # Every TxDtls of a batch is a transaction: 2+2+2+3+2+2 (none folded).
    assert [len(e.transactions) for e in statement.entries] == [2, 2, 2, 3, 2, 2]
