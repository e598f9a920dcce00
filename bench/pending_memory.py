"""What a reconcile worker holds per unmatched payment: the payments and their index.

    python bench/pending_memory.py [--payments 5000] [--invoices 20000]
        [--realistic bench/out/matching/10000-s11] [--data DIR]

A worker keeps, per tenant, an engine over the open invoices and, beside it, the payments
left unmatched in a ``matching.pending.PendingIndex`` (``gateway/work/engines.py``). This
builds the data set of ``service_bench.py`` (``service_data.py``: realistic invoices topped
up with filler, payments nobody invoiced), the engine over its invoices, and then, traced
with ``tracemalloc``, the first ``--payments`` incoming payments as the worker reads them
and their index. Printed: bytes per payment in all and by the file that allocated them
(``matching/pending*.py``: the index itself; ``references.py``, ``payers.py``: what the
engine caches of the payments' texts and payers while the index asks it; the rest: the
payments). tracemalloc makes the build some ten times slower.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import service_data  # noqa: E402  (bench/service_data.py, beside this script)

import parsers  # noqa: E402  (the project root is put on the path just above)
from matching.engine import Engine  # noqa: E402
from matching.invoices import Customer, read_customer, read_invoices_csv  # noqa: E402
from matching.payments import payments_from_statements  # noqa: E402
from matching.pending import PendingIndex  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=5000)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--realistic", type=Path, default=HERE / "out/matching/10000-s11")
    parser.add_argument("--data", type=Path, help="where the data set is (made if missing)")
    args = parser.parse_args(argv)
    folder: Path = args.data or Path(tempfile.mkdtemp(prefix="pending-memory-"))
    if not (folder / "filler.xml").exists():
        service_data.build(args.realistic, folder, invoices=args.invoices,
                           payments=args.payments + 10_000, probes=0)
    invoices, errors = read_invoices_csv((folder / "invoices.csv").read_text("utf-8"))
    if errors:
        raise SystemExit(f"{folder}: invoices do not read: {errors[:3]}")
    customers = [c for i, r in enumerate(json.loads((folder / "customers.json").read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    engine = Engine(invoices, customers)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    payments = [p for p in payments_from_statements(parsers.parse_path(folder / "filler.xml"))
                if p.amount.amount > 0][:args.payments]
    started = time.perf_counter()
    index = PendingIndex(engine, payments)
    built = time.perf_counter() - started
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    by_file: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        part = ("index (matching/pending*.py)" if "/matching/pending" in name
                else "engine caches (references.py, payers.py, normalize.py)"
                if any(f"/matching/{m}.py" in name for m in ("references", "payers",
                                                              "normalize"))
                else "the payments (parsed, and the rest)")
        by_file[part] += stat.size_diff
    count = len(index)
    print(f"{count:,} unmatched payments over {len(invoices):,} invoices; index built in "
          f"{built:.1f} s under tracemalloc")
    print()
    print("| held | bytes per payment |")
    print("| --- | ---: |")
    for part, size in by_file.most_common():
        print(f"| {part} | {size / count:,.0f} |")
    print(f"| all | {sum(by_file.values()) / count:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
