"""Every MT940 file of the shared corpus, through the whole pipeline (detection, parse, checks).

A file either parses and matches its FACTS.tsv row, or is listed in ``KNOWN_GAPS`` with why,
and its check there proves it still behaves exactly that way: a ``ParseError`` at the line
named, or, where FACTS themselves are wrong (the reference library misread the file), a
comparison with the raw text instead. Besides FACTS, every parsed file's entry count is
compared with the raw truth: the lines that start ``:61:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest

import parsers
from parsers.errors import ParseError
from parsers.iban import normalize_iban
from parsers.model import Statement
from tests.corpus import CORPUS, corpus_files, fact_mismatches, facts


def _raw(data: bytes) -> str:
    return data.decode("latin-1").replace("\x1a", "\n").replace("\x01", "").replace("\x03", "")


def _raw_lines(data: bytes, tag: str) -> list[str]:
    """The raw lines starting with ``:tag:``, as text after the tag."""
    return [line[len(tag) + 2:].strip() for line in re.split(r"\r\n|\r|\n", _raw(data))
            if line.startswith(f":{tag}:")]


def _raw_balance(value: str) -> Decimal:
    sign = -1 if value[0] == "D" else 1
    return sign * Decimal(value[10:].replace(",", "."))


def _refused(message: str, line: int) -> Callable[[str, bytes], None]:
    def check(name: str, data: bytes) -> None:
        with pytest.raises(ParseError) as caught:
            parsers.parse(data, source=name)
        assert (caught.value.source, caught.value.line) == (name, line)
        assert message in caught.value.message

    return check


def _decimal_points(name: str, data: bytes) -> None:
    """FACTS read '000000000482.41' as 482 and merged 39 :61: lines into 10: compare raw."""
    statements = parsers.parse(data, source=name)
    assert len(statements) == len(_raw_lines(data, "20")) == 39
    assert sum(len(s.entries) for s in statements) == len(_raw_lines(data, "61")) == 39
    assert [_balance(s, "opening") for s in statements] == [
        _raw_balance(v) for v in _raw_lines(data, "60F")]
    assert [_balance(s, "closing") for s in statements] == [
        _raw_balance(v) for v in _raw_lines(data, "62F")]
    assert _balance(statements[13], "closing") == Decimal("165282.41")  # FACTS: 165282
    assert all("decimal_point" in [f.code for f in s.flags] for s in statements)


def _reversal_signs(name: str, data: bytes) -> None:
    """FACTS count RC (reversal of a credit) as a credit, mt-940's default; it is a debit.

    With RC negative every statement adds up, where FACTS note two that do not.
    """
    statements = parsers.parse(data, source=name)
    reversals = [re.match(r"\d{10}RC[A-Z]?(\d+,\d*)", line) for line in _raw_lines(data, "61")]
    rc = sum((Decimal(m.group(1).replace(",", ".")) for m in reversals if m), Decimal(0))
    assert rc == Decimal("409.76")
    assert fact_mismatches(name, statements) == [
        f"sum_credit: FACTS say 5188884.70, we have {Decimal('5188884.70') - rc}",
        f"sum_debit: FACTS say 14457201.08, we have {Decimal('14457201.08') + rc}",
    ]
    assert not [f for s in statements for f in s.flags if f.code == "balance_mismatch"]


def _ctrl_z_inside(name: str, data: bytes) -> None:
    """FACTS cut at lines starting ':20:' and miss the 4th statement, which follows a Ctrl-Z."""
    statements = parsers.parse(data, source=name)
    assert data.count(b"\x1a:20:") == 1
    assert len(statements) == len(_raw_lines(data, "20")) == 4
    assert [_balance(s, "opening") for s in statements] == [
        Decimal("9265.12"), Decimal("352.84"), Decimal("5000.00"), Decimal("-12.00")]
    assert [s.account.number for s in statements] == [
        "1567.50.961", "9914.30.727", "3462.483.153", "1325.76.155"]


def _currency_change(name: str, data: bytes) -> None:
    """:60F: is in RON, :62F: and :64: in EUR. FACTS take EUR; we take :60x: and flag it."""
    (statement,) = parsers.parse(data, source=name)
    assert fact_mismatches(name, (statement,)) == [
        "currency: FACTS say ['EUR'], we have ['RON']"]
    assert "balance_currency_mismatch" in [f.code for f in statement.flags]


def _balance(statement: Statement, which: str) -> Decimal | None:
    balance = statement.opening_balance if which == "opening" else statement.closing_balance
    return balance.amount.amount if balance else None


# file -> (why, the check that proves the file still behaves that way)
KNOWN_GAPS: dict[str, tuple[str, Callable[[str, bytes], None]]] = {
    "mt940/jejik-mt940__K4262927_20200905-080000-952.txt": (
        "':65F:Dnullnull7414,3' is no balance (no date, no currency) and the statement has "
        "no closing balance :62F: at all: a damaged export, refused at the garbage line",
        _refused("expected a balance: D/C mark, date YYMMDD, currency and amount", 10),
    ),
    "mt940/oca-bsi__test-ing.940": (
        "hard-wrapped at arbitrary columns: ':28C:0000' + '0' is joined (flagged), but the "
        ":61: at line 9 runs over 3 lines ('//00000000001' + '005' + '/TRCD/00100/'), so "
        "where its bank reference ends cannot be known; refused rather than guessed",
        _refused(":61: runs over 3 lines", 9),
    ),
    "mt940/oca-bsi__test-sns.940": (
        "its third message has entries but no closing balance :62F: before '-}': a cut-off "
        "statement, not a short one. FACTS keep it with closing n/a",
        _refused("the statement ends without a closing balance", 77),
    ),
    "mt940/php-mt940__Rabo-sample": (
        "FACTS wrong: '.' decimal separators, which mt-940 silently truncates (482.41 -> 482) "
        "and whose :61: lines it merges (10 of 39 entries); compared with the raw lines",
        _decimal_points,
    ),
    "mt940/wolph-mt940__sepa_mt9401.sta": (
        "FACTS wrong: they count the two RC entries (reversal of a credit, 204.88 each) as "
        "credits; RC takes money out. Sums differ by exactly 409.76 and all statements add up",
        _reversal_signs,
    ),
    "mt940/zilverline-mt940__two_accounts.txt": (
        "FACTS wrong: a Ctrl-Z right before the last ':20:' hid it from their split at lines "
        "starting ':20:', so they have 3 statements (the 3rd overwritten by the 4th); there "
        "are 4",
        _ctrl_z_inside,
    ),
    "mt940/oca-l10n-ro__test_brd_940.txt": (
        "the file changes currency between :60F: (RON) and :62F: (EUR); FACTS take EUR, we "
        "take the :60x: currency, as for every MT940, and the balance check flags the change",
        _currency_change,
    ),
}


@pytest.mark.parametrize("name", corpus_files("mt940"))
def test_corpus_file_matches_its_facts(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    if name in KNOWN_GAPS:
        _why, check = KNOWN_GAPS[name]
        check(name, data)
        return
    statements = parsers.parse(data, source=name)
    assert fact_mismatches(name, statements) == []
    assert sum(len(s.entries) for s in statements) == len(_raw_lines(data, "61"))
    assert all(s.format == "mt940" for s in statements)
    if facts()[name]["ref_status"] == "failed":
        # FACTS have no numbers: the raw line count above, and the balances, are the truth.
        assert not [f for s in statements for f in s.flags if f.code == "balance_mismatch"]


def test_known_gaps_are_corpus_files() -> None:
    if not (CORPUS / "FACTS.tsv").exists():
        pytest.skip("the shared corpus is not here")
    assert set(KNOWN_GAPS) <= set(facts())


def _anonymised_accounts(name: str, data: bytes) -> None:
    """FACTS checked against the raw lines; no account's check digits hold; texts kept whole."""
    statements = parsers.parse(data, source=name)
    row, lines = facts()[name], _raw_lines(data, "61")
    amounts = [re.match(r"\d{10}([CD])(\d+,\d*)", line) for line in lines]
    assert all(amounts) and len(lines) == int(row["entries"]) == 8
    for mark, column in (("C", "sum_credit"), ("D", "sum_debit")):
        assert sum((Decimal(m.group(2).replace(",", ".")) for m in amounts
                    if m and m.group(1) == mark), Decimal(0)) == Decimal(row[column])
    assert len(_raw_lines(data, "20")) == int(row["statements"]) == len(statements) == 31
    for tag, column in (("60F", "opening"), ("62F", "closing")):
        assert [_raw_balance(v) for v in _raw_lines(data, tag)] == [
            Decimal(v) for v in row[column].split(";")]
    assert all(s.account.iban is None and [f.code for f in s.flags] == ["account_not_iban"]
               for s in statements)
    texts = re.findall(r"^:86:(.*?)(?=^:\d\d[A-Z]?:|^-\})", _raw(data), re.MULTILINE | re.DOTALL)
    entries = [e for s in statements for e in s.entries]
    assert len(texts) == len(entries)
    for entry, text in zip(entries, texts, strict=True):
        first = text.split()[0]
        assert first == "Kosten" or normalize_iban(first) is None  # NL47INGB9999999999
        assert entry.counterparty_account is None and entry.counterparty_name is None
        assert entry.additional_info is not None
        assert all(line.strip() in entry.additional_info for line in text.splitlines())


# Files whose :86: bank layout is there but deliberately not read, with why, and the check
# that proves it (their FACTS are checked as for any file, above).
LAYOUT_GAPS: dict[str, tuple[str, Callable[[str, bytes], None]]] = {
    "mt940/wolph-mt940__ASNB-mt940.txt": (
        "ASN's layout (the counterparty's IBAN and name, then the remittance), but the file "
        "was anonymised: every account, the statement's own too, is NL..9999999999 and no "
        "check digits hold, so no counterparty is taken from :61: or :86: (only valid IBANs "
        "are) and every text stays whole in additional_info. FACTS are right: 31 statements, "
        "8 entries, sums and balances agree with the raw lines",
        _anonymised_accounts,
    ),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_GAPS))
def test_corpus_layout_gaps(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("the shared corpus is not here")
    _why, check = LAYOUT_GAPS[name]
    check(name, path.read_bytes())


# Files whose SWIFT application header ({2:...}) names no bank: read, with a flag.
ANONYMISED_HEADERS = {
    "mt940/jejik-mt940__postfinance.txt",  # {2:I940XXXXXXXXXXXXN}
    "mt940/jejik-mt940__sns.txt",  # {2:O94000000000...N}
    "mt940/oca-l10n-ro__test_alpha_940.txt",  # {2:I940            U3003}
}


@pytest.mark.parametrize("name", corpus_files("mt940"))
def test_corpus_envelope_headers(name: str) -> None:
    if name in KNOWN_GAPS and name != "mt940/oca-l10n-ro__test_brd_940.txt":
        pytest.skip("checked in KNOWN_GAPS")
    statements = parsers.parse((CORPUS / name).read_bytes(), source=name)
    flagged = [any(f.code == "envelope_header_anonymised" for f in s.flags) for s in statements]
    assert all(flagged) if name in ANONYMISED_HEADERS else not any(flagged)
