"""A replay sends now: a delivery waiting for its retry (an hour away here) goes at once
when replayed, and the deliveries list says when it is due. The service runs with its
dispatcher; a CRM stand-in answers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway.conftest import AiohttpClient, Api
from tests.gateway.test_webhooks import SUBSCRIBER, _api, deliveries_of, emit_many, subscribe
from tests.gateway.webhook_support import Receiver, eventually, rsa_key

# Nothing here depends on the database server: the embedded one only.
pytestmark = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)

# After a failure the next attempt waits an hour (48 minutes at the least, with jitter):
# far longer than any test waits, so a delivery seen within a minute was not a retry.
HOUR_LATER = "0,3600,3600"
WAIT = 60.0


@pytest.fixture
async def replays(database_url: str, aiohttp_client: AiohttpClient) -> Api:
    return await _api(database_url, aiohttp_client, webhook_retry_schedule=HOUR_LATER)


@pytest.fixture
async def crm() -> AsyncIterator[Receiver]:
    receiver = Receiver(keys=[rsa_key()])
    await receiver.start()
    yield receiver
    await receiver.stop()


async def _replay(api: Api, subscription_id: str, event_id: str) -> None:
    response = await api.client.post(f"/v1/subscriptions/{subscription_id}/replay",
                                     json={"event_id": event_id},
                                     headers=api.auth(SUBSCRIBER))
    assert response.status == 202, await response.text()


async def _one(api: Api, subscription_id: str) -> dict[str, Any]:
    [delivery] = await deliveries_of(api, subscription_id)
    return delivery


async def _deliveries_once(api: Api, subscription_id: str,
                           check: Callable[[list[dict[str, Any]]], bool]
                           ) -> list[dict[str, Any]]:
    """The subscription's deliveries once ``check`` holds for them, polling with a
    deadline (the CRM has its answer a moment before the dispatcher records it)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not check(items := await deliveries_of(api, subscription_id)):
        assert asyncio.get_running_loop().time() < deadline, items
        await asyncio.sleep(0.05)  # polling interval
    return items


async def _recorded(api: Api, subscription_id: str, status: str) -> dict[str, Any]:
    [delivery] = await _deliveries_once(api, subscription_id,
                                        lambda items: items[0]["status"] == status)
    return delivery


async def _waiting_for_its_retry(api: Api, subscription_id: str) -> dict[str, Any]:
    """The delivery once its failed attempt is recorded, due again about an hour later."""
    [delivery] = await _deliveries_once(api, subscription_id, lambda items: (
        items[0]["attempts"] == 1 and items[0]["next_attempt_at"] is not None))
    due = datetime.fromisoformat(delivery["next_attempt_at"])
    assert due > datetime.now(UTC) + timedelta(minutes=40), delivery
    return delivery


async def test_a_delivery_waiting_for_its_retry_goes_at_once_when_replayed(
        replays: Api, crm: Receiver) -> None:
    crm.script = [(500, 0.0, {})]  # the first attempt fails; every later one is answered 200
    subscription = await subscribe(replays, crm)
    [event_id] = await emit_many(replays.database_url, lanes=1, per_lane=1)
    await _waiting_for_its_retry(replays, subscription["id"])
    crm.gate = asyncio.Event()  # closed: the next request is held open, in flight
    asked = datetime.now(UTC)
    await _replay(replays, subscription["id"], event_id)
    await eventually(lambda: crm.held == 1, timeout=WAIT, what="the replayed delivery")
    # In flight: still pending, due since the replay, a fresh round of retries.
    delivery = await _one(replays, subscription["id"])
    assert (delivery["status"], delivery["tries"]) == ("pending", 0)
    assert asked - timedelta(seconds=1) <= datetime.fromisoformat(
        delivery["next_attempt_at"]) <= datetime.now(UTC)
    crm.gate.set()
    await eventually(lambda: len(crm.accepted()) == 1, timeout=WAIT, what="the delivery")
    assert [d.headers["webhook-id"] for d in crm.deliveries] == [event_id, event_id]
    assert [e["id"] for e in crm.verified()] == [event_id]
    delivery = await _recorded(replays, subscription["id"], "succeeded")
    assert (delivery["attempts"], delivery["next_attempt_at"]) == (2, None)


async def test_a_delivery_replayed_while_its_attempt_is_in_flight_goes_again_at_once(
        replays: Api, crm: Receiver) -> None:
    """The attempt in flight then fails and asks for a retry an hour later; the replayed
    delivery is not held to it."""
    crm.gate = asyncio.Event()
    crm.script = [(500, 0.0, {})]
    subscription = await subscribe(replays, crm)
    [event_id] = await emit_many(replays.database_url, lanes=1, per_lane=1)
    await eventually(lambda: crm.held == 1, timeout=WAIT, what="the first attempt")
    await _replay(replays, subscription["id"], event_id)
    crm.gate.set()  # the first attempt is answered 500 now
    await eventually(lambda: len(crm.accepted()) == 1, timeout=WAIT,
                     what="the replayed delivery")
    assert [d.status for d in crm.deliveries] == [500, 200]
    delivery = await _recorded(replays, subscription["id"], "succeeded")
    assert delivery["next_attempt_at"] is None
    # The log keeps both attempts; the replaced round's failure did not count on the
    # replayed delivery.
    response = await replays.client.get(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{event_id}/attempts",
        headers=replays.auth(SUBSCRIBER))
    attempts = (await response.json())["items"]
    assert [a["status_code"] for a in attempts] == [500, 200]


async def test_replaying_an_event_behind_one_waiting_for_its_retry_sends_both_in_order(
        replays: Api, crm: Receiver) -> None:
    """Events of a lane go in order: the one ahead, waiting for its retry, goes now too
    (its round of retries goes on); then the replayed one."""
    crm.script = [(500, 0.0, {})]
    subscription = await subscribe(replays, crm)
    first, second = await emit_many(replays.database_url, lanes=1, per_lane=2)
    await eventually(lambda: len(crm.deliveries) == 1, timeout=WAIT, what="the first attempt")

    await _deliveries_once(replays, subscription["id"], lambda items: any(
        d["event_id"] == first and d["next_attempt_at"] is not None for d in items))
    await _replay(replays, subscription["id"], second)
    await eventually(lambda: len(crm.accepted()) == 2, timeout=WAIT, what="both deliveries")
    assert [e["id"] for e in crm.verified()] == [first, second]
    items = await _deliveries_once(replays, subscription["id"], lambda items: all(
        d["status"] == "succeeded" for d in items))
    assert {d["event_id"]: d["attempts"] for d in items} == {first: 2, second: 1}
