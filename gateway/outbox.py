"""The transactional outbox: events written with the change they report, and their fan-out.

``emit`` must run inside the caller's transaction. For each lane it takes the lane's row
lock and the next numbers, so two transactions writing to one lane are ordered and the
sequence follows commit order; lanes are locked in sorted order, so writers never
deadlock. Each event carries the key that owns its lane's subject (``lane_owners``: an
invoice's, a subscription's), which decides which subscriptions get it
(``store.events.reaches``). It then adds a delivery for every subscription that gets each
event, marks those subscriptions' lanes due, and notifies the dispatchers (PostgreSQL
delivers the notification at commit, and drops it on rollback): ``store.deliveries.fan_out``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.events import EVENT_TYPES, account_lane
from gateway.store.deliveries import fan_out


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
    numbered = await _number(conn, tenant, {lane: len(by_lane[lane]) for lane in lanes})
    owners = await lane_owners(conn, tenant, lanes)
    rows: list[tuple[Any, ...]] = []
    for lane in lanes:
        batch, (first, previous) = by_lane[lane], numbered[lane]
        owned, owner = lane in owners, owners.get(lane)
        for offset, event in enumerate(batch):
            event_id = new_event_id()
            rows.append((event_id, event.type, EVENT_TYPES[event.type].version, lane,
                         first + offset, previous, json.dumps(event.data), event.dedup_key,
                         owned, owner))
            previous = event_id
    await conn.execute(
        """
        INSERT INTO events (tenant_id, event_id, type, version, lane, sequence,
                            previous_event_id, data, dedup_key, owned, owner_key_id)
        SELECT $1, x.* FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[],
                                   $7::text[], $8::jsonb[], $9::text[], $10::boolean[],
                                   $11::text[]) AS x
        """,
        tenant, *map(list, zip(*rows, strict=True)))
    await fan_out(conn, tenant, [row[0] for row in rows])
    return [row[0] for row in rows]


# Lanes whose subject an API key owns, by the lane's prefix: the table and id column where
# the subject records its key. Their events are owned (store.events.reaches): a crm key's
# subscriptions get only those of its own subjects. Events of other lanes (a bank account's)
# go to every subscription of their types.
OWNED_LANES = {"invoice": ("invoices", "invoice_id"),
               "subscription": ("subscriptions", "subscription_id")}


async def lane_owners(conn: asyncpg.Connection, tenant: str,
                      lanes: list[str]) -> dict[str, str | None]:
    """The owning key of each lane among ``lanes`` whose subject a key owns (None: its
    subject has no owner, or is not stored); lanes of other kinds are left out.

    Read when the event is written, so each event carries the key that owned its subject
    then: an invoice handed to another key later keeps its earlier events with the first."""
    subjects: dict[str, dict[str, str]] = {}
    for lane in lanes:
        kind, _, subject = lane.partition(":")
        if kind in OWNED_LANES:
            subjects.setdefault(kind, {})[subject] = lane
    owners: dict[str, str | None] = {}
    for kind, by_subject in subjects.items():
        table, column = OWNED_LANES[kind]
        found = {r["subject"]: r["owner_key_id"] for r in await conn.fetch(
            f"SELECT {column} AS subject, owner_key_id FROM {table}"  # noqa: S608 - constant
            f" WHERE tenant_id = $1 AND {column} = ANY($2::text[])",
            tenant, list(by_subject))}
        for subject, lane in by_subject.items():
            owners[lane] = found.get(subject)
    return owners


async def _number(conn: asyncpg.Connection, tenant: str,
                  counts: dict[str, int]) -> dict[str, tuple[int, str | None]]:
    """Take the next ``counts[lane]`` numbers of each lane: per lane, the first number and
    the id of the lane's event before it. The lane rows are locked in sorted order, in one
    statement, and stay locked until the caller's transaction ends."""
    lanes = sorted(counts)
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
        tenant, lanes, [counts[lane] for lane in lanes])
    firsts = {r["lane"]: r["last_sequence"] - counts[r["lane"]] + 1 for r in numbered}
    previous = {r["lane"]: r["event_id"] for r in await conn.fetch(
        "SELECT e.lane, e.event_id FROM unnest($2::text[], $3::bigint[]) AS x(lane, sequence)"
        " JOIN events e ON e.tenant_id = $1 AND e.lane = x.lane AND e.sequence = x.sequence",
        tenant, lanes, [firsts[lane] - 1 for lane in lanes])}
    return {lane: (firsts[lane], previous.get(lane)) for lane in lanes}


_PAYMENT_BATCH = 50_000  # events written (and their ids held) at a time


async def emit_staged_payments(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                               statement_no: int, count: int) -> int:
    """``payment.received`` for each payment among the lines an import made booked (new,
    or provisional ones it confirmed), in the caller's transaction, in the order they were
    noted; returns how many. ``count`` is how many payments that is
    (``gateway.store.staging.booked_counts``).

    The lines and what each event says of them are in the importing session's
    ``ingest_booked`` (``gateway.store.staging``), as they were stored: each
    ``INSERT ... SELECT`` from it writes up to ``_PAYMENT_BATCH`` events (their ids, for
    the fan-out, are all Python holds), with no look-up of ``transactions``. The data is
    what ``events.payment_fields`` makes of a stored line (a test holds the two to the
    same schema).
    """
    lane, done, after = account_lane(account_id), 0, 0
    while done < count:
        size = min(_PAYMENT_BATCH, count - done)
        first, previous = (await _number(conn, tenant, {lane: size}))[lane]
        row = await conn.fetchrow(
            """
            WITH batch AS (
                SELECT b.*, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id,
                       row_number() OVER (ORDER BY b.n) AS o
                FROM ingest_booked b
                WHERE b.statement_no = $3 AND b.payment AND b.n > $8
                ORDER BY b.n LIMIT $9
            ), written AS (
                INSERT INTO events (tenant_id, event_id, type, version, lane, sequence,
                                    previous_event_id, data)
                SELECT $1, event_id, 'payment.received', $4, $5, $6 + o - 1,
                       coalesce(lag(event_id) OVER (ORDER BY o), $7),
                       jsonb_build_object(
                           'account_id', $2::bigint, 'entry_id', entry_id,
                           'amount', amount::text, 'currency', currency,
                           'booking_date', to_char(booking_date, 'YYYY-MM-DD'),
                           'value_date', to_char(value_date, 'YYYY-MM-DD'),
                           'bank_reference', bank_reference, 'end_to_end_id', end_to_end_id,
                           'counterparty_name', counterparty_name, 'remittance', remittance)
                FROM batch ORDER BY o
                RETURNING event_id
            )
            SELECT (SELECT max(n) FROM batch) AS last,
                   (SELECT array_agg(event_id) FROM written) AS event_ids
            """,
            tenant, account_id, statement_no, EVENT_TYPES["payment.received"].version, lane,
            first, previous, after, size)
        event_ids: list[str] = row["event_ids"] or []
        if len(event_ids) != size:  # pragma: no cover - counted in this transaction
            raise RuntimeError(f"{len(event_ids)} payment events written where {size} "
                               "were counted")
        await fan_out(conn, tenant, event_ids)
        done, after = done + size, row["last"]
    return count
