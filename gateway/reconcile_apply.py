"""Storing a reconcile pass's results so that they hold whatever people decided meanwhile.

The engine matches what the pass loaded, without locks (people's decisions are not held
up while it thinks); before anything is stored, what storing changes is locked and looked
at again (``gateway.reconcile`` says in which order, and why that never deadlocks):

- the payments (``claim``): one a person allocated since is theirs, left alone; one whose
  history changed otherwise (allocated and undone, a proposal rejected) is matched again
  with that history;
- the invoices the automatic allocations settle (``fitting``): a payment is stored only if
  each of its invoices still has open what its allocation needs (what it settles, or for
  a deliberate overpayment what it allocates), counted after the payments before it, and
  is not cancelled; else it is matched again against the invoices as they are now.

The update of each invoice carries the same guard (``store.invoices.settle``), and the
rows are written a chunk at a time in a few statements, not one per allocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import asyncpg

from gateway import events, outbox
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from gateway.store import invoices as invoice_store
from gateway.store import transactions
from matching.model import Allocation, Decision, Payment, Settlement
from parsers.money import Money

ENGINE = "engine"

# Payments stored under one savepoint; only a chunk that fails is redone one by one (a
# savepoint per payment would make a large pass thousands of subtransactions).
CHUNK = 100


@dataclass
class PassLog:
    """What a pass has done so far, over its rounds."""

    tenant: str
    accounts: dict[str, int]            # account of each payment, by payment key
    size: int                           # payments in the pass
    progress: Callable[[int, int], None] | None
    counted: dict[Decision, int] = field(default_factory=lambda: dict.fromkeys(Decision, 0))
    stored: list[failure_store.Key] = field(default_factory=list)
    failed: list[tuple[failure_store.Key, Payment, str, BaseException]] = field(
        default_factory=list)
    events: list[outbox.NewEvent] = field(default_factory=list)
    handled: int = 0                    # payments stored or failed while storing
    written: set[str] = field(default_factory=set)  # invoices allocated to (maybe settled)
    taken: int = 0                      # allocated by a person while the pass ran

    def key(self, payment: Payment) -> failure_store.Key:
        return self.accounts[payment.key], payment.entry_id


async def claim(conn: asyncpg.Connection, done: PassLog, payments: list[Payment],
                rejected: frozenset[tuple[str, str]], undone: frozenset[tuple[str, str]]
                ) -> tuple[list[Payment], list[Payment]]:
    """Lock the payments against people's decisions, for the rest of the pass; return
    those unchanged since they were loaded, and those to match again: their history
    changed otherwise than by an allocation of their own (a person allocated one and
    undid it, say), so the engine's rejected and undone pairs were not theirs. A payment
    a person allocated meanwhile is theirs: counted in ``taken``, left alone."""
    history = await store.lock_payments(conn, done.tenant, [done.key(p) for p in payments])
    unchanged, again = [], []
    for payment in payments:
        past = history.get(done.key(payment), [])
        if any(status in store.ACTIVE for _, status in past):
            done.taken += 1
        elif all((payment.key, invoice_id) in (rejected if status == "rejected" else undone)
                 for invoice_id, status in past):
            unchanged.append(payment)
        else:
            again.append(payment)
    return unchanged, again


def settled_by(amount: Decimal, allocation: Allocation) -> Decimal:
    """What an allocation of ``amount`` takes off the invoice's open amount: with a
    shortfall written off, or with the surplus of an overpayment (the invoice then shows as
    overpaid)."""
    if allocation.settlement in (Settlement.SHORT, Settlement.OVERPAID) \
            and allocation.difference is not None:
        return amount + allocation.difference.amount
    return amount


def _applied(allocations: list[Allocation]) -> list[tuple[Allocation, str, Money]]:
    """The automatic allocations among a payment's, with invoice and amount."""
    return [(a, a.invoice_id, a.amount) for a in allocations
            if a.decision is Decision.AUTO and a.invoice_id is not None
            and a.amount is not None]


def _needs(amount: Decimal, settlement: str | None, settles: Decimal) -> Decimal:
    """What an allocation needs its invoice to have open: what it settles, or for a
    deliberate overpayment (the payer paid more than was open) what it allocates."""
    return amount if settlement == Settlement.OVERPAID.value else settles


async def fitting(conn: asyncpg.Connection, tenant: str, payments: list[Payment],
                  by_payment: dict[str, list[Allocation]], *, wait: bool) -> list[Payment]:
    """The payments whose automatic allocations their invoices, locked now and read as
    they are, still take: each payment counted against what those before it took, all of
    its allocations or none. An invoice changed since the engine saw it (a person
    allocated to it, the CRM marked it paid or cancelled it) may no longer take it."""
    wanted = {invoice_id for p in payments
              for _, invoice_id, _ in _applied(by_payment.get(p.key, []))}
    invoices = await invoice_store.lock_for_settling(conn, tenant, sorted(wanted), wait=wait)
    left: dict[str, Decimal] = {i: row["open_amount"] for i, row in invoices.items()
                                if not row["cancelled"]}
    taken = []
    for payment in payments:
        after: dict[str, Decimal] = {}
        for allocation, invoice_id, amount in _applied(by_payment.get(payment.key, [])):
            settles = settled_by(amount.amount, allocation)
            settlement = allocation.settlement.value if allocation.settlement else None
            open_amount = after.get(invoice_id, left.get(invoice_id))
            if open_amount is None or open_amount < _needs(amount.amount, settlement, settles) \
                    or invoices[invoice_id]["currency"] != amount.currency:
                break
            after[invoice_id] = open_amount - settles
        else:
            left.update(after)
            taken.append(payment)
    return taken


async def store_all(conn: asyncpg.Connection, done: PassLog, payments: list[Payment],
                    by_payment: dict[str, list[Allocation]]) -> None:
    """Store the payments' results in chunks, each under a savepoint."""
    for start in range(0, len(payments), CHUNK):
        chunk = payments[start:start + CHUNK]
        try:  # a savepoint for the chunk: the usual case, few subtransactions
            async with conn.transaction():
                events = await _store_results(conn, done, chunk, by_payment)
        except (asyncpg.InterfaceError, OSError):
            raise  # the connection is gone: no payment's fault
        except Exception:  # the chunk was rolled back: payment by payment, below
            stored, events = await _store_each(conn, done, chunk, by_payment)
        else:
            stored = chunk
        done.events += events
        for payment in stored:
            done.stored.append(done.key(payment))
            allocations = by_payment.get(payment.key, [])
            done.counted[allocations[0].decision if allocations else Decision.UNMATCHED] += 1
        done.handled += len(chunk)
        if done.progress is not None:
            done.progress(done.handled, done.size)


async def _store_each(conn: asyncpg.Connection, done: PassLog, chunk: list[Payment],
                      by_payment: dict[str, list[Allocation]]
                      ) -> tuple[list[Payment], list[outbox.NewEvent]]:
    """Store a chunk's payments each in a savepoint of its own; the ones that fail are
    recorded as failed. Returns those stored and their events."""
    stored, events = [], []
    for payment in chunk:
        try:
            async with conn.transaction():  # a savepoint: this payment alone
                events += await _store_results(conn, done, [payment], by_payment)
        except (asyncpg.InterfaceError, OSError):
            raise
        except Exception as exc:  # isolated, recorded by the caller
            done.failed.append((done.key(payment), payment, "apply", exc))
        else:
            stored.append(payment)
    return stored, events


async def _store_results(conn: asyncpg.Connection, done: PassLog, payments: list[Payment],
                         by_payment: dict[str, list[Allocation]]) -> list[outbox.NewEvent]:
    """Store the payments' allocations and apply the automatic ones, in a few statements
    for all; return the events that report them (emitted at the end of the pass)."""
    tenant = done.tenant
    rows: list[store.NewAllocation] = []
    owners: list[Payment] = []
    unmatched: list[failure_store.Key] = []
    for payment in payments:
        matched = [(a, a.invoice_id, a.amount) for a in by_payment.get(payment.key, [])
                   if a.invoice_id is not None and a.amount is not None]
        if not matched:
            unmatched.append(done.key(payment))
            continue
        shares = payment_shares(payment.amount.amount,
                                [amount.amount for _, _, amount in matched])
        for (allocation, invoice_id, amount), share in zip(matched, shares, strict=True):
            rows.append(store.NewAllocation(
                account_id=done.accounts[payment.key], entry_id=payment.entry_id,
                payment_key=payment.bank_reference or payment.entry_id,
                invoice_id=invoice_id, amount=amount.amount,
                currency=amount.currency, payment_amount=share,
                settles=settled_by(amount.amount, allocation),
                confidence=allocation.confidence, decision=allocation.decision.value,
                status="applied" if allocation.decision is Decision.AUTO else "proposed",
                settlement=allocation.settlement.value if allocation.settlement else None,
                difference=allocation.difference.amount if allocation.difference else None,
                fx_rate=allocation.fx_rate,
                reasons=[{"code": r.code, "weight": r.weight, "detail": r.detail}
                         for r in allocation.reasons],
                created_by=ENGINE))
            owners.append(payment)
    done.written.update(row.invoice_id for row in rows)   # even if rolled back: reread
    ids = await store.insert(conn, tenant, rows)
    applied = [(i, row, payment) for i, row, payment in zip(ids, rows, owners, strict=True)
               if row.status == "applied"]
    invoices = await _settle(conn, tenant, [row for _, row, _ in applied])
    news = [invoice_event(
        invoice, {"allocation_id": allocation_id, "amount": row.amount,
                  "currency": row.currency, "decision": row.decision},
        {"account_id": row.account_id, "entry_id": payment.entry_id,
         "amount": payment.amount.amount, "currency": payment.amount.currency,
         "booking_date": payment.booking_date})
        for (allocation_id, row, payment), invoice in zip(applied, invoices, strict=True)]
    found = await transactions.payments(conn, tenant, unmatched) if unmatched else []
    news += [outbox.NewEvent(
        "payment.unmatched", events.account_lane(row["account_id"]),
        events.payment_fields(row),
        dedup_key=f"payment.unmatched:{row['account_id']}:{row['entry_id']}")
        for row in found]
    return [n for n in news if n is not None]


async def _settle(conn: asyncpg.Connection, tenant: str,
                  rows: list[store.NewAllocation]) -> list[asyncpg.Record]:
    """Count each applied allocation against its invoice, in order; return each invoice as
    its allocation left it (events say the status each one caused). One statement per
    turn: the first allocation of every invoice, then the second of those with two..."""
    turns: list[list[int]] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows):
        rank = seen.get(row.invoice_id, 0)
        seen[row.invoice_id] = rank + 1
        if rank == len(turns):
            turns.append([])
        turns[rank].append(n)
    after: dict[int, asyncpg.Record] = {}
    for numbers in turns:
        changed = await invoice_store.settle(conn, tenant, [
            (rows[n].invoice_id, rows[n].currency,
             _needs(rows[n].amount, rows[n].settlement, rows[n].settles), rows[n].settles)
            for n in numbers])
        if len(changed) != len(numbers):  # checked under the lock: a fault of ours
            raise RuntimeError("an invoice locked by the pass no longer takes its allocation")
        after.update((n, changed[rows[n].invoice_id]) for n in numbers)
    return [after[n] for n in range(len(rows))]


def payment_shares(paid: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """The part of the payment (in its own currency and minor units) each allocation uses,
    in proportion to the allocated amounts and adding up to the payment exactly: shares
    rounded down, the minor units left over to the largest remainders."""
    if len(amounts) == 1:
        return [paid]
    quantum = Decimal(1).scaleb(paid.as_tuple().exponent)  # type: ignore[arg-type]
    total = sum(amounts, Decimal(0))
    exact = [paid * a / total for a in amounts]
    shares = [e.quantize(quantum, rounding=ROUND_FLOOR) for e in exact]
    left = int((paid - sum(shares, Decimal(0))) / quantum)
    for n in sorted(range(len(amounts)), key=lambda n: (shares[n] - exact[n], n))[:left]:
        shares[n] += quantum
    for n in range(len(shares)):  # each uses some of the payment, where it has enough units
        largest = max(range(len(shares)), key=lambda k: (shares[k], -k))
        if shares[n] == 0 and shares[largest] > quantum:
            shares[n], shares[largest] = quantum, shares[largest] - quantum
    return shares


def invoice_event(invoice: asyncpg.Record, allocation: Any,
                  payment: Any) -> outbox.NewEvent | None:
    """invoice.paid, .partially_paid or .overpaid, after an allocation was applied."""
    kind = events.invoice_event_type(invoice["status"])
    if kind is None:
        return None
    return outbox.NewEvent(kind, events.invoice_lane(invoice["invoice_id"]), {
        **events.invoice_fields(invoice),
        "allocation": events.allocation_fields(allocation, payment)})
