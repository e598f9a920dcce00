from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest

from gateway.ingest import ingest
from gateway.migrate import migrate
from parsers.errors import ParseError


def mt940(statement_id: str, sequence: str, opening: str, closing: str, day: str,
          *lines: tuple[str, str, str]) -> bytes:
    """A small MT940 statement; ``lines`` are (mark+amount, bank reference, remittance)."""
    text = [f":20:{statement_id}", ":25:NL91ABNA0417164300", f":28C:{sequence}",
            f":60F:C{day}EUR{opening}"]
    for amount, reference, remittance in lines:
        text += [f":61:{day}{day[2:]}{amount}NTRFNONREF//{reference}", f":86:/REMI/{remittance}"]
    text += [f":62F:C{day}EUR{closing}", "-"]
    return ("\r\n".join(text) + "\r\n").encode()


MONDAY = mt940("MON", "101/1", "100,00", "130,00", "261123",
               ("C10,00", "R1", "INV 1"), ("C20,00", "R2", "INV 2"))
WEEK = mt940("WEEK", "101/1", "100,00", "160,00", "261123",
             ("C10,00", "R1", "INV 1"), ("C20,00", "R2", "INV 2"), ("C30,00", "R3", "INV 3"))


@pytest.fixture
async def db(conn: asyncpg.Connection) -> asyncpg.Connection:
    await migrate(conn)
    return conn


async def count(conn: asyncpg.Connection, table: str) -> int:
    value: int = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - test names
    return value


async def test_a_statement_is_stored_with_its_lines(db: asyncpg.Connection) -> None:
    result = await ingest(db, MONDAY, source="monday.sta")
    assert (result.entries_new, result.entries_known, result.document_known) == (2, 0, False)
    assert await count(db, "transactions") == 2
    amounts = [r["amount"] for r in await db.fetch(
        "SELECT amount FROM transactions ORDER BY amount")]
    assert amounts == [Decimal("10.00"), Decimal("20.00")]
    account = await db.fetchrow("SELECT iban, currency FROM bank_accounts")
    assert dict(account) == {"iban": "NL91ABNA0417164300", "currency": "EUR"}


async def test_the_same_file_twice_adds_nothing(db: asyncpg.Connection) -> None:
    await ingest(db, MONDAY, source="monday.sta")
    again = await ingest(db, MONDAY, source="monday-copy.sta")
    assert again.document_known
    assert (again.entries_new, again.entries_known) == (0, 2)
    assert [await count(db, t) for t in ("raw_documents", "statements", "transactions")] \
        == [1, 1, 2]


async def test_an_overlapping_statement_adds_only_the_new_lines(db: asyncpg.Connection) -> None:
    await ingest(db, MONDAY, source="monday.sta")
    week = await ingest(db, WEEK, source="week.sta")
    assert (week.entries_new, week.entries_known) == (1, 2)
    assert await count(db, "transactions") == 3


async def test_a_bad_file_stores_nothing(db: asyncpg.Connection) -> None:
    with pytest.raises(ParseError):
        await ingest(db, MONDAY[:60], source="cut.sta")
    assert [await count(db, t) for t in ("raw_documents", "statements", "transactions")] \
        == [0, 0, 0]


async def test_one_bad_statement_refuses_the_whole_file(db: asyncpg.Connection) -> None:
    cut = b":20:CUT\r\n:25:NL91ABNA0417164300\r\n:28C:102/1\r\n:60F:C261124EUR1,00\r\n-\r\n"
    with pytest.raises(ParseError, match=r"statement 2 of 2, :20: CUT: "):
        await ingest(db, MONDAY + cut, source="two.sta")
    assert [await count(db, t) for t in ("raw_documents", "statements", "transactions")] \
        == [0, 0, 0]


async def test_a_historic_statement_in_a_withdrawn_currency_is_stored(
        db: asyncpg.Connection) -> None:
    dem = MONDAY.replace(b"EUR", b"DEM").replace(b"261123", b"981123")
    result = await ingest(db, dem, source="dem.sta")
    assert result.entries_new == 2
    assert [f["code"] for f in result.statements[0].flags] == ["withdrawn_currency"]
    assert await db.fetchval("SELECT currency FROM bank_accounts") == "DEM"


async def test_continuity_breaks_are_recorded(db: asyncpg.Connection) -> None:
    await ingest(db, MONDAY, source="monday.sta")
    # Next day's statement opens at 125.00 though Monday closed at 130.00, and skips a number.
    tuesday = mt940("TUE", "103/1", "125,00", "125,00", "261124")
    result = await ingest(db, tuesday, source="tuesday.sta")
    codes = [f["code"] for f in result.statements[0].flags]
    assert codes == ["continuity_mismatch", "continuity_gap"]
    assert "130.00" in result.statements[0].flags[0]["message"]
    stored = await db.fetchval("SELECT flags FROM statements WHERE statement_id = 'TUE'")
    assert "continuity_mismatch" in stored


async def test_concurrent_imports_of_the_same_file_store_it_once(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        await migrate(connections[0])
        results = await asyncio.gather(
            *(ingest(c, WEEK, source=f"week-{i}.sta") for i, c in enumerate(connections)))
        assert sum(r.entries_new for r in results) == 3
        assert sum(not r.document_known for r in results) == 1
        assert await count(connections[0], "transactions") == 3
    finally:
        for c in connections:
            await c.close()


async def test_concurrent_overlapping_imports_store_each_line_once(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        await migrate(connections[0])
        results = await asyncio.gather(ingest(connections[0], MONDAY, source="m.sta"),
                                       ingest(connections[1], WEEK, source="w.sta"))
        assert sum(r.entries_new for r in results) == 3
        assert await count(connections[0], "transactions") == 3
    finally:
        for c in connections:
            await c.close()


async def test_a_connection_lost_mid_import_stores_nothing_and_can_be_retried(
        database_url: str) -> None:
    importer = await asyncpg.connect(database_url)
    blocker = await asyncpg.connect(database_url)
    try:
        await migrate(importer)
        # Hold the import after it has written the document, account and statement rows.
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE")
        task = asyncio.ensure_future(ingest(importer, WEEK, source="week.sta"))
        pid = importer.get_server_pid()
        for _ in range(600):  # poll, up to about 30 s
            waiting = await blocker.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid)
            if waiting:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the import never reached the transactions table")
        await blocker.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                            asyncpg.AdminShutdownError, ConnectionError)):
            await task
        await lock.rollback()
        assert [await count(blocker, t) for t in ("raw_documents", "statements",
                                                 "transactions")] == [0, 0, 0]
        retry = await asyncpg.connect(database_url)
        try:
            result = await ingest(retry, WEEK, source="week.sta")
        finally:
            await retry.close()
        assert (result.document_known, result.entries_new) == (False, 3)
    finally:
        await blocker.close()
        await importer.close()


async def test_a_line_stored_by_a_concurrent_import_meanwhile_is_skipped(
        database_url: str) -> None:
    first = await asyncpg.connect(database_url)
    second = await asyncpg.connect(database_url)
    try:
        await migrate(first)
        outer = first.transaction()
        await outer.start()
        week = await ingest(first, WEEK, source="week.sta")  # stored, not yet committed
        task = asyncio.ensure_future(ingest(second, MONDAY, source="monday.sta"))
        pid = second.get_server_pid()
        for _ in range(600):  # poll, up to about 30 s: wait until it blocks on our rows
            if await first.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second import never waited for the first")
        await outer.commit()
        monday = await task
        assert (week.entries_new, monday.entries_new, monday.entries_known) == (3, 0, 2)
        assert await count(first, "transactions") == 3
    finally:
        await first.close()
        await second.close()
