"""``recon-gateway demo``: the service on the embedded database, with something in it.

Loads demo customers, invoices and bank statements (from ``gateway/demo_data``), creates
an admin key for the demo, writes into the demo's folder what its commands send (the next
day's statement, a CRM's key and subscription), prints what to call next, and serves until
interrupted. Loading is idempotent: running the demo twice stores nothing twice.

The data gives every decision something to work on: payments matched automatically (one
paid in another currency than its invoice, one an instalment), two the engine is unsure
of (one to accept, one to reject), one nothing fits, and automatic ones to undo. The
banner names the ids to try them on, read from the database, so it stays true when the
demo starts again after decisions were taken; every command it prints works as printed
from the folder the demo was started in (a test runs each against a live demo).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from aiohttp import web
from joserfc.jwk import ECKey

from gateway import keyring_start, logs
from gateway.app import create_app
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.options import settings_of, with_database
from gateway.reconcile import reconcile
from gateway.settings import Settings
from gateway.store import allocations, api_keys
from gateway.store import invoices as invoice_store
from gateway.store.audit import system_actor
from matching.invoices import Customer, read_customer, read_invoices_csv
from security import apikeys
from security.roles import Role

logger = logging.getLogger(__name__)

DEMO_KEY_NAME = "demo"
CRM_PORT = 9000
# The next day's statement of Muster Bank: not loaded, written to the demo's folder for
# the user to send, so new payments are seen matched as they arrive.
UPLOAD = "muster-bank-2026-11-21.sta"
CRM_KEY = "crm-key.json"
SUBSCRIPTION = "subscription.json"
# The nordbank statement of the 21st holds the payments of every kind of decision.
DECISIONS_STATEMENT = "nordbank-2026-11-21.camt.xml"
# Invoices the demo's story is about (gateway/demo_data/invoices.csv).
TO_ACCEPT = "INV-2026-1188"     # Globex paid it without a reference; the bank misspelt the name
TO_REJECT = "INV-2026-0315"     # a caterer of a similar name paid the same amount
TO_UNDO = "INV-2026-0042"       # ACME's, matched automatically
FX_INVOICE = "INV-2026-0520"    # in USD, paid into a EUR account
INSTALMENT = "INV-2026-0610"    # 9,000.00 EUR paid in parts


@dataclass(frozen=True, slots=True)
class Tryouts:
    """Where each kind of decision can be tried, as the database holds it now."""

    accept: int | None             # a proposed allocation (review) to accept
    reject: int | None             # one to reject
    undo: int | None               # an applied automatic allocation
    decisions_statement: int | None  # statement_pk of DECISIONS_STATEMENT


@dataclass(frozen=True, slots=True)
class Loaded:
    key: str
    key_id: str
    report: list[str]
    tryouts: Tryouts


@dataclass(frozen=True, slots=True)
class DemoFiles:
    """What the demo wrote into its folder for the banner's commands to send."""

    upload: Path        # the next day's statement
    crm_key: Path       # the demo CRM's private JWK (for examples/crm_receiver.py)
    subscription: Path  # a POST /v1/subscriptions body with its public key
    crm_port: int


async def _first_allocation(conn: asyncpg.Connection, tenant: str, *, invoice_id: str | None,
                            decision: str, status: str) -> int | None:
    rows = await allocations.list_page(conn, tenant, decision=decision, status=status,
                                       invoice_id=invoice_id, after=None, limit=1)
    return int(rows[0]["allocation_id"]) if rows else None


async def tryouts(conn: asyncpg.Connection, tenant: str,
                  decisions_statement: int | None) -> Tryouts:
    """The allocations to try accept, reject and undo on, as they stand now (None for a
    decision already taken in an earlier run)."""
    undo = await _first_allocation(conn, tenant, invoice_id=TO_UNDO, decision="auto",
                                   status="applied") \
        or await _first_allocation(conn, tenant, invoice_id=None, decision="auto",
                                   status="applied")
    return Tryouts(
        accept=await _first_allocation(conn, tenant, invoice_id=TO_ACCEPT, decision="review",
                                       status="proposed"),
        reject=await _first_allocation(conn, tenant, invoice_id=TO_REJECT, decision="review",
                                       status="proposed"),
        undo=undo, decisions_statement=decisions_statement)


async def load(settings: Settings) -> Loaded:
    """Load the demo data; return a fresh demo admin key, one line per thing loaded, and
    the allocations to try decisions on."""
    data = resources.files("gateway.demo_data")
    report = []
    decisions_statement = None
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
                conn, settings.tenant, [c for c in customers if isinstance(c, Customer)],
                actor=system_actor("demo"))
            created, _ = await invoice_store.upsert(conn, settings.tenant, invoices,
                                                    actor=system_actor("demo"))
        report.append(f"{len(customers)} customers, {len(invoices)} invoices "
                      f"({created} new)")
        for item in sorted(data.joinpath("statements").iterdir(), key=lambda p: p.name):
            result = await ingest(conn, item.read_bytes(), source=f"demo/{item.name}",
                                  tenant=settings.tenant)
            report.append(f"statement {item.name}: {result.entries_new} new entries, "
                          f"{result.entries_known} known")
            if item.name == DECISIONS_STATEMENT and result.statements:
                decisions_statement = result.statements[0].statement_pk
        reconciled = await reconcile(conn, settings.tenant)
        if reconciled.payments:
            report.append(f"reconciliation of {reconciled.payments} payments: "
                          f"{reconciled.auto} automatic, {reconciled.review} to review, "
                          f"{reconciled.unmatched} unmatched")
        await api_keys.revoke(conn, settings.tenant, DEMO_KEY_NAME, actor=system_actor("demo"))
        key = apikeys.generate()
        await api_keys.create(conn, settings.tenant, key=key, role=Role.ADMIN,
                              name=DEMO_KEY_NAME, actor=system_actor("demo"))
        found = await tryouts(conn, settings.tenant, decisions_statement)
    finally:
        await conn.close()
    return Loaded(key.text, key.key_id, report, found)


def _crm_key(path: Path) -> dict[str, Any]:
    """The demo CRM's private key: the one written before, or a new one."""
    try:
        known: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        ECKey.import_key(known)
        if known.get("d") and known.get("kid"):
            return known
    except (OSError, ValueError, TypeError):
        pass  # none yet, or not a key: a new one
    fresh: dict[str, Any] = ECKey.generate_key(
        "P-256", parameters={"kid": "demo-crm", "use": "enc"}).as_dict(private=True)
    path.write_text(json.dumps(fresh, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return fresh


def write_files(folder: Path, *, crm_port: int = CRM_PORT) -> DemoFiles:
    """Write what the banner's commands send into the demo's folder: the next day's
    statement, the demo CRM's private key (kept from run to run) and a subscription
    request naming its public part."""
    folder.mkdir(parents=True, exist_ok=True)
    upload = folder / UPLOAD
    upload.write_bytes(resources.files("gateway.demo_data").joinpath("upload", UPLOAD)
                       .read_bytes())
    crm_key = folder / CRM_KEY
    private = _crm_key(crm_key)
    public = {k: v for k, v in private.items() if k != "d"}
    subscription = folder / SUBSCRIPTION
    subscription.write_text(json.dumps({
        "url": f"http://127.0.0.1:{crm_port}/", "event_types": ["*"],
        "public_jwk": public}, indent=2) + "\n", encoding="utf-8")
    return DemoFiles(upload, crm_key, subscription, crm_port)


def _relative(path: Path | str) -> str:
    """A path as a command takes it from the current folder: relative where it is below
    it (``recon-demo/x.sta``), else absolute."""
    candidate = Path(path)
    text = str(candidate)  # ./recon-demo/x.sta -> recon-demo/x.sta
    if candidate.is_absolute():
        try:
            relative = os.path.relpath(candidate)
        except ValueError:  # another drive
            relative = text
        if not relative.startswith(".."):
            text = relative
    if "/" not in text:
        text = "./" + text  # a bare name would be looked up on PATH as a command
    return text


def shown(path: Path | str) -> str:
    """A path for a shell command line: relative where it can be, quoted where needed."""
    return shlex.quote(_relative(path))


def curl(key: str, url: str, *, json_body: str | None = None, body_file: Path | None = None,
         content_type: str = "application/octet-stream", post: bool = False) -> str:
    """One curl command line: the key, then a JSON body or a file as the body (with its
    Content-Type: curl would send a form's), then the URL."""
    parts = ["curl -s"]
    if post and json_body is None and body_file is None:
        parts.append("-X POST")
    parts.append("-H " + shlex.quote(f"Authorization: Bearer {key}"))
    if json_body is not None:
        parts.append("-H 'Content-Type: application/json' -d " + shlex.quote(json_body))
    if body_file is not None:
        parts.append("-H " + shlex.quote(f"Content-Type: {content_type}") + " --data-binary "
                     + shlex.quote("@" + _relative(body_file)))
    parts.append(shlex.quote(url))
    return " ".join(parts)


def _receiver() -> Path | None:
    """examples/crm_receiver.py of the checkout this runs from (none when installed)."""
    found = Path(__file__).resolve().parents[1] / "examples" / "crm_receiver.py"
    return found if found.is_file() else None


def banner(base: str, loaded: Loaded, files: DemoFiles) -> str:
    """What the demo prints: what it loaded, its key, and commands to try."""
    key, found = loaded.key, loaded.tryouts
    lines = ["recon-gateway demo", *(f"  loaded {line}" for line in loaded.report), "",
             f"  API        {base}/openapi.json",
             f"  demo key   {key}   (admin, id {loaded.key_id}; replaced each time the "
             f"demo starts)", "",
             "  Look around (each command works as printed, from this folder):",
             "    " + curl(key, f"{base}/v1/accounts"),
             "    " + curl(key, f"{base}/v1/transactions?limit=5"),
             "    " + curl(key, f"{base}/v1/invoices?status=open")]
    if found.decisions_statement is not None:
        lines += ["  the lines of Nordbank's statement of the 21st, each with how far it is "
                  "allocated (nothing open fits the donation of 75.00 EUR: unallocated):",
                  "    " + curl(key, f"{base}/v1/statements/{found.decisions_statement}/lines")]
    lines += [
        f"  an FX payment: {FX_INVOICE} is in USD, paid into a EUR account (the bank reports "
        f"the USD instructed):",
        "    " + curl(key, f"{base}/v1/matches?invoice_id={FX_INVOICE}"),
        f"  an instalment: {INSTALMENT} is partially paid, 3,000.00 of 9,000.00 EUR:",
        "    " + curl(key, f"{base}/v1/invoices/{INSTALMENT}"),
        "  payments the engine was unsure of, waiting for a person:",
        "    " + curl(key, f"{base}/v1/matches?decision=review&status=proposed"), "",
        "  Decide:"]
    if found.accept is not None:
        lines += [f"  accept allocation {found.accept}: 2,200.00 EUR from 'GLOBX CORPORATION "
                  f"LTD' without a reference; Globex's {TO_ACCEPT} is of that amount and the "
                  f"bank misspelt the name:",
                  "    " + curl(key, f"{base}/v1/matches/{found.accept}/accept", post=True)]
    if found.reject is not None:
        lines += [f"  reject allocation {found.reject}: 480.00 EUR from 'Beijing Huaxin "
                  f"Catering', proposed for {TO_REJECT} of 北京华信咨询有限公司 (Beijing Huaxin "
                  f"Consulting): the same amount, another company:",
                  "    " + curl(key, f"{base}/v1/matches/{found.reject}/reject",
                                json_body='{"reason": "another company of a similar name"}')]
    if found.undo is not None:
        lines += [f"  undo allocation {found.undo}, matched automatically (the invoice is "
                  f"open again; the pair never automatic again):",
                  "    " + curl(key, f"{base}/v1/matches/{found.undo}/undo",
                                json_body='{"reason": "trying undo in the demo"}')]
    if found.accept is None or found.reject is None:
        lines.append("  (some were decided in an earlier run: see GET /v1/matches; to start "
                     "afresh, see below)")
    lines += [
        "", "  The next day: Muster Bank's statement of the 21st, written to the demo's "
        "folder; its payments are matched as it arrives (the instalment's rest, an invoice "
        "of ACME):",
        "    " + curl(key, f"{base}/v1/statements?filename={files.upload.name}",
                      body_file=files.upload), "",
        f"  Webhooks (docs/webhooks.md): subscribe a CRM at "
        f"http://127.0.0.1:{files.crm_port}/, whose key the demo wrote to "
        f"{shown(files.crm_key)}:",
        "    " + curl(key, f"{base}/v1/subscriptions", body_file=files.subscription,
                      content_type="application/json"),
        "  the answer holds the subscription's id and its secret (shown once): put them "
        "for SUB_ID and SECRET below."]
    receiver = _receiver()
    if receiver is not None:
        lines += ["  run the example receiver, in another terminal:",
                  f"    {shown(sys.executable)} {shown(receiver)} --port {files.crm_port} "
                  f"--private-jwk {shown(files.crm_key)} --secret SECRET"]
        missing = [m for m in ("standardwebhooks", "jwcrypto") if not _importable(m)]
        if missing:
            lines.append(f"  (it needs: {shown(sys.executable)} -m pip install "
                         f"{' '.join(missing)})")
    lines += [
        "  send it the events of the data loaded before it subscribed:",
        "    " + curl(key, f"{base}/v1/subscriptions/SUB_ID/replay",
                      json_body='{"since": "2000-01-01T00:00:00Z"}'), "",
        f"  Ctrl-C stops the service and its embedded database; to start afresh, stop it "
        f"and delete {shown(files.upload.parent)}.", ""]
    return "\n".join(lines)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = settings_of(args, host=args.host, port=args.port)  # ./recon-demo by default
    # A demo runs on one machine: its CRM is on loopback, over plain http.
    settings = dataclasses.replace(settings, allow_private_webhooks=True)
    # Quiet while loading (the banner reports it); log_format checked before any work.
    logs.configure("WARNING", settings.log_format)
    settings = with_database(settings, err)
    keyring_start.ready(settings)
    loaded = asyncio.run(load(settings))
    files = write_files(Path(settings.data_dir))
    out.write(banner(f"http://{settings.host}:{settings.port}", loaded, files))
    out.flush()
    # From here on, one line per request and per webhook delivery (docs/configuration.md).
    logging.getLogger().setLevel(settings.log_level)
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                shutdown_timeout=settings.shutdown_timeout, access_log=None, print=None)
    return 0
