"""The service commands: serve, dispatch, import, invoices import, demo (keys: keys_cli).

Each takes ``--data-dir`` / ``--database-url`` / ``--config`` (see gateway.settings for the
precedence); without a database URL they start, or join, the embedded server of the data
folder. Each says on standard error which database it uses; ``serve`` says where it
listens once it does.
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
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from aiohttp import web

from gateway import keyring_start, logs
from gateway.api_invoices import screen
from gateway.app import create_app
from gateway.delivery import Dispatcher, Policy
from gateway.demo import demo
from gateway.ingest_files import ingest_path
from gateway.inputs import input_files
from gateway.migrate import migrate
from gateway.options import (
    DEMO_DATA_DIR,
    CommandError,
    add_database_options,
    connected,
    database_label,
    settings_of,
    with_database,
)
from gateway.progress import Progress
from gateway.reconcile import ReconcileResult, reconcile
from gateway.settings import Settings, SettingsError
from gateway.store import api_keys
from gateway.store import invoices as invoice_store
from gateway.store.audit import system_actor
from matching.invoices import RecordError, read_invoices_csv
from parsers.errors import ParseError
from security.roles import Role

logger = logging.getLogger(__name__)


def _webhook_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"allow_private_webhooks": True if args.allow_private_webhooks else None}


def listening_message(settings: Settings, database: str) -> str:
    """What ``serve`` says once it listens: the address to call, and on which database."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    try:
        version = metadata.version("recon-gateway")
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    return (f"recon-gateway {version} listening on http://{host}:{settings.port} "
            f"(API description: /openapi.json), on {database}; Ctrl-C stops it\n")


def serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = settings_of(args, host=args.host, port=args.port, **_webhook_options(args),
                           dispatcher=False if args.no_dispatcher else None)
    database = database_label(settings)
    settings = with_database(settings, err)
    logs.configure(settings.log_level, settings.log_format)
    logger.info("starting with settings %s", json.dumps(settings.public(), default=str))
    keyring_start.ready(settings)

    def listening(*_: object) -> None:  # aiohttp calls it once every socket listens
        err.write(listening_message(settings, database))
        err.flush()

    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                shutdown_timeout=settings.shutdown_timeout, access_log=None,
                print=listening, handle_signals=True)
    return 0


def _background(settings: Settings,
                work: Callable[[asyncpg.Pool, asyncio.Event], Awaitable[None]]) -> int:
    """Run ``work`` (a dispatcher, a reconcile worker) on a migrated database until SIGTERM
    or SIGINT sets its stop event, or it returns."""
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
                await keyring_start.open_keyring(conn, settings)
            await work(pool, stop)
        finally:
            await pool.close()

    asyncio.run(run())
    return 0


def migrate_database(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Apply the migrations not yet applied, and exit (every command does it at start; this
    one lets the owner role run them, docs/operations.md)."""
    settings = with_database(settings_of(args), err)

    async def done(conn: asyncpg.Connection) -> int:
        version: int = await conn.fetchval(
            "SELECT coalesce(max(version), 0) FROM schema_migrations")
        return version

    version = asyncio.run(connected(settings, done))
    out.write(f"database ready at schema version {version}\n")
    return 0


def dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Deliver webhooks only (no HTTP API), until SIGTERM or SIGINT."""
    settings = with_database(settings_of(args, **_webhook_options(args)), err)
    logs.configure(settings.log_level, settings.log_format)
    policy = Policy.of(settings)

    async def deliver(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        await Dispatcher(pool, policy).run(stop)

    return _background(settings, deliver)


def worker(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Reconcile in the background only (no HTTP API), until SIGTERM or SIGINT; with
    ``--once``, until nothing waits."""
    from gateway.work.reconcile import ReconcileWorker

    settings = with_database(settings_of(args), err)
    logs.configure(settings.log_level, settings.log_format)

    async def match(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        reconciler = ReconcileWorker(pool, batch=settings.reconcile_batch,
                                     poll=settings.reconcile_poll)
        if args.once:
            rounds = await reconciler.drain()
            out.write(f"{rounds} round(s) of matching; nothing waits\n")
        else:
            logger.info("reconcile worker started")
            await reconciler.run(stop)

    return _background(settings, match)


def import_files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Import statement files (folders: every file under them), each in a transaction of
    its own, then reconcile once. While standard error is a terminal, a progress line there
    says which file is at which step (parsing, storing N lines, reconciling)."""
    files, problems = input_files(args.files)
    for problem in problems:
        err.write(f"error: {problem}\n")
    if not files:
        return 1
    settings = with_database(settings_of(args), err)
    failures = len(problems)

    async def work(conn: asyncpg.Connection, progress: Progress) -> None:
        nonlocal failures
        for number, path in enumerate(files, 1):
            at = f"import {number} of {len(files)}: {path.name}"
            progress.update(f"{at}: parsing")

            def step(text: str, at: str = at) -> None:
                progress.update(f"{at}: {text}")

            try:  # read as it streams: a file of any size costs no memory
                result = await ingest_path(conn, path, source=str(path),
                                           tenant=settings.tenant, strict=args.strict,
                                           max_bytes=settings.max_statement_bytes,
                                           progress=step)
            except ParseError as exc:  # unreadable files too ("cannot read the file: ...")
                failures += 1
                progress.note(f"error: {exc}")
                continue
            progress.clear()  # standard output may be the same terminal
            known = " (document already imported)" if result.document_known else ""
            out.write(f"{path}: {len(result.statements)} statement(s), "
                      f"{result.entries_new} new entries, {result.entries_known} known{known}\n")
            for statement in result.statements:
                for flag in statement.flags:
                    out.write(f"  ! {statement.statement_id or statement.statement_pk}: "
                              f"{flag['code']}: {flag['message']}\n")
            out.flush()
        progress.update("reconciling")
        reconciled = await reconcile(conn, settings.tenant, progress=lambda done, total:
                                     progress.update(f"reconciling: {done} of {total} "
                                                     f"payments stored"))
        progress.clear()
        _report(out, reconciled)

    with Progress(err) as progress:
        asyncio.run(connected(settings, lambda conn: work(conn, progress)))
    if failures:
        err.write(f"{failures} of {len(files) + len(problems)} input(s) failed\n")
    return 1 if failures else 0


def invoices_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)
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
                    conn, settings.tenant, invoices, owner=owner, claim=True,
                    actor=system_actor("invoices import"))
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

    return asyncio.run(connected(settings, work))


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

    migrate_parser = commands.add_parser(
        "migrate", help="bring the database schema up to date, and exit",
        description="Apply the migrations this version has and the database has not (every "
        "command does so when it starts). In production, run it as the role that owns the "
        "schema, and the service as a role that does not (docs/operations.md).")
    add_database_options(migrate_parser)
    migrate_parser.set_defaults(run=migrate_database)

    dispatch_parser = commands.add_parser(
        "dispatch", help="deliver webhooks (several dispatchers may run at once)")
    add_database_options(dispatch_parser)
    _add_webhook_options(dispatch_parser)
    dispatch_parser.set_defaults(run=dispatch)

    worker_parser = commands.add_parser(
        "worker", help="match payments and invoices in the background (several may run)",
        description="Match what imports and invoice changes queued: new payments against "
        "the open invoices, changed invoices and customers against the unallocated "
        "payments. serve runs such workers itself (setting reconcile_workers); more may run "
        "as processes of their own, on one machine or several, sharing the database.")
    add_database_options(worker_parser)
    worker_parser.add_argument("--once", action="store_true",
                               help="match what waits now, then exit")
    worker_parser.set_defaults(run=worker)

    import_parser = commands.add_parser(
        "import", help="import statement files into the database",
        description="Import statement files, or every file under folders (hidden ones "
        "skipped), as POST /v1/statements does: each file stored whole or not at all, lines "
        "already stored never stored twice; then reconcile. Bad files are listed on "
        "standard error and the others still imported (exit status 1).")
    add_database_options(import_parser)
    import_parser.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    import_parser.add_argument("--strict", action="store_true",
                               help="refuse statements whose balances do not add up")
    import_parser.set_defaults(run=import_files)

    demo_parser = commands.add_parser(
        "demo", help="run the service on the embedded database with demo data and a demo key",
        description=f"Run the service with demo customers, invoices and statements, and a "
        f"new admin key for the demo. Its data lives in its own folder ({DEMO_DATA_DIR} "
        f"unless --data-dir, RECON_DATA_DIR or a configuration file names another), apart "
        f"from the ./recon-data of the other commands.")
    add_database_options(demo_parser, data_dir=DEMO_DATA_DIR)
    demo_parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    demo_parser.add_argument("--port", type=int, help="listen port (default 8080)")
    demo_parser.set_defaults(run=demo)

    invoices = commands.add_parser("invoices", help="manage invoices")
    invoices.set_defaults(help_of=invoices)
    invoice_commands = invoices.add_subparsers(dest="invoices_command", metavar="ACTION")
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
        except BrokenPipeError:
            raise  # the reader went away: the caller stops quietly
        except SettingsError as exc:
            err.write(f"error: {exc}\n")
            return 2
        except CommandError as exc:
            err.write(f"error: {exc}\n")
            return 1
        except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
            err.write(f"error: {type(exc).__name__}: {exc}\n")
            return 1
    return wrapper

