"""Dispatchers as real processes: killed mid-batch, and two at once, over one database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.store import api_keys, subscriptions
from security import apikeys
from security.roles import Role
from security.webhooks import new_secret
from tests.gateway.test_webhooks import emit_many
from tests.gateway.webhook_support import FAST, Receiver, chained, eventually, public

LEASE = 12.0  # seconds a dispatcher's claim holds; its timeout is two less


@pytest.fixture
async def subscribed(migrated_database_url: str, crm: Receiver) -> str:
    conn = await asyncpg.connect(migrated_database_url)
    try:
        crm.secret = new_secret()
        # An admin key's subscription: the events are of invoices no crm key owns.
        admin = apikeys.generate()
        await api_keys.create(conn, "default", key=admin, role=Role.ADMIN, name="test")
        row = await subscriptions.create(
            conn, "default", owner=admin.key_id, url=crm.url, event_types=["*"],
            public_jwk=public(crm.keys[0]), jwks_url=None, kid="crm-ec-1", secret=crm.secret)
    finally:
        await conn.close()
    return str(row["subscription_id"])


class Dispatchers:
    """``recon-gateway dispatch`` child processes on one database."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.database_url, self.folder = database_url, folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, **settings: object) -> subprocess.Popen[bytes]:
        env = {**os.environ, **{f"RECON_{k.upper()}": str(v)
                                for k, v in {**FAST, **settings}.items()}}
        log = (self.folder / f"dispatcher-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "dispatch", "--database-url",
             self.database_url], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.folder.glob("dispatcher-*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def dispatchers(database_url: str, tmp_path: Path) -> Iterator[Dispatchers]:
    group = Dispatchers(database_url, tmp_path)
    yield group
    group.stop_all()


async def test_a_dispatcher_killed_mid_batch_loses_nothing(
        database_url: str, crm: Receiver, subscribed: str, dispatchers: Dispatchers) -> None:
    crm.gate = asyncio.Event()  # the CRM holds every request open, for now
    ids = await emit_many(database_url, lanes=8, per_lane=3)
    # The timeout is generous: the held requests must not time out before the kill,
    # however slow the machine is to notice eight of them held. The lease is what
    # the second dispatcher waits for before it takes the lanes over.
    first = dispatchers.start(webhook_lease=LEASE, webhook_timeout=LEASE - 2)
    await eventually(lambda: crm.held >= 8, what="eight deliveries in flight",
                     timeout=60)
    first.send_signal(signal.SIGKILL)  # mid-batch: nothing of the batch was recorded
    first.wait(30)
    crm.gate.set()  # the CRM did take them, but nobody heard it answer
    await eventually(lambda: len(crm.deliveries) >= 8, what="the held requests answered")
    dispatchers.start(webhook_lease=LEASE, webhook_timeout=LEASE - 2)
    await eventually(lambda: {e["id"] for e in crm.verified()} == set(ids),
                     what=f"every event after the restart\n{dispatchers.logs()}", timeout=120)
    got = crm.verified()
    counts = Counter(e["id"] for e in got)
    repeated = {i for i, n in counts.items() if n > 1}
    # Only the heads in flight at the kill came again, with the same webhook-id.
    assert len(repeated) == 8 and all(counts[i] == 2 for i in repeated)
    assert {e["sequence"] for e in got if e["id"] in repeated} == {1}
    for lane, numbers in chained(got).items():
        assert numbers == [1, 1, 2, 3], lane
    assert not crm.overlaps


async def test_two_dispatchers_share_the_work_without_doubles_or_gaps(
        database_url: str, crm: Receiver, subscribed: str, dispatchers: Dispatchers) -> None:
    crm.latency = 0.005
    dispatchers.start(webhook_concurrency=8)
    dispatchers.start(webhook_concurrency=8)
    await eventually(lambda: dispatchers.logs().count("started") == 2,
                     what=f"two dispatchers running\n{dispatchers.logs()}", timeout=60)
    ids = await emit_many(database_url, lanes=20, per_lane=10, transactions=5)
    await eventually(lambda: len(crm.accepted()) >= len(ids),
                     what=f"every delivery\n{dispatchers.logs()}", timeout=90)
    got = crm.verified()
    assert sorted(e["id"] for e in got) == sorted(ids)  # each exactly once
    assert not crm.overlaps  # never two of one invoice at once
    for lane, numbers in chained(got).items():
        assert numbers == list(range(1, 11)), lane
    conn = await asyncpg.connect(database_url)
    try:
        async def recorded() -> bool:
            return await conn.fetchval("SELECT count(*) FROM delivery_attempts") >= len(ids)

        deadline = asyncio.get_running_loop().time() + 30
        while not await recorded():
            assert asyncio.get_running_loop().time() < deadline, "attempts not recorded"
            await asyncio.sleep(0.05)  # polling interval
        workers = await conn.fetch(
            "SELECT dispatcher, count(*) FROM delivery_attempts GROUP BY dispatcher")
    finally:
        await conn.close()
    assert len(workers) == 2, workers  # both took part (each takes at most 8 of 20 lanes)
