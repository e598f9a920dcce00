"""One bad payment cannot stop reconciliation: it fails alone, is recorded, shown and counted,
and the others of the pass (and every later import) are reconciled as usual."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.ingest import ingest
from gateway.reconcile import EngineFactory, describe, reconcile
from gateway.store import failures
from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Payment
from parsers.money import Money
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.test_matches import get, invoice, post, statement

GOOD = ("GOOD1", "100.00", "GLOBEX CORPORATION", "Invoice INV-1")


@pytest.fixture
async def api(migrated_database_url: str, aiohttp_client: AiohttpClient) -> Api:
    """The service without reconcile workers: each test runs its passes with POST
    /v1/reconcile and reads their results (the workers run the same pass)."""
    return await make_api(migrated_database_url, aiohttp_client, max_body_bytes=200_000,
                          reconcile_workers=0)


async def _pass(api: Api) -> dict[str, Any]:
    status, result = await post(api, "/v1/reconcile")
    assert status == 200, result
    return dict(result)
DATA = Path(__file__).resolve().parents[1] / "matching" / "data"
BAD = ("BAD1", "200.00", "GLOBEX CORPORATION", "Invoice INV-2")


async def _refuse_allocations_of(database_url: str, payment_key: str) -> None:
    """A database that refuses to store any allocation of one payment."""
    assert payment_key.isalnum()  # spelt into the constraint: DDL takes no parameters
    await _alter_allocations(database_url, "ADD CONSTRAINT refuse_one"
                                           f" CHECK (payment_key <> '{payment_key}')")


async def _allow_allocations(database_url: str) -> None:
    """The cause of the failure gone: the database stores every allocation again."""
    await _alter_allocations(database_url, "DROP CONSTRAINT refuse_one")


async def _alter_allocations(database_url: str, change: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"ALTER TABLE allocations {change}")
    finally:
        await conn.close()


async def _import_with_bad1_refused(api: Api, *more: tuple[str, str]) -> dict[str, Any]:
    """INV-1 (100.00), INV-2 (200.00) and ``more`` (id, amount) open; GOOD and BAD imported while
    the database refuses BAD1's allocations: the import's reconciliation result."""
    await _refuse_allocations_of(api.database_url, "BAD1")
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM), json=[
        invoice("INV-1", "100.00"), invoice("INV-2", "200.00"),
        *(invoice(invoice_id, amount) for invoice_id, amount in more)])
    assert response.status == 200
    response = await api.client.post("/v1/statements", data=statement(GOOD, BAD),
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 201, await response.text()
    return await _pass(api)


async def test_a_payment_the_database_refuses_fails_alone_and_imports_keep_working(
        api: Api) -> None:
    result = await _import_with_bad1_refused(api, ("INV-3", "300.00"))
    assert (result["payments"], result["auto"], result["failed"]) == (2, 1, 1)
    [failure] = result["failures"]
    assert (failure["stage"], failure["attempts"]) == ("apply", 1)
    assert "CheckViolationError" in failure["error"] and "refuse_one" in failure["error"]
    assert (await get(api, "/v1/invoices/INV-1"))["status"] == "paid"
    assert (await get(api, "/v1/invoices/INV-2"))["status"] == "open"

    # Nothing changed and the backoff runs: a pass leaves the payment alone, and answers.
    status, again = await post(api, "/v1/reconcile")
    assert (status, again["payments"], again["failed"], again["held"]) == (200, 0, 0, 1)
    listed = (await get(api, "/v1/reconcile/failures"))["items"]
    assert [(f["entry_id"], f["stage"], f["attempts"]) for f in listed] == [
        (failure["entry_id"], "apply", 1)]
    metrics = await api.client.get("/metrics", headers=api.auth(Role.ADMIN))
    assert 'recon_reconcile_failures_total{stage="apply"} 1.0' in await metrics.text()

    # Later imports are reconciled as usual.
    response = await api.client.post(
        "/v1/statements", headers=api.auth(Role.TREASURY),
        data=statement(("GOOD3", "300.00", "GLOBEX CORPORATION", "INV-3"), number=2))
    assert response.status == 201, await response.text()
    assert (await _pass(api))["auto"] == 1
    assert (await get(api, "/v1/invoices/INV-3"))["status"] == "paid"
    assert len((await get(api, "/v1/reconcile/failures"))["items"]) == 1

    # Once the cause is gone, a change of the invoices makes the next pass try it again.
    await _allow_allocations(api.database_url)
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM), json=[
        {**invoice("INV-2", "200.00"), "due_date": "2026-12-31"}])
    assert response.status == 200
    assert (await _pass(api))["auto"] == 1
    assert (await get(api, "/v1/invoices/INV-2"))["status"] == "paid"
    assert (await get(api, "/v1/reconcile/failures"))["items"] == []


class _NegativeFor(Engine):
    """An engine that proposes -4.05 for one payment, as the engine once did."""

    victim = ""

    def match(self, payments: Iterable[Payment],
              excluded: frozenset[tuple[str, str]] = frozenset(),
              never_auto: frozenset[tuple[str, str]] = frozenset()) -> list[Allocation]:
        out = []
        for allocation in super().match(payments, excluded, never_auto):
            if allocation.payment_key.endswith(self.victim) and allocation.amount:
                allocation = Allocation(allocation.payment_key, allocation.invoice_id,
                                        Money(Decimal("-4.05"), allocation.amount.currency),
                                        allocation.confidence, allocation.decision)
            out.append(allocation)
        return out


class _RaisesFor(Engine):
    """An engine that raises whenever one payment is in its batch."""

    victim = ""

    def match(self, payments: Iterable[Payment],
              excluded: frozenset[tuple[str, str]] = frozenset(),
              never_auto: frozenset[tuple[str, str]] = frozenset()) -> list[Allocation]:
        payments = list(payments)
        if any(p.entry_id == self.victim for p in payments):
            raise ZeroDivisionError("Globex Corporation 200.00 GB29NWBK60161331926819")
        return super().match(payments, excluded, never_auto)


def _failing_on(kind: type[_RaisesFor] | type[_NegativeFor], entry_id: str) -> EngineFactory:
    """An engine factory whose engines are ``kind``, failing on the payment ``entry_id``."""
    def factory(invoices: Sequence[Invoice], customers: Sequence[Customer]) -> Engine:
        engine = kind(invoices, customers)
        engine.victim = entry_id
        return engine
    return factory


async def _two_payments(api: Api, conn: asyncpg.Connection) -> dict[str, str]:
    """INV-1 and INV-2 open, GOOD and BAD stored without reconciling: entry id by reference."""
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM), json=[
        invoice("INV-1", "100.00"), invoice("INV-2", "200.00")])
    assert response.status == 200
    await ingest(conn, statement(GOOD, BAD), source="two.xml")
    rows = await conn.fetch("SELECT bank_reference, entry_id FROM transactions")
    return {r["bank_reference"]: r["entry_id"] for r in rows}


@pytest.mark.parametrize(("kind", "stage"), [(_NegativeFor, "apply"), (_RaisesFor, "engine")])
async def test_an_engine_that_fails_on_one_payment_stops_only_that_one(
        api: Api, conn: asyncpg.Connection, kind: type[_RaisesFor] | type[_NegativeFor],
        stage: str) -> None:
    entries = await _two_payments(api, conn)
    result = await reconcile(conn, "default", engine=_failing_on(kind, entries["BAD1"]))
    assert (result.payments, result.auto, result.failed) == (2, 1, 1)
    [failure] = result.failures
    assert (failure.entry_id, failure.stage) == (entries["BAD1"], stage)
    for secret in ("Globex", "200.00", "GB29", "-4.05"):  # never names, amounts or IBANs
        assert secret not in failure.error
    assert (await get(api, "/v1/invoices/INV-1"))["status"] == "paid"
    assert (await get(api, "/v1/invoices/INV-2"))["status"] == "open"
    account_id = failure.account_id
    shown = await failures.failures_for(conn, "default", [(account_id, entries["BAD1"]),
                                                          (account_id, entries["GOOD1"])])
    assert list(shown) == [(account_id, entries["BAD1"])]
    assert shown[(account_id, entries["BAD1"])]["error"] == failure.error


async def test_a_failed_payment_is_tried_again_after_its_backoff_not_on_every_pass(
        api: Api, conn: asyncpg.Connection) -> None:
    entries = await _two_payments(api, conn)
    factory = _failing_on(_RaisesFor, entries["BAD1"])
    first = await reconcile(conn, "default", engine=factory)
    assert first.failed == 1
    second = await reconcile(conn, "default", engine=factory)
    assert (second.payments, second.failed, second.held) == (0, 0, 1)
    await conn.execute("UPDATE reconcile_failures SET retry_at = now() - interval '1 second'")
    third = await reconcile(conn, "default", engine=factory)
    assert (third.payments, third.failed, third.held) == (1, 1, 0)
    row = await conn.fetchrow("SELECT attempts, retry_at - last_seen AS wait"
                              " FROM reconcile_failures")
    assert row["attempts"] == 2 and row["wait"].total_seconds() == 120  # doubled
    # The ordinary engine (the fault fixed), once the backoff has run out again.
    await conn.execute("UPDATE reconcile_failures SET retry_at = now() - interval '1 second'")
    fixed = await reconcile(conn, "default")
    assert (fixed.payments, fixed.auto, fixed.failed) == (1, 1, 0)
    assert await conn.fetchval("SELECT resolved_at IS NOT NULL FROM reconcile_failures")
    assert await failures.failures_for(conn, "default", [(1, entries["BAD1"])]) == {}


def test_the_error_text_of_a_failure_names_no_data() -> None:
    try:
        raise ValueError("Globex Corporation owes 200.00 on GB29NWBK60161331926819")
    except ValueError as exc:
        text = describe(exc)
    assert text.startswith("ValueError at gateway/test_reconcile_failures.py:"), text
    assert "Globex" not in text and "200.00" not in text


async def test_the_short_set_case_imports_and_reconciles_without_a_failure(api: Api) -> None:
    """The case of the issue, end to end: a 95.95 payment naming a 5.00 invoice of a
    customer who also owes 100.00 (once proposed -4.05, refused, and every pass failed)."""
    invoices = [{**invoice(invoice_id, amount, name="Acme Plaster"),
                 "issue_date": "2026-12-01", "due_date": "2026-12-28"}
                for invoice_id, amount in (("INV-00001", "100.00"), ("INV-00002", "5.00"))]
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM), json=invoices)
    assert response.status == 200
    response = await api.client.post("/v1/statements", headers=api.auth(Role.TREASURY),
                                     data=(DATA / "short-combination.sta").read_bytes())
    assert response.status == 201, await response.text()
    result = await _pass(api)
    assert (result["payments"], result["failed"]) == (1, 0)
    status, again = await post(api, "/v1/reconcile")
    assert (status, again["failed"]) == (200, 0)
    for row in (await get(api, "/v1/matches"))["items"]:
        assert Decimal(row["amount"]) > 0


async def test_a_failed_payment_shows_on_its_transaction_until_allocated_by_hand(
        api: Api) -> None:
    [failure] = (await _import_with_bad1_refused(api))["failures"]
    lines = {t["bank_reference"]: t for t in (await get(api, "/v1/transactions"))["items"]}
    assert lines["BAD1"]["reconcile_error"] == failure["error"]
    assert lines["GOOD1"]["reconcile_error"] is None
    await _allow_allocations(api.database_url)
    status, made = await post(api, "/v1/matches", {
        "account_id": failure["account_id"], "entry_id": failure["entry_id"],
        "allocations": [{"invoice_id": "INV-2", "amount": "200.00"}]})
    assert status == 201, made
    assert (await get(api, "/v1/reconcile/failures"))["items"] == []
