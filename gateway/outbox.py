"""The transactional outbox: events written with the change they report, and their fan-out.

``emit`` must run inside the caller's transaction. For each lane it takes the lane's row
lock and the next numbers, so two transactions writing to one lane are ordered and the
sequence follows commit order; lanes are locked in sorted order, so writers never
deadlock. It then adds a delivery for every subscription that wants each event, marks
those subscriptions' lanes due, and notifies the dispatchers (PostgreSQL delivers the
notification at commit, and drops it on rollback).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.events import EVENT_TYPES

CHANNEL = "recon_outbox"


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    lane: str
    data: dict[str, Any]
    dedup_key: str | None = None  # one event per key, ever (a unique constraint)


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


async def emit(conn: asyncpg.Connection, tenant: str, events: Sequence[NewEvent]) -> list[str]:
    """Write ``events`` (in order within each lane); return the ids written.

    An event whose ``dedup_key`` was already used is left out.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.emit runs inside the transaction of the change it reports")
    for event in events:
        if event.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event.type!r}")
    keys = [e.dedup_key for e in events if e.dedup_key is not None]
    if keys:
        used = {r["dedup_key"] for r in await conn.fetch(
            "SELECT dedup_key FROM events WHERE tenant_id = $1 AND dedup_key = ANY($2::text[])",
            tenant, keys)}
        seen: set[str] = set()
        kept = []
        for event in events:
            if event.dedup_key is not None:
                if event.dedup_key in used or event.dedup_key in seen:
                    continue
                seen.add(event.dedup_key)
            kept.append(event)
        events = kept
    if not events:
        return []
    by_lane: dict[str, list[NewEvent]] = {}
    for event in events:
        by_lane.setdefault(event.lane, []).append(event)
    lanes = sorted(by_lane)
    ids = {lane: [new_event_id() for _ in by_lane[lane]] for lane in lanes}
    # One statement numbers every lane: the lane rows are locked in sorted order.
    numbered = await conn.fetch(
        """
        INSERT INTO event_lanes AS l (tenant_id, lane, last_sequence)
        SELECT $1, x.lane, x.n
        FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS x(lane, n, o)
        ORDER BY x.o
        ON CONFLICT (tenant_id, lane) DO UPDATE
            SET last_sequence = l.last_sequence + excluded.last_sequence
        RETURNING lane, last_sequence
        """,
        tenant, lanes, [len(by_lane[lane]) for lane in lanes])
    firsts = {r["lane"]: r["last_sequence"] - len(by_lane[r["lane"]]) + 1 for r in numbered}
    previous_ids = {r["lane"]: r["event_id"] for r in await conn.fetch(
        "SELECT e.lane, e.event_id FROM unnest($2::text[], $3::bigint[]) AS x(lane, sequence)"
        " JOIN events e ON e.tenant_id = $1 AND e.lane = x.lane AND e.sequence = x.sequence",
        tenant, lanes, [firsts[lane] - 1 for lane in lanes])}
    rows: list[tuple[Any, ...]] = []
    for lane in lanes:
        batch, first, previous = by_lane[lane], firsts[lane], previous_ids.get(lane)
        for offset, (event, event_id) in enumerate(zip(batch, ids[lane], strict=True)):
            rows.append((event_id, event.type, EVENT_TYPES[event.type].version, lane,
                         first + offset, previous, json.dumps(event.data), event.dedup_key))
            previous = event_id
    await conn.execute(
        """
        INSERT INTO events (tenant_id, event_id, type, version, lane, sequence,
                            previous_event_id, data, dedup_key)
        SELECT $1, x.* FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[],
                                   $7::text[], $8::jsonb[], $9::text[]) AS x
        """,
        tenant, *map(list, zip(*rows, strict=True)))
    await fan_out(conn, tenant, [row[0] for row in rows])
    return [row[0] for row in rows]


async def fan_out(conn: asyncpg.Connection, tenant: str, event_ids: list[str],
                  subscription_id: str | None = None) -> int:
    """Add a pending delivery of each event for every subscription that wants it (or for
    one subscription), and mark the subscriptions' lanes due. Returns deliveries added."""
    count: int = await conn.fetchval(
        """
        WITH added AS (
            INSERT INTO deliveries (tenant_id, subscription_id, event_id, lane, sequence)
            SELECT $1, s.subscription_id, e.event_id, e.lane, e.sequence
            FROM events e
            JOIN subscriptions s ON s.tenant_id = e.tenant_id AND s.url IS NOT NULL
                AND (e.type = ANY(s.event_types) OR '*' = ANY(s.event_types))
                AND ($3::text IS NULL OR s.subscription_id = $3)
            WHERE e.tenant_id = $1 AND e.event_id = ANY($2::text[])
            ON CONFLICT DO NOTHING
            RETURNING subscription_id, lane
        ), due AS (
            INSERT INTO delivery_lanes AS d (tenant_id, subscription_id, lane, next_attempt_at)
            SELECT DISTINCT $1, subscription_id, lane, now() FROM added
            ORDER BY 2, 3
            ON CONFLICT (tenant_id, subscription_id, lane) DO UPDATE
                SET next_attempt_at = coalesce(d.next_attempt_at, excluded.next_attempt_at)
        )
        SELECT count(*) FROM added
        """,
        tenant, event_ids, subscription_id)
    if count:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)
    return count
