"""Reconciliation in the service: the engine run over what is stored.

An import or an invoice change commits and answers at once (``queued``); the reconcile
workers (``gateway.work``) then match what changed: the payments waiting (new lines, and
those a person's reject or undo handed back) against the open invoices, and the
unallocated payments that changed invoices and customers could settle
(``reconcile_changes``; the queue is ``gateway.store.reconcile_work``). ``reconcile``
matches every unallocated payment at once, for the command line and ``POST
/v1/reconcile``. Automatic allocations are applied at once (the invoice's settled amount
grows, so its open amount and status follow); reviews wait in the queue. One pass at a time
per tenant (an advisory lock), wherever it runs.

A pass never allocates beyond what is open, whatever people (or the CRM) decide while it
runs: it matches without locks, then locks what storing changes, looks again and stores
only what still holds (``gateway.reconcile_apply``). A payment whose invoices changed
meanwhile is matched again against them as they are now, within the pass, for up to
three rounds; one still not stored then stays unallocated for the next pass (``deferred``,
logged). A payment a person allocated meanwhile is left to that decision (``taken``).

Lock order, the same for passes, people's decisions (``gateway.decisions``) and CRM
changes, so that none of them deadlock:

1. the tenant's reconcile lock (passes only: one at a time);
2. payments (``transactions`` rows), in (account, entry) order: a decision locks its one
   payment; a pass locks all of its payments at once, before any invoice
   (``store.allocations.lock_payments``);
3. allocations: a decision locks the one it decides, or the proposals of its payment; a
   pass only inserts new ones;
4. invoices, in id order (code point order): a decision and a CRM batch update theirs in
   that order; a pass locks all of a round's invoices in one statement
   (``store.invoices.lock_for_settling``). Later rounds of a pass wait for no invoice
   (they skip one someone holds), so they cannot close a cycle;
5. event lanes, in sorted order (``gateway.outbox``): an invoice's lane only by whoever
   holds the invoice; a pass emits all its events at its end, in one call;
6. the payment's row in ``reconcile_failures``.

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

import asyncio
import dataclasses
import hashlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gateway import outbox
from gateway.metrics import Metrics
from gateway.reconcile_apply import PassLog, claim, fitting, store_all
from gateway.store import allocations as store
from gateway.store import failures as failure_store
from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from gateway.store import reconcile_work as work
from gateway.store import transactions
from gateway.work.engines import Engines
from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Allocation, Decision, Payment

logger = logging.getLogger(__name__)

# Rounds of matching in a pass: a payment whose invoices changed while the engine matched
# it is matched again, at most this many times in all.
_ROUNDS = 3

EngineFactory = Callable[[Sequence[Invoice], Sequence[Customer]], Engine]
# The engine for a tenant's pass, as its invoices and customers are now in the database.
EngineProvider = Callable[[asyncpg.Connection, str], Awaitable[Engine]]



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
    taken: int = 0        # allocated by a person while the pass ran: left to them
    deferred: int = 0     # their invoices kept changing: left for the next pass
    changes: int = 0      # changed invoices and customers handled (incremental passes)

    def public(self) -> dict[str, Any]:
        return {"payments": self.payments, "auto": self.auto, "review": self.review,
                "unmatched": self.unmatched, "failed": self.failed, "held": self.held,
                "failures": [f.public() for f in self.failures]}


def lock_key(tenant: str) -> int:
    """The tenant's reconcile lock: one pass at a time, wherever it runs."""
    digest = hashlib.sha256(f"reconcile:{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
    """One pass over every unallocated payment of the tenant, now (``engine`` is the seam
    tests use to put in an engine that fails; ``progress`` hears (payments stored, payments
    in the pass) before matching and after each chunk, for the command line's progress
    line). The workers do the same in the background, incrementally
    (``reconcile_changes``); this is for the command line and ``POST /v1/reconcile``."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(tenant))
        await _as_pass(conn)
        await work.begin_pass(conn, tenant)
        taken = await work.changes(conn, tenant, limit=1_000_000)
        pending = await work.unallocated(conn, tenant)
        result, looked, _ = await _pass(conn, tenant, pending, built_by(engine), metrics,
                                        progress)
        await work.mark_matched(conn, tenant, looked)
        await work.done(conn, tenant, taken)
    return result


async def reconcile_changes(conn: asyncpg.Connection, tenant: str, *,
                            engines: Engines | None = None, batch: int = 5_000,
                            metrics: Metrics | None = None) -> ReconcileResult | None:
    """One incremental pass: the payments waiting (at most ``batch``, oldest first), and
    the unallocated payments that the invoices and customers changed since could settle.
    ``engines`` keeps the tenant's engine and its index of unmatched payments between
    passes and says which those are; without it the engine is built for the pass and every
    unallocated payment is matched again when changes are queued. None when another pass
    holds the tenant (it will see this work too)."""
    async with conn.transaction():
        got = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(tenant))
        if not got:
            return None
        await _as_pass(conn)
        last_pass, this_pass = await work.begin_pass(conn, tenant)
        await work.retry_due(conn, tenant)
        pending = await work.waiting(conn, tenant, limit=batch)
        taken = await work.changes(conn, tenant, limit=batch)
        if engines is not None:
            again = await engines.candidates(conn, tenant, changed=bool(taken),
                                             last_pass=last_pass)
            provide: EngineProvider = engines.provider(tenant)
        else:
            again = await work.unmatched(conn, tenant) if taken else []
            provide = built_by(Engine)
        seen = {p.key for _, p in pending}
        pending += [(a, p) for a, p in again if p.key not in seen]
        result, looked, written = await _pass(conn, tenant, pending, provide, metrics, None)
        await work.mark_matched(conn, tenant, looked)
        await work.done(conn, tenant, taken)
        if engines is not None:
            engines.passed(tenant, this_pass, written)
        if engines is not None and pending:
            keys = [transactions.payment_key(a, e) for a, e in looked]
            left = set(keys) - await work.allocated_keys(conn, tenant, keys)
            await engines.unmatched(tenant, [(a, p) for a, p in pending if p.key in left])
    return dataclasses.replace(result, changes=len(taken))


async def _as_pass(conn: asyncpg.Connection) -> None:
    """The pass's own invoice updates are not changes to match again (migration 0010)."""
    await conn.execute("SELECT set_config('recon.reconcile_pass', 'on', true)")


def built_by(factory: EngineFactory) -> EngineProvider:
    """An engine provider that loads the tenant's invoices and customers and builds anew."""
    async def provide(conn: asyncpg.Connection, tenant: str) -> Engine:
        customers = learned_store.with_learned(
            await invoice_store.load_customers(conn, tenant),
            await learned_store.of_customers(conn, tenant))
        return factory(await invoice_store.load_all(conn, tenant), customers)
    return provide


async def _pass(conn: asyncpg.Connection, tenant: str, pending: list[tuple[int, Payment]],
                provide: EngineProvider, metrics: Metrics | None,
                progress: Callable[[int, int], None] | None
                ) -> tuple[ReconcileResult, list[tuple[int, str]], set[str]]:
    """Match ``pending`` and store what holds, under the tenant's lock; the result, the
    payments looked at (all but those deferred to the next pass) and the invoices it may
    have written."""
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
    looked = [(accounts[p.key], p.entry_id) for _, p in pending]
    if not payments:
        return ReconcileResult(0, 0, 0, 0, held=waiting), looked, set()
    done = PassLog(tenant, accounts, len(payments), progress)
    todo = payments
    for round_ in range(_ROUNDS):
        todo = await _round(conn, done, todo, provide, first=round_ == 0)
        if not todo:
            break
    await outbox.emit(conn, tenant, done.events)
    # The basis of a failure is the state this pass leaves (its own allocations
    # included): the next pass retries it only if something changed after.
    stamp = await failure_store.basis_stamp(conn, tenant) if done.failed else ""
    failures = [await _record_failure(conn, tenant, *case, stamp, metrics)
                for case in done.failed]
    await failure_store.resolve(conn, tenant, done.stored)
    counted = done.counted
    result = ReconcileResult(len(payments), counted[Decision.AUTO], counted[Decision.REVIEW],
                             counted[Decision.UNMATCHED], len(failures), waiting,
                             tuple(failures), taken=done.taken, deferred=len(todo))
    logger.info("reconciled %d payments: %d auto, %d review, %d unmatched, %d failed, "
                "%d held back, %d allocated by people meanwhile, %d deferred to the next "
                "pass", result.payments, result.auto, result.review, result.unmatched,
                result.failed, result.held, result.taken, result.deferred)
    deferred = {p.key for p in todo}
    return result, [key for key, (_, p) in zip(looked, pending, strict=True)
                    if p.key not in deferred], done.written


async def _round(conn: asyncpg.Connection, done: PassLog, payments: list[Payment],
                 provide: EngineProvider, *, first: bool) -> list[Payment]:
    """Match ``payments`` against the invoices as they are now, lock what storing the
    results changes, and store what still holds; return the payments to match again.

    The first round waits for its locks; it takes every lock on payments the pass takes,
    so later rounds find their payments as they left them, and skip an invoice someone
    else holds rather than wait for it.
    """
    tenant = done.tenant
    matcher = await provide(conn, tenant)
    if first and done.progress is not None:
        done.progress(0, done.size)
    rejected = frozenset(await store.rejected_pairs(conn, tenant))
    undone = frozenset(await store.undone_pairs(conn, tenant))
    # In a thread: matching a batch takes seconds of CPU, and the event loop (the API of a
    # serve that runs workers) keeps answering meanwhile.
    results, broken = await asyncio.to_thread(_run_engine, matcher, payments, rejected,
                                              undone)
    done.failed += [(done.key(p), p, "engine", broken[p.key]) for p in payments
                    if p.key in broken]
    by_payment: dict[str, list[Allocation]] = {}
    for allocation in results:
        by_payment.setdefault(allocation.payment_key, []).append(allocation)
    healthy = [p for p in payments if p.key not in broken]
    changed: list[Payment] = []
    if first:
        healthy, changed = await claim(conn, done, healthy, rejected, undone)
    storing = await fitting(conn, tenant, healthy, by_payment, wait=first)
    await store_all(conn, done, storing, by_payment)
    again = {p.key for p in changed} | ({p.key for p in healthy} - {p.key for p in storing})
    return [p for p in payments if p.key in again]


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


async def queued(conn: asyncpg.Connection, tenant: str, *, lines: int = 0,
                 changes: int = 0) -> dict[str, Any]:
    """What an import or an invoice change answers about matching: what it queued for the
    workers (woken now: the booked lines an import added or confirmed, of which the
    incoming ones are matched; the invoices or customers a change wrote), and where to
    follow the queue (``GET /v1/reconcile``)."""
    await work.notify(conn, tenant)
    return {"status": "queued", "lines": lines, "changes": changes, "href": "/v1/reconcile"}
