"""The matching benchmark's generator: deterministic, every case present, truth consistent.

The checks read only the files the generator writes (statement through our camt parser),
with their own arithmetic, so a generator bug cannot hide behind its own helpers.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

import parsers
from matching.invoices import read_invoices_csv
from parsers.model import Entry
from parsers.money import minor_units

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the bench scripts import each other from their folder
import matching_gen  # noqa: E402

SIZE = 400
FILES = ("invoices.csv", "customers.json", "rates.csv", "statement.xml", "truth.csv",
         "cases.json")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("matching") / "s3"
    matching_gen.generate(folder, seed=3, invoices=SIZE)
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def entries(folder: Path) -> list[Entry]:
    statements = parsers.parse_path(folder / "statement.xml", strict=True)  # balances add up
    return [e for s in statements for e in s.entries]


def test_the_same_seed_writes_the_same_bytes(run: Path, tmp_path: Path) -> None:
    matching_gen.generate(tmp_path / "again", seed=3, invoices=SIZE)
    matching_gen.generate(tmp_path / "other", seed=4, invoices=SIZE)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (run / name).read_bytes(), name
    assert (tmp_path / "other" / "truth.csv").read_bytes() != (run / "truth.csv").read_bytes()


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_every_case_type_is_present(seed: int, tmp_path: Path) -> None:
    counts = matching_gen.generate(tmp_path, seed=seed, invoices=SIZE)
    assert set(counts) == set(matching_gen.CASES)
    assert [c for c, n in counts.items() if n == 0] == []
    assert sum(counts.values()) >= SIZE // 2


def test_every_entry_has_one_case_and_a_truth(run: Path) -> None:
    refs = [e.bank_reference for e in entries(run)]
    cases = json.loads((run / "cases.json").read_text(encoding="utf-8"))
    truth = read_csv(run / "truth.csv")
    assert all(refs) and len(refs) == len(set(refs))
    assert set(refs) == set(cases) == {row["bank_reference"] for row in truth}
    assert set(cases.values()) == set(matching_gen.CASES)
    for row in truth:
        assert row["case"] == cases[row["bank_reference"]]


def test_payments_that_settle_nothing_have_one_empty_row(run: Path) -> None:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in read_csv(run / "truth.csv"):
        rows[row["bank_reference"]].append(row)
    for ref, found in rows.items():
        case = found[0]["case"]
        if case in matching_gen.SETTLES_NOTHING:
            assert [(r["invoice_id"], r["amount"]) for r in found] == [("", "")], ref
        else:
            assert all(r["invoice_id"] and Decimal(r["amount"]) > 0 for r in found), ref
        if case == "multi_invoice":
            assert 2 <= len(found) <= 4
        elif case not in matching_gen.SETTLES_NOTHING:
            assert len(found) == 1, ref
    outgoing = [e for e in entries(run) if rows[e.bank_reference or ""][0]["case"] == "outgoing"]
    assert outgoing and all(e.amount.amount < 0 for e in outgoing)


def test_true_allocations_never_exceed_open_amounts_or_payments(run: Path) -> None:
    invoices, errors = read_invoices_csv((run / "invoices.csv").read_text(encoding="utf-8"))
    assert errors == []
    by_id = {i.invoice_id: i for i in invoices}
    rates = {(r["date"], r["to_currency"]): Decimal(r["rate"])
             for r in read_csv(run / "rates.csv") if r["from_currency"] == "EUR"}
    by_entry = {e.bank_reference: e for e in entries(run)}
    per_invoice: dict[str, Decimal] = defaultdict(Decimal)
    per_payment: dict[str, Decimal] = defaultdict(Decimal)
    customers: dict[str, set[str]] = defaultdict(set)
    for row in read_csv(run / "truth.csv"):
        if not row["invoice_id"]:
            continue
        invoice = by_id[row["invoice_id"]]
        amount = Decimal(row["amount"])
        assert row["currency"] == invoice.currency
        assert amount == amount.quantize(invoice.open_amount.amount)  # the currency's places
        per_invoice[row["invoice_id"]] += amount
        entry = by_entry[row["bank_reference"]]
        assert entry.amount.amount > 0 and entry.booking_date is not None
        assert entry.booking_date > invoice.issue_date
        fx = entry.fx
        if fx is not None and fx.instructed_amount is not None:
            assert fx.instructed_amount.currency == invoice.currency
            worth = fx.instructed_amount.amount
        else:
            worth = entry.amount.amount  # charges reported or not, only what arrived
            if invoice.currency != "EUR":
                worth *= rates[(entry.booking_date.isoformat(), invoice.currency)]
        per_payment[row["bank_reference"]] += amount
        half_unit = Decimal("0.5").scaleb(-minor_units(invoice.currency))  # rounding
        assert per_payment[row["bank_reference"]] <= worth + half_unit, row
        customers[row["bank_reference"]].add(invoice.customer_id)
    for invoice_id, total in per_invoice.items():
        assert total <= by_id[invoice_id].open_amount.amount, invoice_id
    assert all(len(c) == 1 for c in customers.values())  # one customer per payment
    assert all(e.currency == "EUR" for e in by_entry.values())


def test_receivables_look_like_a_real_crm(run: Path) -> None:
    invoices = read_csv(run / "invoices.csv")
    shapes = {re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", i["invoice_id"])) for i in invoices}
    assert len(shapes) >= 3  # several numbering schemes
    currencies = {i["currency"] for i in invoices}
    assert {"EUR", "USD"} <= currencies and len(currencies) >= 4
    opens = [(Decimal(i["open_amount"]), Decimal(i["amount"])) for i in invoices]
    assert any(o == 0 for o, _ in opens) and any(0 < o < a for o, a in opens)
    references = [i["reference"] for i in invoices if i["reference"]]
    assert references
    for ref in references:  # ISO 11649: RF, two check digits, mod 97 of the rearranged = 1
        assert re.fullmatch(r"RF\d{2}[0-9A-Z]{1,21}", ref)
        assert int("".join(str(int(c, 36)) for c in ref[4:] + ref[:4])) % 97 == 1


def test_bank_data_is_in_the_sepa_character_set(run: Path) -> None:
    seen = entries(run)
    texts = [t for e in seen for t in (e.counterparty_name, e.remittance) if t]
    assert texts and all(t.isascii() for t in texts)
    assert any(e.fx is not None for e in seen) and any(e.charges for e in seen)
    assert any(e.creditor_reference for e in seen)
    names = {e.counterparty_name for e in seen if e.counterparty_name}
    assert all(len(n) <= 140 for n in names) and any(n.isupper() for n in names)


def test_payments_without_reference_settle_the_oldest_of_equal_invoices_first(run: Path) -> None:
    invoices = {i["invoice_id"]: i for i in read_csv(run / "invoices.csv")}
    booked = {e.bank_reference: e.booking_date for e in entries(run)}
    groups: dict[tuple[str, str], list[tuple[object, str]]] = defaultdict(list)
    for row in read_csv(run / "truth.csv"):
        if row["case"] in ("no_reference", "trap_same_amount"):
            invoice = invoices[row["invoice_id"]]
            groups[(invoice["customer_id"], row["amount"])].append(
                (booked[row["bank_reference"]], invoice["due_date"]))
    assert any(len(group) > 1 for group in groups.values())
    for group in groups.values():
        dues = [due for _, due in sorted(group, key=lambda g: str(g[0]))]
        assert dues == sorted(dues)
