"""api_keys: who may call the API, with which role."""

from __future__ import annotations

import asyncpg

from security.apikeys import NewKey
from security.roles import Role


async def create(conn: asyncpg.Connection, tenant: str, *, key: NewKey, role: Role,
                 name: str) -> None:
    await conn.execute(
        "INSERT INTO api_keys (tenant_id, key_id, name, role, secret_sha256)"
        " VALUES ($1, $2, $3, $4, $5)",
        tenant, key.key_id, name, role.value, key.secret_sha256,
    )


async def revoke(conn: asyncpg.Connection, tenant: str, key_id_or_name: str) -> int:
    """Revoke the key with this id, or every active key with this name; return how many."""
    status: str = await conn.execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE tenant_id = $1 AND revoked_at IS NULL AND (key_id = $2 OR name = $2)",
        tenant, key_id_or_name,
    )
    return int(status.rsplit(" ", 1)[1])


async def find_active(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT tenant_id, key_id, name, role, secret_sha256 FROM api_keys"
        " WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    return row


async def active_ids(conn: asyncpg.Connection, tenant: str, key_id_or_name: str, *,
                     role: Role) -> list[str]:
    """The ids of the tenant's active keys of ``role`` with this id or name."""
    rows = await conn.fetch(
        "SELECT key_id FROM api_keys WHERE tenant_id = $1 AND role = $2"
        " AND revoked_at IS NULL AND (key_id = $3 OR name = $3) ORDER BY key_id",
        tenant, role.value, key_id_or_name,
    )
    return [r["key_id"] for r in rows]
