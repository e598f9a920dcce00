"""Each crm key's subscriptions get the events of its own invoices (and subscriptions) and
no other key's, by webhook, by the feed and by replay alike; an admin key's get every
event; bank events go to every subscription of their types. Nothing filtered ever shows
as a gap to a receiver: a subscription gets every event of a lane or none of it.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk
from standardwebhooks.webhooks import Webhook

from gateway import outbox
from gateway.migrate import migrate
from gateway.store import api_keys, subscriptions
from gateway.store import events as event_store
from gateway.store import invoices as invoice_store
from matching.invoices import Invoice
from parsers.money import Money
from security import apikeys
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, another_key, make_api
from tests.gateway.migration_support import add_api_keys, add_invoices, migrate_before
from tests.gateway.webhook_support import FAST, Receiver, decrypt, ec_key, eventually, public
from tests.paths import DEMO_CAMT

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "crm_receiver.py"
LONG_AGO = "2000-01-01T00:00:00Z"
BANK_TYPES = {"payment.received", "payment.unmatched", "statement.imported",
              "statement.gap", "statement.overlap"}


def example_receiver() -> ModuleType:
    """examples/crm_receiver.py, whose gap detection is what a CRM would run."""
    spec = importlib.util.spec_from_file_location("crm_receiver_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gaps_seen(events: list[dict[str, Any]], *, deliveries: list[tuple[bytes, dict[str, str]]]
              | None = None, secret: str = "", key: jwk.JWK | None = None) -> list[str]:
    """The example receiver's verdict: the ids of events it marks as a gap. Given
    ``deliveries`` (body, headers), it takes those as it would over HTTP (verified and
    decrypted); else it records ``events`` (the feed's) in order."""
    module = example_receiver()
    keys = {key["kid"]: key} if key is not None else {}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:  # it syncs what it takes
        crm = module.Receiver([Webhook(secret)] if secret else [], keys, log)
        if deliveries is not None:
            for body, headers in deliveries:
                crm.handle(body, headers)
        else:
            for event in events:
                crm.record(event["id"], event, event["lane"], event["sequence"],
                           event["previous_event_id"])
        log.seek(0)
        lines = [json.loads(line) for line in log.read().splitlines()]
    return [line["event"]["id"] for line in lines if line["gap"]]


@dataclass
class Crm:
    """One API key with a webhook subscription (on a loopback receiver) and a feed-only one."""

    name: str
    headers: dict[str, str]
    receiver: Receiver
    key: jwk.JWK
    hook: dict[str, Any] = field(default_factory=dict)
    feed: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    api: Api
    a: Crm
    b: Crm
    admin: Crm
    # The invoice lanes each crm key owns; INV-X was pushed by the admin key: no one's.
    lanes: dict[str, set[str]] = field(default_factory=lambda: {
        "a": {"invoice:INV-A1", "invoice:INV-A2"}, "b": {"invoice:INV-B1"}})

    async def json(self, method: str, path: str, headers: dict[str, str], body: Any = None,
                   status: int = 200) -> Any:
        response = await self.api.client.request(method, path, headers=headers, json=body)
        assert response.status == status, (method, path, await response.text())
        return await response.json()

    async def events(self) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.api.database_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT event_id, type, lane FROM events ORDER BY event_pk")
            return rows
        finally:
            await conn.close()

    async def expected(self, crm: Crm) -> set[str]:
        """What ``crm`` should get, told from the lanes, not from the gateway's columns."""
        ids = set()
        for event in await self.events():
            lane = event["lane"]
            own = lane.startswith("invoice:") and lane in self.lanes.get(crm.name, set())
            if lane.startswith("account:") or crm is self.admin or own:
                ids.add(event["event_id"])
        return ids


def invoice(invoice_id: str, customer_id: str, amount: str = "100.00") -> dict[str, Any]:
    return {"invoice_id": invoice_id, "customer_id": customer_id, "customer_name": None,
            "currency": "EUR", "amount": amount, "open_amount": amount,
            "issue_date": "2026-11-01", "due_date": "2026-11-30", "reference": None}


@pytest.fixture
async def world(migrated_database_url: str,
                aiohttp_client: AiohttpClient) -> AsyncIterator[World]:
    api = await make_api(migrated_database_url, aiohttp_client, **FAST)
    second = await another_key(migrated_database_url, Role.CRM, "second-crm")
    crms = []
    for name, headers in (("a", api.auth(Role.CRM)),
                          ("b", {"Authorization": f"Bearer {second}"}),
                          ("admin", api.auth(Role.ADMIN))):
        key = ec_key(kid=f"{name}-ec")
        receiver = Receiver(keys=[key])
        await receiver.start()
        crms.append(Crm(name, headers, receiver, key))
    made = World(api, crms[0], crms[1], crms[2])
    try:
        yield made
    finally:
        for crm in crms:
            await crm.receiver.stop()


async def subscribe(world: World, crm: Crm, url: str | None) -> dict[str, Any]:
    body: dict[str, Any] = await world.json("POST", "/v1/subscriptions", crm.headers, {
        "url": url, "event_types": ["*"], "public_jwk": public(crm.key)}, status=201)
    return body


async def read_feed(world: World, crm: Crm, subscription_id: str) -> list[dict[str, Any]]:
    """The whole feed of a subscription, decrypted, in order, two events a page."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"/v1/events?subscription_id={subscription_id}&limit=2" + (
            f"&cursor={cursor}" if cursor else "")
        page = await world.json("GET", query, crm.headers)
        if not page["items"]:
            return events
        events += [decrypt(item["jwe"], [crm.key])[0] for item in page["items"]]
        cursor = page["next_cursor"]


async def pay_and_undo(world: World) -> None:
    """A's two invoices, B's one and the admin's one are paid from one payment, by hand;
    then the payment's share of INV-A2 is undone."""
    treasury = world.api.auth(Role.TREASURY)
    imported = await world.api.client.post("/v1/statements", data=DEMO_CAMT.read_bytes(),
                                           headers=treasury)
    assert imported.status == 201, await imported.text()
    lines = await world.json("GET", "/v1/transactions", treasury)
    payment = next(line for line in lines["items"] if Decimal(line["amount"]) >= 400)
    made = await world.json("POST", "/v1/matches", treasury, {
        "account_id": payment["account_id"], "entry_id": payment["entry_id"],
        "allocations": [{"invoice_id": "INV-A1", "amount": "100.00"},
                        {"invoice_id": "INV-A2", "amount": "40.00"},
                        {"invoice_id": "INV-B1", "amount": "100.00"},
                        {"invoice_id": "INV-X", "amount": "100.00"}]}, status=201)
    share = next(m for m in made["items"] if m["invoice_id"] == "INV-A2")
    await world.json("POST", f"/v1/matches/{share['allocation_id']}/undo", treasury,
                     {"reason": "paid by a stranger"})


async def setup_world(world: World) -> None:
    await world.json("PUT", "/v1/invoices", world.a.headers,
                     [invoice("INV-A1", "CUST-A"), invoice("INV-A2", "CUST-A")])
    await world.json("PUT", "/v1/invoices", world.b.headers, [invoice("INV-B1", "CUST-B")])
    await world.json("PUT", "/v1/invoices", world.admin.headers, [invoice("INV-X", "CUST-X")])
    for crm in (world.a, world.b, world.admin):
        crm.hook = await subscribe(world, crm, crm.receiver.url)
        crm.receiver.secret = crm.hook["secret"]
        crm.feed = await subscribe(world, crm, None)
    await pay_and_undo(world)


def received(crm: Crm) -> list[dict[str, Any]]:
    return crm.receiver.verified()


async def all_delivered(world: World, crm: Crm) -> None:
    """Wait until ``crm``'s receiver has taken at least every event it should get."""
    expected = await world.expected(crm)
    await eventually(lambda: {d.event["id"] for d in crm.receiver.accepted()
                              if d.event is not None} >= expected,
                     what=f"{crm.name}'s deliveries")


async def test_each_key_gets_its_own_invoices_events_by_webhook_and_feed(world: World) -> None:
    await setup_world(world)
    stored = await world.events()
    kinds = {(e["type"], e["lane"]) for e in stored}
    # Every invoice event the issue names, on the invoices of both keys and the admin's.
    assert {("invoice.paid", "invoice:INV-A1"), ("invoice.partially_paid", "invoice:INV-A2"),
            ("allocation.reversed", "invoice:INV-A2"), ("invoice.paid", "invoice:INV-B1"),
            ("invoice.paid", "invoice:INV-X")} <= kinds
    for crm in (world.a, world.b, world.admin):
        await all_delivered(world, crm)
        got = received(crm)
        assert {e["id"] for e in got} == await world.expected(crm), crm.name
        # The example receiver, given the deliveries as they came, sees no gap.
        assert gaps_seen([], deliveries=[(d.body, d.headers) for d in crm.receiver.accepted()],
                         secret=crm.hook["secret"], key=crm.key) == [], crm.name
        feed = await read_feed(world, crm, crm.feed["id"])
        assert {e["id"] for e in feed} == await world.expected(crm), crm.name
        assert gaps_seen(feed) == [], crm.name
        assert len(feed) == len({e["id"] for e in feed})
    lanes = {name: {e["lane"] for e in received(crm) if e["lane"].startswith("invoice:")}
             for name, crm in (("a", world.a), ("b", world.b), ("admin", world.admin))}
    assert lanes == {"a": {"invoice:INV-A1", "invoice:INV-A2"}, "b": {"invoice:INV-B1"},
                     "admin": {"invoice:INV-A1", "invoice:INV-A2", "invoice:INV-B1",
                               "invoice:INV-X"}}
    # Bank events reach the crm keys too: the payment and the statement are the tenant's.
    for crm in (world.a, world.b):
        assert {e["type"] for e in received(crm)} & BANK_TYPES >= {
            "payment.received", "statement.imported"}


async def replayed(receiver: Receiver, count: int, name: str) -> None:
    await eventually(lambda: len(receiver.accepted()) >= count, what=f"{name}'s replay")


async def test_a_replay_sends_only_the_keys_own_invoices_events(world: World) -> None:
    await setup_world(world)
    for crm in (world.a, world.b, world.admin):
        await all_delivered(world, crm)
    late = {crm.name: Receiver(keys=[crm.key]) for crm in (world.a, world.b, world.admin)}
    try:
        for crm in (world.a, world.b, world.admin):
            receiver = late[crm.name]
            subscription = await subscribe(world, crm, await receiver.start())
            receiver.secret = subscription["secret"]
            queued = await world.json("POST", f"/v1/subscriptions/{subscription['id']}/replay",
                                      crm.headers, {"since": LONG_AGO}, status=202)
            expected = await world.expected(crm)
            assert queued["queued"] == len(expected), crm.name
            await replayed(receiver, len(expected), crm.name)
            assert {e["id"] for e in receiver.verified()} == expected, crm.name
            assert gaps_seen([], deliveries=[(d.body, d.headers) for d in receiver.accepted()],
                             secret=subscription["secret"], key=crm.key) == [], crm.name
            # Another key's invoice event, asked for by its id, is not this subscription's.
            foreign = [e["event_id"] for e in await world.events()
                       if e["lane"].startswith("invoice:") and e["event_id"] not in expected]
            for event_id in foreign:
                await world.json("POST", f"/v1/subscriptions/{subscription['id']}/replay",
                                 crm.headers, {"event_id": event_id}, status=404)
            assert (crm is world.admin) == (not foreign)
    finally:
        for receiver in late.values():
            await receiver.stop()


# The model of the property test: who gets what, told apart from the gateway's own code.
KEYS = ("a", "b", "admin")
INVOICE_IDS = ("I0", "I1", "I2", "I3")
LANE_TYPES = {"invoice": ("invoice.paid", "invoice.partially_paid", "allocation.reversed"),
              "account": ("payment.received", "payment.unmatched", "statement.imported"),
              "subscription": ("subscription.failing", "subscription.disabled")}
EVENT = st.tuples(st.sampled_from(sorted(LANE_TYPES)), st.integers(0, 3), st.integers(0, 2))
ANY_TYPES = st.one_of(st.just(("*",)), st.sets(st.sampled_from(sorted(
    {t for types in LANE_TYPES.values() for t in types})), min_size=1).map(
    lambda s: tuple(sorted(s))))


def _invoice(invoice_id: str) -> Invoice:
    amount = Money(Decimal("10.00"), "EUR")
    return Invoice(invoice_id=invoice_id, customer_id=f"C-{invoice_id}", amount=amount,
                   open_amount=amount, issue_date=date(2026, 11, 1), due_date=None,
                   customer_name=None)


async def _subscribe(conn: asyncpg.Connection, tenant: str, owner: str,
                     types: tuple[str, ...]) -> str:
    row = await subscriptions.create(
        conn, tenant, owner=owner, url="https://crm.example.com/hook", event_types=list(types),
        public_jwk=public(ec_key()), jwks_url=None, kid="crm-ec-1", secret="whsec_x")  # noqa: S106 - a test's
    subscription_id: str = row["subscription_id"]
    return subscription_id


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(owners=st.fixed_dictionaries({i: st.sampled_from(("a", "b", "admin", None))
                                     for i in INVOICE_IDS}),
       types=st.fixed_dictionaries(dict.fromkeys(KEYS, ANY_TYPES)),
       batches=st.lists(st.lists(EVENT, min_size=1, max_size=6), min_size=1, max_size=4))
async def test_no_subscription_ever_gets_another_crm_keys_events_or_a_gap(
        pool: asyncpg.Pool, owners: dict[str, str | None],
        types: dict[str, tuple[str, ...]],
        batches: list[list[tuple[str, int, int]]]) -> None:
    """Invoices of either crm key, of the admin, or not stored at all; events on their
    lanes, on accounts' lanes and on subscriptions' lanes, in several transactions: every
    subscription's deliveries, feed and replay are exactly what the model says, and hold
    every event of each lane they touch."""
    tenant = uuid.uuid4().hex
    async with pool.acquire() as conn:
        key_ids = {}
        for name in KEYS:
            key = apikeys.generate()
            await api_keys.create(conn, tenant, key=key,
                                  role=Role.ADMIN if name == "admin" else Role.CRM, name=name)
            key_ids[name] = key.key_id
        for invoice_id, owner in owners.items():
            if owner is not None and owner != "admin":
                await invoice_store.upsert(conn, tenant, [_invoice(invoice_id)],
                                           owner=key_ids[owner])
            elif owner == "admin":
                await invoice_store.upsert(conn, tenant, [_invoice(invoice_id)], owner=None)
            # None: the invoice is not stored; its lane is no one's.
        early = {name: await _subscribe(conn, tenant, key_ids[name], types[name])
                 for name in KEYS}
        lane_owner: dict[str, str | None] = {}
        for invoice_id, owner in owners.items():
            lane_owner[f"invoice:{invoice_id}"] = owner if owner in ("a", "b") else None
        for name, subscription_id in early.items():
            lane_owner[f"subscription:{subscription_id}"] = name
        written: list[tuple[str, str, str]] = []  # (event id, type, lane)
        for batch in batches:
            news: list[outbox.NewEvent] = []
            for kind, subject, type_index in batch:
                lane = {"invoice": f"invoice:{INVOICE_IDS[subject]}",
                        "account": f"account:{subject}",
                        "subscription": f"subscription:{early[KEYS[subject % 3]]}"}[kind]
                news.append(outbox.NewEvent(LANE_TYPES[kind][type_index % len(
                    LANE_TYPES[kind])], lane, {"n": len(written) + len(news)}))
            async with conn.transaction():
                ids = await outbox.emit(conn, tenant, news)
            # emit writes lane by lane: its ids come back in lane order, not in ours
            written += [(r["event_id"], r["type"], r["lane"]) for r in await conn.fetch(
                "SELECT event_id, type, lane FROM events WHERE tenant_id = $1"
                " AND event_id = ANY($2::text[]) ORDER BY event_pk", tenant, ids)]
            assert len(ids) == len(news)

        def expected(name: str) -> set[str]:
            wanted = types[name]
            return {event_id for event_id, type_, lane in written
                    if ("*" in wanted or type_ in wanted)
                    and (lane.startswith("account:") or name == "admin"
                         or lane_owner[lane] == name)}

        late = {name: await _subscribe(conn, tenant, key_ids[name], types[name])
                for name in KEYS}
        for name in KEYS:
            await subscriptions.replay(conn, tenant, late[name], event_id=None,
                                       since=datetime(2000, 1, 1, tzinfo=UTC))
        lanes = {lane: [(i, t) for i, t, x in written if x == lane]
                 for lane in {x for _, _, x in written}}
        for name in KEYS:
            want = expected(name)
            for subscription_id in (early[name], late[name]):
                got = [r["event_id"] for r in await conn.fetch(
                    "SELECT event_id FROM deliveries WHERE tenant_id = $1"
                    " AND subscription_id = $2", tenant, subscription_id)]
                assert sorted(got) == sorted(want), name
            feed = [r["event_id"] for r in await event_store.feed(
                conn, tenant, early[name], after=None, limit=10_000)]
            assert sorted(feed) == sorted(want), name
            # Whole lanes or none: of each lane it touches, every event of its types.
            for events_of_lane in lanes.values():
                mine = [i for i, t in events_of_lane
                        if "*" in types[name] or t in types[name]]
                assert set(mine) <= want or not set(mine) & want, name


async def test_events_from_before_ownership_are_given_their_owners_and_leaks_dropped(
        conn: asyncpg.Connection) -> None:
    """The migration stamps stored events with the owners of their invoices and
    subscriptions, and drops the pending deliveries a subscription no longer gets."""
    await migrate_before(conn, "ownership")
    # "solo" has one crm key, which gets the invoice; "many" has two: the invoice is no one's.
    await add_api_keys(conn, [("solo", "k_solo", "crm", None), ("solo", "k_admin", "admin", None),
                              ("many", "k_one", "crm", None), ("many", "k_two", "crm", None)])
    subs = {"solo": [("s_solo", "k_solo"), ("s_admin", "k_admin")], "many": [("s_one", "k_one")]}
    events = {"solo": [("e_inv", "invoice:I1"), ("e_pay", "account:1"),
                       ("e_sub", "subscription:s_admin")],
              "many": [("e_many", "invoice:I1")]}
    for tenant in ("solo", "many"):
        await add_invoices(conn, tenant, [("I1", 10)])
        for subscription_id, owner in subs[tenant]:
            await conn.execute(
                "INSERT INTO subscriptions (tenant_id, subscription_id, owner_key_id, url,"
                " event_types, public_jwk, kid, secret) VALUES ($1, $2, $3,"
                " 'https://crm.example.com/hook', '{*}', '{}'::jsonb, 'k', 's')",
                tenant, subscription_id, owner)
        for event_id, lane in events[tenant]:
            await conn.execute(
                "INSERT INTO events (tenant_id, event_id, type, version, lane, sequence, data)"
                " VALUES ($1, $2, 'invoice.paid', 1, $3, 1, '{}')", tenant, event_id, lane)
            for subscription_id, _ in subs[tenant]:  # delivered to all, as before
                await conn.execute(
                    "INSERT INTO deliveries (tenant_id, subscription_id, event_id, lane,"
                    " sequence) VALUES ($1, $2, $3, $4, 1)",
                    tenant, subscription_id, event_id, lane)
    await migrate(conn)
    stamped = {r["event_id"]: (r["owned"], r["owner_key_id"]) for r in await conn.fetch(
        "SELECT event_id, owned, owner_key_id FROM events")}
    assert stamped == {"e_inv": (True, "k_solo"), "e_pay": (False, None),
                       "e_sub": (True, "k_admin"), "e_many": (True, None)}
    pending = {(r["subscription_id"], r["event_id"]) for r in await conn.fetch(
        "SELECT subscription_id, event_id FROM deliveries WHERE status = 'pending'")}
    assert pending == {("s_solo", "e_inv"), ("s_solo", "e_pay"), ("s_admin", "e_inv"),
                       ("s_admin", "e_pay"), ("s_admin", "e_sub")}
