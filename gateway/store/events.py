"""events: the outbox's history, read back for the polling feed.

The feed is ordered by (writing transaction id, event_pk) and serves only events whose
transaction has finished (ids below the oldest still running), so a cursor never moves
past an event that commits later with a smaller position.

The transaction id is an ``xid8`` and is compared and ordered as one, never as text: as
text, 1000 sorts before 999, and a cursor taken at 999 would pass over every event from
1000 to 9989. It leaves here as a Python int (a full 64-bit id stays below 2**63 in
practice: that would take 2**31 wraparounds), and comes back the same way.
"""

from __future__ import annotations

import asyncpg

# The largest transaction id and event_pk a cursor may carry (bigint's range).
MAX_POSITION = 2**63 - 1


async def feed(conn: asyncpg.Connection, tenant: str, *, types: list[str],
               after: tuple[int, int] | None, limit: int) -> list[asyncpg.Record]:
    """Events of ``types`` after the position ``after`` (transaction id, event_pk)."""
    # The position columns are named apart from ``txid``: ORDER BY picks an output column
    # over a table column of the same name, which is how a text copy once set the order.
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT e.event_id, e.type, e.version, e.created_at, e.lane, e.sequence,
               e.previous_event_id, e.data,
               e.txid::text::bigint AS position_txid, e.event_pk AS position_pk
        FROM events e
        WHERE e.tenant_id = $1
          AND (e.type = ANY($2::text[]) OR '*' = ANY($2::text[]))
          AND ($3::bigint IS NULL OR (e.txid, e.event_pk) > ($3::bigint::text::xid8, $4::bigint))
          AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.txid, e.event_pk
        LIMIT $5
        """,
        tenant, types, after[0] if after else None, after[1] if after else None, limit)
    return rows
