"""The HTTP application: ``create_app(settings) -> web.Application``.

The asyncpg pool lives in ``cleanup_ctx`` under ``POOL``; handlers reach the database only
through it. Middlewares, outermost first: request id and access log, problem rendering,
a URL length check, authentication and query parameters against the route table.

The HTTP parser is let read request lines up to ``MAX_REQUEST_LINE`` so that a URL longer
than ``MAX_URL`` reaches ``url_middleware`` and is refused as a 414 problem document; only a
request line beyond ``MAX_REQUEST_LINE`` is still cut off by aiohttp itself (a plain 400).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from gateway import (  # noqa: F401 - importing them registers their routes
    access_log,
    api_audit,
    api_invoices,
    api_matches,
    api_statements,
    api_system,
    api_webhooks,
)
from gateway.appkeys import METRICS, POOL, SETTINGS, SUBSCRIBER_KEYS
from gateway.audit_cli import checkpoints_at_intervals, places
from gateway.delivery import Dispatcher, Policy
from gateway.keyring_start import open_keyring
from gateway.logs import request_id
from gateway.metrics import Metrics
from gateway.migrate import migrate
from gateway.problems import Handler, UriTooLong, problem_middleware
from gateway.routes import (
    CALLER,
    PRINCIPAL,
    ROUTE_KEY,
    add_routes,
    auth_middleware,
    query_middleware,
)
from gateway.settings import Settings
from gateway.store import api_keys
from gateway.webhook_http import SubscriberKeys, session
from gateway.work.engines import Engines
from gateway.work.reconcile import ReconcileWorker

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_URL = 8192
MAX_REQUEST_LINE = 1024 * 1024


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id for every request (the client's if sane), timing, metrics, access log."""
    given = request.headers.get("X-Request-ID", "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        elapsed = time.perf_counter() - started
        info = request.match_info.route
        declared = getattr(info.handler, ROUTE_KEY, None) if info else None
        route_name = declared.path if declared else "(unmatched)"
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route_name, str(status)).inc()
        metrics.latency.labels(request.method, route_name).observe(elapsed)
        access_log.request(
            request.method, access_log.shown_path(request.path, declared, request.match_info)
            + access_log.shown_query(request.query, declared), status, elapsed * 1000,
            request.get(CALLER), rid)
        request_id.reset(token)


@web.middleware
async def url_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route takes a URL longer than MAX_URL: refuse it before anything reads it."""
    if len(request.raw_path) > MAX_URL:
        raise UriTooLong(f"the URL is {len(request.raw_path)} characters long; "
                         f"at most {MAX_URL}")
    return await handler(request)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.database_url:
        raise RuntimeError("create_app needs settings.database_url (serve starts one)")
    # Our list queries take optional filters (``$3 IS NULL OR account_id = $3``): a plan
    # made for the values at hand uses the right index, a generic one scans the table.
    pool = await asyncpg.create_pool(settings.database_url, min_size=settings.pool_min_size,
                                     max_size=settings.pool_max_size,
                                     server_settings={"plan_cache_mode": "force_custom_plan"})
    async with pool.acquire() as conn:
        version = await migrate(conn)
        await open_keyring(conn, settings)
    logger.info("database ready at schema version %d", version)
    app[POOL] = pool

    async def lookup(key_id: str) -> asyncpg.Record | None:
        async with pool.acquire() as conn:
            return await api_keys.find_active(conn, key_id)

    app[PRINCIPAL] = lookup
    yield
    await pool.close()


async def _webhooks(app: web.Application) -> AsyncIterator[None]:
    """Subscribers' keys for the API (JWKS fetches, the feed), and the dispatcher."""
    settings = app[SETTINGS]
    policy = Policy.of(settings)
    http = session(allow_private=settings.allow_private_webhooks, limit=8)
    app[SUBSCRIBER_KEYS] = SubscriberKeys(http, ttl=settings.jwks_cache_seconds,
                                          timeout=settings.webhook_timeout,
                                          allow_private=settings.allow_private_webhooks)
    stop = asyncio.Event()
    task = None
    if settings.dispatcher:
        task = asyncio.create_task(
            Dispatcher(app[POOL], policy, metrics=app[METRICS]).run(stop))
    yield
    stop.set()
    if task is not None:
        await task
    await http.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """The reconcile workers of this process (setting ``reconcile_workers``)."""
    settings = app[SETTINGS]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(ReconcileWorker(
        app[POOL], batch=settings.reconcile_batch, poll=settings.reconcile_poll,
        metrics=app[METRICS], engines=engines).run(stop))
        for engines in [Engines()] for _ in range(settings.reconcile_workers)]
    yield
    stop.set()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _audit_checkpoints(app: web.Application) -> AsyncIterator[None]:
    """Signed checkpoints of the audit trail at intervals (``audit_checkpoint_interval``)."""
    settings = app[SETTINGS]
    stop = asyncio.Event()
    task = None
    if settings.audit_checkpoint_interval > 0:
        where = places(settings, argparse.Namespace())
        task = asyncio.create_task(checkpoints_at_intervals(
            app[POOL], where, settings.audit_checkpoint_interval, stop))
    yield
    stop.set()
    if task is not None:
        await task


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_middleware, problem_middleware, url_middleware,
                     auth_middleware, query_middleware],
        handler_args={"max_line_size": MAX_REQUEST_LINE},
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics.create()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_webhooks)
    app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(_audit_checkpoints)
    add_routes(app)
    return app
