from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TextIO

import pytest

from gateway import match_cli
from gateway.cli import main
from gateway.progress import Progress
from tests.paths import DEMO_STATEMENTS, ROOT

INVOICES = ROOT / "gateway" / "demo_data" / "invoices.csv"
HEADER = ("invoice_id,customer_id,customer_name,currency,amount,open_amount,issue_date,"
          "due_date,reference\n")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["match", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_documented_csv_form(tmp_path: Path) -> None:
    target = tmp_path / "allocations.csv"
    code, out, err = run("--statements", *map(str, sorted(DEMO_STATEMENTS.iterdir())),
                         "--invoices", str(INVOICES), "--out", str(target))
    assert (code, out) == (0, "")
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == ["bank_reference", "invoice_id", "amount", "currency",
                             "confidence", "decision"]
    by_reference = {r["bank_reference"]: r for r in rows}
    assert by_reference["2611200001"]["invoice_id"] == "INV-2026-0042"
    assert by_reference["NB261120000101"]["decision"] == "auto"
    assert all(r["decision"] in ("auto", "review", "unmatched") for r in rows)
    assert all(r["invoice_id"] == "" for r in rows if r["decision"] == "unmatched")
    assert "incoming payments" in err


def test_explain_adds_the_reasons() -> None:
    code, out, _ = run("--statements", str(DEMO_STATEMENTS / "nordbank-2026-11-20.camt.xml"),
                       "--invoices", str(INVOICES), "--explain")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and "reference_exact" in rows[0]["explanation"]


@pytest.mark.parametrize(("invoices", "words"), [
    ("invoice_id,amount\nA,1\n", "missing column(s)"),
    (HEADER + "A,C,N,EUR,12.3.4,,2026-11-01,,\n", "line 2 (A): amount"),
    (HEADER + "A,C,N,EUR,10.00,,01.11.2026,,\n", "line 2 (A): issue_date"),
    (HEADER + "A,C,N,EUX,10.00,,2026-11-01,,\n", "line 2 (A): currency"),
    (HEADER + "A,C,N,EUR,10.00,,2026-11-01,,\nA,C,N,EUR,5.00,,2026-11-01,,\n",
     "line 3 (A): invoice_id: appears twice"),
])
def test_bad_invoices_name_the_row_and_nothing_is_matched(tmp_path: Path, invoices: str,
                                                          words: str) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text(invoices)
    code, out, err = run("--statements", str(DEMO_STATEMENTS / "muster-bank-2026-11-20.sta"),
                         "--invoices", str(path))
    assert (code, out) == (1, "")
    assert words in err and "nothing was matched" in err


def test_bad_rates_and_statements_are_refused(tmp_path: Path) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("date,from_currency,to_currency,rate\n2026-11-20,EUR,USD,abc\n")
    broken = tmp_path / "broken.sta"
    broken.write_bytes(b":20:X\r\n:25:DE89370400440532013000\r\n")
    code, out, err = run("--statements", str(broken), "--invoices", str(INVOICES),
                         "--rates", str(rates))
    assert (code, out) == (1, "")
    assert "rates.csv: line 2: rate" in err and "broken.sta" in err


class Terminal(io.StringIO):
    """Standard error as a terminal would be: the is-a-terminal decision, injected."""

    def isatty(self) -> bool:
        return True


def test_progress_counts_the_payments_matched_only_on_a_terminal() -> None:
    argv = ["match", "--statements", *map(str, sorted(DEMO_STATEMENTS.iterdir())),
            "--invoices", str(INVOICES)]
    terminal, plain = Terminal(), io.StringIO()
    assert main(argv, out=io.StringIO(), err=terminal) == 0
    assert main(argv, out=io.StringIO(), err=plain) == 0
    assert "\rmatch: reading statements, 0 of " in terminal.getvalue()
    summary = plain.getvalue()
    assert "\r" not in summary and summary.endswith(" unmatched\n")
    assert terminal.getvalue().endswith("\r" + summary)  # the line wiped before the summary


def test_progress_names_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    class EveryStep(Progress):
        """Every update drawn: the steps, not the pace, are under test here."""

        def __init__(self, stream: TextIO) -> None:
            super().__init__(stream, enabled=True, interval=0, ticker=False)

    monkeypatch.setattr(match_cli, "Progress", EveryStep)
    files = sorted(DEMO_STATEMENTS.iterdir())
    err = io.StringIO()
    assert main(["match", "--statements", *map(str, files), "--invoices", str(INVOICES)],
                out=io.StringIO(), err=err) == 0
    steps = [s for s in err.getvalue().split("\r") if s.strip()]
    assert steps[:len(files)] == [f"match: reading statements, {n} of {len(files)} files done"
                                  for n in range(len(files))]
    matched = [s for s in steps if s.endswith(" payments matched")]
    total = int(matched[-1].split()[3])
    assert matched == [f"match: {n} of {total} payments matched" for n in range(1, total + 1)]


def test_statements_parsed_beside_the_invoices_give_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [str(f) for f in sorted(DEMO_STATEMENTS.iterdir())]
    argv = ("--statements", *files, "--invoices", str(INVOICES), "--explain")
    alone = run(*argv)
    monkeypatch.setattr(match_cli, "PARALLEL_BYTES", 0)   # every file in a process of its own
    assert run(*argv) == alone and alone[0] == 0
    broken = tmp_path / "broken.sta"
    broken.write_bytes(b":20:X\r\n:25:DE89370400440532013000\r\n")
    code, out, err = run("--statements", str(broken), *files[:1], "--invoices", str(INVOICES))
    assert (code, out) == (1, "") and "broken.sta" in err and "nothing was matched" in err
