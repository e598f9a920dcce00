"""GET /v1/audit: the tenant's audit trail, paged by seq and filtered, with the result of the
last ``recon-gateway audit verify`` (docs/audit.md). Compliance staff, auditors and admins
read it; no one changes it through the API."""

from __future__ import annotations

from aiohttp import web

from gateway.appkeys import POOL
from gateway.openapi import page_parameters
from gateway.params import CursorKind, instant_param, limit_of, sort_key
from gateway.request_schemas import INSTANT, query_text
from gateway.routes import current_principal, route
from gateway.store import audit as store
from security.roles import Role

AUDIT_READERS = frozenset({Role.ADMIN, Role.COMPLIANCE, Role.AUDITOR})
ENTRIES = sort_key(seq=CursorKind.INT)

_JSON = {"description": "any JSON value (amounts as decimal strings; sensitive values only "
                        "as references)"}
_ENTRY = {"type": "object", "required": ["v", "seq", "time", "actor", "action", "object",
                                         "before", "after", "prev", "hash"],
          "description": "an entry exactly as hashed (docs/audit.md, An entry)",
          "properties": {
              "v": {"const": 1}, "seq": {"type": "integer", "minimum": 1},
              "time": {"type": "string"},
              "actor": {"type": "object", "required": ["type", "id"], "properties": {
                  "type": {"enum": ["api_key", "user", "system"]}, "id": {"type": "string"},
                  "name": {"type": "string"}}},
              "action": {"type": "string"},
              "object": {"type": "object", "required": ["type", "id"], "properties": {
                  "type": {"type": "string"}, "id": {"type": "string"}}},
              "before": _JSON, "after": _JSON,
              "prev": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
              "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}
_VERIFICATION = {
    "description": "the last `recon-gateway audit verify` of the tenant's chain; null: never "
                   "verified", "oneOf": [{"type": "null"}, {
                       "type": "object",
                       "required": ["verified_at", "entries", "head_seq", "ok", "problem"],
                       "properties": {
                           "verified_at": {"type": "string"},
                           "entries": {"type": "integer"}, "head_seq": {"type": "integer"},
                           "ok": {"type": "boolean"},
                           "problem": {"oneOf": [{"type": "null"}, {
                               "type": "object", "required": ["seq", "kind", "detail"],
                               "properties": {
                                   "seq": {"type": ["integer", "null"]},
                                   "kind": {"type": "string"},
                                   "detail": {"type": "string"}}}]}}}]}


@route("GET", "/v1/audit", roles=AUDIT_READERS,
       summary="The audit trail: every state change, who made it, before and after; and the "
               "last verification of the chain",
       parameters=page_parameters(ENTRIES) + [
           {"name": "action", "in": "query",
            "schema": query_text("only this action, e.g. allocation.accepted")},
           {"name": "object_type", "in": "query",
            "schema": query_text("only objects of this type, e.g. invoice")},
           {"name": "object_id", "in": "query", "schema": query_text("only this object id")},
           {"name": "actor", "in": "query",
            "schema": query_text("only this actor's id (an API key's id, or a command's)")},
           {"name": "since", "in": "query", "schema": {
               **INSTANT, "description": "entries at or after this time; " +
               INSTANT["description"]}},
           {"name": "until", "in": "query", "schema": {
               **INSTANT, "description": "entries before this time; " +
               INSTANT["description"]}}],
       responses={"200": {"description": "a page of entries in seq order", "content": {
           "application/json": {"schema": {
               "type": "object", "required": ["items", "next_cursor", "verification"],
               "properties": {"items": {"type": "array", "items": _ENTRY},
                              "next_cursor": {"type": ["string", "null"]},
                              "verification": _VERIFICATION}}}}}},
       errors=("400",))
async def list_audit(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = ENTRIES.read(request)
    filters = store.Filters(
        action=request.query.get("action"), object_type=request.query.get("object_type"),
        object_id=request.query.get("object_id"), actor_id=request.query.get("actor"),
        since=instant_param(request, "since"), until=instant_param(request, "until"))
    tenant = current_principal(request).tenant
    async with request.app[POOL].acquire() as conn:
        rows = await store.page(conn, tenant, filters, after=after[0] if after else 0,
                                limit=limit + 1)
        verification = await store.last_verification(conn, tenant)
    return web.json_response({**ENTRIES.page(rows, limit), "verification": verification})
