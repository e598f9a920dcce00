"""GET /v1/audit and the entries the API's changes append: who acted (the key's id and
name), before and after, sensitive values only as references, one chain that verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from gateway.audit_checkpoints import read_checkpoints
from gateway.store import audit
from security.audit_verify import verify_chain
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.test_matches import PAYER_IBAN, invoice, load, post

STRANGER = "G. CORP HOLDING"
CUSTOMER_IBAN = "DE89370400440532013000"


async def trail(api: Api, query: str = "", role: Role = Role.COMPLIANCE) -> dict[str, Any]:
    response = await api.client.get(f"/v1/audit{query}", headers=api.auth(role))
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


async def everything(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await trail(api, f"?limit=3&cursor={cursor}")
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = page["next_cursor"]


def key_of(api: Api, role: Role) -> dict[str, str]:
    return {"type": "api_key", "id": api.keys[role][4:16], "name": f"test-{role}"}


async def test_changes_through_the_api_are_in_one_chain(api: Api) -> None:
    response = await api.client.put("/v1/customers", headers=api.auth(Role.CRM), json=[
        {"customer_id": "C1", "name": "Globex Corporation Ltd", "ibans": [CUSTOMER_IBAN]}])
    assert response.status == 200, await response.text()
    await load(api, [invoice("INV-7", "432.10")], ("R7", "432.10", STRANGER, None))
    [proposal] = (await (await api.client.get(
        "/v1/matches?invoice_id=INV-7&status=proposed",
        headers=api.auth(Role.ADMIN))).json())["items"]
    status, accepted = await post(api, f"/v1/matches/{proposal['allocation_id']}/accept")
    assert status == 200, accepted
    status, _ = await post(api, f"/v1/matches/{accepted['allocation_id']}/undo",
                           {"reason": "paid by a stranger"}, role=Role.ADMIN)
    assert status == 200
    response = await api.client.patch("/v1/invoices/INV-7", json={"status": "cancelled"},
                                      headers=api.auth(Role.CRM))
    assert response.status == 200, await response.text()

    items = await everything(api)
    assert verify_chain(items) is None
    assert [e["seq"] for e in items] == list(range(1, len(items) + 1))
    actions = [e["action"] for e in items]
    for expected in ("api_key.created", "customer.created", "invoice.created",
                     "allocation.accepted", "allocation.undone", "invoice.cancelled"):
        assert expected in actions, actions
    by_action = {e["action"]: e for e in items}
    assert by_action["customer.created"]["actor"] == key_of(api, Role.CRM)
    assert by_action["customer.created"]["after"]["ibans"] == [audit.reference(CUSTOMER_IBAN)]
    accepted_entry = by_action["allocation.accepted"]
    assert accepted_entry["actor"] == key_of(api, Role.TREASURY)
    assert (accepted_entry["before"]["status"], accepted_entry["after"]["status"]) == (
        "proposed", "applied")
    undone = by_action["allocation.undone"]
    assert undone["actor"] == key_of(api, Role.ADMIN)
    assert undone["after"]["note"] == audit.reference("paid by a stranger")
    cancelled = by_action["invoice.cancelled"]
    assert (cancelled["before"]["cancelled"], cancelled["after"]["cancelled"]) == (False, True)

    conn = await asyncpg.connect(api.database_url)
    try:
        dump = await conn.fetchval("SELECT string_agg(audit_log::text, ' ') FROM audit_log")
    finally:
        await conn.close()
    for secret in (CUSTOMER_IBAN, PAYER_IBAN, STRANGER, "Globex", "paid by a stranger"):
        assert secret not in dump


async def test_filters_pages_and_the_last_verification(api: Api) -> None:
    for n in range(3):
        response = await api.client.put("/v1/invoices", json=[invoice(f"INV-{n}", "10.00")],
                                        headers=api.auth(Role.CRM))
        assert response.status == 200
    page = await trail(api, "?action=invoice.created")
    assert [e["object"]["id"] for e in page["items"]] == ["INV-0", "INV-1", "INV-2"]
    assert page["verification"] is None
    page = await trail(api, "?object_type=invoice&object_id=INV-1", role=Role.AUDITOR)
    assert [e["action"] for e in page["items"]] == ["invoice.created"]
    crm_key = key_of(api, Role.CRM)["id"]
    assert {e["actor"]["id"] for e in (await trail(api, f"?actor={crm_key}"))["items"]} == {
        crm_key}
    first = (await trail(api, "?limit=1"))["items"][0]["time"]
    assert (await trail(api, "?until=2000-01-01T00:00:00Z"))["items"] == []
    assert (await trail(api, "?since=2000-01-01T00:00:00Z&limit=1"))["items"][0]["time"] == \
        first
    response = await api.client.get("/v1/audit?since=yesterday",
                                    headers=api.auth(Role.COMPLIANCE))
    assert response.status == 400
    conn = await asyncpg.connect(api.database_url)
    try:
        await audit.record_verification(conn, "default", entries=9, head_seq=9, problem=None)
    finally:
        await conn.close()
    verification = (await trail(api))["verification"]
    assert (verification["ok"], verification["head_seq"], verification["problem"]) == (
        True, 9, None)
    for role in (Role.CRM, Role.TREASURY):
        response = await api.client.get("/v1/audit", headers=api.auth(role))
        assert response.status == 403


async def test_serve_signs_checkpoints_at_intervals(migrated_database_url: str,
                                                    aiohttp_client: AiohttpClient,
                                                    tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    api = await make_api(migrated_database_url, aiohttp_client,
                         audit_checkpoint_interval=0.05,
                         audit_checkpoint_key=str(tmp_path / "checkpoint.key"),
                         audit_checkpoints=str(checkpoints))
    head = (await everything(api))[-1]  # the keys make_api created
    deadline = asyncio.get_running_loop().time() + 60
    while not any(c["seq"] == head["seq"] for c in read_checkpoints(checkpoints)):
        assert asyncio.get_running_loop().time() < deadline, "no checkpoint signed"
        await asyncio.sleep(0.02)  # polling interval
    [signed] = [c for c in read_checkpoints(checkpoints) if c["seq"] == head["seq"]]
    assert (signed["chain"], signed["head"]) == ("default", head["hash"])
