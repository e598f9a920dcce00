"""Matching speed end to end: statement file and invoices in, allocations out.

    python bench/matching_perf.py [--payments 10000,100000] [--seed 11]

For each size, ``matching_gen.py`` writes a seeded data set (about 0.7 incoming payments
per invoice, so 10,000 payments meet about 14,000 invoices), then a fresh process runs
what ``recon-gateway match`` runs, timing each stage: parsing the camt.053 file, reading
the invoices, building the engine's indexes, matching, and writing the CSV. Each stage is
timed on the wall clock and in the process's CPU time (on a loaded machine the wall clock
says more about the neighbours than about the engine). Peak memory is that process's
maximum resident set. Goals (issue 11): 100,000 payments x 100,000 invoices within 20 s
on two cores end to end, and the 100,000 run at most 12 times the 10,000 run; parsing is
shown apart ("engine" is reading the invoices, indexing, matching and writing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAYMENTS_PER_INVOICE = 0.72


def measure(folder: Path) -> dict[str, float]:
    """Run in a child process: the stages of ``recon-gateway match``, timed."""
    import csv
    import io

    import parsers
    from matching.engine import Engine
    from matching.fx import read_rates_csv
    from matching.invoices import Customer, read_customer, read_invoices_csv
    from matching.payments import payments_from_statements

    stages: dict[str, float] = {}
    clocks: list[tuple[float, float]] = []

    def lap(name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        stages[name] = now[0] - clocks[-1][0]
        stages[f"{name}_cpu"] = now[1] - clocks[-1][1]
        clocks.append(now)

    clocks.append((time.perf_counter(), time.process_time()))
    statements = parsers.parse_path(folder / "statement.xml")
    payments = list(payments_from_statements(statements))
    lap("parse")

    invoices, errors = read_invoices_csv((folder / "invoices.csv").read_text())
    rates, rate_errors = read_rates_csv((folder / "rates.csv").read_text())
    customers = [c for i, r in enumerate(json.loads((folder / "customers.json").read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    if errors or rate_errors:
        raise SystemExit(f"generated data does not read: {errors[:3]} {rate_errors[:3]}")
    lap("read")

    engine = Engine(invoices, customers, rates)
    lap("index")

    allocations = engine.match(payments)
    lap("match")

    out = io.StringIO()
    writer = csv.writer(out)
    for a in allocations:
        writer.writerow((a.payment_key, a.invoice_id or "", a.amount.amount if a.amount else "",
                         f"{a.confidence:.3f}", a.decision.value))
    lap("write")
    for suffix in ("", "_cpu"):
        stages[f"engine{suffix}"] = sum(stages[f"{n}{suffix}"]
                                        for n in ("read", "index", "match", "write"))
        stages[f"total{suffix}"] = stages[f"parse{suffix}"] + stages[f"engine{suffix}"]
    stages["payments"] = len(payments)
    stages["invoices"] = len(invoices)
    stages["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", default="10000,100000")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path,
                        help="keep the generated data sets here and reuse them on later runs")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    sizes = [int(n) for n in args.payments.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="recon-match-perf-") as scratch:
        for size in sizes:
            folder = (args.data or Path(scratch)) / f"{size}-s{args.seed}"
            invoices = round(size / PAYMENTS_PER_INVOICE)
            if not (folder / "truth.csv").exists():
                subprocess.run([sys.executable, str(HERE / "matching_gen.py"), "--seed",
                                str(args.seed), "--invoices", str(invoices), "--out",
                                str(folder)], check=True, capture_output=True)
            child = subprocess.run([sys.executable, __file__, "--measure", str(folder)],
                                   check=True, capture_output=True, text=True)
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"command: python bench/matching_perf.py --payments {args.payments} "
          f"--seed {args.seed}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.machine()}")
    print()
    print("| payments | invoices | parse s | read s | index s | match s | engine s | total s "
          "| engine CPU s | total CPU s | payments/s | peak RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['payments']:,.0f} | {r['invoices']:,.0f} | {r['parse']:.1f} | "
              f"{r['read']:.1f} | {r['index']:.1f} | {r['match']:.1f} | {r['engine']:.1f} | "
              f"{r['total']:.1f} | {r['engine_cpu']:.1f} | {r['total_cpu']:.1f} | "
              f"{r['payments'] / r['total']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print()
        print(f"{large['payments']:,.0f} run / {small['payments']:,.0f} run: total "
              f"{large['total'] / small['total']:.1f}x, "
              f"engine {large['engine'] / small['engine']:.1f}x"
              f" (CPU: {large['total_cpu'] / small['total_cpu']:.1f}x, "
              f"{large['engine_cpu'] / small['engine_cpu']:.1f}x); goal at most 12x for 10x the "
              f"data. Largest run {large['total']:.1f} s end to end, {large['engine']:.1f} s "
              f"without parsing (goal: within 20 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
