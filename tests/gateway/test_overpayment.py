"""A person's decision never overpays an invoice unless the request insists
(``"allow_overpayment": true``): a manual allocation to a paid invoice, or of more than it
has open, and the acceptance of a proposal made before the invoice was paid some other
way, are refused with a 409 problem that says what is open and how to insist."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decisions import DecisionError, allocate_manually
from gateway.ingest import ingest
from gateway.store import invoices as invoice_store
from matching.invoices import Invoice
from parsers.money import Money
from tests.gateway.conftest import Api
from tests.gateway.test_matches import get, invoice, load, post, statement

# The rule is ours, not the database server's: the embedded server only.
pytestmark = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)


async def _payment(api: Api, reference: str) -> dict[str, Any]:
    lines = (await get(api, "/v1/transactions"))["items"]
    [line] = [t for t in lines if t["bank_reference"] == reference]
    return {"account_id": line["account_id"], "entry_id": line["entry_id"]}


async def _allocations(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await get(api, "/v1/matches?limit=1000"))["items"]
    return items


async def test_a_manual_allocation_to_a_paid_invoice_is_refused_unless_insisted(
        api: Api) -> None:
    await load(api, [invoice("INV-1", "150.00")],
               ("R1", "150.00", "GLOBEX CORPORATION", "INV-1"),  # pays it automatically
               ("R2", "150.00", None, "a second time"))
    assert (await get(api, "/v1/invoices/INV-1"))["status"] == "paid"
    body = {**await _payment(api, "R2"), "allocations": [
        {"invoice_id": "INV-1", "amount": "150.00"}]}
    before = await _allocations(api)
    status, problem = await post(api, "/v1/matches", body)
    assert status == 409
    assert problem["type"].endswith("/overpayment")
    assert "invoice INV-1 is paid (0 EUR open): allocating 150.00 EUR to it would overpay " \
           "it by 150.00 EUR" in problem["detail"]
    assert '"allow_overpayment": true' in problem["detail"]
    assert problem["invoices"] == [{"invoice_id": "INV-1", "currency": "EUR",
                                    "open_amount": "0.00", "allocating": "150.00",
                                    "overpaid_by": "150.00"}]
    assert await _allocations(api) == before  # nothing stored, nothing rejected
    assert (await get(api, "/v1/invoices/INV-1"))["settled_amount"] == "150.00"
    status, made = await post(api, "/v1/matches", {**body, "allow_overpayment": True})
    assert status == 201, made
    paid = await get(api, "/v1/invoices/INV-1")
    assert (paid["status"], paid["open_amount"]) == ("overpaid", "-150.00")


async def test_more_than_the_open_amount_is_refused_counting_every_part_of_a_split(
        api: Api) -> None:
    await load(api, [invoice("INV-2", "100.00"), invoice("INV-3", "40.00")],
               ("R3", "200.00", None, "several"))
    payment = await _payment(api, "R3")
    status, problem = await post(api, "/v1/matches", {**payment, "allocations": [
        {"invoice_id": "INV-2", "amount": "60.00"}, {"invoice_id": "INV-3", "amount": "40.00"},
        {"invoice_id": "INV-2", "amount": "60.00"}]})
    assert status == 409
    assert problem["invoices"] == [{"invoice_id": "INV-2", "currency": "EUR",
                                    "open_amount": "100.00", "allocating": "120.00",
                                    "overpaid_by": "20.00"}]
    assert "invoice INV-2 has 100.00 EUR open" in problem["detail"]
    assert (await get(api, "/v1/invoices/INV-3"))["status"] == "open"  # not half stored
    status, problem = await post(api, "/v1/matches", {**payment, "allow_overpayment": "yes",
                                                      "allocations": [
        {"invoice_id": "INV-2", "amount": "60.00"}]})
    assert status == 400 and "allow_overpayment must be true or false" in problem["detail"]


async def test_an_invoice_the_crm_says_is_paid_takes_no_allocation(api: Api) -> None:
    await load(api, [{**invoice("INV-4", "80.00"), "open_amount": "0.00"}],
               ("R4", "80.00", None, "paid in cash already"))
    status, problem = await post(api, "/v1/matches", {**await _payment(api, "R4"),
                                                      "allocations": [
        {"invoice_id": "INV-4", "amount": "80.00"}]})
    assert status == 409 and problem["invoices"][0]["open_amount"] == "0.00"


async def test_accepting_a_proposal_for_an_invoice_paid_meanwhile_is_refused(
        api: Api) -> None:
    await load(api, [invoice("INV-7", "432.10")],
               ("R7", "432.10", "G. CORP HOLDING", None),  # the amount alone: for review
               ("R8", "500.00", None, "cash and more"))    # nothing to match
    [proposal] = (await get(api, "/v1/matches?invoice_id=INV-7&status=proposed"))["items"]
    assert proposal["payment_key"] == "R7"
    status, made = await post(api, "/v1/matches", {**await _payment(api, "R8"),
                                                   "allocations": [
        {"invoice_id": "INV-7", "amount": "432.10"}]})
    assert status == 201, made  # paid by the second payment
    accept = f"/v1/matches/{proposal['allocation_id']}/accept"
    status, problem = await post(api, accept)
    assert status == 409
    assert problem["invoices"] == [{"invoice_id": "INV-7", "currency": "EUR",
                                    "open_amount": "0.00", "allocating": "432.10",
                                    "overpaid_by": "432.10"}]
    still = (await get(api, "/v1/matches?invoice_id=INV-7&status=proposed"))["items"]
    assert [p["allocation_id"] for p in still] == [proposal["allocation_id"]]
    status, accepted = await post(api, accept, {"allow_overpayment": True})
    assert (status, accepted["status"]) == (200, "applied")
    assert (await get(api, "/v1/invoices/INV-7"))["status"] == "overpaid"


async def test_the_openapi_document_declares_the_refusal_and_the_field(api: Api) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    for path in ("/v1/matches", "/v1/matches/{allocation_id}/accept"):
        operation = document["paths"][path]["post"]
        assert "409" in operation["responses"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["allow_overpayment"]["type"] == "boolean"


# The promise as a property: whatever manual allocations people send without insisting,
# no invoice ever has more allocated than its amount (nor than the CRM leaves open), and
# no payment more than it brought. Each example is a tenant of its own.

INVOICES = (("I1", "100.00", "100.00"), ("I2", "50.00", "50.00"),
            ("I3", "80.00", "30.00"),    # the CRM says 50.00 was paid some other way
            ("I4", "40.00", "0.00"))     # the CRM says it is paid
PAYMENTS = ("120.00", "75.00", "30.00")
_PARTS = st.lists(st.tuples(st.integers(0, len(INVOICES) - 1), st.integers(1, 15_000)),
                  min_size=1, max_size=3)
STEPS = st.lists(st.tuples(st.integers(0, len(PAYMENTS) - 1), _PARTS), min_size=1,
                 max_size=6)


def _statement() -> bytes:
    return statement(*((f"P{n}", amount, None, f"payment {n}")
                       for n, amount in enumerate(PAYMENTS)))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
async def test_no_manual_allocation_ever_overpays_an_invoice_or_a_payment(
        pool: asyncpg.Pool, steps: list[tuple[int, list[tuple[int, int]]]]) -> None:
    tenant = uuid.uuid4().hex
    async with pool.acquire() as conn:
        await invoice_store.upsert(conn, tenant, [Invoice(
            invoice_id=i, customer_id="C1", amount=Money(Decimal(amount), "EUR"),
            open_amount=Money(Decimal(crm_open), "EUR"), issue_date=date(2026, 11, 1),
            due_date=None, customer_name="Globex") for i, amount, crm_open in INVOICES])
        await ingest(conn, _statement(), source="payments.xml", tenant=tenant)
        entries = {r["bank_reference"]: (r["account_id"], r["entry_id"]) for r in
                   await conn.fetch("SELECT account_id, entry_id, bank_reference"
                                    " FROM transactions WHERE tenant_id = $1", tenant)}
    settled = {i: Decimal(0) for i, _, _ in INVOICES}
    used = [Decimal(0) for _ in PAYMENTS]
    for payment, parts in steps:
        wanted = [(INVOICES[i][0], Decimal(cents) / 100) for i, cents in parts]
        asked: dict[str, Decimal] = {}
        for invoice_id, amount in wanted:
            asked[invoice_id] = asked.get(invoice_id, Decimal(0)) + amount
        fits = sum(asked.values()) <= Decimal(PAYMENTS[payment]) - used[payment] and all(
            total <= min(Decimal(crm_open), Decimal(amount) - settled[invoice_id])
            for invoice_id, amount, crm_open in INVOICES
            if (total := asked.get(invoice_id)) is not None)
        account_id, entry_id = entries[f"P{payment}"]
        async with pool.acquire() as conn:
            try:
                await allocate_manually(conn, tenant, account_id=account_id,
                                        entry_id=entry_id, parts=wanted, by="test", note=None)
                stored = True
            except DecisionError:
                stored = False
            assert stored is fits, (payment, wanted, settled, used)
            if stored:
                used[payment] += sum(asked.values())
                for invoice_id, total in asked.items():
                    settled[invoice_id] += total
            rows = await conn.fetch("SELECT invoice_id, amount, settled_amount, open_amount,"
                                    " status FROM invoices WHERE tenant_id = $1", tenant)
            for row in rows:
                assert row["settled_amount"] == settled[row["invoice_id"]]
                assert row["settled_amount"] <= row["amount"] and row["open_amount"] >= 0
                assert row["status"] != "overpaid"
            allocated = await conn.fetch(
                "SELECT entry_id, sum(payment_amount) AS total FROM allocations"
                " WHERE tenant_id = $1 AND status = 'applied' GROUP BY entry_id", tenant)
            by_entry = {r["entry_id"]: r["total"] for r in allocated}
            for n, brought in enumerate(PAYMENTS):
                assert by_entry.get(entries[f"P{n}"][1], Decimal(0)) == used[n]
                assert used[n] <= Decimal(brought)


async def _invoice_and_payments(conn: asyncpg.Connection, tenant: str) -> None:
    """Invoice I1 of 100.00 EUR open, and the payments of ``_statement()`` stored."""
    await invoice_store.upsert(conn, tenant, [Invoice(
        invoice_id="I1", customer_id="C1", amount=Money(Decimal("100.00"), "EUR"),
        open_amount=Money(Decimal("100.00"), "EUR"), issue_date=date(2026, 11, 1),
        due_date=None, customer_name="Globex")])
    await ingest(conn, _statement(), source="payments.xml", tenant=tenant)


async def test_two_allocations_at_once_that_together_overpay_store_one(
        pool: asyncpg.Pool) -> None:
    """Each fits alone; the second to reach the invoice row sees the first and is refused."""
    tenant = uuid.uuid4().hex
    async with pool.acquire() as conn:
        await _invoice_and_payments(conn, tenant)
        entries = await conn.fetch("SELECT account_id, entry_id FROM transactions"
                                   " WHERE tenant_id = $1 AND amount >= 75", tenant)

    async def allocate(account_id: int, entry_id: str) -> bool:
        async with pool.acquire() as conn:
            try:
                await allocate_manually(conn, tenant, account_id=account_id,
                                        entry_id=entry_id, parts=[("I1", Decimal("70.00"))],
                                        by="test", note=None)
            except DecisionError:
                return False
            return True

    results = await asyncio.gather(*(allocate(r["account_id"], r["entry_id"])
                                     for r in entries))
    assert sorted(results) == [False, True]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT settled_amount FROM invoices WHERE tenant_id = $1",
                                   tenant) == Decimal("70.00")


@pytest.mark.parametrize("amount", ["0", "0.00", "-10.00"])
async def test_a_manual_part_of_nothing_or_less_is_refused_before_anything_is_stored(
        pool: asyncpg.Pool, amount: str) -> None:
    """The API refuses such parts first; the decision refuses them for every other caller."""
    tenant = uuid.uuid4().hex
    async with pool.acquire() as conn:
        await _invoice_and_payments(conn, tenant)
        entry = await conn.fetchrow("SELECT account_id, entry_id FROM transactions"
                                    " WHERE tenant_id = $1 AND amount > 0 LIMIT 1", tenant)
        with pytest.raises(DecisionError, match="more than zero"):
            await allocate_manually(conn, tenant, account_id=entry["account_id"],
                                    entry_id=entry["entry_id"],
                                    parts=[("I1", Decimal("50.00")), ("I1", Decimal(amount))],
                                    by="test", note=None)
        assert await conn.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1",
                                   tenant) == 0
