"""Blind indexes: equality lookups on encrypted columns (pure).

A blind index is HMAC-SHA256 over a value's normalized form, truncated to ``INDEX_BYTES``
(16 bytes, 128 bits), under a key of its own for each purpose and scope:

    key   = HKDF-SHA256(ikm = the index secret, salt = none,
                        info = "recon-gateway blind index v1" 0x00 purpose 0x00 scope, 32 bytes)
    index = HMAC-SHA256(key, UTF-8 of purpose.normalize(value))[:16]

- The index secret is a data key of scope ``<tenant>/blind-index`` (``security.envelope``):
  wrapped by the master key, so a master key rotation re-wraps it and no index changes.
- The scope is the tenant: the same IBAN has unrelated indexes in two tenants.
- Equal normalized values give equal indexes; another purpose, scope or secret gives unrelated
  ones. 128 bits make a collision between two different values negligible (about 2**64 values
  before one is likely), so a lookup by index needs no second check; what an index shows is
  which rows hold the same value, which the lookup needs anyway.

``PURPOSES`` is the table of the indexes the store keeps; a purpose whose normalization lives
elsewhere (a name, as the matching engine normalizes it) is made with ``Purpose(name, fn)``,
the function passed in by the caller (``security`` imports nothing of the engine).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INDEX_BYTES = 16
_INFO = b"recon-gateway blind index v1"


def compact_upper(value: str) -> str:
    """An account number as compared: upper case, no blanks of any kind."""
    return "".join(value.split()).upper()


def iban_form(value: str) -> str:
    """An IBAN as compared: its ASCII letters and digits, upper case. Blanks, hyphens, dots
    and invisible characters that people and banks put in are dropped, as the matching
    engine drops them, so ``DE89-3704 0044...`` finds the owner of ``DE8937040044...``."""
    return "".join(c for c in value if c.isascii() and c.isalnum()).upper()


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    normalize: Callable[[str], str]
    about: str = ""


IBAN = Purpose("iban", iban_form, "an IBAN (customers and accounts), to find its owner")
ACCOUNT = Purpose("account", compact_upper,
                  "a bank account number that is not an IBAN, to find its account")
PURPOSES = (IBAN, ACCOUNT)


class BlindIndexer:
    """Computes blind indexes with one index secret (32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a blind index secret has at least 32 bytes")
        self._secret = secret
        self._keys: dict[tuple[str, str], bytes] = {}

    def __repr__(self) -> str:
        return "BlindIndexer()"

    def key(self, purpose: str, scope: str) -> bytes:
        """The HMAC key of one purpose and scope (derived once, then kept)."""
        found = self._keys.get((purpose, scope))
        if found is None:
            if "\x00" in purpose or "\x00" in scope:
                raise ValueError("a purpose or scope cannot hold a NUL character")
            info = _INFO + b"\x00" + purpose.encode() + b"\x00" + scope.encode()
            found = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=info).derive(self._secret)
            self._keys[(purpose, scope)] = found
        return found

    def index(self, purpose: Purpose, value: str, *, scope: str) -> bytes:
        """The blind index of ``value`` for ``purpose`` in ``scope`` (the tenant)."""
        try:
            normalized = purpose.normalize(value).encode()
        except UnicodeEncodeError:
            raise ValueError(f"a {purpose.name} value holds a lone surrogate: not text") from None
        mac = hmac.new(self.key(purpose.name, scope), normalized, hashlib.sha256)
        return mac.digest()[:INDEX_BYTES]

    def hasher(self, purpose: str, scope: str) -> hmac.HMAC:
        """A keyed SHA-256 to feed bytes as they stream (a raw document: its whole 32-byte
        digest replaces the plain SHA-256 that finds a document sent before, which would
        let anyone holding a dump confirm a guessed file)."""
        return hmac.new(self.key(purpose, scope), digestmod=hashlib.sha256)
