"""One name per format: a statement's ``format`` is its message type, never a family's name.

The import response once said ``camt`` (the parser module's name) where the statement said
``camt.053``; these tests keep the two apart.
"""

from __future__ import annotations

from types import ModuleType

import pytest

import parsers
from parsers.errors import UnknownFormatError
from parsers.model import FORMAT_NAMES, Account, Statement
from tests.paths import DATA


def test_the_families_name_every_format_once_and_no_family_is_a_format() -> None:
    names = [name for fmt in parsers.FORMATS for name in fmt.FORMAT_NAMES]
    assert sorted(names) == sorted(FORMAT_NAMES)
    assert "camt" not in FORMAT_NAMES


@pytest.mark.parametrize("fmt", parsers.FORMATS, ids=lambda fmt: fmt.FAMILY)
def test_every_statement_says_one_of_its_familys_format_names(fmt: ModuleType) -> None:
    seen = set()
    for path in sorted((DATA / fmt.FAMILY).iterdir()):
        if path.name.endswith(".json"):
            continue
        for statement in parsers.parse(path.read_bytes(), source=path.name):
            assert statement.format in fmt.FORMAT_NAMES, path.name
            seen.add(statement.format)
    assert seen == set(fmt.FORMAT_NAMES)  # the golden files show every one of them


@pytest.mark.parametrize("name", ["camt", "CAMT.053", "mt940 ", "swift", ""])
def test_a_statement_with_any_other_format_name_cannot_be_made(name: str) -> None:
    with pytest.raises(ValueError, match=r"Statement\.format must be one of mt940, mt942"):
        Statement(source="x", format=name, account=Account(), entries=())


def test_a_document_two_families_claim_is_refused_naming_their_formats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    camt = next(fmt for fmt in parsers.FORMATS if fmt.FAMILY == "camt")
    monkeypatch.setattr(camt, "sniff", lambda head: True)
    data = (DATA / "mt940" / "nl-ing-codes.sta").read_bytes()
    with pytest.raises(UnknownFormatError) as refused:
        parsers.detect(data, source="both.sta")
    assert "(mt940/mt942, camt.052/camt.053/camt.054)" in refused.value.message
