"""``recon-gateway demo``: the service on the embedded database, with something in it.

Loads demo customers, invoices and bank statements (from ``gateway/demo_data``), creates
an admin key for the demo, prints what to call next, and serves until interrupted.
Loading is idempotent: running the demo twice stores nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from importlib import resources
from typing import TextIO

import asyncpg
from aiohttp import web

from gateway import logs
from gateway.app import create_app
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.options import settings_of, with_database
from gateway.reconcile import reconcile
from gateway.settings import Settings
from gateway.store import api_keys
from gateway.store import invoices as invoice_store
from matching.invoices import Customer, read_customer, read_invoices_csv
from security import apikeys
from security.roles import Role

DEMO_KEY_NAME = "demo"


async def load(settings: Settings) -> tuple[str, list[str]]:
    """Load the demo data; return a fresh demo admin key and one line per thing loaded."""
    data = resources.files("gateway.demo_data")
    report = []
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        customers = [read_customer(record, i) for i, record in enumerate(
            json.loads(data.joinpath("customers.json").read_text(encoding="utf-8")), 1)]
        invoices, errors = read_invoices_csv(
            data.joinpath("invoices.csv").read_text(encoding="utf-8"))
        if errors or not all(isinstance(c, Customer) for c in customers):
            raise RuntimeError(f"the demo data is broken: {errors or customers}")
        async with conn.transaction():
            await invoice_store.upsert_customers(
                conn, settings.tenant, [c for c in customers if isinstance(c, Customer)])
            created, _ = await invoice_store.upsert(conn, settings.tenant, invoices)
        report.append(f"{len(customers)} customers, {len(invoices)} invoices "
                      f"({created} new)")
        for item in sorted(data.joinpath("statements").iterdir(), key=lambda p: p.name):
            result = await ingest(conn, item.read_bytes(), source=f"demo/{item.name}",
                                  tenant=settings.tenant)
            report.append(f"statement {item.name}: {result.entries_new} new entries, "
                          f"{result.entries_known} known")
        reconciled = await reconcile(conn, settings.tenant)
        if reconciled.payments:
            report.append(f"reconciliation of {reconciled.payments} payments: "
                          f"{reconciled.auto} automatic, {reconciled.review} to review, "
                          f"{reconciled.unmatched} unmatched")
        await api_keys.revoke(conn, settings.tenant, DEMO_KEY_NAME)
        key = apikeys.generate()
        await api_keys.create(conn, settings.tenant, key=key, role=Role.ADMIN,
                              name=DEMO_KEY_NAME)
    finally:
        await conn.close()
    return key.text, report


def demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = settings_of(args, host=args.host, port=args.port)
    if args.data_dir is None and settings.data_dir == Settings().data_dir:
        settings = dataclasses.replace(settings, data_dir="./recon-demo")
    # A demo runs on one machine: its CRM is on loopback, over plain http.
    settings = dataclasses.replace(settings, allow_private_webhooks=True)
    settings = with_database(settings)
    key, report = asyncio.run(load(settings))
    base = f"http://{settings.host}:{settings.port}"
    auth = f'-H "Authorization: Bearer {key}"'
    out.write("\n".join([
        "recon-gateway demo",
        *(f"  loaded {line}" for line in report),
        "",
        f"  API        {base}/openapi.json",
        f"  demo key   {key}   (admin; replaced each time the demo starts)",
        "",
        "  try:",
        f"    curl -s {auth} {base}/v1/accounts",
        f"    curl -s {auth} '{base}/v1/transactions?limit=5'",
        f"    curl -s {auth} '{base}/v1/invoices?status=open'",
        f"    curl -s {auth} '{base}/v1/matches?decision=review&status=proposed'",
        f"    curl -s {auth} --data-binary @statement.sta {base}/v1/statements",
        "",
        "  webhooks (docs/webhooks.md; examples/crm_receiver.py is a receiver):",
        f"    curl -s {auth} -H 'Content-Type: application/json' {base}/v1/subscriptions \\",
        "      -d '{\"url\": \"http://127.0.0.1:9000/\", \"event_types\": [\"*\"], "
        "\"public_jwk\": {...}}'",
        f"    curl -s {auth} -H 'Content-Type: application/json' "
        f"{base}/v1/subscriptions/SUB_ID/replay -d '{{\"since\": \"2000-01-01T00:00:00Z\"}}'",
        "    (the replay sends the events of the demo's data, which was loaded before you "
        "subscribed)",
        "",
        "  Ctrl-C stops the service and its embedded database.",
        "",
    ]) + "\n")
    out.flush()
    logs.configure("WARNING")
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                shutdown_timeout=settings.shutdown_timeout, access_log=None, print=None)
    return 0
