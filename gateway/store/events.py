"""events: the outbox's history, read back for the polling feed.

The feed is ordered by (writing transaction id, event_pk) and serves only events whose
transaction has finished (ids below the oldest still running), so a cursor never moves
past an event that commits later with a smaller position.
"""

from __future__ import annotations

import asyncpg


async def feed(conn: asyncpg.Connection, tenant: str, *, types: list[str],
               after: tuple[str, int] | None, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT event_id, type, version, created_at, lane, sequence, previous_event_id, data,
               txid::text AS txid, event_pk
        FROM events
        WHERE tenant_id = $1
          AND (type = ANY($2::text[]) OR '*' = ANY($2::text[]))
          AND ($3::text IS NULL OR (txid, event_pk) > ($3::text::xid8, $4::bigint))
          AND txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY txid, event_pk
        LIMIT $5
        """,
        tenant, types, after[0] if after else None, after[1] if after else None, limit)
    return rows
