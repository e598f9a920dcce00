"""The review queue and allocation decisions: /v1/matches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway import limits
from gateway.appkeys import METRICS, POOL
from gateway.body import read_object
from gateway.decisions import (
    DecisionError,
    OverpaymentError,
    accept,
    allocate_manually,
    reject,
    undo,
)
from gateway.openapi import page_of, page_parameters
from gateway.params import CursorKind, limit_of, path_id, sort_key
from gateway.problems import BadRequest, NotFound, Overpayment, Unprocessable
from gateway.reconcile import reconcile
from gateway.request_schemas import (
    NOT_BLANK,
    POSITIVE_AMOUNT,
    ROW_ID,
    json_body,
    query_text,
)
from gateway.routes import READERS, Principal, current_principal, route
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from gateway.store import reconcile_work as work
from parsers.money import MoneyError, parse_decimal
from security.roles import Role

DECIDERS = frozenset({Role.ADMIN, Role.TREASURY})
MATCHES = sort_key(allocation_id=CursorKind.INT)
FAILURES = sort_key(account_id=CursorKind.INT, entry_id=CursorKind.TEXT)
_REASON = {"type": ["string", "null"], "maxLength": 500}


def _to_allocation(allocation_id: str) -> dict[str, dict[str, str]]:
    """Where an allocation's id in an answer leads (the route table's ``links``)."""
    return {target: {"allocation_id": allocation_id}
            for target in ("accept_match", "reject_match", "undo_match")}


def _to_payment(at: str) -> dict[str, dict[str, Any]]:
    """Where the payment of the answer's object ``at`` (a JSON pointer) leads."""
    return {"manual_match": {"requestBody": {
        name: f"$response.body#/{at}/{name}" for name in ("account_id", "entry_id")}}}


_ONE = {"200": {"description": "the allocation", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Allocation"}}}}}


def who(principal: Principal) -> str:
    return f"{principal.name} (key {principal.key_id})"


def _allocation_id(request: web.Request) -> int:
    return path_id(request, "allocation_id", "allocation")


def _allow_overpayment(body: dict[str, object]) -> bool:
    allow = body.get("allow_overpayment", False)
    if not isinstance(allow, bool):
        raise BadRequest(f"allow_overpayment must be true or false, got {allow!r}")
    return allow


def _refused(exc: OverpaymentError) -> Overpayment:
    """409: what each invoice has open, and how to insist."""
    return Overpayment(str(exc), invoices=[o.public() for o in exc.overpaid])


# A body field of the decisions that apply an allocation: without it, one that would
# overpay an invoice is refused with 409 (gateway.decisions).
_ALLOW_OVERPAYMENT = {"allow_overpayment": {
    "type": "boolean", "default": False,
    "description": "apply it even if it leaves an invoice overpaid (refused with 409 "
                   "otherwise)"}}


async def _decide(request: web.Request, action: str) -> web.Response:
    principal = current_principal(request)
    allocation_id = _allocation_id(request)
    fields = ("reason", "allow_overpayment") if action == "accept" else ("reason",)
    body = await read_object(request, fields=fields, optional=True)
    allow_overpayment = _allow_overpayment(body)
    note = body.get("reason")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise BadRequest("reason must be a string of at most 500 characters")
    if action == "undo" and not (note and note.strip()):
        raise BadRequest("undo needs a reason: send {\"reason\": \"...\"}")
    async with request.app[POOL].acquire() as conn:
        try:
            if action == "accept":
                result = await accept(conn, principal.tenant, allocation_id, by=who(principal),
                                      allow_overpayment=allow_overpayment,
                                      actor=principal.actor())
            elif action == "reject":
                result = await reject(conn, principal.tenant, allocation_id, by=who(principal),
                                      note=note, actor=principal.actor())
            else:
                result = await undo(conn, principal.tenant, allocation_id, by=who(principal),
                                    note=str(note), actor=principal.actor())
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except OverpaymentError as exc:
            raise _refused(exc) from None
        except DecisionError as exc:
            raise Unprocessable(str(exc)) from None
    return web.json_response(result)


@route("GET", "/v1/matches", roles=READERS | {Role.TREASURY},
       summary="Allocations: the review queue (decision=review&status=proposed) and decisions",
       parameters=page_parameters(MATCHES) + [
           {"name": "decision", "in": "query", "schema": {"enum": ["auto", "review", "manual"]}},
           {"name": "status", "in": "query",
            "schema": {"enum": ["proposed", "applied", "rejected", "undone"]}},
           {"name": "invoice_id", "in": "query", "schema": query_text("an invoice's id")}],
       links={**_to_allocation("$response.body#/items/0/allocation_id"), "get_invoice": {
           "invoice_id": "$response.body#/items/0/invoice_id"}},
       responses={"200": {"description": "a page of allocations", "content": {
           "application/json": {"schema": page_of("Allocation")}}}}, errors=("400",))
async def list_matches(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = MATCHES.read(request)
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
    return web.json_response(MATCHES.page(rows, limit))


@route("POST", "/v1/matches/{allocation_id}/accept", roles=DECIDERS,
       summary="Accept a proposed allocation: it is applied to the invoice",
       requestBody=json_body({"type": "object", "additionalProperties": False, "properties": {
           **_ALLOW_OVERPAYMENT, "reason": {**_REASON, "description": "not kept"}}},
           required=False),
       responses=_ONE, errors=("400", "404", "409", "422"))
async def accept_match(request: web.Request) -> web.Response:
    return await _decide(request, "accept")


@route("POST", "/v1/matches/{allocation_id}/reject", roles=DECIDERS,
       summary="Reject a proposed allocation; the pair is never proposed again",
       requestBody=json_body({"type": "object", "additionalProperties": False,
                              "properties": {"reason": _REASON}}, required=False),
       responses=_ONE, errors=("400", "404", "422"))
async def reject_match(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


@route("POST", "/v1/matches/{allocation_id}/undo", roles=DECIDERS,
       summary="Undo one applied allocation, with a reason; the invoice's others stay",
       requestBody=json_body({"type": "object", "additionalProperties": False,
                              "required": ["reason"], "properties": {"reason": {
                                  "type": "string", "maxLength": 500, "pattern": NOT_BLANK,
                                  "description": "why: kept with the allocation"}}}),
       responses=_ONE, errors=("400", "404", "422"))
async def undo_match(request: web.Request) -> web.Response:
    return await _decide(request, "undo")


@route("POST", "/v1/matches", roles=DECIDERS,
       summary="Allocate a payment by hand, to one invoice or split over several",
       requestBody=json_body({
           "type": "object", "additionalProperties": False,
           "required": ["account_id", "entry_id", "allocations"],
           "properties": {
               "account_id": ROW_ID, "entry_id": {"type": "string", "minLength": 1},
               "note": {"type": ["string", "null"]}, **_ALLOW_OVERPAYMENT,
               "allocations": {"type": "array", "minItems": 1, "items": {
                   "type": "object", "required": ["invoice_id", "amount"],
                   "properties": {"invoice_id": {"$ref": "#/components/schemas/Identifier"},
                                  "amount": POSITIVE_AMOUNT}}}}}),
       links=_to_allocation("$response.body#/items/0/allocation_id"),
       responses={"201": {"description": "the allocations made", "content": {
           "application/json": {"schema": {"type": "object", "required": ["items"], "properties": {
               "items": {"type": "array", "items": {
                   "$ref": "#/components/schemas/Allocation"}}}}}}}},
       errors=("400", "404", "409", "422"))
async def manual_match(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await read_object(request, fields=("account_id", "entry_id", "allocations", "note",
                                              "allow_overpayment"))
    allow_overpayment = _allow_overpayment(body)
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
    if note is not None and not isinstance(note, str):
        raise BadRequest(f"note must be a string, got {note!r}")
    async with request.app[POOL].acquire() as conn:
        try:
            made = await allocate_manually(
                conn, principal.tenant, account_id=body["account_id"],
                entry_id=body["entry_id"], parts=parts, by=who(principal),
                note=note if isinstance(note, str) else None,
                allow_overpayment=allow_overpayment, actor=principal.actor())
        except OverpaymentError as exc:
            raise _refused(exc) from None
        except DecisionError as exc:
            raise Unprocessable(str(exc)) from None
    return web.json_response({"items": made}, status=201)


_FAILURE = {"type": "object", "required": ["account_id", "entry_id", "stage", "error"],
            "properties": {"account_id": {"type": "integer"}, "entry_id": {"type": "string"},
                           "stage": {"enum": ["engine", "apply"]},
                           "error": {"type": "string"}, "attempts": {"type": "integer"},
                           "first_seen": {"type": "string"}, "last_seen": {"type": "string"},
                           "retry_at": {"type": "string"}}}


_QUEUE_STATUS = {
    "type": "object",
    "required": ["status", "payments_waiting", "changes_waiting", "waiting_since", "failures"],
    "properties": {
        "status": {"enum": ["idle", "queued"], "description": "queued: the workers have "
                   "payments or changed invoices and customers to match"},
        "payments_waiting": {"type": "integer",
                             "description": "payments not yet matched (new, or handed back "
                             "by a reject or undo)"},
        "changes_waiting": {"type": "integer",
                            "description": "changed invoices and customers not yet matched "
                            "against the unallocated payments"},
        "waiting_since": {"type": ["string", "null"], "format": "date-time",
                          "description": "when the oldest of them was stored or queued"},
        "failures": {"type": "integer",
                     "description": "payments whose reconciliation failed, unresolved "
                     "(GET /v1/reconcile/failures)"},
    }}


@route("GET", "/v1/reconcile", roles=READERS | {Role.TREASURY},
       summary="What waits for the reconcile workers",
       responses={"200": {"description": "the queue of matching work", "content": {
           "application/json": {"schema": _QUEUE_STATUS}}}})
async def reconcile_status(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        status = await work.status(conn, current_principal(request).tenant)
    return web.json_response(status)


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
       parameters=page_parameters(FAILURES), links=_to_payment("items/0"),
       responses={"200": {"description": "a page of failures", "content": {
           "application/json": {"schema": {"type": "object", "properties": {
               "items": {"type": "array", "items": _FAILURE},
               "next_cursor": {"type": ["string", "null"]}}}}}}}, errors=("400",))
async def list_failures(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = FAILURES.read(request)
    async with request.app[POOL].acquire() as conn:
        rows = await failure_store.list_page(conn, current_principal(request).tenant,
                                             after=(after[0], after[1]) if after else None,
                                             limit=limit + 1)
    return web.json_response(FAILURES.page(rows, limit))
