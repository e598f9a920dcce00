"""statements: one row per statement received, with its balances and flags."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg

from parsers.jsonl import decimal_text
from parsers.model import Flag, Statement


def flags_json(flags: tuple[Flag, ...]) -> str:
    return json.dumps([{"code": f.code, "message": f.message, "location": f.location}
                       for f in flags])


async def insert(conn: asyncpg.Connection, tenant: str, *, account_id: int, document_id: int,
                 ordinal: int, statement: Statement, flags: tuple[Flag, ...]) -> int:
    opening, closing = statement.opening_balance, statement.closing_balance
    statement_pk: int = await conn.fetchval(
        """
        INSERT INTO statements (
            tenant_id, account_id, document_id, ordinal, format, format_version,
            statement_id, sequence, created_at, period_start, period_end,
            opening_amount, opening_currency, opening_date,
            closing_amount, closing_currency, closing_date, entry_count, flags)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                $15, $16, $17, $18, $19::jsonb)
        RETURNING statement_pk
        """,
        tenant, account_id, document_id, ordinal, statement.format, statement.format_version,
        statement.statement_id, statement.sequence, statement.created_at,
        statement.period_start, statement.period_end,
        opening.amount.amount if opening else None,
        opening.amount.currency if opening else None,
        opening.date if opening else None,
        closing.amount.amount if closing else None,
        closing.amount.currency if closing else None,
        closing.date if closing else None,
        len(statement.entries), flags_json(flags),
    )
    return statement_pk


async def previous(conn: asyncpg.Connection, tenant: str, *, account_id: int, on_or_before: date,
                   document_id: int) -> asyncpg.Record | None:
    """The stored statement of the account that closed last on or before a date.

    Statements of the same document are left out: they are compared among themselves.
    """
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT statement_pk, statement_id, sequence, closing_amount, closing_currency,
               closing_date
        FROM statements
        WHERE tenant_id = $1 AND account_id = $2 AND closing_date <= $3
          AND document_id <> $4 AND closing_amount IS NOT NULL
        ORDER BY closing_date DESC, statement_pk DESC
        LIMIT 1
        """,
        tenant, account_id, on_or_before, document_id,
    )
    return row


async def of_document(conn: asyncpg.Connection, tenant: str,
                      document_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT s.statement_pk, s.account_id, a.account_key, s.statement_id, s.entry_count,
               s.flags
        FROM statements s
        JOIN bank_accounts a USING (tenant_id, account_id)
        WHERE s.tenant_id = $1 AND s.document_id = $2
        ORDER BY s.ordinal
        """,
        tenant, document_id,
    )
    return rows


def decode_flags(value: Any) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = json.loads(value) if isinstance(value, str) else list(value)
    return flags


_PUBLIC_COLUMNS = """
    statement_pk, account_id, document_id, ordinal, format, format_version, statement_id,
    sequence, created_at, period_start, period_end, opening_amount, opening_currency,
    opening_date, closing_amount, closing_currency, closing_date, entry_count, flags,
    imported_at
"""


def _public(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for side in ("opening", "closing"):
        value = out.pop(f"{side}_amount")
        currency, day = out.pop(f"{side}_currency"), out.pop(f"{side}_date")
        out[f"{side}_balance"] = None if value is None else {
            "amount": decimal_text(value), "currency": currency, "date": day.isoformat()}
    for key in ("created_at", "imported_at", "period_start", "period_end"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    out["flags"] = decode_flags(out["flags"])
    return out


async def list_page(conn: asyncpg.Connection, tenant: str, *, account_id: int | None,
                    since: date | None, until: date | None, after: int | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""
        SELECT {_PUBLIC_COLUMNS} FROM statements
        WHERE tenant_id = $1 AND statement_pk > $2
          AND ($3::bigint IS NULL OR account_id = $3)
          AND ($4::date IS NULL OR coalesce(closing_date, period_end) >= $4)
          AND ($5::date IS NULL OR coalesce(opening_date, period_start) <= $5)
        ORDER BY statement_pk LIMIT $6
        """,  # noqa: S608 - the column list is a constant
        tenant, after or 0, account_id, since, until, limit,
    )
    return [_public(r) for r in rows]


async def get(conn: asyncpg.Connection, tenant: str, statement_pk: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_PUBLIC_COLUMNS} FROM statements WHERE tenant_id = $1 AND statement_pk = $2",  # noqa: S608
        tenant, statement_pk,
    )
    return _public(row) if row else None
