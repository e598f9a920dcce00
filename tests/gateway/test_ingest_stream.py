"""Streaming ingest (issue 11 item 2): hash first, lines staged in batches and stored
set-based, documents of any size from files and spooled bodies, the service answering
while a large document is read. The identity rule itself: test_line_identity.py (whose
properties run through this same path: ``store_document`` and ``ingest`` both stage)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import parsers
from gateway import ingest_files, outbox
from gateway.ingest import ingest, store_document
from gateway.ingest_files import ingest_path, ingest_spooled, spool
from gateway.store import documents
from parsers import camt_write
from parsers.errors import ParseError, TooLargeError
from parsers.identity import entry_ids, fresh_ids
from parsers.model import Account, Balance, BalanceKind, Entry, Statement
from parsers.money import Money
from security.roles import Role
from tests.gateway.conftest import Api

ACCOUNT = Account(iban="DE89370400440532013000", currency="EUR")


def statement(lines: int, *, days: int = 30, statement_id: str = "S1",
              twins: int = 3) -> Statement:
    """A camt.053 statement of ``lines`` lines over ``days`` days, every ``twins``-th line
    the same as the one before it (lines alike get occurrence numbers), names in several
    scripts, balances that add up."""
    entries: list[Entry] = []
    first = date(2026, 1, 1)
    names = ("Jürgen Müller", "Łukasz Nowak", "王小明", "Søren Ørsted")
    for n in range(lines):
        if twins and n and n % twins == 0:
            entries.append(entries[-1])
            continue
        amount = Decimal(n % 997 + 1) / 100 * (1 if n % 3 else -1)
        entries.append(Entry(
            amount=Money(amount, "EUR"), booking_date=first + timedelta(days=n * days // lines),
            value_date=first + timedelta(days=n * days // lines),
            counterparty_name=names[n % len(names)], remittance=f"Rechnung {n % 50}"))
    total = sum((e.amount.amount for e in entries), Decimal(0))
    last = entries[-1].booking_date or first
    return Statement(
        source="generated", format="camt.053", account=ACCOUNT, entries=tuple(entries),
        statement_id=statement_id,
        created_at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        opening_balance=Balance(Money(Decimal("1000.00"), "EUR"), first,
                                BalanceKind.OPENING_BOOKED),
        closing_balance=Balance(Money(Decimal("1000.00") + total, "EUR"), last,
                                BalanceKind.CLOSING_BOOKED))


def camt(s: Statement) -> bytes:
    return camt_write.write([s])


async def staged_rows(conn: asyncpg.Connection) -> int:
    """Lines left in this session's staging tables (none, after any import)."""
    exists = await conn.fetchval("SELECT to_regclass('pg_temp.ingest_stage') IS NOT NULL")
    if not exists:
        return 0
    count: int = await conn.fetchval(
        "SELECT (SELECT count(*) FROM ingest_stage) + (SELECT count(*) FROM ingest_ledger)"
        " + (SELECT count(*) FROM ingest_decided) + (SELECT count(*) FROM ingest_booked)")
    return count


async def test_lines_get_the_ids_parsers_identity_gives_them(db: asyncpg.Connection) -> None:
    """The ids made in the database (a day the account had no line on) and in Python (a
    day it had, decided line by line) are those of ``parsers.identity``, lines alike
    numbered by occurrence, names in any script."""
    data = camt(statement(600, days=6))
    parsed = parsers.parse(data, source="s.xml")[0]
    result = await ingest(db, data, source="s.xml")
    assert result.entries_new == 600
    stored = await db.fetch("SELECT entry_id FROM all_statement_lines ORDER BY position")
    assert [r["entry_id"] for r in stored] == list(entry_ids(parsed))
    # A second statement over the same days, following the first: every day now has lines,
    # so its lines are decided (and given ids) in Python.
    second = statement(300, days=6, statement_id="S2")
    closing = parsed.closing_balance
    assert closing is not None
    second = dataclasses.replace(
        second,
        opening_balance=dataclasses.replace(closing, kind=BalanceKind.OPENING_BOOKED),
        closing_balance=dataclasses.replace(closing, amount=Money(
            closing.amount.amount + sum((e.amount.amount for e in second.entries),
                                        Decimal(0)), "EUR")))
    after = await ingest(db, camt(second), source="s2.xml")
    assert after.entries_new == 300  # chained: its lines are new, however alike
    taken = {r["entry_id"] for r in stored}
    rows = await db.fetch(
        "SELECT entry_id FROM all_statement_lines WHERE statement_pk = $1 ORDER BY position",
        after.statements[0].statement_pk)
    parsed_second = parsers.parse(camt(second), source="s2.xml")[0]
    assert [r["entry_id"] for r in rows] == fresh_ids(parsed_second, range(300), taken=taken)
    assert await staged_rows(db) == 0


async def test_a_known_document_is_answered_from_its_hash_unparsed(
        db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = camt(statement(50))
    first = await ingest(db, data, source="a.xml")

    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a known document was parsed")

    monkeypatch.setattr(parsers, "stream", no_parsing)
    again = await ingest(db, data, source="b.xml")
    assert again.document_known and again.document_id == first.document_id
    assert again.entries_new == 0 and again.entries_known == 50
    path = tmp_path / "a.xml"
    path.write_bytes(data)
    from_file = await ingest_path(db, path)
    assert from_file.document_known and from_file.document_id == first.document_id


async def test_a_bad_value_deep_in_a_large_statement_stores_nothing_and_is_named(
        db: asyncpg.Connection) -> None:
    """Found after several batches were staged: the document is refused whole, naming the
    entry as a reader counts it, and the staged lines are gone."""
    whole = statement(25_000, twins=0)
    entries = list(whole.entries)
    entries[23_456] = dataclasses.replace(entries[23_456], remittance="bad\x00text")
    bad = dataclasses.replace(whole, entries=tuple(entries))
    with pytest.raises(ParseError) as raised:
        await store_document(db, "default", data=b"bad document", source="bad.xml",
                             statements=[bad])
    assert "statement 1, entry 23457" in raised.value.message
    assert "NUL" in raised.value.message and raised.value.field == "remittance"
    assert await db.fetchval("SELECT count(*) FROM transactions") == 0
    assert await db.fetchval("SELECT count(*) FROM raw_documents") == 0
    assert await staged_rows(db) == 0


class Body:
    """A request body arriving in pieces (``request.content``)."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self.pieces = [data[i:i + piece] for i in range(0, len(data), piece)]

    async def read(self, n: int = -1) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


async def test_a_spooled_body_is_imported_as_the_same_bytes_would_be(
        db: asyncpg.Connection) -> None:
    data = camt(statement(200))
    async with spool(Body(data), max_bytes=len(data)) as body:
        assert body.size == len(data) and not body.blank
        spooled_path = body.path
        result = await ingest_spooled(db, body, source="upload.xml")
    assert not spooled_path.exists()
    assert result.entries_new == 200
    again = await ingest(db, data, source="upload.xml")
    assert again.document_known and again.document_id == result.document_id


async def test_a_body_over_the_limit_is_refused_and_a_blank_one_is_told() -> None:
    with pytest.raises(TooLargeError, match="over the limit of 4999 bytes"):
        async with spool(Body(b"x" * 5000), max_bytes=4999):
            raise AssertionError("a body over the limit was spooled")
    async with spool(Body(b" \r\n\t " * 10, piece=3), max_bytes=100) as body:
        assert body.blank and body.size == 50
    async with spool(Body(b"  x  "), max_bytes=100) as body:
        assert not body.blank


async def test_a_large_document_is_kept_in_chunks_and_read_back_whole(
        db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(documents, "CHUNKED_OVER", 1000)
    monkeypatch.setattr(documents, "CHUNK", 777)
    data = camt(statement(100))
    path = tmp_path / "big.xml"
    path.write_bytes(data)
    result = await ingest_path(db, path, source="big.xml")
    assert result.entries_new == 100
    chunks = await db.fetchval("SELECT count(*) FROM document_chunks WHERE document_id = $1",
                               result.document_id)
    assert chunks == -(-len(data) // 777)
    assert await documents.content(db, "default", result.document_id) == data
    assert await db.fetchval("SELECT size_bytes FROM raw_documents") == len(data)


async def test_a_file_over_the_limit_is_refused_unread(db: asyncpg.Connection,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(camt(statement(20)))
    with pytest.raises(TooLargeError, match="over the limit of 100 bytes"):
        await ingest_path(db, path, max_bytes=100)
    with pytest.raises(ParseError, match="cannot read the file"):
        await ingest_path(db, tmp_path / "missing.xml")


async def test_the_service_answers_while_a_large_document_is_parsed(api: Api) -> None:
    """The parser runs in a worker thread: while it reads a large document (before the
    import reaches storing), /healthz and a read answer on the same event loop."""
    data = camt(statement(40_000, days=90))
    storing = asyncio.Event()
    conn = await asyncpg.connect(api.database_url)
    try:
        task = asyncio.create_task(ingest(conn, data, source="large.xml",
                                          progress=lambda _step: storing.set()))
        answered = {"/healthz": 0, "/v1/statements": 0}
        deadline = time.monotonic() + 600
        while not task.done() and not storing.is_set():
            for path in answered:
                response = await api.client.get(path, headers=api.auth(Role.AUDITOR))
                assert response.status == 200, await response.text()
                if not storing.is_set():
                    answered[path] += 1
            assert time.monotonic() < deadline, "the import never reached storing"
            await asyncio.sleep(0)
        result = await task
    finally:
        await conn.close()
    assert result.entries_new == 40_000
    assert all(answered.values()), answered


def test_ingest_files_docstring_shows_the_handler_call() -> None:
    assert "ingest_spooled(conn, body" in (ingest_files.__doc__ or "")


async def test_payment_events_written_in_batches_follow_each_other_in_line_order(
        db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """payment.received a batch at a time (``outbox._PAYMENT_BATCH``): one per incoming
    line, in the bank's order, numbered on without a gap, each naming the one before."""
    monkeypatch.setattr(outbox, "_PAYMENT_BATCH", 7)
    parsed = statement(60, twins=0)
    result = await ingest(db, camt(parsed), source="s.xml")
    rows = await db.fetch(
        "SELECT event_id, sequence, previous_event_id, data FROM events"
        " WHERE type = 'payment.received' ORDER BY sequence")
    incoming = [entry_id for entry_id, e in zip(entry_ids(parsed), parsed.entries, strict=True)
                if e.amount.amount > 0]
    assert result.entries_booked == 60
    assert [json.loads(r["data"])["entry_id"] for r in rows] == incoming
    # after statement.imported, on the account's lane
    before = await db.fetchrow("SELECT event_id, sequence FROM events"
                               " WHERE type = 'statement.imported'")
    assert [r["sequence"] for r in rows] == [before["sequence"] + 1 + n
                                             for n in range(len(incoming))]
    assert [r["previous_event_id"] for r in rows] == [
        before["event_id"], *(r["event_id"] for r in rows[:-1])]
