"""The migrated test databases given to one test after another (``tests/databases.py``):
what a test leaves behind never reaches the next one; a database that cannot be made as new
is dropped rather than lent again.

On the embedded server only: what is checked is our emptying, not the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.databases import SCHEMA_DIGEST, MigratedDatabases, with_database

DOCUMENT = ("INSERT INTO raw_documents (tenant_id, sha256, source, format, size_bytes, content)"
            " VALUES ('default', sha256('x'), 'x.sta', 'mt940', 60000,"
            " decode(repeat('ab', 60000), 'hex')) RETURNING document_id")  # out of line
ACCOUNT = ("INSERT INTO bank_accounts (tenant_id, account_key, currency)"
           " VALUES ('default', 'k', 'EUR') RETURNING account_id")


@pytest.fixture
async def lender(embedded_server_url: str) -> AsyncIterator[MigratedDatabases]:
    databases = MigratedDatabases(embedded_server_url)
    yield databases
    await databases.drop_all()


async def connect(lender: MigratedDatabases, name: str) -> asyncpg.Connection:
    return await asyncpg.connect(with_database(lender.server_url, name))


async def exists(lender: MigratedDatabases, name: str) -> bool:
    admin = await asyncpg.connect(lender.server_url)
    try:
        return bool(await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                         name))
    finally:
        await admin.close()


async def write_rows(conn: asyncpg.Connection) -> None:
    """Rows committed and rows rolled back, in tables with identity columns."""
    await conn.execute("INSERT INTO customers (tenant_id, customer_id, name)"
                       " VALUES ('default', 'C1', 'Globex')")
    await conn.execute(DOCUMENT)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(ACCOUNT)
    await transaction.rollback()


async def test_a_database_given_back_is_lent_again_exactly_as_new(
        lender: MigratedDatabases) -> None:
    name = await lender.lend()
    conn = await connect(lender, name)
    try:
        new = await conn.fetchval(SCHEMA_DIGEST)
        await write_rows(conn)
    finally:
        await conn.close()
    await lender.give_back(name)

    assert await lender.lend() == name
    conn = await connect(lender, name)
    try:
        for table in lender.tables:  # names from the catalog, quoted there
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table  # noqa: S608
        assert await conn.fetchval(SCHEMA_DIGEST) == new
        assert await conn.fetchval(DOCUMENT) == 1  # its identity starts again
        assert await conn.fetchval(ACCOUNT) == 1  # also after an insert rolled back
    finally:
        await conn.close()


async def test_a_session_left_open_is_ended_before_the_database_is_lent_again(
        lender: MigratedDatabases) -> None:
    name = await lender.lend()
    left = await connect(lender, name)
    await left.execute("SELECT pg_advisory_lock(42)")
    await lender.give_back(name)
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                        ConnectionError)):
        await left.fetchval("SELECT 1")
    assert lender.free == [name]
    conn = await connect(lender, name)
    try:
        assert await conn.fetchval("SELECT pg_try_advisory_lock(42)")
    finally:
        await conn.close()
        left.terminate()


@pytest.mark.parametrize("change", [
    "ALTER TABLE customers ADD CONSTRAINT named CHECK (name <> 'x')",
    "CREATE TABLE extra (id integer)",
    "CREATE INDEX customers_name ON customers (name)",
    "CREATE SCHEMA other",
    "CREATE FUNCTION one() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)",
    "ALTER DATABASE {name} SET work_mem = '8MB'",
    "ALTER DATABASE {name} ALLOW_CONNECTIONS false",
    "ANALYZE customers",
])
async def test_a_database_its_test_changed_is_dropped_not_lent_again(
        lender: MigratedDatabases, change: str) -> None:
    name = await lender.lend()
    conn = await connect(lender, name)
    try:
        await write_rows(conn)
        if change.startswith("ALTER DATABASE"):  # not allowed on the database's own session
            await conn.close()
            conn = await asyncpg.connect(lender.server_url)
        await conn.execute(change.format(name=name))
    finally:
        await conn.close()
    await lender.give_back(name)
    assert lender.free == []
    assert not await exists(lender, name)
    assert await lender.lend() != name


async def test_every_table_but_the_migrations_is_emptied(lender: MigratedDatabases) -> None:
    name = await lender.lend()
    conn = await connect(lender, name)
    try:
        listed = set(await conn.fetchval(
            "SELECT array_agg(format('%I.%I', schemaname, tablename)) FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"))
    finally:
        await conn.close()
    assert set(lender.tables) == listed
