"""The shared corpus of real bank files (../shared/corpus), read in place, never copied.

``corpus_files(kind)`` lists the files of one folder (``mt940``, ``camt``, ``ofx``) as
pytest params; ``fact_mismatches`` compares parsed statements with FACTS.tsv and returns
what differs, so a test can show every difference at once.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from parsers.model import Statement

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SKIP_REASON = f"the shared corpus is not here ({CORPUS.parent.name}/corpus next to the project)"


@cache
def facts() -> dict[str, dict[str, str]]:
    with (CORPUS / "FACTS.tsv").open(newline="", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def corpus_files(kind: str) -> list[object]:
    """Pytest params for every corpus file of ``kind``; one skipped param without a corpus."""
    if not (CORPUS / "FACTS.tsv").exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    return [pytest.param(name, id=name.split("/", 1)[1]) for name in sorted(facts())
            if name.startswith(f"{kind}/")]


def _decimals(text: str) -> list[Decimal | None]:
    return [Decimal(v) if v not in ("", "n/a") else None for v in text.split(";")]


def fact_mismatches(name: str, statements: tuple[Statement, ...]) -> list[str]:
    """Differences between ``statements`` and the FACTS.tsv row of corpus file ``name``."""
    row = facts()[name]
    problems = []
    entries = [e for s in statements for e in s.entries]

    def expect(what: str, want: object, got: object) -> None:
        if want != got:
            problems.append(f"{what}: FACTS say {want}, we have {got}")

    if row["statements"]:
        expect("statements", int(row["statements"]), len(statements))
    if row["entries"]:
        expect("entries", int(row["entries"]), len(entries))
    if row["sum_credit"] not in ("", "n/a"):
        credit = sum((e.amount.amount for e in entries if e.amount.amount > 0), Decimal(0))
        expect("sum_credit", Decimal(row["sum_credit"]), credit)
    if row["sum_debit"] not in ("", "n/a"):
        debit = -sum((e.amount.amount for e in entries if e.amount.amount < 0), Decimal(0))
        expect("sum_debit", Decimal(row["sum_debit"]), debit)
    for column, attr in (("opening", "opening_balance"), ("closing", "closing_balance")):
        if row[column] in ("", "n/a"):
            continue
        want = _decimals(row[column])
        got = [getattr(s, attr).amount.amount if getattr(s, attr) else None for s in statements]
        expect(column, want, got)
    if row["currency"] not in ("", "n/a"):
        expect("currency", row["currency"].split(";"), [s.currency or "" for s in statements])
    return problems
