from __future__ import annotations

from matching.invoices import Customer
from matching.payers import PayerIndex

INDEX = PayerIndex([
    Customer("C1", "Müller & Söhne GmbH", ("DE89370400440532013000",)),
    Customer("C2", "International Business Machines Corporation", aliases=("IBM",)),
    Customer("C3", "Jane Doe"),
    Customer("C4", "Müller Logistik AG"),
])


def best(name: str | None, iban: str | None = None) -> tuple[str, str] | None:
    found = INDEX.match(name=name, iban=iban)
    return (found[0].customer_id, found[0].how) if found else None


def test_a_known_iban_identifies_the_customer_whatever_the_name() -> None:
    assert best("SOMEONE ELSE", "DE89 3704 0044 0532 0130 00") == ("C1", "iban")


def test_names_as_banks_show_them() -> None:
    assert best("MUELLER UND SOEHNE") == ("C1", "name")
    assert best("DOE JANE") == ("C3", "name")
    assert best("INTERNATIONAL BUSINESS MACHI") == ("C2", "name")   # cut at 28 characters
    assert best("IBM") == ("C2", "alias")
    assert best("Salary Payroll Services") is None


def test_similar_names_are_scored_apart() -> None:
    found = INDEX.match(name="Mueller Logistik", iban=None)
    assert found[0].customer_id == "C4"
    assert all(m.score < found[0].score for m in found[1:])
