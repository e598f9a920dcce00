"""People's decisions: accept, reject, manual allocation and split, undo.

Each runs in one transaction and records who decided. A confirmed allocation teaches the
engine the payer's IBAN and name (``gateway.store.learned``, apart from what the CRM sends);
undoing it takes back what it taught, and the undone pair is never allocated automatically
again. The engine's own passes are in ``gateway.reconcile``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from gateway import events, outbox
from gateway.reconcile import invoice_event
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from gateway.store import transactions
from parsers.iban import normalize_iban
from parsers.jsonl import decimal_text


class DecisionError(ValueError):
    """A decision that cannot be taken (wrong state, amounts that do not fit)."""


async def _apply(conn: asyncpg.Connection, tenant: str, row: asyncpg.Record) -> None:
    """Apply an allocation to its invoice, report it, and learn the payer."""
    invoice = await invoice_store.add_settled(conn, tenant, row["invoice_id"], row["settles"])
    payment = await transactions.payment(conn, tenant, row["account_id"], row["entry_id"])
    if payment is None or invoice is None:
        return
    event = invoice_event(invoice, row, payment)
    if event is not None:
        await outbox.emit(conn, tenant, [event])
    await learned_store.learn(conn, tenant, row["allocation_id"], invoice["customer_id"],
                              iban=normalize_iban(payment["counterparty_account"]),
                              name=payment["counterparty_name"])


async def accept(conn: asyncpg.Connection, tenant: str, allocation_id: int, *,
                 by: str) -> dict[str, Any]:
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="proposed")
        await store.decide(conn, tenant, allocation_id, status="applied", by=by, note=None)
        await _apply(conn, tenant, row)
        return await _public(conn, tenant, allocation_id)


async def reject(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
                 note: str | None) -> dict[str, Any]:
    async with conn.transaction():
        await _locked(conn, tenant, allocation_id, expect="proposed")
        await store.decide(conn, tenant, allocation_id, status="rejected", by=by, note=note)
        return await _public(conn, tenant, allocation_id)


async def undo(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
               note: str) -> dict[str, Any]:
    """Take back one applied allocation; the invoice's other allocations stay as they are.

    Who applied it stays recorded beside who undid it; what it taught about the payer is
    unlearned (what another live decision taught too stays); the pair is never allocated
    automatically again.
    """
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="applied")
        await store.undo(conn, tenant, allocation_id, by=by, reason=note)
        await learned_store.unlearn(conn, tenant, allocation_id)
        invoice = await invoice_store.add_settled(conn, tenant, row["invoice_id"],
                                                  -row["settles"])
        if invoice is not None:
            await outbox.emit(conn, tenant, [outbox.NewEvent(
                "allocation.reversed", events.invoice_lane(row["invoice_id"]), {
                    **events.invoice_fields(invoice), "allocation_id": allocation_id,
                    "allocation_amount": decimal_text(row["amount"]), "reason": note,
                    "by": by})])
        return await _public(conn, tenant, allocation_id)


async def allocate_manually(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                            entry_id: str, parts: list[tuple[str, Decimal]], by: str,
                            note: str | None) -> list[dict[str, Any]]:
    """A person's allocation of one payment to one or several invoices (a split).

    Amounts are in each invoice's currency, which must be the payment's (FX splits are
    left to the engine). The parts may not exceed what the payment has left; proposals
    waiting for this payment are rejected, replaced by this decision.
    """
    async with conn.transaction():
        payment = await conn.fetchrow(
            "SELECT amount, currency, bank_reference FROM transactions WHERE tenant_id = $1"
            " AND account_id = $2 AND entry_id = $3 AND amount > 0 FOR UPDATE",
            tenant, account_id, entry_id)
        if payment is None:
            raise DecisionError(f"no incoming payment {entry_id} on account {account_id}")
        active = await store.active_for_entry(conn, tenant, account_id, entry_id)
        for proposal in (a for a in active if a["status"] == "proposed"):
            await store.decide(conn, tenant, proposal["allocation_id"], status="rejected",
                               by=by, note="replaced by a manual allocation")
        used = sum((a["payment_amount"] for a in active if a["status"] == "applied"),
                   Decimal(0))
        wanted = sum((amount for _, amount in parts), Decimal(0))
        if used + wanted > payment["amount"]:
            raise DecisionError(
                f"the payment has {payment['amount'] - used} {payment['currency']} left, "
                f"the allocation asks for {wanted}")
        rows = []
        for invoice_id, amount in parts:
            invoice = await invoice_store.get(conn, tenant, invoice_id)
            if invoice is None:
                raise DecisionError(f"no invoice {invoice_id!r}")
            if invoice["currency"] != payment["currency"]:
                raise DecisionError(f"invoice {invoice_id} is in {invoice['currency']}, the "
                                    f"payment in {payment['currency']}")
            if invoice["cancelled"]:
                raise DecisionError(f"invoice {invoice_id} is cancelled")
            rows.append(store.NewAllocation(
                account_id=account_id, entry_id=entry_id,
                payment_key=payment["bank_reference"] or entry_id, invoice_id=invoice_id,
                amount=amount, currency=payment["currency"], payment_amount=amount,
                settles=amount, confidence=None, decision="manual", status="applied",
                settlement=None, difference=None, fx_rate=None,
                reasons=[{"code": "manual", "weight": 0, "detail": note or "allocated by hand"}],
                created_by=by))
        ids = await store.insert(conn, tenant, rows)
        made = [await _locked(conn, tenant, i, expect="applied") for i in ids]
        for row in made:
            await _apply(conn, tenant, row)
        # A person allocated it: a failure of the engine's pass on it is resolved too.
        await failure_store.resolve(conn, tenant, [(account_id, entry_id)])
        return [store.public(row) for row in made]


async def _locked(conn: asyncpg.Connection, tenant: str, allocation_id: int, *,
                  expect: str) -> asyncpg.Record:
    row = await store.get(conn, tenant, allocation_id, lock=True)
    if row is None:
        raise LookupError(f"no allocation {allocation_id}")
    if row["status"] != expect:
        raise DecisionError(f"allocation {allocation_id} is {row['status']}, not {expect}")
    return row


async def _public(conn: asyncpg.Connection, tenant: str, allocation_id: int) -> dict[str, Any]:
    row = await store.get(conn, tenant, allocation_id)
    if row is None:
        raise LookupError(f"no allocation {allocation_id}")
    return store.public(row)
