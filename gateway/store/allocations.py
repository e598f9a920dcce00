"""allocations: the engine's proposals and decisions, and the people's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from parsers.jsonl import decimal_text

ACTIVE = ("proposed", "applied")


@dataclass(frozen=True, slots=True)
class NewAllocation:
    account_id: int
    entry_id: str
    payment_key: str
    invoice_id: str
    amount: Decimal
    currency: str
    payment_amount: Decimal
    settles: Decimal
    confidence: float | None
    decision: str
    status: str
    settlement: str | None
    difference: Decimal | None
    fx_rate: Decimal | None
    reasons: list[dict[str, Any]]
    created_by: str


async def insert(conn: asyncpg.Connection, tenant: str,
                 rows: Sequence[NewAllocation]) -> list[int]:
    ids: list[int] = []
    for row in rows:
        ids.append(await conn.fetchval(
            """
            INSERT INTO allocations (tenant_id, account_id, entry_id, payment_key, invoice_id,
                amount, currency, payment_amount, settles, confidence, decision, status,
                settlement, difference, fx_rate, reasons, created_by, decided_at, decided_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                    $16::jsonb, $17,
                    CASE WHEN $12 = 'applied' THEN now() END,
                    CASE WHEN $12 = 'applied' THEN $17 END)
            RETURNING allocation_id
            """,
            tenant, row.account_id, row.entry_id, row.payment_key, row.invoice_id, row.amount,
            row.currency, row.payment_amount, row.settles, row.confidence, row.decision,
            row.status, row.settlement, row.difference, row.fx_rate, json.dumps(row.reasons),
            row.created_by,
        ))
    return ids


async def get(conn: asyncpg.Connection, tenant: str, allocation_id: int, *,
              lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        _GET_LOCKED if lock else _GET, tenant, allocation_id)
    return row


_GET = "SELECT * FROM allocations WHERE tenant_id = $1 AND allocation_id = $2"
_GET_LOCKED = _GET + " FOR UPDATE"


async def decide(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, status: str,
                 by: str, note: str | None) -> None:
    await conn.execute(
        "UPDATE allocations SET status = $3, decided_at = now(), decided_by = $4, note = $5"
        " WHERE tenant_id = $1 AND allocation_id = $2",
        tenant, allocation_id, status, by, note,
    )


async def undo(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
               reason: str) -> None:
    """Take an applied allocation back. Who applied it (``decided_by``, ``decided_at``,
    ``note``) stays; who undid it, when and why are recorded beside."""
    await conn.execute(
        "UPDATE allocations SET status = 'undone', undone_at = now(), undone_by = $3,"
        " undo_reason = $4 WHERE tenant_id = $1 AND allocation_id = $2",
        tenant, allocation_id, by, reason,
    )


async def active_for_entry(conn: asyncpg.Connection, tenant: str, account_id: int,
                           entry_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM allocations WHERE tenant_id = $1 AND account_id = $2 AND entry_id = $3"
        " AND status = ANY($4::text[]) ORDER BY allocation_id FOR UPDATE",
        tenant, account_id, entry_id, list(ACTIVE),
    )
    return rows


async def rejected_pairs(conn: asyncpg.Connection, tenant: str) -> set[tuple[str, str]]:
    """(payment key, invoice id) pairs a person has rejected: never proposed again."""
    return await _pairs(conn, tenant, "rejected")


async def undone_pairs(conn: asyncpg.Connection, tenant: str) -> set[tuple[str, str]]:
    """(payment key, invoice id) pairs a person has undone: never applied automatically."""
    return await _pairs(conn, tenant, "undone")


async def _pairs(conn: asyncpg.Connection, tenant: str, status: str) -> set[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT DISTINCT account_id, entry_id, invoice_id FROM allocations"
        " WHERE tenant_id = $1 AND status = $2",
        tenant, status,
    )
    return {(f"{r['account_id']}/{r['entry_id']}", r["invoice_id"]) for r in rows}


def public(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("tenant_id", None)
    for key in ("amount", "payment_amount", "settles", "difference", "fx_rate"):
        if out[key] is not None:
            out[key] = decimal_text(out[key])
    for key in ("created_at", "decided_at", "undone_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    out["reasons"] = json.loads(out["reasons"]) if isinstance(out["reasons"], str) \
        else out["reasons"]
    return out


async def list_page(conn: asyncpg.Connection, tenant: str, *, decision: str | None,
                    status: str | None, invoice_id: str | None, after: int | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT * FROM allocations
        WHERE tenant_id = $1 AND allocation_id > $2
          AND ($3::text IS NULL OR decision = $3)
          AND ($4::text IS NULL OR status = $4)
          AND ($5::text IS NULL OR invoice_id = $5)
        ORDER BY allocation_id LIMIT $6
        """,
        tenant, after or 0, decision, status, invoice_id, limit,
    )
    return [public(r) for r in rows]
