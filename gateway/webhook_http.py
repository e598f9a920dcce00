"""Outbound HTTP to subscribers: a session that only reaches public addresses, and their keys.

One check decides where we may send: ``target_problem``. Creating or changing a
subscription (its URL or JWKS URL) and every delivery attempt call it: the URL's host must
be a public address in every form a resolver reads (``security.addresses``), or a name all
of whose addresses are public. The connection then resolves the name again through
``PublicOnlyResolver``, which judges each address the same way, so a name cannot pass the
check and then connect somewhere else. Redirects are not followed and no proxy from the
environment is used.

The dispatcher asks through ``TargetChecks``, which reuses a URL's passing verdict for as
long as the connector reuses a name's addresses (``TARGET_CHECK_TTL``, aiohttp's DNS cache),
so a busy subscription is not resolved in a thread at every delivery; whatever a connection
resolves is still judged by ``PublicOnlyResolver``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from security.addresses import address_problem, ip_literal
from security.webhooks import (
    RecipientKey,
    SubscriberKeyError,
    pick_from_jwks,
    recipient_key,
    url_problem,
)

logger = logging.getLogger(__name__)

_JWKS_LIMIT = 64 * 1024
_MISS_MEMORY = 60.0  # seconds a kid found missing is not looked for again
RESOLVE_TIMEOUT = 5.0  # seconds a subscriber's host name may take to resolve
TARGET_CHECK_TTL = 10  # seconds a URL's verdict is reused: aiohttp's DNS cache (10 s)
_TARGETS_KEPT = 10_000  # URLs found fine that are remembered at once


class UnsafeTargetError(OSError):
    """A target that resolves to a private, loopback or link-local address."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves like the default resolver, and refuses names with a non-public address."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            problem = address_problem(result["host"])
            if problem:
                raise UnsafeTargetError(_non_public(host, problem))
        return results

    async def close(self) -> None:
        await self._inner.close()


def _non_public(host: str, problem: str) -> str:
    return (f"host {host} resolves to a non-public address ({problem}); private targets "
            "need allow_private_webhooks")


async def target_problem(url: str, *, allow_private: bool,
                         timeout: float = RESOLVE_TIMEOUT) -> str | None:
    """What forbids sending to ``url``, or None: the one address check, for subscriptions
    (their URL and JWKS URL) when made or changed, and for every delivery.

    A host name is resolved (in a thread, as aiohttp does, for at most ``timeout``
    seconds) and refused if ANY of its addresses is not public: a name with one public and
    one loopback address would otherwise reach loopback on some connections. A name that
    does not resolve is refused too. ``allow_private`` (for tests and closed networks)
    lifts the address checks, not the others.
    """
    problem = url_problem(url, allow_private=allow_private)
    if problem is not None or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    if ip_literal(host) is not None:
        return None  # an address, and url_problem found it public
    try:
        found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            host, 443, type=socket.SOCK_STREAM), timeout)
    except TimeoutError:
        return f"host {host} did not resolve within {timeout:g} s"
    except (OSError, UnicodeError):
        return f"host {host} does not resolve to any address"
    for address in sorted({str(info[4][0]) for info in found}):
        problem = address_problem(address)
        if problem:
            return _non_public(host, problem)
    return None


class TargetChecks:
    """``target_problem`` for every delivery attempt, a URL found fine taken as fine for
    ``ttl`` seconds: no longer than the session's connector reuses the addresses it
    resolved for a name, so a name that turns private is refused as soon as a new
    connection could reach it (and ``PublicOnlyResolver`` refuses that connection anyway).
    Without it a subscription on a host name is resolved, in a thread, at every delivery.
    A refusal is not reused: the next attempt asks again (a name that failed to resolve
    once may resolve at the retry)."""

    def __init__(self, *, allow_private: bool, timeout: float = RESOLVE_TIMEOUT,
                 ttl: float = TARGET_CHECK_TTL) -> None:
        self._allow_private, self._timeout, self._ttl = allow_private, timeout, ttl
        self._fine: dict[str, float] = {}  # url: time.monotonic() it was found fine

    async def problem(self, url: str) -> str | None:
        """What forbids sending to ``url`` now, or None (see ``target_problem``)."""
        now = time.monotonic()
        checked = self._fine.get(url)
        if checked is not None and now - checked < self._ttl:
            return None
        problem = await target_problem(url, allow_private=self._allow_private,
                                       timeout=self._timeout)
        if problem is None:
            if len(self._fine) >= _TARGETS_KEPT:
                self._fine.clear()
            self._fine[url] = now
        else:
            self._fine.pop(url, None)
        return problem


def session(*, allow_private: bool, limit: int) -> aiohttp.ClientSession:
    """The client for deliveries and JWKS fetches: ``limit`` connections, kept alive and
    reused; public addresses only unless ``allow_private``."""
    resolver = None if allow_private else PublicOnlyResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, limit=limit, limit_per_host=limit,
                                     ttl_dns_cache=TARGET_CHECK_TTL)
    return aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False,
                                 headers={"User-Agent": "recon-gateway-webhooks/1"})


@dataclass
class _Cached:
    fetched_at: float
    document: Any
    keys: dict[str, RecipientKey | None]  # by kid, loaded on first use


_INLINE_LIMIT = 10_000  # subscribers' JWKs kept loaded

class SubscriberKeys:
    """Subscribers' encryption keys: the JWK they gave, or the ``kid`` of their JWKS URL.

    A JWKS document is reused for ``ttl`` seconds, and fetched again early when the kid
    asked for is not in it (for one kid at most once a minute, so a kid that stays missing
    does not make every attempt fetch).
    """

    def __init__(self, http: aiohttp.ClientSession, *, ttl: float, timeout: float,
                 allow_private: bool) -> None:
        self._http, self._ttl, self._timeout = http, ttl, timeout
        self._allow_private = allow_private
        self._jwks: dict[str, _Cached] = {}
        self._misses: dict[tuple[str, str], float] = {}
        self._inline: dict[str, RecipientKey] = {}  # by the JWK's text

    async def key(self, *, public_jwk: Any, jwks_url: str | None, kid: str,
                  fresh: bool = False) -> RecipientKey:
        """The key to encrypt to; ``fresh`` fetches a JWKS now (a person just changed it)."""
        if jwks_url is None:
            text = public_jwk if isinstance(public_jwk, str) else json.dumps(
                public_jwk, sort_keys=True)
            loaded = self._inline.get(text)
            if loaded is None:
                if len(self._inline) >= _INLINE_LIMIT:
                    self._inline.clear()
                loaded = self._inline[text] = recipient_key(json.loads(text))
            return loaded
        cached = self._jwks.get(jwks_url)
        now = time.monotonic()
        if fresh or cached is None or now - cached.fetched_at > self._ttl:
            cached = await self._fetch(jwks_url)
        found = _pick(cached, kid)
        missed = self._misses.get((jwks_url, kid))
        if found is None and not fresh and (
                missed is None or now - missed > _MISS_MEMORY):
            cached = await self._fetch(jwks_url)
            found = _pick(cached, kid)
        if found is None:
            self._misses[(jwks_url, kid)] = now
            raise SubscriberKeyError(f"the JWKS at the subscription's jwks_url has no key "
                                     f"with kid {kid!r}")
        return found

    async def _fetch(self, url: str) -> _Cached:
        problem = await target_problem(url, allow_private=self._allow_private)
        if problem is not None:
            raise SubscriberKeyError(f"jwks_url {problem}")
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._http.get(url, timeout=timeout, allow_redirects=False) as response:
                body = await response.content.read(_JWKS_LIMIT + 1)
                if response.status != 200:
                    raise SubscriberKeyError(f"fetching the JWKS answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SubscriberKeyError(f"cannot fetch the JWKS: {type(exc).__name__}") from exc
        if len(body) > _JWKS_LIMIT:
            raise SubscriberKeyError("the JWKS document is larger than 64 KiB")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise SubscriberKeyError("the JWKS document is not JSON") from exc
        cached = _Cached(time.monotonic(), document, {})
        self._jwks[url] = cached
        return cached


def _pick(cached: _Cached, kid: str) -> RecipientKey | None:
    if kid not in cached.keys:
        cached.keys[kid] = pick_from_jwks(cached.document, kid)
    return cached.keys[kid]
