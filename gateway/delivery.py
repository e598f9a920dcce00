"""The dispatcher: delivers the outbox's deliveries, at least once and in order per lane.

The unit of work is a lane of one subscription (``delivery_lanes``): one attempt in flight
per (subscription, invoice or account). A dispatcher claims due lanes under a lease with
``FOR UPDATE SKIP LOCKED``, sends each lane's first pending deliveries one after another
(each once the one before got through), and records the outcomes in batches. Several
dispatchers, in one process or many, share the work through the database alone; one that
dies leaves its lanes leased until the lease expires, and the next dispatcher delivers
the same event again with the same ``webhook-id``.

Why lanes and not rows: claiming delivery rows with SKIP LOCKED would let two dispatchers
send events n and n+1 of one invoice at once. Claiming the lane, and sending its pending
deliveries in order from one task, cannot.

The SQL, and the lane invariant that keeps a pending delivery from being forgotten, are
in ``store.deliveries``; this module decides what to send, when to retry, and when a
subscription is failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import access_log
from gateway import events as event_types
from gateway.metrics import Metrics
from gateway.outbox import NewEvent, emit
from gateway.settings import Settings, SettingsError
from gateway.store import audit, signing_keys, subscriptions
from gateway.store import deliveries as store
from gateway.store.deliveries import CHANNEL
from gateway.waiting import first
from gateway.webhook_http import SubscriberKeys, TargetChecks, UnsafeTargetError, session
from security.webhooks import SubscriberKeyError, ed25519_signer, envelope, sign

logger = logging.getLogger(__name__)

# What a database call of the dispatcher may raise when the server goes away or a
# connection breaks mid-query (InternalClientError: a connection released while its query
# was still running); the loop logs it and goes on, it never ends the dispatcher.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)

EXCERPT = 1024        # bytes of a subscriber's answer kept in the attempt log
PER_LANE = 16         # events of one lane taken at a claim, sent one after another
MAX_RETRY_AFTER = 86400.0
MIN_RETENTION_DAYS = 30
PRUNE_EVERY = 3600.0  # seconds between prunings of old events
JITTER = 0.2
SECRETS_KEPT = 10_000  # subscriptions' decrypted signing secrets a dispatcher keeps


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float
    lease: float
    schedule: tuple[float, ...]
    retry_floor: float
    warn_after: float
    disable_after: float
    concurrency: int
    allow_private: bool
    jwks_ttl: float
    retention: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        try:
            schedule = tuple(float(x) for x in settings.webhook_retry_schedule.split(","))
        except ValueError:
            raise SettingsError("webhook_retry_schedule must be seconds separated by commas, "
                                f"got {settings.webhook_retry_schedule!r}") from None
        if any(s < 0 for s in schedule):
            raise SettingsError("webhook_retry_schedule: no delay may be negative")
        if settings.event_retention_days < MIN_RETENTION_DAYS:
            raise SettingsError(f"event_retention_days must be {MIN_RETENTION_DAYS} or more "
                                f"(replay reaches that far back), got "
                                f"{settings.event_retention_days}")
        if settings.webhook_lease < settings.webhook_timeout + 1:
            raise SettingsError(
                f"webhook_lease ({settings.webhook_lease}) must exceed webhook_timeout "
                f"({settings.webhook_timeout}) by a second or more, or a slow delivery's "
                f"lane would be taken over while it is still in flight")
        return cls(timeout=settings.webhook_timeout, lease=settings.webhook_lease,
                   schedule=schedule, retry_floor=settings.webhook_retry_floor,
                   warn_after=settings.webhook_warn_after,
                   disable_after=settings.webhook_disable_after,
                   concurrency=settings.webhook_concurrency,
                   allow_private=settings.allow_private_webhooks,
                   retention=timedelta(days=settings.event_retention_days),
                   jwks_ttl=settings.jwks_cache_seconds)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(policy: Policy, tries: int, *, status: int | None, timed_out: bool,
               retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds until the next attempt after ``tries`` failed ones; None when exhausted."""
    if tries >= len(policy.schedule):
        return None
    delay = policy.schedule[tries] * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    if status == 429 or timed_out:
        delay = max(delay, policy.retry_floor)
    return delay


@dataclass(frozen=True, slots=True)
class Head:
    """A claimed lane and its first pending deliveries, in order (none: it was empty)."""

    tenant: str
    subscription_id: str
    lane: str
    deliveries: tuple[asyncpg.Record, ...]
    claimed_at: float  # time.monotonic() when the lease was taken or renewed


@dataclass(slots=True)
class Outcome:
    """One attempt at one delivery."""

    row: asyncpg.Record
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    excerpt: str | None = None
    retry_after: float | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class LaneResult:
    """What became of a claimed lane: its attempts in order (the last may have failed)."""

    head: Head
    outcomes: tuple[Outcome, ...]

    @property
    def went_through(self) -> bool:
        return bool(self.outcomes) and self.outcomes[-1].ok


@dataclass
class Dispatcher:
    pool: asyncpg.Pool
    policy: Policy
    name: str = field(default_factory=lambda: f"dispatcher-{uuid.uuid4().hex[:12]}")
    poll_interval: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)
    _done: asyncio.Queue[LaneResult | None] = field(default_factory=asyncio.Queue)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _http: aiohttp.ClientSession | None = None
    _keys: SubscriberKeys | None = None
    _targets: TargetChecks = field(init=False)  # each URL's address check, reused a while
    _timeout: aiohttp.ClientTimeout = field(init=False)  # one for every attempt
    metrics: Metrics | None = None
    _stopping: bool = False
    _full: bool = False
    _next_prune: float = 0.0  # time.monotonic() of the next pruning
    _signers: dict[str, Ed25519PrivateKey] = field(default_factory=dict)  # by tenant
    _secrets_by_sealed: dict[tuple[bytes, bytes | None], tuple[str, str | None]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self._targets = TargetChecks(allow_private=self.policy.allow_private,
                                     timeout=self.policy.timeout)
        self._timeout = aiohttp.ClientTimeout(total=self.policy.timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish what is in flight and return."""
        self._http = session(allow_private=self.policy.allow_private,
                             limit=self.policy.concurrency)
        self._keys = SubscriberKeys(self._http, ttl=self.policy.jwks_ttl,
                                    timeout=self.policy.timeout,
                                    allow_private=self.policy.allow_private)
        completer = asyncio.create_task(self._complete_forever())
        listener: asyncpg.Connection | None = None
        logger.info("dispatcher %s started", self.name)
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    listener = await self._listen(listener)
                if time.monotonic() >= self._next_prune:
                    await self._prune()
                free = self.policy.concurrency - len(self._inflight)
                self._wake.clear()
                claimed = await self._claim_safely(free) if free > 0 else []
                # Every free slot taken: more lanes may be due, so a slot freed by a
                # finished delivery is worth a claim. Otherwise new work announces itself
                # (a notification, a lane handed back, the timer).
                self._full = free > 0 and len(claimed) == free
                for head in claimed:
                    self._start(head)
                if not claimed:
                    # Idle: sleep until the next retry is due. Busy: a finished delivery
                    # wakes the loop.
                    wait = self.poll_interval if self._inflight else \
                        await self._until_next_due()
                    await first(self._wake.wait(), stop.wait(), timeout=wait)
                elif free <= len(claimed):  # full: wait for a delivery to finish
                    await first(self._wake.wait(), stop.wait(), timeout=self.poll_interval)
        finally:
            self._stopping = True
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=self.policy.timeout + 5)
                for task in self._inflight:
                    task.cancel()  # its lane stays leased until the lease runs out
            self._done.put_nowait(None)
            try:
                await asyncio.wait_for(completer, timeout=self.policy.timeout + 5)
            except TimeoutError:
                logger.error("dispatcher %s: outcomes not recorded at shutdown", self.name)
            for task in list(self._inflight):  # begun while stopping: their leases run out
                task.cancel()
            if listener is not None:
                await self._unlisten(listener)
            await self._http.close()
            logger.info("dispatcher %s stopped", self.name)

    async def _listen(self, old: asyncpg.Connection | None) -> asyncpg.Connection | None:
        """A connection listening for new deliveries (None while the database is away:
        polling alone goes on)."""
        if old is not None:
            await self._unlisten(old)
        try:
            listener = await self.pool.acquire()
            await listener.add_listener(CHANNEL, self._notified)
        except DATABASE_ERRORS:
            logger.warning("dispatcher %s cannot listen for notifications; polling",
                           self.name)
            return None
        return listener

    async def _unlisten(self, listener: asyncpg.Connection) -> None:
        try:
            await listener.remove_listener(CHANNEL, self._notified)
        except DATABASE_ERRORS:
            pass  # the connection is gone, and its listener with it
        finally:
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.InternalClientError):
                await self.pool.release(listener)

    async def _until_next_due(self) -> float:
        """Seconds until the next retry is due (at most ``poll_interval``)."""
        try:
            async with self.pool.acquire() as conn:
                seconds = await store.seconds_to_next_due(conn)
        except DATABASE_ERRORS:
            return self.poll_interval
        return self.poll_interval if seconds is None else min(self.poll_interval,
                                                                  max(seconds, 0.005))

    async def _prune(self) -> None:
        """Forget events older than the retention, a batch at a time, once an hour."""
        self._next_prune = time.monotonic() + PRUNE_EVERY
        before = datetime.now(UTC) - self.policy.retention
        try:
            async with self.pool.acquire() as conn:
                for _ in range(20):  # at most 100,000 events a tenant an hour
                    if await store.prune(conn, before=before) == 0:
                        break
        except DATABASE_ERRORS as exc:
            logger.warning("pruning old events failed (%s); next hour again",
                           type(exc).__name__)

    def _start(self, head: Head) -> None:
        task = asyncio.create_task(self._deliver(head))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _claim_safely(self, limit: int) -> list[Head]:
        try:
            return await self.claim(limit)
        except DATABASE_ERRORS as exc:
            logger.warning("claiming deliveries failed (%s); trying again shortly",
                           type(exc).__name__)
        except Exception:  # a bug must not stop delivery for good: log it, go on
            logger.exception("claiming deliveries failed")
        return []

    async def claim(self, limit: int) -> list[Head]:
        """Lease up to ``limit`` due lanes of active subscriptions; return their heads."""
        async with self.pool.acquire() as conn:
            rows = await store.claim(conn, limit=limit, lease=self.policy.lease,
                                     dispatcher=self.name, per_lane=PER_LANE)
        heads = []
        for head in _heads(rows):
            if head.deliveries:
                heads.append(head)
            else:  # emptied meanwhile: handed back through the safe path
                self._done.put_nowait(LaneResult(head, ()))
        return heads

    async def _signer(self, tenant: str) -> Ed25519PrivateKey:
        if tenant not in self._signers:
            async with self.pool.acquire() as conn:
                _, seed = await signing_keys.current(conn, tenant)
            self._signers[tenant] = ed25519_signer(seed)
        return self._signers[tenant]

    async def _secrets(self, tenant: str, row: asyncpg.Record) -> tuple[str, str | None]:
        """The subscription's signing secrets, decrypted (kept by their ciphertexts: a
        rotated secret is another ciphertext)."""
        sealed = (row["secret_sealed"], row["previous_secret_sealed"])
        found = self._secrets_by_sealed.get(sealed)
        if found is None:
            async with self.pool.acquire() as conn:
                secret, previous = await subscriptions.secrets(
                    conn, tenant, row["subscription_id"], *sealed)
            if secret is None:
                raise ValueError(f"subscription {row['subscription_id']} has no secret")
            if len(self._secrets_by_sealed) >= SECRETS_KEPT:
                self._secrets_by_sealed.clear()
            found = self._secrets_by_sealed[sealed] = (secret, previous)
        return found

    async def _deliver(self, head: Head) -> None:
        """Send the lane's events in order, each after the one before got through, while
        the lease surely outlasts one more attempt; then hand over the results."""
        outcomes: list[Outcome] = []
        for row in head.deliveries:
            if outcomes and (not outcomes[-1].ok or self._stopping or time.monotonic()
                             - head.claimed_at + self.policy.timeout + 1 > self.policy.lease):
                break
            outcomes.append(await self._attempt(head.tenant, row))
        self._done.put_nowait(LaneResult(head, tuple(outcomes)))
        if self._full:
            self._wake.set()  # a slot is free and more lanes may be due

    async def _attempt(self, tenant: str, row: asyncpg.Record) -> Outcome:
        outcome = Outcome(row, datetime.now(UTC))
        started = time.perf_counter()
        try:
            assert self._keys is not None and self._http is not None  # noqa: S101
            key = await self._keys.key(public_jwk=row["public_jwk"], jwks_url=row["jwks_url"],
                                       kid=row["kid"])
            plaintext = event_types.plaintext(event_types.document(row))
            body = envelope(row["event_id"], key.encrypt(plaintext))
            signer = await self._signer(tenant)
            secret, previous = await self._secrets(tenant, row)
            secrets_ = [secret]
            if previous and row["previous_valid"]:
                secrets_.insert(0, previous)
            timestamp = int(time.time())
            headers = {
                "webhook-id": row["event_id"], "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secrets_, row["event_id"], timestamp, body, signer),
                "Content-Type": "application/json",
            }
            refused = await self._targets.problem(row["url"])
            if refused is not None:
                raise UnsafeTargetError(refused)
            async with self._http.post(row["url"], data=body, headers=headers,
                                       timeout=self._timeout,
                                       allow_redirects=False) as response:
                outcome.status_code = response.status
                outcome.excerpt = (await response.content.read(EXCERPT)).decode(
                    "utf-8", "replace")
                if (retry_after := response.headers.get("Retry-After")) is not None:
                    outcome.retry_after = retry_after_seconds(retry_after, datetime.now(UTC))
        except TimeoutError:
            outcome.error, outcome.timed_out = "timed out", True
        except SubscriberKeyError as exc:
            outcome.error = f"cannot encrypt: {exc}"
        except UnsafeTargetError as exc:
            outcome.error = f"refused: {exc}"
        except aiohttp.ClientConnectorError as exc:  # our resolver's refusal arrives wrapped
            if isinstance(exc.os_error, UnsafeTargetError):
                outcome.error = f"refused: {exc.os_error}"
            else:
                outcome.error = f"{type(exc).__name__}: {exc}"[:500]
        except (aiohttp.ClientError, OSError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:500]
        except asyncpg.PostgresError as exc:
            outcome.error = f"database: {type(exc).__name__}"
        except Exception as exc:  # a bug: recorded as a failed attempt, retried later
            logger.exception("delivering event %s failed", row["event_id"])
            outcome.error = f"internal error: {type(exc).__name__}"
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        if self.metrics is not None:
            self.metrics.deliveries.labels("succeeded" if outcome.ok else "failed").inc()
            self.metrics.delivery_latency.observe(outcome.latency_ms / 1000)
        return outcome

    async def _complete_forever(self) -> None:
        """Record outcomes in batches (whatever has arrived while the last batch was
        written); a ``None`` on the queue means: write what came before it, then stop."""
        while True:
            item = await self._done.get()
            batch: list[LaneResult] = []
            stopping = False
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if self._done.empty() or len(batch) >= 500:
                    break
                item = self._done.get_nowait()
            if batch:
                try:
                    handed_back = await self.complete(batch)
                except Exception:
                    # The leases run out and the lanes are delivered again: at least once.
                    logger.exception("recording %d delivery outcomes failed", len(batch))
                    handed_back = True
                if handed_back:
                    self._wake.set()  # lanes handed back may be due now
            if stopping:
                return

    async def complete(self, results: list[LaneResult]) -> bool:
        """Record attempts, settle deliveries, release lanes, go on with lanes that can;
        then the subscriptions' health. Whether a lane was handed back due now."""
        now = datetime.now(UTC)
        attempts: list[store.Attempt] = []
        releases: list[store.Release] = []
        keep: list[store.Release] = []
        # A lane whose events got through goes straight on to its next ones while this
        # dispatcher has room: no claim, no waiting for another dispatcher to pick it up.
        room = 0 if self._stopping else self.policy.concurrency - len(self._inflight)
        for result in results:
            head, retry_at = result.head, None
            for outcome in result.outcomes:
                kind, first_try, retry_at = self._settle(outcome, outcome.row, now)
                access_log.delivery(
                    subscription_id=head.subscription_id, event_id=outcome.row["event_id"],
                    event_type=outcome.row["type"], attempt=outcome.row["tries"] + 1,
                    status_code=outcome.status_code, error=outcome.error,
                    latency_ms=outcome.latency_ms, outcome=kind, next_attempt_at=retry_at)
                attempts.append(store.Attempt(
                    head.tenant, head.subscription_id, outcome.row["event_id"],
                    outcome.row["generation"], outcome.attempted_at, outcome.status_code,
                    outcome.latency_ms, outcome.error, outcome.excerpt, kind, first_try,
                    retry_at))
            lane = store.Release(head.tenant, head.subscription_id, head.lane, retry_at)
            if result.went_through and len(keep) < room:
                keep.append(lane)
            else:
                releases.append(lane)
        async with self.pool.acquire() as conn:
            following = await store.record(conn, dispatcher=self.name, attempts=attempts,
                                           releases=releases, keep=keep,
                                           lease=self.policy.lease, per_lane=PER_LANE)
        for head in _heads(following):
            self._start(head)
        await self._health(results)
        return len(following) < len(keep) or any(r.retry_at is None for r in releases)

    def _settle(self, outcome: Outcome, row: asyncpg.Record,
                now: datetime) -> tuple[str, datetime | None, datetime | None]:
        """(kind, first failure of this round, next attempt) for one attempt's outcome."""
        if outcome.ok:
            return "succeeded", None, None
        first_try = row["first_try_at"] or outcome.attempted_at
        delay = next_delay(self.policy, row["tries"] + 1, status=outcome.status_code,
                           timed_out=outcome.timed_out, retry_after=outcome.retry_after,
                           rng=self.rng)
        if outcome.status_code == 410:
            delay = self.policy.schedule[-1]  # the subscription is disabled: kept for later
        if delay is None:
            # Every attempt failed. Given up if the endpoint has worked since this
            # delivery began failing (failing_since, the first failure after the last
            # success, is later, or None): it refuses this event. If nothing has worked,
            # the endpoint is down: the event is kept, and the subscription will be
            # disabled, not the event dropped.
            failing_since = row["failing_since"]
            if failing_since is None or failing_since > first_try:
                return "failed", first_try, None
            delay = self.policy.schedule[-1]
        return "retry", first_try, now + timedelta(seconds=delay)

    async def _health(self, results: list[LaneResult]) -> None:
        """Per subscription: its failing state follows the attempt log (a success ends it,
        failures after the last success start it); failures warn once past
        ``warn_after`` and disable after ``disable_after`` (or at once on 410 Gone). Each
        warning and disable is an event, in the same transaction."""
        by_subscription: dict[tuple[str, str], list[Outcome]] = {}
        for result in results:
            key = (result.head.tenant, result.head.subscription_id)
            if result.outcomes:
                by_subscription.setdefault(key, []).extend(result.outcomes)
        for (tenant, subscription_id), tried in sorted(by_subscription.items()):
            await self._failing(tenant, subscription_id, tried)

    async def _failing(self, tenant: str, subscription_id: str,
                       tried: list[Outcome]) -> None:
        lane = event_types.subscription_lane(subscription_id)
        failures = [o for o in tried if not o.ok]
        async with self.pool.acquire() as conn, conn.transaction():
            # The attempts are in the log (record committed them): what the claim said
            # of failing_since may be stale, and batches arrive in any order.
            await store.follow_failing(conn, tenant, subscription_id,
                                       min(o.attempted_at for o in tried))
            if not failures:
                return
            gone = any(o.status_code == 410 for o in failures)
            last = failures[-1]
            since = await subscriptions.warn(conn, tenant, subscription_id,
                                             self.policy.warn_after)
            if since is not None:
                disable_at = since + timedelta(seconds=self.policy.disable_after)
                logger.warning("subscription %s has been failing since %s; it will be "
                               "disabled after %s unless a delivery succeeds",
                               subscription_id, since.isoformat(), disable_at.isoformat())
                await emit(conn, tenant, [NewEvent("subscription.failing", lane, {
                    "subscription_id": subscription_id, "failing_since": event_types.instant(since),
                    "disable_after": event_types.instant(disable_at),
                    "last_status_code": last.status_code, "last_error": last.error})])
            reason = "the endpoint answered 410 Gone" if gone else \
                "deliveries failed for longer than webhook_disable_after"
            if await subscriptions.disable(conn, tenant, subscription_id, reason=reason,
                                           at_once=gone, after=self.policy.disable_after):
                logger.warning("subscription %s disabled: %s", subscription_id, reason)
                await emit(conn, tenant, [NewEvent("subscription.disabled", lane, {
                    "subscription_id": subscription_id, "reason": reason})])
                await audit.append(conn, tenant, actor=DISPATCHER, action="subscription.disabled",
                                   object_type="subscription", object_id=subscription_id,
                                   before={"status": "active"},
                                   after={"status": "disabled", "reason": reason})


DISPATCHER = audit.system_actor("dispatcher")  # who disables a failing subscription


def _heads(rows: list[asyncpg.Record]) -> list[Head]:
    """Rows of store.claim or store.record (a lane's deliveries in order, or one row
    without a delivery for an empty lane) as one Head per lane."""
    lanes: dict[tuple[str, str, str], list[asyncpg.Record]] = {}
    for row in rows:
        found = lanes.setdefault((row["tenant_id"], row["subscription_id"], row["lane"]), [])
        if row["event_id"] is not None:
            found.append(row)
    now = time.monotonic()
    return [Head(t, s, lane, tuple(found), now) for (t, s, lane), found in lanes.items()]
