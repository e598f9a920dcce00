"""Versioned SQL migrations, applied at start: forward only, each in its own transaction.

Migrations are ``gateway/migrations/NNNN_name.sql``. Several processes may start at once:
an advisory lock makes one of them migrate while the others wait. A database whose schema
is newer than this code knows is refused rather than used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

# pg_advisory_lock key: "recon-gw" as a 64-bit integer, fixed forever.
_LOCK_KEY = int.from_bytes(b"recon-gw", "big") & 0x7FFF_FFFF_FFFF_FFFF
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer recon-gateway than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> tuple[Migration, ...]:
    """All migrations shipped with this code, in order."""
    found = []
    for item in resources.files("gateway.migrations").iterdir():
        match = _NAME.match(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return tuple(found)


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema up to date; return the schema version now in force."""
    known = migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        # Created only when missing: a service role without CREATE on the schema (the setup
        # of docs/operations.md, migrations run by the owner role) then starts on a
        # database already migrated.
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if current > len(known):
            raise SchemaTooNewError(
                f"the database schema is at version {current}, but this recon-gateway "
                f"knows only up to {len(known)}: upgrade recon-gateway"
            )
        for migration in known[current:]:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )
            logger.info("applied migration %04d_%s", migration.version, migration.name)
        return len(known)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
