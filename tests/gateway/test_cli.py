from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.paths import DEMO_STATEMENTS

DATA = Path(__file__).resolve().parents[1] / "data"


def samples() -> list[Path]:
    """One golden sample of each format."""
    found = []
    for folder in ("mt940", "camt", "ofx"):
        files = sorted(p for p in (DATA / folder).glob("*") if not p.name.endswith(".json"))
        found.append(files[0])
    return found


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_jsonl_has_the_documented_fields_for_every_format() -> None:
    code, out, err = run("parse", *map(str, samples()))
    assert (code, err) == (0, "")
    objects = [json.loads(line) for line in out.splitlines()]
    assert {o["format"].split(".")[0] for o in objects} >= {"mt940", "camt", "ofx"}
    for obj in objects:
        assert set(obj) >= {"source", "format", "account", "opening_balance", "closing_balance",
                            "entries", "flags"}
        assert set(obj["account"]) >= {"iban", "number", "bic", "currency"}
        for balance in (obj["opening_balance"], obj["closing_balance"]):
            assert balance is None or set(balance) >= {"amount", "currency", "date"}
        for entry in obj["entries"]:
            assert set(entry) >= {
                "bank_reference", "booking_date", "value_date", "amount", "currency", "status",
                "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
                "creditor_reference"}
            assert isinstance(entry["amount"], str)


def test_csv_has_one_header_and_a_row_per_entry() -> None:
    code, out, _ = run("parse", "--format", "csv", *map(str, samples()))
    rows = list(csv.DictReader(io.StringIO(out)))
    _, jsonl, _ = run("parse", *map(str, samples()))
    entries = sum(len(json.loads(line)["entries"]) for line in jsonl.splitlines())
    assert code == 0
    assert len(rows) == entries > 0
    assert out.count("source,format,") == 1


def test_table_shows_every_statement() -> None:
    code, out, _ = run("parse", "--format", "table", *map(str, samples()))
    assert code == 0
    for sample in samples():
        assert str(sample) in out


def test_a_folder_with_bad_files_prints_the_good_and_lists_the_bad(tmp_path: Path) -> None:
    for sample in samples():
        shutil.copy(sample, tmp_path / sample.name)
    (tmp_path / "notes.txt").write_text("not a statement\n")
    (tmp_path / "cut.sta").write_bytes(samples()[0].read_bytes()[:40])
    (tmp_path / ".hidden").write_text("ignored\n")
    # The real command, as a user runs it.
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "parse", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) >= 3
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert any("notes.txt" in line and "not a recognised" in line for line in errors)
    assert any("cut.sta" in line for line in errors)
    assert "2 of 5 input(s) failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_path_is_reported_and_fails() -> None:
    code, _, err = run("parse", "no/such/file.sta")
    assert code == 1
    assert "no/such/file.sta: no such file or folder" in err


def test_strict_turns_a_balance_mismatch_into_an_error(tmp_path: Path) -> None:
    statement = tmp_path / "off.sta"
    statement.write_bytes(
        b":20:STMT1\r\n:25:NL91ABNA0417164300\r\n:28C:1/1\r\n"
        b":60F:C260105EUR100,00\r\n"
        b":61:2601050105C10,00NTRFNONREF//B1\r\n:86:/REMI/INV 1\r\n"
        b":62F:C260105EUR111,00\r\n-\r\n"
    )
    code, out, err = run("parse", str(statement))
    assert code == 0
    assert json.loads(out)["flags"][0]["code"] == "balance_mismatch"
    code, out, err = run("parse", "--strict", str(statement))
    assert (code, out) == (1, "")
    assert "off.sta" in err and "difference 1.00" in err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["parse"])
    assert caught.value.code == 2


def test_the_demo_statements_parse_cleanly() -> None:
    code, out, err = run("parse", str(DEMO_STATEMENTS))
    assert (code, err) == (0, "")
    statements = [json.loads(line) for line in out.splitlines()]
    assert sorted(s["format"] for s in statements) == ["camt.053", "mt940", "ofx"]
    assert all(s["flags"] == [] for s in statements), [s["flags"] for s in statements]
    assert [len(s["entries"]) for s in statements] == [3, 3, 3]
