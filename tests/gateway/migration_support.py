"""Databases as an earlier release left them, for the tests of the migrations that follow.

A migration must work on a database that holds data, not only on an empty one: these
helpers bring a fresh database to the version just before a named migration (through the
real ``migrate``, told that the later migrations do not exist yet) and write the rows
that version's schema holds, so a test can then run ``migrate`` and look at the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import asyncpg
import pytest

from gateway import migrate as module


async def migrate_before(conn: asyncpg.Connection, name: str) -> int:
    """Apply every migration before the one called ``name``; return the version reached."""
    everything = module.migrations()
    before = everything[:next(i for i, m in enumerate(everything) if m.name == name)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "migrations", lambda: before)
        return await module.migrate(conn)


async def add_invoices(conn: asyncpg.Connection, tenant: str,
                       invoices: Iterable[tuple[str, int]]) -> None:
    """Customer C1 (Globex) and its EUR invoices (id, amount), open in full, as any
    version since 0003 stores them."""
    await conn.execute("INSERT INTO customers (tenant_id, customer_id, name)"
                       " VALUES ($1, 'C1', 'Globex')", tenant)
    for invoice_id, amount in invoices:
        await conn.execute(
            "INSERT INTO invoices (tenant_id, invoice_id, customer_id, kind, currency, amount,"
            " crm_open_amount, issue_date) VALUES ($1, $2, 'C1', 'invoice', 'EUR', $3, $3,"
            " '2026-11-01')", tenant, invoice_id, amount)


async def add_api_keys(conn: asyncpg.Connection,
                       keys: Iterable[tuple[str, str, str, str | None]]) -> None:
    """API keys as (tenant, key id, role, revoked at or None); the key id is its name."""
    for tenant, key_id, role, revoked in keys:
        await conn.execute(
            "INSERT INTO api_keys (tenant_id, key_id, name, role, secret_sha256, revoked_at)"
            " VALUES ($1, $2, $2, $3, $4, $5::text::timestamptz)",
            tenant, key_id, role, bytes(32), revoked)


async def add_account(conn: asyncpg.Connection, tenant: str) -> int:
    """A bank account, as any version since 0001 stores it; returns its id."""
    account_id: int = await conn.fetchval(
        "INSERT INTO bank_accounts (tenant_id, account_key) VALUES ($1, 'iban:DE00')"
        " RETURNING account_id", tenant)
    return account_id


async def add_statement(conn: asyncpg.Connection, tenant: str, account_id: int, fmt: str,
                        lines: Iterable[tuple[str, str, int, str, str]]) -> int:
    """A statement of 10.00 EUR to 30.00 EUR in a document of its own, with its lines as
    (entry id, status, amount, payer name, payer IBAN), all booked on 2026-11-01, stored
    the way version 0005 stored them (the 0001 columns only); returns its key."""
    lines = list(lines)
    count = await conn.fetchval("SELECT count(*) FROM raw_documents")
    document_id = await conn.fetchval(
        "INSERT INTO raw_documents (tenant_id, sha256, source, format, size_bytes, content)"
        " VALUES ($1, $2, 'old.sta', $3, 1, 'x') RETURNING document_id",
        tenant, hashlib.sha256(str(count).encode()).digest(), fmt)
    statement_pk: int = await conn.fetchval(
        "INSERT INTO statements (tenant_id, account_id, document_id, ordinal, format,"
        " opening_amount, opening_currency, closing_amount, closing_currency, period_start,"
        " period_end, entry_count) VALUES ($1, $2, $3, 0, $4, 10, 'EUR', 30, 'EUR',"
        " '2026-11-01', '2026-11-01', $5) RETURNING statement_pk",
        tenant, account_id, document_id, fmt, len(lines))
    for entry_id, status, amount, name, iban in lines:
        await conn.execute(
            "INSERT INTO transactions (tenant_id, account_id, entry_id, statement_pk,"
            " booking_date, amount, currency, status, counterparty_name,"
            " counterparty_account, details) VALUES ($1, $2, $3, $4, '2026-11-01', $5,"
            " 'EUR', $6, $7, $8, '{}')",
            tenant, account_id, entry_id, statement_pk, amount, status, name, iban)
    return statement_pk
