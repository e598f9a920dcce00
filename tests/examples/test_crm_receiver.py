"""The example CRM receiver (examples/crm_receiver.py), run as a real process.

Messages are built here independently of the gateway: events encrypted with jwcrypto and
signed with the standardwebhooks package, as the wire format says.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwe, jwk
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "crm_receiver.py"
START_DEADLINE = 20.0  # seconds for the receiver to say where it listens
ALG = {"RSA": "RSA-OAEP-256", "EC": "ECDH-ES+A256KW"}
# No proxy from the environment between the test and the receiver on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Keys:
    rsa: jwk.JWK
    ec: jwk.JWK
    stranger: jwk.JWK  # a key the receiver does not hold


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa=jwk.JWK.generate(kty="RSA", size=2048, kid="crm-rsa-1"),
        ec=jwk.JWK.generate(kty="EC", crv="P-256", kid="crm-ec-1"),
        stranger=jwk.JWK.generate(kty="EC", crv="P-256", kid="someone-else"),
    )


@dataclass
class Receiver:
    port: int
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


def read_port(proc: subprocess.Popen[str], stderr: Path) -> int:
    """The port from the receiver's first line of output, waiting at most START_DEADLINE."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_DEADLINE
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if selector.select(timeout=remaining):
                line = proc.stdout.readline()
                assert line, f"receiver exited: {stderr.read_text(encoding='utf-8')}"
                prefix = "listening on http://127.0.0.1:"
                assert line.startswith(prefix), line
                return int(line.removeprefix(prefix))
    pytest.fail(f"receiver did not start in {START_DEADLINE} s: {stderr.read_text()}")


@pytest.fixture
def start_receiver(
    tmp_path: Path, keys: Keys, request: pytest.FixtureRequest
) -> Callable[..., Receiver]:
    """Starts receivers holding the RSA and EC private keys; all are killed at the end."""
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"keys": [keys.rsa.export_private(as_dict=True),
                                             keys.ec.export_private(as_dict=True)]}))
    procs: list[subprocess.Popen[str]] = []

    def stop() -> None:
        for proc in procs:
            proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()

    request.addfinalizer(stop)

    def start(*, secret: str | None = None, env_secret: str | None = None) -> Receiver:
        n = len(procs)
        log, stderr = tmp_path / f"events{n}.jsonl", tmp_path / f"stderr{n}.txt"
        args = [sys.executable, str(EXAMPLE), "--port", "0", "--private-jwk", str(key_file),
                "--log", str(log)]
        env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
        if secret is not None:
            args += ["--secret", secret]
        if env_secret is not None:
            env["WEBHOOK_SECRET"] = env_secret
        with stderr.open("w") as err:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True,
                                    env=env)
        procs.append(proc)
        return Receiver(port=read_port(proc, stderr), log=log)

    return start


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver], secret: str) -> Receiver:
    return start_receiver(secret=secret)


def event(event_id: str, lane: str = "invoice:INV-1001", sequence: int = 1,
          previous: str | None = None, type_: str = "invoice.paid") -> dict[str, Any]:
    return {"id": event_id, "type": type_, "version": 1,
            "created_at": "2026-11-23T10:00:00.123456Z", "lane": lane, "sequence": sequence,
            "previous_event_id": previous,
            "data": {"invoice_id": "INV-1001", "status": "paid", "currency": "EUR",
                     "amount": "100.00", "open_amount": "0.00"}}


def encrypt(plaintext: dict[str, Any], key: jwk.JWK) -> str:
    public = jwk.JWK(**key.export_public(as_dict=True))
    header = {"alg": ALG[key["kty"]], "enc": "A256GCM", "kid": key["kid"]}
    message = jwe.JWE(json.dumps(plaintext).encode(), protected=json.dumps(header))
    message.add_recipient(public)
    return message.serialize(compact=True)


def signed(body: str, msg_id: str, *signing_secrets: str,
           at: datetime | None = None) -> dict[str, str]:
    """The headers of a delivery, with one v1 signature per secret (two in a rotation)."""
    at = at or datetime.now(UTC)
    signatures = [Webhook(s).sign(msg_id, at, body) for s in signing_secrets]
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(signatures), "Content-Type": "application/json"}


def envelope(event_id: str, token: str) -> str:
    return json.dumps({"id": event_id, "jwe": token})


def post(receiver: Receiver, body: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{receiver.port}/webhooks",
                                 data=body.encode(), headers=headers, method="POST")
    try:
        with OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def deliver(receiver: Receiver, secret: str, ev: dict[str, Any], key: jwk.JWK) -> int:
    """Encrypts, signs and posts one event the way the gateway does; the status answered."""
    body = envelope(ev["id"], encrypt(ev, key))
    status, _ = post(receiver, body, signed(body, ev["id"], secret))
    return status


def test_good_rsa_and_ec_messages_are_taken_and_logged_decrypted(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    first = event("evt_rsa_1", sequence=1)
    second = event("evt_ec_2", sequence=2, previous="evt_rsa_1", type_="invoice.overpaid")
    assert deliver(receiver, secret, first, keys.rsa) == 204
    assert deliver(receiver, secret, second, keys.ec) == 204
    assert receiver.lines() == [
        {"webhook_id": "evt_rsa_1", "event": first, "duplicate": False, "gap": False},
        {"webhook_id": "evt_ec_2", "event": second, "duplicate": False, "gap": False},
    ]


def test_a_forged_signature_is_refused_and_nothing_logged(
        receiver: Receiver, keys: Keys) -> None:
    ev = event("evt_forged")
    body = envelope(ev["id"], encrypt(ev, keys.rsa))
    status, reason = post(receiver, body, signed(body, ev["id"], new_secret()))
    assert (status, reason) == (401, "signature not verified: No matching signature found\n")
    assert receiver.lines() == []


def test_a_body_changed_after_signing_is_refused(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    ev = event("evt_tampered")
    body = envelope(ev["id"], encrypt(ev, keys.rsa))
    headers = signed(body, ev["id"], secret)
    other = envelope(ev["id"], encrypt({**ev, "data": {"amount": "999.00"}}, keys.rsa))
    assert post(receiver, other, headers)[0] == 401
    assert receiver.lines() == []


def test_an_old_timestamp_is_refused(receiver: Receiver, secret: str, keys: Keys) -> None:
    ev = event("evt_old")
    body = envelope(ev["id"], encrypt(ev, keys.ec))
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    status, reason = post(receiver, body, signed(body, ev["id"], secret, at=ten_minutes_ago))
    assert (status, reason) == (401, "signature not verified: Message timestamp too old\n")
    assert receiver.lines() == []


def test_an_envelope_id_other_than_the_webhook_id_is_refused(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    ev = event("evt_inside")
    body = envelope("evt_inside", encrypt(ev, keys.rsa))
    status, reason = post(receiver, body, signed(body, "evt_header", secret))
    assert (status, reason) == (400, "envelope id differs from webhook-id\n")
    assert receiver.lines() == []


def test_an_event_id_other_than_the_envelope_id_is_refused(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    body = envelope("evt_outer", encrypt(event("evt_inner"), keys.rsa))
    status, reason = post(receiver, body, signed(body, "evt_outer", secret))
    assert (status, reason) == (400, "event id differs from envelope id\n")
    assert receiver.lines() == []


def test_an_unknown_kid_is_refused(receiver: Receiver, secret: str, keys: Keys) -> None:
    ev = event("evt_stranger")
    status = deliver(receiver, secret, ev, keys.stranger)
    assert status == 400
    assert receiver.lines() == []


def test_during_a_rotation_the_new_secret_alone_verifies(
        start_receiver: Callable[..., Receiver], keys: Keys) -> None:
    old, new = new_secret(), new_secret()
    receiver = start_receiver(secret=new)
    ev = event("evt_rotation")
    body = envelope(ev["id"], encrypt(ev, keys.ec))
    headers = signed(body, ev["id"], old, new)
    # an ed25519 entry, which a receiver holding only the HMAC secret skips
    headers["webhook-signature"] += " v1a," + base64.b64encode(secrets.token_bytes(64)).decode()
    assert len(headers["webhook-signature"].split()) == 3
    assert post(receiver, body, headers)[0] == 204
    assert [line["webhook_id"] for line in receiver.lines()] == ["evt_rotation"]


def test_secrets_from_the_environment_any_of_which_verifies(
        start_receiver: Callable[..., Receiver], keys: Keys) -> None:
    old, new = new_secret(), new_secret()
    receiver = start_receiver(env_secret=f"{new} {old}")
    first, second = event("evt_old_secret"), event("evt_new_secret", "account:7")
    for ev, by in ((first, old), (second, new)):
        body = envelope(ev["id"], encrypt(ev, keys.rsa))
        assert post(receiver, body, signed(body, ev["id"], by))[0] == 204
    assert deliver(receiver, new_secret(), event("evt_other"), keys.rsa) == 401
    assert [line["webhook_id"] for line in receiver.lines()] == [
        "evt_old_secret", "evt_new_secret"]


def test_a_duplicate_is_answered_2xx_and_logged_as_duplicate(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    ev = event("evt_twice")
    assert deliver(receiver, secret, ev, keys.rsa) == 204
    assert deliver(receiver, secret, ev, keys.ec) == 204  # a replay, encrypted afresh
    assert [(line["webhook_id"], line["duplicate"], line["gap"])
            for line in receiver.lines()] == [("evt_twice", False, False),
                                              ("evt_twice", True, False)]


def test_a_gap_in_a_lane_is_logged_as_gap(
        receiver: Receiver, secret: str, keys: Keys) -> None:
    lane = "invoice:INV-2002"
    other = "account:7"
    deliveries = [
        event("evt_a1", lane, 1),
        event("evt_b1", other, 1),  # other lanes do not disturb this one
        event("evt_a3", lane, 3, "evt_a2"),  # evt_a2 has not arrived
        event("evt_a4", lane, 4, "evt_a3"),
        event("evt_a2", lane, 2, "evt_a1"),  # late (a replay): fills the gap, opens none
        event("evt_a5", lane, 5, "evt_a4"),
        event("evt_c3", "invoice:INV-3003", 3, "evt_c2"),  # a lane first seen mid-way
    ]
    for ev in deliveries:
        assert deliver(receiver, secret, ev, keys.ec) == 204
    assert [(line["webhook_id"], line["gap"], line["duplicate"])
            for line in receiver.lines()] == [
        ("evt_a1", False, False), ("evt_b1", False, False), ("evt_a3", True, False),
        ("evt_a4", False, False), ("evt_a2", False, False), ("evt_a5", False, False),
        ("evt_c3", True, False)]
