from __future__ import annotations

import pytest

from matching.normalize import is_valid_rf, name_tokens
from matching.references import HitKind, ReferenceIndex
from tests.matching.helpers import invoice

INVOICES = [
    invoice("INV-2026-000123", "10"), invoice("INV-2026-000124", "10"),
    invoice("RE12345", "10"), invoice("2026/0815", "10"),
    invoice("F-00042-A", "10"), invoice("X1", "10", reference="RF18539007547034"),
]
INDEX = ReferenceIndex(INVOICES)


def found(text: str) -> list[tuple[str, str]]:
    return [(h.invoice_id, h.kind.value)
            for h in INDEX.find(remittance=text, end_to_end_id=None, creditor_reference=None)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Invoice INV-2026-000123", [("INV-2026-000123", "exact")]),
    ("inv2026000123", [("INV-2026-000123", "exact")]),
    ("inv 2026 000123 thanks", [("INV-2026-000123", "exact")]),
    ("payment 2026000123", [("INV-2026-000123", "reformatted")]),
    ("RE 12345", [("RE12345", "exact")]),
    ("Rechnung Nr. 2026/0815", [("2026/0815", "exact")]),
    ("f 00042 a", [("F-00042-A", "exact")]),
    ("INV-2026-000132", [("INV-2026-000123", "typo")]),      # two digits swapped
    ("INV-2026-000193", [("INV-2026-000123", "typo")]),      # one digit wrong
    ("RF18 5390 0754 7034", [("X1", "rf")]),
    ("salary october", []),
    ("INV-2026-000999", []),                                 # no such invoice
])
def test_references_are_found_the_way_customers_type_them(
        text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_several_references_in_one_line() -> None:
    hits = found("INV-2026-000123 + INV-2026-000124")
    assert sorted(hits) == [("INV-2026-000123", "exact"), ("INV-2026-000124", "exact")]


def test_a_typo_is_not_guessed_when_two_invoices_are_one_typo_away() -> None:
    index = ReferenceIndex([invoice("A-55555", "1"), invoice("A-55565", "1")])
    hits = index.find(remittance="A-55575", end_to_end_id=None, creditor_reference=None)
    assert hits == []


def test_end_to_end_id_and_structured_reference_are_read_too() -> None:
    hits = INDEX.find(remittance=None, end_to_end_id="E2E-INV2026000124",
                      creditor_reference="RF18539007547034")
    assert {(h.invoice_id, h.kind, h.source) for h in hits} == {
        ("INV-2026-000124", HitKind.EXACT, "end_to_end_id"),
        ("X1", HitKind.RF, "creditor_reference")}


def test_rf_checksum_and_name_normal_form() -> None:
    assert is_valid_rf("RF18 5390 0754 7034") and not is_valid_rf("RF19539007547034")
    assert name_tokens("MUELLER HANS GMBH") == name_tokens("Hans Müller GmbH") \
        == ("hans", "muller")
    assert name_tokens("SEPA CT FROM ACME B.V.") == ("acme",)
