"""Webhook delivery: signed, encrypted deliveries per second and commit-to-receipt latency.

    python bench/webhook_bench.py [--events 20000] [--lanes 2000] [--batch 500]
        [--concurrency 64] [--key ec|rsa] [--dispatchers 1] [--rate 200] [--seconds 10]
        [--analyze] [--timeout 120] [--database-url URL]

Four measurements in one run, against one receiver on loopback:

1. **Signed floor** (the floor issue 11's goal names). An aiohttp client in this process, no
   database, with the dispatchers' concurrency (``--concurrency`` times ``--dispatchers``):
   for each event it does the per-delivery work that no dispatcher can skip, as ours does it
   (the event's JSON, JWE to the subscription's key with the same loaded key, the Standard
   Webhooks HMAC with the subscription's secret and the ed25519 ``v1a`` signature with the
   tenant's key, the same envelope and headers) and POSTs it. The events are built before
   it starts (a client that signs has its events at hand).
2. **Plain floor.** Plain HTTP POSTs, neither signed nor encrypted, of bodies as large as our
   deliveries, same client and concurrency: what the HTTP stack and the receiver cost.
   Both floors run before and after ours; the faster of each counts.
3. **Ours.** ``--events`` events are written to the outbox with ``gateway.outbox.emit`` in
   transactions of ``--batch`` events, spread over ``--lanes`` invoice lanes, for one
   subscription (its own EC P-256 or RSA-2048 key); then ``recon-gateway dispatch`` runs in
   ``--dispatchers`` processes and drains the backlog: claim lanes, encrypt each event (JWE),
   sign it (Standard Webhooks HMAC and ed25519), POST it, record the outcomes. Deliveries
   per second from the first delivery received to the last, and the ratio to each floor.
4. **Latency.** With the dispatchers running and idle, one event per transaction at
   ``--rate`` a second for ``--seconds``; the wall clock right after each commit, keyed by
   the event id ``emit`` returns, against the receiver's wall clock at receipt, keyed by the
   ``webhook-id`` header. Percentiles in milliseconds.

The receiver is a separate process (this script with ``--receiver``): an aiohttp server that
answers 204 at once and keeps (webhook-id, time.time(), body size) in memory. It does not
verify signatures or decrypt: that is the subscriber's cost, not ours. Rates are taken from
the receiver's clock for the floors and ours. Dispatchers, receiver, PostgreSQL and this
process share the machine's cores.

``--analyze`` runs ANALYZE on the outbox tables right after writing the backlog. Without it
the dispatchers start on the statistics PostgreSQL has at that moment (none for a fresh
database, until autovacuum gets round to it, typically within a minute), as they would
after a burst in production; the per-fifth rates show when that changes.

Without ``--database-url`` it runs on an embedded PostgreSQL server in a temporary folder;
with it, a scratch database is created on that server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto import jwk
from scratch import drop_database, fresh_database  # bench/scratch.py, beside this script

from gateway import events as event_types
from gateway import outbox
from gateway.embedded import start_embedded
from gateway.keyring_start import open_keyring
from gateway.migrate import migrate
from gateway.settings import Settings
from gateway.store import api_keys, signing_keys, subscriptions
from security import apikeys
from security.roles import Role
from security.webhooks import (
    RecipientKey,
    ed25519_signer,
    envelope,
    new_secret,
    recipient_key,
    sign,
)

TENANT = "default"
HOOK_PATH = "/hook"


# --- the receiver (its own process) ---------------------------------------------------------

def run_receiver() -> None:
    """Serve on a free loopback port, print it, and record every POST until terminated."""
    records: list[tuple[str, float, int]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        records.append((request.headers.get("webhook-id", ""), time.time(), len(body)))
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": len(records),
                                  "distinct": len({r[0] for r in records})})

    async def dump(request: web.Request) -> web.Response:
        return web.json_response(records)

    async def reset(request: web.Request) -> web.Response:
        records.clear()
        return web.Response(status=204)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post(HOOK_PATH, hook)
        app.router.add_get("/stats", stats)
        app.router.add_get("/records", dump)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    base: str

    @property
    def url(self) -> str:
        return self.base + HOOK_PATH

    async def call(self, method: str, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.request(method, self.base + path) as r:
            return await r.json() if r.status == 200 else None

    async def wait_for(self, distinct: int, timeout: float) -> bool:
        """Poll until ``distinct`` webhook-ids have arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await self.call("GET", "/stats"))["distinct"] >= distinct:
                return True
            await asyncio.sleep(0.05 if distinct == 1 else 0.2)  # polling interval
        return False

    async def records(self) -> list[tuple[str, float, int]]:
        return [tuple(r) for r in await self.call("GET", "/records")]


@contextmanager
def receiver_process() -> Iterator[Receiver]:
    process = subprocess.Popen([sys.executable, __file__, "--receiver"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield Receiver(process, f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


# --- helpers ---------------------------------------------------------------------------------

def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(folder: Path | None) -> float:
    """CPU seconds so far of an embedded PostgreSQL server in ``folder``: its postmaster,
    the children it has reaped and those still running (Linux /proc; 0 elsewhere, and
    without an embedded server)."""
    pid_files = sorted(folder.glob("**/postmaster.pid")) if folder else []
    if not pid_files:
        return 0.0
    try:
        postmaster = int(pid_files[0].read_text().split()[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # its own time and its reaped children's
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile: its time went to the postmaster's children's time
        if child[1] == str(postmaster):
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot (Linux /proc/stat; zeros elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _rate(times: list[float]) -> float:
    """Arrivals per second from the first to the last."""
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 0.0


def _event_data(i: int, invoice: str) -> dict[str, Any]:
    """An invoice.partially_paid event's data as the gateway writes it (about 370 bytes)."""
    return {"invoice_id": invoice, "customer_id": f"CUST-{i % 997:05d}",
            "status": "partially_paid", "currency": "EUR", "amount": "1250.00",
            "open_amount": "250.00", "settled_amount": "1000.00",
            "allocation": {"allocation_id": 100_000 + i, "amount": "1000.00",
                           "currency": "EUR", "decision": "auto",
                           "payment": {"account_id": 1, "entry_id": f"E{i:012d}",
                                       "amount": "1000.00", "currency": "EUR",
                                       "booking_date": "2026-11-23"}}}


def _new_events(first: int, count: int, lanes: int) -> list[outbox.NewEvent]:
    return [outbox.NewEvent("invoice.partially_paid", f"invoice:INV-{i % lanes}",
                            _event_data(i, f"INV-{i % lanes}"))
            for i in range(first, first + count)]


def _sample_body_size(public_jwk: dict[str, Any]) -> int:
    """The size of one of our delivery bodies, to give the floor's bodies the same size."""
    event_id = outbox.new_event_id()
    document = event_types.document({
        "event_id": event_id, "type": "invoice.partially_paid", "version": 1,
        "created_at": datetime.now(UTC), "lane": "invoice:INV-1", "sequence": 5,
        "previous_event_id": outbox.new_event_id(), "data": _event_data(1, "INV-1")})
    jwe = recipient_key(public_jwk).encrypt(event_types.plaintext(document))
    return len(envelope(event_id, jwe))


# --- the three measurements ------------------------------------------------------------------

async def _post_all(receiver: Receiver, events: int, concurrency: int,
                    request: Callable[[int], tuple[str, bytes, dict[str, str]]]
                    ) -> dict[str, Any]:
    """POST ``events`` requests made by ``request(i)`` (webhook-id, body, headers) with
    ``concurrency`` in flight, from one aiohttp client; rates on the receiver's clock."""
    await receiver.call("POST", "/reset")
    errors = 0
    numbers = iter(range(events))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in numbers:
            _, body, headers = request(i)
            async with http.post(receiver.url, data=body, headers=headers) as response:
                await response.read()
                errors += response.status != 204

    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    records = await receiver.records()
    return {"rate": _rate([r[1] for r in records]), "received": len(records),
            "bytes": sum(r[2] for r in records) / len(records), "errors": errors,
            "cpu_us": cpu / max(1, len(records)) * 1e6}


async def floor(receiver: Receiver, events: int, size: int, concurrency: int) -> dict[str, Any]:
    """Plain POSTs of ``size``-byte bodies, ``concurrency`` at once."""
    filler = "x" * (size - len(json.dumps({"id": "floor_00000000", "jwe": ""},
                                           separators=(",", ":"))))

    def request(i: int) -> tuple[str, bytes, dict[str, str]]:
        event_id = f"floor_{i:08d}"
        return event_id, f'{{"id":"{event_id}","jwe":"{filler}"}}'.encode(), {
            "webhook-id": event_id, "Content-Type": "application/json"}

    return await _post_all(receiver, events, concurrency, request)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What a delivery to the bench's subscription is signed and encrypted with."""

    key: RecipientKey          # the subscriber's public key, loaded once
    secret: str                # the subscription's Standard Webhooks secret
    signer: Ed25519PrivateKey  # our ed25519 signing key, loaded once


def _floor_documents(events: int, lanes: int) -> list[dict[str, Any]]:
    """The events as the dispatcher reads them (data already JSON-decoded), built before
    the floor starts: a client that signs and encrypts has its events at hand."""
    created = datetime.now(UTC)
    previous: dict[str, str] = {}
    rows = []
    for i in range(events):
        lane, event_id = f"invoice:INV-{i % lanes}", outbox.new_event_id()
        rows.append(event_types.document({
            "event_id": event_id, "type": "invoice.partially_paid", "version": 1,
            "created_at": created, "lane": lane, "sequence": i // lanes + 1,
            "previous_event_id": previous.get(lane),
            "data": _event_data(i, f"INV-{i % lanes}")}))
        previous[lane] = event_id
    return rows


async def signed_floor(receiver: Receiver, events: int, lanes: int, concurrency: int,
                       subscriber: Subscriber) -> dict[str, Any]:
    """The issue's floor: per event, the cryptographic work a delivery needs (the event's
    JSON, JWE to the subscriber's key, the Standard Webhooks HMAC and ed25519 signatures,
    the envelope) and a POST with our headers, ``concurrency`` at once; no database."""
    documents = _floor_documents(events, lanes)

    def request(i: int) -> tuple[str, bytes, dict[str, str]]:
        document = documents[i]
        event_id: str = document["id"]
        body = envelope(event_id, subscriber.key.encrypt(event_types.plaintext(document)))
        timestamp = int(time.time())
        return event_id, body, {
            "webhook-id": event_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign([subscriber.secret], event_id, timestamp, body,
                                      subscriber.signer),
            "Content-Type": "application/json"}

    return await _post_all(receiver, events, concurrency, request)


async def emit_backlog(url: str, events: int, lanes: int, batch: int, analyze: bool) -> float:
    """Write ``events`` events in transactions of ``batch``; return the seconds it took.

    With ``analyze``, refresh the planner's statistics afterwards (not timed): what
    autovacuum does on its own, some time (up to a minute or more) after a burst."""
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for first in range(0, events, batch):
            async with conn.transaction():
                await outbox.emit(conn, TENANT, _new_events(first, min(batch, events - first),
                                                            lanes))
        seconds = time.perf_counter() - started
        if analyze:
            await conn.execute("ANALYZE events, deliveries, delivery_lanes")
        return seconds
    finally:
        await conn.close()


async def _pending(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'")
        return count
    finally:
        await conn.close()


async def _commits(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await asyncio.sleep(1.2)  # backends flush their statistics at most once a second
        count: int = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return count
    finally:
        await conn.close()


async def ours(receiver: Receiver, url: str, dispatchers: list[subprocess.Popen[bytes]],
               start: Callable[[int], subprocess.Popen[bytes]], count: int, events: int,
               timeout: float, server: Path | None) -> dict[str, Any]:
    """Start the dispatchers on the backlog; measure until every event has arrived."""
    await receiver.call("POST", "/reset")
    commits_before = await _commits(url)
    dispatchers += [start(k) for k in range(count)]
    await receiver.wait_for(1, timeout)  # CPU is counted from the first delivery, not startup
    busy_before, total_before = _machine_busy()
    cpu_before = [_cpu_seconds(p.pid) for p in dispatchers]
    receiver_before = _cpu_seconds(receiver.process.pid)
    server_before = _server_cpu(server)
    complete = await receiver.wait_for(events, timeout)
    wall = time.monotonic()
    busy_after, total_after = _machine_busy()
    server_cpu = _server_cpu(server) - server_before
    cpu = sum(_cpu_seconds(p.pid) - c for p, c in zip(dispatchers, cpu_before, strict=True))
    receiver_cpu = _cpu_seconds(receiver.process.pid) - receiver_before
    records = await receiver.records()
    if len(records) < 2:
        raise SystemExit("the dispatchers delivered nothing: see their log below")
    times = sorted(r[1] for r in records)
    span = max(times) - min(times)
    fifths = [times[len(times) * k // 5] for k in range(5)] + [times[-1]]
    by_fifth = [len(times) / 5 / (b - a) if b > a else 0.0
                for a, b in itertools.pairwise(fifths)]
    # The outcomes are written after the answers: wait for them before the next phase.
    deadline = time.monotonic() + 60
    while await _pending(url) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # polling interval
    settled = time.monotonic() - wall
    commits = await _commits(url) - commits_before
    ids = {r[0] for r in records}
    cores = os.cpu_count() or 1
    return {"rate": _rate(times), "received": len(records), "distinct": len(ids),
            "complete": complete, "span": span, "by_fifth": by_fifth,
            "bytes": sum(r[2] for r in records) / len(records),
            "dispatcher_cpu": cpu / span if span else 0.0,
            "cpu_us": cpu / max(1, len(times)) * 1e6,
            "server_cpu_us": server_cpu / max(1, len(times)) * 1e6 if server else None,
            "receiver_cpu": receiver_cpu / span if span else 0.0,
            "machine_busy": ((busy_after - busy_before) / (total_after - total_before) * cores
                             if total_after > total_before else 0.0),
            "commits_per_delivery": commits / max(1, len(ids)), "settled_after": settled,
            "pending_left": await _pending(url)}


async def latency(receiver: Receiver, url: str, lanes: int, rate: float,
                  seconds: float, first: int) -> dict[str, Any] | None:
    """One event per transaction at ``rate``/s; commit-to-receipt times in ms."""
    await receiver.call("POST", "/reset")
    committed: dict[str, float] = {}
    count = int(rate * seconds)
    conn = await asyncpg.connect(url)
    try:
        started = time.monotonic()
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with conn.transaction():
                (event_id,) = await outbox.emit(conn, TENANT, _new_events(first + i, 1, lanes))
            committed[event_id] = time.time()
        achieved = count / (time.monotonic() - started)
    finally:
        await conn.close()
    complete = await receiver.wait_for(count, timeout=60)
    received: dict[str, float] = {}
    for event_id, at, _ in await receiver.records():
        received.setdefault(event_id, at)  # the first arrival, if one came twice
    delays = [(received[i] - t) * 1000 for i, t in committed.items() if i in received]
    if not delays:
        return None
    return {"count": count, "received": len(delays), "complete": complete,
            "achieved_rate": achieved, "p50": _percentile(delays, 0.50),
            "p95": _percentile(delays, 0.95), "p99": _percentile(delays, 0.99),
            "max": max(delays)}


# --- the run ---------------------------------------------------------------------------------

def _subscriber_key(kind: str) -> jwk.JWK:
    if kind == "rsa":
        return jwk.JWK.generate(kty="RSA", size=2048, kid="bench-rsa")
    return jwk.JWK.generate(kty="EC", crv="P-256", kid="bench-ec")


async def run(args: argparse.Namespace, server_url: str, folder: Path) -> dict[str, Any]:
    key = _subscriber_key(args.key)
    public_jwk: dict[str, Any] = key.export_public(as_dict=True)
    url = await fresh_database(server_url, "bench_webhooks")
    dispatchers: list[subprocess.Popen[bytes]] = []
    keyring = folder / "keyring"  # the secrets' data keys, for this run's database

    def start(k: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RECON_WEBHOOK_CONCURRENCY": str(args.concurrency),
               "RECON_LOG_LEVEL": "WARNING", "RECON_KEYRING": str(keyring)}
        with (folder / f"dispatcher-{k}.log").open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "dispatch", "--database-url", url,
                 "--allow-private-webhooks"], stdout=log, stderr=subprocess.STDOUT, env=env)

    try:
        with receiver_process() as receiver:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
                await open_keyring(conn, Settings(keyring=str(keyring)))  # made here
                # An admin's subscription: it gets every invoice's events (a crm key's gets
                # only those of the invoices it pushed).
                admin = apikeys.generate()
                await api_keys.create(conn, TENANT, key=admin, role=Role.ADMIN, name="bench")
                secret = new_secret()
                await subscriptions.create(
                    conn, TENANT, owner=admin.key_id, url=receiver.url, event_types=["*"],
                    public_jwk=public_jwk, jwks_url=None, kid=public_jwk["kid"],
                    secret=secret)
                _, seed = await signing_keys.current(conn, TENANT)  # the dispatcher's key
            finally:
                await conn.close()
            subscriber = Subscriber(recipient_key(public_jwk), secret, ed25519_signer(seed))
            size = _sample_body_size(public_jwk)
            floor_concurrency = args.concurrency * args.dispatchers
            result: dict[str, Any] = {"body_size": size, "latency": None}
            # The floors before and after ours: the machine's noise falls on both sides.
            floors = [await floor(receiver, args.events, size, floor_concurrency)]
            signed = [await signed_floor(receiver, args.events, args.lanes, floor_concurrency,
                                         subscriber)]
            result["emit_seconds"] = await emit_backlog(url, args.events, args.lanes,
                                                        args.batch, args.analyze)
            result["ours"] = await ours(receiver, url, dispatchers, start, args.dispatchers,
                                        args.events, args.timeout,
                                        None if args.database_url else folder)
            if result["ours"]["complete"]:  # else the dispatchers are still busy
                result["latency"] = await latency(receiver, url, args.lanes, args.rate,
                                                  args.seconds, first=args.events)
            for process in dispatchers:
                _stop(process)
            signed.append(await signed_floor(receiver, args.events, args.lanes,
                                             floor_concurrency, subscriber))
            floors.append(await floor(receiver, args.events, size, floor_concurrency))
            result["floors"], result["signed_floors"] = floors, signed
            return result
    finally:
        for process in dispatchers:
            _stop(process)
        for log in sorted(folder.glob("dispatcher-*.log")):
            if text := log.read_text().strip():
                print(f"{log.name}:\n{text[-3000:]}", file=sys.stderr)
        await drop_database(server_url, url)


def _command(args: argparse.Namespace) -> str:
    command = (f"python bench/webhook_bench.py --events {args.events} --lanes {args.lanes} "
               f"--batch {args.batch} --concurrency {args.concurrency} --key {args.key} "
               f"--dispatchers {args.dispatchers} --rate {args.rate:g} "
               f"--seconds {args.seconds:g}")
    if args.analyze:
        command += " --analyze"
    if args.database_url:
        command += " --database-url URL"
    return command


def _report(args: argparse.Namespace, result: dict[str, Any], server: str,
            load: float) -> None:
    floors, ours_, lat = result["floors"], result["ours"], result["latency"]
    signed = result["signed_floors"]
    best = max(f["rate"] for f in floors)
    best_signed = max(f["rate"] for f in signed)
    key = "RSA-2048" if args.key == "rsa" else "EC P-256"
    print(f"command: {_command(args)}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {server}, "
          f"load average {load:.2f} at the start; dispatchers, receiver, PostgreSQL and "
          f"the load generator share the cores")
    print("receiver: a separate aiohttp process answering 204 at once; it does not verify "
          "signatures or decrypt (the subscriber's cost, not ours)")
    print()
    print("| events | lanes | concurrency | key | dispatchers | signed floor/s | ours/s "
          "| ours/signed floor | plain floor/s | ours/plain | p50 ms | p95 ms | p99 ms |")
    print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: |")
    latency_cells = (f"{lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f}" if lat
                     else "- | - | -")
    print(f"| {args.events:,} | {args.lanes:,} | {args.concurrency} | {key} | "
          f"{args.dispatchers} | {best_signed:,.0f} | {ours_['rate']:,.0f} | "
          f"{ours_['rate'] / best_signed:.2f} | {best:,.0f} | {ours_['rate'] / best:.2f} | "
          f"{latency_cells} |")
    print()
    print(f"- signed floor: {signed[0]['received']:,} signed and encrypted POSTs of "
          f"{signed[0]['bytes']:.0f} bytes, {args.concurrency * args.dispatchers} at once, "
          f"no database: " + " before ours, ".join(f"{f['rate']:,.0f}/s" for f in signed)
          + f" after (the best counts); {sum(f['errors'] for f in signed)} not answered 204; "
          f"client CPU per POST " + ", ".join(f"{f['cpu_us']:.0f}" for f in signed) + " µs")
    print(f"- plain floor: {floors[0]['received']:,} plain POSTs of "
          f"{floors[0]['bytes']:.0f} bytes, "
          f"{args.concurrency * args.dispatchers} at once: "
          + " before ours, ".join(f"{f['rate']:,.0f}/s" for f in floors) + " after (the best "
          f"counts); {sum(f['errors'] for f in floors)} not answered 204; client CPU per POST "
          + ", ".join(f"{f['cpu_us']:.0f}" for f in floors) + " µs")
    print(f"- outbox: {args.events:,} events written in {result['emit_seconds']:.1f} s "
          f"({args.events / result['emit_seconds']:,.0f}/s, {args.batch} per transaction)"
          + ("; then ANALYZE" if args.analyze else "; no ANALYZE (statistics as autovacuum "
                                                    "leaves them)"))
    print(f"- ours: {ours_['distinct']:,} of {args.events:,} events delivered "
          f"({ours_['received'] - ours_['distinct']} twice) in {ours_['span']:.1f} s, "
          f"bodies of {ours_['bytes']:.0f} bytes; outcomes recorded "
          f"{ours_['settled_after']:.1f} s after the last arrival, {ours_['pending_left']} "
          f"left pending")
    print("- ours, each fifth of the backlog: "
          + ", ".join(f"{r:,.0f}/s" for r in ours_["by_fifth"]))
    print(f"- while draining: dispatcher processes {ours_['dispatcher_cpu']:.0%} of a core "
          f"({ours_['cpu_us']:.0f} µs of CPU per delivery), "
          + (f"PostgreSQL {ours_['server_cpu_us']:.0f} µs per delivery, "
             if ours_["server_cpu_us"] is not None else "") +
          f"receiver {ours_['receiver_cpu']:.0%}, whole machine {ours_['machine_busy']:.0%} "
          f"of a core (of {os.cpu_count()}); {ours_['commits_per_delivery']:.2f} database "
          f"transactions per delivery")
    if lat:
        print(f"- latency: {lat['received']:,} of {lat['count']:,} events, one per "
              f"transaction at {lat['achieved_rate']:.0f}/s, commit to receipt; max "
              f"{lat['max']:.1f} ms")
    if not ours_["complete"] or (lat and not lat["complete"]):
        print("- INCOMPLETE: not every event arrived before the timeout"
              + ("" if lat else "; latency not measured"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="backlog size (N)")
    parser.add_argument("--lanes", type=int, default=2_000, help="invoice lanes")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="deliveries in flight per dispatcher (webhook_concurrency)")
    parser.add_argument("--key", choices=("ec", "rsa"), default="ec",
                        help="the subscriber's key: EC P-256 or RSA-2048")
    parser.add_argument("--dispatchers", type=int, default=1, help="dispatch processes")
    parser.add_argument("--rate", type=float, default=200, help="latency: events/s")
    parser.add_argument("--seconds", type=float, default=10, help="latency: for how long")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds the backlog may take to arrive")
    parser.add_argument("--analyze", action="store_true",
                        help="ANALYZE the outbox tables after writing the backlog")
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver:
        run_receiver()
        return 0
    load = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="recon-webhook-bench-"))
    # Removed at exit after the embedded server has stopped (atexit runs last in, first out).
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    server_url = args.database_url or start_embedded(folder)
    result = asyncio.run(run(args, server_url, folder))
    _report(args, result, "given PostgreSQL server" if args.database_url
            else "embedded PostgreSQL 18", load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
