"""The dispatcher's steps driven by hand, in the orders a loaded machine can take them.

A dispatcher records each lane's attempts when the lane finishes, so one lane's outcome can
be written before or after another's that was attempted earlier. Whether an event refused
for its whole retry schedule is given up must not depend on that order: it is given up
when the endpoint has worked since the event began failing, and kept when it has not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.delivery import Dispatcher, LaneResult, Policy
from gateway.settings import Settings
from gateway.store import deliveries
from gateway.webhook_http import SubscriberKeys, session
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.test_webhooks import deliveries_of, emit_many, subscribe
from tests.gateway.webhook_support import FAST, Receiver, eventually, rsa_key

# Three attempts, each due at once: the schedule's end comes without waiting.
STEPPED = {**FAST, "webhook_retry_schedule": "0,0,0", "dispatcher": False}


@pytest.fixture
async def quiet(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    """The service without its own dispatcher: the test's dispatcher is the only one."""
    return await make_api(migrated_database_url, aiohttp_client, **STEPPED)


@pytest.fixture
async def crm() -> AsyncIterator[Receiver]:
    receiver = Receiver(keys=[rsa_key()])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def stepped(quiet: Api) -> AsyncIterator[Dispatcher]:
    """A dispatcher that is not running: the test claims, sends and records by hand."""
    policy = Policy.of(Settings(database_url=quiet.database_url, **STEPPED))
    pool = await asyncpg.create_pool(quiet.database_url, min_size=1, max_size=4)
    dispatcher = Dispatcher(pool, policy)
    dispatcher._http = session(allow_private=True, limit=4)
    dispatcher._keys = SubscriberKeys(dispatcher._http, ttl=60.0, timeout=policy.timeout,
                                      allow_private=True)
    try:
        yield dispatcher
    finally:
        await dispatcher._http.close()
        await pool.close()


async def sent(dispatcher: Dispatcher) -> dict[str, LaneResult]:
    """Claim the due lanes and send each (in lane order, one after another), recording
    nothing yet: each lane's result by lane."""
    heads: list[Any] = []

    async def claimed() -> bool:
        heads.extend(await dispatcher.claim(10))
        return bool(heads)

    tries = 0
    while not await claimed():  # due at once; a claim may yet miss it by a moment
        tries += 1
        assert tries < 1000, "no lane became due"
    results = {}
    for head in sorted(heads, key=lambda h: h.lane):
        outcomes = []
        for row in head.deliveries:
            outcomes.append(await dispatcher._attempt(head.tenant, row))
            if not outcomes[-1].ok:
                break
        results[head.lane] = LaneResult(head, tuple(outcomes))
    return results


async def test_refused_event_given_up_when_the_endpoint_worked_after_it_recorded_first(
        quiet: Api, crm: Receiver, stepped: Dispatcher) -> None:
    crm.answer = lambda receiver, event: 400 if event and event["lane"] == "invoice:INV-0" \
        and event["sequence"] == 1 else 200
    subscription = await subscribe(quiet, crm)
    ids = await emit_many(quiet.database_url, lanes=2, per_lane=3)
    first = await sent(stepped)
    # INV-0's first event is refused first; INV-1's three get through after it. INV-1's
    # lane is recorded first, as when it finishes first on a busy machine.
    assert [o.ok for o in first["invoice:INV-0"].outcomes] == [False]
    assert [o.ok for o in first["invoice:INV-1"].outcomes] == [True] * 3
    await stepped.complete([first["invoice:INV-1"]])
    await stepped.complete([first["invoice:INV-0"]])
    for _ in range(2):  # the rest of the schedule: refused each time
        again = await sent(stepped)
        assert list(again) == ["invoice:INV-0"]
        await stepped.complete(list(again.values()))
    failed = await deliveries_of(quiet, subscription["id"], status="failed")
    assert [d["event_id"] for d in failed] == [ids[0]]
    assert failed[0]["attempts"] == 3
    # Its lane goes on at once.
    rest = await sent(stepped)
    assert [o.row["sequence"] for o in rest["invoice:INV-0"].outcomes] == [2, 3]
    assert all(o.ok for o in rest["invoice:INV-0"].outcomes)
    await stepped.complete(list(rest.values()))
    await eventually(lambda: len(crm.accepted()) == 5, what="the five accepted events")


async def test_event_kept_when_the_endpoint_failed_since_an_earlier_success_recorded_last(
        quiet: Api, crm: Receiver, stepped: Dispatcher) -> None:
    # The endpoint takes one delivery (INV-0's), then goes down for good.
    crm.answer = lambda receiver, event: 200 if not receiver.deliveries else 500
    subscription = await subscribe(quiet, crm)
    await emit_many(quiet.database_url, lanes=2, per_lane=1)
    first = await sent(stepped)
    assert [o.ok for o in first["invoice:INV-0"].outcomes] == [True]
    assert [o.ok for o in first["invoice:INV-1"].outcomes] == [False]
    # The later failure is recorded first, the earlier success after it.
    await stepped.complete([first["invoice:INV-1"]])
    await stepped.complete([first["invoice:INV-0"]])
    for _ in range(2):  # the rest of the schedule: the endpoint has not worked since
        again = await sent(stepped)
        assert list(again) == ["invoice:INV-1"]
        await stepped.complete(list(again.values()))
    assert await deliveries_of(quiet, subscription["id"], status="failed") == []
    pending = await deliveries_of(quiet, subscription["id"], status="pending")
    assert [(d["lane"], d["sequence"], d["attempts"]) for d in pending] == [
        ("invoice:INV-1", 1, 3)]
    again = await sent(stepped)  # and it is tried again, after the schedule's end
    assert [o.row["sequence"] for o in again["invoice:INV-1"].outcomes] == [1]
    await stepped.complete(list(again.values()))


# Attempts in time order, each a success or not, each in one of up to four batches; and the
# order the batches are recorded in.
ATTEMPTS = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempts=ATTEMPTS, order=st.permutations(range(4)))
async def test_failing_since_is_the_first_failure_after_the_last_success_whatever_the_order(
        quiet: Api, crm: Receiver, attempts: list[tuple[bool, int]], order: list[int]) -> None:
    """Batches recorded in any order leave ``failing_since`` where the attempts' own times
    put it: the first failure after the last success, or none. So an event is never given
    up while the endpoint has failed throughout, nor kept for ever while it worked."""
    conn = await asyncpg.connect(quiet.database_url)
    try:
        subscription = await conn.fetchval("SELECT subscription_id FROM subscriptions")
        if subscription is None:
            subscription = (await subscribe(quiet, crm))["id"]
        await conn.execute("UPDATE subscriptions SET failing_since = NULL, warned_at = NULL")
        await conn.execute("DELETE FROM delivery_attempts")
        start = datetime.now(UTC) - timedelta(hours=1)
        timed = [(start + timedelta(seconds=i), ok, batch)
                 for i, (ok, batch) in enumerate(attempts)]
        for batch in order:
            mine = [(at, ok) for at, ok, b in timed if b == batch]
            if not mine:
                continue
            await deliveries.record(conn, dispatcher="property", releases=[], attempts=[
                deliveries.Attempt("default", subscription, f"evt_{i}", 1, at,
                                   200 if ok else 500, 1.0, None, None,
                                   "succeeded" if ok else "retry", None, None)
                for i, (at, ok) in enumerate(mine)])
            await deliveries.follow_failing(conn, "default", subscription,
                                            min(at for at, _ in mine))
        last_success = max((at for at, ok, _ in timed if ok), default=None)
        expected = min((at for at, ok, _ in timed
                        if not ok and (last_success is None or at > last_success)),
                       default=None)
        assert await conn.fetchval("SELECT failing_since FROM subscriptions"
                                   " WHERE subscription_id = $1", subscription) == expected
    finally:
        await conn.close()
