"""A payment whose reconciliation failed shows why on the transaction."""

from __future__ import annotations

from security.roles import Role
from tests.gateway.conftest import Api
from tests.gateway.test_matches import get, invoice, statement
from tests.gateway.test_reconcile_failures import BAD, GOOD, refuse_allocations_of


async def test_the_failure_shows_on_its_transaction_only(api: Api) -> None:
    await refuse_allocations_of(api.database_url, "BAD1")
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM), json=[
        invoice("INV-1", "100.00"), invoice("INV-2", "200.00")])
    assert response.status == 200
    response = await api.client.post("/v1/statements", data=statement(GOOD, BAD),
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 201
    [failure] = (await response.json())["reconciliation"]["failures"]
    lines = {t["bank_reference"]: t for t in (await get(api, "/v1/transactions"))["items"]}
    assert lines["BAD1"]["reconcile_error"] == failure["error"]
    assert lines["GOOD1"]["reconcile_error"] is None
