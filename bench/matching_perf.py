"""Matching speed end to end: statement file and invoices in, allocations out.

    python bench/matching_perf.py [--payments 10000,100000] [--seed 11]

For each size, ``matching_gen.py`` writes a seeded data set (about 0.7 incoming payments
per invoice, so 10,000 payments meet about 14,000 invoices), then a fresh process runs
what ``recon-gateway match`` runs, timing each stage: parsing the camt.053 file (in a
process of its own, beside reading the invoices and building the engine's indexes:
``gateway.match_cli.load``), matching, and writing the CSV. Stages are timed on the wall
clock, and the whole in CPU time of both processes (on a loaded machine the wall clock says
more about the neighbours than about the engine). Peak memory is the larger process's
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
    """Run in a child process: what ``recon-gateway match`` runs, timed by stage.

    ``gateway.match_cli.load`` parses the statement in a process of its own while this one
    reads the invoices, rates and customers and builds the indexes; ``load`` is the wall
    time of the two together, ``parse``, ``read`` and ``index`` each one's own.
    """
    import csv
    import io

    from gateway.match_cli import load
    from gateway.progress import Progress
    from matching.model import MatchConfig

    stages: dict[str, float] = {}
    clocks: list[tuple[float, float]] = []

    def lap(name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        stages[name] = now[0] - clocks[-1][0]
        stages[f"{name}_cpu"] = now[1] - clocks[-1][1]
        clocks.append(now)

    clocks.append((time.perf_counter(), time.process_time()))
    with Progress(io.StringIO(), enabled=False) as progress:
        loaded = load([str(folder / "statement.xml")], str(folder / "invoices.csv"),
                      str(folder / "rates.csv"), str(folder / "customers.json"), MatchConfig(),
                      progress)
    if loaded.engine is None:
        raise SystemExit(f"generated data does not read: {loaded.errors[:3]}")
    lap("load")
    stages.update(loaded.seconds)

    allocations = loaded.engine.match(loaded.payments)
    lap("match")

    out = io.StringIO()
    writer = csv.writer(out)
    for a in allocations:
        writer.writerow((a.payment_key, a.invoice_id or "", a.amount.amount if a.amount else "",
                         f"{a.confidence:.3f}", a.decision.value))
    lap("write")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stages["engine"] = sum(stages[n] for n in ("read", "index", "match", "write"))
    stages["total"] = sum(stages[n] for n in ("load", "match", "write"))
    stages["engine_cpu"] = sum(stages[f"{n}_cpu"] for n in ("load", "match", "write"))
    stages["total_cpu"] = stages["engine_cpu"] + children.ru_utime + children.ru_stime
    stages["payments"] = len(loaded.payments)
    stages["invoices"] = loaded.invoices
    stages["peak_rss_mib"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                 children.ru_maxrss) / 1024
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
    print("| payments | invoices | parse s | read s | index s | load s | match s | engine s "
          "| total s | engine CPU s | total CPU s | payments/s | peak RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: |")
    for r in results:
        print(f"| {r['payments']:,.0f} | {r['invoices']:,.0f} | {r['parse']:.1f} | "
              f"{r['read']:.1f} | {r['index']:.1f} | {r['load']:.1f} | {r['match']:.1f} | "
              f"{r['engine']:.1f} | {r['total']:.1f} | {r['engine_cpu']:.1f} | "
              f"{r['total_cpu']:.1f} | {r['payments'] / r['total']:,.0f} | "
              f"{r['peak_rss_mib']:,.0f} |")
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
        print("load: the statement parsed in a process of its own while the invoices are read "
              "and indexed (parse, read and index: each one's own time); engine: read, index, "
              "match and write; total CPU: both processes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
