"""subscriptions, and what people do with their deliveries (resume, replay, listings).

Subscriptions' deliveries and lanes are kept by store.deliveries.

``owner`` narrows every query to the subscriptions one API key made (CRM keys); None (the
admin) sees all of the tenant's.

The signing secrets (current and previous) are stored encrypted (``SECRET``,
``PREVIOUS_SECRET``, bound to the subscription's row: docs/security.md); ``secrets`` gives
them back to the dispatcher, and no other function reads or returns them.

Lock order, shared with the dispatcher so the two never deadlock: a subscription row
(only ever with UPDATE of non-key columns, or FOR UPDATE to delete it), then its lanes in
lane order, then their deliveries. The dispatcher takes lanes and deliveries but never a
lock on a subscription row while it holds lanes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from gateway.store import data_keys, deliveries
from gateway.store import events as event_store
from security.fields import Column

_COLUMNS = ("subscription_id, owner_key_id, url, event_types, public_jwk, jwks_url, kid, "
            "status, status_reason, failing_since, warned_at, previous_secret_until, "
            "created_at, updated_at")


SECRET = Column("subscriptions", "secret")
PREVIOUS_SECRET = Column("subscriptions", "previous_secret")


def new_subscription_id() -> str:
    return "sub_" + uuid.uuid4().hex


def public(row: asyncpg.Record) -> dict[str, Any]:
    """A subscription as the API shows it: never its secrets."""
    out = {k: row[k] for k in _COLUMNS.split(", ")}
    out["id"] = out.pop("subscription_id")
    out["event_types"] = list(out["event_types"])
    jwk = out["public_jwk"]
    out["public_jwk"] = json.loads(jwk) if isinstance(jwk, str) else jwk
    for key in ("failing_since", "warned_at", "previous_secret_until", "created_at",
                "updated_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


async def create(conn: asyncpg.Connection, tenant: str, *, owner: str, url: str | None,
                 event_types: list[str], public_jwk: dict[str, Any] | None,
                 jwks_url: str | None, kid: str, secret: str) -> asyncpg.Record:
    subscription_id = new_subscription_id()
    async with conn.transaction():
        [sealed] = await data_keys.encrypt(conn, tenant,
                                           [(SECRET, (tenant, subscription_id), secret)])
        row: asyncpg.Record = await conn.fetchrow(
            f"""
            INSERT INTO subscriptions (tenant_id, subscription_id, owner_key_id, url,
                                       event_types, public_jwk, jwks_url, kid, secret_sealed)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
            RETURNING {_COLUMNS}
            """,  # noqa: S608 - the column list is a constant
            tenant, subscription_id, owner, url, event_types,
            json.dumps(public_jwk) if public_jwk is not None else None, jwks_url, kid, sealed)
    return row


async def get(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
              owner: str | None) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM subscriptions"  # noqa: S608 - the column list is a constant
        " WHERE tenant_id = $1 AND subscription_id = $2"
        " AND ($3::text IS NULL OR owner_key_id = $3)",
        tenant, subscription_id, owner)
    return row


async def list_page(conn: asyncpg.Connection, tenant: str, *, owner: str | None,
                    after: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE tenant_id = $1"  # noqa: S608
        " AND ($2::text IS NULL OR owner_key_id = $2)"
        " AND ($3::text IS NULL OR subscription_id > $3)"
        " ORDER BY subscription_id LIMIT $4", tenant, owner, after, limit)
    return [public(r) for r in rows]


async def update(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                 owner: str | None, url: str | None, set_url: bool,
                 event_types: list[str] | None) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE subscriptions SET
            url = CASE WHEN $4 THEN $5 ELSE url END,
            event_types = coalesce($6, event_types), updated_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2
          AND ($3::text IS NULL OR owner_key_id = $3)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - the column list is a constant
        tenant, subscription_id, owner, set_url, url, event_types)
    return row


async def pause(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                owner: str | None) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE subscriptions SET status = 'paused', status_reason = 'paused by its owner',
            updated_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2
          AND ($3::text IS NULL OR owner_key_id = $3)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - the column list is a constant
        tenant, subscription_id, owner)
    return row


async def resume(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                 owner: str | None) -> asyncpg.Record | None:
    """Active again (after a pause or a disable): its backlog is due now, in order, with a
    fresh round of retries."""
    async with conn.transaction():
        row: asyncpg.Record | None = await conn.fetchrow(
            f"""
            UPDATE subscriptions SET status = 'active', status_reason = NULL,
                failing_since = NULL, warned_at = NULL, updated_at = now()
            WHERE tenant_id = $1 AND subscription_id = $2
              AND ($3::text IS NULL OR owner_key_id = $3)
            RETURNING {_COLUMNS}
            """,  # noqa: S608 - the column list is a constant
            tenant, subscription_id, owner)
        if row is not None:
            await deliveries.restart(conn, tenant, subscription_id)
    return row


async def delete(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                 owner: str | None) -> bool:
    async with conn.transaction():
        found = await conn.fetchval(
            "SELECT 1 FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2"
            " AND ($3::text IS NULL OR owner_key_id = $3) FOR UPDATE",
            tenant, subscription_id, owner)
        if found is None:
            return False
        await deliveries.lock_lanes_of(conn, tenant, subscription_id)
        await conn.execute(
            "DELETE FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2",
            tenant, subscription_id)
        await deliveries.forget_attempts(conn, tenant, subscription_id)
    return True


async def rotate_secret(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                        owner: str | None, secret: str,
                        overlap_seconds: float) -> asyncpg.Record | None:
    """The new secret signs from now on; the old one also signs for ``overlap_seconds``.

    The old secret is decrypted and encrypted again as the previous one: a ciphertext is
    bound to its column, so it cannot simply move there."""
    async with conn.transaction():
        old = await conn.fetchval(
            "SELECT secret_sealed FROM subscriptions WHERE tenant_id = $1"
            " AND subscription_id = $2 AND ($3::text IS NULL OR owner_key_id = $3)"
            " FOR NO KEY UPDATE", tenant, subscription_id, owner)
        if old is None:
            return None
        place = (tenant, subscription_id)
        cipher = await data_keys.cipher_for(conn, tenant, [old])
        previous = cipher.decrypt_text(old, SECRET, place)
        sealed, sealed_previous = await data_keys.encrypt(
            conn, tenant, [(SECRET, place, secret), (PREVIOUS_SECRET, place, previous)])
        row: asyncpg.Record | None = await conn.fetchrow(
            f"""
            UPDATE subscriptions SET previous_secret_sealed = $4, secret_sealed = $5,
                previous_secret_until = now() + make_interval(secs => $6), updated_at = now()
            WHERE tenant_id = $1 AND subscription_id = $2
              AND ($3::text IS NULL OR owner_key_id = $3)
            RETURNING {_COLUMNS}
            """,  # noqa: S608 - the column list is a constant
            tenant, subscription_id, owner, sealed_previous, sealed, overlap_seconds)
    return row


async def secrets(conn: asyncpg.Connection, tenant: str, subscription_id: str,
                  sealed: bytes | None, previous_sealed: bytes | None
                  ) -> tuple[str | None, str | None]:
    """The subscription's signing secrets, current and previous, from their ciphertexts as
    read (by ``deliveries.claim``)."""
    place = (tenant, subscription_id)
    cipher = await data_keys.cipher_for(conn, tenant, [sealed, previous_sealed])
    return (cipher.decrypt_text(sealed, SECRET, place),
            cipher.decrypt_text(previous_sealed, PREVIOUS_SECRET, place))


async def seal_plain(conn: asyncpg.Connection, *, keys: data_keys.Keys) -> int:
    """Encrypt the plain secrets a database migrated from before encryption at rest still
    holds (migration 0015), and empty the plain columns; returns how many rows."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT tenant_id, subscription_id, secret, previous_secret FROM subscriptions"
            " WHERE secret IS NOT NULL OR previous_secret IS NOT NULL"
            " ORDER BY tenant_id, subscription_id FOR NO KEY UPDATE")
        for row in rows:
            tenant, place = row["tenant_id"], (row["tenant_id"], row["subscription_id"])
            sealed, previous = await data_keys.encrypt(
                conn, tenant, [(SECRET, place, row["secret"]),
                               (PREVIOUS_SECRET, place, row["previous_secret"])], keys=keys)
            await conn.execute(
                "UPDATE subscriptions SET secret_sealed = coalesce($3, secret_sealed),"
                " previous_secret_sealed = coalesce($4, previous_secret_sealed),"
                " secret = NULL, previous_secret = NULL"
                " WHERE tenant_id = $1 AND subscription_id = $2", *place, sealed, previous)
    return len(rows)


async def set_key(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                  owner: str | None, public_jwk: dict[str, Any] | None, jwks_url: str | None,
                  kid: str) -> asyncpg.Record | None:
    """A new encryption key: every attempt from now on (retries too) encrypts to it."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE subscriptions SET public_jwk = $4::jsonb, jwks_url = $5, kid = $6,
            updated_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2
          AND ($3::text IS NULL OR owner_key_id = $3)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - the column list is a constant
        tenant, subscription_id, owner,
        json.dumps(public_jwk) if public_jwk is not None else None, jwks_url, kid)
    return row


async def replay(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                 event_id: str | None, since: datetime | None) -> int:
    """Deliver again one event, or every event the subscription gets (its types, its
    owner's events: ``events.reaches``) since a time, with the same ``webhook-id``; events
    from before the subscription are delivered too. Returns how many deliveries were
    queued."""
    async with conn.transaction():
        sub = await event_store.audience(conn, tenant, subscription_id)
        if sub is None:
            return 0
        found = await conn.fetch(
            f"""
            SELECT e.event_id, e.lane FROM events e
            WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.event_id = $2)
              AND ($3::timestamptz IS NULL OR e.created_at >= $3)
              AND {event_store.reaches('e', types='$4::text[]', owner='$5::text',
                                       every_owner='$6::boolean')}
            ORDER BY e.lane, e.sequence
            """,  # noqa: S608 - constant SQL
            tenant, event_id, since, list(sub["event_types"]), sub["owner_key_id"],
            sub["every_owner"])
        if not found:
            return 0
        ids = [e["event_id"] for e in found]
        requeued = await deliveries.requeue(conn, tenant, subscription_id,
                                            lanes=list({e["lane"] for e in found}),
                                            event_ids=ids)
        added = await deliveries.fan_out(conn, tenant, ids, subscription_id)
        await deliveries.notify(conn, tenant)
    return requeued + added


async def warn(conn: asyncpg.Connection, tenant: str, subscription_id: str,
               after: float) -> datetime | None:
    """Mark an active subscription failing for ``after`` seconds as warned, once; return
    since when it fails (None: no warning due)."""
    since: datetime | None = await conn.fetchval(
        """
        UPDATE subscriptions SET warned_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'active'
          AND warned_at IS NULL AND failing_since <= now() - make_interval(secs => $3)
        RETURNING failing_since
        """, tenant, subscription_id, after)
    return since


async def disable(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                  reason: str, at_once: bool, after: float) -> bool:
    """Disable an active subscription: ``at_once``, or when it has failed for ``after``
    seconds and was warned in an earlier transaction. Whether it was disabled now."""
    disabled = await conn.fetchval(
        """
        UPDATE subscriptions SET status = 'disabled', status_reason = $3, updated_at = now()
        WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'active'
          AND ($4 OR (warned_at < now()
                      AND failing_since <= now() - make_interval(secs => $5)))
        RETURNING subscription_id
        """, tenant, subscription_id, reason, at_once, after)
    return disabled is not None


async def deliveries_page(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
                     status: str | None, after: list[Any] | None,
                     limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT d.event_id, e.type, d.lane, d.sequence, d.status, d.attempts, d.tries,
               d.next_attempt_at, d.last_status_code, d.last_error, d.created_at,
               d.finished_at
        FROM deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id
        WHERE d.tenant_id = $1 AND d.subscription_id = $2
          AND ($3::text IS NULL OR d.status = $3)
          AND ($4::timestamptz IS NULL OR (d.created_at, d.event_id) > ($4, $5::text))
        ORDER BY d.created_at, d.event_id LIMIT $6
        """, tenant, subscription_id, status,
        datetime.fromisoformat(after[0]) if after else None, after[1] if after else None,
        limit)
    return [_stamped(dict(r), "next_attempt_at", "created_at", "finished_at") for r in rows]


async def attempts(conn: asyncpg.Connection, tenant: str, subscription_id: str,
                   event_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT attempted_at, status_code, latency_ms, error, response_excerpt, dispatcher"
        " FROM delivery_attempts WHERE tenant_id = $1 AND subscription_id = $2"
        " AND event_id = $3 ORDER BY attempt_id", tenant, subscription_id, event_id)
    return [_stamped(dict(r), "attempted_at") for r in rows]


def _stamped(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        row[key] = row[key].isoformat() if row[key] is not None else None
    return row
