"""A reconcile pass never overpays an invoice, never allocates a payment a second time and
never overrides a person's decision, whatever people (or the CRM) decide while it runs.

Every race here is made for real, and the same way every time, without sleeping: a
decision runs on a second connection in a transaction left open; a pass starts on a third
(it loads and matches without seeing the decision); the decision commits once the pass
waits for one of the decision's locks, or has finished without needing any. The other way
round, a pass done but not committed while a decision runs, is the decisions' own check
(tests/gateway/test_overpayment.py), and is among the property's interleavings too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway import decisions
from gateway.decisions import DecisionError
from gateway.ingest import ingest
from gateway.reconcile import ReconcileResult, reconcile
from gateway.store import invoices as invoice_store
from matching.invoices import Invoice
from parsers.money import Money
from tests.gateway.test_matches import statement

# The rules are ours, not the database server's: the embedded server only.
pytestmark = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)

GLOBEX = "GLOBEX CORPORATION"   # the customer's name as the bank writes it
STRANGER = "G. CORP HOLDING"    # not like it: the amount alone is evidence, for review
PERSON = "treasurer"

Decide = Callable[[asyncpg.Connection], Awaitable[Any]]
Line = tuple[str, str, str | None, str | None]


def _invoice(invoice_id: str, amount: str, crm_open: str | None = None, *,
             cancelled: bool = False) -> Invoice:
    return Invoice(invoice_id=invoice_id, customer_id="C1",
                   amount=Money(Decimal(amount), "EUR"),
                   open_amount=Money(Decimal(crm_open or amount), "EUR"),
                   issue_date=date(2026, 11, 1), due_date=date(2026, 11, 30),
                   customer_name="Globex Corporation Ltd", reference=invoice_id,
                   cancelled=cancelled)


async def _tenant(pool: asyncpg.Pool, invoices: list[Invoice], *lines: Line
                  ) -> tuple[str, dict[str, tuple[int, str]]]:
    """A tenant of its own with these invoices and payments (stored, not reconciled);
    the payments' (account, entry) by bank reference."""
    tenant = uuid.uuid4().hex
    async with pool.acquire() as conn:
        await invoice_store.upsert(conn, tenant, invoices)
        await ingest(conn, statement(*lines), source="payments.xml", tenant=tenant)
        return tenant, await _entries(conn, tenant)


async def _entries(conn: asyncpg.Connection, tenant: str) -> dict[str, tuple[int, str]]:
    rows = await conn.fetch("SELECT account_id, entry_id, bank_reference FROM transactions"
                            " WHERE tenant_id = $1", tenant)
    return {r["bank_reference"]: (r["account_id"], r["entry_id"]) for r in rows}


async def _attempt(decide: Decide, conn: asyncpg.Connection) -> Any:
    """What the decision answered, or the refusal it raised."""
    try:
        return await decide(conn)
    except DecisionError as refusal:
        return refusal


async def _until_waiting_or_done(watcher: asyncpg.Connection, task: asyncio.Future[Any],
                                 waiter: int, holder: int) -> None:
    """Until backend ``waiter`` waits for a lock ``holder`` holds, or ``task`` is done."""
    deadline = asyncio.get_running_loop().time() + 60.0
    while not task.done():
        if await watcher.fetchval("SELECT $2::int = ANY(pg_blocking_pids($1::int))",
                                  waiter, holder):
            return
        assert asyncio.get_running_loop().time() < deadline, "neither waiting nor done"
        await asyncio.sleep(0.01)  # polling interval


async def _pass_racing(pool: asyncpg.Pool, tenant: str,
                       decide: Decide) -> tuple[ReconcileResult, Any]:
    """A pass that loads and matches before ``decide`` commits, and stores after."""
    async with pool.acquire() as person, pool.acquire() as engine_side, \
            pool.acquire() as watcher:
        running: asyncio.Future[ReconcileResult] | None = None
        try:
            async with person.transaction():
                decided = await _attempt(decide, person)
                running = asyncio.ensure_future(reconcile(engine_side, tenant))
                await _until_waiting_or_done(watcher, running, engine_side.get_server_pid(),
                                             person.get_server_pid())
            return await asyncio.wait_for(running, 60), decided
        finally:
            if running is not None and not running.done():
                running.cancel()


async def _decision_racing(pool: asyncpg.Pool, tenant: str, decide: Decide) -> Any:
    """``decide`` taken while a pass that has stored its results is not yet committed."""
    async with pool.acquire() as person, pool.acquire() as engine_side, \
            pool.acquire() as watcher:
        deciding: asyncio.Future[Any] | None = None
        try:
            async with engine_side.transaction():
                await reconcile(engine_side, tenant)
                deciding = asyncio.ensure_future(_attempt(decide, person))
                await _until_waiting_or_done(watcher, deciding, person.get_server_pid(),
                                             engine_side.get_server_pid())
            return await asyncio.wait_for(deciding, 60)
        finally:
            if deciding is not None and not deciding.done():
                deciding.cancel()


async def _passes_racing(pool: asyncpg.Pool, tenant: str) -> None:
    """Two passes at once: the second starts while the first is not committed."""
    async with pool.acquire() as first, pool.acquire() as second, pool.acquire() as watcher:
        running: asyncio.Future[ReconcileResult] | None = None
        try:
            async with first.transaction():
                await reconcile(first, tenant)
                running = asyncio.ensure_future(reconcile(second, tenant))
                await _until_waiting_or_done(watcher, running, second.get_server_pid(),
                                             first.get_server_pid())
            await asyncio.wait_for(running, 60)
        finally:
            if running is not None and not running.done():
                running.cancel()


def _manual(tenant: str, payment: tuple[int, str], invoice_id: str, amount: str) -> Decide:
    async def decide(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        return await decisions.allocate_manually(
            conn, tenant, account_id=payment[0], entry_id=payment[1],
            parts=[(invoice_id, Decimal(amount))], by=PERSON, note=None)
    return decide


async def _allocations(pool: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT a.*, t.bank_reference FROM allocations a JOIN transactions t"
            " USING (tenant_id, account_id, entry_id) WHERE a.tenant_id = $1"
            " ORDER BY allocation_id", tenant)
        return rows


async def _invoice_row(pool: asyncpg.Pool, tenant: str, invoice_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await invoice_store.get(conn, tenant, invoice_id)
        assert row is not None
        return row


async def test_a_pass_does_not_overpay_an_invoice_a_person_paid_while_it_ran(
        pool: asyncpg.Pool) -> None:
    tenant, entries = await _tenant(pool, [_invoice("INV-1", "100.00")],
                                    ("A1", "100.00", GLOBEX, "Invoice INV-1"),
                                    ("B1", "100.00", None, "cash"))
    result, made = await _pass_racing(pool, tenant,
                                      _manual(tenant, entries["B1"], "INV-1", "100.00"))
    assert [a["status"] for a in made] == ["applied"]
    paid = await _invoice_row(pool, tenant, "INV-1")
    assert (paid["settled_amount"], paid["status"]) == (Decimal("100.00"), "paid")
    live = [(a["bank_reference"], a["decision"], a["status"])
            for a in await _allocations(pool, tenant) if a["status"] == "applied"]
    assert live == [("B1", "manual", "applied")]
    # B1 was the person's; A1 was matched again against INV-1 as it now is, in the pass.
    assert (result.payments, result.auto, result.taken, result.deferred) == (2, 0, 1, 0)


async def test_a_pass_does_not_allocate_a_payment_a_person_allocated_while_it_ran(
        pool: asyncpg.Pool) -> None:
    tenant, entries = await _tenant(pool, [_invoice("INV-1", "100.00"),
                                           _invoice("INV-2", "100.00")],
                                    ("A1", "100.00", GLOBEX, "Invoice INV-1"))
    result, _ = await _pass_racing(pool, tenant,
                                   _manual(tenant, entries["A1"], "INV-2", "100.00"))
    assert [(a["invoice_id"], a["decision"], a["status"])
            for a in await _allocations(pool, tenant)] == [("INV-2", "manual", "applied")]
    assert (await _invoice_row(pool, tenant, "INV-1"))["status"] == "open"
    assert (result.payments, result.auto, result.taken) == (1, 0, 1)


async def test_a_pass_does_not_reapply_what_a_person_undid_while_it_ran(
        pool: asyncpg.Pool) -> None:
    tenant, entries = await _tenant(pool, [_invoice("INV-1", "100.00")],
                                    ("A1", "100.00", GLOBEX, "Invoice INV-1"))

    async def allocate_and_undo(conn: asyncpg.Connection) -> dict[str, Any]:
        [made] = await _manual(tenant, entries["A1"], "INV-1", "100.00")(conn)
        return await decisions.undo(conn, tenant, made["allocation_id"], by=PERSON,
                                    note="not this customer's")

    result, undone = await _pass_racing(pool, tenant, allocate_and_undo)
    assert undone["status"] == "undone"
    rows = await _allocations(pool, tenant)
    assert [(a["decision"], a["status"]) for a in rows] == [
        ("manual", "undone"), ("review", "proposed")]  # proposed, never applied again
    assert (await _invoice_row(pool, tenant, "INV-1"))["settled_amount"] == 0
    assert (result.payments, result.auto, result.review, result.taken) == (1, 0, 1, 0)


async def test_a_pass_does_not_overpay_an_invoice_whose_proposal_was_accepted_meanwhile(
        pool: asyncpg.Pool) -> None:
    tenant, _ = await _tenant(pool, [_invoice("INV-7", "432.10")],
                              ("R7", "432.10", STRANGER, None))
    async with pool.acquire() as conn:
        assert (await reconcile(conn, tenant)).review == 1
        [proposal] = await conn.fetch("SELECT allocation_id FROM allocations"
                                      " WHERE tenant_id = $1", tenant)
        await ingest(conn, statement(("A7", "432.10", GLOBEX, "Invoice INV-7"), number=2),
                     source="more.xml", tenant=tenant)

    async def accept(conn: asyncpg.Connection) -> dict[str, Any]:
        return await decisions.accept(conn, tenant, proposal["allocation_id"], by=PERSON)

    result, accepted = await _pass_racing(pool, tenant, accept)
    assert accepted["status"] == "applied"
    paid = await _invoice_row(pool, tenant, "INV-7")
    assert (paid["settled_amount"], paid["status"]) == (Decimal("432.10"), "paid")
    assert [a["bank_reference"] for a in await _allocations(pool, tenant)
            if a["status"] == "applied"] == ["R7"]
    assert (result.payments, result.auto) == (1, 0)


@pytest.mark.parametrize("change", [{"crm_open": "0.00"}, {"cancelled": True}])
async def test_a_pass_does_not_allocate_to_an_invoice_the_crm_closed_while_it_ran(
        pool: asyncpg.Pool, change: dict[str, Any]) -> None:
    tenant, _ = await _tenant(pool, [_invoice("INV-1", "100.00")],
                              ("A1", "100.00", GLOBEX, "Invoice INV-1"))

    async def crm_sync(conn: asyncpg.Connection) -> None:
        await invoice_store.upsert(conn, tenant, [_invoice("INV-1", "100.00", **change)])

    result, _ = await _pass_racing(pool, tenant, crm_sync)
    assert (await _invoice_row(pool, tenant, "INV-1"))["settled_amount"] == 0
    assert not [a for a in await _allocations(pool, tenant) if a["status"] == "applied"]
    assert (result.payments, result.auto) == (1, 0)


# The promise as a property, over interleavings of passes and people's decisions: each
# decision is taken alone, while a pass runs (the pass loads before it commits and stores
# after), or while a pass that has stored its results is not committed; passes run alone or
# two at once. After every step: no invoice has more allocated than its amount, nor any
# allocation more than the CRM left open (no one insists on overpaying here; the engine's
# deliberate overpayment counts what it allocates, not the surplus); no payment has more
# allocated or proposed than it brought; every decision a person took is still in force:
# what they applied is applied, what they rejected or undid stays so, a rejected pair is
# never proposed again and an undone one never applied automatically.

INVOICES = (_invoice("INV-1", "100.00"), _invoice("INV-2", "50.00"),
            _invoice("INV-3", "80.00", "30.00"),   # the CRM says 50.00 was paid otherwise
            _invoice("INV-4", "40.00", "0.00"))    # the CRM says it is paid
LINES: tuple[Line, ...] = (
    ("P0", "100.00", GLOBEX, "Invoice INV-1"), ("P1", "50.00", GLOBEX, "Invoice INV-2"),
    ("P2", "30.00", GLOBEX, "INV-3"), ("P3", "50.00", STRANGER, None),
    ("P4", "100.00", STRANGER, None), ("P5", "40.00", GLOBEX, "Invoice INV-4"))
MODES = ("alone", "during_a_pass", "while_a_pass_commits", "during_a_pass")  # races twice
_MANUAL = st.tuples(st.just("manual"), st.sampled_from(MODES), st.integers(0, len(LINES) - 1),
                    st.integers(0, len(INVOICES) - 1), st.sampled_from(["all", "30.00"]))
_DECIDE = st.tuples(st.sampled_from(["accept", "reject", "undo"]), st.sampled_from(MODES),
                    st.integers(0, 7))
_PASS = st.tuples(st.just("pass"), st.sampled_from(["alone", "two"]))
STEPS = st.lists(st.one_of(_MANUAL, _DECIDE, _MANUAL, _PASS), min_size=2, max_size=6)


def _needs(row: asyncpg.Record) -> Decimal:
    """What an applied allocation needed open: a deliberate overpayment, what it allocated."""
    amount: Decimal = row["amount"] if row["settlement"] == "overpaid" else row["settles"]
    return amount


async def _target(pool: asyncpg.Pool, tenant: str, kind: str, pick: int) -> int | None:
    """The allocation an accept, reject or undo is about: the ``pick``-th of those it may
    be taken on (None: there is none)."""
    status = "applied" if kind == "undo" else "proposed"
    candidates = [a["allocation_id"] for a in await _allocations(pool, tenant)
                  if a["status"] == status]
    return candidates[pick % len(candidates)] if candidates else None


def _decision(tenant: str, entries: dict[str, tuple[int, str]],
              step: tuple[Any, ...], target: int | None) -> Decide | None:
    kind = step[0]
    if kind == "manual":  # "all": as much as the payment brought and the invoice is for
        line, invoice = LINES[step[2]], INVOICES[step[3]]
        amount = str(min(Decimal(line[1]), invoice.amount.amount)) \
            if step[4] == "all" else step[4]
        return _manual(tenant, entries[line[0]], invoice.invoice_id, amount)
    if target is None:
        return None

    async def decide(conn: asyncpg.Connection) -> Any:
        if kind == "accept":
            return await decisions.accept(conn, tenant, target, by=PERSON)
        if kind == "reject":
            return await decisions.reject(conn, tenant, target, by=PERSON, note="no")
        return await decisions.undo(conn, tenant, target, by=PERSON, note="wrong")
    return decide


async def _check(pool: asyncpg.Pool, tenant: str, in_force: dict[int, str]) -> None:
    rows = await _allocations(pool, tenant)
    async with pool.acquire() as conn:
        invoices = {r["invoice_id"]: r for r in await conn.fetch(
            "SELECT * FROM invoices WHERE tenant_id = $1", tenant)}
        brought = {(r["account_id"], r["entry_id"]): r["amount"] for r in await conn.fetch(
            "SELECT account_id, entry_id, amount FROM transactions WHERE tenant_id = $1",
            tenant)}
    applied = [a for a in rows if a["status"] == "applied"]
    for invoice_id, invoice in invoices.items():
        mine = [a for a in applied if a["invoice_id"] == invoice_id]
        assert invoice["settled_amount"] == sum((a["settles"] for a in mine), Decimal(0))
        assert sum((_needs(a) for a in mine), Decimal(0)) <= invoice["amount"], invoice_id
        for allocation in mine:
            assert _needs(allocation) <= invoice["crm_open_amount"], (invoice_id, allocation)
    for payment, amount in brought.items():
        live = [a["payment_amount"] for a in rows if a["status"] in ("proposed", "applied")
                and (a["account_id"], a["entry_id"]) == payment]
        assert sum(live, Decimal(0)) <= amount, payment
    status = {a["allocation_id"]: a["status"] for a in rows}
    for allocation_id, expected in in_force.items():
        assert status[allocation_id] == expected, (allocation_id, expected)
    for past in rows:
        pair = (past["account_id"], past["entry_id"], past["invoice_id"])
        later = [a for a in rows if a["allocation_id"] > past["allocation_id"]
                 and (a["account_id"], a["entry_id"], a["invoice_id"]) == pair
                 and a["created_by"] == "engine"]
        if past["status"] == "rejected":
            assert not later, ("proposed again after a rejection", pair)
        if past["status"] == "undone":
            assert not [a for a in later if a["decision"] == "auto"], ("applied again", pair)


async def _take(pool: asyncpg.Pool, tenant: str, mode: str, decide: Decide) -> Any:
    if mode == "during_a_pass":
        return (await _pass_racing(pool, tenant, decide))[1]
    if mode == "while_a_pass_commits":
        return await _decision_racing(pool, tenant, decide)
    async with pool.acquire() as conn:
        return await _attempt(decide, conn)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
# Always among the examples, whatever the search finds: a person allocates, while a pass
# runs, the payment the pass allocates (P0, to another invoice), or to its invoice (INV-1).
@example(steps=[("manual", "during_a_pass", 0, 1, "all"), ("pass", "alone")])
@example(steps=[("manual", "during_a_pass", 3, 0, "30.00"), ("pass", "alone")])
async def test_no_interleaving_of_passes_and_decisions_breaks_a_promise(
        pool: asyncpg.Pool, steps: list[tuple[Any, ...]]) -> None:
    tenant, entries = await _tenant(pool, list(INVOICES), *LINES)
    in_force: dict[int, str] = {}   # what people decided, by allocation
    for step in steps:
        if step[0] == "pass":
            if step[1] == "two":
                await _passes_racing(pool, tenant)
            else:
                async with pool.acquire() as conn:
                    await reconcile(conn, tenant)
            await _check(pool, tenant, in_force)
            continue
        target = None if step[0] == "manual" else await _target(pool, tenant, step[0],
                                                                  step[2])
        decide = _decision(tenant, entries, step, target)
        if decide is None:
            continue
        outcome = await _take(pool, tenant, step[1], decide)
        if isinstance(outcome, list):      # a manual allocation made
            in_force.update((made["allocation_id"], "applied") for made in outcome)
        elif isinstance(outcome, dict):    # accepted, rejected or undone
            in_force[outcome["allocation_id"]] = outcome["status"]
        await _check(pool, tenant, in_force)
