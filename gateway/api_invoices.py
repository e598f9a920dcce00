"""Invoices and customers pushed by CRMs: idempotent bulk upserts, reads, partial updates.

Each crm key owns what it pushed (``gateway.store.invoices``): it reads, lists and changes
only its own invoices and customers (another key's answer 404, as if absent, so their
existence does not show), and a batch naming another key's invoice or customer is refused
whole with 409, never taken over. Admin, treasury and auditor keys see every row.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import limits
from gateway.appkeys import POOL
from gateway.body import read_json, read_object
from gateway.openapi import page_of, page_parameters
from gateway.params import CursorKind, date_param, limit_of, sort_key
from gateway.problems import BadRequest, Conflict, NotFound, Unprocessable
from gateway.reconcile import queued
from gateway.request_schemas import AMOUNT, DATE, json_body, query_text
from gateway.routes import Principal, current_principal, route
from gateway.store import invoices as store
from matching.invoices import RecordError, read_customer, read_invoice, read_invoices
from parsers.money import MoneyError, parse_decimal
from security.roles import Role

WRITERS = frozenset({Role.ADMIN, Role.CRM})
INVOICE_READERS = frozenset({Role.ADMIN, Role.TREASURY, Role.CRM, Role.AUDITOR})
MAX_BATCH = 10_000

INVOICES = sort_key(invoice_id=CursorKind.TEXT)
CUSTOMERS = sort_key(customer_id=CursorKind.TEXT)


def _batch_of(record: str) -> dict[str, Any]:
    return json_body({"type": "array", "maxItems": MAX_BATCH,
                      "items": {"$ref": f"#/components/schemas/{record}"}})


def _to_invoice(invoice_id: str) -> dict[str, dict[str, str]]:
    """Where an invoice id in an answer or request leads (the route table's ``links``)."""
    return {"get_invoice": {"invoice_id": invoice_id},
            "patch_invoice": {"invoice_id": invoice_id},
            "list_matches": {"invoice_id": invoice_id}}


def owner_of(principal: Principal) -> str | None:
    """The key whose rows the caller may see and change: a crm key's own; None (every
    row) for the other roles."""
    return principal.key_id if principal.role is Role.CRM else None


def _not_owned(refusal: store.NotOwned) -> Conflict:
    return Conflict(
        f"{len(refusal.refused)} record(s) name invoices or customers another API key "
        f"pushed; nothing was stored",
        errors=[{"record": number, "key": key, "field": field,
                 "message": "belongs to another API key"}
                for number, key, field in refusal.refused[:200]],
    )


def _refuse(errors: list[RecordError]) -> Unprocessable:
    return Unprocessable(
        f"{len(errors)} problem(s) in the batch; nothing was stored",
        errors=[{"record": e.index, "key": e.key, "field": e.field, "message": e.message}
                for e in errors[:200]],
    )


_IDENTIFIERS = ("invoice_id", "customer_id", "related_invoice_id")
_AMOUNTS = ("amount", "open_amount")
_DATES = ("issue_date", "due_date")


def screen(record: Any, index: int) -> list[RecordError]:
    """What the gateway refuses in a CRM record beyond ``matching.invoices``' own checks:
    invisible characters in ids, amounts of 10^15 or more, dates not exactly YYYY-MM-DD.
    Fields that are missing or of the wrong type are left to ``read_invoice`` to name."""
    if not isinstance(record, dict):
        return []
    key = record.get("invoice_id") or record.get("customer_id")
    key = str(key)[:60] if key else None
    errors = []
    for name in _IDENTIFIERS:
        value = record.get(name)
        problem = limits.identifier_problem(value) if isinstance(value, str) else None
        if problem:
            errors.append(RecordError(index, key, name, problem))
    for name in _AMOUNTS:
        value = record.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            amount = parse_decimal(value) if isinstance(value, str) else None
        except MoneyError:
            amount = None  # read_invoice names it
        # read_invoice holds the decimals to the currency; here only the size is checked
        problem = limits.amount_problem(amount, scale=False) if amount is not None else None
        if problem:
            errors.append(RecordError(index, key, name, problem))
    for name in _DATES:
        value = record.get(name)
        if isinstance(value, str) and value.strip() and limits.date_of(value.strip()) is None:
            errors.append(RecordError(index, key, name,
                                      f"must be a date as YYYY-MM-DD, got {value!r}"))
    return errors


def _with_screening(records: list[Any], errors: list[RecordError]) -> list[RecordError]:
    """``errors`` and the screening's, one per record and field, in record order."""
    merged: dict[tuple[int, str], RecordError] = {}
    for error in errors + [e for n, r in enumerate(records, 1) for e in screen(r, n)]:
        merged.setdefault((error.index, error.field), error)
    return sorted(merged.values(), key=lambda e: e.index)


def _batch(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise BadRequest("the body must be a JSON array of objects")
    if len(body) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} records per request, got {len(body)}")
    return body


@route("PUT", "/v1/invoices", roles=WRITERS,
       summary="Create or update invoices (idempotent; the whole batch or nothing)",
       requestBody=_batch_of("InvoiceRecord"), links=_to_invoice("$request.body#/0/invoice_id"),
       responses={"200": {"description": "how many were created and updated"}},
       errors=("400", "409", "413", "422"))
async def put_invoices(request: web.Request) -> web.Response:
    records = _batch(await read_json(request))
    invoices, errors = read_invoices(records)
    errors = _with_screening(records, errors)
    if errors:
        raise _refuse(errors)
    principal = current_principal(request)
    tenant = principal.tenant
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            try:
                created, updated = await store.upsert(conn, tenant, invoices,
                                                      owner=owner_of(principal),
                                                      actor=principal.actor())
            except store.NotOwned as refusal:
                raise _not_owned(refusal) from None
        reconciliation = await queued(conn, tenant, changes=created + updated) \
            if created or updated else None
    return web.json_response({"received": len(invoices), "created": created,
                              "updated": updated, "unchanged": len(invoices) - created - updated,
                              "reconciliation": reconciliation})


@route("GET", "/v1/invoices", roles=INVOICE_READERS, summary="Invoices, by invoice id",
       parameters=page_parameters(INVOICES) + [
           {"name": "status", "in": "query", "schema": {
               "enum": ["open", "partially_paid", "paid", "overpaid", "cancelled"]}},
           {"name": "customer_id", "in": "query", "schema": query_text("a customer's id")},
           {"name": "due_before", "in": "query", "schema": DATE}],
       links={**_to_invoice("$response.body#/items/0/invoice_id"), "list_invoices": {
           "customer_id": "$response.body#/items/0/customer_id"}},
       responses={"200": {"description": "a page of invoices", "content": {
           "application/json": {"schema": page_of("Invoice")}}}}, errors=("400",))
async def list_invoices(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = INVOICES.read(request)
    status = request.query.get("status")
    if status is not None and status not in (
            "open", "partially_paid", "paid", "overpaid", "cancelled"):
        raise BadRequest(f"unknown status {status!r}")
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_page(
            conn, current_principal(request).tenant, status=status,
            owner=owner_of(current_principal(request)),
            customer_id=request.query.get("customer_id"),
            due_before=date_param(request, "due_before"),
            after=after[0] if after else None, limit=limit + 1)
    return web.json_response(INVOICES.page(rows, limit))


@route("GET", "/v1/invoices/{invoice_id}", roles=INVOICE_READERS, summary="One invoice",
       responses={"200": {"description": "the invoice", "content": {"application/json": {
           "schema": {"$ref": "#/components/schemas/Invoice"}}}}}, errors=("404",))
async def get_invoice(request: web.Request) -> web.Response:
    invoice_id = request.match_info["invoice_id"]
    async with request.app[POOL].acquire() as conn:
        row = await store.get_public(conn, current_principal(request).tenant, invoice_id,
                                     owner=owner_of(current_principal(request)))
    if row is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    return web.json_response(row)


@route("PATCH", "/v1/invoices/{invoice_id}", roles=WRITERS,
       summary="Change an invoice's open amount, or cancel it",
       requestBody=json_body({
           "type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
               "open_amount": {**AMOUNT, "description": "from 0 to the amount; "
                               + AMOUNT["description"]},
               "status": {"enum": ["open", "cancelled"]}}}),
       links={"get_invoice": {"invoice_id": "$response.body#/invoice_id"}},
       responses={"200": {"description": "the updated invoice", "content": {
           "application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}}}}},
       errors=("400", "404", "409", "422"))
async def patch_invoice(request: web.Request) -> web.Response:
    invoice_id = request.match_info["invoice_id"]
    body = await read_object(request, fields=("open_amount", "status"))
    if not body:
        raise BadRequest("send an object with open_amount and/or status (open or cancelled)")
    # Null or blank would read as absent in a record (all of it open, status open): here
    # they are refused, so that a PATCH never reopens or resets what it did not name.
    if body.get("status", "open") not in ("open", "cancelled"):
        raise BadRequest(f"status must be open or cancelled, got {body['status']!r}")
    amount = body.get("open_amount", "0")
    if not (type(amount) is int or (isinstance(amount, str) and amount.strip())):
        raise BadRequest(f"open_amount must be a decimal string such as \"12.50\", "
                         f"got {amount!r}")
    screened = screen(body, 1)
    if screened:
        raise _refuse(screened)
    principal = current_principal(request)
    tenant, owner = principal.tenant, owner_of(principal)
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            current = await store.get_public(conn, tenant, invoice_id, owner=owner)
            if current is None:
                raise NotFound(f"no invoice {invoice_id!r}")
            merged = {**current, "open_amount": current["crm_open_amount"], **body}
            if "status" not in body:
                merged["status"] = "cancelled" if current["cancelled"] else "open"
            result = read_invoice(merged, 1)
            if isinstance(result, list):
                raise _refuse(result)
            try:
                await store.upsert(conn, tenant, [result], owner=owner,
                                   actor=principal.actor())
            except store.NotOwned as refusal:
                raise _not_owned(refusal) from None
        await queued(conn, tenant, changes=1)
        row = await store.get_public(conn, tenant, invoice_id)
    return web.json_response(row)


@route("PUT", "/v1/customers", roles=WRITERS,
       summary="Create or update customers with their known IBANs and aliases",
       requestBody=_batch_of("CustomerRecord"),
       links={"list_invoices": {"customer_id": "$request.body#/0/customer_id"}},
       responses={"200": {"description": "how many were stored"}},
       errors=("400", "409", "413", "422"))
async def put_customers(request: web.Request) -> web.Response:
    records = _batch(await read_json(request))
    customers, errors = [], []
    for index, record in enumerate(records, 1):
        result = read_customer(record, index)
        if isinstance(result, list):
            errors.extend(result)
        else:
            customers.append(result)
    errors = _with_screening(records, errors)
    if errors:
        raise _refuse(errors)
    principal = current_principal(request)
    tenant = principal.tenant
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            try:
                await store.upsert_customers(conn, tenant, customers,
                                             owner=owner_of(principal),
                                             actor=principal.actor())
            except store.NotOwned as refusal:
                raise _not_owned(refusal) from None
        reconciliation = await queued(conn, tenant, changes=len(customers))
    return web.json_response({"received": len(customers), "reconciliation": reconciliation})


@route("GET", "/v1/customers", roles=INVOICE_READERS, summary="Customers, by customer id",
       parameters=page_parameters(CUSTOMERS),
       links={"list_invoices": {"customer_id": "$response.body#/items/0/customer_id"}},
       responses={"200": {"description": "a page of customers", "content": {
           "application/json": {"schema": page_of("Customer")}}}}, errors=("400",))
async def list_customers(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = CUSTOMERS.read(request)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_customers(conn, current_principal(request).tenant,
                                          after=after[0] if after else None, limit=limit + 1,
                                          owner=owner_of(current_principal(request)))
    return web.json_response(CUSTOMERS.page(rows, limit))

