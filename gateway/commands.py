"""The service commands: serve, import, keys, invoices import, demo.

Each takes ``--data-dir`` / ``--database-url`` / ``--config`` (see gateway.settings for the
precedence); without a database URL they start, or join, the embedded server of the data
folder.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import asyncpg
from aiohttp import web

from gateway import logs
from gateway.api_invoices import screen
from gateway.app import create_app
from gateway.delivery import Dispatcher, Policy
from gateway.demo import demo
from gateway.ingest import ingest
from gateway.migrate import migrate
from gateway.options import add_database_options, settings_of, with_database
from gateway.reconcile import ReconcileResult, reconcile
from gateway.settings import Settings, SettingsError
from gateway.store import api_keys
from gateway.store import invoices as invoice_store
from matching.invoices import RecordError, read_invoices_csv
from parsers.errors import ParseError
from security import apikeys
from security.roles import Role

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def _connected(settings: Settings,
                     work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        return await work(conn)
    finally:
        await conn.close()


def _webhook_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"allow_private_webhooks": True if args.allow_private_webhooks else None}


def serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(
        args, host=args.host, port=args.port, **_webhook_options(args),
        dispatcher=False if args.no_dispatcher else None))
    logs.configure(settings.log_level)
    logger.info("starting with settings %s", json.dumps(settings.public(), default=str))
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                shutdown_timeout=settings.shutdown_timeout, access_log=None, print=None,
                handle_signals=True)
    return 0


def dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Deliver webhooks only (no HTTP API), until SIGTERM or SIGINT."""
    settings = with_database(settings_of(args, **_webhook_options(args)))
    logs.configure(settings.log_level)
    policy = Policy.of(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1,
                                         max_size=settings.pool_max_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            await Dispatcher(pool, policy).run(stop)
        finally:
            await pool.close()

    asyncio.run(run())
    return 0


def import_files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args))
    failures = 0

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal failures
        for name in args.files:
            path = Path(name)
            try:
                data = path.read_bytes()
                result = await ingest(conn, data, source=str(path), tenant=settings.tenant,
                                      strict=args.strict)
            except OSError as exc:
                failures += 1
                err.write(f"error: {path}: cannot read: {exc.strerror}\n")
                continue
            except ParseError as exc:
                failures += 1
                err.write(f"error: {exc}\n")
                continue
            known = " (document already imported)" if result.document_known else ""
            out.write(f"{path}: {len(result.statements)} statement(s), "
                      f"{result.entries_new} new entries, {result.entries_known} known{known}\n")
            for statement in result.statements:
                for flag in statement.flags:
                    out.write(f"  ! {statement.statement_id or statement.statement_pk}: "
                              f"{flag['code']}: {flag['message']}\n")
        _report(out, await reconcile(conn, settings.tenant))

    asyncio.run(_connected(settings, work))
    return 1 if failures else 0


def keys_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args))
    key = apikeys.generate()

    async def work(conn: asyncpg.Connection) -> None:
        await api_keys.create(conn, settings.tenant, key=key, role=Role(args.role),
                              name=args.name)

    asyncio.run(_connected(settings, work))
    out.write(key.text + "\n")  # the key alone on standard output
    err.write(f"created key {key.key_id} ({args.name}, role {args.role}); "
              f"it is shown only this once\n")
    return 0


def keys_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args))

    async def work(conn: asyncpg.Connection) -> int:
        return await api_keys.revoke(conn, settings.tenant, args.key)

    count = asyncio.run(_connected(settings, work))
    if count == 0:
        err.write(f"error: no active key with id or name {args.key!r}\n")
        return 1
    err.write(f"revoked {count} key(s)\n")
    return 0


def invoices_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args))
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        err.write(f"error: {args.file}: cannot read as UTF-8 CSV: {exc}\n")
        return 1
    invoices, errors = read_invoices_csv(text)
    # The same screening as PUT /v1/invoices: invisible characters in ids, amounts too
    # large, dates not exactly YYYY-MM-DD (line numbers count the header).
    rows = list(csv.DictReader(io.StringIO(text)))
    errors = sorted({(e.index, e.field): e for e in [
        *errors, *(RecordError(e.index + 1, e.key, e.field, e.message)
                   for n, row in enumerate(rows, 1) for e in screen(row, n))]}.values(),
        key=lambda e: e.index)
    if errors:
        for error in errors[:100]:
            err.write(f"error: {args.file}: line {error.index}"
                      f"{f' ({error.key})' if error.key else ''}: {error.field}: "
                      f"{error.message}\n")
        err.write(f"{len(errors)} problem(s); nothing was imported\n")
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        owner = None
        if args.key is not None:
            found = await api_keys.active_ids(conn, settings.tenant, args.key, role=Role.CRM)
            if len(found) != 1:
                err.write(f"error: --key {args.key!r} names {len(found)} active crm keys; "
                          f"name exactly one (by id if several share the name)\n")
                return 1
            owner = found[0]
        try:
            async with conn.transaction():
                created, updated = await invoice_store.upsert(
                    conn, settings.tenant, invoices, owner=owner, claim=True)
        except invoice_store.NotOwned as refusal:
            for number, key, field in refusal.refused[:100]:
                err.write(f"error: {args.file}: line {number + 1} ({key}): {field}: "
                          f"belongs to another API key\n")
            err.write(f"{len(refusal.refused)} problem(s); nothing was imported\n")
            return 1
        out.write(f"{args.file}: {len(invoices)} invoices, {created} created, "
                  f"{updated} updated\n")
        _report(out, await reconcile(conn, settings.tenant))
        return 0

    return asyncio.run(_connected(settings, work))


def _report(out: TextIO, result: ReconcileResult) -> None:
    if result.payments:
        out.write(f"reconciled {result.payments} payment(s): {result.auto} automatic, "
                  f"{result.review} to review, {result.unmatched} unmatched\n")


def register(commands: Any) -> None:
    """Add the service commands to the top-level subcommand parser."""
    serve_parser = commands.add_parser("serve", help="run the HTTP API")
    add_database_options(serve_parser)
    serve_parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="listen port (default 8080)")
    _add_webhook_options(serve_parser)
    serve_parser.add_argument("--no-dispatcher", action="store_true",
                              help="serve the API only; run `recon-gateway dispatch` for "
                              "webhooks (env RECON_DISPATCHER=false)")
    serve_parser.set_defaults(run=serve)

    dispatch_parser = commands.add_parser(
        "dispatch", help="deliver webhooks (several dispatchers may run at once)")
    add_database_options(dispatch_parser)
    _add_webhook_options(dispatch_parser)
    dispatch_parser.set_defaults(run=dispatch)

    import_parser = commands.add_parser("import", help="import statement files into the database")
    add_database_options(import_parser)
    import_parser.add_argument("files", nargs="+", metavar="FILE")
    import_parser.add_argument("--strict", action="store_true",
                               help="refuse statements whose balances do not add up")
    import_parser.set_defaults(run=import_files)

    keys = commands.add_parser("keys", help="create and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key and print it (once)")
    add_database_options(create)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.set_defaults(run=keys_create)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or name")
    add_database_options(revoke)
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    revoke.set_defaults(run=keys_revoke)

    demo_parser = commands.add_parser(
        "demo", help="run the service on the embedded database with demo data and a demo key")
    add_database_options(demo_parser)
    demo_parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    demo_parser.add_argument("--port", type=int, help="listen port (default 8080)")
    demo_parser.set_defaults(run=demo)

    invoices = commands.add_parser("invoices", help="manage invoices")
    invoice_commands = invoices.add_subparsers(dest="invoices_command", required=True,
                                               metavar="ACTION")
    imp = invoice_commands.add_parser("import", help="import invoices from CSV "
                                      "(invoice_id,customer_id,customer_name,currency,amount,"
                                      "open_amount,issue_date,due_date,reference)")
    add_database_options(imp)
    imp.add_argument("file", metavar="invoices.csv")
    imp.add_argument("--key", metavar="KEY_ID_OR_NAME",
                     help="import them as this crm key's: new ones, and ones no active key "
                     "owns, become its own; another key's are refused (default: as an "
                     "admin, owning nothing new)")
    imp.set_defaults(run=invoices_import)


def _add_webhook_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-private-webhooks", action="store_true",
                        help="allow webhook targets on private, loopback and link-local "
                        "addresses, and plain http (env RECON_ALLOW_PRIVATE_WEBHOOKS)")


def guarded(run: Callable[[argparse.Namespace, TextIO, TextIO], int]
            ) -> Callable[[argparse.Namespace, TextIO, TextIO], int]:
    """Settings and database start-up errors as one clear line, not a traceback."""
    def wrapper(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        try:
            return run(args, out, err)
        except SettingsError as exc:
            err.write(f"error: {exc}\n")
            return 2
        except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
            err.write(f"error: {type(exc).__name__}: {exc}\n")
            return 1
    return wrapper

