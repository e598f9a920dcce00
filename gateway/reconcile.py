"""Reconciliation in the service: the engine run over what is stored, and people's decisions.

``reconcile`` runs after each import and each invoice change: every incoming line with no
proposed or applied allocation is matched against the tenant's invoices. Automatic
allocations are applied at once (the invoice's settled amount grows, so its open amount
and status follow); reviews wait in the queue. One run at a time per tenant (an advisory
lock), so two processes never allocate the same invoice twice.

One bad payment never stops the others: results are stored under savepoints (a chunk of
payments under one; a chunk that fails is stored again payment by payment), and an engine
that fails on some payments is run again without them. A payment
that fails is rolled back alone, recorded in ``reconcile_failures`` (shown on it in the API,
counted in metrics, logged with ids only) and left alone by later passes until it or the
tenant's invoices and customers change, or its backoff runs out (``gateway.store.failures``).

People's decisions (accept, reject, manual allocation and split, undo) are in
``gateway.decisions``.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import asyncpg

from gateway import events, outbox
from gateway.metrics import Metrics
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from gateway.store import transactions
from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Decision, Payment, Settlement

logger = logging.getLogger(__name__)

ENGINE = "engine"

# Payments stored under one savepoint; only a chunk that fails is redone one by one (a
# savepoint per payment would make a large pass thousands of subtransactions).
_CHUNK = 100

EngineFactory = Callable[[Sequence[Invoice], Sequence[Customer]], Engine]


@dataclass(frozen=True, slots=True)
class Failure:
    """A payment whose reconciliation failed in this pass."""

    account_id: int
    entry_id: str
    stage: str          # "engine" or "apply"
    error: str          # our description: exception type, SQL state or code location
    attempts: int

    def public(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "entry_id": self.entry_id, "stage": self.stage,
                "error": self.error, "attempts": self.attempts}


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    payments: int
    auto: int
    review: int
    unmatched: int
    failed: int = 0
    held: int = 0         # failed before, unchanged since, backoff running: not tried
    failures: tuple[Failure, ...] = field(default=())

    def public(self) -> dict[str, Any]:
        return {"payments": self.payments, "auto": self.auto, "review": self.review,
                "unmatched": self.unmatched, "failed": self.failed, "held": self.held,
                "failures": [f.public() for f in self.failures]}


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


def describe(exc: BaseException) -> str:
    """What failed, without the data it failed on: SQL state and constraint for the
    database, else the exception's type and where in our code it was raised (messages may
    quote names, IBANs or amounts, so they are never kept)."""
    if isinstance(exc, asyncpg.PostgresError):
        constraint = getattr(exc, "constraint_name", None)
        return (f"{type(exc).__name__} (SQL state {exc.sqlstate})"
                + (f" on {constraint}" if constraint else ""))
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                  for f in reversed(frames) if "/site-packages/" not in f.filename), "?")
    return f"{type(exc).__name__} at {where}"


def _basis(payment: Payment, stamp: str) -> str:
    """What a failure happened on: the payment as the engine saw it and the tenant's stamp."""
    return hashlib.sha256(f"{payment!r}|{stamp}".encode()).hexdigest()


def _run_engine(engine: Engine, payments: list[Payment], excluded: frozenset[tuple[str, str]],
                never_auto: frozenset[tuple[str, str]]
                ) -> tuple[list[Allocation], dict[str, BaseException]]:
    """The engine's allocations, and the payments it fails on (by key) with the exception.

    The engine allocates a batch as a whole; when it fails, each payment is tried alone to
    find those it fails on, and the batch runs again without them.
    """
    try:
        return engine.match(payments, excluded, never_auto), {}
    except Exception:  # which payment failed is found below
        logger.warning("the engine failed on a batch of %d payments: trying each alone",
                       len(payments))
    failed: dict[str, BaseException] = {}
    for payment in payments:
        try:
            engine.match([payment], excluded, never_auto)
        except Exception as exc:  # recorded as this payment's failure
            failed[payment.key] = exc
    rest = [p for p in payments if p.key not in failed]
    try:
        return engine.match(rest, excluded, never_auto), failed
    except Exception as exc:  # fails only together: all are recorded
        return [], {**failed, **{p.key: exc for p in rest}}


async def reconcile(conn: asyncpg.Connection, tenant: str, *, metrics: Metrics | None = None,
                    engine: EngineFactory = Engine,
                    progress: Callable[[int, int], None] | None = None) -> ReconcileResult:
    """One pass over the tenant's unallocated payments (``engine`` is the seam tests use to
    put in an engine that fails; ``progress`` hears (payments stored, payments in the pass)
    before matching and after each chunk, for the command line's progress line)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(tenant))
        pending = await transactions.unallocated_payments(conn, tenant)
        held = await failure_store.held(conn, tenant)
        stamp = await failure_store.basis_stamp(conn, tenant) if held else ""
        accounts = {payment.key: account_id for account_id, payment in pending}
        payments, waiting = [], 0
        for account_id, payment in pending:
            before = held.get((account_id, payment.entry_id))
            if before is not None and before[1] and before[0] == _basis(payment, stamp):
                waiting += 1
                continue
            payments.append(payment)
        if not payments:
            return ReconcileResult(0, 0, 0, 0, held=waiting)
        customers = learned_store.with_learned(
            await invoice_store.load_customers(conn, tenant),
            await learned_store.of_customers(conn, tenant))
        matcher = engine(await invoice_store.load_all(conn, tenant), customers)
        if progress is not None:
            progress(0, len(payments))
        results, broken = _run_engine(
            matcher, payments, frozenset(await store.rejected_pairs(conn, tenant)),
            frozenset(await store.undone_pairs(conn, tenant)))
        by_payment: dict[str, list[Allocation]] = {}
        for allocation in results:
            by_payment.setdefault(allocation.payment_key, []).append(allocation)
        failed = [((accounts[p.key], p.entry_id), p, "engine", broken[p.key])
                  for p in payments if p.key in broken]
        done: list[failure_store.Key] = []
        counted = dict.fromkeys(Decision, 0)
        healthy = [p for p in payments if p.key not in broken]
        for start in range(0, len(healthy), _CHUNK):
            chunk = healthy[start:start + _CHUNK]
            try:  # a savepoint for the chunk: the usual case, few subtransactions
                async with conn.transaction():
                    for payment in chunk:
                        await _store_result(conn, tenant, accounts[payment.key], payment,
                                            by_payment.get(payment.key, []))
            except (asyncpg.InterfaceError, OSError):
                raise  # the connection is gone: no payment's fault
            except Exception:  # the chunk was rolled back: payment by payment, below
                stored = await _store_each(conn, tenant, chunk, accounts, by_payment, failed)
            else:
                stored = chunk
            for payment in stored:
                done.append((accounts[payment.key], payment.entry_id))
                allocations = by_payment.get(payment.key, [])
                counted[allocations[0].decision if allocations else Decision.UNMATCHED] += 1
            if progress is not None:
                progress(min(start + _CHUNK, len(healthy)), len(payments))
        # The basis of a failure is the state this pass leaves (its own allocations
        # included): the next pass retries it only if something changed after.
        stamp = await failure_store.basis_stamp(conn, tenant) if failed else ""
        failures = [await _record_failure(conn, tenant, *case, stamp, metrics)
                    for case in failed]
        await failure_store.resolve(conn, tenant, done)
    result = ReconcileResult(len(payments), counted[Decision.AUTO], counted[Decision.REVIEW],
                             counted[Decision.UNMATCHED], len(failures), waiting,
                             tuple(failures))
    logger.info("reconciled %d payments: %d auto, %d review, %d unmatched, %d failed, "
                "%d held back", result.payments, result.auto, result.review, result.unmatched,
                result.failed, result.held)
    return result


async def _store_each(conn: asyncpg.Connection, tenant: str, chunk: list[Payment],
                      accounts: dict[str, int], by_payment: dict[str, list[Allocation]],
                      failed: list[tuple[failure_store.Key, Payment, str, BaseException]]
                      ) -> list[Payment]:
    """Store a chunk's payments each in a savepoint of its own; the ones that fail are
    added to ``failed``. Returns those stored."""
    stored = []
    for payment in chunk:
        key = (accounts[payment.key], payment.entry_id)
        try:
            async with conn.transaction():  # a savepoint: this payment alone
                await _store_result(conn, tenant, key[0], payment,
                                    by_payment.get(payment.key, []))
        except (asyncpg.InterfaceError, OSError):
            raise
        except Exception as exc:  # isolated, recorded by the caller
            failed.append((key, payment, "apply", exc))
        else:
            stored.append(payment)
    return stored


async def _record_failure(conn: asyncpg.Connection, tenant: str, key: failure_store.Key,
                          payment: Payment, stage: str, problem: BaseException, stamp: str,
                          metrics: Metrics | None) -> Failure:
    error = describe(problem)
    attempts = await failure_store.record(conn, tenant, key, stage=stage, error=error,
                                          basis=_basis(payment, stamp))
    logger.warning("reconciliation of payment %s/%s failed in %s (%s), attempt %d",
                   key[0], key[1], stage, type(problem).__name__, attempts)
    if metrics is not None:
        metrics.reconcile_failures.labels(stage).inc()
    return Failure(key[0], key[1], stage, error, attempts)


async def _store_result(conn: asyncpg.Connection, tenant: str, account_id: int,
                        payment: Payment, allocations: list[Allocation]) -> None:
    """Store one payment's allocations, apply the automatic ones and report them."""
    matched = [(a, a.invoice_id, a.amount) for a in allocations
               if a.invoice_id is not None and a.amount is not None]
    if not matched:
        found = await transactions.payments(conn, tenant, [(account_id, payment.entry_id)])
        await outbox.emit(conn, tenant, [outbox.NewEvent(
            "payment.unmatched", events.account_lane(row["account_id"]),
            events.payment_fields(row),
            dedup_key=f"payment.unmatched:{row['account_id']}:{row['entry_id']}")
            for row in found])
        return
    shares = _payment_shares(payment.amount.amount, [amount.amount for _, _, amount in matched])
    news = []
    for (allocation, invoice_id, amount), share in zip(matched, shares, strict=True):
        applied = allocation.decision is Decision.AUTO
        settles = _settles(amount.amount, allocation)
        row = store.NewAllocation(
            account_id=account_id, entry_id=payment.entry_id,
            payment_key=payment.bank_reference or payment.entry_id,
            invoice_id=invoice_id, amount=amount.amount,
            currency=amount.currency, payment_amount=share, settles=settles,
            confidence=allocation.confidence, decision=allocation.decision.value,
            status="applied" if applied else "proposed",
            settlement=allocation.settlement.value if allocation.settlement else None,
            difference=allocation.difference.amount if allocation.difference else None,
            fx_rate=allocation.fx_rate,
            reasons=[{"code": r.code, "weight": r.weight, "detail": r.detail}
                     for r in allocation.reasons],
            created_by=ENGINE,
        )
        [allocation_id] = await store.insert(conn, tenant, [row])
        if not applied:
            continue
        invoice = await invoice_store.add_settled(conn, tenant, invoice_id, settles)
        if invoice is not None:
            news.append(invoice_event(
                invoice, {"allocation_id": allocation_id, "amount": row.amount,
                          "currency": row.currency, "decision": row.decision},
                {"account_id": account_id, "entry_id": payment.entry_id,
                 "amount": payment.amount.amount, "currency": payment.amount.currency,
                 "booking_date": payment.booking_date}))
    await outbox.emit(conn, tenant, [n for n in news if n is not None])


async def reconcile_after_change(conn: asyncpg.Connection, tenant: str, *,
                                 metrics: Metrics | None = None) -> dict[str, Any]:
    """Reconcile after an import or an invoice change, for the response of that request.

    The change itself is already committed; a failure of the whole pass (a failure of one
    payment never is one) is logged and reported, not raised, so the client does not take
    a stored import for a failed one.
    """
    try:
        result = await reconcile(conn, tenant, metrics=metrics)
    except Exception as exc:  # the change is stored; the pass is retried
        logger.exception("reconciliation failed after a change")
        return {"error": f"reconciliation failed ({type(exc).__name__}); "
                         f"POST /v1/reconcile retries it"}
    return result.public()


def _payment_shares(paid: Decimal, amounts: list[Decimal]) -> list[Decimal]:
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
