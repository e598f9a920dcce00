"""reconcile_failures: payments whose reconciliation failed, one row per payment.

A failure is isolated to its payment (the rest of the pass goes on) and recorded here with
our own description of what failed (never names, IBANs or amounts). A pass leaves a failed
payment alone while neither it nor the tenant's invoices and customers changed (``basis``)
and its backoff (``retry_at``: 1 minute after the first failure, doubling, at most a day)
has not passed; a later success marks the row resolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

Key = tuple[int, str]   # (account_id, entry_id)


async def held(conn: asyncpg.Connection, tenant: str) -> dict[Key, tuple[str, bool]]:
    """Unresolved failures: (basis, whether its backoff is still running) by payment."""
    rows = await conn.fetch(
        "SELECT account_id, entry_id, basis, retry_at > now() AS waiting"
        " FROM reconcile_failures WHERE tenant_id = $1 AND resolved_at IS NULL", tenant)
    return {(r["account_id"], r["entry_id"]): (r["basis"], r["waiting"]) for r in rows}


async def basis_stamp(conn: asyncpg.Connection, tenant: str) -> str:
    """A stamp that changes whenever the tenant's invoices, customers or learned payers do
    (an applied allocation changes its invoice too)."""
    stamp: str = await conn.fetchval(
        """
        SELECT concat_ws('/',
            (SELECT count(*) || ':' || coalesce(max(updated_at)::text, '')
             FROM invoices WHERE tenant_id = $1),
            (SELECT count(*) || ':' || coalesce(max(updated_at)::text, '')
             FROM customers WHERE tenant_id = $1),
            (SELECT count(*) || ':' || coalesce(max(learned_at)::text, '')
             FROM learned_payers WHERE tenant_id = $1))
        """, tenant)
    return stamp


async def record(conn: asyncpg.Connection, tenant: str, key: Key, *, stage: str, error: str,
                 basis: str) -> int:
    """Record (or count again) the failure of one payment; return its attempts so far."""
    attempts: int = await conn.fetchval(
        """
        INSERT INTO reconcile_failures AS f (tenant_id, account_id, entry_id, stage, error,
            basis, retry_at)
        VALUES ($1, $2, $3, $4, $5, $6, now() + interval '1 minute')
        ON CONFLICT (tenant_id, account_id, entry_id) DO UPDATE SET
            stage = excluded.stage, error = excluded.error, basis = excluded.basis,
            attempts = CASE WHEN f.resolved_at IS NULL THEN f.attempts + 1 ELSE 1 END,
            first_seen = CASE WHEN f.resolved_at IS NULL THEN f.first_seen ELSE now() END,
            last_seen = now(), resolved_at = NULL,
            retry_at = now() + least(interval '1 minute' * power(2, least(
                CASE WHEN f.resolved_at IS NULL THEN f.attempts ELSE 0 END, 11)),
                interval '1 day')
        RETURNING attempts
        """,
        tenant, key[0], key[1], stage, error, basis)
    return attempts


async def resolve(conn: asyncpg.Connection, tenant: str, keys: Iterable[Key]) -> None:
    """Mark the failures of payments reconciled since as resolved."""
    keys = list(keys)
    if not keys:
        return
    await conn.execute(
        "UPDATE reconcile_failures SET resolved_at = now()"
        " WHERE tenant_id = $1 AND resolved_at IS NULL"
        " AND (account_id, entry_id) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))",
        tenant, [k[0] for k in keys], [k[1] for k in keys])


def public(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {"account_id": row["account_id"], "entry_id": row["entry_id"],
            "stage": row["stage"], "error": row["error"], "attempts": row["attempts"],
            "first_seen": row["first_seen"].isoformat(),
            "last_seen": row["last_seen"].isoformat(),
            "retry_at": row["retry_at"].isoformat()}


async def failures_for(conn: asyncpg.Connection, tenant: str,
                       keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The unresolved failure of each of these payments that has one, as the API shows it
    (for ``reconcile_error`` on a transaction)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM reconcile_failures WHERE tenant_id = $1 AND resolved_at IS NULL"
        " AND (account_id, entry_id) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))",
        tenant, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["account_id"], r["entry_id"]): public(r) for r in rows}


async def list_page(conn: asyncpg.Connection, tenant: str, *, after: tuple[int, str] | None,
                    limit: int) -> list[dict[str, Any]]:
    """Unresolved failures, by payment."""
    rows = await conn.fetch(
        "SELECT * FROM reconcile_failures WHERE tenant_id = $1 AND resolved_at IS NULL"
        " AND (account_id, entry_id) > ($2, $3) ORDER BY account_id, entry_id LIMIT $4",
        tenant, after[0] if after else 0, after[1] if after else "", limit)
    return [public(r) for r in rows]
