"""GET /v1/events: every event exactly once, in order, whatever the transaction ids are.

The feed's position is the writing transaction's id (``xid8``). Ordered as text, 1000 sorts
before 999 and a reader's cursor jumps over whole decades of events. Two ways to get events
on both sides of a power of ten:

- for real: use up transaction ids until the server's counter is just below the next power
  of ten, and write events across it. The counter is cluster-wide, differs between the test
  servers and only grows (crossing 10**n puts the next crossing ten times as far), so this
  runs only when the next power of ten is within BURN_CAP ids (always so on the embedded
  server a test session starts, whose counter begins near 700);
- by placing them: write events, then set their transaction ids to chosen values below the
  oldest running transaction (as if older transactions had written them), around every
  power of ten up to where the server is. This runs on any server, and lets hypothesis
  choose the positions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import outbox
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.webhook_support import FAST, ec_key, public

# The feed's reader. Its events are on the lanes of invoices no crm key owns (none is
# stored), which only the subscriptions of an admin key get (store.events.reaches).
SUBSCRIBER = Role.ADMIN
# Events written below the power of ten before the writes cross it.
BELOW = 12
# Transaction ids burnt per statement: one transaction of that many subtransactions.
BURN_CHUNK = 200_000
# The most ids the real crossing may burn (some seconds; more would make every later run of
# the suite on that server burn ten times as many).
BURN_CAP = 1_000_000


async def current_txid(conn: asyncpg.Connection) -> int:
    """The transaction id the next transaction of ``conn`` gets, near enough (it uses one)."""
    value: int = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
    return value + 1


async def burn_until(conn: asyncpg.Connection, target: int) -> None:
    """Use up transaction ids until the next one is ``target`` or a little above it.

    Each subtransaction that writes takes an id of its own, so one statement of many
    rolled-back subtransactions uses them up at tens of thousands a second; a loop of
    ``SELECT pg_current_xact_id()`` would need a round trip each.
    """
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS burnt (x int)")
    while (now := await current_txid(conn)) < target - 1:
        count = min(target - 1 - now, BURN_CHUNK)
        await conn.execute(f"""
            DO $$ BEGIN
                FOR i IN 1..{count} LOOP
                    BEGIN
                        INSERT INTO burnt VALUES (i);
                        RAISE EXCEPTION 'burn';
                    EXCEPTION WHEN raise_exception THEN NULL;
                    END;
                END LOOP;
            END $$""")  # noqa: S608 - count is our own int


def next_power_of_ten(txid: int) -> int:
    """The first power of ten with room for BELOW events (and some slack) under it."""
    return 10 ** len(str(txid + 4 * BELOW))


@dataclass
class Written:
    """Events written by a test: id -> (transaction id, event_pk), the feed's true order."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def in_order(self, ids: list[str] | None = None) -> list[str]:
        chosen = self.positions if ids is None else ids
        return sorted(chosen, key=lambda i: self.positions[i])


async def write(conn: asyncpg.Connection, written: Written, count: int, n: int) -> int:
    """``count`` events in one transaction of ``conn`` (lane ``n``); its transaction id."""
    async with conn.transaction():
        ids = await outbox.emit(conn, "default", [
            outbox.NewEvent("invoice.partially_paid", f"invoice:FEED-{n}",
                            {"invoice_id": f"FEED-{n}", "n": i}) for i in range(count)])
        return await record(conn, written, ids)


async def record(conn: asyncpg.Connection, written: Written, ids: list[str]) -> int:
    rows = await conn.fetch("SELECT event_id, txid::text AS txid, event_pk FROM events"
                            " WHERE event_id = ANY($1::text[])", ids)
    for row in rows:
        written.positions[row["event_id"]] = (int(row["txid"]), row["event_pk"])
    return int(rows[0]["txid"])


async def place(conn: asyncpg.Connection, written: Written, txids: list[int]) -> None:
    """Give the events written so far, oldest first, these transaction ids (in this order,
    several events may share one), as if older transactions had written them."""
    ids = sorted(written.positions, key=lambda i: written.positions[i][1])
    assert len(ids) == len(txids)
    assert max(txids) < await current_txid(conn) - 1  # below every running transaction
    await conn.executemany("UPDATE events SET txid = $2::text::xid8 WHERE event_id = $1",
                           [(i, str(t)) for i, t in zip(ids, txids, strict=True)])
    for event_id, txid in zip(ids, txids, strict=True):
        written.positions[event_id] = (txid, written.positions[event_id][1])


def powers_of_ten_below(txid: int) -> list[int]:
    """10, 100, ... with a few ids of room above each, all below ``txid``."""
    return [10**k for k in range(1, len(str(txid))) if 10**k + 5 < txid]


async def read(api: Api, subscription_id: str, *, limit: int, cursor: str | None = None,
               expect: int = 0) -> tuple[list[str], str | None]:
    """Every event id after ``cursor``, ``limit`` a page; and the cursor to go on from.

    The feed lists an event only once no transaction that began before it is still open
    anywhere on the server (else it could be overtaken), so any session of the server
    (autovacuum, another test's) may hold committed events back a moment: with ``expect``
    the walk goes on, polling, until it has that many ids or a minute has passed, and the
    caller's comparison then finds any missing, extra or misordered one.
    """
    ids: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        params = {"subscription_id": subscription_id, "limit": str(limit),
                  **({"cursor": cursor} if cursor else {})}
        response = await api.client.get("/v1/events", params=params, headers=api.auth(SUBSCRIBER))
        assert response.status == 200, await response.text()
        body = await response.json()
        assert len(body["items"]) <= limit
        ids += [item["id"] for item in body["items"]]
        if not body["items"]:
            assert body["next_cursor"] == cursor  # nothing new: the same cursor again
            if len(ids) >= expect or time.monotonic() > deadline:
                return ids, cursor
            await asyncio.sleep(0.05)  # polling interval, not a wait for an event
            continue
        assert body["next_cursor"] == body["items"][-1]["cursor"]
        cursor = body["next_cursor"]


async def polling_subscription(api: Api) -> str:
    response = await api.client.post("/v1/subscriptions", headers=api.auth(SUBSCRIBER), json={
        "url": None, "event_types": ["*"], "public_jwk": public(ec_key())})
    assert response.status == 201, await response.text()
    subscription_id: str = (await response.json())["id"]
    return subscription_id


@pytest.fixture
async def hooks(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    return await make_api(migrated_database_url, aiohttp_client, **FAST)


async def test_every_event_is_listed_once_in_order_across_a_power_of_ten(hooks: Api) -> None:
    subscription = await polling_subscription(hooks)
    written = Written()
    conn = await asyncpg.connect(hooks.database_url)
    try:
        boundary = next_power_of_ten(await current_txid(conn))
        if boundary - await current_txid(conn) > BURN_CAP:
            pytest.skip(f"the server's next power of ten, {boundary}, is over {BURN_CAP} "
                        "transaction ids away (the placed-positions tests cover this server)")
        await burn_until(conn, boundary - BELOW)
        n = 0
        while sum(txid >= boundary for txid, _ in written.positions.values()) < 2 * BELOW:
            # One event a transaction, then a few of two: ties on the transaction id.
            await write(conn, written, 1 + n % 2, n)
            n += 1
    finally:
        await conn.close()
    txids = [txid for txid, _ in written.positions.values()]
    assert min(txids) < boundary <= max(txids), (boundary, sorted(txids))
    assert len(str(min(txids))) < len(str(max(txids)))
    expected = written.in_order()
    for limit in (1, 2, 5):
        seen, cursor = await read(hooks, subscription, limit=limit, expect=len(expected))
        assert seen == expected, f"limit={limit}: {len(seen)} of {len(expected)} events"
        again, _ = await read(hooks, subscription, limit=limit, cursor=cursor)
        assert again == []


async def test_events_placed_around_every_power_of_ten_are_listed_once_in_order(
        hooks: Api) -> None:
    subscription = await polling_subscription(hooks)
    written = Written()
    conn = await asyncpg.connect(hooks.database_url)
    try:
        powers = powers_of_ten_below(await current_txid(conn))
        positions = [p + d for p in powers for d in (-2, -1, 0, 0, 1, 2)]
        for n in range(len(positions)):
            await write(conn, written, 1, n)
        await place(conn, written, positions)
    finally:
        await conn.close()
    expected = written.in_order()
    for limit in (1, 2):
        seen, _ = await read(hooks, subscription, limit=limit, expect=len(expected))
        assert seen == expected, f"limit={limit}: {len(seen)} of {len(expected)} events"


async def test_reading_on_from_any_cursor_lists_exactly_the_events_after_it(hooks: Api) -> None:
    subscription = await polling_subscription(hooks)
    written = Written()
    conn = await asyncpg.connect(hooks.database_url)
    try:
        for n in range(6):
            await write(conn, written, 1, n)
        power = powers_of_ten_below(await current_txid(conn))[-1]
        await place(conn, written, [power - 3, power - 2, power - 1, power, power, power + 1])
    finally:
        await conn.close()
    response = await hooks.client.get("/v1/events", headers=hooks.auth(SUBSCRIBER), params={
        "subscription_id": subscription, "limit": "100"})
    items = (await response.json())["items"]
    expected = written.in_order()
    assert [item["id"] for item in items] == expected
    for index, item in enumerate(items):
        seen, _ = await read(hooks, subscription, limit=2, cursor=item["cursor"])
        assert seen == expected[index + 1:]
        # The cursor carries the transaction id as a number, not as digits to compare as text
        # (it is "TXID.EVENT_PK": gateway.params).
        position = [int(part) for part in item["cursor"].split(".")]
        assert position == list(written.positions[item["id"]])


@pytest.mark.parametrize(("params", "named"), [
    ({"after": "x"}, "'after'"),
    ({"subscriptionid": "sub_x"}, "'subscriptionid'"),
    ({"cursor": "", "limt": "5"}, "'limt'")])
async def test_an_unknown_query_parameter_is_refused_by_name(
        hooks: Api, params: dict[str, str], named: str) -> None:
    subscription = await polling_subscription(hooks)
    response = await hooks.client.get("/v1/events", headers=hooks.auth(SUBSCRIBER),
                                      params={"subscription_id": subscription, **params})
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert named in (await response.json())["detail"]


@pytest.mark.parametrize("position", [
    ["12", 1, 3], ["1²", 1], ["-1", 1], [-1, 1], [1, -1], [1.5, 1], [True, 1], [1, None],
    [2**63, 1], [1, 2**63], ["9" * 20, 1], "x", {"txid": 1}])
async def test_a_cursor_the_feed_did_not_give_out_is_a_400(hooks: Api, position: Any) -> None:
    subscription = await polling_subscription(hooks)
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    response = await hooks.client.get("/v1/events", headers=hooks.auth(SUBSCRIBER), params={
        "subscription_id": subscription, "cursor": cursor})
    assert response.status == 400, await response.text()
    assert "cursor" in (await response.json())["detail"]


async def test_a_cursor_given_out_with_the_transaction_id_as_digits_still_reads_on(
        hooks: Api) -> None:
    """Before the fix a cursor held the transaction id as a string; such cursors keep working."""
    subscription = await polling_subscription(hooks)
    written = Written()
    conn = await asyncpg.connect(hooks.database_url)
    try:
        for n in range(3):
            await write(conn, written, 1, n)
    finally:
        await conn.close()
    first = written.in_order()[0]
    txid, event_pk = written.positions[first]
    legacy = base64.urlsafe_b64encode(json.dumps([str(txid), event_pk]).encode()).decode()
    seen, _ = await read(hooks, subscription, limit=1, cursor=legacy.rstrip("="))
    assert seen == written.in_order()[1:]


@dataclass
class Walk:
    """What the property's examples share: one database, the cursor read up to, and every
    event written so far, with the ids the feed has listed."""

    api: Api
    subscription: str
    conn: asyncpg.Connection
    written: Written = field(default_factory=Written)
    listed: list[str] = field(default_factory=list)
    cursor: str | None = None
    lane: int = 0


@pytest.fixture
async def walk(hooks: Api) -> Any:
    conn = await asyncpg.connect(hooks.database_url)
    try:
        yield Walk(hooks, await polling_subscription(hooks), conn)
    finally:
        await conn.close()


# A step: a transaction of 1-3 events, or a jump of the transaction counter, or a read with
# a page size, or a transaction that takes its id now and commits only after the next read.
STEPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(1, 3)),
    st.tuples(st.just("burn"), st.integers(1, 100)),
    st.tuples(st.just("read"), st.integers(1, 4)),
    st.tuples(st.just("late"), st.integers(1, 2))), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, last_limit=st.integers(1, 4))
async def test_walking_the_feed_lists_each_event_once_in_transaction_order(
        walk: Walk, steps: list[tuple[str, int]], last_limit: int) -> None:
    """Whatever is written, in whatever transactions, around whatever reads: the ids read,
    page by page, are every event exactly once, in (transaction id, event_pk) order.

    The examples share the database, so each one reads on from the cursor the last one
    reached: the walk as a whole must be exact, not just each example.
    """
    held: list[tuple[Any, asyncpg.Connection, list[str]]] = []
    for step, number in steps:
        if step == "write":
            walk.lane += 1
            await write(walk.conn, walk.written, number, walk.lane)
        elif step == "burn":
            await burn_until(walk.conn, await current_txid(walk.conn) + number)
        elif step == "late":
            walk.lane += 1
            late = await asyncpg.connect(walk.api.database_url)
            transaction = late.transaction()
            await transaction.start()
            ids = await outbox.emit(late, "default", [outbox.NewEvent(
                "invoice.partially_paid", f"invoice:LATE-{walk.lane}",
                {"invoice_id": f"LATE-{walk.lane}", "n": i}) for i in range(number)])
            held.append((transaction, late, ids))
        else:
            seen, walk.cursor = await read(walk.api, walk.subscription, limit=number,
                                           cursor=walk.cursor)
            walk.listed += seen
            for transaction, late, ids in held:
                await transaction.commit()
                await record(late, walk.written, ids)
                await late.close()
            held = []
    for transaction, late, ids in held:
        await transaction.commit()
        await record(late, walk.written, ids)
        await late.close()
    seen, walk.cursor = await read(
        walk.api, walk.subscription, limit=last_limit, cursor=walk.cursor,
        expect=len(walk.written.in_order()) - len(walk.listed))
    walk.listed += seen
    assert walk.listed == walk.written.in_order()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), limit=st.integers(1, 4))
async def test_the_feed_lists_events_at_any_positions_once_in_order(
        walk: Walk, data: st.DataObject, limit: int) -> None:
    """Events at transaction ids hypothesis chooses, most of them beside a power of ten,
    read from the start in pages of ``limit``: each exactly once, in (id, event_pk) order."""
    await walk.conn.execute("DELETE FROM deliveries; DELETE FROM events")
    walk.written = Written()
    # What is drawn must not depend on the server (hypothesis replays draws): positions up to
    # a million, folded below the server's counter where it is lower than that.
    ceiling = await current_txid(walk.conn) - 2
    near_a_power = st.builds(lambda k, d: 10**k + d, st.integers(1, 6), st.integers(-3, 3))
    position = st.one_of(near_a_power, st.integers(3, 10**6))
    transactions = data.draw(st.lists(st.tuples(st.integers(1, 3), position),
                                      min_size=1, max_size=8), label="transactions")
    txids: list[int] = []
    for count, txid in transactions:
        walk.lane += 1
        await write(walk.conn, walk.written, count, walk.lane)
        txids += [txid if txid < ceiling else 3 + txid % (ceiling - 3)] * count
    await place(walk.conn, walk.written, txids)
    seen, _ = await read(walk.api, walk.subscription, limit=limit,
                         expect=len(walk.written.in_order()))
    assert seen == walk.written.in_order()
