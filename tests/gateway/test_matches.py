"""Reconciliation in the service: automatic allocations on import, the review queue,
decisions with who made them, undo, manual allocation and split, learning."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from gateway.ingest import ingest
from gateway.reconcile import reconcile
from parsers.camt_write import write
from parsers.model import Account, Balance, BalanceKind, Entry, Statement
from parsers.money import Money
from security.roles import Role
from tests.gateway.conftest import Api

ACCOUNT = Account(iban="DE89370400440532013000", currency="EUR", bic="COBADEFFXXX")
PAYER_IBAN = "GB29NWBK60161331926819"


def statement(*lines: tuple[str, str, str | None, str | None], number: int = 1) -> bytes:
    """camt.053 with incoming payments: (bank reference, amount, payer name, remittance)."""
    entries = tuple(Entry(amount=Money(Decimal(amount), "EUR"), booking_date=date(2026, 11, 20),
                          value_date=date(2026, 11, 20), bank_reference=reference,
                          counterparty_name=name, counterparty_account=PAYER_IBAN if name else None,
                          remittance=remittance)
                    for reference, amount, name, remittance in lines)
    total = sum((e.amount.amount for e in entries), Decimal(0))
    return write([Statement(
        source="test", format="camt.053", account=ACCOUNT, entries=entries,
        statement_id=f"S{number}", sequence=str(number),
        created_at=datetime(2026, 11, 20, 20, 0, tzinfo=UTC),
        opening_balance=Balance(Money(Decimal("1000.00"), "EUR"), date(2026, 11, 19),
                                BalanceKind.OPENING_BOOKED),
        closing_balance=Balance(Money(Decimal("1000.00") + total, "EUR"), date(2026, 11, 20),
                                BalanceKind.CLOSING_BOOKED))])


def invoice(invoice_id: str, amount: str, customer: str = "C1",
            name: str = "Globex Corporation Ltd") -> dict[str, str]:
    return {"invoice_id": invoice_id, "customer_id": customer, "customer_name": name,
            "currency": "EUR", "amount": amount, "open_amount": amount,
            "issue_date": "2026-11-01", "due_date": "2026-11-30", "reference": invoice_id}


async def get(api: Api, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth(Role.ADMIN))
    assert response.status == 200, await response.text()
    return await response.json()


async def post(api: Api, path: str, body: Any = None, role: Role = Role.TREASURY) -> Any:
    response = await api.client.post(path, json=body, headers=api.auth(role))
    return response.status, await response.json()


async def load(api: Api, invoices: list[dict[str, str]], *lines: tuple[str, str, str | None,
                                                                        str | None]) -> Any:
    await api.client.put("/v1/invoices", json=invoices, headers=api.auth(Role.CRM))
    response = await api.client.post("/v1/statements", data=statement(*lines),
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 201, await response.text()
    imported = await response.json()
    await api.settled()  # the workers have matched it
    return imported


async def test_an_import_reconciles_and_pays_the_invoice(api: Api) -> None:
    imported = await load(api, [invoice("INV-2026-0001", "150.00"),
                                invoice("INV-2026-0002", "80.00")],
                          ("R1", "150.00", "GLOBEX CORPORATION", "Invoice INV-2026-0001"))
    # The import answered at once: matching was queued for the workers (load waited).
    assert (imported["reconciliation"]["status"], imported["reconciliation"]["href"]) == (
        "queued", "/v1/reconcile")
    paid = await get(api, "/v1/invoices/INV-2026-0001")
    assert (paid["status"], paid["open_amount"]) == ("paid", "0.00")
    assert (await get(api, "/v1/invoices/INV-2026-0002"))["status"] == "open"
    matches = await get(api, "/v1/matches?decision=auto")
    [allocation] = matches["items"]
    assert (allocation["invoice_id"], allocation["status"], allocation["created_by"]) == (
        "INV-2026-0001", "applied", "engine")
    assert {r["code"] for r in allocation["reasons"]} >= {"reference_exact", "amount_exact"}


async def test_review_accept_records_who_and_teaches_the_payer(api: Api) -> None:
    # No reference and no known payer: the amount alone only earns a place in the queue.
    await load(api, [invoice("INV-7", "432.10")], ("R7", "432.10", "G. CORP HOLDING", None))
    queue = await get(api, "/v1/matches?decision=review&status=proposed")
    [proposal] = queue["items"]
    assert (await get(api, "/v1/invoices/INV-7"))["status"] == "open"  # not applied yet
    status, accepted = await post(api, f"/v1/matches/{proposal['allocation_id']}/accept")
    assert status == 200
    assert (accepted["status"], accepted["decided_by"]) == ("applied", "test-treasury (key "
                                                            + api.keys[Role.TREASURY][4:16] + ")")
    assert (await get(api, "/v1/invoices/INV-7"))["status"] == "paid"
    customer = (await get(api, "/v1/customers"))["items"][0]
    assert customer["learned"] == {"ibans": [PAYER_IBAN], "names": ["G. CORP HOLDING"]}
    status, problem = await post(api, f"/v1/matches/{proposal['allocation_id']}/accept")
    assert status == 422 and "is applied, not proposed" in problem["detail"]


async def test_a_rejected_pair_is_not_proposed_again(api: Api) -> None:
    await load(api, [invoice("INV-8", "99.00")], ("R8", "99.00", "SOMEONE", None))
    [proposal] = (await get(api, "/v1/matches?status=proposed"))["items"]
    status, rejected = await post(api, f"/v1/matches/{proposal['allocation_id']}/reject",
                                  {"reason": "not this customer"})
    assert (status, rejected["status"], rejected["note"]) == (200, "rejected",
                                                              "not this customer")
    status, again = await post(api, "/v1/reconcile")
    assert (status, again["payments"]) == (200, 1)
    assert (await get(api, "/v1/matches?status=proposed"))["items"] == []


async def test_undo_takes_back_one_instalment_and_leaves_the_other(api: Api) -> None:
    await load(api, [invoice("INV-9", "300.00")],
               ("RA", "100.00", "GLOBEX CORPORATION", "INV-9 part 1"),
               ("RB", "120.00", "GLOBEX CORPORATION", "INV-9 part 2"))
    assert (await get(api, "/v1/invoices/INV-9"))["open_amount"] == "80.00"
    applied = (await get(api, "/v1/matches?invoice_id=INV-9&status=applied"))["items"]
    assert len(applied) == 2
    first = next(a for a in applied if a["payment_key"] == "RA")
    status, problem = await post(api, f"/v1/matches/{first['allocation_id']}/undo", {})
    assert status == 400 and "reason" in problem["detail"]
    status, undone = await post(api, f"/v1/matches/{first['allocation_id']}/undo",
                                {"reason": "bounced"})
    assert (status, undone["status"], undone["undo_reason"]) == (200, "undone", "bounced")
    after = await get(api, "/v1/invoices/INV-9")
    assert (after["open_amount"], after["status"]) == ("180.00", "partially_paid")
    still = (await get(api, "/v1/matches?invoice_id=INV-9&status=applied"))["items"]
    assert [a["payment_key"] for a in still] == ["RB"]


async def test_a_manual_split_over_two_invoices(api: Api) -> None:
    await load(api, [invoice("INV-21", "60.00"), invoice("INV-22", "40.00")],
               ("RS", "100.00", None, "two invoices"))
    transaction = (await get(api, "/v1/transactions"))["items"][0]
    body = {"account_id": transaction["account_id"], "entry_id": transaction["entry_id"],
            "allocations": [{"invoice_id": "INV-21", "amount": "60.00"},
                            {"invoice_id": "INV-22", "amount": "50.00"}]}
    status, problem = await post(api, "/v1/matches", body)
    assert status == 422 and "left" in problem["detail"]
    body["allocations"][1]["amount"] = "40.00"
    body["note"] = "two invoices, one transfer: 分两张发票"
    status, made = await post(api, "/v1/matches", body)
    assert status == 201 and [m["decision"] for m in made["items"]] == ["manual", "manual"]
    assert [m["note"] for m in made["items"]] == [body["note"]] * 2
    for invoice_id in ("INV-21", "INV-22"):
        assert (await get(api, f"/v1/invoices/{invoice_id}"))["status"] == "paid"


@pytest.mark.parametrize("role", [Role.CRM, Role.AUDITOR, Role.COMPLIANCE])
async def test_only_treasury_and_admin_decide(api: Api, role: Role) -> None:
    status, _ = await post(api, "/v1/matches/1/accept", role=role)
    assert status == 403


async def test_two_reconcilers_at_once_never_allocate_an_invoice_twice(api: Api) -> None:
    await api.client.put("/v1/invoices", json=[invoice("INV-30", "500.00")],
                         headers=api.auth(Role.CRM))
    conn = await asyncpg.connect(api.database_url)
    try:  # store the payments without letting the API reconcile them
        await ingest(conn, statement(("X1", "500.00", "GLOBEX CORPORATION", "INV-30"),
                                     ("X2", "500.00", "GLOBEX CORPORATION", "INV-30")),
                     source="twice.xml")
        others = [await asyncpg.connect(api.database_url) for _ in range(2)]
        results = await asyncio.gather(*(reconcile(c, "default") for c in others))
        for other in others:
            await other.close()
        assert sum(r.auto for r in results) == 1
        settled = await conn.fetchval(
            "SELECT settled_amount FROM invoices WHERE invoice_id = 'INV-30'")
        assert settled == Decimal("500.00")
    finally:
        await conn.close()
