"""The OpenAPI 3.1 document, built from the route table so it cannot drift from the code."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from gateway.routes import ROUTES
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


PAGE_PARAMETERS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 1000, "default": 100}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]

_ERRORS = {"400", "401", "403", "404", "409", "413", "415", "422", "503"}
# Path parameters that are row ids: whole numbers within PostgreSQL's bigint.
_ID_PARAMETERS = {"statement_pk", "allocation_id"}
_ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for declared in ROUTES:
        operation: dict[str, Any] = {
            "summary": declared.summary,
            "operationId": declared.handler.__name__,
            **{k: v for k, v in declared.operation.items() if k != "responses"},
        }
        responses = dict(declared.operation.get("responses", {}))
        if declared.roles is None:
            operation["security"] = []
        else:
            operation["x-roles"] = sorted(r.value for r in declared.roles)
            responses.setdefault("401", {"$ref": "#/components/responses/Problem"})
            responses.setdefault("403", {"$ref": "#/components/responses/Problem"})
        # Any route refuses query parameters it does not declare (gateway.routes).
        responses.setdefault("400", {"$ref": "#/components/responses/Problem"})
        for code in _ERRORS & set(declared.operation.get("errors", ())):
            responses.setdefault(code, {"$ref": "#/components/responses/Problem"})
        operation.pop("errors", None)
        operation["responses"] = responses
        params = re.findall(r"{(\w+)}", declared.path)
        if params:
            operation.setdefault("parameters", [])
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True,
                 "schema": _ID_SCHEMA if p in _ID_PARAMETERS else {"type": "string"}}
                for p in params] + operation["parameters"]
        paths.setdefault(declared.path, {})[declared.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "recon-gateway", "version": "1",
                 "description": "Bank statements in, reconciled invoices out."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API key from "
                                           "`recon-gateway keys create`"}},
            "schemas": SCHEMAS,
            "responses": {"Problem": {
                "description": "an RFC 9457 problem document",
                "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}}},
        },
    }
