"""The review queue and allocation decisions: /v1/matches."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from gateway import limits
from gateway.appkeys import METRICS, POOL
from gateway.body import read_object
from gateway.decisions import DecisionError, accept, allocate_manually, reject, undo
from gateway.openapi import PAGE_PARAMETERS, page_of
from gateway.params import CursorKind, cursor_of, limit_of, page, path_id
from gateway.problems import BadRequest, NotFound, Unprocessable
from gateway.reconcile import reconcile
from gateway.routes import READERS, Principal, current_principal, route
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from parsers.money import MoneyError, parse_decimal
from security.roles import Role

DECIDERS = frozenset({Role.ADMIN, Role.TREASURY})
_ONE = {"200": {"description": "the allocation", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Allocation"}}}}}


def who(principal: Principal) -> str:
    return f"{principal.name} (key {principal.key_id})"


def _allocation_id(request: web.Request) -> int:
    return path_id(request, "allocation_id", "allocation")


async def _decide(request: web.Request, action: str) -> web.Response:
    principal = current_principal(request)
    allocation_id = _allocation_id(request)
    body = await read_object(request, fields=("reason",), optional=True)
    note = body.get("reason")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise BadRequest("reason must be a string of at most 500 characters")
    if action == "undo" and not (note and note.strip()):
        raise BadRequest("undo needs a reason: send {\"reason\": \"...\"}")
    async with request.app[POOL].acquire() as conn:
        try:
            if action == "accept":
                result = await accept(conn, principal.tenant, allocation_id, by=who(principal))
            elif action == "reject":
                result = await reject(conn, principal.tenant, allocation_id, by=who(principal),
                                      note=note)
            else:
                result = await undo(conn, principal.tenant, allocation_id, by=who(principal),
                                    note=str(note))
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except DecisionError as exc:
            raise Unprocessable(str(exc)) from None
    return web.json_response(result)


@route("GET", "/v1/matches", roles=READERS | {Role.TREASURY},
       summary="Allocations: the review queue (decision=review&status=proposed) and decisions",
       parameters=PAGE_PARAMETERS + [
           {"name": "decision", "in": "query", "schema": {"enum": ["auto", "review", "manual"]}},
           {"name": "status", "in": "query",
            "schema": {"enum": ["proposed", "applied", "rejected", "undone"]}},
           {"name": "invoice_id", "in": "query", "schema": {"type": "string"}}],
       responses={"200": {"description": "a page of allocations", "content": {
           "application/json": {"schema": page_of("Allocation")}}}}, errors=("400",))
async def list_matches(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = cursor_of(request, 1, kinds=(CursorKind.INT,))
    decision = request.query.get("decision")
    status = request.query.get("status")
    if decision not in (None, "auto", "review", "manual"):
        raise BadRequest(f"decision must be auto, review or manual, got {decision!r}")
    if status not in (None, "proposed", "applied", "rejected", "undone"):
        raise BadRequest(f"unknown status {status!r}")
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_page(conn, current_principal(request).tenant, decision=decision,
                                     status=status, invoice_id=request.query.get("invoice_id"),
                                     after=after[0] if after else None, limit=limit + 1)
    return web.json_response(page(rows, limit, ["allocation_id"]))


@route("POST", "/v1/matches/{allocation_id}/accept", roles=DECIDERS,
       summary="Accept a proposed allocation: it is applied to the invoice",
       responses=_ONE, errors=("404", "422"))
async def accept_match(request: web.Request) -> web.Response:
    return await _decide(request, "accept")


@route("POST", "/v1/matches/{allocation_id}/reject", roles=DECIDERS,
       summary="Reject a proposed allocation; the pair is never proposed again",
       requestBody={"content": {"application/json": {"schema": {
           "type": "object", "properties": {"reason": {"type": "string"}}}}}},
       responses=_ONE, errors=("400", "404", "422"))
async def reject_match(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


@route("POST", "/v1/matches/{allocation_id}/undo", roles=DECIDERS,
       summary="Undo one applied allocation, with a reason; the invoice's others stay",
       requestBody={"required": True, "content": {"application/json": {"schema": {
           "type": "object", "required": ["reason"],
           "properties": {"reason": {"type": "string"}}}}}},
       responses=_ONE, errors=("400", "404", "422"))
async def undo_match(request: web.Request) -> web.Response:
    return await _decide(request, "undo")


@route("POST", "/v1/matches", roles=DECIDERS,
       summary="Allocate a payment by hand, to one invoice or split over several",
       requestBody={"required": True, "content": {"application/json": {"schema": {
           "type": "object", "required": ["account_id", "entry_id", "allocations"],
           "properties": {
               "account_id": {"type": "integer"}, "entry_id": {"type": "string"},
               "note": {"type": "string"},
               "allocations": {"type": "array", "minItems": 1, "items": {
                   "type": "object", "required": ["invoice_id", "amount"],
                   "properties": {"invoice_id": {"type": "string"},
                                  "amount": {"type": "string"}}}}}}}}},
       responses={"201": {"description": "the allocations made"}},
       errors=("400", "404", "422"))
async def manual_match(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await read_object(request, fields=("account_id", "entry_id", "allocations", "note"))
    if not isinstance(body.get("account_id"), int) \
            or not isinstance(body.get("entry_id"), str) \
            or not isinstance(body.get("allocations"), list) or not body["allocations"]:
        raise BadRequest("send {\"account_id\": n, \"entry_id\": \"...\", "
                         "\"allocations\": [{\"invoice_id\": \"...\", \"amount\": \"12.50\"}]}")
    parts: list[tuple[str, Decimal]] = []
    for n, part in enumerate(body["allocations"], 1):
        if not isinstance(part, dict) or not isinstance(part.get("invoice_id"), str) \
                or not isinstance(part.get("amount"), str):
            raise BadRequest(f"allocation {n}: needs invoice_id and amount as strings")
        try:
            amount = parse_decimal(part["amount"])
        except MoneyError:
            raise BadRequest(f"allocation {n}: amount {part['amount']!r} is not a decimal") \
                from None
        if amount <= 0:
            raise BadRequest(f"allocation {n}: amount must be greater than zero")
        problem = limits.amount_problem(amount)
        if problem:
            raise BadRequest(f"allocation {n}: amount {problem}")
        parts.append((part["invoice_id"], amount))
    note = body.get("note")
    async with request.app[POOL].acquire() as conn:
        try:
            made = await allocate_manually(
                conn, principal.tenant, account_id=body["account_id"],
                entry_id=body["entry_id"], parts=parts, by=who(principal),
                note=note if isinstance(note, str) else None)
        except DecisionError as exc:
            raise Unprocessable(str(exc)) from None
    return web.json_response({"items": made}, status=201)


_FAILURE = {"type": "object", "required": ["account_id", "entry_id", "stage", "error"],
            "properties": {"account_id": {"type": "integer"}, "entry_id": {"type": "string"},
                           "stage": {"enum": ["engine", "apply"]},
                           "error": {"type": "string"}, "attempts": {"type": "integer"},
                           "first_seen": {"type": "string"}, "last_seen": {"type": "string"},
                           "retry_at": {"type": "string"}}}


@route("POST", "/v1/reconcile", roles=DECIDERS,
       summary="Match every payment not yet allocated against the open invoices now",
       responses={"200": {"description": "how many payments were matched how; the payments "
                          "that failed (each alone: the others were reconciled)",
                          "content": {"application/json": {"schema": {
                              "type": "object",
                              "required": ["payments", "auto", "review", "unmatched",
                                           "failed", "held", "failures"],
                              "properties": {
                                  **{k: {"type": "integer"} for k in (
                                      "payments", "auto", "review", "unmatched", "failed",
                                      "held")},
                                  "failures": {"type": "array", "items": _FAILURE}}}}}}})
async def run_reconcile(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        result = await reconcile(conn, current_principal(request).tenant,
                                 metrics=request.app[METRICS])
    return web.json_response(result.public())


@route("GET", "/v1/reconcile/failures", roles=READERS | {Role.TREASURY},
       summary="Payments whose reconciliation failed and is not yet resolved, by payment",
       parameters=PAGE_PARAMETERS,
       responses={"200": {"description": "a page of failures", "content": {
           "application/json": {"schema": {"type": "object", "properties": {
               "items": {"type": "array", "items": _FAILURE},
               "next_cursor": {"type": ["string", "null"]}}}}}}}, errors=("400",))
async def list_failures(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = cursor_of(request, 2)
    if after is not None and not (type(after[0]) is int and isinstance(after[1], str)
                                  and 0 <= after[0] < 2**63):
        raise BadRequest("cursor is not a cursor this API gave out")
    async with request.app[POOL].acquire() as conn:
        rows = await failure_store.list_page(conn, current_principal(request).tenant,
                                             after=(after[0], after[1]) if after else None,
                                             limit=limit + 1)
    return web.json_response(page(rows, limit, ["account_id", "entry_id"]))
