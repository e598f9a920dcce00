"""Shared fixtures: real PostgreSQL servers.

Database tests run against the embedded server (started once per test session in a
temporary folder) and, when ``RECON_TEST_DATABASE_URL`` is set (``.ci/run`` sets it to this
machine's system server), against that server too. Each test gets a database of its own:
created empty and dropped afterwards, or, for a test that asks for ``migrated_database_url``
(``api`` and ``pool`` do), a migrated one as new, that earlier tests used and emptied
(``tests/databases.py``): creating and migrating a database per test took most of the
suite's time.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.databases import MigratedDatabases, create_database, drop_database, with_database

SERVERS = ["embedded"] + (["external"] if os.environ.get("RECON_TEST_DATABASE_URL") else [])


def _private_folder() -> Path:
    """A temporary folder outside pytest's own: pytest resets its base folder to mode 0700
    whenever a pytest run starts, which locks out the embedded server's system user."""
    return Path(tempfile.mkdtemp(prefix="recon-test-"))


@pytest.fixture(scope="session")
def embedded_server_url() -> Iterator[str]:
    from gateway.embedded import start_embedded

    folder = _private_folder()
    # The server stops at exit (the package's own atexit handler, registered by
    # start_embedded, so run before this one); the folder goes after it.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    url = start_embedded(folder)
    asyncio.run(_without_durability(url))
    yield url


async def _without_durability(url: str) -> None:
    """Nothing flushed to disk: this cluster is thrown away with its temporary folder, so
    it need not survive a crash of the machine, and creating and dropping a database per
    test then costs a tenth. The system server, when configured, keeps its own settings."""
    admin = await asyncpg.connect(url)
    try:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            await admin.execute(f"ALTER SYSTEM SET {setting} = off")
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder for a ``serve`` or ``demo`` process with its own embedded server."""
    folder = _private_folder()
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=SERVERS)
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "embedded":
        yield request.getfixturevalue("embedded_server_url")
    else:
        yield os.environ["RECON_TEST_DATABASE_URL"]


@pytest.fixture(scope="session")
def migrated_databases() -> Iterator[dict[str, MigratedDatabases]]:
    """The migrated databases of this session, by server URL; dropped at its end."""
    lenders: dict[str, MigratedDatabases] = {}
    yield lenders
    for lender in lenders.values():
        asyncio.run(lender.drop_all())


@pytest.fixture
async def database_url(server_url: str, request: pytest.FixtureRequest,
                       migrated_databases: dict[str, MigratedDatabases]
                       ) -> AsyncIterator[str]:
    """A database of this test's own on each configured server: new and empty, or, when
    the test asks for ``migrated_database_url`` (itself, or through ``api`` or ``pool``),
    migrated and as new (see ``tests/databases.py``)."""
    if "migrated_database_url" in request.fixturenames:
        lender = migrated_databases.setdefault(server_url, MigratedDatabases(server_url))
        name = await lender.lend()
        yield with_database(server_url, name)
        await lender.give_back(name)
        return
    name = f"recon_test_{uuid.uuid4().hex[:12]}"
    await create_database(server_url, name)
    yield with_database(server_url, name)
    await drop_database(server_url, name)


@pytest.fixture
async def migrated_database_url(database_url: str) -> str:
    """This test's database (the same as ``database_url``), migrated before it starts."""
    return database_url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


DATA = Path(__file__).resolve().parent / "data"
