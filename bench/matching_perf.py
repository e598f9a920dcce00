"""Matching speed end to end: statement file and invoices in, allocations out.

    python bench/matching_perf.py [--payments 10000,100000] [--seed 11]

For each size, ``matching_gen.py`` writes a seeded data set (about 0.7 incoming payments
per invoice, so 10,000 payments meet about 14,000 invoices), then a fresh process runs
what ``recon-gateway match`` runs, timing each stage: parsing the camt.053 file, reading
the invoices, building the engine's indexes, matching, and writing the CSV. Peak memory
is that process's maximum resident set. Goals (issue 4): 100,000 x 100,000 within a
minute on two cores, and the 100,000 run at most 12 times the 10,000 run.
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
    started = time.perf_counter()
    statements = parsers.parse_path(folder / "statement.xml")
    payments = list(payments_from_statements(statements))
    stages["parse"] = time.perf_counter() - started

    mark = time.perf_counter()
    invoices, errors = read_invoices_csv((folder / "invoices.csv").read_text())
    rates, rate_errors = read_rates_csv((folder / "rates.csv").read_text())
    customers = [c for i, r in enumerate(json.loads((folder / "customers.json").read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    if errors or rate_errors:
        raise SystemExit(f"generated data does not read: {errors[:3]} {rate_errors[:3]}")
    stages["read"] = time.perf_counter() - mark

    mark = time.perf_counter()
    engine = Engine(invoices, customers, rates)
    stages["index"] = time.perf_counter() - mark

    mark = time.perf_counter()
    allocations = engine.match(payments)
    stages["match"] = time.perf_counter() - mark

    mark = time.perf_counter()
    out = io.StringIO()
    writer = csv.writer(out)
    for a in allocations:
        writer.writerow((a.payment_key, a.invoice_id or "", a.amount.amount if a.amount else "",
                         f"{a.confidence:.3f}", a.decision.value))
    stages["write"] = time.perf_counter() - mark
    stages["total"] = time.perf_counter() - started
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
    print("| payments | invoices | parse s | index s | match s | total s | payments/s "
          "| peak RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['payments']:,.0f} | {r['invoices']:,.0f} | {r['parse']:.1f} | "
              f"{r['index']:.1f} | {r['match']:.1f} | {r['total']:.1f} | "
              f"{r['payments'] / r['total']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = large["total"] / small["total"]
        print()
        print(f"{large['payments']:,.0f} run / {small['payments']:,.0f} run: {ratio:.1f}x "
              f"(goal at most 12x for 10x the data); largest run {large['total']:.0f} s "
              f"(goal: within 60 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
