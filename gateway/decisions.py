"""People's decisions: accept, reject, manual allocation and split, undo.

Each runs in one transaction and records who decided. A confirmed allocation teaches the
engine the payer's IBAN and name (``gateway.store.learned``, apart from what the CRM sends);
undoing it takes back what it taught, and the undone pair is never allocated automatically
again. The engine's own passes are in ``gateway.reconcile``.

A decision never overpays an invoice unless the person insists (``allow_overpayment``):
a manual allocation of more than an invoice's open amount (to one already paid, say), or
the acceptance of a proposal made when the invoice had more open than it has now (paid
meanwhile), is refused with ``OverpaymentError`` and nothing is stored. The check is made
on the invoice row as updated, so it holds against decisions taken at the same moment.

Each decision appends its audit entry (``actor``: the API key deciding; without one, the
person named by ``by``) as the last step of its transaction, after every row lock, so the
tenant's audit lock is never held while waiting for another lock.

Locks are taken in the order every writer takes them (``gateway.reconcile`` lists it): the
payment (a manual allocation), the allocation decided or the payment's proposals, the
invoices in id order, their event lanes. A reconcile pass locks the payments it stores
before any invoice and checks them again under its locks, so a pass and a decision wait
for each other, never in a cycle, and the later one sees what the earlier one committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from gateway import events, outbox
from gateway.reconcile_apply import invoice_event
from gateway.store import allocations as store
from gateway.store import audit, transactions
from gateway.store import failures as failure_store
from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from gateway.store import reconcile_work as work
from parsers.iban import normalize_iban
from parsers.jsonl import decimal_text


class DecisionError(ValueError):
    """A decision that cannot be taken (wrong state, amounts that do not fit)."""


@dataclass(frozen=True, slots=True)
class Overpaid:
    """An invoice a decision would overpay: what it had open before, what the decision
    takes off it."""

    invoice_id: str
    currency: str
    open_amount: Decimal
    taking: Decimal

    def public(self) -> dict[str, str]:
        return {"invoice_id": self.invoice_id, "currency": self.currency,
                "open_amount": decimal_text(self.open_amount),
                "allocating": decimal_text(self.taking),
                "overpaid_by": decimal_text(self.taking - self.open_amount)}

    def sentence(self) -> str:
        figures = self.public()
        opened, currency = self.open_amount, self.currency
        if opened > 0:
            state = f"invoice {self.invoice_id} has {figures['open_amount']} {currency} open"
        elif opened == 0:
            state = f"invoice {self.invoice_id} is paid (0 {currency} open)"
        else:
            state = (f"invoice {self.invoice_id} is overpaid already (by "
                     f"{decimal_text(-opened)} {currency})")
        return (f"{state}: allocating {figures['allocating']} {currency} to it would overpay "
                f"it by {figures['overpaid_by']} {currency}")


class OverpaymentError(DecisionError):
    """The decision would overpay invoices and the request did not say
    ``allow_overpayment``; nothing was stored."""

    def __init__(self, overpaid: list[Overpaid]) -> None:
        self.overpaid = overpaid
        super().__init__(
            "; ".join(o.sentence() for o in overpaid) + ". Nothing was allocated. To "
            "allocate it anyway, send the same request with \"allow_overpayment\": true.")


async def _apply(conn: asyncpg.Connection, tenant: str,
                 row: asyncpg.Record) -> asyncpg.Record | None:
    """Apply an allocation to its invoice, report it, and learn the payer; return the
    invoice as it is now (its row locked until the transaction ends)."""
    invoice = await invoice_store.add_settled(conn, tenant, row["invoice_id"], row["settles"])
    payment = await transactions.payment(conn, tenant, row["account_id"], row["entry_id"])
    if payment is None or invoice is None:
        return invoice
    event = invoice_event(invoice, row, payment)
    if event is not None:
        await outbox.emit(conn, tenant, [event])
    await learned_store.learn(conn, tenant, row["allocation_id"], invoice["customer_id"],
                              iban=normalize_iban(payment["counterparty_account"]),
                              name=payment["counterparty_name"])
    return invoice


async def accept(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
                 allow_overpayment: bool = False,
                 actor: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Apply a proposal. One made when the invoice had more open than it has now (another
    payment settled it meanwhile) would overpay it: refused unless ``allow_overpayment``.
    A proposal that overpays by design (``settlement`` overpaid: the payer paid more than
    was open) needs only what it allocates to be open still."""
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="proposed")
        await store.decide(conn, tenant, allocation_id, status="applied", by=by, note=None)
        invoice = await _apply(conn, tenant, row)
        if invoice is not None and not allow_overpayment:
            before = _open_before(invoice, row["settles"])
            needed = row["amount"] if row["settlement"] == "overpaid" else row["settles"]
            if before < needed:
                raise OverpaymentError([Overpaid(row["invoice_id"], invoice["currency"],
                                                 before, needed)])
        await _audit(conn, tenant, "allocation.accepted", row, "applied", by=by, actor=actor,
                     allow_overpayment=allow_overpayment)
        return await _public(conn, tenant, allocation_id)


async def reject(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
                 note: str | None, actor: Mapping[str, str] | None = None) -> dict[str, Any]:
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="proposed")
        await store.decide(conn, tenant, allocation_id, status="rejected", by=by, note=note)
        # Matched again without the rejected invoice, by the workers.
        await work.hand_back(conn, tenant, [(row["account_id"], row["entry_id"])])
        await _audit(conn, tenant, "allocation.rejected", row, "rejected", by=by, actor=actor,
                     note=note)
        return await _public(conn, tenant, allocation_id)


async def undo(conn: asyncpg.Connection, tenant: str, allocation_id: int, *, by: str,
               note: str, actor: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Take back one applied allocation; the invoice's other allocations stay as they are.

    Who applied it stays recorded beside who undid it; what it taught about the payer is
    unlearned (what another live decision taught too stays); the pair is never allocated
    automatically again.
    """
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="applied")
        await store.undo(conn, tenant, allocation_id, by=by, reason=note)
        await learned_store.unlearn(conn, tenant, allocation_id)
        # Matched again by the workers: never to this invoice automatically.
        await work.hand_back(conn, tenant, [(row["account_id"], row["entry_id"])])
        invoice = await invoice_store.add_settled(conn, tenant, row["invoice_id"],
                                                  -row["settles"])
        if invoice is not None:
            await outbox.emit(conn, tenant, [outbox.NewEvent(
                "allocation.reversed", events.invoice_lane(row["invoice_id"]), {
                    **events.invoice_fields(invoice), "allocation_id": allocation_id,
                    "allocation_amount": decimal_text(row["amount"]), "reason": note,
                    "by": by})])
        await _audit(conn, tenant, "allocation.undone", row, "undone", by=by, actor=actor,
                     note=note)
        return await _public(conn, tenant, allocation_id)


async def allocate_manually(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                            entry_id: str, parts: list[tuple[str, Decimal]], by: str,
                            note: str | None, allow_overpayment: bool = False,
                            actor: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """A person's allocation of one payment to one or several invoices (a split).

    Amounts are in each invoice's currency, which must be the payment's (FX splits are
    left to the engine). The parts may not exceed what the payment has left, nor (unless
    ``allow_overpayment``) what each invoice has open; proposals waiting for this payment
    are rejected, replaced by this decision.
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
            if amount <= 0:
                raise DecisionError(f"the amount for invoice {invoice_id} must be more than "
                                    f"zero, got {amount}")
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
        if note is not None:
            await store.annotate(conn, tenant, ids, note)
        made = [await _locked(conn, tenant, i, expect="applied") for i in ids]
        after: dict[str, asyncpg.Record] = {}
        # Invoices in id order, whatever the order sent: two splits naming the same
        # invoices in opposite orders never deadlock.
        for row in sorted(made, key=lambda r: (r["invoice_id"], r["allocation_id"])):
            invoice = await _apply(conn, tenant, row)
            if invoice is not None:
                after[row["invoice_id"]] = invoice
        if not allow_overpayment:
            _refuse_overpaying(parts, after)
        # A person allocated it: a failure of the engine's pass on it is resolved too.
        await failure_store.resolve(conn, tenant, [(account_id, entry_id)])
        for row in made:
            await _audit(conn, tenant, "allocation.manual", row, None, by=by, actor=actor,
                         note=note, allow_overpayment=allow_overpayment)
        return [store.public(row) for row in made]


def _refuse_overpaying(parts: list[tuple[str, Decimal]],
                       after: dict[str, asyncpg.Record]) -> None:
    """``OverpaymentError`` naming every invoice the parts left overpaid (the caller's
    transaction then stores nothing)."""
    taking: dict[str, Decimal] = {}
    for invoice_id, amount in parts:
        taking[invoice_id] = taking.get(invoice_id, Decimal(0)) + amount
    overpaid = [Overpaid(invoice_id, after[invoice_id]["currency"], before, total)
                for invoice_id, total in taking.items() if invoice_id in after
                and (before := _open_before(after[invoice_id], total)) < total]
    if overpaid:
        raise OverpaymentError(overpaid)


def _open_before(invoice: asyncpg.Record, settled: Decimal) -> Decimal:
    """The invoice's open amount before ``settled`` more was counted as settled: the
    smaller of what the CRM says is open and what allocations left (as the table's
    ``open_amount``). Not the open amount now plus ``settled``: when the CRM's figure is
    the smaller (0: paid some other way), the open amount does not move at all."""
    crm_open: Decimal = invoice["crm_open_amount"]
    left: Decimal = invoice["amount"] - (invoice["settled_amount"] - settled)
    return min(crm_open, left)


async def _audit(conn: asyncpg.Connection, tenant: str, action: str, row: asyncpg.Record,
                 status: str | None, *, by: str, actor: Mapping[str, str] | None,
                 **details: Any) -> None:
    """The decision's audit entry: the allocation as it was (``row``) and its new status
    (None: ``row`` is the new allocation, made by the decision). The note is the person's
    free text, so only a reference to it is kept."""
    state = {"status": row["status"], "invoice_id": row["invoice_id"],
             "account_id": row["account_id"], "entry_id": row["entry_id"],
             "amount": row["amount"], "currency": row["currency"],
             "settles": row["settles"]}
    if "note" in details:
        details["note"] = audit.reference(details["note"])
    await audit.append(
        conn, tenant, actor=actor if actor is not None else audit.user_actor(by),
        action=action, object_type="allocation", object_id=row["allocation_id"],
        before=None if status is None else state,
        after={**state, **details} if status is None else {**state, "status": status,
                                                           **details})


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
