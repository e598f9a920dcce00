"""The OpenAPI 3.1 document, built from the route table so it cannot drift from the code.

A route's declaration holds its OpenAPI operation; what requests may hold is written in
``gateway.request_schemas``, and a list's cursor pattern comes from its ``SortKey``. The
route's ``links`` (target operationId to parameters, from runtime expressions) are rendered
on its success answer, so a client (and stateful testing) can follow an id from the
operation that returns it to the operations that take it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from gateway import request_schemas
from gateway.params import MAX_LIMIT, SortKey
from gateway.routes import ROUTES, Route
from parsers.model import FORMAT_NAMES

_NULLABLE_STRING = {"type": ["string", "null"]}
_MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal string"}
_FORMAT = {"enum": list(FORMAT_NAMES), "description": "the message type"}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Flag": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "location": _NULLABLE_STRING},
    },
    "ImportResult": {
        "type": "object",
        "required": ["document_id", "document_known", "format", "entries_new",
                     "entries_known", "statements"],
        "properties": {
            "document_id": {"type": "integer"},
            "document_known": {"type": "boolean"},
            "format": {"enum": [*FORMAT_NAMES, None], "description": "the format of the "
                       "document's statements; null when they differ (a SWIFT file mixing "
                       "MT940 and MT942 messages: each statement says its own)"},
            "entries_new": {"type": "integer"},
            "entries_known": {"type": "integer"},
            "statements": {"type": "array", "items": {"type": "object", "properties": {
                "statement_pk": {"type": "integer"}, "account_id": {"type": "integer"},
                "statement_id": _NULLABLE_STRING, "format": _FORMAT,
                "entries": {"type": "integer"},
                "entries_new": {"type": "integer"},
                "flags": {"type": "array", "items": {"$ref": "#/components/schemas/Flag"}},
            }}},
        },
    },
    "Account": {
        "type": "object",
        "required": ["account_id", "iban", "number", "currency"],
        "properties": {"account_id": {"type": "integer"}, "iban": _NULLABLE_STRING,
                       "number": _NULLABLE_STRING, "bic": _NULLABLE_STRING,
                       "currency": _NULLABLE_STRING, "owner_name": _NULLABLE_STRING},
    },
    "Statement": {
        "type": "object",
        "required": ["statement_pk", "account_id", "format", "entry_count", "flags"],
        "properties": {
            "statement_pk": {"type": "integer"}, "account_id": {"type": "integer"},
            "document_id": {"type": "integer"}, "format": _FORMAT,
            "statement_id": _NULLABLE_STRING, "sequence": _NULLABLE_STRING,
            "period_start": _NULLABLE_STRING, "period_end": _NULLABLE_STRING,
            "opening_balance": {"type": ["object", "null"]},
            "closing_balance": {"type": ["object", "null"]},
            "entry_count": {"type": "integer"},
            "flags": {"type": "array", "items": {"$ref": "#/components/schemas/Flag"}},
            "provisional": {"type": "boolean",
                            "description": "an intraday report (MT942, camt.052, camt.054)"},
            "entries_new": {"type": "integer"},
            "entries_known": {"type": "integer", "description": "lines already stored"},
            "entries_superseded": {"type": "integer",
                                   "description": "provisional lines it confirmed"},
            "possible_duplicates": {"type": "integer",
                                    "description": "new lines marked possible_duplicate"},
        },
    },
    "Transaction": {
        "type": "object",
        "required": ["account_id", "entry_id", "amount", "currency", "status"],
        "properties": {
            "account_id": {"type": "integer"}, "entry_id": {"type": "string"},
            "statement_pk": {"type": "integer",
                             "description": "the statement that first reported it"},
            "booking_date": _NULLABLE_STRING, "value_date": _NULLABLE_STRING,
            "amount": _MONEY, "currency": {"type": "string"}, "status": {"type": "string"},
            "reversal": {"type": "boolean"},
            "bank_reference": _NULLABLE_STRING, "end_to_end_id": _NULLABLE_STRING,
            "counterparty_name": _NULLABLE_STRING, "counterparty_account": _NULLABLE_STRING,
            "remittance": _NULLABLE_STRING, "creditor_reference": _NULLABLE_STRING,
            "provisional": {"type": "boolean", "description":
                            "from an intraday report or pending: a booked statement has not "
                            "confirmed it yet"},
            "possible_duplicate": {"type": "boolean", "description":
                                   "stored although a line like it was: check it"},
            "allocation_status": {"enum": ["unallocated", "in_review", "partially_allocated",
                                           "allocated"]},
            "allocated_amount": _MONEY,
            "reconcile_error": {"type": ["string", "null"], "description":
                                "why its last reconciliation failed, until one succeeds "
                                "(docs/matching.md)"},
            "position": {"type": "integer",
                         "description": "its place in the statement (statement lines only)"},
            "outcome": {"enum": ["new", "known", "supersedes"], "description":
                        "what the statement's import found (statement lines only)"},
            "details": {"type": "object", "description": "the line's other fields"},
        },
    },
    "Invoice": {
        "type": "object",
        "required": ["invoice_id", "customer_id", "currency", "amount", "issue_date"],
        "properties": {
            "invoice_id": {"type": "string", "maxLength": 100},
            "customer_id": {"type": "string", "maxLength": 100},
            "customer_name": _NULLABLE_STRING,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "amount": _MONEY, "open_amount": _MONEY,
            "issue_date": {"type": "string", "format": "date"},
            "due_date": {"type": ["string", "null"], "format": "date"},
            "reference": _NULLABLE_STRING,
            "kind": {"enum": ["invoice", "credit_note"]},
            "status": {"enum": ["open", "partially_paid", "paid", "overpaid", "cancelled"]},
            "related_invoice_id": _NULLABLE_STRING,
            "owner_key_id": {"type": ["string", "null"], "description":
                             "the API key that pushed it; null: no crm key owns it"},
        },
    },
    "Allocation": {
        "type": "object",
        "required": ["allocation_id", "account_id", "entry_id", "invoice_id", "amount",
                     "currency", "decision", "status", "reasons"],
        "properties": {
            "allocation_id": {"type": "integer"}, "account_id": {"type": "integer"},
            "entry_id": {"type": "string"}, "payment_key": {"type": "string"},
            "invoice_id": {"type": "string"}, "amount": _MONEY, "currency": {"type": "string"},
            "payment_amount": _MONEY, "settles": _MONEY,
            "confidence": {"type": ["number", "null"]},
            "decision": {"enum": ["auto", "review", "manual"]},
            "status": {"enum": ["proposed", "applied", "rejected", "undone"]},
            "settlement": _NULLABLE_STRING, "difference": _NULLABLE_STRING,
            "fx_rate": _NULLABLE_STRING,
            "reasons": {"type": "array", "items": {"type": "object"}},
            "created_by": {"type": "string"}, "decided_by": _NULLABLE_STRING,
            "note": _NULLABLE_STRING, "created_at": {"type": "string"},
            "decided_at": _NULLABLE_STRING, "undone_at": _NULLABLE_STRING,
            "undone_by": _NULLABLE_STRING, "undo_reason": _NULLABLE_STRING,
        },
    },
    "Subscription": {
        "type": "object",
        "required": ["id", "url", "event_types", "kid", "status", "created_at"],
        "properties": {
            "id": {"type": "string"}, "owner_key_id": {"type": "string"},
            "url": _NULLABLE_STRING,
            "event_types": {"type": "array", "items": {"type": "string"}},
            "public_jwk": {"type": ["object", "null"]}, "jwks_url": _NULLABLE_STRING,
            "kid": {"type": "string"},
            "status": {"enum": ["active", "paused", "disabled"]},
            "status_reason": _NULLABLE_STRING, "failing_since": _NULLABLE_STRING,
            "warned_at": _NULLABLE_STRING, "previous_secret_until": _NULLABLE_STRING,
            "created_at": {"type": "string"}, "updated_at": {"type": "string"}},
    },
    "Delivery": {
        "type": "object", "required": ["event_id", "status", "attempts", "created_at"],
        "properties": {
            "event_id": {"type": "string"}, "type": {"type": "string"},
            "lane": {"type": "string"}, "sequence": {"type": "integer"},
            "status": {"enum": ["pending", "succeeded", "failed"]},
            "attempts": {"type": "integer"}, "tries": {"type": "integer"},
            "next_attempt_at": _NULLABLE_STRING,
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": _NULLABLE_STRING, "created_at": {"type": "string"},
            "finished_at": _NULLABLE_STRING}},
    "NewSubscription": {"allOf": [
        {"$ref": "#/components/schemas/Subscription"},
        {"type": "object", "required": ["secret"], "properties": {
            "secret": {"type": "string", "pattern": "^whsec_",
                       "description": "the signing secret; shown only this once"}}}]},
    "EventFeed": {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {
                "type": "object", "required": ["id", "cursor", "jwe"],
                "properties": {"id": {"type": "string"}, "cursor": {"type": "string"},
                               "jwe": {"type": "string",
                                       "description": "the event, as a compact JWE"}}}},
            "next_cursor": {"type": ["string", "null"], "description":
                            "pass as cursor= to read on; the same when nothing is new"}}},
    "Customer": {
        "type": "object",
        "required": ["customer_id", "name"],
        "properties": {"customer_id": {"type": "string"}, "name": {"type": "string"},
                       "ibans": {"type": "array", "items": {"type": "string"}},
                       "aliases": {"type": "array", "items": {"type": "string"}},
                       "owner_key_id": {"type": ["string", "null"]},
                       "learned": {
                           "type": "object", "description": "what accepted and manual "
                           "allocations taught (kept apart: a CRM sync never erases it)",
                           "properties": {
                               "ibans": {"type": "array", "items": {"type": "string"}},
                               "names": {"type": "array", "items": {"type": "string"}}}}},
    },
}


def page_of(schema: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}},
        "next_cursor": _NULLABLE_STRING}}


LIMIT_PARAMETER = {"name": "limit", "in": "query", "schema": {
    "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}}


def cursor_parameter(key: SortKey, description: str = "next_cursor of the page before, "
                     "as it was given; empty or absent: the first page") -> dict[str, Any]:
    return {"name": "cursor", "in": "query", "description": description, "schema": {
        "type": "string", "pattern": key.pattern}}


def page_parameters(key: SortKey) -> list[dict[str, Any]]:
    """``limit`` and ``cursor`` of a list ordered by ``key``."""
    return [LIMIT_PARAMETER, cursor_parameter(key)]


_ERRORS = {"400", "401", "403", "404", "409", "413", "415", "422", "503"}
# What each path parameter is; a path naming none that exists is a 404.
_PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "statement_pk": request_schemas.ROW_ID, "allocation_id": request_schemas.ROW_ID,
    "invoice_id": {"$ref": "#/components/schemas/Identifier"},
    "subscription_id": request_schemas.SUBSCRIPTION_ID,
    # Any text: an event never delivered to the subscription has no attempts (an empty list).
    "event_id": {"type": "string", "minLength": 1, "description": "an event's id (evt_...), "
                 "as the subscription's deliveries list it"},
}
_DESCRIPTION = (
    "Bank statements in, reconciled invoices out.\n\n"
    "A request that does not fit this document is refused with 400 (or 413, 414, 415) and "
    "changes nothing. One that fits it is carried out, or answered 401/403 (the key), 404 "
    "(no such row), 409 (another key's row, or a conflict with the stored state), 413 (a "
    "body over this service's limit, max_body_bytes) or 422 "
    "(well-formed, but what it says cannot be accepted: the problem document says why); "
    "the one exception is a webhook URL whose host is refused when it is resolved (400 "
    "naming the field). Every 405 lists the path's methods in Allow.\n\n"
    "Everywhere: text holds no NUL; a string in a JSON body is at most 10,000 characters, "
    "a query value 1,000, a URL 8,192; whole numbers fit in 64 bits; a JSON body is at "
    "most 32 levels deep.")


def _links(declared: Route) -> dict[str, Any]:
    """The route's ``links`` declaration as OpenAPI link objects, one per target."""
    rendered = {}
    for target, values in declared.operation.get("links", {}).items():
        link: dict[str, Any] = {"operationId": target}
        parameters = {k: v for k, v in values.items() if k != "requestBody"}
        if parameters:
            link["parameters"] = parameters
        if "requestBody" in values:
            link["requestBody"] = values["requestBody"]
        rendered[target] = link
    return rendered


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for declared in ROUTES:
        operation: dict[str, Any] = {
            "summary": declared.summary,
            "operationId": declared.handler.__name__,
            **{k: v for k, v in declared.operation.items() if k not in ("responses", "links")},
        }
        responses = dict(declared.operation.get("responses", {}))
        links = _links(declared)
        if links:
            success = min(code for code in responses if code.startswith("2"))
            responses[success] = {**responses[success], "links": links}
        if declared.roles is None:
            operation["security"] = []
        else:
            operation["x-roles"] = sorted(r.value for r in declared.roles)
            responses.setdefault("401", {"$ref": "#/components/responses/Problem"})
            responses.setdefault("403", {"$ref": "#/components/responses/Problem"})
        # Any route refuses query parameters it does not declare (gateway.routes), and a
        # URL longer than MAX_URL (gateway.app); one with a body, a body over the limit.
        for code in ("400", "414", *(("413",) if "requestBody" in operation else ())):
            responses.setdefault(code, {"$ref": "#/components/responses/Problem"})
        for code in _ERRORS & set(declared.operation.get("errors", ())):
            responses.setdefault(code, {"$ref": "#/components/responses/Problem"})
        operation.pop("errors", None)
        operation["responses"] = responses
        params = re.findall(r"{(\w+)}", declared.path)
        if params:
            operation.setdefault("parameters", [])
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": _PATH_PARAMETERS[p]}
                for p in params] + operation["parameters"]
        _as_read(operation)
        paths.setdefault(declared.path, {})[declared.method.lower()] = operation
    _check_links(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "recon-gateway", "version": "1",
                 "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API key from "
                                           "`recon-gateway keys create`"}},
            "schemas": {**SCHEMAS, **request_schemas.SCHEMAS},
            "responses": {"Problem": {
                "description": "an RFC 9457 problem document",
                "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}}},
        },
    }


def _as_read(operation: dict[str, Any]) -> None:
    """The operation's parameters and body with the limits every request is read with."""
    operation["parameters"] = [{**p, "schema": request_schemas.as_read(p["schema"], p["in"])}
                               for p in operation.get("parameters", ())]
    if not operation["parameters"]:
        del operation["parameters"]
    body = operation.get("requestBody")
    if body is not None:
        operation["requestBody"] = {**body, "content": {
            media: {**content, "schema": request_schemas.as_read(content["schema"])}
            for media, content in body["content"].items()}}


def _check_links(paths: dict[str, dict[str, Any]]) -> None:
    """Refuse a link to an operation that does not exist or a parameter it does not take."""
    operations = {op["operationId"]: op for methods in paths.values() for op in methods.values()}
    for methods in paths.values():
        for operation in methods.values():
            for answer in operation["responses"].values():
                for link in answer.get("links", {}).values():
                    target = operations.get(link["operationId"])
                    if target is None:
                        raise ValueError(f"{operation['operationId']} links to an unknown "
                                         f"operation {link['operationId']}")
                    taken = {p["name"] for p in target.get("parameters", ())}
                    unknown = set(link.get("parameters", {})) - taken
                    if unknown:
                        raise ValueError(f"{operation['operationId']} links to "
                                         f"{link['operationId']} with parameters it does "
                                         f"not take: {sorted(unknown)}")

