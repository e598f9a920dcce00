"""security.webhooks alone, checked with other libraries than the ones it uses."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto import jwe, jwk
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from security.webhooks import (
    SubscriberKeyError,
    ed25519_signer,
    envelope,
    is_public_address,
    new_ed25519,
    new_secret,
    recipient_key,
    sign,
    url_problem,
)


def test_signatures_verify_with_standardwebhooks_for_each_secret_and_v1a_with_ed25519() -> None:
    old, new = new_secret(), new_secret()
    seed, public = new_ed25519()
    body = envelope("evt_1", "a.b.c.d.e")
    now = int(time.time())
    header = sign([old, new], "evt_1", now, body, ed25519_signer(seed))
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(now),
               "webhook-signature": header}
    assert Webhook(old).verify(body, headers) == {"id": "evt_1", "jwe": "a.b.c.d.e"}
    assert Webhook(new).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)
    v1a = [s.split(",", 1)[1] for s in header.split() if s.startswith("v1a,")]
    assert len(v1a) == 1
    Ed25519PublicKey.from_public_bytes(public).verify(
        base64.b64decode(v1a[0]), f"evt_1.{now}.".encode() + body)
    assert datetime.now(UTC).timestamp() - now < 60


@pytest.mark.parametrize(("kty", "options", "alg"), [
    ("RSA", {"size": 2048}, "RSA-OAEP-256"),
    ("EC", {"crv": "P-256"}, "ECDH-ES+A256KW"),
    ("EC", {"crv": "P-521"}, "ECDH-ES+A256KW"),
])
def test_payloads_decrypt_with_jwcrypto(kty: str, options: dict[str, object], alg: str) -> None:
    private = jwk.JWK.generate(kty=kty, kid="k1", **options)
    key = recipient_key(private.export_public(as_dict=True))
    token = key.encrypt(b'{"amount":"12.30"}')
    message = jwe.JWE()
    message.deserialize(token, key=private)
    assert message.payload == b'{"amount":"12.30"}'
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (header["alg"], header["enc"], header["kid"]) == (alg, "A256GCM", "k1")
    assert "zip" not in header
    assert key.encrypt(b"x") != key.encrypt(b"x")  # fresh keys and nonces every time


@pytest.mark.parametrize(("jwk_dict", "words"), [
    ("not a key", "JSON object"),
    ({"kty": "oct", "k": "AAAA", "kid": "k"}, "kty"),
    ({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k"}, "crv"),
    ({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "k"}, "2048"),
    ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "kid"),
    ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k", "use": "sig"}, "use"),
    ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k", "d": "AA"}, "private"),
])
def test_unusable_subscriber_keys_say_why(jwk_dict: object, words: str) -> None:
    with pytest.raises(SubscriberKeyError, match=words):
        recipient_key(jwk_dict)


@pytest.mark.parametrize(("url", "problem"), [
    ("https://crm.example.com/hooks?token=x", None),
    ("https://93.184.215.14:8443/h", None),
    ("http://crm.example.com/h", "https"),
    ("ftp://crm.example.com/h", "https"),
    ("https:///h", "https"),
    ("https://crm.example.com:99999/h", "not a valid URL"),
    ("https://u:p@crm.example.com/h", "credentials"),
    ("https://127.0.0.1/h", "not public"),
    ("https://10.0.0.8/h", "not public"),
    ("https://172.16.5.4/h", "not public"),
    ("https://192.168.1.1/h", "not public"),
    ("https://169.254.169.254/h", "not public"),
    ("https://100.64.0.1/h", "not public"),
    ("https://0.0.0.0/h", "not public"),
    ("https://[::1]/h", "not public"),
    ("https://[fe80::1]/h", "not public"),
    ("https://[fd00::1]/h", "not public"),
    ("https://[::ffff:127.0.0.1]/h", "not public"),
    ("https://localhost/h", "not public"),
    ("https://db.internal/h", "not public"),
    ("https://" + "a" * 2000 + ".com/", "longer than"),
])
def test_target_urls_must_be_https_and_public(url: str, problem: str | None) -> None:
    found = url_problem(url, allow_private=False)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_allowing_private_targets_allows_loopback_and_http() -> None:
    assert url_problem("http://127.0.0.1:9000/h", allow_private=True) is None
    assert url_problem("https://u:p@127.0.0.1/h", allow_private=True) == \
        "must not carry credentials"


def test_public_addresses() -> None:
    assert is_public_address("93.184.215.14")
    assert is_public_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    for private in ("127.0.0.1", "10.1.1.1", "::1", "::ffff:10.0.0.1", "224.0.0.1",
                    "169.254.1.1", "fc00::1"):
        assert not is_public_address(private), private
