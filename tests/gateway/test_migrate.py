from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateway.migrate import SchemaTooNewError, migrate, migrations


async def test_migrations_create_the_tables_once(conn: asyncpg.Connection) -> None:
    version = await migrate(conn)
    assert version == len(migrations()) >= 1
    tables = {r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"bank_accounts", "raw_documents", "statements", "transactions"} <= tables
    # Running again applies nothing and changes nothing.
    assert await migrate(conn) == version
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == version


async def test_every_table_carries_the_tenant_key(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables t WHERE table_schema = 'public'"
        " AND table_name <> 'schema_migrations' AND NOT EXISTS ("
        "  SELECT 1 FROM information_schema.columns c WHERE c.table_schema = 'public'"
        "  AND c.table_name = t.table_name AND c.column_name = 'tenant_id')")
    assert rows == []


async def test_a_newer_schema_is_refused(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(SchemaTooNewError, match="version 999"):
        await migrate(conn)


async def test_processes_starting_together_migrate_once(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        versions = await asyncio.gather(*(migrate(c) for c in connections))
        assert len(set(versions)) == 1
        count = await connections[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == versions[0]
    finally:
        for c in connections:
            await c.close()


async def test_a_failing_migration_leaves_nothing_behind(conn: asyncpg.Connection,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import migrate as module

    broken = (*migrations(), module.Migration(len(migrations()) + 1, "broken",
                                              "CREATE TABLE half_done (x int); SELECT 1/0;"))
    monkeypatch.setattr(module, "migrations", lambda: broken)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(conn)
    assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == len(broken) - 1
