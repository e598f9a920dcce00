"""A worker's engine is never older than the database when its pass matches, though a pass
with no change queued since the worker's own last pass reads only the invoices that pass
wrote, not every invoice's version (gateway/work/engines.py, migration 0013): whatever
other workers (each with its own pool, as separate processes have), full passes, the CRM
and imports did in between."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.reconcile import lock_key, reconcile, reconcile_changes
from gateway.store import invoices as invoice_store
from gateway.store import reconcile_work as work
from gateway.work.engines import Engines
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.test_matches import invoice, statement
from tests.gateway.test_reconcile_worker import _empty, put_invoices, upload


@pytest.fixture
async def quiet_api(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    """The service with no workers or dispatcher of its own (as in test_reconcile_worker)."""
    return await make_api(migrated_database_url, aiohttp_client, reconcile_workers=0,
                          dispatcher=False)


_AMOUNTS = ["10.00", "20.00", "35.00"]


class _Checked(Engines):
    """Engines that check, as each pass asks for its candidates (under the tenant's lock,
    nothing else writing meanwhile in these tests), that the engine the pass will match
    with holds every invoice as the database does."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        self.stale: list[str] = []

    async def candidates(self, conn: asyncpg.Connection, tenant: str, *, changed: bool,
                         last_pass: str | None = None) -> Any:
        found = await super().candidates(conn, tenant, changed=changed, last_pass=last_pass)
        engine = await self.provider(tenant)(conn, tenant)   # as it is, not updated
        now = {i.invoice_id: i for i in await invoice_store.load_all(conn, tenant)}
        self.checked += 1
        self.stale += [i for i in now.keys() | engine.invoices.keys()
                       if now.get(i) != engine.invoices.get(i)]
        return found


Step = tuple[str, int, int]
steps = st.lists(st.one_of(
    st.tuples(st.just("crm"), st.integers(0, 3), st.integers(0, 2)),    # invoice k, amount
    st.tuples(st.just("pay"), st.integers(0, 3), st.integers(0, 2)),    # paying invoice k
    st.tuples(st.just("pass"), st.integers(0, 1), st.just(0)),          # by worker 0 or 1
    st.tuples(st.just("full"), st.just(0), st.just(0))), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
async def test_a_pass_never_matches_with_an_engine_older_than_the_database(
        quiet_api: Api, steps: list[Step]) -> None:
    await _empty(quiet_api.database_url)
    await put_invoices(quiet_api, [invoice(f"INV-{k}", "20.00") for k in range(4)])
    pools = [await asyncpg.create_pool(quiet_api.database_url, min_size=1, max_size=1)
             for _ in range(3)]
    workers = [_Checked(), _Checked()]
    try:
        for number, (kind, k, a) in enumerate(steps, 1):
            if kind == "crm":
                await put_invoices(quiet_api, [invoice(f"INV-{k}", _AMOUNTS[a])])
            elif kind == "pay":
                await upload(quiet_api, statement(
                    (f"R{number}", _AMOUNTS[a], "GLOBEX CORPORATION", f"Invoice INV-{k}"),
                    number=number))
            elif kind == "pass":
                async with pools[k].acquire() as conn:
                    await reconcile_changes(conn, "default", engines=workers[k], batch=2)
            else:
                async with pools[2].acquire() as conn:
                    await reconcile(conn, "default")
        for k, worker in enumerate(workers):  # a last pass of each sees all there is
            async with pools[k].acquire() as conn:
                await reconcile_changes(conn, "default", engines=worker, batch=2)
    finally:
        for pool in pools:
            await pool.close()
    assert all(w.checked for w in workers)
    assert [w.stale for w in workers] == [[], []]


async def test_a_pass_after_its_own_reads_only_what_it_wrote_unless_another_passed(
        quiet_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await put_invoices(quiet_api, [invoice("INV-1", "150.00"), invoice("INV-2", "80.00")])
    await upload(quiet_api, statement(("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-1")))
    scans: list[bool] = []   # each read of versions: of every invoice (True) or a few
    real = invoice_store.versions

    async def counted(conn: asyncpg.Connection, tenant: str,
                      invoice_ids: Any = None) -> dict[str, str]:
        scans.append(invoice_ids is None)
        return await real(conn, tenant, invoice_ids)

    monkeypatch.setattr(invoice_store, "versions", counted)
    mine, theirs = Engines(), Engines()
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        first = await reconcile_changes(conn, "default", engines=mine)
        assert first is not None and first.auto == 1        # INV-1 settled by this pass
        assert scans == [True]
        # An import, no invoice change: the next pass reads INV-1 again (it wrote it), alone.
        await upload(quiet_api, statement(("R2", "80.00", "GLOBEX CORPORATION",
                                           "Invoice INV-2"), number=2))
        scans.clear()
        second = await reconcile_changes(conn, "default", engines=mine)
        assert second is not None and second.auto == 1
        assert scans == [False]
        engine = await mine.current(conn, "default")
        assert engine.invoices["INV-1"].open_amount.amount == 0
        # Another worker passes (taking a CRM change off the queue): this one reads all.
        await put_invoices(quiet_api, [invoice("INV-3", "5.00")])
        assert await reconcile_changes(conn, "default", engines=theirs) is not None
        await upload(quiet_api, statement(("R3", "1.00", "Nobody", None), number=3))
        scans.clear()
        assert await reconcile_changes(conn, "default", engines=mine) is not None
        assert scans[0] is True
        assert "INV-3" in (await mine.current(conn, "default")).invoices
    finally:
        await conn.close()


async def test_a_pass_that_rolls_back_after_a_later_round_leaves_no_trusted_engine(
        quiet_api: Api) -> None:
    """A pass's later round reads the versions its own writes made; if the pass then rolls
    back, those rows are back as they were: the next pass must read every version again."""
    await put_invoices(quiet_api, [invoice("INV-1", "150.00")])
    await upload(quiet_api, statement(("R1", "9.00", "Nobody", None)))
    engines = _Checked()
    conn = await asyncpg.connect(quiet_api.database_url)
    try:
        assert await reconcile_changes(conn, "default", engines=engines) is not None
        last = await conn.fetchval("SELECT last_pass::text FROM reconcile_passes")
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("default"))
        await conn.execute("SELECT set_config('recon.reconcile_pass', 'on', true)")
        before, _ = await work.begin_pass(conn, "default")
        assert before == last
        await engines.candidates(conn, "default", changed=False, last_pass=before)
        await conn.execute("UPDATE invoices SET settled_amount = 150 WHERE invoice_id = 'INV-1'")
        engine = await engines.current(conn, "default")   # a later round of that pass
        assert engine.invoices["INV-1"].open_amount.amount == 0
        await transaction.rollback()
        await upload(quiet_api, statement(("R2", "8.00", "Nobody", None), number=2))
        assert await reconcile_changes(conn, "default", engines=engines) is not None
        assert engines.stale == []
        engine = await engines.current(conn, "default")
        assert engine.invoices["INV-1"].open_amount.amount == 150
    finally:
        await conn.close()
