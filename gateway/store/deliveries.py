"""deliveries, delivery_lanes and delivery_attempts: the outbox's queue, in one place.

The lane invariant, kept by every function here: a lane with a committed pending
delivery is due (``next_attempt_at`` set) or leased. Whoever adds deliveries marks their
lanes due in the same transaction (``fan_out``, ``requeue``); a lane is made idle only
by ``record``, after locking it and then looking for pending deliveries in a later
statement, whose snapshot sees every writer that locked the lane before.

When a lane is due is said by its first pending delivery: its ``next_attempt_at`` (a
retry's time, or the time it was replayed or its subscription resumed), or now when that
is NULL (a new delivery). ``record`` hands a lane back at that time, not at the retry time
its own attempt's outcome asked for: a delivery replayed while that attempt was in flight
is due at once, not when the old attempt's retry would have been.

Lock order, shared with people's changes (store.subscriptions): lanes in (tenant,
subscription, lane) order, then their deliveries. Nothing here locks a subscription row
while it holds lanes, so the two never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.store import events

CHANNEL = "recon_outbox"  # NOTIFY channel: deliveries are due


async def notify(conn: asyncpg.Connection, tenant: str) -> None:
    """Wake the dispatchers when this transaction commits (dropped if it rolls back)."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)


async def fan_out(conn: asyncpg.Connection, tenant: str, event_ids: list[str],
                  subscription_id: str | None = None) -> int:
    """Add a pending delivery of each event for every subscription that gets it
    (``events.reaches``: its types, and its owner's events), or for one subscription (a
    replay: those deliveries say they are due now), and mark those lanes due. Returns how
    many deliveries were added."""
    # Who gets an event is decided here, once, as its deliveries are added; the queue's
    # own statements (claim, record) never look at it again.
    count: int = await conn.fetchval(
        f"""
        WITH added AS (
            INSERT INTO deliveries (tenant_id, subscription_id, event_id, lane, sequence,
                                    next_attempt_at)
            SELECT $1, s.subscription_id, e.event_id, e.lane, e.sequence,
                   CASE WHEN $3::text IS NOT NULL THEN now() END
            FROM events e
            JOIN subscriptions s ON s.tenant_id = e.tenant_id AND s.url IS NOT NULL
                AND {events.subscription_reaches('e', 's')}
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
        """,  # noqa: S608 - constant SQL
        tenant, event_ids, subscription_id)
    if count:
        await notify(conn, tenant)
    return count


async def requeue(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                  lanes: list[str], event_ids: list[str]) -> int:
    """Deliver these events again (a replay), now: pending, a new generation, a fresh
    round of retries, due now (``next_attempt_at``, as the deliveries list shows), and
    their lanes due now, even one waiting for a retry. A delivery of those lanes waiting
    for its retry goes now too (events of a lane go in order), its round of retries going
    on. Returns how many existing deliveries were requeued."""
    await conn.execute(
        """
        INSERT INTO delivery_lanes AS l (tenant_id, subscription_id, lane, next_attempt_at)
        SELECT $1, $2, x, now() FROM unnest($3::text[]) AS x ORDER BY x
        ON CONFLICT (tenant_id, subscription_id, lane) DO UPDATE SET next_attempt_at = now()
        """, tenant, subscription_id, sorted(lanes))
    status: str = await conn.execute(
        """
        UPDATE deliveries SET status = 'pending', generation = generation + 1, tries = 0,
            first_try_at = NULL, next_attempt_at = now(), finished_at = NULL
        WHERE tenant_id = $1 AND subscription_id = $2 AND event_id = ANY($3::text[])
        """, tenant, subscription_id, event_ids)
    await conn.execute(
        """
        UPDATE deliveries SET next_attempt_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2 AND lane = ANY($3::text[])
          AND status = 'pending' AND next_attempt_at > now()
        """, tenant, subscription_id, sorted(lanes))
    return int(status.rsplit(" ", 1)[1])


async def lock_lanes_of(conn: asyncpg.Connection, tenant: str, subscription_id: str) -> None:
    await conn.execute(
        "SELECT 1 FROM delivery_lanes WHERE tenant_id = $1 AND subscription_id = $2"
        " ORDER BY lane FOR UPDATE", tenant, subscription_id)


async def restart(conn: asyncpg.Connection, tenant: str, subscription_id: str) -> None:
    """A resumed subscription's backlog: due now, with a fresh round of retries."""
    await lock_lanes_of(conn, tenant, subscription_id)
    await conn.execute(
        "UPDATE deliveries SET tries = 0, first_try_at = NULL, next_attempt_at = now()"
        " WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'pending'",
        tenant, subscription_id)
    await conn.execute(
        "UPDATE delivery_lanes l SET next_attempt_at = now()"
        " WHERE tenant_id = $1 AND subscription_id = $2 AND EXISTS (SELECT 1 FROM"
        " deliveries d WHERE d.tenant_id = l.tenant_id AND d.subscription_id ="
        " l.subscription_id AND d.lane = l.lane AND d.status = 'pending')",
        tenant, subscription_id)
    await notify(conn, tenant)


async def forget_attempts(conn: asyncpg.Connection, tenant: str, subscription_id: str) -> None:
    """A deleted subscription's attempt log (its deliveries and lanes go by cascade)."""
    await conn.execute(
        "DELETE FROM delivery_attempts WHERE tenant_id = $1 AND subscription_id = $2",
        tenant, subscription_id)


# Each lane of ``{lanes}`` (tenant_id, subscription_id, lane) with its first ``{per_lane}``
# pending deliveries in order (or one row without a delivery, if none is pending), each
# with its event and what sending it needs.
_HEADS = """
        SELECT x.tenant_id, x.subscription_id, x.lane, d.event_id, d.generation, d.tries,
               d.first_try_at, e.type, e.version, e.created_at, e.sequence,
               e.previous_event_id, e.data, s.url, s.secret_sealed, s.previous_secret_sealed,
               s.previous_secret_until > now() AS previous_valid, s.public_jwk, s.jwks_url,
               s.kid, s.failing_since, s.status AS subscription_status
        FROM {lanes} x
        JOIN subscriptions s ON s.tenant_id = x.tenant_id
            AND s.subscription_id = x.subscription_id
        LEFT JOIN LATERAL (
            SELECT * FROM deliveries d
            WHERE d.tenant_id = x.tenant_id AND d.subscription_id = x.subscription_id
              AND d.lane = x.lane AND d.status = 'pending'
            ORDER BY d.sequence LIMIT {per_lane}
        ) d ON true
        LEFT JOIN events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id
        ORDER BY x.tenant_id, x.subscription_id, x.lane, d.sequence
"""


async def claim(conn: asyncpg.Connection, *, limit: int, lease: float, dispatcher: str,
                per_lane: int = 1) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due lanes of active subscriptions, and return each with its
    first ``per_lane`` pending deliveries, their events and what is needed to send them
    (one row with ``event_id`` None for a lane that turned out empty), in one statement.
    The statement's snapshot may miss a delivery committed while it ran: that lane comes
    back empty and is handed back through ``record``, which looks again after locking it."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        WITH picked AS (
            SELECT l.tenant_id, l.subscription_id, l.lane
            FROM delivery_lanes l
            JOIN subscriptions s ON s.tenant_id = l.tenant_id
                AND s.subscription_id = l.subscription_id AND s.status = 'active'
                AND s.url IS NOT NULL  -- a subscription that went feed-only keeps its queue
            WHERE l.next_attempt_at <= now()
              AND (l.lease_until IS NULL OR l.lease_until < now())
            ORDER BY l.next_attempt_at
            LIMIT $1
            FOR UPDATE OF l SKIP LOCKED
        ), leased AS (
            UPDATE delivery_lanes l
            SET lease_until = now() + make_interval(secs => $2), leased_by = $3
            FROM picked
            WHERE l.tenant_id = picked.tenant_id
              AND l.subscription_id = picked.subscription_id AND l.lane = picked.lane
            RETURNING l.tenant_id, l.subscription_id, l.lane
        )
        """ + _HEADS.format(lanes="leased", per_lane="$4"),  # noqa: S608 - constant SQL
        limit, lease, dispatcher, per_lane)
    return rows


async def follow_failing(conn: asyncpg.Connection, tenant: str, subscription_id: str,
                         since: datetime) -> None:
    """Bring the subscription's ``failing_since`` up to date with the attempt log, once the
    attempts of a batch (none before ``since``) are in it: the first failed attempt after
    the last successful one, or NULL; ``warned_at`` goes when a success ends the failing.

    Said from the log, not from the order batches are recorded in: dispatchers record
    lanes as they finish, so a success can be written after a failure that came later,
    or before one that came earlier. Setting and clearing ``failing_since`` by arrival
    would then keep an endpoint failing that has worked since (and an event it refuses
    retried forever, its lane stuck behind it), or clear it for an endpoint that has
    been down since (and its events given up). Attempts before ``since`` decided the
    value already; only the few since are read."""
    await conn.execute(
        """
        WITH recent AS (
            SELECT attempted_at, coalesce(status_code BETWEEN 200 AND 299, false) AS ok
            FROM delivery_attempts
            WHERE tenant_id = $1 AND subscription_id = $2 AND attempted_at >= $3
        ), worked AS (
            SELECT max(attempted_at) AS at FROM recent WHERE ok
        ), failing AS (
            SELECT min(r.attempted_at) AS at FROM recent r, worked w
            WHERE NOT r.ok AND r.attempted_at > coalesce(w.at, '-infinity')
        )
        UPDATE subscriptions s SET
            failing_since = CASE WHEN w.at > coalesce(s.failing_since, '-infinity')
                                 THEN f.at ELSE least(s.failing_since, f.at) END,
            warned_at = CASE WHEN w.at > s.failing_since THEN NULL ELSE s.warned_at END
        FROM worked w, failing f
        WHERE s.tenant_id = $1 AND s.subscription_id = $2
        """, tenant, subscription_id, since)


async def seconds_to_next_due(conn: asyncpg.Connection) -> float | None:
    """Seconds until the next lane waiting for a retry is due; None when none waits."""
    seconds: float | None = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now())::float8"
        " FROM delivery_lanes WHERE next_attempt_at > now()")
    return seconds


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt and what it settles: ``kind`` is succeeded, failed (given up) or retry
    (at ``retry_at``)."""

    tenant: str
    subscription_id: str
    event_id: str
    generation: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None
    kind: str
    first_try: datetime | None
    retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class Release:
    """A leased lane to hand back, and the retry time its last attempt asked for (None:
    it got through, or was not tried). The lane is due when its first pending delivery
    is (that attempt's retry time, unless the delivery was replayed meanwhile), idle if
    nothing is pending."""

    tenant: str
    subscription_id: str
    lane: str
    retry_at: datetime | None


async def record(conn: asyncpg.Connection, *, dispatcher: str, attempts: list[Attempt],
                 releases: list[Release], keep: list[Release] | None = None,
                 lease: float = 0.0, per_lane: int = 1) -> list[asyncpg.Record]:
    """Log the attempts, settle their deliveries and hand the lanes back, in one
    transaction. Lanes this dispatcher no longer holds (its lease ran out and another
    took them) are left to their new holder.

    The lanes in ``keep`` stay leased (for ``lease`` more seconds) and their next pending
    deliveries (``per_lane`` at most) are returned, as ``claim`` returns them, to be sent
    at once; a kept lane with nothing left is handed back."""
    keep = keep or []
    everything = sorted(releases + keep, key=lambda r: (r.tenant, r.subscription_id, r.lane))
    async with conn.transaction():
        await conn.execute(
            """
            SELECT 1 FROM delivery_lanes l
            JOIN unnest($1::text[], $2::text[], $3::text[]) AS x(t, s, lane)
                ON l.tenant_id = x.t AND l.subscription_id = x.s AND l.lane = x.lane
            ORDER BY l.tenant_id, l.subscription_id, l.lane
            FOR UPDATE OF l
            """, *_keys(everything))
        if attempts:
            await conn.execute(
                """
                INSERT INTO delivery_attempts (tenant_id, subscription_id, event_id,
                    attempted_at, status_code, latency_ms, error, response_excerpt, dispatcher)
                SELECT x.*, $9 FROM unnest($1::text[], $2::text[], $3::text[],
                    $4::timestamptz[], $5::int[], $6::float8[], $7::text[], $8::text[])
                    AS x(t, s, e, at, code, ms, err, excerpt)
                WHERE EXISTS (SELECT 1 FROM subscriptions s
                              WHERE s.tenant_id = x.t AND s.subscription_id = x.s)
                """,
                [a.tenant for a in attempts], [a.subscription_id for a in attempts],
                [a.event_id for a in attempts], [a.attempted_at for a in attempts],
                [a.status_code for a in attempts], [a.latency_ms for a in attempts],
                [a.error for a in attempts], [a.excerpt for a in attempts], dispatcher)
            await conn.execute(
                """
                UPDATE deliveries d SET
                    attempts = d.attempts + 1,
                    last_status_code = x.code,
                    last_error = coalesce(x.err, CASE WHEN x.kind <> 'succeeded'
                                                      THEN 'HTTP ' || x.code END),
                    status = CASE WHEN x.kind IN ('succeeded', 'failed') THEN x.kind
                                  ELSE 'pending' END,
                    finished_at = CASE WHEN x.kind IN ('succeeded', 'failed') THEN now() END,
                    tries = CASE WHEN x.kind = 'succeeded' THEN d.tries ELSE d.tries + 1 END,
                    first_try_at = CASE WHEN x.kind = 'succeeded' THEN d.first_try_at
                        ELSE x.first_try END,
                    next_attempt_at = x.retry_at
                FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[],
                            $6::timestamptz[], $7::timestamptz[], $8::int[], $9::text[])
                    AS x(t, s, e, gen, kind, first_try, retry_at, code, err)
                WHERE d.tenant_id = x.t AND d.subscription_id = x.s AND d.event_id = x.e
                  AND d.generation = x.gen
                  -- still pending; said as finished_at, not status: a status = 'pending'
                  -- here would let the planner pick deliveries_lane_pending over the
                  -- primary key when statistics are missing, and scan the backlog
                  AND d.finished_at IS NULL
                """,
                [a.tenant for a in attempts], [a.subscription_id for a in attempts],
                [a.event_id for a in attempts], [a.generation for a in attempts],
                [a.kind for a in attempts], [a.first_try for a in attempts],
                [a.retry_at for a in attempts], [a.status_code for a in attempts],
                [a.error for a in attempts])
        # New statements, so new snapshots: they see every delivery committed by whoever
        # held these lanes before the lock above was granted.
        heads: list[asyncpg.Record] = []
        if keep:
            heads = await conn.fetch(
                """
                WITH kept AS (
                    UPDATE delivery_lanes l SET lease_until = now() + make_interval(secs => $4)
                    FROM unnest($1::text[], $2::text[], $3::text[]) AS x(t, s, lane)
                    WHERE l.tenant_id = x.t AND l.subscription_id = x.s AND l.lane = x.lane
                      AND l.leased_by = $5
                    RETURNING l.tenant_id, l.subscription_id, l.lane
                )
                """ + _HEADS.format(lanes="kept", per_lane="$6"),  # noqa: S608 - constant SQL
                *_keys(keep), lease, dispatcher, per_lane)
            sendable = [h for h in heads if h["event_id"] is not None
                        and h["subscription_status"] == "active" and h["url"] is not None]
            going = {(h["tenant_id"], h["subscription_id"], h["lane"]) for h in sendable}
            emptied = {(r.tenant, r.subscription_id, r.lane) for r in keep} - going
            heads = sendable
            releases = releases + [r for r in keep
                                   if (r.tenant, r.subscription_id, r.lane) in emptied]
        releases = sorted(releases, key=lambda r: (r.tenant, r.subscription_id, r.lane))
        await conn.execute(
            """
            UPDATE delivery_lanes l SET
                lease_until = NULL, leased_by = NULL,
                -- due when its first pending delivery is; NULL (idle) if none is pending
                next_attempt_at = (
                    SELECT coalesce(d.next_attempt_at, now()) FROM deliveries d
                    WHERE d.tenant_id = l.tenant_id AND d.subscription_id = l.subscription_id
                      AND d.lane = l.lane AND d.status = 'pending'
                    ORDER BY d.sequence LIMIT 1)
            FROM unnest($1::text[], $2::text[], $3::text[]) AS x(t, s, lane)
            WHERE l.tenant_id = x.t AND l.subscription_id = x.s AND l.lane = x.lane
              AND l.leased_by = $4
            """, *_keys(releases), dispatcher)
    return heads


def _keys(lanes: list[Release]) -> tuple[list[str], list[str], list[str]]:
    return ([r.tenant for r in lanes], [r.subscription_id for r in lanes],
            [r.lane for r in lanes])


_PRUNE_LOCK = int.from_bytes(b"rgwprune", "big") & 0x7FFF_FFFF_FFFF_FFFF


async def prune(conn: asyncpg.Connection, *, before: datetime, batch: int = 5000) -> int:
    """Forget, for every tenant, attempts from before ``before``, finished deliveries of
    events from before it, and those events once no delivery needs them; at most
    ``batch`` events a tenant. A pending delivery and its event are never removed. One
    dispatcher prunes at a time (the others skip). Returns how many rows went."""
    removed = 0
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _PRUNE_LOCK):
            return 0
        status = await conn.execute(
            "DELETE FROM delivery_attempts WHERE (tenant_id, attempt_id) IN ("
            "SELECT tenant_id, attempt_id FROM delivery_attempts WHERE attempted_at < $1"
            " LIMIT $2)",
            before, batch)
        removed += int(status.rsplit(" ", 1)[1])
        for tenant in [r["tenant_id"] for r in await conn.fetch(
                "SELECT DISTINCT tenant_id FROM event_lanes")]:
            old = [r["event_id"] for r in await conn.fetch(
                "SELECT event_id FROM events e WHERE tenant_id = $1 AND created_at < $2"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.tenant_id = e.tenant_id"
                " AND d.event_id = e.event_id AND d.status = 'pending')"
                " ORDER BY created_at LIMIT $3", tenant, before, batch)]
            if not old:
                continue
            status = await conn.execute(
                "DELETE FROM deliveries WHERE tenant_id = $1 AND event_id = ANY($2::text[])"
                " AND status <> 'pending'", tenant, old)
            removed += int(status.rsplit(" ", 1)[1])
            status = await conn.execute(
                "DELETE FROM events e WHERE e.tenant_id = $1 AND e.event_id = ANY($2::text[])"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.tenant_id = e.tenant_id"
                " AND d.event_id = e.event_id)", tenant, old)
            removed += int(status.rsplit(" ", 1)[1])
    return removed
