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
from collections.abc import Callable, Sequence
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


@dataclass(slots=True)
class _Kept:
    engine: Engine
    versions: dict[str, str]
    customers: dict[str, Customer]
    customers_version: str
    pending: PendingIndex | None = None
    accounts: dict[str, int] = field(default_factory=dict)   # payment key: account id
    payments: dict[str, Payment] = field(default_factory=dict)  # what the index holds
    affected: set[str] = field(default_factory=set)           # to match again
    everything: bool = False                                  # every unmatched payment


class Engines:
    """The engines of the tenants a worker has matched for lately (``keep`` at most)."""

    def __init__(self, factory: EngineFactory = Engine, *, keep: int = 32) -> None:
        self._factory = factory
        self._keep = keep
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.builds = 0      # engines built from nothing (for tests and metrics)
        self.updates = 0     # engines brought up to date from changed rows

    async def current(self, conn: asyncpg.Connection, tenant: str) -> Engine:
        """The tenant's engine as its invoices and customers are now in the database."""
        kept = await self._current(conn, tenant)
        return kept.engine

    async def candidates(self, conn: asyncpg.Connection, tenant: str, *,
                         changed: bool) -> list[tuple[int, Payment]]:
        """The unmatched payments to match again in this pass: those the changes put into
        the engine since the last pass could affect, and those another process left
        unmatched. ``changed``: changes are queued (a new engine then takes all)."""
        fresh = tenant not in self._kept
        kept = await self._current(conn, tenant)
        keys = await work.unmatched_keys(conn, tenant)
        if kept.pending is None:
            payments = await work.payments(conn, tenant, sorted(keys))
            kept.pending = await asyncio.to_thread(PendingIndex, kept.engine,
                                                   [p for _, p in payments])
            kept.accounts = {p.key: a for a, p in payments}
            kept.payments = {p.key: p for _, p in payments}
            kept.everything = fresh and changed
            arrived: set[str] = set()
        else:
            gone = set(kept.accounts) - set(keys)
            kept.pending.remove(gone)
            for key in gone:
                del kept.accounts[key], kept.payments[key]
            arrived = keys - set(kept.accounts)
            await asyncio.to_thread(self._index, kept,
                                    await work.payments(conn, tenant, sorted(arrived)))
        wanted = set(kept.accounts) if kept.everything else (
            (kept.affected | arrived) & set(kept.accounts))
        kept.affected, kept.everything = set(), False
        return [(kept.accounts[k], kept.payments[k]) for k in sorted(wanted)]

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
        kept.accounts.update({p.key: a for a, p in payments})
        kept.payments.update({p.key: p for _, p in payments})

    def forget(self, tenant: str) -> None:
        self._kept.pop(tenant, None)

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
        self._kept[tenant] = kept
        self._kept.move_to_end(tenant)
        while len(self._kept) > self._keep:
            self._kept.popitem(last=False)
        return kept

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


async def _customers(conn: asyncpg.Connection, tenant: str) -> list[Customer]:
    return learned_store.with_learned(await invoice_store.load_customers(conn, tenant),
                                      await learned_store.of_customers(conn, tenant))
