"""A request the database rolls back to break a deadlock (or a serialization failure)
changed nothing and may simply be sent again: a 503 problem saying so, never a 500.

The deadlock is made for real and made the request's: it holds its customer and waits for
invoice A (held by ``t0``); ``t1`` holds invoice B and waits for the customer; then ``t0``
lets A go and the request asks for B, closing the cycle last. Only the last to wait finds
a cycle that formed after the others looked, and ``t1`` looks only after ten minutes: the
request is the one refused, however slowly the machine runs.
"""

from __future__ import annotations

import asyncio

import asyncpg

from security.roles import Role
from tests.gateway.conftest import Api
from tests.gateway.test_matches import invoice


async def _waiting(conn: asyncpg.Connection, count: int) -> None:
    """Until ``count`` backends of this database wait for a row lock (or a minute)."""
    deadline = asyncio.get_running_loop().time() + 60.0
    while await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'") < count:
        assert asyncio.get_running_loop().time() < deadline, f"{count} waiting"
        await asyncio.sleep(0.05)  # polling interval


async def test_a_request_chosen_to_break_a_deadlock_is_a_503_to_retry(api: Api) -> None:
    crm = api.auth(Role.CRM)
    ids = ("INV-A", "INV-B")
    made = await api.client.put("/v1/invoices", headers=crm,
                                json=[invoice(i, "10.00") for i in ids])
    assert made.status == 200, await made.text()
    watcher, t0, t1 = [await asyncpg.connect(api.database_url) for _ in range(3)]
    try:
        lock = "UPDATE invoices SET updated_at = now() WHERE invoice_id = $1"
        t0_tx, t1_tx = t0.transaction(), t1.transaction()
        await t0_tx.start()
        await t1_tx.start()
        await t1.execute("SET LOCAL deadlock_timeout = '10min'")
        await t0.execute(lock, "INV-A")
        await t1.execute(lock, "INV-B")
        changed = [{**invoice(i, "10.00"), "due_date": "2026-12-31"} for i in ids]
        request = asyncio.ensure_future(api.client.put("/v1/invoices", headers=crm,
                                                       json=changed))
        await _waiting(watcher, 1)  # the request holds customer C1, waits for A
        t1_wants_c1 = asyncio.ensure_future(t1.execute(
            "UPDATE customers SET updated_at = now() WHERE customer_id = 'C1'"))
        await _waiting(watcher, 2)
        await t0_tx.rollback()  # the request takes A, then waits for B: the cycle
        response = await asyncio.wait_for(request, 120)
        assert response.status == 503, await response.text()
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
        problem = await response.json()
        assert problem["type"].endswith("/unavailable")
        assert "another change at the same moment" in problem["detail"]
        await asyncio.wait_for(t1_wants_c1, 120)  # the request's locks are gone
        await t1_tx.rollback()
    finally:
        for conn in (watcher, t0, t1):
            await conn.close()
    due = await api.client.get("/v1/invoices/INV-B", headers=api.auth(Role.ADMIN))
    assert (await due.json())["due_date"] == "2026-11-30"  # nothing of it was stored


async def test_a_batch_of_invoices_is_locked_in_id_order_whatever_its_order(api: Api) -> None:
    """Two CRM syncs naming the same invoices in opposite orders would each hold one and
    wait for the other. In id order, the request waiting for A (the first) holds no B."""
    crm = api.auth(Role.CRM)
    made = await api.client.put("/v1/invoices", headers=crm,
                                json=[invoice(i, "10.00") for i in ("INV-A", "INV-B")])
    assert made.status == 200, await made.text()
    watcher, holder = [await asyncpg.connect(api.database_url) for _ in range(2)]
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("UPDATE invoices SET updated_at = now() WHERE invoice_id = 'INV-A'")
        request = asyncio.ensure_future(api.client.put("/v1/invoices", headers=crm, json=[
            {**invoice(i, "10.00"), "due_date": "2026-12-31"} for i in ("INV-B", "INV-A")]))
        await _waiting(watcher, 1)  # the request waits for A
        async with watcher.transaction():  # B is free: NOWAIT would raise if it were held
            await watcher.execute("SELECT 1 FROM invoices WHERE invoice_id = 'INV-B'"
                                  " FOR UPDATE NOWAIT")
        await holding.rollback()
        response = await asyncio.wait_for(request, 120)
        assert response.status == 200, await response.text()
        assert (await response.json())["updated"] == 2
    finally:
        for conn in (watcher, holder):
            await conn.close()
