"""The identity rule (docs/ingest.md): every bank line stored exactly once, whatever the
formats, overlaps, repeats and order of the statements that report it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest import ingest, store_document
from parsers import camt_write, mt940_write
from parsers.model import Statement
from security.roles import Role
from tests.gateway.conftest import Api
from tests.gateway.identity_support import (
    UNORDERED_FORMATS,
    Ledger,
    booked,
    document_bytes,
    intraday,
    ledgers,
    uploads,
)


async def upload(pool: asyncpg.Pool, tenant: str, statement: Statement) -> None:
    async with pool.acquire() as conn:
        await store_document(conn, tenant, data=document_bytes(statement),
                             source=statement.source, statements=[statement])


async def stored(pool: asyncpg.Pool, tenant: str) -> tuple[Counter[tuple[date, Decimal]], int]:
    """The booked lines stored (as date and amount), and how many provisional lines remain."""
    rows = await pool.fetch(
        "SELECT booking_date, amount, provisional FROM transactions WHERE tenant_id = $1",
        tenant)
    booked_lines = Counter((r["booking_date"], r["amount"]) for r in rows if not r["provisional"])
    return booked_lines, sum(r["provisional"] for r in rows)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Ledger, list[Statement]]:
    ledger = draw(ledgers())
    return ledger, draw(uploads(ledger))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
async def test_uploaded_one_after_another_the_stored_lines_are_exactly_the_banks(
        pool: asyncpg.Pool, scenario: tuple[Ledger, list[Statement]]) -> None:
    ledger, statements = scenario
    tenant = uuid.uuid4().hex
    for statement in statements:
        await upload(pool, tenant, statement)
    lines, provisional = await stored(pool, tenant)
    assert lines == ledger.truth()
    assert provisional == 0  # every intraday line was confirmed by its booked statement


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios(), repeat=st.integers(1, 3))
async def test_uploaded_all_at_once_the_stored_lines_are_exactly_the_banks(
        pool: asyncpg.Pool, scenario: tuple[Ledger, list[Statement]], repeat: int) -> None:
    """The same uploads from several clients at the same moment, each file up to three
    times: the account's lock makes each decision see the ones before it."""
    ledger, statements = scenario
    tenant = uuid.uuid4().hex
    await asyncio.gather(*(upload(pool, tenant, s) for s in statements * repeat))
    lines, provisional = await stored(pool, tenant)
    assert lines == ledger.truth()
    assert provisional == 0


@st.composite
def unordered_scenarios(draw: st.DrawFn) -> tuple[Ledger, list[Statement]]:
    ledger = draw(ledgers())
    return ledger, draw(uploads(ledger, UNORDERED_FORMATS))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=unordered_scenarios())
async def test_with_lists_in_another_order_nothing_is_lost_and_every_extra_line_is_flagged(
        pool: asyncpg.Pool, scenario: tuple[Ledger, list[Statement]]) -> None:
    """An OFX file listing the newest first gives balances, read line by line within a
    day, that are not the ledger's: a line alike another may then be stored twice, but
    never silently (docs/ingest.md, limits), and no line is ever lost."""
    ledger, statements = scenario
    tenant = uuid.uuid4().hex
    for statement in statements:
        await upload(pool, tenant, statement)
    lines, provisional = await stored(pool, tenant)
    flagged = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE tenant_id = $1 AND possible_duplicate", tenant)
    assert not ledger.truth() - lines  # nothing lost
    assert (lines - ledger.truth()).total() <= flagged
    assert provisional == 0


async def test_agreeing_on_every_field_does_not_place_a_line_where_balances_do_not(
        pool: asyncpg.Pool) -> None:
    """Found by the generator: two alike payments in one day, the first seen intraday, then
    a statement of both (OFX), then the second's own statement. The first, confirmed by the
    OFX statement, agrees with the second on every field but lies outside its balances."""
    ledger = Ledger.from_days([[], [0], [0]], same_day=True)
    tenant = uuid.uuid4().hex
    for statement in (intraday(ledger, ledger.segments[1].day, 1, "camt.052"),
                      booked(ledger, 0, 2, "ofx"), booked(ledger, 2, 2, "camt.053"),
                      booked(ledger, 1, 1, "camt.053")):
        await upload(pool, tenant, statement)
    lines, provisional = await stored(pool, tenant)
    assert (lines, provisional) == (ledger.truth(), 0)


# The cases the issue names, as real files through our own writers.

def _two_alike_payments() -> Ledger:
    """Two statements whose balances chain, each with one payment; the two payments agree
    on every field and carry no bank reference."""
    return Ledger.from_days([[1], [1]], same_day=True)


async def count_lines(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM transactions")
    return value


@pytest.fixture
async def db(conn: asyncpg.Connection, migrated_database_url: str) -> asyncpg.Connection:
    """A connection to a migrated database."""
    return conn


async def test_a_line_repeated_in_the_next_chained_statement_is_a_new_line(
        db: asyncpg.Connection) -> None:
    ledger = _two_alike_payments()
    first, second = (mt940_write.write([booked(ledger, i, i, "mt940")]) for i in (0, 1))
    assert (await ingest(db, first, source="first.sta")).entries_new == 1
    result = await ingest(db, second, source="second.sta")
    assert (result.entries_new, result.entries_known) == (1, 0)
    assert await count_lines(db) == 2
    flags = await db.fetchval("SELECT count(*) FROM transactions WHERE possible_duplicate")
    assert flags == 0  # the balances prove it: nothing to check by hand


async def test_the_chained_statement_first_still_gives_two_lines(db: asyncpg.Connection) -> None:
    ledger = _two_alike_payments()
    first, second = (mt940_write.write([booked(ledger, i, i, "mt940")]) for i in (0, 1))
    await ingest(db, second, source="second.sta")
    await ingest(db, first, source="first.sta")
    assert await count_lines(db) == 2


@pytest.mark.parametrize("order", ["camt-first", "mt940-first"])
async def test_the_same_lines_as_camt_and_as_mt940_are_stored_once(
        db: asyncpg.Connection, order: str) -> None:
    ledger = Ledger.from_days([[0, 1]])  # with and without an end-to-end id; no reference
    camt = camt_write.write([booked(ledger, 0, 0, "camt.053")])
    mt940 = mt940_write.write([booked(ledger, 0, 0, "mt940")])
    files = [("s.xml", camt), ("s.sta", mt940)]
    if order == "mt940-first":
        files.reverse()
    results = [await ingest(db, data, source=name) for name, data in files]
    assert [(r.entries_new, r.entries_known) for r in results] == [(2, 0), (0, 2)]
    assert await count_lines(db) == 2
    overlap = await db.fetchval("SELECT count(*) FROM events WHERE type = 'statement.overlap'")
    assert overlap == 1


async def test_an_intraday_line_is_superseded_by_its_booked_line_not_added(
        db: asyncpg.Connection) -> None:
    ledger = Ledger.from_days([[0, 2]])
    report = intraday(ledger, ledger.segments[0].day, 2, "mt942")
    await store_document(db, "default", data=document_bytes(report), source="report",
                         statements=[report])
    before = await db.fetch("SELECT entry_id FROM transactions ORDER BY entry_id")
    assert await db.fetchval("SELECT bool_and(provisional) FROM transactions")
    result = await ingest(db, mt940_write.write([booked(ledger, 0, 0, "mt940")]),
                          source="day.sta")
    assert result.entries_new == 0
    after = await db.fetch(
        "SELECT entry_id, provisional, confirmed_statement_pk FROM transactions"
        " ORDER BY entry_id")
    assert [r["entry_id"] for r in after] == [r["entry_id"] for r in before]  # ids stay
    assert not any(r["provisional"] for r in after)
    outcomes = await db.fetch(
        "SELECT outcome FROM all_statement_lines l JOIN statements s USING"
        " (tenant_id, account_id, statement_pk) WHERE s.format = 'mt940' ORDER BY position")
    assert [r["outcome"] for r in outcomes] == ["supersedes", "supersedes"]
    # the incoming booked payment is announced once, when it is booked
    received = await db.fetchval("SELECT count(*) FROM events WHERE type = 'payment.received'")
    assert received == 1


async def test_the_middle_statement_last_still_gives_every_line(
        db: asyncpg.Connection) -> None:
    ledger = Ledger.from_days([[1], [1], [1]], same_day=True)
    for i in (0, 2, 1):
        await ingest(db, mt940_write.write([booked(ledger, i, i, "mt940")]), source=f"{i}.sta")
    assert await count_lines(db) == 3


async def test_a_statement_the_balances_cannot_place_flags_its_lookalike_lines(
        db: asyncpg.Connection) -> None:
    """The third statement, then the first: nothing joins them (the second is missing), so
    the first's line, just like the third's, is stored and marked for a person to check."""
    ledger = Ledger.from_days([[1], [1], [1]], same_day=True)
    await ingest(db, mt940_write.write([booked(ledger, 2, 2, "mt940")]), source="c.sta")
    result = await ingest(db, mt940_write.write([booked(ledger, 0, 0, "mt940")]),
                          source="a.sta")
    assert result.entries_new == 1
    assert "possible_duplicate" in [f["code"] for f in result.statements[0].flags]
    assert await db.fetchval("SELECT count(*) FROM transactions WHERE possible_duplicate") == 1
    event = await db.fetchrow("SELECT data FROM events WHERE type = 'statement.overlap'")
    assert json.loads(event["data"])["possible_duplicates"] == 1


async def test_a_gap_between_statements_is_an_event(db: asyncpg.Connection) -> None:
    ledger = Ledger.from_days([[0], [3], [0]])
    await ingest(db, mt940_write.write([booked(ledger, 0, 0, "mt940")]), source="a.sta")
    await ingest(db, mt940_write.write([booked(ledger, 2, 2, "mt940")]), source="c.sta")
    gap = await db.fetchrow("SELECT data FROM events WHERE type = 'statement.gap'")
    assert gap is not None
    data = json.loads(gap["data"])
    assert data["difference"] == "20.00"  # day 2's payment of 20.00 is missing


async def test_one_file_posted_by_many_clients_at_once_is_stored_once(
        pool: asyncpg.Pool) -> None:
    ledger = Ledger.from_days([[0, 1, 2, 3] * 75])  # 300 lines
    data = camt_write.write([booked(ledger, 0, 0, "camt.053")])

    async def post() -> None:
        async with pool.acquire() as conn:
            await ingest(conn, data, source="big.xml")

    await asyncio.gather(*(post() for _ in range(4)))
    assert await pool.fetchval("SELECT count(*) FROM transactions") == 300
    assert await pool.fetchval("SELECT count(*) FROM statements") == 1


async def test_the_api_shows_each_line_normalized_and_a_statements_lines_in_bank_order(
        api: Api) -> None:
    ledger = Ledger.from_days([[3, 2, 0, 3]])
    treasury = api.auth(Role.TREASURY)
    posted = await api.client.post("/v1/statements?filename=day.xml", headers=treasury,
                                   data=camt_write.write([booked(ledger, 0, 0, "camt.053")]))
    assert posted.status == 201
    statement_pk = (await posted.json())["statements"][0]["statement_pk"]
    listed = await (await api.client.get("/v1/transactions", headers=treasury)).json()
    line = next(t for t in listed["items"] if t["end_to_end_id"] == "E2E-1")
    assert (line["counterparty_name"], line["counterparty_account"], line["remittance"]) == (
        "ACME GmbH", "DE02120300000000202051", "INV 1")
    assert (line["provisional"], line["possible_duplicate"]) == (False, False)
    assert line["allocation_status"] == "unallocated"
    assert line["allocated_amount"] == "0"
    lines, cursor = [], None
    while True:  # pages of one, to walk the cursor
        url = f"/v1/statements/{statement_pk}/lines?limit=1" + (f"&cursor={cursor}" if cursor
                                                                  else "")
        body = await (await api.client.get(url, headers=treasury)).json()
        lines += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [x["amount"] for x in lines] == ["20.00", "-5.50", "10.00", "20.00"]
    assert [x["position"] for x in lines] == [0, 1, 2, 3]
    assert {x["outcome"] for x in lines} == {"new"}
    missing = await api.client.get("/v1/statements/999999/lines", headers=treasury)
    assert missing.status == 404


async def test_a_booked_statement_that_only_confirms_intraday_lines_reconciles_them(
        api: Api) -> None:
    """Its lines are none of them new, but they are booked payments now: the import
    reconciles them, as it does new ones (intraday lines are never matched)."""
    ledger = Ledger.from_days([[3]])
    report = intraday(ledger, ledger.segments[0].day, 1, "mt942")
    conn = await asyncpg.connect(api.database_url)
    try:
        await store_document(conn, "default", data=document_bytes(report), source="report",
                             statements=[report])
    finally:
        await conn.close()
    posted = await api.client.post("/v1/statements?filename=day.sta",
                                   headers=api.auth(Role.TREASURY),
                                   data=mt940_write.write([booked(ledger, 0, 0, "mt940")]))
    assert posted.status == 201, await posted.text()
    body = await posted.json()
    assert body["entries_new"] == 0
    assert body["reconciliation"] is not None
    # The confirmed line waits for the workers as a new payment does; they match it.
    assert body["reconciliation"]["lines"] == 1
    assert (await api.settled())["payments_waiting"] == 0
