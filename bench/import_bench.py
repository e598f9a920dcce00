"""Import of one large statement into PostgreSQL, beside the bare COPY floor of the same run.

    python bench/import_bench.py [--entries 100000] [--repeat 3] [--database-url URL]
    python bench/import_bench.py --memory --entries 1000000 [--database-url URL]

Measures, on a fresh database each round, a generated camt.053 of ``--entries`` lines:

- ``floor``: a bare asyncpg ``copy_records_to_table`` of the same rows (as
  ``transactions`` stores them) into a table with the same columns and no constraints;
- ``parse``: the parser alone, its stream read to the end (``parsers.stream``);
- ``import``: ``gateway.ingest.ingest`` end to end (hash, parse, stage, decide, store the
  lines, the statement, its events);
- ``store``: import minus parse, i.e. everything after parsing (identity, lines,
  statements, events): the goal is at least 0.25 of the floor, and the whole import at
  least 0.1 of it;
- ``again``: the same statement sent once more as another document (another message id,
  so other bytes): every line is matched against the stored ones (docs/ingest.md) and none
  is added. What the identity rule costs at its largest;
- ``known``: the same bytes again: answered from their hash, unparsed.

``--memory`` imports one file of ``--entries`` lines from disk (``ingest_path``) in a child
process and reports its peak RSS and its RSS sampled along the import (flat memory: the
peak does not grow with the file), and the longest the event loop went without answering a
timer every 50 ms meanwhile (what a ``/healthz`` would wait).

Without ``--database-url`` it runs on an embedded server in a temporary folder. Prints
Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import generate  # bench/generate.py, beside this script
from scratch import drop_database, fresh_database  # bench/scratch.py

import parsers
from gateway.embedded import start_embedded
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.store import transactions
from parsers.model import Entry
from parsers.stream import StatementEnd, StatementStart


def parse_seconds(data: bytes) -> tuple[float, int]:
    """The parser alone: its stream read to the end; and how many entries came."""
    started = time.perf_counter()
    count = 0
    for part in parsers.stream(io.BytesIO(data), source="bench.xml"):
        if isinstance(part, Entry):
            count += 1
    return time.perf_counter() - started, count


async def floor_seconds(conn: asyncpg.Connection, data: bytes) -> float:
    """Bare COPY of the rows ``transactions`` would hold, into an unconstrained table."""
    statement = next(p.statement for p in parsers.stream(io.BytesIO(data), source="floor")
                     if isinstance(p, StatementEnd | StatementStart))
    entries = tuple(p for p in parsers.stream(io.BytesIO(data), source="floor")
                    if isinstance(p, Entry))
    records = transactions.records(dataclasses.replace(statement, entries=entries),
                                   tenant="default", account_id=1, statement_pk=1)
    await conn.execute(
        "CREATE TABLE floor AS SELECT * FROM transactions WITH NO DATA;"
        "ALTER TABLE floor DROP COLUMN seq, DROP COLUMN imported_at")
    started = time.perf_counter()
    await conn.copy_records_to_table("floor", records=records, columns=transactions.COLUMNS)
    return time.perf_counter() - started


async def one_round(server_url: str, data: bytes, entries: int) -> dict[str, float]:
    url = await fresh_database(server_url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            parse, count = parse_seconds(data)
            if count != entries:
                raise SystemExit(f"the parser read {count} entries of {entries}")
            started = time.perf_counter()
            result = await ingest(conn, data, source="bench.xml")
            import_seconds = time.perf_counter() - started
            if result.entries_new != entries:
                raise SystemExit("the import lost or duplicated lines: benchmark void")
            copy = data.replace(b"<MsgId>", b"<MsgId>AGAIN-", 1)
            started = time.perf_counter()
            again = await ingest(conn, copy, source="again.xml")
            again_seconds = time.perf_counter() - started
            if again.document_known or again.entries_new:
                raise SystemExit("the statement sent again added lines: benchmark void")
            started = time.perf_counter()
            known = await ingest(conn, data, source="bench.xml")
            known_seconds = time.perf_counter() - started
            if not known.document_known:
                raise SystemExit("the same bytes were not known: benchmark void")
            floor = await floor_seconds(conn, data)
        finally:
            await conn.close()
    finally:
        await drop_database(server_url, url)
    return {"parse": parse, "import": import_seconds, "store": import_seconds - parse,
            "floor": floor, "again": again_seconds, "known": known_seconds}


async def run(server_url: str, entries: int, repeat: int) -> list[dict[str, float]]:
    data, _ = generate.camt053(entries)
    return [await one_round(server_url, data, entries) for _ in range(repeat)]


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only


async def child_import(url: str, path: Path) -> dict[str, Any]:
    """Run in the child process: import ``path`` while sampling RSS and loop lag."""
    from gateway.ingest_files import ingest_path

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        samples: list[float] = []
        lag = 0.0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal lag
            tick = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.05)
                now = time.perf_counter()
                lag = max(lag, now - tick - 0.05)
                tick = now
                if len(samples) < 100_000:
                    samples.append(_rss_mib())

        before = _rss_mib()
        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        result = await ingest_path(conn, path, max_bytes=2**31 - 1)
        seconds = time.perf_counter() - started
        done.set()
        await watcher
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tenth = max(1, len(samples) // 10)
        return {"seconds": seconds, "entries_new": result.entries_new, "rss_before": before,
                "rss_peak": peak, "rss_samples": samples[::tenth], "loop_lag": lag}
    finally:
        await conn.close()


def memory_run(server_url: str, entries: int, folder: Path,
               given: Path | None = None) -> dict[str, Any]:
    """Generate the file in one child (or take the ``given`` one, written by this script
    before), import it in another (so neither's memory is the other's), on a fresh
    database."""
    path = given or folder / f"camt053-{entries}.xml"
    if given is None:
        subprocess.run([sys.executable, __file__, "--write", str(path), "--entries",
                        str(entries)], check=True)
    url = asyncio.run(fresh_database(server_url))
    try:
        out = subprocess.run([sys.executable, __file__, "--child", url, str(path)], check=True,
                             capture_output=True, text=True).stdout
    finally:
        asyncio.run(drop_database(server_url, url))
    figures: dict[str, Any] = json.loads(out)
    figures["file_bytes"] = path.stat().st_size
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="a server to create scratch databases on")
    parser.add_argument("--memory", action="store_true",
                        help="one import from a file in a child process: peak RSS, loop lag")
    parser.add_argument("--file", type=Path,
                        help="with --memory: a file this script wrote before (--write)")
    parser.add_argument("--write", help="write the generated file there and stop")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        Path(args.write).write_bytes(generate.camt053(args.entries)[0])
        return 0
    if args.child:
        print(json.dumps(asyncio.run(child_import(args.child[0], Path(args.child[1])))))
        return 0
    server = "given server" if args.database_url else "embedded PostgreSQL"
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as folder:
        server_url = args.database_url or start_embedded(Path(folder))
        if args.memory:
            figures = memory_run(server_url, args.entries, Path(folder), args.file)
        else:
            rounds = asyncio.run(run(server_url, args.entries, args.repeat))
    flags = f"--entries {args.entries}" + (" --memory" if args.memory else
                                          f" --repeat {args.repeat}")
    print(f"command: python bench/import_bench.py {flags}"
          + (" --database-url URL" if args.database_url else ""))
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {server}")
    print()
    if args.memory:
        m: dict[str, Any] = figures
        samples = ", ".join(f"{s:.0f}" for s in m["rss_samples"])
        print("| lines | file | seconds | lines/s | RSS before | peak RSS | "
              "longest loop stall |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print(f"| {m['entries_new']:,} | {m['file_bytes'] / 2**20:,.0f} MiB "
              f"| {m['seconds']:.1f} | {args.entries / m['seconds']:,.0f} "
              f"| {m['rss_before']:.0f} MiB | {m['rss_peak']:.0f} MiB "
              f"| {m['loop_lag']:.2f} s |")
        print()
        print(f"RSS along the import (MiB, every tenth sample): {samples}")
        return 0
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    n = args.entries
    print(f"| stage | seconds (best of {args.repeat}) | entries/s | share of floor |")
    print("| --- | ---: | ---: | ---: |")
    floor_rate = n / best["floor"]
    for key, label in (("floor", "bare copy_records_to_table (floor)"),
                       ("store", "our storage (import minus parse)"),
                       ("import", "our import, end to end (parse + store)"),
                       ("parse", "parse alone"),
                       ("again", "the same statement again, all lines known"),
                       ("known", "the same bytes again (hash known, unparsed)")):
        rate = n / best[key]
        print(f"| {label} | {best[key]:.2f} | {rate:,.0f} | {rate / floor_rate:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
