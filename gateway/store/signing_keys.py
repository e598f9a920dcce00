"""signing_keys: our ed25519 key per tenant, for the optional ``v1a`` webhook signature.

Created on first use; the public half is published at ``GET /v1/webhook-keys``.
"""

from __future__ import annotations

import asyncpg

from security.webhooks import new_ed25519


async def current(conn: asyncpg.Connection, tenant: str) -> tuple[str, bytes]:
    """The tenant's newest signing key as (kid, private seed), made if there is none."""
    row = await conn.fetchrow(
        "SELECT kid, private_key FROM signing_keys WHERE tenant_id = $1"
        " ORDER BY created_at DESC LIMIT 1", tenant)
    if row is None:
        seed, public = new_ed25519()
        await conn.execute(
            "INSERT INTO signing_keys (tenant_id, kid, private_key, public_key)"
            " VALUES ($1, 'sig-1', $2, $3) ON CONFLICT DO NOTHING", tenant, seed, public)
        row = await conn.fetchrow(
            "SELECT kid, private_key FROM signing_keys WHERE tenant_id = $1"
            " ORDER BY created_at DESC LIMIT 1", tenant)
    return row["kid"], bytes(row["private_key"])


async def published(conn: asyncpg.Connection, tenant: str) -> list[tuple[str, bytes]]:
    """Every public key of the tenant as (kid, raw public key), newest first."""
    await current(conn, tenant)
    rows = await conn.fetch(
        "SELECT kid, public_key FROM signing_keys WHERE tenant_id = $1"
        " ORDER BY created_at DESC", tenant)
    return [(r["kid"], bytes(r["public_key"])) for r in rows]
