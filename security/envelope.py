"""Data keys, wrapped by a master key of the keyring (pure).

A data key is 32 random bytes (AES-256) that encrypts fields (``security.fields``). It is
stored only wrapped: AES-256-GCM under a master key, as ``WrappedKey`` (its id, its scope, the
id of the master key that wraps it, and ``wrapped`` = 12-byte nonce + 32-byte ciphertext +
16-byte tag). The associated data of the wrapping binds the wrapped key to its id, scope and
master key id, so a wrapped key copied to another row, or relabelled, does not unwrap.

The scope says what a data key encrypts (``scope``): ``<tenant>/<table>`` for field data
keys, ``<tenant>/blind-index`` for the secret of the blind indexes (docs/security.md says
why). A scope may hold several data keys over time: the newest takes the writes, the older
ones still read; ``due_for_replacement`` says when a new one is due. The key id is the
storing table's integer id, so it fits in 4 bytes of every ciphertext.

Rotation of master keys re-wraps the data keys (``rewrap``): their bytes do not change, so no
field ciphertext is touched.

Errors: ``UnwrapError`` (a ``ValueError``): a wrapped key that the keyring cannot unwrap,
saying why (its master key retired or unknown, or the wrapped bytes altered).
"""

from __future__ import annotations

import secrets
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.keyring import Keyring

DATA_KEY_BYTES = 32
MAX_KEY_ID = 2**32 - 1
_NONCE = 12
_LABEL = b"recon-gateway data key v1"
BLIND_INDEX = "blind-index"
# A data key takes new writes until it has encrypted this many values (a quarter of the 2**32
# that random 96-bit nonces allow, NIST SP 800-38D) or is this old; then a new one does.
ENCRYPTION_BUDGET = 2**30
KEY_LIFETIME = timedelta(days=365)


class UnwrapError(ValueError):
    """A wrapped data key that cannot be unwrapped; the message says which and why."""


@dataclass(frozen=True, slots=True)
class DataKey:
    id: int
    scope: str
    secret: bytes

    def __repr__(self) -> str:  # never the secret
        return f"DataKey(id={self.id}, scope={self.scope!r})"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as stored: safe to keep in the database."""

    id: int
    scope: str
    master_key_id: str
    wrapped: bytes


def _check_id(key_id: int) -> None:
    if not 1 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"a data key id is 1..{MAX_KEY_ID}, not {key_id}")


def _associated(key_id: int, scope: str, master_key_id: str) -> bytes:
    scope_b, master_b = scope.encode(), master_key_id.encode()
    return (_LABEL + struct.pack(">IH", key_id, len(scope_b)) + scope_b
            + struct.pack(">H", len(master_b)) + master_b)


def scope(tenant: str, table: str) -> str:
    """A data key's scope: ``<tenant>/<table>``, or ``<tenant>/blind-index``
    (``BLIND_INDEX``) for the secret of a tenant's blind indexes."""
    if not tenant or not table or "/" in table:
        raise ValueError(f"a scope needs a tenant and a table without '/', not {table!r}")
    return f"{tenant}/{table}"


def due_for_replacement(encryptions: int, created_at: datetime, now: datetime, *,
                        scope: str = "") -> bool:
    """Whether a scope's current data key should give way to a new one for writes (it
    stays for reading what it encrypted). Never for a blind-index secret: it has no nonce
    budget, and a new one would orphan every stored index until all were computed again."""
    if scope.endswith("/" + BLIND_INDEX):
        return False
    return encryptions >= ENCRYPTION_BUDGET or now - created_at >= KEY_LIFETIME


def wrapping(ring: Keyring, stored: Iterable[WrappedKey]) -> dict[str, int]:
    """How many stored data keys each master key of the keyring wraps (``keyring status``),
    with the ids the keyring does not hold (a wrong keyring) counted too."""
    counts = Counter(key.master_key_id for key in stored)
    return {**{key.id: counts.pop(key.id, 0) for key in ring.keys}, **counts}


def new_data_key(key_id: int, scope: str) -> DataKey:
    """A fresh data key (``key_id`` comes from the table that will store it)."""
    _check_id(key_id)
    return DataKey(id=key_id, scope=scope, secret=secrets.token_bytes(DATA_KEY_BYTES))


def wrap(key: DataKey, ring: Keyring) -> WrappedKey:
    """``key`` wrapped under the keyring's primary master key."""
    _check_id(key.id)
    master = ring.primary_key
    if master.key is None:  # a Keyring's primary is always active; said for the type checker
        raise UnwrapError(f"primary master key {master.id} has no material")
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(master.key).encrypt(nonce, key.secret,
                                        _associated(key.id, key.scope, master.id))
    return WrappedKey(id=key.id, scope=key.scope, master_key_id=master.id,
                      wrapped=nonce + sealed)


def unwrap(stored: WrappedKey, ring: Keyring) -> DataKey:
    """The data key inside ``stored``; ``UnwrapError`` says why it cannot be had."""
    what = f"data key {stored.id} ({stored.scope})"
    try:
        master = ring.get(stored.master_key_id)
    except KeyError:
        raise UnwrapError(f"{what} is wrapped by master key {stored.master_key_id}, which "
                          "this keyring does not hold (wrong keyring?)") from None
    if master.key is None:
        raise UnwrapError(f"{what} is wrapped by master key {master.id}, which is retired")
    if len(stored.wrapped) != _NONCE + DATA_KEY_BYTES + 16:
        raise UnwrapError(f"{what}: the wrapped key has {len(stored.wrapped)} bytes, "
                          f"not {_NONCE + DATA_KEY_BYTES + 16}")
    try:
        secret = AESGCM(master.key).decrypt(
            stored.wrapped[:_NONCE], stored.wrapped[_NONCE:],
            _associated(stored.id, stored.scope, master.id))
    except InvalidTag:
        raise UnwrapError(f"{what} does not unwrap under master key {master.id}: the wrapped "
                          "bytes, its id or its scope were changed, or the key is not the one "
                          "that wrapped it") from None
    return DataKey(id=stored.id, scope=stored.scope, secret=secret)


def rewrap(stored: WrappedKey, ring: Keyring) -> WrappedKey:
    """``stored`` wrapped under the keyring's primary (itself if it already is)."""
    if stored.master_key_id == ring.primary:
        return stored
    return wrap(unwrap(stored, ring), ring)
