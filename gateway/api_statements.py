"""Statements in (POST /v1/statements), and what is stored out: accounts, statements, lines."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp import web

from gateway.appkeys import METRICS, POOL, SETTINGS
from gateway.ingest_files import Spooled, ingest_spooled, spool
from gateway.openapi import page_of, page_parameters
from gateway.params import CursorKind, date_param, limit_of, path_id, sort_key
from gateway.problems import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMedia,
)
from gateway.reconcile import queued
from gateway.request_schemas import DATE, query_text
from gateway.routes import READERS, current_principal, route
from gateway.store import accounts, statements, transactions
from parsers.errors import ParseError, TooLargeError
from security.roles import Role

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")
ACCOUNTS = sort_key(account_id=CursorKind.INT)
STATEMENTS = sort_key(statement_pk=CursorKind.INT)
LINES = sort_key(position=CursorKind.INT32)  # an integer column
TRANSACTIONS = sort_key(seq=CursorKind.INT)
# A browser form wraps the file in boundaries and fields; stored as it came, those bytes
# would be a document of their own (a second copy of the statement). The file is the body.
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_SEND_AS = "application/octet-stream"
_ACCEPTED = ("Any Content-Type but a form's is accepted (application/octet-stream, "
             "application/xml, text/plain, ...); the format is read from the content: "
             "MT940/MT942, camt.052/053/054 or OFX.")
_DATE_PARAMS = [
    {"name": "account", "in": "query", "schema": query_text("unknown: 404"),
     "description": "an account_id from GET /v1/accounts; or an IBAN (every account with it: "
                    "one per currency) or account number"},
    {"name": "from", "in": "query", "schema": DATE},
    {"name": "to", "in": "query", "schema": DATE},
]


def _to_statement_and_account(at: str) -> dict[str, dict[str, str]]:
    """Where the statement and account of the answer's object ``at`` (a JSON pointer) lead:
    the route table's ``links`` (gateway.openapi)."""
    statement_pk, account = (f"$response.body#/{at}/{name}"
                             for name in ("statement_pk", "account_id"))
    return {"get_statement": {"statement_pk": statement_pk},
            "list_statement_lines": {"statement_pk": statement_pk},
            "list_transactions": {"account": account},
            "list_statements": {"account": account}}


async def _account_ids(conn: asyncpg.Connection, tenant: str,
                       request: web.Request) -> list[int] | None:
    """The accounts ``?account=`` names: the account with that ``account_id`` (what
    GET /v1/accounts and every line and statement give), else every account with that IBAN
    (one per currency) or number. None without the parameter."""
    text = request.query.get("account")
    if text is None:
        return None
    named = await accounts.named(conn, tenant, text)
    if not named:
        raise NotFound(f"no account {text!r} is known: give an account_id from "
                       f"GET /v1/accounts, an IBAN or an account number")
    by_id = [account_id for account_id, how in named if how == "id"]
    others = [account_id for account_id, how in named if how != "id"]
    if by_id and others:
        raise BadRequest(
            f"account {text!r} is ambiguous: it is the account_id of account {by_id[0]} and "
            f"the account number of account {', '.join(map(str, others))}; give the "
            f"account_id of the one meant, or account {by_id[0]}'s IBAN")
    return by_id or others


@route("POST", "/v1/statements", roles=frozenset({Role.ADMIN, Role.TREASURY}),
       summary="Import a statement file (MT940/MT942, camt.052/053/054, OFX) as the raw body",
       parameters=[{"name": "filename", "in": "query", "schema": query_text(
           "other characters than letters, digits, '.', '_', ' ' and '-' become '_'"),
                    "description": "the file's name, kept with the document"}],
       requestBody={"required": True, "content": {"application/octet-stream": {
           "schema": {"type": "string", "format": "binary", "minLength": 1}}}},
       responses={"201": {"description": "stored (or already known: see document_known)",
                          "content": {"application/json": {"schema": {
                              "$ref": "#/components/schemas/ImportResult"}}}}},
       links=_to_statement_and_account("statements/0"),
       errors=("400", "413", "415", "422", "503"))
async def post_statement(request: web.Request) -> web.Response:
    principal = current_principal(request)
    name = _SAFE_NAME.sub("_", request.query.get("filename", "upload"))[:200] or "upload"
    limit = request.app[SETTINGS].max_statement_bytes
    # The body goes to a temporary file as it arrives, hashed on the way: a statement of
    # any size costs no memory, and one sent before is known before it is parsed.
    try:
        async with spool(request.content, max_bytes=limit, source=name) as body:
            _check_body(request, body)
            async with request.app[POOL].acquire() as conn:
                result = await ingest_spooled(conn, body, source=name,
                                              tenant=principal.tenant)
                # Matching is the workers' (gateway.work): they are woken now.
                reconciliation = await queued(conn, principal.tenant,
                                              lines=result.entries_booked) \
                    if result.entries_booked else None
    except TooLargeError as exc:
        raise PayloadTooLarge(f"the statement is larger than the limit of {limit} bytes "
                              f"(setting max_statement_bytes)") from exc
    except ParseError as exc:
        raise Unprocessable(exc.message, source=exc.source, line=exc.line, path=exc.path,
                            field=exc.field) from exc
    metrics = request.app[METRICS]
    metrics.entries.labels("new").inc(result.entries_new)
    metrics.entries.labels("known").inc(result.entries_known)
    return web.json_response({
        "document_id": result.document_id,
        "document_known": result.document_known,
        "format": result.format,
        "entries_new": result.entries_new,
        "entries_known": result.entries_known,
        "statements": [{
            "statement_pk": s.statement_pk, "account_id": s.account_id,
            "statement_id": s.statement_id, "format": s.format, "entries": s.entries,
            "entries_new": s.entries_new, "flags": list(s.flags),
        } for s in result.statements],
        "reconciliation": reconciliation,
    }, status=201)


def _check_body(request: web.Request, body: Spooled) -> None:
    """A body that is a statement file: not empty, not a form."""
    # Checked before the Content-Type: curl given a file it cannot read (a wrong name after
    # @) sends nothing, as a form unless told otherwise; the missing file is the news.
    if body.blank:
        received = f"{body.size} bytes" + (" of whitespace" if body.size else "")
        raise BadRequest(
            f"the body is empty ({received}, Content-Type: "
            f"{request.headers.get('Content-Type', 'none')}): send the statement file "
            f"itself as the body, e.g. curl --data-binary @FILE -H 'Content-Type: "
            f"{_SEND_AS}' (check that FILE exists: curl sends nothing when it cannot read "
            f"it). {_ACCEPTED}", received_bytes=body.size,
            content_type=request.headers.get("Content-Type"))
    if request.content_type in _FORMS:
        raise UnsupportedMedia(f"send the statement file itself as the body, e.g. curl "
                               f"--data-binary @FILE -H 'Content-Type: {_SEND_AS}', not a "
                               f"form ({request.content_type}). {_ACCEPTED}")


@route("GET", "/v1/accounts", roles=READERS, summary="Bank accounts the gateway knows",
       parameters=page_parameters(ACCOUNTS),
       links={target: values for target, values in _to_statement_and_account("items/0").items()
              if "account" in values},
       responses={"200": {"description": "a page of accounts", "content": {
           "application/json": {"schema": page_of("Account")}}}}, errors=("400",))
async def list_accounts(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = ACCOUNTS.read(request)
    async with request.app[POOL].acquire() as conn:
        rows = await accounts.list_page(conn, current_principal(request).tenant,
                                      after=after[0] if after else None, limit=limit + 1)
    return web.json_response(ACCOUNTS.page(rows, limit))


@route("GET", "/v1/statements", roles=READERS, summary="Statements received, oldest first",
       parameters=page_parameters(STATEMENTS) + _DATE_PARAMS,
       links=_to_statement_and_account("items/0"),
       responses={"200": {"description": "a page of statements", "content": {
           "application/json": {"schema": page_of("Statement")}}}}, errors=("400", "404"))
async def list_statements(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = STATEMENTS.read(request)
    since, until = date_param(request, "from"), date_param(request, "to")
    tenant = current_principal(request).tenant
    async with request.app[POOL].acquire() as conn:
        account_ids = await _account_ids(conn, tenant, request)
        rows = await statements.list_page(conn, tenant, account_ids=account_ids, since=since,
                                        until=until, after=after[0] if after else None,
                                        limit=limit + 1)
    return web.json_response(STATEMENTS.page(rows, limit))


@route("GET", "/v1/statements/{statement_pk}", roles=READERS, summary="One statement",
       responses={"200": {"description": "the statement", "content": {
           "application/json": {"schema": {"$ref": "#/components/schemas/Statement"}}}}},
       errors=("404",))
async def get_statement(request: web.Request) -> web.Response:
    statement_pk = path_id(request, "statement_pk", "statement")
    async with request.app[POOL].acquire() as conn:
        row = await statements.get(conn, current_principal(request).tenant, statement_pk)
    if row is None:
        raise NotFound(f"no statement {statement_pk}")
    return web.json_response(row)


@route("GET", "/v1/statements/{statement_pk}/lines", roles=READERS,
       summary="A statement's lines in the bank's order, with what its import found",
       parameters=page_parameters(LINES),
       responses={"200": {"description": "a page of the statement's lines", "content": {
           "application/json": {"schema": page_of("Transaction")}}}},
       errors=("400", "404"))
async def list_statement_lines(request: web.Request) -> web.Response:
    statement_pk = path_id(request, "statement_pk", "statement")
    limit = limit_of(request)
    after = LINES.read(request)
    tenant = current_principal(request).tenant
    async with request.app[POOL].acquire() as conn:
        statement = await statements.get(conn, tenant, statement_pk)
        if statement is None:
            raise NotFound(f"no statement {statement_pk}")
        rows = await transactions.of_statement(
            conn, tenant, account_id=statement["account_id"], statement_pk=statement_pk,
            after=after[0] if after else None, limit=limit + 1)
    return web.json_response(LINES.page(rows, limit))


@route("GET", "/v1/transactions", roles=READERS,
       summary="Bank lines in arrival order, with filters",
       parameters=page_parameters(TRANSACTIONS) + _DATE_PARAMS + [
           {"name": "status", "in": "query",
            "schema": {"enum": ["booked", "pending", "info"]}}],
       links={"manual_match": {"requestBody": {
           "account_id": "$response.body#/items/0/account_id",
           "entry_id": "$response.body#/items/0/entry_id"}}},
       responses={"200": {"description": "a page of bank lines", "content": {
           "application/json": {"schema": page_of("Transaction")}}}}, errors=("400", "404"))
async def list_transactions(request: web.Request) -> web.Response:
    limit = limit_of(request)
    after = TRANSACTIONS.read(request)
    since, until = date_param(request, "from"), date_param(request, "to")
    status = request.query.get("status")
    if status is not None and status not in ("booked", "pending", "info"):
        raise BadRequest(f"status must be booked, pending or info, got {status!r}")
    tenant = current_principal(request).tenant
    async with request.app[POOL].acquire() as conn:
        account_ids = await _account_ids(conn, tenant, request)
        rows: list[dict[str, Any]] = await transactions.list_page(
            conn, tenant, account_ids=account_ids, since=since, until=until, status=status,
            after=after[0] if after else None, limit=limit + 1)
    return web.json_response(TRANSACTIONS.page(rows, limit))
