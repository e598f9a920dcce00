"""signing_keys: our ed25519 key per tenant, for the optional ``v1a`` webhook signature.

Created on first use; the public half is published at ``GET /v1/webhook-keys``. The private
seed is stored encrypted (``PRIVATE_KEY``, bound to the key's row: docs/security.md) and
leaves this module only decrypted, to the dispatcher that signs with it.
"""

from __future__ import annotations

import asyncpg

from gateway.store import data_keys
from security.fields import Column
from security.webhooks import new_ed25519

PRIVATE_KEY = Column("signing_keys", "private_key")
FIRST_KID = "sig-1"


async def current(conn: asyncpg.Connection, tenant: str) -> tuple[str, bytes]:
    """The tenant's newest signing key as (kid, private seed), made if there is none."""
    row = await _newest(conn, tenant)
    if row is None:
        made, public = new_ed25519()
        async with conn.transaction():
            [sealed] = await data_keys.encrypt(conn, tenant,
                                               [(PRIVATE_KEY, (tenant, FIRST_KID), made)])
            await conn.execute(
                "INSERT INTO signing_keys (tenant_id, kid, private_key_sealed, public_key)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                tenant, FIRST_KID, sealed, public)
        row = await _newest(conn, tenant)
    if row is None or row["private_key_sealed"] is None:  # not after the insert above
        raise ValueError(f"tenant {tenant} has no sealed signing key")
    kid: str = row["kid"]
    stored = bytes(row["private_key_sealed"])
    cipher = await data_keys.cipher_for(conn, tenant, [stored])
    seed = cipher.decrypt_bytes(stored, PRIVATE_KEY, (tenant, kid))
    if seed is None:
        raise ValueError(f"signing key {kid} of tenant {tenant} has no private key")
    return kid, seed


async def _newest(conn: asyncpg.Connection, tenant: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT kid, private_key_sealed FROM signing_keys WHERE tenant_id = $1"
        " ORDER BY created_at DESC LIMIT 1", tenant)
    return row


async def published(conn: asyncpg.Connection, tenant: str) -> list[tuple[str, bytes]]:
    """Every public key of the tenant as (kid, raw public key), newest first."""
    await current(conn, tenant)
    rows = await conn.fetch(
        "SELECT kid, public_key FROM signing_keys WHERE tenant_id = $1"
        " ORDER BY created_at DESC", tenant)
    return [(r["kid"], bytes(r["public_key"])) for r in rows]


async def seal_plain(conn: asyncpg.Connection, *, keys: data_keys.Keys) -> int:
    """Encrypt the plain private keys a database migrated from before encryption at rest
    still holds (migration 0015), and empty the plain column; returns how many."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT tenant_id, kid, private_key FROM signing_keys"
            " WHERE private_key IS NOT NULL ORDER BY tenant_id, kid FOR UPDATE")
        for row in rows:
            tenant, place = row["tenant_id"], (row["tenant_id"], row["kid"])
            [sealed] = await data_keys.encrypt(
                conn, tenant, [(PRIVATE_KEY, place, bytes(row["private_key"]))], keys=keys)
            await conn.execute(
                "UPDATE signing_keys SET private_key_sealed = $3, private_key = NULL"
                " WHERE tenant_id = $1 AND kid = $2", *place, sealed)
    return len(rows)
