"""What the ``:86:`` layout tests share: reading one text as a statement line would, the
three fields a layout fills, the non-blank characters of a text, and a corpus file's lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import parsers
from parsers import mt940_details
from parsers.errors import ParseError
from parsers.model import Account, Entry
from tests.corpus import CORPUS

DATA = Path(__file__).resolve().parents[1] / "data" / "mt940"


def details(*lines: str, account: Account | None = None) -> mt940_details.Details:
    result = mt940_details.Details()
    mt940_details.read_details(list(lines), "EUR", result, account)
    return result


def fields(got: mt940_details.Details) -> tuple[str | None, str | None, str | None]:
    return got.counterparty_name, got.counterparty_account, got.remittance


def non_blank(text: str) -> Counter[str]:
    return Counter(c for c in text if not c.isspace())


def corpus_entries(name: str) -> list[Entry]:
    """The lines of a corpus file, statement by statement: a cut-off last statement (a known
    gap) does not hide the others. Skipped where the corpus is not."""
    path = CORPUS / "mt940" / name
    if not path.exists():
        pytest.skip("the corpus is not here")
    return [e for s in parsers.parse_each(path.read_bytes(), source=name)
            if not isinstance(s, ParseError) for e in s.entries]
