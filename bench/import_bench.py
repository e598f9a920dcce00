"""Import of one large statement into PostgreSQL, beside the raw floor of the same run.

    python bench/import_bench.py [--entries 100000] [--repeat 3] [--database-url URL]

Measures, on a fresh database each round:

- ``import``: ``gateway.ingest.ingest`` end to end (parse, dedup, store in one transaction);
- ``store``: the same minus the parse, i.e. what the storage layer costs;
- ``floor``: a bare asyncpg ``copy_records_to_table`` of the same rows into a table with the
  same columns and no constraints, in the same run;
- ``again``: the same statement sent once more as another document (another message id, so
  other bytes): every line is matched against the stored ones (docs/ingest.md) and none is
  added. What the identity rule costs at its largest.

Without ``--database-url`` it runs on an embedded server in a temporary folder. Prints a
Markdown table; the goal (issue 3) is import at 50% or more of the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

import asyncpg
import generate  # bench/generate.py, beside this script
from scratch import drop_database, fresh_database  # bench/scratch.py

from gateway.embedded import start_embedded
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.store import transactions
from parsers import parse


async def one_round(server_url: str, data: bytes) -> dict[str, float]:
    url = await fresh_database(server_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            started = time.perf_counter()
            parsed = parse(data, source="bench.xml")
            parse_seconds = time.perf_counter() - started

            started = time.perf_counter()
            result = await ingest(conn, data, source="bench.xml")
            import_seconds = time.perf_counter() - started
            if result.entries_new != sum(len(s.entries) for s in parsed):
                raise SystemExit("the import lost or duplicated lines: benchmark void")
            copy = data.replace(b"<MsgId>", b"<MsgId>AGAIN-", 1)
            started = time.perf_counter()
            again = await ingest(conn, copy, source="again.xml")
            again_seconds = time.perf_counter() - started
            if again.document_known or again.entries_new:
                raise SystemExit("the statement sent again added lines: benchmark void")

            # The floor: the same rows, bare COPY into an unconstrained table.
            statement = parsed[0]
            records = transactions.records(statement, tenant="default", account_id=1,
                                           statement_pk=1)
            await conn.execute(
                "CREATE TABLE floor AS SELECT * FROM transactions WITH NO DATA;"
                "ALTER TABLE floor DROP COLUMN seq, DROP COLUMN imported_at")
            started = time.perf_counter()
            await conn.copy_records_to_table("floor", records=records,
                                             columns=transactions.COLUMNS)
            floor_seconds = time.perf_counter() - started
        finally:
            await conn.close()
    finally:
        await drop_database(server_url, url)
    return {"parse": parse_seconds, "import": import_seconds,
            "store": import_seconds - parse_seconds, "floor": floor_seconds,
            "again": again_seconds}


async def run(server_url: str, entries: int, repeat: int) -> list[dict[str, float]]:
    data, _ = generate.camt053(entries)
    return [await one_round(server_url, data) for _ in range(repeat)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="a server to create scratch databases on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as folder:
        server_url = args.database_url or start_embedded(Path(folder))
        rounds = asyncio.run(run(server_url, args.entries, args.repeat))
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    n = args.entries
    server = "given URL" if args.database_url else "embedded PostgreSQL 18"
    print(f"command: python bench/import_bench.py --entries {n} --repeat {args.repeat}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {server}")
    print()
    print(f"| stage | seconds (best of {args.repeat}) | entries/s | share of floor |")
    print("| --- | ---: | ---: | ---: |")
    floor_rate = n / best["floor"]
    for key, label in (("floor", "bare copy_records_to_table (floor)"),
                       ("store", "our storage (import minus parse)"),
                       ("import", "our import, end to end (parse + store)"),
                       ("parse", "parse alone"),
                       ("again", "the same statement again, all lines known")):
        rate = n / best[key]
        print(f"| {label} | {best[key]:.2f} | {rate:,.0f} | {rate / floor_rate:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
