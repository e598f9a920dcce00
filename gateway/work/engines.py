"""One matching engine per tenant, kept between passes and brought up to date from what
changed in the database instead of being rebuilt for every pass.

Each pass asks for the tenant's engine. The invoices' versions (the ``xmin`` of each
invoice row and its customer's row: the transaction that last wrote them) are compared
with those the engine was built from: only invoices written since are loaded again, and
the engine is updated with them (or built again from what it holds when it cannot be
updated). A change of any customer, or of what people's decisions taught about one,
builds the engine again. Versions are read before the rows, so a row written in between is
loaded in its newer state and loaded once more next time: never older than the database.
A pass's own writes are seen the same way; if its transaction rolls back, the versions
differ from the committed rows next time and those rows are loaded again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from gateway.store import invoices as invoice_store
from gateway.store import learned as learned_store
from matching.engine import Engine
from matching.invoices import Customer, Invoice

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Sequence[Invoice], Sequence[Customer]], Engine]


@dataclass(slots=True)
class _Kept:
    engine: Engine
    invoices: dict[str, Invoice]
    versions: dict[str, str]
    customers: list[Customer]
    customers_version: str


class Engines:
    """The engines of the tenants a worker has matched for lately (``keep`` at most)."""

    def __init__(self, factory: EngineFactory = Engine, *, keep: int = 32) -> None:
        self._factory = factory
        self._keep = keep
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.builds = 0      # engines built from nothing or again (for tests and metrics)
        self.updates = 0     # engines brought up to date from changed invoices

    async def current(self, conn: asyncpg.Connection, tenant: str) -> Engine:
        """The tenant's engine as its invoices and customers are now in the database."""
        versions = await invoice_store.versions(conn, tenant)
        customers_version = await invoice_store.customers_version(conn, tenant)
        kept = self._kept.get(tenant)
        if kept is None or kept.customers_version != customers_version:
            kept = await self._build(conn, tenant, versions, customers_version)
        else:
            changed = [i for i, v in versions.items() if kept.versions.get(i) != v]
            removed = [i for i in kept.versions if i not in versions]
            if changed or removed:
                fresh = await invoice_store.load_some(conn, tenant, changed)
                self._update(kept, changed, fresh, removed)
                kept.versions = versions
        self._kept[tenant] = kept
        self._kept.move_to_end(tenant)
        while len(self._kept) > self._keep:
            self._kept.popitem(last=False)
        return kept.engine

    def forget(self, tenant: str) -> None:
        self._kept.pop(tenant, None)

    async def _build(self, conn: asyncpg.Connection, tenant: str, versions: dict[str, str],
                     customers_version: str) -> _Kept:
        customers = learned_store.with_learned(
            await invoice_store.load_customers(conn, tenant),
            await learned_store.of_customers(conn, tenant))
        invoices = {i.invoice_id: i for i in await invoice_store.load_all(conn, tenant)}
        self.builds += 1
        logger.info("built the matching engine of a tenant: %d invoices, %d customers",
                    len(invoices), len(customers))
        return _Kept(self._factory(list(invoices.values()), customers), invoices, versions,
                     customers, customers_version)

    def _update(self, kept: _Kept, changed: list[str], fresh: list[Invoice],
                removed: list[str]) -> None:
        # An invoice changed and then deleted before it was loaded is gone as well.
        gone = sorted(set(removed) | (set(changed) - {i.invoice_id for i in fresh}))
        for invoice_id in gone:
            kept.invoices.pop(invoice_id, None)
        for invoice in fresh:
            kept.invoices[invoice.invoice_id] = invoice
        update = getattr(kept.engine, "update_invoices", None)
        if update is not None:
            update(fresh, gone)
        else:
            kept.engine = self._factory(
                [kept.invoices[i] for i in sorted(kept.invoices)], kept.customers)
        self.updates += 1
