"""The route table: every route with the roles it admits and its OpenAPI description.

A route is declared once, here or in an ``api_*`` module, with ``@route(...)``. The
authentication middleware reads ``roles`` from it; the OpenAPI document is built from
it; a test walks it with every role; ``query_middleware`` refuses query parameters the
route does not declare. ``roles=None`` marks the few public routes (health, readiness, the
OpenAPI document itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.appkeys import POOL
from gateway.limits import MAX_QUERY_VALUE, text_problem
from gateway.problems import BadRequest, Forbidden, Handler, Unauthenticated
from gateway.store import audit
from gateway.store.api_keys import record_use, use_is_due
from security.apikeys import matches, split
from security.roles import Role

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALL_ROLES = frozenset(Role)
READERS = frozenset({Role.ADMIN, Role.TREASURY, Role.COMPLIANCE, Role.AUDITOR})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: RouteHandler
    roles: frozenset[Role] | None
    summary: str
    operation: dict[str, Any] = field(default_factory=dict)  # OpenAPI operation extras

    @property
    def query_names(self) -> frozenset[str]:
        """The query parameters this route takes, as its OpenAPI description declares them."""
        return frozenset(p["name"] for p in self.operation.get("parameters", ())
                         if p.get("in") == "query")


ROUTES: list[Route] = []


def route(method: str, path: str, *, roles: frozenset[Role] | None, summary: str,
          **operation: Any) -> Callable[[RouteHandler], RouteHandler]:
    def register(handler: RouteHandler) -> RouteHandler:
        ROUTES.append(Route(method, path, handler, roles, summary, operation))
        return handler
    return register


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name, role and tenant."""

    key_id: str
    name: str
    role: Role
    tenant: str

    def actor(self) -> dict[str, str]:
        """The caller as the audit trail names it: its key's id and name."""
        return audit.key_actor(self.key_id, self.name)


CALLER = web.RequestKey("caller", Principal)
KeyLookup = Callable[[str], Awaitable[Any]]
PRINCIPAL: web.AppKey[KeyLookup] = web.AppKey("principal_lookup")
ROUTE_KEY = "recon_route"


def current_principal(request: web.Request) -> Principal:
    return request[CALLER]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the bearer key against the route's roles before the handler runs."""
    info = request.match_info.route
    declared: Route | None = getattr(info.handler, ROUTE_KEY, None) if info else None
    if declared is None or declared.roles is None:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    parts = split(token)
    row = await request.app[PRINCIPAL](parts[0]) if parts else None
    if parts is None or row is None or not matches(parts[1], row["secret_sha256"]):
        raise Unauthenticated("the API key is not valid or has been revoked")
    principal = Principal(row["key_id"], row["name"], Role(row["role"]), row["tenant_id"])
    if principal.role not in declared.roles:
        allowed = ", ".join(sorted(r.value for r in declared.roles))
        raise Forbidden(f"role {principal.role.value} may not {request.method} "
                        f"{declared.path}; allowed: {allowed}")
    request[CALLER] = principal
    if use_is_due(row.get("last_used_at")):  # `keys list` shows it; one write a minute
        async with request.app[POOL].acquire() as conn:
            await record_use(conn, principal.key_id)
    return await handler(request)


@web.middleware
async def query_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what no route reads: undeclared or repeated query parameters, and path or
    query values holding NUL, a lone surrogate, or (query) more than MAX_QUERY_VALUE
    characters. A misspelt filter is an error, never an unfiltered answer."""
    info = request.match_info.route
    declared: Route | None = getattr(info.handler, ROUTE_KEY, None) if info else None
    if declared is None:
        return await handler(request)
    for name, value in request.match_info.items():
        problem = text_problem(value)
        if problem:
            raise BadRequest(f"path parameter {name} {problem}")
    names = [name for name, _ in request.query.items()]
    unknown = sorted(set(names) - declared.query_names)
    if unknown:
        allowed = ", ".join(sorted(declared.query_names)) or "none"
        raise BadRequest(f"unknown query parameters {unknown} for {request.method} "
                         f"{declared.path}; allowed: {allowed}")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise BadRequest(f"query parameters given more than once: {repeated}")
    for name, value in request.query.items():
        problem = text_problem(name + value)
        if problem is None and len(value) > MAX_QUERY_VALUE:
            problem = f"is longer than {MAX_QUERY_VALUE} characters"
        if problem:
            raise BadRequest(f"query parameter {name} {problem}")
    return await handler(request)


def add_routes(app: web.Application) -> None:
    for declared in ROUTES:
        async def handler(request: web.Request, _route: Route = declared) -> web.StreamResponse:
            return await _route.handler(request)
        setattr(handler, ROUTE_KEY, declared)
        app.router.add_route(declared.method, declared.path, handler)
