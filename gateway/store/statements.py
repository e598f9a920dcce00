"""statements: one row per statement received, with its balances and flags."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from parsers.jsonl import decimal_text
from parsers.model import Flag, Statement
from parsers.overlap import PROVISIONAL_FORMATS, Ledger, StoredStatement


def flags_json(flags: tuple[Flag, ...]) -> str:
    return json.dumps([{"code": f.code, "message": f.message, "location": f.location}
                       for f in flags])


@dataclass(frozen=True, slots=True)
class Outcomes:
    """What the import of a statement found, line by line (``parsers.overlap``)."""

    new: int
    known: int
    superseded: int
    possible_duplicates: int


@dataclass(frozen=True, slots=True)
class Span:
    """What a statement's lines say of it besides their outcomes: how many, and the first
    and last day they fall on (None without dated lines)."""

    entries: int
    first: date | None
    last: date | None


async def insert(conn: asyncpg.Connection, tenant: str, *, account_id: int, document_id: int,
                 ordinal: int, statement: Statement, flags: tuple[Flag, ...],
                 ledger: Ledger | None, outcomes: Outcomes, span: Span | None = None,
                 staged: int | None = None) -> int:
    """One statement row. ``span`` stands for ``statement.entries`` when those are not held
    (a streamed statement); then ``staged`` is its number among the staged statements
    (``gateway.store.staging``), whose ranked balances are its ledger's."""
    opening, closing = statement.opening_balance, statement.closing_balance
    if span is None:
        days = [d for d in (e.booking_date or e.value_date for e in statement.entries) if d]
        span = Span(len(statement.entries), min(days, default=None), max(days, default=None))
    afters = list(ledger.afters) if ledger is not None and staged is None else None
    statement_pk: int = await conn.fetchval(
        """
        INSERT INTO statements (
            tenant_id, account_id, document_id, ordinal, format, format_version,
            statement_id, sequence, created_at, period_start, period_end,
            opening_amount, opening_currency, opening_date,
            closing_amount, closing_currency, closing_date, entry_count, flags,
            provisional, ledger_opening, ledger_closing, ledger_currency,
            first_date, last_date, entries_new, entries_known, entries_superseded,
            possible_duplicates, ledger_afters)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                $15, $16, $17, $18, $19::jsonb, $20, $21, $22, $23, $24, $25, $26, $27,
                $28, $29,
                CASE WHEN $31::integer IS NULL THEN $30::numeric[]
                     ELSE coalesce((SELECT array_agg(balance_after ORDER BY rank)
                                    FROM ingest_ledger WHERE statement_no = $31),
                                   '{}') END)
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
        span.entries, flags_json(flags),
        statement.format in PROVISIONAL_FORMATS,
        ledger.opening if ledger else None, ledger.closing if ledger else None,
        ledger.currency if ledger else None,
        span.first or statement.period_start, span.last or statement.period_end,
        outcomes.new, outcomes.known, outcomes.superseded, outcomes.possible_duplicates,
        afters, staged if ledger is not None else None,
    )
    return statement_pk


async def ledgers(conn: asyncpg.Connection, tenant: str, *, account_id: int, first: date,
                  last: date, afters: bool = True) -> list[StoredStatement]:
    """The account's stored booked statements with lines between ``first`` and ``last``;
    without ``afters``, their ledgers without the balances line by line (those stay in the
    database: ``gateway.store.staging`` compares them there)."""
    rows = await conn.fetch(
        f"""
        SELECT statement_pk, ledger_opening, ledger_closing, ledger_currency,
               {"ledger_afters" if afters else "NULL::numeric[] AS ledger_afters"}
        FROM statements
        WHERE tenant_id = $1 AND account_id = $2 AND NOT provisional
          AND ledger_opening IS NOT NULL AND last_date >= $3 AND first_date <= $4
        """,  # noqa: S608 - one of two constant columns
        tenant, account_id, first, last)
    return [StoredStatement(r["statement_pk"], Ledger(
        r["ledger_opening"], r["ledger_closing"], r["ledger_currency"],
        tuple(r["ledger_afters"] or ()))) for r in rows]


async def previous(conn: asyncpg.Connection, tenant: str, *, account_id: int, on_or_before: date,
                   document_id: int) -> asyncpg.Record | None:
    """The stored booked statement of the account that closed last on or before a date.

    Statements of the same document are left out: they are compared among themselves;
    intraday reports too: their balances are not the day's.
    """
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT statement_pk, statement_id, sequence, closing_amount, closing_currency,
               closing_date
        FROM statements
        WHERE tenant_id = $1 AND account_id = $2 AND closing_date <= $3
          AND document_id <> $4 AND closing_amount IS NOT NULL AND NOT provisional
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
        SELECT s.statement_pk, s.account_id, a.account_key, s.statement_id, s.format,
               s.entry_count, s.flags
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
    imported_at, provisional, entries_new, entries_known, entries_superseded,
    possible_duplicates
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


async def list_page(conn: asyncpg.Connection, tenant: str, *, account_ids: list[int] | None,
                    since: date | None, until: date | None, after: int | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""
        SELECT {_PUBLIC_COLUMNS} FROM statements
        WHERE tenant_id = $1 AND statement_pk > $2
          AND ($3::bigint[] IS NULL OR account_id = ANY($3::bigint[]))
          AND ($4::date IS NULL OR coalesce(closing_date, period_end) >= $4)
          AND ($5::date IS NULL OR coalesce(opening_date, period_start) <= $5)
        ORDER BY statement_pk LIMIT $6
        """,  # noqa: S608 - the column list is a constant
        tenant, after or 0, account_ids, since, until, limit,
    )
    return [_public(r) for r in rows]


async def get(conn: asyncpg.Connection, tenant: str, statement_pk: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_PUBLIC_COLUMNS} FROM statements WHERE tenant_id = $1 AND statement_pk = $2",  # noqa: S608
        tenant, statement_pk,
    )
    return _public(row) if row else None
