"""Accuracy of the matching engine on seeded receivables with ground truth (issue 4).

    python bench/matching_accuracy.py --seeds 1,2,3 [--invoices 2000] [--examples 5]

For each seed, ``bench/matching_gen.py`` writes invoices, rates, customers, a camt.053
statement and the truth into a temporary folder; ``recon-gateway match`` runs on them as a
subprocess (``--customers`` is passed when the command takes it, unless ``--no-customers``);
its allocations.csv is scored against truth.csv, per case type and overall:

- auto precision: share of ``auto`` allocations whose (bank_reference, invoice_id) pair is
  in the truth; auto recall: share of true pairs allocated ``auto``;
- amount ok: share of correct auto pairs whose amount is the truth's within 0.01 (one minor
  unit for currencies without cents) and in the invoice's currency;
- review: share of payments with at least one ``review`` row;
- auto on nothing: ``auto`` allocations given to payments that settle nothing.

Output checks are counted too: invoices allocated (auto) beyond their open amount, incoming
payments without a row, rows for unknown bank references or invoices, decisions other than
auto/review/unmatched. Prints Markdown with
the command line, the machine and the goals; exits 1 if the command fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from matching_gen import CASES, GENERATOR_VERSION, generate  # bench/ is the script's folder

from parsers import parse_path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"precision": Decimal("99.5"), "recall": Decimal(90)}
DECISIONS = ("auto", "review", "unmatched")


@dataclass
class Score:
    """Counts for one case type (or all), summed over seeds by ``add``."""

    payments: int = 0
    true_pairs: int = 0
    auto: int = 0
    auto_correct: int = 0
    amount_ok: int = 0
    reviewed: int = 0
    auto_on_nothing: int = 0

    def add(self, other: Score) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def precision(self) -> Decimal | None:
        return _share(self.auto_correct, self.auto)

    def recall(self) -> Decimal | None:
        return _share(self.auto_correct, self.true_pairs)


@dataclass
class Run:
    seed: int
    seconds: float
    scores: dict[str, Score]
    checks: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


def _share(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(100) * part / whole).quantize(Decimal("0.1"))


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value}%"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def executable() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "recon-gateway"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gateway.cli"]


def command(folder: Path, customers: bool) -> list[str]:
    args = [*executable(), "match", "--statements", str(folder / "statement.xml"),
            "--invoices", str(folder / "invoices.csv"), "--rates", str(folder / "rates.csv")]
    if customers:
        args += ["--customers", str(folder / "customers.json")]
    return [*args, "--out", str(folder / "allocations.csv")]


def takes_customers() -> bool:
    help_text = subprocess.run([*executable(), "match", "--help"],
                               capture_output=True, text=True, cwd=ROOT, check=False).stdout
    return "--customers" in help_text


def tolerance(amount: str) -> Decimal:
    """0.01, or one minor unit where the truth's amount has fewer places (JPY: 1)."""
    exponent = Decimal(amount).as_tuple().exponent
    return max(Decimal("0.01"), Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0))


def score(folder: Path, seed: int, seconds: float, examples: int) -> Run:
    cases: dict[str, str] = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
    truth: dict[tuple[str, str], str] = {}
    settles: dict[str, bool] = defaultdict(bool)
    for row in read_csv(folder / "truth.csv"):
        if row["invoice_id"]:
            truth[(row["bank_reference"], row["invoice_id"])] = row["amount"]
            settles[row["bank_reference"]] = True
    invoices = {r["invoice_id"]: r for r in read_csv(folder / "invoices.csv")}
    rows = read_csv(folder / "allocations.csv")
    seen = {e.bank_reference: e for s in parse_path(folder / "statement.xml") for e in s.entries}

    def show(ref: str) -> str:
        e = seen[ref]
        return (f"[{e.amount} {e.counterparty_name!r} rem={e.remittance!r} "
                f"rf={e.creditor_reference} e2e={e.end_to_end_id}]")

    run = Run(seed, seconds, {c: Score() for c in CASES})
    for case in cases.values():
        run.scores[case].payments += 1
    for ref, _ in truth:
        run.scores[cases[ref]].true_pairs += 1
    reviewed: set[str] = set()
    auto_pairs: set[tuple[str, str]] = set()
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        ref, invoice_id, decision = row["bank_reference"], row["invoice_id"], row["decision"]
        if ref not in cases:
            run.checks["rows for unknown bank references"] += 1
            continue
        if decision not in DECISIONS:
            run.checks["unknown decisions"] += 1
        s = run.scores[cases[ref]]
        if decision == "review":
            reviewed.add(ref)
        if decision != "auto" or not invoice_id:
            continue
        s.auto += 1
        auto_pairs.add((ref, invoice_id))
        if invoice_id in invoices:
            allocated[invoice_id] += Decimal(row["amount"])
        else:
            run.checks["rows for unknown invoices"] += 1
        if not settles[ref]:
            s.auto_on_nothing += 1
        expected = truth.get((ref, invoice_id))
        if expected is not None:
            s.auto_correct += 1
            currency = invoices.get(invoice_id, {}).get("currency")
            if row["currency"] == currency and abs(Decimal(row["amount"]) - Decimal(expected)) \
                    <= tolerance(expected):
                s.amount_ok += 1
            else:
                run.examples.append(f"{cases[ref]}: amount {ref} {invoice_id}: got "
                                    f"{row['amount']} {row['currency']}, truth {expected} "
                                    f"{show(ref)}")
        else:
            wanted = [i for (r, i) in truth if r == ref] or ["(nothing)"]
            run.examples.append(f"{cases[ref]}: wrong auto {ref} -> {invoice_id} "
                                f"(conf {row['confidence']}); truth {', '.join(wanted)} "
                                f"{show(ref)}")
    for ref in reviewed:
        run.scores[cases[ref]].reviewed += 1
    by_ref: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_ref[row["bank_reference"]].add(f"{row['decision']}:{row['invoice_id'] or '-'}"
                                          f"@{row['confidence']}")
    for key, entry in seen.items():
        if entry.amount.amount > 0 and key not in by_ref:
            run.checks["incoming payments without a row"] += 1
    for (ref, invoice_id) in truth:
        if (ref, invoice_id) not in auto_pairs and examples:
            got = ", ".join(sorted(by_ref[ref])) or "no row"
            run.examples.append(f"{cases[ref]}: missed {ref} -> {invoice_id} "
                                f"({truth[(ref, invoice_id)]}); engine {got} {show(ref)}")
    for invoice_id, total in allocated.items():
        if total > Decimal(invoices[invoice_id]["open_amount"]):
            run.checks["invoices auto-allocated beyond their open amount"] += 1
    return run


def table(scores: dict[str, Score]) -> list[str]:
    lines = ["| case | payments | true allocations | auto | auto precision | auto recall | "
             "amount ok | review | auto on settles-nothing |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    total = Score()
    for case in CASES:
        s = scores[case]
        total.add(s)
        lines.append(_row(case, s))
    lines.append(_row("**all**", total))
    return lines


def _row(name: str, s: Score) -> str:
    return (f"| {name} | {s.payments} | {s.true_pairs} | {s.auto} | {_pct(s.precision())} | "
            f"{_pct(s.recall())} | {_pct(_share(s.amount_ok, s.auto_correct))} | "
            f"{_pct(_share(s.reviewed, s.payments))} | {s.auto_on_nothing} |")


def verdict(scores: dict[str, Score]) -> str:
    total = Score()
    for s in scores.values():
        total.add(s)
    p, r = total.precision(), total.recall()
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    marks = [f"precision {_pct(p)} {met(p is not None and p >= GOALS['precision'])}",
             f"recall {_pct(r)} {met(r is not None and r >= GOALS['recall'])}",
             f"auto on settles-nothing {total.auto_on_nothing} "
             f"{met(total.auto_on_nothing == 0)}"]
    return "Against the goals: " + "; ".join(marks) + "."


def machine() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True,  # noqa: S607 - read only
                              text=True, cwd=ROOT, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "matching", "gateway", "parsers"):
        commit += " with uncommitted changes to the engine"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, commit {commit}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--examples", type=int, default=0,
                        help="print up to N misses and wrong allocations per case")
    parser.add_argument("--keep", type=Path, help="keep each seed's files under this folder")
    parser.add_argument("--no-customers", action="store_true",
                        help="do not give the engine customers.json (IBANs, aliases)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    customers = not args.no_customers and takes_customers()
    print("## Matching accuracy\n")
    shown = shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"`python bench/matching_accuracy.py {shown}` on {datetime.now(UTC):%Y-%m-%d}, "
          f"{machine()}, generator v{GENERATOR_VERSION}. Engine command per seed: "
          f"`recon-gateway match --statements statement.xml --invoices invoices.csv "
          f"--rates rates.csv{' --customers customers.json' if customers else ''} "
          f"--out allocations.csv`.\n")
    print(f"Goals: auto precision >= {GOALS['precision']}%, auto recall >= {GOALS['recall']}%, "
          "zero auto allocations for payments that settle nothing.\n")
    overall = {c: Score() for c in CASES}
    runs = []
    with tempfile.TemporaryDirectory(prefix="matching-bench-") as temp:
        for seed in seeds:
            folder = (args.keep or Path(temp)) / f"seed-{seed}"
            generate(folder, seed=seed, invoices=args.invoices)
            started = time.perf_counter()
            done = subprocess.run(
                command(folder, customers), capture_output=True, text=True,
                                  cwd=ROOT, check=False)
            seconds = time.perf_counter() - started
            written = (folder / "allocations.csv").is_file()
            if done.returncode != 0 or not written:
                print(f"recon-gateway match failed (exit {done.returncode}, allocations.csv "
                      f"{'written' if written else 'missing'}) on seed {seed}:\n"
                      f"{done.stderr[-4000:]}", file=sys.stderr)
                return 1
            run = score(folder, seed, seconds, args.examples)
            runs.append(run)
            for case, s in run.scores.items():
                overall[case].add(s)
            print(f"### Seed {seed} ({args.invoices} invoices, engine {seconds:.1f} s)\n")
            print("\n".join(table(run.scores)) + "\n")
            print(verdict(run.scores))
            checks = ", ".join(f"{k}: {v}" for k, v in sorted(run.checks.items())) or "none"
            print(f"Output problems: {checks}.\n")
    if len(runs) > 1:
        print(f"### All seeds ({', '.join(map(str, seeds))})\n")
        print("\n".join(table(overall)) + "\n")
        print(verdict(overall) + "\n")
    if args.examples:
        print("### Examples of misses and wrong allocations\n")
        for run in runs:
            per_case: Counter[str] = Counter()
            for line in run.examples:
                case = line.split(":", 1)[0]
                per_case[case] += 1
                if per_case[case] <= args.examples:
                    print(f"- seed {run.seed} {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
