"""The same statement sent again as another document (``staging.decide_as_copy``): decided
at once, all its lines known, and always exactly as the rule decides it line by line."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from unittest import mock

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest import store_document
from gateway.store import staging
from parsers.model import Statement
from tests.gateway.identity_support import Ledger, booked, document_bytes, ledgers, uploads


async def upload(pool: asyncpg.Pool, tenant: str, statement: Statement) -> None:
    async with pool.acquire() as conn:
        await store_document(conn, tenant, data=document_bytes(statement),
                             source=statement.source, statements=[statement])


async def what_is_stored(pool: asyncpg.Pool, tenant: str) -> tuple[object, ...]:
    """Every line stored (ids are made from the account and the line, not the tenant),
    and every statement's lines with their outcome, statements in arrival order."""
    lines = await pool.fetch(
        "SELECT entry_id, booking_date, amount, provisional, possible_duplicate"
        " FROM transactions WHERE tenant_id = $1 ORDER BY entry_id", tenant)
    reported = await pool.fetch(
        "SELECT s.document_id, l.position, l.entry_id, l.outcome"
        " FROM all_statement_lines l JOIN statements s USING (tenant_id, account_id,"
        " statement_pk) WHERE l.tenant_id = $1", tenant)
    order = {d: n for n, d in enumerate(sorted({r["document_id"] for r in reported}))}
    return (tuple(tuple(r) for r in lines),
            tuple(sorted((order[r["document_id"]], r["position"], r["entry_id"], r["outcome"])
                         for r in reported)))


@st.composite
def sent_again(draw: st.DrawFn) -> tuple[Ledger, list[Statement], Statement, str]:
    """Uploads, then one of their booked statements again as another document: the same,
    its lines in another order, or one line's remittance changed."""
    ledger = draw(ledgers())
    statements = draw(uploads(ledger))
    again = draw(st.sampled_from([s for s in statements if s.closing_balance is not None]))
    entries = list(again.entries)
    change = draw(st.sampled_from(("same", "same", "swap", "remittance")))
    if change == "swap" and len(entries) > 1:
        i, j = draw(st.permutations(range(len(entries))))[:2]
        entries[i], entries[j] = entries[j], entries[i]
    elif change == "remittance" and entries:
        i = draw(st.integers(0, len(entries) - 1))
        entries[i] = dataclasses.replace(entries[i], remittance="ANOTHER TEXT")
    again = dataclasses.replace(again, entries=tuple(entries),
                                statement_id=f"{again.statement_id}-AGAIN")
    return ledger, statements, again, change


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=sent_again())
async def test_a_statement_sent_again_is_decided_as_the_rule_decides_it_line_by_line(
        pool: asyncpg.Pool, case: tuple[Ledger, list[Statement], Statement, str]) -> None:
    ledger, statements, again, change = case
    fast, slow = uuid.uuid4().hex, uuid.uuid4().hex
    for statement in [*statements, again]:
        await upload(pool, fast, statement)
    with mock.patch.object(staging, "decide_as_copy", mock.AsyncMock(return_value=False)):
        for statement in [*statements, again]:
            await upload(pool, slow, statement)
    assert await what_is_stored(pool, fast) == await what_is_stored(pool, slow)
    booked = await pool.fetch(
        "SELECT booking_date, amount FROM transactions WHERE tenant_id = $1"
        " AND NOT provisional", fast)
    lines = Counter((r["booking_date"], r["amount"]) for r in booked)
    assert not ledger.truth() - lines  # nothing lost
    if change == "same":
        assert lines == ledger.truth()  # nor doubled


async def test_an_exact_copy_is_known_whole_without_deciding_it_day_by_day(
        pool: asyncpg.Pool) -> None:
    ledger = Ledger.from_days([[0, 0, 2], [1, 3]])
    first = booked(ledger, 0, 1, "camt.053")
    tenant = uuid.uuid4().hex
    await upload(pool, tenant, first)
    with mock.patch("gateway.ingest_decide._decide_day",
                    side_effect=AssertionError("decided day by day")):
        async with pool.acquire() as conn:
            result = await store_document(
                conn, tenant, data=b"again", source="again",
                statements=[dataclasses.replace(first, statement_id="AGAIN")])
    assert (result.entries_new, result.entries_known) == (0, 5)
    outcomes = await pool.fetch(
        "SELECT l.outcome, count(*) FROM all_statement_lines l JOIN statements s"
        " USING (tenant_id, account_id, statement_pk) WHERE l.tenant_id = $1"
        " GROUP BY s.statement_id, l.outcome ORDER BY s.statement_id", tenant)
    assert [tuple(r) for r in outcomes] == [("known", 5), ("new", 5)]
