"""Several processes, one database: two `serve` (the API only), two `worker` and two
`dispatch` processes import, match and deliver at once. Nothing is lost, doubled or decided
twice: every bank line is stored once however many times and through whichever process its
statement arrives, every invoice is settled exactly by its payment, every event reaches the
CRM once and in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from gateway.store import api_keys, subscriptions
from parsers.camt_write import write
from parsers.model import Account, Balance, BalanceKind, Entry, Statement
from parsers.money import Money
from security import apikeys
from security.roles import Role
from security.webhooks import new_secret
from tests.gateway.processes import Server
from tests.gateway.webhook_support import FAST, Receiver, chained, eventually, public

ACCOUNT = Account(iban="DE89370400440532013000", currency="EUR", bic="COBADEFFXXX")
PAYER_IBAN = "GB29NWBK60161331926819"
STATEMENTS = 6
PER_STATEMENT = 8


def _env(**settings: object) -> dict[str, str]:
    return {**os.environ, **{f"RECON_{k.upper()}": str(v)
                             for k, v in {**FAST, **settings}.items()}}


def _statements() -> list[tuple[bytes, bytes]]:
    """Chained daily statements (each opens where the one before closed), each as two
    documents of the same content: the same lines, created at another time (other bytes)."""
    out = []
    balance = Decimal("1000.00")
    for day in range(STATEMENTS):
        booked = date(2026, 11, 2) + timedelta(days=day)
        entries = tuple(
            Entry(amount=Money(_amount(day, n), "EUR"), booking_date=booked, value_date=booked,
                  bank_reference=f"B{day}-{n}", counterparty_name="GLOBEX CORPORATION",
                  counterparty_account=PAYER_IBAN, remittance=f"Invoice {_invoice_id(day, n)}")
            for n in range(PER_STATEMENT))
        closing = balance + sum((e.amount.amount for e in entries), Decimal(0))
        twins = []
        for created in (20, 21):
            twins.append(write([Statement(
                source="test", format="camt.053", account=ACCOUNT, entries=entries,
                statement_id=f"S{day}", sequence=str(day + 1),
                created_at=datetime(2026, 11, 2, created, 0, tzinfo=UTC) + timedelta(days=day),
                opening_balance=Balance(Money(balance, "EUR"), booked - timedelta(days=1),
                                        BalanceKind.OPENING_BOOKED),
                closing_balance=Balance(Money(closing, "EUR"), booked,
                                        BalanceKind.CLOSING_BOOKED))]))
        out.append((twins[0], twins[1]))
        balance = closing
    return out


def _amount(day: int, n: int) -> Decimal:
    return Decimal(100 + day * PER_STATEMENT + n) + Decimal("0.25")


def _invoice_id(day: int, n: int) -> str:
    return f"INV-{day:02d}{n:02d}"


def _invoices() -> list[dict[str, str]]:
    return [{"invoice_id": _invoice_id(day, n), "customer_id": "C1",
             "customer_name": "Globex Corporation Ltd", "currency": "EUR",
             "amount": str(_amount(day, n)), "open_amount": str(_amount(day, n)),
             "issue_date": "2026-10-01", "due_date": "2026-11-30",
             "reference": _invoice_id(day, n)}
            for day in range(STATEMENTS) for n in range(PER_STATEMENT)]


class Processes:
    """Child processes of the test, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.children: list[subprocess.Popen[bytes]] = []
        self.servers: list[Server] = []

    def run(self, name: str, *args: str, env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.children.append(subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args], stdout=log,
            stderr=subprocess.STDOUT, env=env))
        log.close()

    def serve(self, name: str, database_url: str) -> Server:
        server = Server("--database-url", database_url, "--no-dispatcher",
                        log=self.folder / f"{name}.log", env=_env(reconcile_workers=0))
        self.servers.append(server)
        return server

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> list[int]:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        codes = []
        for child in self.children:
            try:
                codes.append(child.wait(30))
            except subprocess.TimeoutExpired:
                child.kill()
                codes.append(child.wait())
        codes += [server.stop() for server in self.servers]
        return codes


async def _keys_and_subscription(database_url: str, crm: Receiver) -> dict[Role, str]:
    conn = await asyncpg.connect(database_url)
    try:
        keys, made = {}, {}
        for role in (Role.ADMIN, Role.TREASURY, Role.CRM):
            key = apikeys.generate()
            await api_keys.create(conn, "default", key=key, role=role, name=f"test-{role}")
            keys[role], made[role] = key.text, key
        crm.secret = new_secret()
        # An admin key's subscription: it gets the events of every invoice.
        await subscriptions.create(
            conn, "default", owner=made[Role.ADMIN].key_id, url=crm.url, event_types=["*"],
            public_jwk=public(crm.keys[0]), jwks_url=None, kid="crm-ec-1", secret=crm.secret)
    finally:
        await conn.close()
    return keys


async def test_two_servers_two_workers_two_dispatchers_lose_double_and_redecide_nothing(
        migrated_database_url: str, crm: Receiver, tmp_path: Path) -> None:
    database_url = migrated_database_url
    keys = await _keys_and_subscription(database_url, crm)
    group = Processes(tmp_path)
    try:
        servers = [group.serve(f"serve-{n}", database_url) for n in range(2)]
        for n in range(2):
            group.run(f"worker-{n}", "worker", "--database-url", database_url,
                      env=_env(reconcile_batch=5, reconcile_poll=0.5))
            group.run(f"dispatch-{n}", "dispatch", "--database-url", database_url,
                      env=_env(webhook_concurrency=8))
        for server in servers:
            await asyncio.to_thread(server.wait_ready)

        async def call(server: Server, method: str, path: str, role: Role,
                       body: bytes | None = None,
                       content_type: str = "application/octet-stream") -> tuple[int, Any]:
            return await asyncio.to_thread(server.request, method, path, key=keys[role],
                                           body=body, content_type=content_type)

        invoices = _invoices()
        half = len(invoices) // 2
        # Invoices through both servers, while statements arrive through both: every
        # statement twice at once (the same bytes, and another document of it).
        uploads = []
        for n, (document, twin) in enumerate(_statements()):
            uploads += [call(servers[n % 2], "POST", "/v1/statements", Role.TREASURY, document),
                        call(servers[(n + 1) % 2], "POST", "/v1/statements", Role.TREASURY,
                             document),
                        call(servers[n % 2], "POST", "/v1/statements", Role.TREASURY, twin)]
        answers = await asyncio.gather(
            call(servers[0], "PUT", "/v1/invoices", Role.CRM,
                 json.dumps(invoices[:half]).encode(), "application/json"),
            *uploads,
            call(servers[1], "PUT", "/v1/invoices", Role.CRM,
                 json.dumps(invoices[half:]).encode(), "application/json"))
        for status, body in answers:
            assert status in (200, 201), body

        async def settled() -> bool:
            status, body = await call(servers[0], "GET", "/v1/reconcile", Role.ADMIN)
            return status == 200 and body["status"] == "idle"

        deadline = asyncio.get_running_loop().time() + 180
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, group.logs()
            await asyncio.sleep(0.1)  # polling interval

        conn = await asyncpg.connect(database_url)
        try:
            lines = await conn.fetchval("SELECT count(*) FROM transactions")
            doubled = await conn.fetch(
                "SELECT bank_reference FROM transactions GROUP BY bank_reference"
                " HAVING count(*) > 1")
            invoices_state = await conn.fetch(
                "SELECT invoice_id, amount, settled_amount, status FROM invoices")
            live = await conn.fetch(
                "SELECT entry_id, count(*) AS n FROM allocations"
                " WHERE status IN ('proposed', 'applied') GROUP BY entry_id")
            events = await conn.fetch(
                "SELECT type, count(*) AS n FROM events GROUP BY type")
            total_events = await conn.fetchval("SELECT count(*) FROM events")
        finally:
            await conn.close()
        assert lines == STATEMENTS * PER_STATEMENT and doubled == []
        assert all(r["status"] == "paid" and r["settled_amount"] == r["amount"]
                   for r in invoices_state), invoices_state
        assert len(live) == STATEMENTS * PER_STATEMENT and all(r["n"] == 1 for r in live)
        counted = {r["type"]: r["n"] for r in events}
        assert counted["invoice.paid"] == STATEMENTS * PER_STATEMENT
        assert counted["payment.received"] == STATEMENTS * PER_STATEMENT
        assert counted["statement.imported"] == 2 * STATEMENTS  # each statement's twin too

        await eventually(lambda: len({e["id"] for e in crm.verified()}) >= total_events,
                         what=f"every event at the CRM\n{group.logs()}", timeout=180)
        got = crm.verified()
        assert len(got) == total_events, Counter(e["id"] for e in got).most_common(3)
        assert not crm.overlaps
        for lane, numbers in chained(got).items():
            assert numbers == list(range(1, len(numbers) + 1)), lane
    finally:
        codes = group.stop()
    assert all(code == 0 for code in codes), (codes, group.logs())
