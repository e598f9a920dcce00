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
    """Store the rows in one statement; return their ids, in the order of ``rows``.

    The rows are inserted in that order (``ORDER BY`` the position), and an identity takes
    its values from a sequence in the order the rows are inserted, increasing within a
    session: the ids, sorted, are the rows' in order.
    """
    if not rows:
        return []
    ids = sorted(await conn.fetchval(
        """
        WITH made AS (
            INSERT INTO allocations (tenant_id, account_id, entry_id, payment_key, invoice_id,
                amount, currency, payment_amount, settles, confidence, decision, status,
                settlement, difference, fx_rate, reasons, created_by, decided_at, decided_by)
            SELECT $1, r.account_id, r.entry_id, r.payment_key, r.invoice_id, r.amount,
                   r.currency, r.payment_amount, r.settles, r.confidence, r.decision,
                   r.status, r.settlement, r.difference, r.fx_rate, r.reasons, r.created_by,
                   CASE WHEN r.status = 'applied' THEN now() END,
                   CASE WHEN r.status = 'applied' THEN r.created_by END
            FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::numeric[],
                        $7::text[], $8::numeric[], $9::numeric[], $10::float8[], $11::text[],
                        $12::text[], $13::text[], $14::numeric[], $15::numeric[],
                        $16::jsonb[], $17::text[])
                 WITH ORDINALITY AS r(account_id, entry_id, payment_key, invoice_id, amount,
                     currency, payment_amount, settles, confidence, decision, status,
                     settlement, difference, fx_rate, reasons, created_by, position)
            ORDER BY r.position
            RETURNING allocation_id
        )
        SELECT array_agg(allocation_id) FROM made
        """,
        tenant, *(list(column) for column in zip(*(
            (row.account_id, row.entry_id, row.payment_key, row.invoice_id, row.amount,
             row.currency, row.payment_amount, row.settles, row.confidence, row.decision,
             row.status, row.settlement, row.difference, row.fx_rate, json.dumps(row.reasons),
             row.created_by) for row in rows), strict=True)),
    ))
    if len(ids) != len(rows):
        raise RuntimeError(f"stored {len(ids)} allocations of {len(rows)}")
    return ids


async def annotate(conn: asyncpg.Connection, tenant: str, ids: Sequence[int],
                   note: str) -> None:
    """The person's note on allocations they made (a manual allocation's ``note``)."""
    await conn.execute(
        "UPDATE allocations SET note = $3 WHERE tenant_id = $1 AND allocation_id = ANY($2)",
        tenant, list(ids), note)


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


PaymentKey = tuple[int, str]   # (account_id, entry_id)


async def lock_payments(conn: asyncpg.Connection, tenant: str, keys: Sequence[PaymentKey]
                        ) -> dict[PaymentKey, list[tuple[str, str]]]:
    """Lock these payments against people's decisions until the transaction ends, and
    return the allocations each has now, as (invoice id, status), for those with any.

    The lock is the one storing an allocation of a payment takes on it anyway (its
    foreign key's ``FOR KEY SHARE``), taken at once for all, in (account, entry) order:
    a person's manual allocation (``FOR UPDATE`` of the payment) waits for it, and it
    waits for one made first. The allocations are read in a statement of their own, after
    the locks, so they include those a decision committed while the lock waited for it.
    """
    if not keys:
        return {}
    accounts, entries = zip(*sorted(set(keys)), strict=True)
    await conn.execute(
        """
        SELECT 1 FROM transactions
        WHERE tenant_id = $1
          AND (account_id, entry_id) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))
        ORDER BY account_id, entry_id COLLATE "C"
        FOR KEY SHARE
        """,
        tenant, list(accounts), list(entries))
    rows = await conn.fetch(
        "SELECT account_id, entry_id, invoice_id, status FROM allocations WHERE tenant_id = $1"
        " AND (account_id, entry_id) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))"
        " ORDER BY allocation_id",
        tenant, list(accounts), list(entries))
    found: dict[PaymentKey, list[tuple[str, str]]] = {}
    for row in rows:
        found.setdefault((row["account_id"], row["entry_id"]), []).append(
            (row["invoice_id"], row["status"]))
    return found


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
