"""One matching engine per tenant, kept between passes and brought up to date from what
changed in the database, with the tenant's unmatched payments indexed beside it so that a
change re-matches only the payments it could affect.

**The engine.** Each pass asks for the tenant's engine. The invoices' versions (the ``xmin``
of each invoice row and its customer's row: the transaction that last wrote them) are
compared with those the engine holds: only invoices written since are loaded again and put
into the engine (``Engine.put_invoices``; ``remove_invoices`` for those gone). Customers and
what people's decisions taught about them carry one version for the tenant: when it
changes they are loaded again and the changed ones put. Versions are read before the rows,
so a row written in between is loaded in its newer state and loaded once more next time:
never older than the database. A pass's own writes are seen the same way; if its
transaction rolls back, the versions differ from the committed rows next time and those rows
are loaded again.

**Passes with nothing changed** (an import, say) skip that read of every invoice's version.
Each pass records its transaction as the tenant's last (``reconcile_work.begin_pass``,
migration 0013) and is told the one before. When that one was made with this engine
(``passed``) and no change is queued, nothing but that pass's own writes changed the
invoices and customers since: the CRM and people queue every change in the transaction that
makes it (migration 0010), only a pass takes a change off the queue, and every pass records
itself. Only the invoices that pass allocated to are read again (``candidates``). A pass by
anyone else, or one of ours that rolled back, leaves another transaction recorded: the
next pass reads every version as above.

**The unmatched payments** (those a pass looked at that hold no allocation) are kept in a
``matching.pending.PendingIndex`` over the engine. Every change put into the engine is
handed to it at once, and the payments it says could now match differently are collected
until the next pass takes them (``candidates``). Which payments are unmatched is read from
the database on every pass (their keys only): those that left (allocated by a person or
another worker) are dropped from the index; those another process left unmatched are
added, and matched again once, since that process may have seen other invoices than this
engine holds.

The index is asked which payments a change could affect each matched alone
(``batch=False``): those that name a changed invoice, pay its customer, or fit its amount.
Followed through a whole batch (one payment taking an invoice another would have taken,
and so on), round amounts link most unmatched payments together and the answer is nearly
all of them, which would make every change a full pass. What is given up: a payment whose
result would change only through such a chain stays unmatched until a full pass (``POST
/v1/reconcile``, ``recon-gateway import``) looks at it; never a wrong allocation, since
what is allocated is decided by the engine as always.

A worker that starts knows nothing of what changed before: if changes are queued for the
tenant, its first pass matches every unmatched payment again; later passes only what the
index returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from gateway.store import reconcile_work as work
from matching.book import Change
from matching.engine import Engine
from matching.invoices import Customer, Invoice
from matching.model import Payment
from matching.pending import PendingIndex

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Sequence[Invoice], Sequence[Customer]], Engine]


# What a kept tenant costs, roughly (docs/benchmarks.md, "A worker's memory"): per invoice
# in the engine (1.1 GB for 139,000), and per unmatched payment (the payment, its index
# entry and packed keys: 3.4 KB; what the engine caches of its texts and payer: 5.7 KB).
INVOICE_BYTES = 8_000
PENDING_BYTES = 9_000


@dataclass(slots=True)
class _Kept:
    engine: Engine
    versions: dict[str, str]
    customers: dict[str, Customer]
    customers_version: str
    pending: PendingIndex | None = None
    affected: set[str] = field(default_factory=set)           # to match again
    everything: bool = False                                  # every unmatched payment
    last_pass: str | None = None    # the transaction of the last pass made with it
    written: set[str] = field(default_factory=set)  # invoices its passes wrote since a scan

    def size(self) -> int:
        """Bytes it holds, estimated (``INVOICE_BYTES``, ``PENDING_BYTES``)."""
        pending = len(self.pending) if self.pending is not None else 0
        return INVOICE_BYTES * len(self.versions) + PENDING_BYTES * pending


class Engines:
    """The engines of the tenants a worker has matched for lately: ``keep`` at most, and
    while more than one is kept, no more than ``keep_bytes`` in all by their estimated
    size (the least recently used are dropped first; one is always kept, however big)."""

    def __init__(self, factory: EngineFactory = Engine, *, keep: int = 32,
                 keep_bytes: int = 2 << 30) -> None:
        self._factory = factory
        self._keep = keep
        self._keep_bytes = keep_bytes
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.builds = 0      # engines built from nothing (for tests and metrics)
        self.updates = 0     # engines brought up to date from changed rows

    def __contains__(self, tenant: object) -> bool:
        return tenant in self._kept

    async def current(self, conn: asyncpg.Connection, tenant: str) -> Engine:
        """The tenant's engine as its invoices and customers are now in the database."""
        kept = await self._current(conn, tenant)
        return kept.engine

    def provider(self, tenant: str) -> Callable[[asyncpg.Connection, str], Awaitable[Engine]]:
        """The engine provider of a pass that has just asked for its ``candidates`` (which
        brought the engine up to date): the first round takes the engine as it is, later
        rounds (matching payments whose invoices changed meanwhile) bring it up to date."""
        first = True

        async def provide(conn: asyncpg.Connection, asked: str) -> Engine:
            nonlocal first
            kept = self._kept.get(asked)
            if first and asked == tenant and kept is not None:
                first = False
                return kept.engine
            return await self.current(conn, asked)
        return provide

    async def candidates(self, conn: asyncpg.Connection, tenant: str, *, changed: bool,
                         last_pass: str | None = None) -> list[tuple[int, Payment]]:
        """The unmatched payments to match again in this pass: those the changes put into
        the engine since the last pass could affect, and those another process left
        unmatched. ``changed``: changes are queued (a new engine then takes all).
        ``last_pass``: the tenant's pass before this one (``reconcile_work.begin_pass``):
        when it was made with this engine (``passed``) and no change is queued, only the
        invoices that pass wrote are read again, not every invoice's version."""
        fresh = tenant not in self._kept
        kept = self._kept.get(tenant)
        if (kept is not None and not changed and last_pass is not None
                and kept.last_pass == last_pass):
            kept.last_pass = None   # until this pass is through (``passed``): if it fails,
            await self._reread(conn, tenant, kept)  # its later rounds may have put rows it
            self._kept.move_to_end(tenant)          # wrote, and then rolled back
        else:
            if kept is not None:
                kept.last_pass = None
            kept = await self._current(conn, tenant)
        keys = await work.unmatched_keys(conn, tenant)
        if kept.pending is None:
            payments = await work.payments(conn, tenant, sorted(keys))
            kept.pending = await asyncio.to_thread(PendingIndex, kept.engine,
                                                   [p for _, p in payments])
            kept.everything = fresh and changed
            arrived: set[str] = set()
        else:
            pending = kept.pending
            pending.remove([k for k in pending if k not in keys])
            arrived = {k for k in keys if k not in pending}
            await asyncio.to_thread(self._index, kept,
                                    await work.payments(conn, tenant, sorted(arrived)))
        held = kept.pending
        wanted = set(held) if kept.everything else {
            k for k in kept.affected | arrived if k in held}
        kept.affected, kept.everything = set(), False
        self._trim()
        return [(_account(k), held.payment(k)) for k in sorted(wanted)]

    async def unmatched(self, tenant: str, payments: Sequence[tuple[int, Payment]]) -> None:
        """Payments this pass left unmatched, matched against this engine: index them
        (the next pass does not match them again unless a change reaches them)."""
        kept = self._kept.get(tenant)
        if kept is not None and kept.pending is not None and payments:
            await asyncio.to_thread(self._index, kept, payments)

    @staticmethod
    def _index(kept: _Kept, payments: Sequence[tuple[int, Payment]]) -> None:
        if kept.pending is None or not payments:
            return
        kept.pending.add(p for _, p in payments)

    def passed(self, tenant: str, this_pass: str, written: set[str]) -> None:
        """A pass made with the tenant's engine (``this_pass``: its transaction) wrote
        ``written``; read those again before the next pass if nothing else changed."""
        kept = self._kept.get(tenant)
        if kept is not None:
            kept.last_pass = this_pass
            kept.written |= written

    def forget(self, tenant: str) -> None:
        self._kept.pop(tenant, None)

    async def _reread(self, conn: asyncpg.Connection, tenant: str, kept: _Kept) -> None:
        """Bring the engine up to date with the invoices its own passes wrote (nothing else
        changed since its last pass: ``candidates``)."""
        ids = sorted(kept.written)
        if not ids:
            return
        versions = await invoice_store.versions(conn, tenant, ids)
        changed = [i for i in ids if kept.versions.get(i) != versions.get(i)]
        if changed:
            fresh = await invoice_store.load_some(conn, tenant, changed)
            gone = sorted(set(changed) - {i.invoice_id for i in fresh})
            await asyncio.to_thread(self._put_invoices, kept, fresh, gone)
            for invoice_id in changed:
                if invoice_id in versions:
                    kept.versions[invoice_id] = versions[invoice_id]
                else:
                    kept.versions.pop(invoice_id, None)
            self.updates += 1
        kept.written = set()   # only once read: a pass failing before reads them next time

    async def _current(self, conn: asyncpg.Connection, tenant: str) -> _Kept:
        versions = await invoice_store.versions(conn, tenant)
        customers_version = await invoice_store.customers_version(conn, tenant)
        kept = self._kept.get(tenant)
        if kept is None:
            kept = await self._build(conn, tenant, versions, customers_version)
        else:
            if kept.customers_version != customers_version:
                await self._put_customers(conn, tenant, kept)
                kept.customers_version = customers_version
            changed = [i for i, v in versions.items() if kept.versions.get(i) != v]
            removed = [i for i in kept.versions if i not in versions]
            if changed or removed:
                fresh = await invoice_store.load_some(conn, tenant, changed)
                # An invoice changed and then deleted before it was loaded is gone too.
                gone = sorted(set(removed) | (set(changed) - {i.invoice_id for i in fresh}))
                await asyncio.to_thread(self._put_invoices, kept, fresh, gone)
                self.updates += 1
            kept.versions = versions
            kept.written = set()   # read with every other invoice
        self._kept[tenant] = kept
        self._kept.move_to_end(tenant)
        self._trim()
        return kept

    def _trim(self) -> None:
        """Drop the least recently used engines beyond ``keep`` or ``keep_bytes``."""
        while len(self._kept) > self._keep or (
                len(self._kept) > 1
                and sum(k.size() for k in self._kept.values()) > self._keep_bytes):
            self._kept.popitem(last=False)

    async def _build(self, conn: asyncpg.Connection, tenant: str, versions: dict[str, str],
                     customers_version: str) -> _Kept:
        customers = await _customers(conn, tenant)
        invoices = await invoice_store.load_all(conn, tenant)
        self.builds += 1
        logger.info("built the matching engine of a tenant: %d invoices, %d customers",
                    len(invoices), len(customers))
        engine = await asyncio.to_thread(self._factory, invoices, customers)
        return _Kept(engine, versions,
                     {c.customer_id: c for c in customers}, customers_version)

    async def _put_customers(self, conn: asyncpg.Connection, tenant: str,
                             kept: _Kept) -> None:
        now = {c.customer_id: c for c in await _customers(conn, tenant)}
        changed = [c for i, c in now.items() if kept.customers.get(i) != c]
        gone = sorted(set(kept.customers) - set(now))
        await asyncio.to_thread(self._put_customers_now, kept, changed, gone)
        kept.customers = now
        self.updates += 1

    # The changes are put into the engine and its index in a thread (they can take seconds
    # of CPU with a large pool): the event loop of a serve running workers keeps answering.

    def _put_invoices(self, kept: _Kept, fresh: list[Invoice], gone: list[str]) -> None:
        self._changed(kept, kept.engine.put_invoices(fresh))
        if gone:
            self._changed(kept, kept.engine.remove_invoices(gone))

    def _put_customers_now(self, kept: _Kept, changed: list[Customer],
                           gone: list[str]) -> None:
        if changed:
            self._changed(kept, kept.engine.put_customers(changed))
        if gone:
            self._changed(kept, kept.engine.remove_customers(gone))

    @staticmethod
    def _changed(kept: _Kept, change: Change) -> None:
        """Hand a change just made to the engine to the index, at once, as it requires."""
        if kept.pending is not None and change:
            kept.affected |= kept.pending.affected(change, batch=False)


def _account(key: str) -> int:
    """The account of a payment key (``store.transactions.payment_key``)."""
    return int(key.split("/", 1)[0])


async def _customers(conn: asyncpg.Connection, tenant: str) -> list[Customer]:
    return learned_store.with_learned(await invoice_store.load_customers(conn, tenant),
                                      await learned_store.of_customers(conn, tenant))
