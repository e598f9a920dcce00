"""data_keys: the wrapped data keys (migration 0015), and this process's keyring.

Every read and write of an encrypted column goes through its table's one place in
``gateway.store``, which calls ``encrypt`` and ``cipher_for`` here (docs/security.md):

- ``encrypt`` takes the scope's current data key (``<tenant>/<table>``), made on first use:
  its id from ``data_keys_id_seq``, wrapped under the keyring's primary master key, then
  ``INSERT ... ON CONFLICT DO NOTHING`` on the one-current-key-per-scope index, so two
  processes racing to make it end up with the same one (the loser reads the winner's). It
  is made in the caller's transaction: rolled back with it, it takes no field with it.
- ``cipher_for`` reads the data keys that given ciphertexts name (their 4-byte key id), of
  the tenant only, so a ciphertext moved to another tenant's row names no key there.

A data key is unwrapped once per process (``Keys.unwrap`` keeps it, keyed by its whole
stored form, so a key re-wrapped by a rotation, or a database emptied and filled again by
tests, is never mistaken for another). The wrapped row is read each time, a primary key
look-up: what the cache holds is the AES cipher, not the row.

The keyring: a process opens its file once at start (``gateway.keyring_start``) and
``install``s it; ``process_keys`` gives it to the store. When a data key names a master key
the keyring does not hold (``keyring rotate`` ran in another process and re-wrapped it), the
file is read again once, so a running service follows a rotation without a restart.

Errors: ``KeyringNotOpenError`` (no keyring installed in this process: a programming
error); ``security.envelope.UnwrapError`` and ``security.fields.FieldError`` as the core
raises them, naming the key or the table, column and row, never a key.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from security import keyring_file
from security.envelope import (
    DataKey,
    UnwrapError,
    WrappedKey,
    due_for_replacement,
    new_data_key,
    scope,
    unwrap,
    wrap,
)
from security.fields import Column, FieldCipher, FieldError, Row, key_id_of
from security.keyring import Keyring

CACHE = 4096  # unwrapped data keys a process keeps (a few per tenant)


class KeyringNotOpenError(RuntimeError):
    """No keyring was opened in this process (``gateway.keyring_start`` does it at start)."""


class Keys:
    """This process's keyring (re-read when its file changes) and the data keys it
    unwrapped."""

    def __init__(self, path: Path, ring: Keyring) -> None:
        self.path = path
        self._ring = ring
        self._seen = _identity(path)
        self._unwrapped: OrderedDict[tuple[int, str, str, bytes], DataKey] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def read(cls, path: Path) -> Keys:
        return cls(path, keyring_file.read(path))

    def __repr__(self) -> str:
        return f"Keys(path={str(self.path)!r}, primary={self._ring.primary!r})"

    @property
    def ring(self) -> Keyring:
        """The keyring, read again first if its file was replaced (a rotation)."""
        seen = _identity(self.path)
        if seen != self._seen:
            self._ring = keyring_file.read(self.path)
            self._seen = seen
        return self._ring

    def unwrap(self, stored: WrappedKey) -> DataKey:
        """The data key in ``stored``; ``UnwrapError`` says why not."""
        cached = (stored.id, stored.scope, stored.master_key_id, stored.wrapped)
        with self._lock:
            key = self._unwrapped.get(cached)
            if key is not None:
                self._unwrapped.move_to_end(cached)
                return key
        key = unwrap(stored, self.ring)
        with self._lock:
            self._unwrapped[cached] = key
            while len(self._unwrapped) > CACHE:
                self._unwrapped.popitem(last=False)
        return key


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


_process: Keys | None = None


def install(keys: Keys | None) -> Keys | None:
    """Make ``keys`` this process's keyring; returns the one it replaces."""
    global _process
    previous, _process = _process, keys
    return previous


def process_keys() -> Keys:
    if _process is None:
        raise KeyringNotOpenError("no keyring is open in this process: the service opens it "
                                  "at start (gateway.keyring_start.open_keyring)")
    return _process


@dataclass(frozen=True, slots=True)
class StoredKey:
    wrapped: WrappedKey
    encryptions: int
    created_at: datetime
    retired: bool


_FIELDS = "id, scope, master_key_id, wrapped, encryptions, created_at, retired"


def _stored(row: asyncpg.Record) -> StoredKey:
    return StoredKey(WrappedKey(id=row["id"], scope=row["scope"],
                                master_key_id=row["master_key_id"],
                                wrapped=bytes(row["wrapped"])),
                     row["encryptions"], row["created_at"], row["retired"])


async def every(conn: asyncpg.Connection) -> list[StoredKey]:
    """Every stored data key, of every tenant, in id order."""
    rows = await conn.fetch(f"SELECT {_FIELDS} FROM data_keys ORDER BY id")  # noqa: S608
    return [_stored(r) for r in rows]


async def count(conn: asyncpg.Connection) -> int:
    found: int = await conn.fetchval("SELECT count(*) FROM data_keys")
    return found


async def current(conn: asyncpg.Connection, tenant: str, table: str, *,
                  keys: Keys | None = None) -> DataKey:
    """The data key that encrypts new values of ``table`` for ``tenant``, made (or, when
    due, replaced by a new one) in the caller's transaction."""
    keys = keys or process_keys()
    name = scope(tenant, table)
    row = await conn.fetchrow(
        f"SELECT {_FIELDS} FROM data_keys"  # noqa: S608 - the column list is a constant
        " WHERE tenant_id = $1 AND scope = $2 AND NOT retired", tenant, name)
    if row is not None:
        found = _stored(row)
        if not due_for_replacement(found.encryptions, found.created_at, datetime.now(UTC)):
            return keys.unwrap(found.wrapped)
        await conn.execute("UPDATE data_keys SET retired = true"
                           " WHERE tenant_id = $1 AND id = $2 AND NOT retired",
                           tenant, found.wrapped.id)
    key_id: int = await conn.fetchval("SELECT nextval('data_keys_id_seq')")
    made = new_data_key(key_id, name)
    stored = wrap(made, keys.ring)
    inserted = await conn.fetchval(
        "INSERT INTO data_keys (tenant_id, id, scope, master_key_id, wrapped)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (tenant_id, scope) WHERE NOT retired DO NOTHING RETURNING id",
        tenant, key_id, name, stored.master_key_id, stored.wrapped)
    if inserted is not None:
        return made
    row = await conn.fetchrow(  # another process made it first: take theirs
        f"SELECT {_FIELDS} FROM data_keys"  # noqa: S608 - the column list is a constant
        " WHERE tenant_id = $1 AND scope = $2 AND NOT retired", tenant, name)
    return keys.unwrap(_stored(row).wrapped)


async def encrypt(conn: asyncpg.Connection, tenant: str,
                  values: Iterable[tuple[Column, Row, str | bytes | None]], *,
                  keys: Keys | None = None) -> list[bytes | None]:
    """The ciphertexts of ``values`` (each a column of one table, a row and a value),
    under the table's current data key; counts them on the key."""
    todo = list(values)
    tables = {column.table for column, _, _ in todo}
    if not todo:
        return []
    if len(tables) != 1:
        raise FieldError(f"one table at a time, not {sorted(tables)}")
    key = await current(conn, tenant, tables.pop(), keys=keys)
    cipher = FieldCipher([key])
    out = [cipher.encrypt(value, column, row, key_id=key.id) for column, row, value in todo]
    used = sum(1 for blob in out if blob is not None)
    if used:
        await conn.execute("UPDATE data_keys SET encryptions = encryptions + $3"
                           " WHERE tenant_id = $1 AND id = $2", tenant, key.id, used)
    return out


async def cipher_for(conn: asyncpg.Connection, tenant: str,
                     blobs: Iterable[bytes | None], *,
                     keys: Keys | None = None) -> FieldCipher:
    """A cipher holding the tenant's data keys that ``blobs`` name (a key id another
    tenant's or unknown is left out: decrypting says so)."""
    keys = keys or process_keys()
    ids = sorted({key_id_of(blob) for blob in blobs if blob is not None})
    if not ids:
        return FieldCipher()
    rows = await conn.fetch(
        f"SELECT {_FIELDS} FROM data_keys"  # noqa: S608 - the column list is a constant
        " WHERE tenant_id = $1 AND id = ANY($2::bigint[])", tenant, ids)
    return FieldCipher(keys.unwrap(_stored(r).wrapped) for r in rows)


async def rewrap_all(conn: asyncpg.Connection, keys: Keys, *, batch: int = 100) -> int:
    """Re-wrap every data key not wrapped by the keyring's primary under it, a batch per
    short transaction; returns how many. Each row is updated only if still as read (two
    rotations at once, or a key made meanwhile under the old primary, are both safe: the
    loser's rows are re-read on its next round)."""
    done = 0
    while True:
        ring = keys.ring
        rows = await conn.fetch(
            f"SELECT tenant_id, {_FIELDS} FROM data_keys"  # noqa: S608 - constant columns
            " WHERE master_key_id <> $1 ORDER BY id LIMIT $2", ring.primary, batch)
        if not rows:
            return done
        changed = 0
        async with conn.transaction():
            for row in rows:
                old = _stored(row).wrapped
                new = wrap(keys.unwrap(old), ring)
                status = await conn.execute(
                    "UPDATE data_keys SET master_key_id = $3, wrapped = $4, rewrapped_at = now()"
                    " WHERE tenant_id = $1 AND id = $2 AND master_key_id = $5 AND wrapped = $6",
                    row["tenant_id"], old.id, new.master_key_id, new.wrapped,
                    old.master_key_id, old.wrapped)
                changed += int(status.split()[-1])
        done += changed
        if changed == 0 and keys.ring.primary == ring.primary:
            raise UnwrapError("data keys keep changing under the re-wrap; run it again")
