"""The retry policy, alone: schedule, jitter, Retry-After, the floor for 429 and timeouts."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import cast

import asyncpg
import pytest

from gateway.delivery import Dispatcher, Policy, next_delay, retry_after_seconds
from gateway.settings import Settings, SettingsError

DEFAULT = Policy.of(Settings())
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_default_schedule_retries_for_more_than_72_hours_with_jitter() -> None:
    rng = random.Random(7)  # noqa: S311 - jitter, not a secret
    delays = [next_delay(DEFAULT, tries, status=500, timed_out=False, retry_after=None,
                         rng=rng) for tries in range(1, 10)]
    assert all(d is not None for d in delays)
    nominal = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    for delay, planned in zip(delays, nominal, strict=True):
        assert delay is not None and 0.8 * planned <= delay <= 1.2 * planned
    assert sum(nominal) > 72 * 3600
    assert next_delay(DEFAULT, 10, status=500, timed_out=False, retry_after=None,
                      rng=rng) is None
    # The jitter is real: the same step differs between deliveries.
    spread = {next_delay(DEFAULT, 4, status=500, timed_out=False, retry_after=None, rng=rng)
              for _ in range(20)}
    assert len(spread) > 10


def test_retry_after_is_honoured_up_to_a_day_and_429_and_timeouts_have_a_floor() -> None:
    rng = random.Random(1)  # noqa: S311 - jitter, not a secret
    assert next_delay(DEFAULT, 1, status=503, timed_out=False, retry_after=120,
                      rng=rng) == 120
    assert next_delay(DEFAULT, 1, status=503, timed_out=False, retry_after=10**9,
                      rng=rng) == 86400
    floor = DEFAULT.retry_floor
    assert next_delay(DEFAULT, 1, status=429, timed_out=False, retry_after=None,
                      rng=rng) == floor
    assert next_delay(DEFAULT, 1, status=None, timed_out=True, retry_after=None,
                      rng=rng) == floor
    delay = next_delay(DEFAULT, 1, status=500, timed_out=False, retry_after=None, rng=rng)
    assert delay is not None and delay < floor


def test_retry_after_headers_in_seconds_and_as_http_dates() -> None:
    assert retry_after_seconds("30", NOW) == 30
    assert retry_after_seconds("Mon, 23 Nov 2026 12:02:00 GMT", NOW) == 120
    assert retry_after_seconds("Mon, 23 Nov 2026 11:00:00 GMT", NOW) == 0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("-5", NOW) is None


@pytest.mark.parametrize(("settings", "words"), [
    ({"webhook_retry_schedule": "0,5,x"}, "seconds separated by commas"),
    ({"webhook_retry_schedule": "0,-5"}, "negative"),
    ({"webhook_lease": 10.0, "webhook_timeout": 10.0}, "must exceed webhook_timeout"),
])
def test_bad_delivery_settings_are_refused_at_start(settings: dict[str, object],
                                                     words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        Policy.of(Settings(**settings))  # type: ignore[arg-type]


class _BrokenConnectionPool:
    """A pool whose connection breaks as asyncpg's does when a connection is released
    while its query still runs (the database went away under it)."""

    def acquire(self) -> _BrokenConnectionPool:
        return self

    async def __aenter__(self) -> object:
        raise asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_connection_broken_mid_query_never_ends_the_dispatcher(
        caplog: pytest.LogCaptureFixture) -> None:
    """Pruning (and every other database call of the loop) logs the broken connection and
    goes on: before, asyncpg's InternalClientError escaped and ended the dispatcher."""
    dispatcher = Dispatcher(cast(asyncpg.Pool, _BrokenConnectionPool()),
                            Policy.of(Settings()))
    await dispatcher._prune()
    assert "pruning old events failed (InternalClientError)" in caplog.text
    assert await dispatcher._claim_safely(4) == []
