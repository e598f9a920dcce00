"""Fixtures of the gateway tests: the application on a real server with a real database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.keyring_start import keyring_path
from gateway.settings import Settings
from gateway.store import api_keys, data_keys
from security import apikeys, keyring_file
from security.keyring import new_keyring
from security.roles import Role
from tests.gateway.webhook_support import Receiver, ec_key


@dataclass
class Api:
    client: TestClient[Any, Any]
    keys: dict[Role, str]
    database_url: str

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def settled(self, *, within: float = 120.0) -> dict[str, Any]:
        """Wait until the reconcile workers have matched everything queued (GET
        /v1/reconcile says idle), polling; fail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            response = await self.client.get("/v1/reconcile", headers=self.auth(Role.ADMIN))
            status: dict[str, Any] = await response.json()
            assert response.status == 200, status
            if status["status"] == "idle":
                return status
            assert time.monotonic() < deadline, f"matching still queued: {status}"
            await asyncio.sleep(0.02)


# The keyring a test's service, dispatch or worker process finds with the default settings
# (./recon-data/keyring, relative to where the tests run, as child processes started without
# --data-dir see it), made once; each test starts with it as the pytest process's own, so a
# subscription or signing key the test writes through the store is readable by them.
DEFAULT_KEYRING = keyring_path(Settings()).resolve()


@pytest.fixture(autouse=True)
def default_keyring() -> Iterator[data_keys.Keys]:
    keys = _default_keys()
    previous = data_keys.install(keys)
    yield keys
    data_keys.install(previous)


def _default_keys() -> data_keys.Keys:
    if not DEFAULT_KEYRING.exists():
        DEFAULT_KEYRING.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another test run made it first
            keyring_file.create(DEFAULT_KEYRING, new_keyring(datetime.now(UTC)))
    return data_keys.Keys.read(DEFAULT_KEYRING)


AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


async def make_api(database_url: str, aiohttp_client: AiohttpClient,
                   **settings: Any) -> Api:
    """The application with these settings on a real server, and a key for every role."""
    client = await aiohttp_client(create_app(Settings(database_url=database_url,
                                                      **settings)))
    conn = await asyncpg.connect(database_url)
    keys = {}
    try:
        for role in Role:
            key = apikeys.generate()
            await api_keys.create(conn, "default", key=key, role=role, name=f"test-{role}")
            keys[role] = key.text
    finally:
        await conn.close()
    return Api(client, keys, database_url)


async def another_key(database_url: str, role: Role, name: str) -> str:
    """A further API key of ``role`` in the default tenant (``make_api`` makes one of each
    role); returns its text, for a bearer header."""
    key = apikeys.generate()
    conn = await asyncpg.connect(database_url)
    try:
        await api_keys.create(conn, "default", key=key, role=role, name=name)
    finally:
        await conn.close()
    return key.text


@pytest.fixture
async def crm() -> AsyncIterator[Receiver]:
    """A CRM's webhook receiver on loopback, with an EC key for the payloads."""
    receiver = Receiver(keys=[ec_key()])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def pool(migrated_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of up to four connections to a migrated database (for work side by side)."""
    async with asyncpg.create_pool(migrated_database_url, min_size=1, max_size=4) as created:
        yield created


@pytest.fixture
async def api(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    return await make_api(migrated_database_url, aiohttp_client, max_body_bytes=200_000,
                          max_statement_bytes=200_000)


@pytest.fixture
async def db(migrated_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's migrated database (test modules may define their own)."""
    conn = await asyncpg.connect(migrated_database_url)
    try:
        yield conn
    finally:
        await conn.close()
