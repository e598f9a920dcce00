"""``recon-gateway parse`` streams: what it prints is what whole statements give, its
memory does not grow with the entries, and it loads nothing of the service."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parsers
from gateway.cli import main
from gateway.output import csv_rows, table
from parsers.identity import entry_ids
from parsers.jsonl import statement_to_dict
from parsers.model import Statement
from tests.parsers.test_camt import ACCT, GOOD_ENTRY, document

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
GOLDEN = sorted(p for p in DATA.glob("*/*") if not p.name.endswith(".json"))


def _parse(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["parse", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _whole(statements: list[Statement], form: str) -> str:
    """What the statements print as, rendered whole (as the command did before it
    streamed)."""
    if form == "jsonl":
        return "".join(json.dumps(statement_to_dict(s), ensure_ascii=False) + "\n"
                       for s in statements)
    if form == "csv":
        return "".join(csv_rows(statements))
    return "".join(table(s) + "\n" for s in statements)  # blocks apart by an empty line


@pytest.mark.parametrize("form", ["jsonl", "csv", "table"])
def test_every_golden_file_prints_as_its_whole_statements(form: str) -> None:
    statements: list[Statement] = []
    for path in GOLDEN:
        statements.extend(s for s in parsers.parse_each(path.read_bytes(), source=str(path))
                          if isinstance(s, Statement))
    code, out, err = _parse(*map(str, GOLDEN), "--format", form)
    assert (code, err) == (0, "")
    assert out == _whole(statements, form)


@pytest.mark.parametrize("form", ["jsonl", "csv", "table"])
def test_a_bad_statement_is_reported_and_the_others_printed(tmp_path: Path, form: str) -> None:
    bad = GOOD_ENTRY.replace("CRDT", "CR")
    path = tmp_path / "three.xml"
    path.write_bytes(document(ACCT + GOOD_ENTRY, ACCT + GOOD_ENTRY + bad,
                              ACCT + GOOD_ENTRY * 2))
    first, error, third = parsers.parse_each(path.read_bytes(), source=str(path))
    assert isinstance(first, Statement) and isinstance(third, Statement)
    code, out, err = _parse(str(path), "--format", form)
    assert code == 1
    assert out == _whole([first, third], form)
    assert err == f"error: {error}\n1 of 1 input(s) failed\n"


def test_ids_follow_an_account_currency_known_only_at_the_end(tmp_path: Path) -> None:
    no_currency = ACCT.replace("<Ccy>EUR</Ccy>", "")
    path = tmp_path / "late.xml"
    path.write_bytes(document(no_currency + GOOD_ENTRY * 3 + GOOD_ENTRY.replace("1.00", "2")))
    (statement,) = parsers.parse(path.read_bytes(), source=str(path))
    assert "currency_inferred" in [f.code for f in statement.flags]
    code, out, _ = _parse(str(path))
    assert code == 0
    assert [e["id"] for e in json.loads(out)["entries"]] == list(entry_ids(statement))
    assert out == _whole([statement], "jsonl")


# A child process prints a generated camt.053 of N entries as jsonl to /dev/null and
# reports its peak resident memory: VmHWM, which sees libxml2's memory too, and (unlike
# ru_maxrss) not the memory of the process it was started from.
_PEAK = textwrap.dedent("""
    import os, sys
    from gateway.cli import main
    with open(os.devnull, "w", encoding="utf-8") as out:
        code = main(["parse", sys.argv[1]], out=out)
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(code, peak * 1024)
""")


def _camt(path: Path, entries: int) -> Path:
    entry = ('<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd>'
             "</Sts><BookgDt><Dt>2024-03-14</Dt></BookgDt><NtryDtls><TxDtls><RltdPties>"
             "<Dbtr><Pty><Nm>{n} Payer with a name of some length</Nm></Pty></Dbtr>"
             "</RltdPties><RmtInf><Ustrd>Invoice {n} and a remittance text of some length"
             "</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n")
    with path.open("w", encoding="utf-8") as out:
        head, tail = document(ACCT + "\0").decode().split("\0")
        out.write(head)
        for n in range(entries):
            out.write(entry.format(n=n))
        out.write(tail)
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is in Linux's /proc")
def test_memory_does_not_grow_with_the_entries(tmp_path: Path) -> None:
    small, large = 20_000, 80_000
    peaks = []
    for count in (small, large):
        path = _camt(tmp_path / f"{count}.xml", count)
        done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True,
                              text=True, cwd=ROOT, check=True)
        code, peak = done.stdout.split()
        assert code == "0", done.stderr
        peaks.append(int(peak))
        path.unlink()
    # Holding the 60,000 entries more (as Entry objects, or their JSON text) takes well
    # over 20 MiB; a stream's peak stays where it was, but for the table of ids taken
    # (16 bytes an entry at most: 1 MiB). Measured: 41.6 and 43.1 MiB.
    assert peaks[0] > 20 * 2**20, peaks  # the interpreter and lxml at least: a real figure
    assert peaks[1] - peaks[0] < 12 * 2**20, peaks


_MODULES = textwrap.dedent("""
    import json, os, sys
    from gateway.cli import main
    with open(os.devnull, "w", encoding="utf-8") as out:
        code = main(["parse", sys.argv[1]], out=out)
    print(json.dumps([code, sorted(sys.modules)]))
""")


def test_parse_loads_nothing_of_the_service() -> None:
    done = subprocess.run([sys.executable, "-c", _MODULES, str(DATA / "camt" /
                                                                "camt053_v08.xml")],
                          capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, modules = json.loads(done.stdout)
    assert code == 0
    service = [m for m in modules if m.split(".")[0] in ("aiohttp", "asyncpg", "matching")
               or m in ("gateway.commands", "gateway.app", "gateway.ingest", "gateway.store")]
    assert service == []
    assert "parsers.camt" in modules  # what parsing needs is there


def test_a_bad_element_before_the_message_prints_nothing(tmp_path: Path) -> None:
    path = tmp_path / "foo.xml"
    path.write_bytes(document(ACCT + GOOD_ENTRY).replace(b"<BkToCstmrStmt>",
                                                         b"<Foo/><BkToCstmrStmt>"))
    code, out, err = _parse(str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {path}: /Document/Foo, field Foo: expected a camt message")
