"""Webhook signing and payload encryption (pure: no I/O, no clocks).

- Signing follows Standard Webhooks: ``webhook-signature`` holds ``v1,<base64 HMAC-SHA256>``
  over ``{id}.{timestamp}.{body}`` with the subscription's secret, one per secret that is
  valid (two while a rotation overlaps), and optionally ``v1a,<base64 ed25519>`` with our
  published key.
- The body's ``jwe`` is the event encrypted to the subscriber's public JWK with joserfc:
  ``RSA-OAEP-256`` for RSA keys, ``ECDH-ES+A256KW`` for EC keys, ``A256GCM`` content
  encryption, the key's ``kid`` in the protected header, no compression.

Errors: ``SubscriberKeyError`` (a ``ValueError``): a subscriber key we will not encrypt to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from security.addresses import address_problem, host_problem

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
ENC = "A256GCM"
_ALG = {"RSA": "RSA-OAEP-256", "EC": "ECDH-ES+A256KW"}
_CURVES = frozenset({"P-256", "P-384", "P-521"})
_MIN_RSA_BITS = 2048


class SubscriberKeyError(ValueError):
    """A subscriber's public key that cannot be used: says which rule it breaks."""


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secrets_: list[str], msg_id: str, timestamp: int, body: bytes,
         signer: Ed25519PrivateKey | None = None) -> str:
    """The ``webhook-signature`` header: a ``v1`` entry per secret, then an optional ``v1a``
    with our ed25519 key (``ed25519_signer``)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    parts = [
        "v1," + base64.b64encode(
            hmac.new(_secret_bytes(s), content, hashlib.sha256).digest()).decode()
        for s in secrets_
    ]
    if signer is not None:
        parts.append("v1a," + base64.b64encode(signer.sign(content)).decode())
    return " ".join(parts)


def ed25519_signer(seed: bytes) -> Ed25519PrivateKey:
    """Our signing key from its stored 32-byte seed (load it once, sign many times)."""
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True, slots=True)
class RecipientKey:
    """A subscriber's public encryption key, checked and ready to encrypt to."""

    kid: str
    alg: str
    key: RSAKey | ECKey

    def encrypt(self, plaintext: bytes) -> str:
        header = {"alg": self.alg, "enc": ENC, "kid": self.kid, "cty": "application/json"}
        return jwe.encrypt_compact(header, plaintext, self.key, algorithms=[self.alg, ENC])


def recipient_key(jwk: Any) -> RecipientKey:
    """Check a subscriber's public JWK and load it; ``SubscriberKeyError`` says what is wrong."""
    if not isinstance(jwk, dict):
        raise SubscriberKeyError("public_jwk must be a JSON object (a JWK)")
    kty = jwk.get("kty")
    if kty not in _ALG:
        raise SubscriberKeyError(f"public_jwk: kty must be RSA or EC, not {kty!r}")
    if "d" in jwk or "p" in jwk:
        raise SubscriberKeyError("public_jwk holds a private key: send only the public part")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 200:
        raise SubscriberKeyError("public_jwk: kid is required (a string of 1-200 characters)")
    if jwk.get("use") not in (None, "enc"):
        raise SubscriberKeyError(f"public_jwk: use must be 'enc', not {jwk.get('use')!r}")
    if jwk.get("alg") not in (None, _ALG[kty]):
        raise SubscriberKeyError(f"public_jwk: alg must be {_ALG[kty]} for a {kty} key")
    try:
        if kty == "RSA":
            bits = len(base64.urlsafe_b64decode(str(jwk.get("n", "")) + "==")) * 8
            if bits < _MIN_RSA_BITS:
                raise SubscriberKeyError(f"public_jwk: RSA keys need {_MIN_RSA_BITS} bits or "
                                         f"more, this one has {bits}")
            key: RSAKey | ECKey = RSAKey.import_key(jwk)
        else:
            if jwk.get("crv") not in _CURVES:
                raise SubscriberKeyError(f"public_jwk: crv must be one of {sorted(_CURVES)}")
            key = ECKey.import_key(jwk)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, SubscriberKeyError):
            raise
        raise SubscriberKeyError(f"public_jwk is not a valid {kty} key: {exc}") from exc
    return RecipientKey(kid=kid, alg=_ALG[kty], key=key)


def pick_from_jwks(jwks: Any, kid: str) -> RecipientKey | None:
    """The key ``kid`` of a JWKS document, or None when the set does not hold it."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise SubscriberKeyError("the JWKS document has no 'keys' list")
    for jwk in keys:
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            return recipient_key({k: v for k, v in jwk.items() if k not in ("x5c", "x5t")})
    return None


def envelope(event_id: str, compact_jwe: str) -> bytes:
    """The exact body sent: ``{"id": ..., "jwe": ...}`` (the event stays inside the JWE)."""
    return json.dumps({"id": event_id, "jwe": compact_jwe}, separators=(",", ":")).encode()


def new_ed25519() -> tuple[bytes, bytes]:
    """A fresh ed25519 key: (32-byte private seed, 32-byte public key)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    return seed, public


def ed25519_jwk(kid: str, public: bytes) -> dict[str, str]:
    """Our public signing key as a JWK (OKP, Ed25519), for the published key set."""
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
            "x": base64.urlsafe_b64encode(public).rstrip(b"=").decode()}


def is_public_address(address: str) -> bool:
    """Whether an IP address is one we may send to (see ``security.addresses``)."""
    return address_problem(address) is None


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """What is wrong with a subscriber URL (webhook or JWKS) before any lookup, or None.

    https only, with a host and no credentials; a host that is an address, in any form a
    resolver reads as one (``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``), must be
    public, and local names are refused. A host name's addresses are checked when it is
    resolved: by ``gateway.webhook_http.target_problem``, on creation and at each delivery.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.scheme == "http" and not allow_private:
        return "must use https"
    if parts.username or parts.password:
        return "must not carry credentials"
    if len(url) > 2000:
        return "is longer than 2000 characters"
    if allow_private:
        return None
    return host_problem(parts.hostname)
