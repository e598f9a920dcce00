"""api_keys: who may call the API, with which role.

A tenant's active keys have distinct names (a unique index, migration 0009), so a key is
found by its id or by its name alike; a revoked key's name may be given again. When a key
was last used is kept to the minute, at the cost of one write a minute for a busy key.

Creating and revoking a key append an audit entry (``actor``: who; a system actor when the
caller names none) in the same transaction; the secret is never in it, only its key id,
name and role.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.store import audit
from security.apikeys import NewKey
from security.roles import Role

USE_RECORDED_EVERY = timedelta(minutes=1)
STORE_ACTOR = audit.system_actor("api key store")  # a caller that names no actor


class NameTaken(ValueError):
    """Another active key of the tenant has this name."""

    def __init__(self, name: str, key_id: str | None) -> None:
        self.name, self.key_id = name, key_id
        super().__init__(f"a key named {name!r} already exists"
                         + (f" (id {key_id})" if key_id else ""))


async def create(conn: asyncpg.Connection, tenant: str, *, key: NewKey, role: Role,
                 name: str, actor: Mapping[str, str] | None = None) -> None:
    """Store a new key; ``NameTaken`` if an active key of the tenant has the name."""
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO api_keys (tenant_id, key_id, name, role, secret_sha256)"
                " VALUES ($1, $2, $3, $4, $5)",
                tenant, key.key_id, name, role.value, key.secret_sha256,
            )
            await audit.append(conn, tenant, actor=actor or STORE_ACTOR,
                               action="api_key.created", object_type="api_key",
                               object_id=key.key_id,
                               after={"name": name, "role": role.value, "revoked": False})
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "api_keys_active_name":
            raise
        holder = await conn.fetchval(
            "SELECT key_id FROM api_keys WHERE tenant_id = $1 AND name = $2"
            " AND revoked_at IS NULL", tenant, name)
        raise NameTaken(name, holder) from exc


async def revoke(conn: asyncpg.Connection, tenant: str, key_id_or_name: str, *,
                 actor: Mapping[str, str] | None = None) -> asyncpg.Record | None:
    """Revoke exactly one active key: the one with this id, else the one with this name.
    Return it (key_id, name, role), or None when no active key has that id or name."""
    async with conn.transaction():
        row: asyncpg.Record | None = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = ("
            "  SELECT key_id FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL"
            "  AND (key_id = $2 OR name = $2) ORDER BY key_id = $2 DESC LIMIT 1)"
            " AND revoked_at IS NULL RETURNING key_id, name, role",
            tenant, key_id_or_name,
        )
        if row is not None:
            state = {"name": row["name"], "role": row["role"]}
            await audit.append(conn, tenant, actor=actor or STORE_ACTOR,
                               action="api_key.revoked", object_type="api_key",
                               object_id=row["key_id"], before={**state, "revoked": False},
                               after={**state, "revoked": True})
    return row


async def listing(conn: asyncpg.Connection, tenant: str, *,
                  active_only: bool = False) -> list[asyncpg.Record]:
    """The tenant's keys, oldest first: id, name, role, created, last used, revoked."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT key_id, name, role, created_at, last_used_at, revoked_at FROM api_keys"
        " WHERE tenant_id = $1 AND ($2 = false OR revoked_at IS NULL)"
        " ORDER BY created_at, key_id",
        tenant, active_only,
    )
    return rows


async def find_active(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT tenant_id, key_id, name, role, secret_sha256, last_used_at FROM api_keys"
        " WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    return row


def use_is_due(last_used_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a request with a key last recorded at ``last_used_at`` should record its
    use: never recorded, or over a minute ago (a clock that differs from the database's
    only costs a statement that writes nothing: ``record_use`` checks again)."""
    if last_used_at is None:
        return True
    return (now or datetime.now(UTC)) - last_used_at >= USE_RECORDED_EVERY


async def record_use(conn: asyncpg.Connection, key_id: str) -> None:
    """Note that the key was used now, unless that was noted less than a minute ago (by
    this process or another): at most one write a minute per key."""
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE key_id = $1"
        " AND (last_used_at IS NULL OR last_used_at <= now() - $2::interval)",
        key_id, USE_RECORDED_EVERY,
    )


async def active_ids(conn: asyncpg.Connection, tenant: str, key_id_or_name: str, *,
                     role: Role) -> list[str]:
    """The ids of the tenant's active keys of ``role`` with this id or name."""
    rows = await conn.fetch(
        "SELECT key_id FROM api_keys WHERE tenant_id = $1 AND role = $2"
        " AND revoked_at IS NULL AND (key_id = $3 OR name = $3) ORDER BY key_id",
        tenant, role.value, key_id_or_name,
    )
    return [r["key_id"] for r in rows]
