"""Reconciliation in the background: an import or an invoice change answers at once with
matching queued; workers match only what changed, keep each tenant's engine between
passes, and several of them never decide a payment twice."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.reconcile import reconcile_changes
from gateway.store import invoices as invoice_store
from gateway.store import reconcile_work as work
from gateway.work.engines import Engines
from gateway.work.reconcile import ReconcileWorker
from matching.engine import Engine
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.processes import cli
from tests.gateway.test_matches import get, invoice, statement


@pytest.fixture
async def quiet_api(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    """The service with no reconcile workers of its own (the tests run them), and no
    dispatcher (a test empties the tables between examples)."""
    return await make_api(migrated_database_url, aiohttp_client, reconcile_workers=0,
                          dispatcher=False)


async def put_invoices(api: Api, invoices: list[dict[str, str]]) -> Any:
    response = await api.client.put("/v1/invoices", json=invoices, headers=api.auth(Role.CRM))
    assert response.status == 200, await response.text()
    return await response.json()


async def upload(api: Api, data: bytes) -> Any:
    response = await api.client.post("/v1/statements", data=data,
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 201, await response.text()
    return await response.json()


async def queue(api: Api) -> Any:
    return await get(api, "/v1/reconcile")


async def test_an_import_answers_with_matching_queued_and_a_worker_matches_it(
        quiet_api: Api) -> None:
    await put_invoices(quiet_api, [invoice("INV-1", "150.00")])
    imported = await upload(quiet_api, statement(
        ("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-1")))
    assert imported["reconciliation"]["status"] == "queued"
    assert imported["reconciliation"]["lines"] == 1
    assert imported["reconciliation"]["href"] == "/v1/reconcile"
    # Nothing matches it until a worker runs: the request did not.
    assert (await get(quiet_api, "/v1/invoices/INV-1"))["status"] == "open"
    assert (await queue(quiet_api))["payments_waiting"] == 1

    async with asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=2) as pool:
        assert await ReconcileWorker(pool).drain() >= 1
    assert (await get(quiet_api, "/v1/invoices/INV-1"))["status"] == "paid"
    status = await queue(quiet_api)
    assert status["status"] == "idle"
    assert (status["payments_waiting"], status["changes_waiting"]) == (0, 0)


async def test_the_worker_command_once_matches_what_waits_and_exits(quiet_api: Api) -> None:
    await put_invoices(quiet_api, [invoice("INV-1", "150.00")])
    await upload(quiet_api, statement(("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-1")))
    done = await asyncio.to_thread(cli, "worker", "--once", "--database-url",
                                   quiet_api.database_url)
    assert done.returncode == 0, done.stderr
    assert "nothing waits" in done.stdout
    assert (await get(quiet_api, "/v1/invoices/INV-1"))["status"] == "paid"
    assert (await queue(quiet_api))["status"] == "idle"


async def test_a_worker_told_to_stop_gives_up_a_long_round_and_its_work_stays_queued(
        quiet_api: Api) -> None:
    await put_invoices(quiet_api, [invoice("INV-1", "150.00")])
    await upload(quiet_api, statement(("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-1")))
    building, release = threading.Event(), threading.Event()

    def slow_engine(invoices: Any, customers: Any) -> Engine:
        building.set()
        release.wait(120)  # an engine that takes long to build (released at the end)
        return Engine(invoices, customers)

    stop = asyncio.Event()
    async with asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=2) as pool:
        worker = ReconcileWorker(pool, engines=Engines(slow_engine))
        running = asyncio.ensure_future(worker.run(stop))
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while not building.is_set():
                assert asyncio.get_running_loop().time() < deadline, "no round began"
                await asyncio.sleep(0.02)  # polling interval
            stop.set()
            await asyncio.wait_for(running, 60)  # returns, the round given up
        finally:
            release.set()
    status = await queue(quiet_api)
    assert (status["status"], status["payments_waiting"]) == ("queued", 1)
    assert (await get(quiet_api, "/v1/invoices/INV-1"))["status"] == "open"


async def test_an_invoice_pushed_later_is_matched_to_the_payment_waiting_for_it(
        quiet_api: Api) -> None:
    await put_invoices(quiet_api, [invoice("INV-8", "55.00")])
    await upload(quiet_api, statement(("R1", "99.00", "GLOBEX CORPORATION", "Invoice INV-9")))
    async with asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=2) as pool:
        worker = ReconcileWorker(pool)
        await worker.drain()
        assert (await get(quiet_api, "/v1/matches?status=proposed"))["items"] == []
        pushed = await put_invoices(quiet_api, [invoice("INV-9", "99.00")])
        assert pushed["reconciliation"]["changes"] == 1
        await worker.drain()
        assert (await get(quiet_api, "/v1/invoices/INV-9"))["status"] == "paid"
        # The engine was built once and then brought up to date, not built again.
        assert (worker.engines.builds, worker.engines.updates) == (1, 1)


async def test_a_rejected_proposal_hands_the_payment_back_to_the_workers(
        quiet_api: Api) -> None:
    # No reference, an unknown payer: the amount alone earns a place in the review queue.
    await put_invoices(quiet_api, [invoice("INV-A", "432.10")])
    await upload(quiet_api, statement(("R1", "432.10", "G. CORP HOLDING", None)))
    async with asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=2) as pool:
        worker = ReconcileWorker(pool)
        await worker.drain()
        proposed = (await get(quiet_api, "/v1/matches?status=proposed"))["items"]
        assert proposed, "the engine proposed nothing to review"
        for proposal in proposed:
            response = await quiet_api.client.post(
                f"/v1/matches/{proposal['allocation_id']}/reject", json={"reason": "no"},
                headers=quiet_api.auth(Role.TREASURY))
            assert response.status == 200, await response.text()
        assert (await queue(quiet_api))["payments_waiting"] == 1
        await worker.drain()
        assert (await queue(quiet_api))["payments_waiting"] == 0
        # Matched again, without the rejected pair: nothing left to propose.
        assert (await get(quiet_api, "/v1/matches?status=proposed"))["items"] == []


async def test_the_engine_follows_invoice_changes_without_being_built_again(
        pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await invoice_store.upsert(conn, "default", [_invoice("INV-1", "10.00"),
                                                     _invoice("INV-2", "20.00")], owner=None)
        engines = Engines()
        first = await engines.current(conn, "default")
        assert set(first.invoices) == {"INV-1", "INV-2"}
        assert await engines.current(conn, "default") is first  # nothing changed
        await invoice_store.upsert(conn, "default", [_invoice("INV-2", "25.00"),
                                                     _invoice("INV-3", "30.00")], owner=None)
        engine = await engines.current(conn, "default")
        assert engine.invoices["INV-2"].amount.amount == Decimal("25.00")
        assert set(engine.invoices) == {"INV-1", "INV-2", "INV-3"}
        assert (engines.builds, engines.updates) == (1, 1)
        # A customer's change is put into it too, with its invoices (they carry its name).
        await conn.execute("UPDATE customers SET name = 'Renamed' WHERE customer_id = 'C1'")
        engine = await engines.current(conn, "default")
        assert engine.invoices["INV-1"].customer_name == "Renamed"
        assert (engines.builds, engines.updates) == (1, 3)


# What reconcile_work.unallocated and .unmatched read with one anti-join before they became
# plain scans and a difference: the reference they must agree with.
_ANTI_JOIN = """
    SELECT t.account_id, t.entry_id FROM transactions t
    WHERE t.tenant_id = $1 AND t.amount > 0 AND t.status = 'booked' AND NOT t.reversal
      AND NOT t.provisional AND coalesce(t.booking_date, t.value_date) IS NOT NULL
      AND ($2 OR t.matched_at IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.tenant_id = t.tenant_id
                      AND a.account_id = t.account_id AND a.entry_id = t.entry_id
                      AND a.status IN ('proposed', 'applied'))
    ORDER BY t.seq"""


async def test_unallocated_and_unmatched_read_the_rows_the_anti_join_did(
        quiet_api: Api) -> None:
    """Allocated automatically, proposed, proposed and rejected, matched and left
    unmatched, never matched, outgoing: the two readers return exactly the anti-join's
    payments, in its order."""
    await put_invoices(quiet_api, [invoice("INV-1", "150.00"), invoice("INV-A", "432.10"),
                                   invoice("INV-B", "77.70")])
    await upload(quiet_api, statement(("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-1"),
                                      ("R2", "432.10", "G. CORP HOLDING", None),
                                      ("R3", "77.70", "G. CORP HOLDING", None),
                                      ("R4", "12.34", "Nobody", "order 12"),
                                      ("R5", "-50.00", "Supplier", "outgoing")))
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        await reconcile_changes(conn, "default")
        proposed = (await get(quiet_api, "/v1/matches?status=proposed"))["items"]
        assert proposed
        response = await quiet_api.client.post(
            f"/v1/matches/{proposed[0]['allocation_id']}/reject", json={"reason": "no"},
            headers=quiet_api.auth(Role.TREASURY))
        assert response.status == 200, await response.text()
        await upload(quiet_api, statement(("R6", "5.00", "Nobody", None), number=2))
        for everything in (True, False):
            expected = [(r["account_id"], r["entry_id"])
                        for r in await conn.fetch(_ANTI_JOIN, "default", everything)]
            read = work.unallocated if everything else work.unmatched
            found = [(a, p.entry_id) for a, p in await read(conn, "default")]
            assert found == expected
            assert expected, "the example has no such payment"
        assert len(await work.unallocated(conn, "default")) > len(
            await work.unmatched(conn, "default"))
    finally:
        await conn.close()


async def test_engines_beyond_their_memory_budget_are_dropped_least_recent_first(
        pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for tenant in ("default", "other"):
            await invoice_store.upsert(conn, tenant, [_invoice("INV-1", "10.00")], owner=None)
        engines = Engines(keep_bytes=1)  # one engine is over it: only the latest is kept
        await engines.current(conn, "default")
        assert "default" in engines
        await engines.current(conn, "other")
        assert "other" in engines and "default" not in engines
        roomy = Engines()
        await roomy.current(conn, "default")
        await roomy.current(conn, "other")
        assert "default" in roomy and "other" in roomy


async def test_a_pass_reads_the_invoices_versions_once(
        quiet_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for the payments to match again brings the engine up to date; the pass's
    first round matches with it as it is (no second read of every invoice's version)."""
    await put_invoices(quiet_api, [invoice("INV-1", "150.00")])
    await upload(quiet_api, statement(("R1", "99.00", "Nobody", "order 1")))
    engines = Engines()
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        assert await reconcile_changes(conn, "default", engines=engines) is not None
        scans = 0
        real = invoice_store.versions

        async def counted(*args: Any, **kwargs: Any) -> dict[str, str]:
            nonlocal scans
            scans += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(invoice_store, "versions", counted)
        await put_invoices(quiet_api, [invoice("INV-2", "99.00")])
        second = await reconcile_changes(conn, "default", engines=engines)
        assert second is not None and second.payments == 1  # matched again: reviewed
        assert scans == 1
    finally:
        await conn.close()


async def test_an_invoice_change_matches_again_only_the_payments_it_could_settle(
        quiet_api: Api) -> None:
    """Forty payments nobody can place wait unmatched; an invoice pushed for one of them is
    matched with that one (and the few its amount or text could reach), not all forty."""
    await put_invoices(quiet_api, [invoice("INV-1", "5.00")])
    # Amounts far apart, payers with nothing in common, texts naming nothing.
    names = [f"{chr(66 + n // 8)}{'aeiou'[n % 5]}{chr(107 + n % 8)}vard" for n in range(40)]
    await upload(quiet_api, statement(*(
        (f"R{n}", f"{100 + 41 * n}.{n:02d}", names[n], f"order {n:04d}") for n in range(40))))
    engines = Engines()
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        first = await reconcile_changes(conn, "default", engines=engines)
        assert first is not None and (first.payments, first.unmatched) == (40, 40)
        await put_invoices(quiet_api, [{**invoice("INV-7", "387.07", customer="C7",
                                                  name=names[7]), "reference": "order 0007"}])
        second = await reconcile_changes(conn, "default", engines=engines)
        assert second is not None and second.changes >= 1
        assert 1 <= second.payments <= 5, second
        assert second.auto + second.review == 1
        # Nothing changed since: a pass finds nothing to match.
        third = await reconcile_changes(conn, "default", engines=engines)
        assert third is not None and third.payments == 0
    finally:
        await conn.close()
    assert engines.builds == 1


def _invoice(invoice_id: str, amount: str) -> Any:
    from matching.invoices import read_invoice

    result = read_invoice(invoice(invoice_id, amount), 1)
    assert not isinstance(result, list), result
    return result


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payments=st.lists(st.tuples(st.sampled_from(["10.00", "20.00", "30.00"]),
                                   st.one_of(st.none(), st.integers(0, 5))),
                         min_size=1, max_size=12),
       workers=st.integers(min_value=2, max_value=3))
async def test_workers_side_by_side_decide_each_payment_once_and_never_overpay(
        quiet_api: Api, payments: list[tuple[str, int | None]], workers: int) -> None:
    """Several workers (each with its own pool, as separate processes have) drain one
    import at once, in small batches: every payment is looked at, none is given two live
    allocations to one invoice, no invoice is allocated beyond its amount, nothing waits."""
    await _empty(quiet_api.database_url)
    await put_invoices(quiet_api, [invoice(f"INV-{i}", amount, customer=f"C{i % 3}")
                                   for i, amount in enumerate(["10.00", "20.00", "30.00",
                                                               "10.00", "20.00", "30.00"])])
    await upload(quiet_api, statement(*(
        (f"R{n}", amount, "GLOBEX CORPORATION", f"Invoice INV-{ref}" if ref is not None
         else "thank you") for n, (amount, ref) in enumerate(payments))))
    pools = [await asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=2)
             for _ in range(workers)]
    try:
        await asyncio.gather(*(ReconcileWorker(p, batch=3).drain() for p in pools))
    finally:
        for p in pools:
            await p.close()
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM transactions WHERE amount > 0 AND matched_at IS NULL")
        twice = await conn.fetch(
            "SELECT account_id, entry_id, invoice_id FROM allocations"
            " WHERE status IN ('proposed', 'applied')"
            " GROUP BY account_id, entry_id, invoice_id HAVING count(*) > 1")
        # An invoice is settled at most to its amount; one payment may overpay it (the
        # payer sent more than was open: settlement "overpaid"), never a second one.
        over = await conn.fetch(
            "SELECT i.invoice_id FROM invoices i JOIN allocations a USING (tenant_id, invoice_id)"
            " WHERE a.status = 'applied' GROUP BY i.invoice_id, i.amount"
            " HAVING sum(a.settles) FILTER (WHERE a.settlement <> 'overpaid') > i.amount"
            " OR count(*) FILTER (WHERE a.settlement = 'overpaid') > 1"
            " OR (count(*) FILTER (WHERE a.settlement = 'overpaid') = 1 AND count(*) > 1"
            "     AND sum(a.settles) FILTER (WHERE a.settlement <> 'overpaid') >= i.amount)")
        beyond = await conn.fetch(
            "SELECT t.entry_id FROM transactions t JOIN allocations a"
            " USING (tenant_id, account_id, entry_id) WHERE a.status = 'applied'"
            " GROUP BY t.entry_id, t.amount HAVING sum(a.payment_amount) > t.amount")
    finally:
        await conn.close()
    assert (waiting, twice, over, beyond) == (0, [], [], [])
    status = await queue(quiet_api)
    assert status["status"] == "idle", status


async def _empty(database_url: str) -> None:
    """The tenant's data gone (keys and schema stay): one example apart from the last."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "TRUNCATE bank_accounts, raw_documents, statements, transactions, customers,"
            " invoices, allocations, event_lanes, events, deliveries, delivery_lanes,"
            " delivery_attempts, statement_lines, learned_payers, reconcile_failures,"
            " reconcile_work, reconcile_passes CASCADE")
    finally:
        await conn.close()
