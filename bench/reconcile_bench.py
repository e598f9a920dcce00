"""A reconcile pass in the service: stored payments matched, and the results stored.

    python bench/reconcile_bench.py [--payments 10000] [--seed 11] [--repeat 2] [--database-url URL]

Each round, on a fresh database: the invoices and customers of a seeded ``matching_gen.py``
data set stored, its statement imported (not reconciled), then timed:

- ``pass``: one ``gateway.reconcile.reconcile`` over every payment, end to end (load,
  match, lock, store, events), in its one transaction;
- ``engine``: the part of it the engine took (building its indexes and matching), timed
  inside the pass through its engine seam: ``pass`` minus ``engine`` is what loading,
  locking and storing cost;
- ``idle pass``: then, as a reconcile worker (``gateway.work.engines.Engines``) whose engine
  and index of the unmatched payments are built, ``--idle-passes`` incremental passes, each
  after a one-line statement (a payment nobody invoiced) and no invoice or customer change:
  the pass of a worker keeping up with imports (median).

Without ``--database-url`` it runs on an embedded server in a temporary folder. Prints a
Markdown table of the best round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path

import asyncpg
import generate  # bench/generate.py, beside this script
import service_data
from scratch import drop_database, fresh_database  # bench/scratch.py, beside this script

from gateway.embedded import start_embedded
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.reconcile import reconcile, reconcile_changes
from gateway.store import invoices as invoice_store
from gateway.store import reconcile_work
from gateway.work.engines import Engines
from matching.engine import Engine
from matching.invoices import Customer, Invoice, read_customer, read_invoices_csv
from matching.model import Allocation, Payment

HERE = Path(__file__).resolve().parent
PAYMENTS_PER_INVOICE = 0.72  # as matching_gen.py makes them (bench/matching_perf.py)


class _Timed(Engine):
    """The engine, adding the time it takes to match to ``spent``."""

    spent = 0.0

    def match(self, payments: Iterable[Payment],
              excluded: frozenset[tuple[str, str]] = frozenset(),
              never_auto: frozenset[tuple[str, str]] = frozenset(),
              progress: Callable[[int, int], None] | None = None) -> list[Allocation]:
        started = time.perf_counter()
        try:
            return super().match(payments, excluded, never_auto, progress)
        finally:
            _Timed.spent += time.perf_counter() - started


def _timed(invoices: Sequence[Invoice], customers: Sequence[Customer]) -> Engine:
    """The pass's engine factory: building the indexes counts as the engine's time too."""
    started = time.perf_counter()
    try:
        return _Timed(invoices, customers)
    finally:
        _Timed.spent += time.perf_counter() - started


async def one_round(server_url: str, folder: Path, passes: int) -> dict[str, float]:
    invoices, errors = read_invoices_csv((folder / "invoices.csv").read_text())
    customers = [c for i, r in enumerate(json.loads((folder / "customers.json").read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    if errors:
        raise SystemExit(f"generated invoices do not read: {errors[:3]}")
    url = await fresh_database(server_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            async with conn.transaction():
                await invoice_store.upsert_customers(conn, "default", customers)
                await invoice_store.upsert(conn, "default", invoices)
            await ingest(conn, (folder / "statement.xml").read_bytes(), source="bench.xml")
            await conn.execute("ANALYZE")

            pending = await reconcile_work.unallocated(conn, "default")
            _Timed.spent = 0.0
            started = time.perf_counter()
            result = await reconcile(conn, "default", engine=_timed)
            pass_seconds = time.perf_counter() - started
            engine_seconds = _Timed.spent
            if result.payments != len(pending) or result.failed or getattr(result, "deferred", 0):
                raise SystemExit(f"the pass did not store every payment: {result}")
            allocations = await conn.fetchval("SELECT count(*) FROM allocations")
            idle = await idle_passes(conn, passes)
        finally:
            await conn.close()
    finally:
        await drop_database(server_url, url)
    return {"payments": len(pending), "invoices": len(invoices), "auto": result.auto,
            "review": result.review, "allocations": allocations, "engine": engine_seconds,
            "pass": pass_seconds, "store": pass_seconds - engine_seconds, "idle": idle,
            "unmatched": len(pending) - result.auto - result.review}


async def idle_passes(conn: asyncpg.Connection, passes: int) -> float:
    """The median incremental pass of a worker whose engine is built, each after a one-line
    statement paying nothing known (no invoice or customer changed)."""
    engines = Engines()
    await reconcile_changes(conn, "default", engines=engines)   # builds engine and index
    rng = random.Random(7)
    seconds = []
    for n in range(passes):
        line = service_data.credit(rng, n, 1234 + n, f"Idle Payer {n}", f"Auftrag AU-{n}",
                                   date(2026, 11, 30))
        document = service_data.camt([line], account=generate.iban(rng),
                                     statement_id=f"IDLE-{n}", first=date(2026, 11, 30))
        await ingest(conn, document, source=f"idle-{n}.xml")
        started = time.perf_counter()
        result = await reconcile_changes(conn, "default", engines=engines)
        seconds.append(time.perf_counter() - started)
        if result is None or result.payments != 1:
            raise SystemExit(f"the idle pass did not take its one payment: {result}")
    return statistics.median(seconds) if seconds else float("nan")


async def run(server_url: str, folder: Path, repeat: int,
              passes: int) -> list[dict[str, float]]:
    return [await one_round(server_url, folder, passes) for _ in range(repeat)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database-url", help="a server to create scratch databases on")
    parser.add_argument("--idle-passes", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as scratch:
        data = Path(scratch) / "data"
        subprocess.run([sys.executable, str(HERE / "matching_gen.py"), "--seed", str(args.seed),
                        "--invoices", str(round(args.payments / PAYMENTS_PER_INVOICE)),
                        "--out", str(data)], check=True, capture_output=True)
        server_url = args.database_url or start_embedded(Path(scratch) / "postgres")
        rounds = asyncio.run(run(server_url, data, args.repeat, args.idle_passes))
    best = min(rounds, key=lambda r: r["pass"])
    server = "given URL" if args.database_url else "embedded PostgreSQL"
    print(f"command: python bench/reconcile_bench.py --payments {args.payments} "
          f"--seed {args.seed} --repeat {args.repeat} --idle-passes {args.idle_passes}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {server}")
    print()
    print(f"{best['payments']:,.0f} payments, {best['invoices']:,.0f} invoices: "
          f"{best['auto']:,.0f} automatic, {best['review']:,.0f} for review, "
          f"{best['allocations']:,.0f} allocations stored")
    print()
    print(f"| stage | seconds (best of {args.repeat}) | payments/s |")
    print("| --- | ---: | ---: |")
    for key, label in (("pass", "the pass, end to end"), ("engine", "the engine alone"),
                       ("store", "loading and storing (pass minus engine)")):
        print(f"| {label} | {best[key]:.2f} | {best['payments'] / best[key]:,.0f} |")
    print()
    print(f"A worker's pass after a one-line import, nothing else changed ({best['unmatched']:,.0f}"
          f" payments unmatched, median of {args.idle_passes}, best round): "
          f"{1000 * best['idle']:,.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
