"""The service under production volumes, as real processes over HTTP (issue 11 goals).

    python bench/service_bench.py [--payments 100000] [--invoices 20000] [--workers 1,2]
        [--import-lines 100000] [--probes 5] [--concurrency 8] [--seconds 20]
        [--realistic bench/out/matching/30000-s11] [--server-url URL] [--keep DIR]

Data (``service_data.py``): a ``matching_gen.py`` data set topped up with filler to
``--invoices`` open invoices and ``--payments`` incoming payments, most of them payments
nobody invoiced (the unmatched pool a changed invoice is matched against).

For each count in ``--workers``, on a fresh scratch database: ``recon-gateway serve``
(no reconcile workers of its own, no dispatcher) is started; customers, invoices and the
statements are loaded through the API and the command line (the invoices matched before
any payment is stored); then that many ``recon-gateway worker`` processes are started and
the time until ``GET /v1/reconcile`` is idle is the **drain** (payments/s; each worker's
peak RSS is the per-tenant engine it holds). Floor: the engine alone, in this process,
on the same payments and invoices (``--engine-floor``).

On the first database, with one worker left running, in this order:

- **reads during an import**: ``GET /v1/transactions?limit=100``, ``GET /v1/invoices`` and
  ``GET /healthz`` from ``--concurrency`` clients, first alone (floor), then while
  ``POST /v1/statements`` of a new ``--import-lines`` camt.053 runs, then while the worker
  matches it (up to ``--seconds``);
- **one-invoice changes**: ``PATCH /v1/invoices/{id}`` and ``PUT /v1/invoices`` of one
  invoice, answer times, beside ``GET /v1/invoices/{id}`` of the same invoice (floor);
- **change to match**: ``PUT`` of a probe invoice a stored, unmatched payment pays, then the
  time until the payment is allocated to it (the incremental pass for a changed invoice),
  beside a one-line statement paying an open invoice (the pass for a new payment: floor);
  each waited for at most ``--change-deadline`` seconds (the rest skipped once one is not
  matched in time).

Prints one markdown table per goal with the command, the date, the machine and its load
average (the two cores are shared with other work). Runs on scratch databases of
``--server-url``, else on an embedded server (PostgreSQL's defaults, autovacuum on: the
statistics the workers' queries are planned with are what autovacuum makes of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import generate  # bench/generate.py, beside this script
import service_data
from api_load import _free_port, _percentile, _wait_ready
from scratch import drop_database, fresh_database

HERE = Path(__file__).resolve().parent
_LONG = aiohttp.ClientTimeout(total=3600)
_POLL = 0.2  # seconds between looks at the queue or at a probe's allocation


@dataclass
class Service:
    """One scratch database with ``serve`` on it, and the workers started."""

    url: str
    base: str
    key: str
    logs: Path
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0  # workers started so far (each logs to its own file)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            log = (self.logs / f"worker-{self.started}.log").open("wb")
            self.started += 1
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "worker", "--database-url", self.url],
                stdout=log, stderr=log, env=_env()))

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:  # busy in a pass that never awaits: killed
                worker.kill()
                worker.wait(timeout=30)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        self.server.terminate()
        self.server.wait(timeout=120)


def _env() -> dict[str, str]:
    # Bodies up to 512 MiB: a 100,000-line camt.053 is about 120 MB (the default limit,
    # max_body_bytes, is 64 MiB; docs/configuration.md).
    return {**os.environ, "RECON_RECONCILE_WORKERS": "0", "RECON_LOG_FORMAT": "text",
            "RECON_MAX_BODY_BYTES": str(512 * 1024 * 1024)}


def _cli(url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--database-url", url],
                          capture_output=True, text=True, timeout=3600, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"recon-gateway {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _json(session: aiohttp.ClientSession, method: str, url: str,
                **kwargs: Any) -> tuple[int, Any, float]:
    started = time.perf_counter()
    async with session.request(method, url, **kwargs) as response:
        body = await response.json(content_type=None)
        return response.status, body, time.perf_counter() - started


async def _ok(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    status, body, _ = await _json(session, method, url, **kwargs)
    if status >= 300:
        raise SystemExit(f"{method} {url}: {status} {json.dumps(body)[:1000]}")
    return body


async def start(server_url: str, logs: Path) -> Service:
    url = await fresh_database(server_url, prefix="svcbench")
    key = _cli(url, "keys", "create", "--role", "admin", "--name", "bench").strip()
    port = _free_port()
    log = (logs / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--database-url",
         url, "--no-dispatcher"], stdout=log, stderr=log, env=_env())
    service = Service(url, f"http://127.0.0.1:{port}", key, logs, server)
    await _wait_ready(service.base, deadline=120)
    return service


async def load(service: Service, data: service_data.DataSet) -> dict[str, float]:
    """Customers (API), invoices (command line, matched while no payment is stored), then
    the statements (API); the import times."""
    customers = json.loads(data.customers_json.read_text("utf-8"))
    timings: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=_LONG, headers=service.headers) as session:
        for at in range(0, len(customers), 1000):
            await _ok(session, "PUT", service.base + "/v1/customers",
                      json=customers[at:at + 1000])
        _cli(service.url, "invoices", "import", str(data.invoices_csv))
        for path in data.statements:
            started = time.perf_counter()
            await _ok(session, "POST", service.base + f"/v1/statements?filename={path.name}",
                      data=path.read_bytes())
            timings[path.name] = time.perf_counter() - started
    # No ANALYZE by hand: statistics are what autovacuum makes of them, as in production
    # (a hand-made ANALYZE here records matched_at all NULL, and the workers' queries
    # then plan for that until the next one).
    return timings


async def wait_idle(service: Service, session: aiohttp.ClientSession,
                    deadline: float) -> float:
    """Seconds until nothing waits for the workers (raises past ``deadline``)."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        body = await _ok(session, "GET", service.base + "/v1/reconcile")
        if not body["payments_waiting"] and not body["changes_waiting"]:
            return time.perf_counter() - started
        await asyncio.sleep(_POLL)
    raise SystemExit(f"the queue was not idle within {deadline:.0f} s")


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM transactions WHERE amount > 0) AS payments,"
            " (SELECT count(*) FROM transactions t WHERE amount > 0 AND NOT EXISTS ("
            "   SELECT 1 FROM allocations a WHERE a.tenant_id = t.tenant_id"
            "   AND a.account_id = t.account_id AND a.entry_id = t.entry_id"
            "   AND a.status IN ('proposed', 'applied'))) AS unallocated,"
            " (SELECT count(*) FROM invoices WHERE status IN ('open', 'partially_paid'))"
            "   AS open_invoices,"
            " (SELECT count(*) FROM allocations WHERE decision = 'auto') AS auto,"
            " (SELECT count(*) FROM allocations WHERE decision = 'review') AS review")
    finally:
        await conn.close()
    return dict(row) if row else {}


async def drain(service: Service, workers: int, deadline: float) -> dict[str, Any]:
    before = await counts(service.url)
    service.start_workers(workers)
    async with aiohttp.ClientSession(headers=service.headers) as session:
        seconds = await wait_idle(service, session, deadline)
    after = await counts(service.url)
    return {"workers": workers, "seconds": seconds, "payments": before["payments"],
            "open_invoices": before["open_invoices"], "auto": after["auto"],
            "review": after["review"], "unallocated": after["unallocated"],
            "rss": [_peak_rss_mib(w.pid) for w in service.workers]}


def engine_floor(data: service_data.DataSet) -> dict[str, float]:
    """The engine alone on the same invoices and payments: build, then match."""
    import parsers
    from matching.engine import Engine
    from matching.invoices import Customer, read_customer, read_invoices_csv
    from matching.payments import payments_from_statements

    statements = [s for path in data.statements
                  for s in parsers.parse(path.read_bytes(), source=path.name)]
    payments = list(payments_from_statements(statements))
    invoices, errors = read_invoices_csv(data.invoices_csv.read_text("utf-8"))
    if errors:
        raise SystemExit(f"invoices do not read: {errors[:3]}")
    customers = [c for i, r in enumerate(json.loads(data.customers_json.read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    started = time.perf_counter()
    engine = Engine(invoices, customers)
    built = time.perf_counter() - started
    engine.match(payments)
    return {"build": built, "match": time.perf_counter() - started - built,
            "payments": len(payments)}


async def _allocated(session: aiohttp.ClientSession, service: Service, invoice_id: str,
                     deadline: float) -> tuple[float, str]:
    """Seconds until ``invoice_id`` has an allocation, and its decision."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        body = await _ok(session, "GET", service.base + f"/v1/matches?invoice_id={invoice_id}")
        items = body["items"]
        if items:
            return time.perf_counter() - started, str(items[0].get("decision"))
        await asyncio.sleep(_POLL)
    return float("inf"), "none"


async def changes(service: Service, data: service_data.DataSet,
                  deadline: float) -> dict[str, Any]:
    """One-invoice changes with the pool stored: answer times and change-to-match."""
    out: dict[str, Any] = {"patch": [], "put": [], "get": [], "probe": [], "floor": [],
                           "patch_idle": 0.0, "stored": await counts(service.url)}
    rng = random.Random(3)
    filler = [f"BX-{1_000_001 + k}" for k in rng.sample(range(1_500), len(data.probes))]
    async with aiohttp.ClientSession(timeout=_LONG, headers=service.headers) as session:
        await wait_idle(service, session, deadline)
        for invoice_id in filler:
            url = service.base + f"/v1/invoices/{invoice_id}"
            _, body, seconds = await _json(session, "GET", url)
            out["get"].append(seconds)
            # A real change (an unchanged invoice queues nothing): a cent less is open.
            lower = Decimal(body["open_amount"]) - Decimal("0.01")
            status, _, seconds = await _json(session, "PATCH", url,
                                             json={"open_amount": str(lower)})
            if status != 200:
                raise SystemExit(f"PATCH answered {status}")
            out["patch"].append(seconds)
        try:
            out["patch_idle"] = await wait_idle(service, session, deadline)
        except SystemExit:
            out["patch_idle"] = float("inf")  # still matching: the probes would only queue
            return out
        for probe in data.probes:
            status, _, seconds = await _json(session, "PUT", service.base + "/v1/invoices",
                                             json=[probe.record()])
            if status != 200:
                raise SystemExit(f"PUT /v1/invoices answered {status}")
            out["put"].append(seconds)
            waited, decision = await _allocated(session, service, probe.invoice_id, deadline)
            out["probe"].append((seconds + waited, decision))
            if decision == "none":
                return out  # not matched within the deadline: the next would only queue
            await wait_idle(service, session, deadline)
        for index, floor in enumerate(data.floors):
            started = time.perf_counter()
            await _ok(session, "POST", service.base + f"/v1/statements?filename=f{index}.xml",
                      data=service_data.paying(floor, index))
            waited, decision = await _allocated(session, service, floor.invoice_id, deadline)
            out["floor"].append((time.perf_counter() - started, decision))
            await wait_idle(service, session, deadline)
    return out


_READS = ("/v1/transactions?limit=100", "/v1/invoices", "/healthz")


async def _reads(service: Service, concurrency: int, stop: asyncio.Event,
                 ) -> dict[str, list[float | None]]:
    """Mixed reads from ``concurrency`` clients until ``stop``; latencies per path (None
    for an error)."""
    seen: dict[str, list[float | None]] = {p: [] for p in _READS}
    rng = random.Random(9)

    async def client(session: aiohttp.ClientSession) -> None:
        cursor: str | None = None
        while not stop.is_set():
            path = rng.choice(_READS)
            url = service.base + path
            if path.startswith("/v1/transactions") and cursor:
                url += f"&cursor={cursor}"
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    body = await response.json(content_type=None)
                    ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok, body = False, None
            seen[path].append(time.perf_counter() - started if ok else None)
            if path.startswith("/v1/transactions") and isinstance(body, dict):
                cursor = body.get("next_cursor")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=service.headers,
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return seen


async def _window(service: Service, concurrency: int,
                  during: Callable[[], Awaitable[float]]) -> tuple[dict[str, Any], float]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(_reads(service, concurrency, stop))
    started = time.perf_counter()
    await during()
    elapsed = time.perf_counter() - started
    stop.set()
    return await task, elapsed


async def reads(service: Service, lines: int, concurrency: int, seconds: float,
                folder: Path) -> dict[str, Any]:
    document = folder / "import.xml"
    document.write_bytes(generate.camt053(lines, seed=777)[0])
    body = document.read_bytes()
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=_LONG, headers=service.headers) as session:
        await wait_idle(service, session, 3600)

        async def alone() -> float:
            await asyncio.sleep(seconds)  # the floor's window: reads alone
            return seconds

        async def importing() -> float:
            status, answer, took = await _json(
                session, "POST", service.base + "/v1/statements?filename=import.xml",
                data=body)
            if status >= 300:
                raise SystemExit(f"the import answered {status}: {json.dumps(answer)[:500]}")
            out["import_seconds"] = took
            return took

        async def matching() -> float:
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                queue = await _ok(session, "GET", service.base + "/v1/reconcile")
                if not queue["payments_waiting"] and not queue["changes_waiting"]:
                    break
                await asyncio.sleep(_POLL)
            return time.perf_counter() - started

        out["alone"] = await _window(service, concurrency, alone)
        out["import"] = await _window(service, concurrency, importing)
        out["matching"] = await _window(service, concurrency, matching)
        out["drained"] = await wait_idle(service, session, 3600)
    out["lines"] = lines
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"{_ms(ordered[len(ordered) // 2])} | {_ms(ordered[-1])}" if ordered
            else "- | -")


def report(args: argparse.Namespace, data: service_data.DataSet,
           loads: dict[str, float], drains: list[dict[str, Any]],
           floor: dict[str, float] | None, change: dict[str, Any] | None,
           read: dict[str, Any] | None, load_avg: tuple[float, float]) -> None:
    print(f"command: python bench/service_bench.py {' '.join(args.argv)}".rstrip())
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores "
          f"shared with other work (load average {load_avg[0]:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, "
          f"server and clients on the same machine")
    print(f"data: {data.payments:,} incoming payments ({data.realistic_payments:,} from "
          f"{args.realistic.name}, the rest filler nobody invoiced), "
          f"{data.open_invoices:,} open invoices")
    print()
    print("Import through POST /v1/statements (no reads running, no worker):")
    print()
    print("| document | seconds |")
    print("| --- | ---: |")
    for name, seconds in loads.items():
        print(f"| {name} | {seconds:.1f} |")
    print()
    print("Background matching: the workers drain every stored payment")
    print()
    print("| workers | payments | open invoices | seconds | payments/s | auto | review | "
          "left unallocated | peak RSS per worker MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    if floor is not None:
        total = floor["build"] + floor["match"]
        print(f"| floor: the engine alone (build {floor['build']:.1f} s + match "
              f"{floor['match']:.1f} s) | {floor['payments']:,.0f} | {data.open_invoices:,} "
              f"| {total:.1f} | {floor['payments'] / total:,.0f} | | | | |")
    for d in drains:
        print(f"| {d['workers']} | {d['payments']:,} | {d['open_invoices']:,} | "
              f"{d['seconds']:.1f} | {d['payments'] / d['seconds']:,.0f} | {d['auto']:,} | "
              f"{d['review']:,} | {d['unallocated']:,} | "
              f"{', '.join(f'{r:,.0f}' for r in d['rss'])} |")
    if change is not None:
        print()
        print(f"One-invoice changes with {change['stored']['payments']:,} payments stored "
              f"({change['stored']['unallocated']:,} unallocated), one worker running "
              f"(goal: answers within 1 s)")
        print()
        print("| request | n | p50 ms | max ms |")
        print("| --- | ---: | ---: | ---: |")
        print(f"| GET /v1/invoices/{{id}} (floor) | {len(change['get'])} | "
              f"{_stats(change['get'])} |")
        print(f"| PATCH /v1/invoices/{{id}} | {len(change['patch'])} | "
              f"{_stats(change['patch'])} |")
        print(f"| PUT /v1/invoices, one invoice | {len(change['put'])} | "
              f"{_stats(change['put'])} |")
        print()
        print(f"The {len(change['patch'])} PATCHes queued their changes; the worker had "
              f"handled them {change['patch_idle']:.1f} s after the last answer "
              f"(inf: not within --change-deadline {args.change_deadline:.0f} s).")
        print()
        print("| change to allocation | n | p50 ms | max ms | decisions |")
        print("| --- | ---: | ---: | ---: | --- |")
        for label, key in (("floor: a one-line statement paying an open invoice", "floor"),
                           ("PUT of the invoice a stored unmatched payment pays", "probe")):
            values = [v for v, _ in change[key]]
            decisions = ", ".join(sorted({d for _, d in change[key]}))
            print(f"| {label} | {len(values)} | {_stats(values)} | {decisions} |")
    if read is not None:
        print()
        print(f"Reads from {args.concurrency} clients while a {read['lines']:,}-line camt.053 "
              f"is imported (POST took {read['import_seconds']:.1f} s, "
              f"{read['lines'] / read['import_seconds']:,.0f} lines/s) and then matched "
              f"(queue idle {read['drained']:.1f} s after the matching window) "
              f"(goal: p99 within 1 s)")
        print()
        print("| window | request | requests/s | p50 ms | p99 ms | max ms | errors |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for window, label in (("alone", "floor: reads alone"), ("import", "during the import"),
                              ("matching", "while the worker matches")):
            seen, elapsed = read[window]
            for path in _READS:
                values = [v for v in seen[path] if v is not None]
                errors = len(seen[path]) - len(values)
                if not values:
                    print(f"| {label} ({elapsed:.0f} s) | GET {path} | 0 | - | - | - | "
                          f"{errors} |")
                    continue
                print(f"| {label} ({elapsed:.0f} s) | GET {path} | "
                      f"{len(values) / elapsed:,.1f} | {_ms(_percentile(values, 0.5))} | "
                      f"{_ms(_percentile(values, 0.99))} | {_ms(max(values))} | {errors} |")


async def run(args: argparse.Namespace, server_url: str, folder: Path
              ) -> tuple[service_data.DataSet, dict[str, float], list[dict[str, Any]],
                         dict[str, Any] | None, dict[str, Any] | None]:
    data = service_data.build(args.realistic, folder / "data", invoices=args.invoices,
                              payments=args.payments, probes=args.probes)
    drains: list[dict[str, Any]] = []
    loads: dict[str, float] = {}
    change = read = None
    for index, workers in enumerate(args.workers):
        logs = folder / f"run-{index}"
        logs.mkdir()
        service = await start(server_url, logs)
        try:
            loads = await load(service, data)
            drains.append(await drain(service, workers, args.deadline))
            print(f"drained with {workers} worker(s): {drains[-1]}", file=sys.stderr)
            if index == 0:
                if workers != 1:  # one worker goes on (a new one re-matches everything)
                    service.stop_workers()
                    service.start_workers(1)
                if args.import_lines:
                    read = await reads(service, args.import_lines, args.concurrency,
                                       args.seconds, folder)
                    print(f"reads: import {read['import_seconds']:.1f} s", file=sys.stderr)
                if args.probes:
                    change = await changes(service, data, args.change_deadline)
                    print(f"changes: {change}", file=sys.stderr)
        finally:
            service.stop()
            if not args.keep:
                await drop_database(server_url, service.url)
            else:
                print(f"kept database {service.url}", file=sys.stderr)
    return data, loads, drains, change, read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=20_000, help="open invoices")
    parser.add_argument("--workers", default="1,2", help="worker counts, one database each")
    parser.add_argument("--import-lines", type=int, default=100_000,
                        help="the import the reads run beside (0: none)")
    parser.add_argument("--probes", type=int, default=5, help="one-invoice changes (0: none)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20,
                        help="the reads-alone window, and the longest matching window")
    parser.add_argument("--deadline", type=float, default=1800,
                        help="the longest wait for the workers, seconds")
    parser.add_argument("--change-deadline", type=float, default=600,
                        help="the longest wait for a one-invoice change to be matched, seconds")
    parser.add_argument("--realistic", type=Path, default=HERE / "out/matching/30000-s11",
                        help="a matching_gen.py folder")
    parser.add_argument("--engine-floor", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--server-url",
                        help="a server to create scratch databases on (default: embedded)")
    parser.add_argument("--keep", type=Path, help="keep logs, data and databases here")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.workers = [int(n) for n in args.workers.split(",") if n]
    if not (args.realistic / "statement.xml").exists():
        raise SystemExit(f"{args.realistic}: no matching_gen.py data set there; make one "
                         f"with python bench/matching_gen.py --seed 11 --invoices N --out DIR")
    load_avg = os.getloadavg()[:2]
    with tempfile.TemporaryDirectory(prefix="recon-service-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        server_url = args.server_url
        if server_url is None:
            from gateway.embedded import start_embedded
            server_url = start_embedded(Path(scratch) / "postgres")
        data, loads, drains, change, read = asyncio.run(run(args, server_url, folder))
        floor = engine_floor(data) if args.engine_floor else None
    report(args, data, loads, drains, floor, change, read, (load_avg[0], load_avg[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
