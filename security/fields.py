"""Field encryption at rest: one value of one column of one row (pure).

A field's ciphertext, version 1, is compact bytes (34 bytes more than the value)::

    offset  size  what
    0       1     format version: 0x01
    1       1     kind: 0x00 bytes, 0x01 text (UTF-8)
    2       4     data key id, unsigned big-endian (``security.envelope``)
    6       12    nonce, random
    18      n+16  AES-256-GCM ciphertext of the value, then its tag

The associated data is those first 6 bytes, then the table and the column, each as a 2-byte
big-endian length and its UTF-8 bytes, then the row: the number of parts of its primary key
(1 byte) and each part the same way (integers in decimal). A ciphertext copied to another row
or column (or relabelled as another kind or key) fails its tag, and ``FieldError`` names the
place that was read. The row is the whole primary key, tenant included (``("t1", 42)``), so a
ciphertext cannot move between tenants either; a single value stands for a one-part key.

``None`` stays ``None`` (the column is NULL): encryption hides a value, not whether one is
there. Plaintext lengths show through (ciphertext = value + 34 bytes).

Nonces are random: NIST SP 800-38D allows 2**32 encryptions under one key that way; a data key
covers one table of one tenant, and the store starts a new data key for the scope long before
(docs/security.md).

Errors: ``FieldError`` (a ``ValueError``): which table, column and row, and why.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from security.envelope import DataKey

Row = str | int | tuple[str | int, ...]

VERSION = 1
BYTES, TEXT = 0, 1
HEADER = 6
NONCE = 12
TAG = 16
OVERHEAD = HEADER + NONCE + TAG
_HEAD = struct.Struct(">BBI")


class FieldError(ValueError):
    """A field that cannot be decrypted (or a value that cannot be encrypted)."""


def _part(text: str) -> bytes:
    data = text.encode()
    if len(data) > 0xFFFF:
        raise FieldError("a table, column or row identity is longer than 65535 bytes")
    return struct.pack(">H", len(data)) + data


@dataclass(frozen=True, slots=True)
class Column:
    """Where a field lives, short of its row: make one per column and keep it."""

    table: str
    column: str
    _bound: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bound", _part(self.table) + _part(self.column))

    def associated(self, header: bytes, row: Row) -> bytes:
        return header + self._bound + _row(row)


_LENGTHS = [n.to_bytes(2, "big") for n in range(256)]


def _row(row: Row) -> bytes:
    parts = row if isinstance(row, tuple) else (row,)
    if not 1 <= len(parts) <= 255:
        raise FieldError("a row identity has 1 to 255 parts")
    out = [_LENGTHS[len(parts)][1:]]
    for part in parts:
        data = (part if part.__class__ is str else str(part)).encode()
        size = len(data)
        if size > 0xFFFF:
            raise FieldError("a row identity part is longer than 65535 bytes")
        out.append(_LENGTHS[size] if size < 256 else size.to_bytes(2, "big"))
        out.append(data)
    return b"".join(out)


class FieldCipher:
    """Encrypts and decrypts fields with the data keys it was given (unwrapped once, at
    start, from the stored wrapped keys)."""

    def __init__(self, keys: Iterable[DataKey] = ()) -> None:
        self._aead: dict[int, AESGCM] = {}
        self._scope: dict[int, str] = {}
        self._current: dict[str, int] = {}
        for key in keys:
            self.add(key)

    def add(self, key: DataKey) -> None:
        """Hold ``key`` too; the newest (highest id) of a scope takes that scope's writes."""
        self._aead[key.id] = AESGCM(key.secret)
        self._scope[key.id] = key.scope
        if key.id > self._current.get(key.scope, 0):
            self._current[key.scope] = key.id

    def current(self, scope: str) -> int:
        """The id of the data key that encrypts new values of ``scope``."""
        try:
            return self._current[scope]
        except KeyError:
            raise FieldError(f"no data key for scope {scope!r}") from None

    def encrypt(self, value: str | bytes | None, column: Column, row: Row, *,
                key_id: int) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                kind, plain = TEXT, value.encode()
            except UnicodeEncodeError:  # an unpaired surrogate, as json.loads lets through
                raise FieldError(f"{_where(column, row)}: text that is not valid Unicode "
                                 "cannot be encrypted") from None
        else:
            kind, plain = BYTES, value
        aead = self._aead.get(key_id)
        if aead is None:
            raise FieldError(f"{_where(column, row)}: no data key {key_id}")
        header = _HEAD.pack(VERSION, kind, key_id)
        nonce = secrets.token_bytes(NONCE)
        return header + nonce + aead.encrypt(nonce, plain, column.associated(header, row))

    def decrypt_text(self, blob: bytes | None, column: Column, row: Row) -> str | None:
        plain = self._decrypt(blob, column, row, TEXT)
        return None if plain is None else plain.decode()

    def decrypt_bytes(self, blob: bytes | None, column: Column,
                      row: Row) -> bytes | None:
        return self._decrypt(blob, column, row, BYTES)

    def _decrypt(self, blob: bytes | None, column: Column, row: Row,
                 kind: int) -> bytes | None:
        if blob is None:
            return None
        if len(blob) < OVERHEAD:
            raise FieldError(f"{_where(column, row)}: {len(blob)} bytes is too short for a "
                             "ciphertext")
        version, found, key_id = _HEAD.unpack_from(blob)
        aead = self._aead.get(key_id)
        if version != VERSION or found != kind or aead is None:
            raise FieldError(f"{_where(column, row)}: {_mislabelled(version, found, kind, key_id)}")
        try:
            return aead.decrypt(blob[HEADER:HEADER + NONCE], blob[HEADER + NONCE:],
                                column.associated(blob[:HEADER], row))
        except InvalidTag:
            raise FieldError(f"{_where(column, row)}: does not decrypt: the ciphertext belongs "
                             "to another row or column, or was altered") from None


def _where(column: Column, row: Row) -> str:
    return f"{column.table}.{column.column} row {row}"


def _mislabelled(version: int, found: int, kind: int, key_id: int) -> str:
    if version != VERSION:
        return f"unknown ciphertext version {version}"
    if found != kind:
        names = {BYTES: "bytes", TEXT: "text"}
        return f"holds {names.get(found, f'kind {found}')}, read as {names[kind]}"
    return f"encrypted with data key {key_id}, which is not loaded"


def key_id_of(blob: bytes) -> int:
    """The data key id a ciphertext names (for status and re-encryption), unchecked."""
    if len(blob) < HEADER:
        raise FieldError(f"{len(blob)} bytes is too short for a ciphertext")
    return int(_HEAD.unpack_from(blob)[2])
