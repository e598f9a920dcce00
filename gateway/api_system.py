"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.appkeys import METRICS, POOL
from gateway.openapi import openapi_document
from gateway.problems import Unavailable
from gateway.routes import route
from security.roles import Role

READY_TIMEOUT = 2.0


@route("GET", "/healthz", roles=None, summary="The process is alive",
       responses={"200": {"description": "alive"}})
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@route("GET", "/readyz", roles=None, summary="The service can reach its database",
       responses={"200": {"description": "ready"}}, errors=("503",))
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with request.app[POOL].acquire() as conn:
                await conn.fetchval("SELECT 1")
    except Exception as exc:  # any failure to answer SELECT 1 in time means not ready
        raise Unavailable(f"database not reachable ({type(exc).__name__})") from exc
    return web.json_response({"status": "ready"})


@route("GET", "/metrics", roles=frozenset({Role.ADMIN, Role.AUDITOR}),
       summary="Prometheus metrics",
       responses={"200": {"description": "metrics in the Prometheus text format",
                          "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@route("GET", "/openapi.json", roles=None, summary="This API's OpenAPI 3.1 document",
       responses={"200": {"description": "the document"}})
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
