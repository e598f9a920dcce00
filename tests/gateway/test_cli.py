from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import textwidth
from gateway.cli import main
from gateway.output import csv_rows, table
from gateway.progress import INTERVAL, Progress
from parsers.model import Account, Entry, Statement
from parsers.money import Money
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
    assert {s["format"] for s in statements} == {"camt.053", "mt940", "ofx"}
    assert len(statements) == len(list(DEMO_STATEMENTS.iterdir()))
    assert all(s["flags"] == [] for s in statements), [s["flags"] for s in statements]
    assert all(s["entries"] for s in statements)


class Terminal(io.StringIO):
    """Standard error as a terminal would be: the is-a-terminal decision, injected."""

    def isatty(self) -> bool:
        return True


def big_mt940(entries: int) -> bytes:
    """One MT940 statement of ``entries`` credits of 1.00 EUR that add up."""
    lines = [b":20:BIG", b":25:NL91ABNA0417164300", b":28C:1/1", b":60F:C260105EUR0,00"]
    for n in range(entries):
        lines += [b":61:2601050105C1,00NTRFNONREF//B%d" % n, b":86:/REMI/INV %d" % n]
    lines += [b":62F:C260105EUR%d,00" % entries, b"-", b""]
    return b"\r\n".join(lines)


def test_table_has_headers_and_dates() -> None:
    code, out, _ = run("parse", "--format", "table", str(DATA / "mt940" / "de-sparkasse-gvc.sta"))
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "booking date" in line)
    assert header.split() == ["booking", "date", "value", "date", "amount", "currency",
                              "status", "counterparty", "bank", "reference", "description"]
    first = lines[lines.index(header) + 1]
    assert first.split()[:4] == ["2026-11-27", "2026-11-27", "250.00", "EUR"]
    assert "\n    10 " not in out  # a date formatted with the spec ":10" is strftime("10")


def test_table_columns_stay_aligned_with_chinese_names() -> None:
    entries = tuple(
        Entry(Money(Decimal(amount), "CNY"), date(2026, 11, 20), counterparty_name=name,
              bank_reference=f"R{n}", remittance=f"发票 INV-{n}")
        for n, (name, amount) in enumerate([("上海贸易有限公司", "100.00"), ("ACME Ltd", "5.5"),
                                             ("北京", "-12345.67")]))
    statement = Statement("中文.sta", "mt940", Account(iban="CN00TEST", currency="CNY"),
                          entries)
    lines = table(statement).splitlines()
    rows = lines[lines.index(next(x for x in lines if "booking date" in x)):][:4]
    # The reference column starts at the same display column on every row.
    starts = {textwidth.width(row[:row.index(ref)])
              for row, ref in zip(rows, ["bank reference", "R0", "R1", "R2"], strict=True)}
    assert len(starts) == 1
    amounts_end = {textwidth.width(row[:row.index(a) + len(a)])
                   for row, a in zip(rows[1:], ["100.00", "5.5", "-12345.67"], strict=True)}
    assert len(amounts_end) == 1  # amounts aligned right


CJK = st.text(st.sampled_from("ab 中文字符ｱｲ\u0301\u200b\t\x1béñ"), max_size=12)


@settings(max_examples=200, derandomize=True, database=None)
@given(st.lists(st.tuples(CJK, CJK, st.text(st.sampled_from("x中"), min_size=1, max_size=5)),
                min_size=1, max_size=6), st.integers(2, 12))
def test_aligned_columns_start_at_one_display_column_whatever_the_text(
        rows: list[tuple[str, str, str]], cap: int) -> None:
    """Never out of line: the last column starts at the same display column on every
    line, however wide (or invisible) the characters before it, and a capped cell never
    passes its cap."""
    lines = textwidth.aligned(("a", "b", "last"), rows, caps={1: cap})
    starts = {textwidth.width(line[:-len(last)])
              for line, last in zip(lines, ["last", *(r[2] for r in rows)], strict=True)}
    assert len(starts) == 1
    assert all("\x1b" not in line and "\t" not in line for line in lines)
    assert all(textwidth.width(textwidth.clip(textwidth.printable(r[1]), cap)) <= cap
               for r in rows)


def test_csv_keeps_every_text_of_a_line() -> None:
    """Unstructured MT940 :86: text (additional_info) and every other field reach the CSV."""
    files = [*samples(), DATA / "mt940" / "nl-abn-negative-yearend.sta",
             DATA / "camt" / "camt053_v02.xml"]
    _, out, _ = run("parse", "--format", "csv", *map(str, files))
    rows = list(csv.DictReader(io.StringIO(out)))
    _, jsonl, _ = run("parse", *map(str, files))
    entries = [e for line in jsonl.splitlines() for e in json.loads(line)["entries"]]
    assert len(rows) == len(entries)
    assert any("TERUGBOEKING" in r["additional_info"] for r in rows)  # a storno: no layout

    def texts(value: object) -> list[str]:
        if isinstance(value, dict):
            return [t for v in value.values() for t in texts(v)]
        if isinstance(value, list):
            return [t for v in value for t in texts(v)]
        return [value] if isinstance(value, str) and value else []

    for row, entry in zip(rows, entries, strict=True):
        cells = "\x00".join(row.values())
        lost = [t for t in texts(entry) if t not in cells and json.dumps(t)[1:-1] not in cells]
        assert lost == [], (entry["id"], lost)


def test_csv_cells_never_run_as_formulas(tmp_path: Path) -> None:
    statement = tmp_path / "formula.sta"
    statement.write_bytes(
        b":20:=1+1\r\n:25:NL91ABNA0417164300\r\n:28C:1/1\r\n:60F:C260105EUR0,00\r\n"
        b":61:2601050105C10,00NTRF+REF//B1\r\n:86:-2+3 =HYPERLINK(\"http://x\")\r\n"
        b":62F:C260105EUR10,00\r\n-\r\n")
    code, out, err = run("parse", "--format", "csv", str(statement))
    assert code == 0, err
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["statement_id"] == "'=1+1"
    assert row["additional_info"].startswith("'-2+3")
    assert row["customer_reference"] == "'+REF"
    starts = ("=", "+", "-", "@")
    assert not any(cell.startswith(starts) for cell in row.values() if cell != row["amount"])


def test_version_is_the_installed_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"recon-gateway {metadata.version('recon-gateway')}\n"


def test_no_command_prints_the_help() -> None:
    code, out, _ = run()
    assert code == 2
    assert out.startswith("usage: recon-gateway") and "parse" in out and "keys" in out
    code, out, _ = run("keys")
    assert code == 2
    assert "create" in out and "list" in out and "revoke" in out


@pytest.mark.parametrize(("argv", "folder"), [
    (["demo"], "./recon-demo"), (["serve"], "./recon-data"), (["import"], "./recon-data"),
    (["keys", "create"], "./recon-data"), (["keys", "list"], "./recon-data"),
    (["invoices", "import"], "./recon-data"), (["dispatch"], "./recon-data")])
def test_help_names_the_command_s_own_data_folder(capsys: pytest.CaptureFixture[str],
                                                  argv: list[str], folder: str) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {folder};" in help_text
    other = {"./recon-demo", "./recon-data"} - {folder}
    assert f"(default {other.pop()};" not in help_text


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-hidden").mkdir()
    (tmp_path / "only-hidden" / ".swp").write_text("x")
    for folder in ("empty", "only-hidden"):
        code, out, err = run("parse", str(tmp_path / folder))
        assert (code, out) == (1, "")
        assert f"{folder}: no files in this folder" in err


def test_output_to_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    statement = tmp_path / "big.sta"
    statement.write_bytes(big_mt940(3000))  # about 1 MB of CSV: far more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "parse", "--format", "csv", str(statement)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"source,format,")
    process.stdout.close()  # as `| head -1` does
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err.decode()) == (141, "")


def test_parse_shows_progress_only_on_a_terminal(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"s{n}.sta").write_bytes(big_mt940(2))
    terminal = Terminal()
    assert main(["parse", str(tmp_path)], out=io.StringIO(), err=terminal) == 0
    shown = terminal.getvalue()
    assert "\rparse: 0 of 3 files done" in shown
    assert shown.endswith("\r")  # the line wiped at the end
    plain = io.StringIO()
    assert main(["parse", str(tmp_path)], out=io.StringIO(), err=plain) == 0
    assert plain.getvalue() == ""


def test_progress_redraws_at_most_every_interval() -> None:
    now = [0.0]
    terminal = Terminal()
    with Progress(terminal, enabled=True, clock=lambda: now[0], ticker=False) as progress:
        progress.update("one")
        progress.update("two")  # too soon: not drawn
        assert terminal.getvalue() == "\rone"
        now[0] = INTERVAL
        progress.update("three")
        assert terminal.getvalue() == "\rone\rthree"
        progress.note("error: something")
        assert terminal.getvalue().endswith("\r     \rerror: something\n")
        now[0] = 3 * INTERVAL + 2
        progress.update("three")
        assert terminal.getvalue().endswith("\rthree (2 s)")
    assert terminal.getvalue().endswith("\r" + " " * len("three (2 s)") + "\r")
    silent = io.StringIO()
    with Progress(silent) as progress:  # not a terminal
        progress.update("one")
        progress.note("a line that stays")
    assert silent.getvalue() == "a line that stays\n"


TEXT = st.text(st.sampled_from("aZ 9中文\n\",;=+-@\t\r'é\u200b"), min_size=1, max_size=10)
TEXT_FIELDS = ("bank_reference", "customer_reference", "counterparty_name",
               "counterparty_account", "counterparty_bic", "end_to_end_id", "mandate_id",
               "remittance", "creditor_reference", "additional_info")


@settings(max_examples=150, derandomize=True, database=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(TEXT_FIELDS, TEXT)))
def test_csv_never_loses_an_entry_s_text(texts: dict[str, str]) -> None:
    """Whatever an entry's texts hold (commas, quotes, line breaks, Chinese, formula
    starts), each comes back from its CSV cell whole: as written, or behind the one `'`
    that keeps a spreadsheet from running it."""
    entry = Entry(Money(Decimal("1.00"), "EUR"), date(2026, 11, 20), **texts)
    statement = Statement("s.sta", "mt940", Account(iban="DE00TEST"), (entry,))
    header, row = csv.reader(io.StringIO("".join(csv_rows([statement])), newline=""))
    cells = dict(zip(header, row, strict=True))
    for name in TEXT_FIELDS:
        text = texts.get(name)
        if text is None:
            assert cells[name] == ""
        elif text.startswith(("=", "+", "-", "@", "\t", "\r")):
            assert cells[name] == "'" + text
        else:
            assert cells[name] == text


def test_a_bad_statement_is_reported_and_the_good_ones_of_its_file_printed(
        tmp_path: Path) -> None:
    good = [":20:GOOD", ":25:37040044/0532013000", ":28C:1", ":60F:C981130DEM1,00",
            ":62F:C981130DEM1,00", "-"]
    cut = [":20:CUT", ":25:37040044/0532013000", ":28C:2", ":60F:C981130DEM1,00", "-"]
    path = tmp_path / "three.sta"
    path.write_bytes("".join(f"{line}\r\n" for line in good + cut + good).encode())
    code, out, err = run("parse", str(path))
    assert code == 1
    assert [json.loads(line)["statement_id"] for line in out.splitlines()] == ["GOOD", "GOOD"]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {path}: line 10, field :62F:: statement 2 of 3, :20: CUT: "
                      "the statement ends without a closing balance :62F:/:62M: (cut off?)"]
    assert "1 of 1 input(s) failed" in err
