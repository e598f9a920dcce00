"""A CRM on loopback for the webhook tests, and independent checks of what it receives.

Signatures are verified with the ``standardwebhooks`` package and payloads decrypted with
``jwcrypto``: neither is what the gateway signs or encrypts with.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto import jwe, jwk
from standardwebhooks.webhooks import Webhook

# Retries come fast; timeouts stay generous. A delivery to loopback takes milliseconds, but
# on a loaded machine a stalled event loop can hold one for seconds, and a timeout there
# would be a retry no test expects. No test waits for a timeout or a lease under FAST: the
# few that need one set their own, and answer with HANG so the wait is never a race.
FAST = {"allow_private_webhooks": True, "webhook_timeout": 15.0, "webhook_lease": 30.0,
        "webhook_retry_schedule": "0,0.05,0.1,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
        "webhook_retry_floor": 0.1}

# A scripted answer's time to take that never ends: the request is held open (and counted
# in ``held``) until the receiver stops, so the gateway's timeout fires however slow the
# machine is, and however generous the timeout.
HANG = math.inf


def rsa_key(kid: str = "crm-rsa-1") -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048, kid=kid)


def ec_key(kid: str = "crm-ec-1", curve: str = "P-256") -> jwk.JWK:
    return jwk.JWK.generate(kty="EC", crv=curve, kid=kid)


def public(key: jwk.JWK) -> dict[str, Any]:
    exported: dict[str, Any] = key.export_public(as_dict=True)
    return exported


def decrypt(token: str, keys: list[jwk.JWK]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event, protected header) of a compact JWE, with jwcrypto."""
    keyset = jwk.JWKSet()
    for key in keys:
        keyset.add(key)
    message = jwe.JWE()
    message.deserialize(token, key=keyset)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return json.loads(message.payload), header


def verify_v1a(headers: dict[str, str], body: bytes, keys: dict[str, Any]) -> bool:
    """Whether the ``v1a`` (ed25519) signature verifies with one of our published keys."""
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        for published in keys["keys"]:
            raw = base64.urlsafe_b64decode(published["x"] + "==")
            try:
                Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(signature),
                                                               content)
                return True
            except InvalidSignature:
                continue
    return False


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int
    event: dict[str, Any] | None = None


Answer = Callable[["Receiver", dict[str, Any] | None], int]


@dataclass
class Receiver:
    """A CRM endpoint: records every request, answers what ``answer`` says (200 by default),
    and checks that no lane ever has two deliveries in flight at once."""

    keys: list[jwk.JWK]
    secret: str | None = None
    answer: Answer = lambda receiver, event: 200
    latency: float = 0.0
    gate: asyncio.Event | None = None  # while set and closed, requests are held open
    # Scripted answers, used up first: (status, seconds to take, extra headers).
    script: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)
    held: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    jwks: dict[str, Any] | None = None  # served at /jwks when set
    jwks_fetches: int = 0

    async def start(self, path: str = "/hooks") -> str:
        app = web.Application()
        app.router.add_post(path, self._handle)
        app.router.add_get("/jwks", self._serve_jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{path}"
        return self.url

    async def stop(self) -> None:
        self._stopping.set()  # release the requests held by HANG
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve_jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        if self.jwks is None:
            return web.Response(status=404)
        return web.json_response(self.jwks)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event = None
        try:
            envelope = json.loads(body)
            event, _ = decrypt(envelope["jwe"], self.keys)
        except Exception:  # noqa: S110 - a body we cannot read is recorded without its event
            pass
        lane = event["lane"] if event else None
        if lane is not None:
            self._in_flight[lane] = self._in_flight.get(lane, 0) + 1
            if self._in_flight[lane] > 1:
                self.overlaps.append(lane)
        extra: dict[str, str] = {}
        try:
            if self.gate is not None and not self.gate.is_set():
                self.held += 1
                await self.gate.wait()
            if self.script:
                status, took, extra = self.script.pop(0)
            else:
                status, took = self.answer(self, event), self.latency
            if took == HANG:
                self.held += 1
                await self._stopping.wait()
            elif took:
                await asyncio.sleep(took)  # the CRM's own work, not a wait
        finally:
            if lane is not None:
                self._in_flight[lane] -= 1
        self.deliveries.append(Delivery(headers, body, status, event))
        return web.Response(status=status, text="ok" if status < 300 else "not now",
                            headers=extra)

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if 200 <= d.status < 300]

    def verified(self, secret: str | None = None) -> list[dict[str, Any]]:
        """Every accepted delivery, verified with standardwebhooks, decrypted with jwcrypto."""
        hook = Webhook(secret or self.secret or "")
        events = []
        for delivery in self.accepted():
            envelope = hook.verify(delivery.body, delivery.headers)
            assert set(envelope) == {"id", "jwe"}
            assert envelope["id"] == delivery.headers["webhook-id"]
            event, header = decrypt(envelope["jwe"], self.keys)
            assert header["enc"] == "A256GCM" and "zip" not in header
            assert event["id"] == envelope["id"]
            events.append(event)
        return events


async def eventually(check: Callable[[], bool], *, timeout: float = 120.0,
                     what: str = "the condition") -> None:
    """Poll ``check`` until it holds, failing after ``timeout`` seconds: generous, as a
    loaded machine may take long (a passing test never waits for it)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.02)  # polling interval


def chained(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Sequences per lane, in arrival order, checking each event names its predecessor."""
    lanes: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        lanes.setdefault(event["lane"], []).append(event)
    out = {}
    for lane, items in lanes.items():
        out[lane] = [e["sequence"] for e in items]
        for before, after in itertools.pairwise(items):
            if after["sequence"] == before["sequence"] + 1:
                assert after["previous_event_id"] == before["id"], lane
    return out


def now() -> datetime:
    return datetime.now(UTC)
