"""Webhooks end to end: the service with its dispatcher, a real CRM receiver on loopback.

Every delivery is checked with libraries other than ours: ``standardwebhooks`` for the
signature, ``jwcrypto`` for the JWE, ``cryptography`` for the v1a ed25519 signature.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway import outbox
from gateway.delivery import Policy
from gateway.events import EVENT_TYPES, document, payment_fields, schema
from gateway.settings import Settings, SettingsError
from gateway.store import api_keys, deliveries, transactions
from security import apikeys
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.webhook_support import (
    FAST,
    HANG,
    Receiver,
    chained,
    decrypt,
    ec_key,
    eventually,
    public,
    rsa_key,
    verify_v1a,
)
from tests.paths import DEMO_CAMT, DEMO_MT940, DEMO_STATEMENTS

# The subscriber: an admin key, whose subscriptions get the events of every invoice (these
# tests' invoices are pushed by the admin, or not stored at all: no crm key owns them).
SUBSCRIBER = Role.ADMIN
INVOICES = (DEMO_STATEMENTS.parent / "invoices.csv").read_text(encoding="utf-8")


async def _api(database_url: str, aiohttp_client: AiohttpClient, **settings: Any) -> Api:
    """The service with fast webhook settings (FAST), and these on top."""
    return await make_api(database_url, aiohttp_client, **{**FAST, **settings})


@pytest.fixture
async def hooks(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    """The service on a migrated database lent for this test (tests/databases.py)."""
    return await _api(migrated_database_url, aiohttp_client)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    crm = Receiver(keys=[rsa_key(), ec_key()])
    await crm.start()
    yield crm
    await crm.stop()


async def subscribe(api: Api, receiver: Receiver, *, key: Any = None,
                    event_types: list[str] | None = None,
                    role: Role = SUBSCRIBER) -> dict[str, Any]:
    response = await api.client.post("/v1/subscriptions", headers=api.auth(role), json={
        "url": receiver.url, "event_types": event_types or ["*"],
        "public_jwk": public(key or receiver.keys[0])})
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    receiver.secret = body["secret"]
    return body


async def load_demo(api: Api) -> None:
    """Invoices, then the demo's bank statements: payments that pay invoices."""
    admin = api.auth(Role.ADMIN)
    rows = [dict(zip(INVOICES.splitlines()[0].split(","), line.split(","), strict=True))
            for line in INVOICES.splitlines()[1:] if line.strip()]
    response = await api.client.put("/v1/invoices", json=rows, headers=admin)
    assert response.status == 200, await response.text()
    for data in (DEMO_CAMT.read_bytes(), DEMO_MT940.read_bytes()):
        response = await api.client.post("/v1/statements", data=data, headers=admin)
        assert response.status == 201, await response.text()
        await api.settled()  # matched (and its events written) before the next one


async def stored_events(api: Api) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(api.database_url)
    try:
        return await conn.fetch("SELECT * FROM events ORDER BY event_pk")
    finally:
        await conn.close()


async def test_a_crm_receives_verifies_and_decrypts_every_event(hooks: Api,
                                                                receiver: Receiver) -> None:
    await subscribe(hooks, receiver)
    await load_demo(hooks)
    events = await stored_events(hooks)
    types = {e["type"] for e in events}
    assert {"statement.imported", "payment.received", "invoice.paid"} <= types
    await eventually(lambda: len(receiver.accepted()) >= len(events), what="every delivery")
    got = receiver.verified()
    assert sorted(e["id"] for e in got) == sorted(e["event_id"] for e in events)
    assert len({d.headers["webhook-id"] for d in receiver.accepted()}) == len(events)
    schemas = {t["type"]: t["schema"] for t in (await (await hooks.client.get(
        "/v1/event-types", headers=hooks.auth(SUBSCRIBER))).json())["items"]}
    for event in got:
        jsonschema.validate(event, schemas[event["type"]],
                            cls=jsonschema.Draft202012Validator)
    sequences = chained(got)
    for lane, numbers in sequences.items():
        assert numbers == list(range(1, len(numbers) + 1)), lane
    keys = await (await hooks.client.get("/v1/webhook-keys", headers=hooks.auth(SUBSCRIBER))).json()
    assert all(verify_v1a(d.headers, d.body, keys) for d in receiver.accepted())
    paid = [e for e in got if e["type"] == "invoice.paid"]
    assert paid and all(e["data"]["open_amount"] in ("0", "0.00") for e in paid)
    assert not receiver.overlaps


async def test_a_forged_or_altered_delivery_does_not_verify(hooks: Api,
                                                            receiver: Receiver) -> None:
    await subscribe(hooks, receiver, event_types=["statement.imported"])
    await load_demo(hooks)
    await eventually(lambda: len(receiver.accepted()) >= 2, what="two deliveries")
    delivery = receiver.accepted()[0]
    hook = Webhook(receiver.secret or "")
    with pytest.raises(WebhookVerificationError):
        hook.verify(delivery.body.replace(b'"jwe":"', b'"jwe":"x'), delivery.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(delivery.body, delivery.headers)


async def test_an_ec_key_works_as_well(hooks: Api, receiver: Receiver) -> None:
    await subscribe(hooks, receiver, key=receiver.keys[1], event_types=["statement.imported"])
    await load_demo(hooks)
    await eventually(lambda: len(receiver.accepted()) >= 2, what="two deliveries")
    token = receiver.verified()[0]
    assert token["type"] == "statement.imported"
    header = decrypt(json.loads(receiver.accepted()[0].body)["jwe"], receiver.keys)[1]
    assert (header["alg"], header["kid"]) == ("ECDH-ES+A256KW", "crm-ec-1")


async def test_events_are_written_with_the_change_or_not_at_all(hooks: Api) -> None:
    response = await hooks.client.post("/v1/statements", data=b"{1:F01 not a statement",
                                       headers=hooks.auth(Role.TREASURY))
    assert response.status == 422
    assert await stored_events(hooks) == []
    await load_demo(hooks)
    events = await stored_events(hooks)
    per_lane: dict[str, list[int]] = {}
    for event in events:
        per_lane.setdefault(event["lane"], []).append(event["sequence"])
    assert all(s == list(range(1, len(s) + 1)) for s in per_lane.values())
    # Reconciling again finds the same unmatched payments: no second payment.unmatched.
    unmatched = sum(e["type"] == "payment.unmatched" for e in events)
    again = await hooks.client.post("/v1/reconcile", headers=hooks.auth(Role.ADMIN))
    assert again.status == 200
    after = await stored_events(hooks)
    assert sum(e["type"] == "payment.unmatched" for e in after) == unmatched


async def emit_many(database_url: str, *, lanes: int, per_lane: int,
                    transactions: int = 1) -> list[str]:
    """Events on ``lanes`` invoices, ``per_lane`` each, written in ``transactions`` commits."""
    conn = await asyncpg.connect(database_url)
    ids: list[str] = []
    try:
        for batch in range(transactions):
            async with conn.transaction():
                ids += await outbox.emit(conn, "default", [
                    outbox.NewEvent("invoice.partially_paid", f"invoice:INV-{lane}",
                                    {"invoice_id": f"INV-{lane}", "n": batch * per_lane + i})
                    for i in range(per_lane // transactions) for lane in range(lanes)])
    finally:
        await conn.close()
    return ids


async def deliveries_of(api: Api, subscription_id: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get(f"/v1/subscriptions/{subscription_id}/deliveries",
                                        headers=api.auth(SUBSCRIBER), params=query)
        assert response.status == 200, await response.text()
        body = await response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_a_receiver_down_for_a_while_gets_everything_in_order_per_invoice(
        hooks: Api, receiver: Receiver) -> None:
    down = True
    receiver.answer = lambda crm, event: 503 if down else 200
    receiver.latency = 0.002
    subscription = await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=6, per_lane=10, transactions=5)
    await eventually(lambda: len(receiver.deliveries) >= 18, what="failing attempts")
    assert not receiver.accepted()
    down = False
    await eventually(lambda: len(receiver.accepted()) >= len(ids), what="the backlog")
    got = receiver.verified()
    assert sorted(e["id"] for e in got) == sorted(ids)
    for lane, numbers in chained(got).items():
        assert numbers == sorted(numbers) == list(range(1, 11)), lane
    assert not receiver.overlaps

    async def settled() -> bool:  # the receiver has answered; the outcome is written after
        return await deliveries_of(hooks, subscription["id"], status="pending") == []

    await _until(settled, what="every delivery recorded as succeeded")
    first = ids[0]
    attempts = await (await hooks.client.get(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{first}/attempts",
        headers=hooks.auth(SUBSCRIBER))).json()
    codes = [a["status_code"] for a in attempts["items"]]
    assert codes[-1] == 200 and 503 in codes
    assert all(a["latency_ms"] >= 0 and a["dispatcher"] for a in attempts["items"])
    assert any(a["response_excerpt"] == "not now" for a in attempts["items"])


async def test_500_then_200_is_retried_with_the_same_webhook_id(hooks: Api,
                                                                receiver: Receiver) -> None:
    answers = iter([500, 500, 200])
    receiver.answer = lambda crm, event: next(answers, 200)
    await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=1, per_lane=1)
    await eventually(lambda: len(receiver.accepted()) == 1, what="the delivery")
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    assert {d.headers["webhook-id"] for d in receiver.deliveries} == {ids[0]}
    assert receiver.verified()[0]["id"] == ids[0]


async def test_one_attempt_in_flight_per_invoice_while_other_invoices_proceed(
        hooks: Api, receiver: Receiver) -> None:
    receiver.latency = 0.02
    await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=20, per_lane=5)
    await eventually(lambda: len(receiver.accepted()) >= len(ids), what="every delivery")
    assert not receiver.overlaps
    # Lanes ran side by side: deliveries of different invoices interleave.
    lanes = [d.event["lane"] for d in receiver.accepted() if d.event]
    assert len(set(lanes[:20])) > 5
    for lane, numbers in chained(receiver.verified()).items():
        assert numbers == list(range(1, 6)), lane


async def test_replay_one_event_and_everything_since_a_time(hooks: Api,
                                                            receiver: Receiver) -> None:
    subscription = await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=2, per_lane=3)
    await eventually(lambda: len(receiver.accepted()) == 6, what="the first deliveries")
    path = f"/v1/subscriptions/{subscription['id']}/replay"
    one = await hooks.client.post(path, json={"event_id": ids[3]}, headers=hooks.auth(SUBSCRIBER))
    assert (one.status, await one.json()) == (202, {"queued": 1})
    await eventually(lambda: len(receiver.accepted()) == 7, what="the replay")
    assert receiver.accepted()[-1].headers["webhook-id"] == ids[3]
    everything = await hooks.client.post(path, json={"since": "2000-01-01T00:00:00Z"},
                                         headers=hooks.auth(SUBSCRIBER))
    assert (await everything.json())["queued"] == 6
    await eventually(lambda: len(receiver.accepted()) == 13, what="the replay of all")
    replayed = receiver.verified()[7:]
    assert sorted(e["id"] for e in replayed) == sorted(ids)
    for numbers in chained(replayed).values():
        assert numbers == [1, 2, 3]
    missing = await hooks.client.post(path, json={"event_id": "evt_" + "0" * 32},
                                      headers=hooks.auth(SUBSCRIBER))
    assert missing.status == 404
    bad = await hooks.client.post(path, json={"since": "yesterday"}, headers=hooks.auth(SUBSCRIBER))
    assert bad.status == 400


async def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
        hooks: Api, receiver: Receiver) -> None:
    subscription = await subscribe(hooks, receiver)
    old = receiver.secret
    rotated = await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret", json={"overlap_seconds": 3600},
        headers=hooks.auth(SUBSCRIBER))
    assert rotated.status == 200
    new = (await rotated.json())["secret"]
    assert new != old and new.startswith("whsec_")
    await emit_many(hooks.database_url, lanes=1, per_lane=1)
    await eventually(lambda: len(receiver.accepted()) == 1, what="the delivery")
    delivery = receiver.accepted()[0]
    assert len([s for s in delivery.headers["webhook-signature"].split()
                if s.startswith("v1,")]) == 2
    assert receiver.verified(old) == receiver.verified(new)
    # Without an overlap, only the new secret signs.
    await hooks.client.post(f"/v1/subscriptions/{subscription['id']}/rotate-secret",
                            json={"overlap_seconds": 0}, headers=hooks.auth(SUBSCRIBER))
    newest = receiver.secret = None
    listed = await (await hooks.client.get(f"/v1/subscriptions/{subscription['id']}",
                                           headers=hooks.auth(SUBSCRIBER))).json()
    assert "secret" not in listed and newest is None


async def test_a_key_rotation_reaches_retries_of_older_events(hooks: Api,
                                                              receiver: Receiver) -> None:
    down = True
    receiver.answer = lambda crm, event: 503 if down else 200
    old_key, new_key = receiver.keys
    subscription = await subscribe(hooks, receiver, key=old_key)
    await emit_many(hooks.database_url, lanes=1, per_lane=2)
    await eventually(lambda: len(receiver.deliveries) >= 2, what="failing attempts")
    rotated = await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-key", json={"public_jwk": public(new_key)},
        headers=hooks.auth(SUBSCRIBER))
    assert rotated.status == 200 and (await rotated.json())["kid"] == public(new_key)["kid"]
    receiver.keys = [new_key]  # the CRM has thrown its old private key away
    down = False
    await eventually(lambda: len(receiver.accepted()) == 2, what="the deliveries")
    assert [e["sequence"] for e in receiver.verified()] == [1, 2]


async def test_410_disables_and_resuming_delivers_the_backlog(hooks: Api,
                                                              receiver: Receiver) -> None:
    gone = True
    receiver.answer = lambda crm, event: 410 if gone else 200
    subscription = await subscribe(hooks, receiver, event_types=["invoice.partially_paid"])
    ids = await emit_many(hooks.database_url, lanes=3, per_lane=2)
    path = f"/v1/subscriptions/{subscription['id']}"

    async def status() -> str:
        body = await (await hooks.client.get(path, headers=hooks.auth(SUBSCRIBER))).json()
        return str(body["status"])

    await eventually(lambda: bool(receiver.deliveries), what="the first attempt")
    states: list[str] = []

    async def disabled() -> bool:
        states.append(await status())
        return states[-1] == "disabled"

    await _until(disabled, what="the subscription disabled")
    attempts = len(receiver.deliveries)
    pending = await deliveries_of(hooks, subscription["id"], status="pending")
    assert len(pending) == len(ids)  # nothing dropped
    told = [e for e in await stored_events(hooks) if e["type"] == "subscription.disabled"]
    assert len(told) == 1 and subscription["id"] in told[0]["data"]
    gone = False
    resumed = await hooks.client.patch(path, json={"status": "active"},
                                       headers=hooks.auth(SUBSCRIBER))
    assert (await resumed.json())["status"] == "active"
    await eventually(lambda: len(receiver.accepted()) == len(ids), what="the backlog")
    assert len(receiver.deliveries) - attempts == len(ids)
    assert sorted(e["id"] for e in receiver.verified()) == sorted(ids)


async def _until(check: Any, *, what: str, timeout: float = 120.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.05)  # polling interval


async def test_a_failing_endpoint_is_warned_of_then_disabled_and_keeps_its_backlog(
        database_url: str, aiohttp_client: AiohttpClient, receiver: Receiver) -> None:
    api = await _api(database_url, aiohttp_client, webhook_warn_after=0.3,
                     webhook_disable_after=1.0)
    up = False
    receiver.answer = lambda crm, event: 200 if up else 500
    subscription = await subscribe(api, receiver, event_types=["invoice.partially_paid"])
    ops = Receiver(keys=receiver.keys)  # the admin's own endpoint, for admin events
    await ops.start("/ops")
    try:
        await subscribe(api, ops, event_types=["subscription.failing",
                                               "subscription.disabled"])
        ids = await emit_many(api.database_url, lanes=2, per_lane=2)
        await eventually(lambda: len(ops.accepted()) >= 2, what="the warning and the disable")
        told = ops.verified()
        assert [e["type"] for e in told] == ["subscription.failing", "subscription.disabled"]
        assert told[0]["data"]["subscription_id"] == subscription["id"]
        assert told[0]["data"]["last_status_code"] == 500
        assert [e["sequence"] for e in told] == [1, 2]  # one lane: this subscription's
        for event in told:
            jsonschema.validate(event, schema(EVENT_TYPES[event["type"]]),
                                cls=jsonschema.Draft202012Validator)
    finally:
        await ops.stop()
    pending = await deliveries_of(api, subscription["id"], status="pending")
    assert sorted(d["event_id"] for d in pending) == sorted(ids)
    up = True
    await api.client.patch(f"/v1/subscriptions/{subscription['id']}", json={"status": "active"},
                           headers=api.auth(SUBSCRIBER))
    await eventually(lambda: len(receiver.accepted()) == len(ids), what="the backlog")


async def test_an_event_refused_for_the_whole_schedule_is_given_up_the_lane_goes_on(
        hooks: Api, receiver: Receiver) -> None:
    # The endpoint works (the other invoice's events get through) but refuses one event.
    poison = {"lane": "invoice:INV-0", "sequence": 1}
    receiver.answer = lambda crm, event: 400 if event and all(
        event[k] == v for k, v in poison.items()) else 200
    subscription = await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=2, per_lane=3)
    # At least: a delivery taken twice (at least once) shows in the lists below, by name.
    await eventually(lambda: len(receiver.accepted()) >= 5, what="the events after it")
    lane = [d.status for d in receiver.deliveries if d.event and d.event["lane"] == poison["lane"]]
    assert lane == [400] * 10 + [200, 200]
    failed = await deliveries_of(hooks, subscription["id"], status="failed")
    assert [d["event_id"] for d in failed] == [ids[0]]
    assert failed[0]["attempts"] == 10 and failed[0]["last_status_code"] == 400


async def test_pausing_holds_deliveries_and_resuming_sends_them(hooks: Api,
                                                                receiver: Receiver) -> None:
    subscription = await subscribe(hooks, receiver)
    path = f"/v1/subscriptions/{subscription['id']}"
    paused = await hooks.client.patch(path, json={"status": "paused"},
                                      headers=hooks.auth(SUBSCRIBER))
    assert (await paused.json())["status"] == "paused"
    ids = await emit_many(hooks.database_url, lanes=2, per_lane=2)
    # Deliveries are queued while paused and none is attempted.
    assert len(await deliveries_of(hooks, subscription["id"], status="pending")) == 4
    await hooks.client.patch(path, json={"status": "active"}, headers=hooks.auth(SUBSCRIBER))
    await eventually(lambda: len(receiver.accepted()) == len(ids), what="the held deliveries")
    assert len(receiver.deliveries) == len(ids)


async def test_subscription_input_is_checked_and_nothing_is_stored_when_bad(
        database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await _api(database_url, aiohttp_client, allow_private_webhooks=False)
    good_key = public(ec_key())
    private_key = ec_key().export_private(as_dict=True)
    weak = public(jwk_rsa_1024())
    cases = [
        ({"url": "http://crm.example.com/h", "event_types": ["*"], "public_jwk": good_key},
         400, "https"),
        ({"url": "https://127.0.0.1/h", "event_types": ["*"], "public_jwk": good_key},
         400, "not public"),
        ({"url": "https://10.1.2.3/h", "event_types": ["*"], "public_jwk": good_key},
         400, "not public"),
        ({"url": "https://[::1]/h", "event_types": ["*"], "public_jwk": good_key},
         400, "not public"),
        ({"url": "https://169.254.169.254/latest", "event_types": ["*"],
          "public_jwk": good_key}, 400, "not public"),
        ({"url": "https://localhost/h", "event_types": ["*"], "public_jwk": good_key},
         400, "not public"),
        ({"url": "https://user:pw@crm.example.com/h", "event_types": ["*"],
          "public_jwk": good_key}, 400, "credentials"),
        ({"url": "https://crm.example.com/h", "event_types": ["invoice.eaten"],
          "public_jwk": good_key}, 422, "unknown event types"),
        ({"url": "https://crm.example.com/h", "event_types": [], "public_jwk": good_key},
         400, "event_types"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"]}, 400, "public_jwk"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"], "public_jwk": private_key},
         422, "private key"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"], "public_jwk": weak},
         422, "2048"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"],
          "public_jwk": {**good_key, "kid": None}}, 422, "kid"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"],
          "public_jwk": {**good_key, "x": "AAAA"}}, 422, "not a valid EC key"),
        ({"url": "https://crm.example.com/h", "event_types": ["*"],
          "public_jwk": {"kty": "oct", "k": "c2VjcmV0", "kid": "k"}}, 422, "kty"),
    ]
    for body, status, words in cases:
        response = await api.client.post("/v1/subscriptions", json=body,
                                          headers=api.auth(SUBSCRIBER))
        problem = await response.json()
        assert response.status == status, (body, problem)
        assert words in problem["detail"], (words, problem["detail"])
    listed = await (await api.client.get("/v1/subscriptions", headers=api.auth(SUBSCRIBER))).json()
    assert listed["items"] == []
    fine = await api.client.post("/v1/subscriptions", headers=api.auth(SUBSCRIBER), json={
        "url": "https://93.184.215.14/h", "event_types": ["invoice.paid"],
        "public_jwk": good_key})
    assert fine.status == 201


def jwk_rsa_1024() -> Any:
    from jwcrypto import jwk

    return jwk.JWK.generate(kty="RSA", size=1024, kid="weak")


async def test_a_private_target_is_refused_at_delivery_time_too(
        database_url: str, aiohttp_client: AiohttpClient, receiver: Receiver) -> None:
    """A URL that passed the check when subscribed but now points at loopback."""
    api = await _api(database_url, aiohttp_client, allow_private_webhooks=False)
    response = await api.client.post("/v1/subscriptions", headers=api.auth(SUBSCRIBER), json={
        "url": "https://93.184.215.14/hooks", "event_types": ["*"],
        "public_jwk": public(receiver.keys[0])})
    assert response.status == 201
    subscription = await response.json()
    port = receiver.url.split(":")[2].split("/")[0]
    conn = await asyncpg.connect(database_url)
    try:  # as if the name now pointed at loopback: localhost resolves to 127.0.0.1
        await conn.execute("UPDATE subscriptions SET url = $1",
                           f"https://localhost:{port}/hooks")
    finally:
        await conn.close()
    await emit_many(database_url, lanes=1, per_lane=1)

    async def refused() -> bool:
        items = await deliveries_of(api, subscription["id"])
        return bool(items) and items[0]["last_error"] is not None

    await _until(refused, what="a refused attempt")
    items = await deliveries_of(api, subscription["id"])
    assert "not public" in items[0]["last_error"]
    assert items[0]["status"] == "pending"
    assert receiver.deliveries == []


async def test_crm_keys_see_only_their_own_subscriptions(hooks: Api, receiver: Receiver,
                                                         database_url: str) -> None:
    mine = await subscribe(hooks, receiver, role=Role.CRM)
    conn = await asyncpg.connect(database_url)
    try:
        other = apikeys.generate()
        await api_keys.create(conn, "default", key=other, role=Role.CRM, name="other-crm")
    finally:
        await conn.close()
    theirs = {"Authorization": f"Bearer {other.text}"}
    path = f"/v1/subscriptions/{mine['id']}"
    for method, url, body in [
            ("GET", path, None), ("PATCH", path, {"status": "paused"}), ("DELETE", path, None),
            ("POST", path + "/replay", {"event_id": "evt_x"}),
            ("POST", path + "/rotate-secret", {}),
            ("POST", path + "/rotate-key", {"public_jwk": public(receiver.keys[1])}),
            ("GET", path + "/deliveries", None),
            ("GET", path + "/deliveries/evt_x/attempts", None)]:
        response = await hooks.client.request(method, url, headers=theirs, json=body)
        assert response.status == 404, (method, url, response.status)
    listed = await (await hooks.client.get("/v1/subscriptions", headers=theirs)).json()
    assert listed["items"] == []
    feed = await hooks.client.get("/v1/events", params={"subscription_id": mine["id"]},
                                  headers=theirs)
    assert feed.status == 404
    admin = await (await hooks.client.get("/v1/subscriptions",
                                          headers=hooks.auth(Role.ADMIN))).json()
    assert [s["id"] for s in admin["items"]] == [mine["id"]]
    for role in (Role.TREASURY, Role.COMPLIANCE):
        assert (await hooks.client.get(path, headers=hooks.auth(role))).status == 403
    assert (await hooks.client.get(path, headers=hooks.auth(Role.AUDITOR))).status == 200
    deleted = await hooks.client.delete(path, headers=hooks.auth(Role.CRM))
    assert deleted.status == 204
    assert (await hooks.client.get(path, headers=hooks.auth(SUBSCRIBER))).status == 404


async def read_feed(api: Api, subscription_id: str, after: str | None = None,
                    limit: int = 3) -> tuple[list[dict[str, Any]], str | None]:
    """Every item after ``after``, page by page; and the cursor to go on from."""
    items: list[dict[str, Any]] = []
    while True:
        params = {"subscription_id": subscription_id, "limit": str(limit),
                  **({"cursor": after} if after else {})}
        response = await api.client.get("/v1/events", params=params, headers=api.auth(SUBSCRIBER))
        assert response.status == 200, await response.text()
        body = await response.json()
        items += body["items"]
        if not body["items"]:
            return items, body["next_cursor"]
        after = body["next_cursor"]


async def test_the_feed_carries_the_same_events_encrypted_the_same_way(
        hooks: Api, receiver: Receiver) -> None:
    key = receiver.keys[1]
    pushed = await subscribe(hooks, receiver, key=key)
    polled = await hooks.client.post("/v1/subscriptions", headers=hooks.auth(SUBSCRIBER), json={
        "url": None, "event_types": ["*"], "public_jwk": public(key)})
    assert polled.status == 201
    polling = await polled.json()
    await load_demo(hooks)
    stored = await stored_events(hooks)
    items, cursor = await read_feed(hooks, polling["id"])
    events = [decrypt(item["jwe"], [key])[0] for item in items]
    assert [e["id"] for e in events] == [item["id"] for item in items]
    assert sorted(e["id"] for e in events) == sorted(e["event_id"] for e in stored)
    await eventually(lambda: len(receiver.accepted()) >= len(stored), what="the webhooks")
    assert sorted(receiver.verified(), key=lambda e: e["id"]) == sorted(
        events, key=lambda e: e["id"])
    again, _ = await read_feed(hooks, polling["id"], after=cursor)
    assert again == []
    replay = await hooks.client.post(f"/v1/subscriptions/{polling['id']}/replay",
                                     json={"since": "2000-01-01T00:00:00Z"},
                                     headers=hooks.auth(SUBSCRIBER))
    assert replay.status == 422  # nothing to push to: it polls
    bad = await hooks.client.get("/v1/events", params={"subscription_id": polling["id"],
                                                       "cursor": "garbage"},
                                 headers=hooks.auth(SUBSCRIBER))
    assert bad.status == 400
    assert pushed["id"] != polling["id"]


async def test_the_feed_never_skips_an_event_committed_late(hooks: Api) -> None:
    created = await hooks.client.post("/v1/subscriptions", headers=hooks.auth(SUBSCRIBER), json={
        "url": None, "event_types": ["*"], "public_jwk": public(ec_key())})
    subscription = (await created.json())["id"]
    slow = await asyncpg.connect(hooks.database_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        late = await outbox.emit(slow, "default", [outbox.NewEvent(
            "invoice.partially_paid", "invoice:LATE", {"invoice_id": "LATE"})])
        early = await emit_many(hooks.database_url, lanes=1, per_lane=1)
        seen, cursor = await read_feed(hooks, subscription)
        assert seen == []  # the committed event waits behind the one still open
        await transaction.commit()
    finally:
        await slow.close()
    seen, _ = await read_feed(hooks, subscription, after=cursor)
    assert [item["id"] for item in seen] == late + early


async def test_keys_from_a_jwks_url_and_a_new_kid_fetches_it_again(
        hooks: Api, receiver: Receiver) -> None:
    first, second = receiver.keys
    receiver.jwks = {"keys": [public(first)]}
    jwks_url = receiver.url.replace("/hooks", "/jwks")
    response = await hooks.client.post("/v1/subscriptions", headers=hooks.auth(SUBSCRIBER), json={
        "url": receiver.url, "event_types": ["*"], "jwks_url": jwks_url,
        "kid": public(first)["kid"]})
    assert response.status == 201, await response.text()
    subscription = await response.json()
    receiver.secret = subscription["secret"]
    await emit_many(hooks.database_url, lanes=1, per_lane=2)
    await eventually(lambda: len(receiver.accepted()) == 2, what="two deliveries")
    fetched = receiver.jwks_fetches
    assert fetched <= 2  # once by the API to check it, once by the dispatcher; then cached
    unknown = await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-key",
        json={"jwks_url": jwks_url, "kid": public(second)["kid"]}, headers=hooks.auth(SUBSCRIBER))
    assert unknown.status == 422 and "no key with kid" in (await unknown.json())["detail"]
    receiver.jwks = {"keys": [public(first), public(second)]}  # the CRM publishes its new key
    rotated = await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-key",
        json={"jwks_url": jwks_url, "kid": public(second)["kid"]}, headers=hooks.auth(SUBSCRIBER))
    assert rotated.status == 200, await rotated.text()
    receiver.keys = [second]  # and throws the old one away
    await emit_many(hooks.database_url, lanes=1, per_lane=1)
    # The dispatcher's cached JWKS lacks the new kid: it fetches the set again.
    await eventually(lambda: len(receiver.accepted()) == 3, what="a delivery to the new key")
    last = json.loads(receiver.accepted()[-1].body)["jwe"]
    assert decrypt(last, [second])[0]["sequence"] == 3


async def test_retry_after_and_timeouts_space_out_the_attempts(
        database_url: str, aiohttp_client: AiohttpClient, receiver: Receiver) -> None:
    """503 with Retry-After, 429, and an answer that never comes: each attempt waits at
    least what it should after the one before. Only lower bounds are asserted (a loaded
    machine makes gaps longer, never shorter), and the timeout is generous: the attempt
    that times out is one the CRM never answers (HANG), not one that is merely slow."""
    timeout = 5.0
    api = await _api(database_url, aiohttp_client, webhook_timeout=timeout,
                     webhook_retry_floor=0.4, webhook_lease=timeout + 10)
    receiver.script = [(503, 0.0, {"Retry-After": "1"}),  # wait a second, says the CRM
                       (429, 0.0, {}),                     # the floor applies
                       (200, HANG, {})]                    # no answer: a timeout, the floor
    subscription = await subscribe(api, receiver)
    ids = await emit_many(api.database_url, lanes=1, per_lane=1)
    path = f"/v1/subscriptions/{subscription['id']}"

    async def delivered() -> bool:
        items = await deliveries_of(api, subscription["id"], status="succeeded")
        return len(items) == 1

    await _until(delivered, what="the delivery after 503, 429 and a timeout", timeout=120)
    attempts = (await (await api.client.get(f"{path}/deliveries/{ids[0]}/attempts",
                                            headers=api.auth(SUBSCRIBER))).json())["items"]
    assert [(a["status_code"], a["error"]) for a in attempts] == [
        (503, None), (429, None), (None, "timed out"), (200, None)]
    times = [datetime.fromisoformat(a["attempted_at"]) for a in attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 1.0 and gaps[1] >= 0.4 and gaps[2] >= 0.4 + timeout, gaps
    assert attempts[2]["latency_ms"] >= timeout * 1000
    # Three answered, one held open until the gateway gave up on it.
    assert [d.headers["webhook-id"] for d in receiver.deliveries] == ids * 3
    assert receiver.held == 1


async def test_secrets_and_keys_never_reach_the_logs(hooks: Api, receiver: Receiver,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    subscription = await subscribe(hooks, receiver)
    rotated = await (await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret", json={},
        headers=hooks.auth(SUBSCRIBER))).json()
    receiver.secret = rotated["secret"]
    await load_demo(hooks)
    await eventually(lambda: len(receiver.accepted()) >= 8, what="the deliveries")
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (subscription["secret"], rotated["secret"], *hooks.keys.values()):
        assert secret not in logged
        assert secret.removeprefix("whsec_") not in logged
    assert "Muster" not in logged and "ACME" not in logged  # nor names from the payloads


async def test_every_kind_of_event_matches_its_published_schema(hooks: Api) -> None:
    """Partial payment, overpayment and reversal made by hand; every stored event checked."""
    admin = hooks.auth(Role.ADMIN)
    await load_demo(hooks)
    applied = (await (await hooks.client.get("/v1/matches", params={"status": "applied"},
                                             headers=admin)).json())["items"]
    undone = await hooks.client.post(f"/v1/matches/{applied[0]['allocation_id']}/undo",
                                     json={"reason": "paid by someone else"}, headers=admin)
    assert undone.status == 200, await undone.text()
    # The payment freed by the undo pays two invoices by hand: one in part, one in full.
    open_invoices = (await (await hooks.client.get("/v1/invoices", params={"status": "open"},
                                                   headers=admin)).json())["items"]
    paid = Decimal(applied[0]["payment_amount"])
    target = next(i for i in open_invoices if Decimal(i["amount"]) + 1 <= paid)
    part = Decimal(target["amount"]) / 2
    manual = await hooks.client.post("/v1/matches", headers=admin, json={
        "account_id": applied[0]["account_id"], "entry_id": applied[0]["entry_id"],
        "allocations": [{"invoice_id": target["invoice_id"], "amount": str(part)}]})
    assert manual.status == 201, await manual.text()
    rest = await hooks.client.post("/v1/matches", headers=admin, json={  # one too many
        "account_id": applied[0]["account_id"], "entry_id": applied[0]["entry_id"],
        "allocations": [{"invoice_id": target["invoice_id"], "amount": str(part + 1)}],
        "allow_overpayment": True})
    assert rest.status == 201, await rest.text()
    schemas = {t["type"]: t["schema"] for t in (await (await hooks.client.get(
        "/v1/event-types", headers=admin)).json())["items"]}
    stored = await stored_events(hooks)
    kinds = {e["type"] for e in stored}
    assert {"allocation.reversed", "invoice.partially_paid", "invoice.overpaid"} <= kinds
    for row in stored:
        jsonschema.validate(document(row), schemas[row["type"]],
                            cls=jsonschema.Draft202012Validator)
    # payment.received is built in SQL for speed; it says what payment_fields says.
    conn = await asyncpg.connect(hooks.database_url)
    try:
        for row in (e for e in stored if e["type"] == "payment.received"):
            data = json.loads(row["data"])
            line = await transactions.payment(conn, "default", data["account_id"],
                                              data["entry_id"])
            assert data == payment_fields(line)
    finally:
        await conn.close()
    reversed_ = next(e for e in stored if e["type"] == "allocation.reversed")
    assert json.loads(reversed_["data"])["reason"] == "paid by someone else"


async def test_bad_requests_about_subscriptions_say_what_is_wrong(hooks: Api,
                                                                  receiver: Receiver) -> None:
    subscription = await subscribe(hooks, receiver)
    path = f"/v1/subscriptions/{subscription['id']}"
    crm = hooks.auth(SUBSCRIBER)
    cases = [
        ("PATCH", path, {"colour": "red"}, 400, "unknown fields"),
        ("PATCH", path, {"status": "disabled"}, 400, "active or paused"),
        ("PATCH", path, {"url": "ftp://x"}, 400, "https"),
        ("PATCH", path, {"event_types": "invoice.paid"}, 400, "event_types"),
        ("POST", path + "/rotate-secret", {"overlap_seconds": -1}, 400, "overlap_seconds"),
        ("POST", path + "/rotate-secret", {"overlap_seconds": True}, 400, "overlap_seconds"),
        ("POST", path + "/rotate-key", {}, 400, "public_jwk"),
        ("POST", path + "/rotate-key", {"jwks_url": "https://crm.example.com/jwks"}, 400,
         "kid"),
        ("POST", path + "/replay", {}, 400, "event_id or since"),
        ("POST", path + "/replay", {"event_id": "e", "since": "2026-01-01T00:00:00Z"}, 400,
         "event_id or since"),
        ("POST", path + "/replay", {"since": "2026-01-01T00:00:00"}, 400, "UTC offset"),
        ("POST", path + "/replay", {"event_id": 5}, 400, "string"),
        ("GET", "/v1/events", None, 400, "subscription_id is required"),
        ("GET", path + "/deliveries?status=lost", None, 400, "status"),
        ("GET", path + "/deliveries?cursor=WyJ4IiwgInkiXQ", None, 400, "cursor"),
        ("GET", "/v1/subscriptions/sub_nope", None, 404, "sub_nope"),
    ]
    for method, url, body, status, words in cases:
        response = await hooks.client.request(method, url, json=body, headers=crm)
        problem = await response.json()
        assert response.status == status, (method, url, body, problem)
        assert words in problem["detail"], (words, problem["detail"])
    not_json = await hooks.client.post("/v1/subscriptions", data=b"{", headers={
        **crm, "Content-Type": "application/json"})
    assert not_json.status == 400
    unchanged = await (await hooks.client.get(path, headers=crm)).json()
    assert unchanged == {k: v for k, v in subscription.items() if k != "secret"}


async def test_a_subscription_turned_feed_only_keeps_its_queue_until_it_has_a_url_again(
        hooks: Api, receiver: Receiver) -> None:
    down = True
    receiver.answer = lambda crm, event: 503 if down else 200
    subscription = await subscribe(hooks, receiver)
    path = f"/v1/subscriptions/{subscription['id']}"
    ids = await emit_many(hooks.database_url, lanes=2, per_lane=2)
    await eventually(lambda: len(receiver.deliveries) >= 2, what="failing attempts")
    polled = await hooks.client.patch(path, json={"url": None}, headers=hooks.auth(SUBSCRIBER))
    assert (await polled.json())["url"] is None
    down = False
    tried = len(receiver.deliveries)
    more = await emit_many(hooks.database_url, lanes=1, per_lane=1)  # not queued: it polls
    pending = await deliveries_of(hooks, subscription["id"], status="pending")
    assert sorted(d["event_id"] for d in pending) == sorted(ids)
    await hooks.client.patch(path, json={"url": receiver.url}, headers=hooks.auth(SUBSCRIBER))
    await eventually(lambda: len(receiver.accepted()) == len(ids), what="the kept queue")
    assert len(receiver.deliveries) - tried == len(ids)
    assert not {e["id"] for e in receiver.verified()} & set(more)


async def test_old_events_are_pruned_but_never_a_pending_delivery_or_its_event(
        hooks: Api, receiver: Receiver) -> None:
    down = True
    receiver.answer = lambda crm, event: 503 if down else 200
    subscription = await subscribe(hooks, receiver)
    ids = await emit_many(hooks.database_url, lanes=3, per_lane=2)
    await eventually(lambda: len(receiver.deliveries) >= 3, what="first attempts")
    await hooks.client.patch(f"/v1/subscriptions/{subscription['id']}",
                             json={"status": "paused"}, headers=hooks.auth(SUBSCRIBER))
    conn = await asyncpg.connect(hooks.database_url)
    try:
        # Paused, no lane is claimed again; an attempt already under way is recorded when its
        # lane is handed back. Wait for that, not for some time: a loaded machine may take long.
        async def quiet() -> bool:
            leased = await conn.fetchval(
                "SELECT count(*) FROM delivery_lanes WHERE subscription_id = $1"
                " AND lease_until IS NOT NULL", subscription["id"])
            return bool(leased == 0)

        await _until(quiet, what="the attempts under way recorded", timeout=120)
        # Three events of a hundred days ago: two delivered, one still pending.
        delivered, pending = ids[:2], ids[2]
        await conn.execute("UPDATE deliveries SET status = 'succeeded', finished_at = now()"
                           " WHERE event_id = ANY($1::text[])", delivered)
        await conn.execute("UPDATE events SET created_at = now() - interval '100 days'"
                           " WHERE event_id = ANY($1::text[])", [*delivered, pending])
        await conn.execute("UPDATE delivery_attempts SET attempted_at = now() - interval"
                           " '100 days' WHERE event_id = ANY($1::text[])", delivered)
        before = datetime.now(UTC) - timedelta(days=90)
        assert await deliveries.prune(conn, before=before) > 0
        left = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM events")}
        assert left == set(ids) - set(delivered)  # the pending one stays, with the recent
        queued = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM deliveries")}
        assert queued == set(ids) - set(delivered)
        assert await conn.fetchval("SELECT count(*) FROM delivery_attempts WHERE"
                                   " event_id = ANY($1::text[])", delivered) == 0
        assert await deliveries.prune(conn, before=before) == 0  # nothing more to do
    finally:
        await conn.close()
    down = False
    await hooks.client.patch(f"/v1/subscriptions/{subscription['id']}",
                             json={"status": "active"}, headers=hooks.auth(SUBSCRIBER))
    await eventually(lambda: {e["id"] for e in receiver.verified()} >= set(ids) - set(delivered),
                     what="the rest, the old pending one included")
    with pytest.raises(SettingsError, match="30 or more"):
        Policy.of(Settings(event_retention_days=7))
