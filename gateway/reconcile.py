"""Reconciliation in the service: the engine run over what is stored, and people's decisions.

``reconcile`` runs after each import and each invoice change: every incoming line with no
proposed or applied allocation is matched against the tenant's invoices. Automatic
allocations are applied at once (the invoice's settled amount grows, so its open amount
and status follow); reviews wait in the queue. One run at a time per tenant (an advisory
lock), so two processes never allocate the same invoice twice.

People's decisions (accept, reject, manual allocation and split, undo) go through the
functions below, in one transaction each, recording who decided. A confirmed allocation
teaches the engine: the payer's IBAN and name become the customer's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from gateway import events, outbox
from gateway.store import allocations as store
from gateway.store import invoices as invoice_store
from gateway.store import transactions
from matching.engine import Engine
from matching.model import Allocation, Decision, Payment, Settlement
from parsers.iban import normalize_iban
from parsers.jsonl import decimal_text

logger = logging.getLogger(__name__)

ENGINE = "engine"


class DecisionError(ValueError):
    """A decision that cannot be taken (wrong state, amounts that do not fit)."""


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    payments: int
    auto: int
    review: int
    unmatched: int


def _lock_key(tenant: str) -> int:
    digest = hashlib.sha256(f"reconcile:{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _settles(amount: Decimal, allocation: Allocation) -> Decimal:
    """What an allocation of ``amount`` takes off the invoice's open amount: with a
    shortfall written off, or with the surplus of an overpayment (the invoice then shows as
    overpaid)."""
    if allocation.settlement in (Settlement.SHORT, Settlement.OVERPAID) \
            and allocation.difference is not None:
        return amount + allocation.difference.amount
    return amount


async def reconcile(conn: asyncpg.Connection, tenant: str) -> ReconcileResult:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(tenant))
        pending = await transactions.unallocated_payments(conn, tenant)
        if not pending:
            return ReconcileResult(0, 0, 0, 0)
        accounts = {payment.key: account_id for account_id, payment in pending}
        payments = [payment for _, payment in pending]
        engine = Engine(await invoice_store.load_all(conn, tenant),
                        await invoice_store.load_customers(conn, tenant))
        excluded = frozenset(await store.rejected_pairs(conn, tenant))
        results = engine.match(payments, excluded)
        by_key = {p.key: p for p in payments}
        rows = []
        applied_now: list[tuple[int, Payment, asyncpg.Record]] = []  # row, payment, invoice
        for allocation in results:
            if allocation.invoice_id is None or allocation.amount is None:
                continue
            payment = by_key[allocation.payment_key]
            applied = allocation.decision is Decision.AUTO
            share = _payment_share(allocation.amount.amount, allocation.payment_key,
                                   payment.amount.amount, results)
            rows.append(store.NewAllocation(
                account_id=accounts[payment.key], entry_id=payment.entry_id,
                payment_key=payment.bank_reference or payment.entry_id,
                invoice_id=allocation.invoice_id, amount=allocation.amount.amount,
                currency=allocation.amount.currency, payment_amount=share,
                settles=_settles(allocation.amount.amount, allocation),
                confidence=allocation.confidence,
                decision=allocation.decision.value,
                status="applied" if applied else "proposed",
                settlement=allocation.settlement.value if allocation.settlement else None,
                difference=allocation.difference.amount if allocation.difference else None,
                fx_rate=allocation.fx_rate,
                reasons=[{"code": r.code, "weight": r.weight, "detail": r.detail}
                         for r in allocation.reasons],
                created_by=ENGINE,
            ))
            if applied:
                invoice = await invoice_store.add_settled(
                    conn, tenant, allocation.invoice_id,
                    _settles(allocation.amount.amount, allocation))
                if invoice is not None:
                    applied_now.append((len(rows) - 1, payment, invoice))
        ids = await store.insert(conn, tenant, rows)
        news = []
        for index, payment, invoice in applied_now:
            row = rows[index]
            news.append(_invoice_event(
                invoice, {"allocation_id": ids[index], "amount": row.amount,
                          "currency": row.currency, "decision": row.decision},
                {"account_id": row.account_id, "entry_id": row.entry_id,
                 "amount": payment.amount.amount, "currency": payment.amount.currency,
                 "booking_date": payment.booking_date}))
        unmatched = [(accounts[a.payment_key], by_key[a.payment_key].entry_id)
                     for a in results if a.decision is Decision.UNMATCHED]
        for found in await transactions.payments(conn, tenant, unmatched):
            news.append(outbox.NewEvent(
                "payment.unmatched", events.account_lane(found["account_id"]),
                events.payment_fields(found),
                dedup_key=f"payment.unmatched:{found['account_id']}:{found['entry_id']}"))
        await outbox.emit(conn, tenant, [n for n in news if n is not None])
    counted = {d: len({a.payment_key for a in results if a.decision is d}) for d in Decision}
    result = ReconcileResult(len(payments), counted[Decision.AUTO], counted[Decision.REVIEW],
                             counted[Decision.UNMATCHED])
    logger.info("reconciled %d payments: %d auto, %d review, %d unmatched", result.payments,
                result.auto, result.review, result.unmatched)
    return result


async def reconcile_after_change(conn: asyncpg.Connection, tenant: str) -> dict[str, Any]:
    """Reconcile after an import or an invoice change, for the response of that request.

    The change itself is already committed; a failure here is logged and reported, not
    raised, so the client does not take a stored import for a failed one.
    """
    try:
        result = await reconcile(conn, tenant)
    except (asyncpg.PostgresError, OSError) as exc:
        logger.exception("reconciliation failed after a change")
        return {"error": f"reconciliation failed ({type(exc).__name__}); "
                         f"POST /v1/reconcile retries it"}
    return {"payments": result.payments, "auto": result.auto, "review": result.review,
            "unmatched": result.unmatched}


def _payment_share(amount: Decimal, key: str, paid: Decimal,
                   results: list[Allocation]) -> Decimal:
    """The part of the payment (in its own currency) an allocation of ``amount`` uses."""
    siblings = [a.amount.amount for a in results if a.payment_key == key and a.amount]
    if len(siblings) == 1:
        return paid
    total = sum(siblings, Decimal(0))
    return (paid * amount / total).quantize(paid) if total else paid


def _invoice_event(invoice: asyncpg.Record, allocation: Any,
                   payment: Any) -> outbox.NewEvent | None:
    """invoice.paid, .partially_paid or .overpaid, after an allocation was applied."""
    kind = events.invoice_event_type(invoice["status"])
    if kind is None:
        return None
    return outbox.NewEvent(kind, events.invoice_lane(invoice["invoice_id"]), {
        **events.invoice_fields(invoice),
        "allocation": events.allocation_fields(allocation, payment)})


async def _apply(conn: asyncpg.Connection, tenant: str, row: asyncpg.Record) -> None:
    """Apply an allocation to its invoice, report it, and learn the payer."""
    invoice = await invoice_store.add_settled(conn, tenant, row["invoice_id"], row["settles"])
    payment = await transactions.payment(conn, tenant, row["account_id"], row["entry_id"])
    if payment is None or invoice is None:
        return
    event = _invoice_event(invoice, row, payment)
    if event is not None:
        await outbox.emit(conn, tenant, [event])
    await invoice_store.learn(conn, tenant, invoice["customer_id"],
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
    """Take back one applied allocation; the invoice's other allocations stay as they are."""
    async with conn.transaction():
        row = await _locked(conn, tenant, allocation_id, expect="applied")
        await store.decide(conn, tenant, allocation_id, status="undone", by=by, note=note)
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
