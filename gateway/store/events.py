"""events: the outbox's history, read back for the polling feed.

The feed is ordered by (writing transaction id, event_pk) and serves only events whose
transaction has finished (ids below the oldest still running), so a cursor never moves
past an event that commits later with a smaller position.

The transaction id is an ``xid8`` and is compared and ordered as one, never as text: as
text, 1000 sorts before 999, and a cursor taken at 999 would pass over every event from
1000 to 9989. It leaves here as a Python int (a full 64-bit id stays below 2**63 in
practice: that would take 2**31 wraparounds), and comes back the same way.

Who gets which event is declared once, here (``reaches``), and read by the fan-out
(store.deliveries), the feed and replays (store.subscriptions) alike.
"""

from __future__ import annotations

import asyncpg

from security.roles import Role

# The largest transaction id and event_pk a cursor may carry (bigint's range).
MAX_POSITION = 2**63 - 1


def reaches(event: str, *, types: str, owner: str, every_owner: str) -> str:
    """SQL, true where the event row ``event`` goes to a subscription whose event types,
    owning key, and whether it sees every key's events are the SQL expressions ``types``,
    ``owner`` and ``every_owner`` (columns of a joined subscription, or parameters).

    A subscription gets an event of its types unless the event is owned (``owned``: it is
    about an invoice or a subscription, whose key is ``owner_key_id``, None when no key
    owns it) by a key other than the subscription's own. Subscriptions of keys that are
    not crm keys (admin) get every owner's events (``sees_every_owner``).

    Ownership belongs to a lane's subject (outbox.emit stamps it on each event), so a
    subscription gets every event of a lane or none, and the ``previous_event_id`` chains
    of the lanes it gets stay whole.
    """
    return (f"(({event}.type = ANY({types}) OR '*' = ANY({types}))"
            f" AND (NOT {event}.owned OR {every_owner}"
            f" OR {event}.owner_key_id = {owner}))")


def sees_every_owner(subscription: str) -> str:
    """SQL, true where the subscription row ``subscription`` was made by a key that is
    not a crm key. A key that cannot be found counts as a crm key: the narrow side."""
    return (f"EXISTS (SELECT 1 FROM api_keys k WHERE k.key_id = {subscription}.owner_key_id"  # noqa: S608
            f" AND k.tenant_id = {subscription}.tenant_id AND k.role <> '{Role.CRM.value}')")


def subscription_reaches(event: str, subscription: str) -> str:
    """``reaches`` for a joined subscription row ``subscription``."""
    return reaches(event, types=f"{subscription}.event_types",
                   owner=f"{subscription}.owner_key_id",
                   every_owner=sees_every_owner(subscription))


async def audience(conn: asyncpg.Connection, tenant: str,
                   subscription_id: str) -> asyncpg.Record | None:
    """A subscription's ``event_types``, ``owner_key_id`` and ``every_owner``: what
    ``reaches`` needs as parameters. None: no such subscription."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT s.event_types, s.owner_key_id, {sees_every_owner('s')} AS every_owner"  # noqa: S608 - constant SQL
        " FROM subscriptions s WHERE s.tenant_id = $1 AND s.subscription_id = $2",
        tenant, subscription_id)
    return row


async def feed(conn: asyncpg.Connection, tenant: str, subscription_id: str, *,
               after: tuple[int, int] | None, limit: int) -> list[asyncpg.Record]:
    """The events a subscription gets (``reaches``) after the position ``after``
    (transaction id, event_pk)."""
    sub = await audience(conn, tenant, subscription_id)
    if sub is None:
        return []
    # The subscription comes in as parameters, not as a joined row, so the plan stays an
    # ordered walk of events_feed that stops at the limit.
    # The position columns are named apart from ``txid``: ORDER BY picks an output column
    # over a table column of the same name, which is how a text copy once set the order.
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT e.event_id, e.type, e.version, e.created_at, e.lane, e.sequence,
               e.previous_event_id, e.data,
               e.txid::text::bigint AS position_txid, e.event_pk AS position_pk
        FROM events e
        WHERE e.tenant_id = $1
          AND {reaches('e', types='$2::text[]', owner='$6::text', every_owner='$7::boolean')}
          AND ($3::bigint IS NULL OR (e.txid, e.event_pk) > ($3::bigint::text::xid8, $4::bigint))
          AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.txid, e.event_pk
        LIMIT $5
        """,  # noqa: S608 - constant SQL
        tenant, list(sub["event_types"]), after[0] if after else None,
        after[1] if after else None, limit, sub["owner_key_id"], sub["every_owner"])
    return rows
