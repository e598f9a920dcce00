"""The reconcile worker: matches what changed, tenant by tenant, until nothing waits.

A worker looks for tenants with work (``gateway.store.reconcile_work.tenants``) and runs an
incremental pass for each (``gateway.reconcile.reconcile_changes``): at most ``batch``
waiting payments and the changed invoices and customers, in one transaction under the
tenant's lock. A tenant another worker holds is skipped (that worker sees the same work).
When a round finds nothing to do, the worker waits for a NOTIFY on ``recon_reconcile`` (an
import, an invoice or customer change, a decision that hands a payment back) or ``poll``
seconds, whichever comes first: the poll also takes up failed payments whose backoff ran
out. A pass that fails as a whole (the database went away) is logged and tried again after
a pause; one bad payment never fails a pass (``gateway.reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from gateway.delivery import DATABASE_ERRORS
from gateway.metrics import Metrics
from gateway.reconcile import ReconcileResult, reconcile_changes
from gateway.store import reconcile_work as work
from gateway.waiting import first
from gateway.work.engines import Engines

logger = logging.getLogger(__name__)

_PAUSE_AFTER_ERROR = 2.0  # seconds, doubling up to a minute while the database is away


class ReconcileWorker:
    """One worker; ``run`` until ``stop`` is set."""

    def __init__(self, pool: asyncpg.Pool, *, batch: int = 5000, poll: float = 5.0,
                 metrics: Metrics | None = None, engines: Engines | None = None) -> None:
        self.pool = pool
        self.batch = batch
        self.poll = poll
        self.metrics = metrics
        self.engines = engines or Engines()
        self._wake = asyncio.Event()
        self.passes = 0

    async def run(self, stop: asyncio.Event) -> None:
        listener: asyncpg.Connection | None = None
        pause = _PAUSE_AFTER_ERROR
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    if listener is not None:
                        await self._unlisten(listener)
                    listener = await self._listen()
                self._wake.clear()
                try:
                    busy = await self._round_unless(stop)
                    pause = _PAUSE_AFTER_ERROR
                except DATABASE_ERRORS as exc:
                    logger.warning("a reconcile round failed (%s): trying again in %.0f s",
                                   type(exc).__name__, pause)
                    await first(stop.wait(), timeout=pause)
                    pause = min(pause * 2, 60.0)
                    continue
                if busy:
                    await asyncio.sleep(0)  # let requests in between batches
                    continue
                await first(stop.wait(), self._wake.wait(), timeout=self.poll)
        finally:
            if listener is not None:
                await self._unlisten(listener)

    async def _round_unless(self, stop: asyncio.Event) -> bool:
        """A round, given up (its transaction rolled back, its work left queued) when
        ``stop`` is set meanwhile: a pass can take minutes, a shutdown should not."""
        round_ = asyncio.ensure_future(self.run_once())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({round_, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not round_.done():  # stopping (or this task cancelled): give the round up
                round_.cancel()
                with contextlib.suppress(asyncio.CancelledError, *DATABASE_ERRORS):
                    await round_
        if round_.cancelled():
            logger.info("a reconcile round was given up to stop: its work stays queued")
            return False
        return round_.result()

    async def run_once(self) -> bool:
        """One round over the tenants with work; whether any pass did something."""
        busy = False
        async with self.pool.acquire() as conn:
            for tenant in await work.tenants(conn):
                result = await reconcile_changes(
                    conn, tenant, engines=self.engines, batch=self.batch,
                    metrics=self.metrics)
                if result is not None:
                    self.passes += 1
                    busy = busy or _did_something(result)
        return busy

    async def drain(self) -> int:
        """Run rounds until nothing is left to do (for the command line and tests); the
        number of rounds that did something."""
        rounds = 0
        while await self.run_once():
            rounds += 1
        return rounds

    async def _listen(self) -> asyncpg.Connection | None:
        """A pool connection listening for work (None while the database is away: polling
        alone goes on)."""
        try:
            listener: asyncpg.Connection = await self.pool.acquire()
        except DATABASE_ERRORS as exc:
            logger.warning("cannot listen for reconcile work (%s): polling",
                           type(exc).__name__)
            return None
        try:
            await listener.add_listener(work.CHANNEL, self._notified)
        except DATABASE_ERRORS as exc:
            logger.warning("cannot listen for reconcile work (%s): polling",
                           type(exc).__name__)
            await self._unlisten(listener)
            return None
        return listener

    async def _unlisten(self, listener: asyncpg.Connection) -> None:
        with contextlib.suppress(*DATABASE_ERRORS):
            await listener.remove_listener(work.CHANNEL, self._notified)
        with contextlib.suppress(asyncpg.InterfaceError, asyncpg.InternalClientError):
            await self.pool.release(listener)

    def _notified(self, *_: Any) -> None:
        self._wake.set()


def _did_something(result: ReconcileResult) -> bool:
    return bool(result.payments or result.held or result.taken or result.changes)
