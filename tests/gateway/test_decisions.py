"""Decisions that stick: undo takes back what its decision taught and the undone pair is
never allocated automatically again; a CRM sync never erases what was learned; undo keeps
who decided beside who undid."""

from __future__ import annotations

from typing import Any

from security.roles import Role
from tests.gateway.conftest import Api
from tests.gateway.test_matches import PAYER_IBAN, get, invoice, load, post, statement

STRANGER = "G. CORP HOLDING"  # not like the customer's name: the amount alone is evidence


async def _accept_only_proposal(api: Api, invoice_id: str) -> dict[str, Any]:
    [proposal] = (await get(api, f"/v1/matches?invoice_id={invoice_id}&status=proposed"))[
        "items"]
    status, accepted = await post(api, f"/v1/matches/{proposal['allocation_id']}/accept")
    assert status == 200, accepted
    return accepted


async def _learned(api: Api) -> dict[str, list[str]]:
    [customer] = (await get(api, "/v1/customers"))["items"]
    learned: dict[str, list[str]] = customer["learned"]
    return learned


async def test_undo_unlearns_the_payer_and_the_pair_is_not_applied_again(api: Api) -> None:
    await load(api, [invoice("INV-7", "432.10")], ("R7", "432.10", STRANGER, None))
    accepted = await _accept_only_proposal(api, "INV-7")
    assert await _learned(api) == {"ibans": [PAYER_IBAN], "names": [STRANGER]}
    status, undone = await post(api, f"/v1/matches/{accepted['allocation_id']}/undo",
                                {"reason": "paid by a stranger"})
    assert status == 200, undone
    assert await _learned(api) == {"ibans": [], "names": []}
    await api.settled()  # the undo handed the payment back: the workers matched it again
    assert (await get(api, "/v1/invoices/INV-7"))["status"] == "open"
    [proposal] = (await get(api, "/v1/matches?invoice_id=INV-7&status=proposed"))["items"]
    assert "undone_before" in {r["code"] for r in proposal["reasons"]}


async def test_an_undone_pair_is_never_automatic_even_when_others_taught_the_same(
        api: Api) -> None:
    await load(api, [invoice("INV-A", "111.00"), invoice("INV-B", "222.00")],
               ("RA", "111.00", STRANGER, None), ("RB", "222.00", STRANGER, None))
    first = await _accept_only_proposal(api, "INV-A")
    await _accept_only_proposal(api, "INV-B")
    status, _ = await post(api, f"/v1/matches/{first['allocation_id']}/undo",
                           {"reason": "paid by a stranger"})
    assert status == 200
    # INV-B's decision taught the same IBAN and name: they stay known ...
    assert await _learned(api) == {"ibans": [PAYER_IBAN], "names": [STRANGER]}
    # ... so the known payer and the unique amount would make RA -> INV-A automatic again.
    await api.settled()  # the undo handed the payment back: the workers matched it again
    assert (await get(api, "/v1/invoices/INV-A"))["status"] == "open"
    [proposal] = (await get(api, "/v1/matches?invoice_id=INV-A&status=proposed"))["items"]
    assert proposal["decision"] == "review" and proposal["confidence"] < 0.95
    assert "undone_before" in {r["code"] for r in proposal["reasons"]}


async def test_a_crm_sync_never_erases_what_was_learned(api: Api) -> None:
    await load(api, [invoice("INV-7", "432.10")], ("R7", "432.10", STRANGER, None))
    await _accept_only_proposal(api, "INV-7")
    response = await api.client.put("/v1/customers", headers=api.auth(Role.CRM), json=[
        {"customer_id": "C1", "name": "Globex Corporation Ltd", "ibans": [], "aliases": []}])
    assert response.status == 200, await response.text()
    [customer] = (await get(api, "/v1/customers"))["items"]
    assert (customer["ibans"], customer["aliases"]) == ([], [])  # the CRM's own data
    assert customer["learned"] == {"ibans": [PAYER_IBAN], "names": [STRANGER]}
    # And the engine still knows the payer: its next payment of a unique amount is automatic.
    response = await api.client.put("/v1/invoices", headers=api.auth(Role.CRM),
                                    json=[invoice("INV-8", "77.70")])
    assert response.status == 200
    response = await api.client.post("/v1/statements", headers=api.auth(Role.TREASURY),
                                     data=statement(("R8", "77.70", STRANGER, None), number=2))
    assert response.status == 201, await response.text()
    await api.settled()
    assert (await get(api, "/v1/invoices/INV-8"))["status"] == "paid"


async def test_undo_keeps_who_accepted_beside_who_undid(api: Api) -> None:
    await load(api, [invoice("INV-7", "432.10")], ("R7", "432.10", STRANGER, None))
    accepted = await _accept_only_proposal(api, "INV-7")
    response = await api.client.post(f"/v1/matches/{accepted['allocation_id']}/undo",
                                     json={"reason": "paid by a stranger"},
                                     headers=api.auth(Role.ADMIN))
    assert response.status == 200
    undone = await response.json()
    treasury = f"test-treasury (key {api.keys[Role.TREASURY][4:16]})"
    admin = f"test-admin (key {api.keys[Role.ADMIN][4:16]})"
    assert (undone["status"], undone["decided_by"], undone["decided_at"]) == (
        "undone", treasury, accepted["decided_at"])
    assert (undone["undone_by"], undone["undo_reason"]) == (admin, "paid by a stranger")
    assert undone["undone_at"] >= undone["decided_at"]
    [listed] = (await get(api, "/v1/matches?status=undone"))["items"]
    assert {k: listed[k] for k in ("decided_by", "undone_by", "undo_reason")} == {
        "decided_by": treasury, "undone_by": admin, "undo_reason": "paid by a stranger"}
