"""API keys: generated here, shown once, stored only as a hash.

A key reads ``rgw_<key id>_<secret>``: the key id (public, 12 hex digits) finds the stored
row, the secret (32 random bytes, base64url) is checked against its SHA-256 in constant
time. The secret is random and long, so a fast hash is the right one (a password hash
would only slow every request).

A key also has a name, saying who or what it is for: unique among a tenant's active keys,
so that a person can name the key to revoke. ``key_name`` is the rule a name follows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

_PATTERN = re.compile(r"^rgw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
NAME_LENGTH = 100


class KeyNameError(ValueError):
    """A key name that cannot be used: empty, too long, invisible characters, or the shape
    of a key id."""


def key_name(text: str) -> str:
    """The name as stored: Unicode NFC (a name typed on two systems compares equal), outer
    blanks removed. A name may not be empty, hold control or invisible format characters,
    pass ``NAME_LENGTH`` characters, or look like a key id (12 hex digits: ``keys revoke``
    takes either)."""
    name = unicodedata.normalize("NFC", text).strip()
    if not name:
        raise KeyNameError("a key name cannot be empty")
    if len(name) > NAME_LENGTH:
        raise KeyNameError(f"a key name has at most {NAME_LENGTH} characters; "
                           f"this one has {len(name)}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise KeyNameError("a key name cannot hold control, invisible or unassigned "
                           "characters")
    if _KEY_ID.match(name):
        raise KeyNameError("a key name cannot look like a key id (12 hex digits)")
    return name


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret_sha256: bytes
    text: str  # the whole key: shown to its owner once, never stored

    def __repr__(self) -> str:  # never let the key reach a log by accident
        return f"NewKey(key_id={self.key_id!r})"


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return NewKey(key_id, hash_secret(secret), f"rgw_{key_id}_{secret}")


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _PATTERN.match(text.strip())
    return (match[1], match[2]) if match else None


def matches(secret: str, stored_sha256: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_sha256)
