"""The keyring: the master keys that wrap the data keys (pure: bytes in, bytes out).

The keyring is kept outside the database, in a file of its own (``security.keyring_file``
reads and writes it). Its form, version 1, is UTF-8 JSON::

    {
      "format": "recon-gateway keyring",
      "version": 1,
      "primary": "mk-20261202t1200-3f9a0c1e",
      "keys": [
        {"id": "mk-20261202t1200-3f9a0c1e", "created_at": "2026-12-02T12:00:00Z",
         "state": "active", "key": "<32 bytes, standard base64>"},
        {"id": "mk-20250101t0900-0b7d2e44", "created_at": "2025-01-01T09:00:00Z",
         "state": "retired", "retired_at": "2026-12-02T12:30:00Z", "key": null}
      ]
    }

- ``primary`` names the master key that wraps new data keys; it is always ``active``.
- An ``active`` key that is not the primary still unwraps the data keys wrapped under it, until
  they are re-wrapped (``rotate`` adds a new primary; the data keys are re-wrapped afterwards,
  without touching a single field ciphertext).
- A ``retired`` key keeps its id and dates, for the record, but not its material: it unwraps
  nothing. ``retire`` refuses a key that still wraps a data key.

Errors: ``KeyringError`` (a ``ValueError``) names the keyring's source and what is wrong, and
never holds key material; ``MasterKey`` never shows its key in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

FORMAT = "recon-gateway keyring"
VERSION = 1
KEY_BYTES = 32  # AES-256
State = Literal["active", "retired"]
_STATES = ("active", "retired")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_id(text: object) -> bool:
    """A well-formed key id: the only text of the file a message may repeat (anything else,
    in a damaged file, could be key material)."""
    return isinstance(text, str) and 0 < len(text) <= 64 and set(text) <= _ID_CHARS


class KeyringError(ValueError):
    """A keyring that cannot be used; the message names its source and what is wrong."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"keyring {source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True, slots=True)
class MasterKey:
    id: str
    created_at: datetime
    state: State
    key: bytes | None = None  # None once retired
    retired_at: datetime | None = None

    def __repr__(self) -> str:  # the material never reaches a log by accident
        return f"MasterKey(id={self.id!r}, state={self.state!r})"


@dataclass(frozen=True, slots=True)
class Keyring:
    primary: str
    keys: tuple[MasterKey, ...]

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise KeyringError("(in memory)", problem)

    @property
    def primary_key(self) -> MasterKey:
        return self.get(self.primary)

    def get(self, key_id: str) -> MasterKey:
        """The master key ``key_id``; ``KeyError`` when the keyring has none of that id."""
        for key in self.keys:
            if key.id == key_id:
                return key
        raise KeyError(key_id)

    def material(self, key_id: str) -> bytes | None:
        """The 32 bytes of an active key, None for a retired or unknown one."""
        for key in self.keys:
            if key.id == key_id:
                return key.key
        return None


def _problem(ring: Keyring) -> str | None:
    ids = [k.id for k in ring.keys]
    if len(set(ids)) != len(ids):
        return "two keys share an id"
    for key in ring.keys:
        if not _is_id(key.id):
            return "a key id must be 1-64 characters of a-z, 0-9 and '-'"
        if key.state == "active" and (key.key is None or len(key.key) != KEY_BYTES):
            return f"active key {key.id} must have {KEY_BYTES} bytes of key material"
        if key.state == "retired" and key.key is not None:
            return f"retired key {key.id} must not keep its key material"
        if key.created_at.tzinfo is None:
            return f"key {key.id}: created_at must be an aware UTC time"
    if ring.primary not in ids:
        shown = repr(ring.primary) if _is_id(ring.primary) else "(not a key id)"
        return f"primary {shown} is not one of the keys"
    if next(k for k in ring.keys if k.id == ring.primary).state != "active":
        return f"primary {ring.primary} is retired"
    return None


def new_key_id(now: datetime) -> str:
    """``mk-<UTC minute>-<8 random hex digits>``: sortable by creation, unique in practice."""
    return f"mk-{now.astimezone(UTC):%Y%m%dt%H%M}-{secrets.token_hex(4)}"


def new_master_key(now: datetime) -> MasterKey:
    return MasterKey(id=new_key_id(now), created_at=now.astimezone(UTC), state="active",
                     key=secrets.token_bytes(KEY_BYTES))


def new_keyring(now: datetime) -> Keyring:
    """A keyring of one fresh master key, the primary."""
    key = new_master_key(now)
    return Keyring(primary=key.id, keys=(key,))


def rotate(ring: Keyring, now: datetime) -> Keyring:
    """The keyring with a new primary master key; the old keys stay active for unwrapping."""
    key = new_master_key(now)
    return Keyring(primary=key.id, keys=(*ring.keys, key))


def retire(ring: Keyring, key_id: str, now: datetime, *, wrapping: Iterable[str]) -> Keyring:
    """The keyring with ``key_id`` retired (its material dropped).

    ``wrapping`` is the master key id of every stored data key: a key that still wraps one,
    or the primary, is refused (re-wrap the data keys first)."""
    try:
        key = ring.get(key_id)
    except KeyError:
        raise KeyringError("(in memory)", f"no key {key_id!r} to retire") from None
    if key_id == ring.primary:
        raise KeyringError("(in memory)", f"{key_id} is the primary key: rotate first")
    still = sum(1 for wrapper in wrapping if wrapper == key_id)
    if still:
        raise KeyringError("(in memory)", f"{key_id} still wraps {still} data key(s): "
                                          "re-wrap them under the primary first")
    if key.state == "retired":
        return ring
    retired = replace(key, state="retired", key=None, retired_at=now.astimezone(UTC))
    return Keyring(primary=ring.primary,
                   keys=tuple(retired if k.id == key_id else k for k in ring.keys))


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(ring: Keyring) -> bytes:
    """The keyring file's bytes (version 1)."""
    keys: list[dict[str, Any]] = []
    for key in ring.keys:
        entry: dict[str, Any] = {"id": key.id, "created_at": _time(key.created_at),
                                 "state": key.state}
        if key.retired_at is not None:
            entry["retired_at"] = _time(key.retired_at)
        entry["key"] = base64.b64encode(key.key).decode() if key.key is not None else None
        keys.append(entry)
    document = {"format": FORMAT, "version": VERSION, "primary": ring.primary, "keys": keys}
    return (json.dumps(document, indent=2) + "\n").encode()


def loads(data: bytes, *, source: str) -> Keyring:
    """The keyring in ``data``; ``KeyringError`` names ``source`` and what is wrong."""
    if not data.strip():
        raise KeyringError(source, "the file is empty")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyringError(source, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:  # the position only: the text may hold key material
        raise KeyringError(source, f"not valid JSON (truncated or damaged?) at line "
                                   f"{exc.lineno} column {exc.colno}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyringError(source, f"not a keyring (\"format\" must be {FORMAT!r})")
    version = document.get("version")
    if version != VERSION:
        shown = version if isinstance(version, int) else "(not a number)"
        raise KeyringError(source, f"unknown version {shown}: this program reads "
                                   f"version {VERSION}")
    primary = document.get("primary")
    if not isinstance(primary, str):
        raise KeyringError(source, "\"primary\" must be a key id")
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise KeyringError(source, "\"keys\" must be a non-empty list")
    keys = tuple(_key(raw, n, source) for n, raw in enumerate(raw_keys, 1))
    try:
        return Keyring(primary=primary, keys=keys)
    except KeyringError as exc:
        raise KeyringError(source, exc.problem) from None


def _key(raw: object, n: int, source: str) -> MasterKey:
    if not isinstance(raw, Mapping):
        raise KeyringError(source, f"key {n} must be an object")
    where = f"key {n} ({raw['id']!r})" if _is_id(raw.get("id")) else f"key {n}"
    key_id, state, material = raw.get("id"), raw.get("state"), raw.get("key")
    if not isinstance(key_id, str):
        raise KeyringError(source, f"{where}: \"id\" must be a string")
    if state not in _STATES:
        raise KeyringError(source, f"{where}: \"state\" must be one of {list(_STATES)}")
    key: bytes | None = None
    if material is not None:
        if not isinstance(material, str):
            raise KeyringError(source, f"{where}: \"key\" must be base64 text")
        try:
            key = base64.b64decode(material, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(source, f"{where}: \"key\" is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise KeyringError(source, f"{where}: \"key\" must be {KEY_BYTES} bytes, "
                                       f"not {len(key)}")
    return MasterKey(id=key_id, created_at=_parse_time(raw.get("created_at"), where, source),
                     state=state, key=key,
                     retired_at=(None if raw.get("retired_at") is None else
                                 _parse_time(raw.get("retired_at"), where, source)))


def _parse_time(value: object, where: str, source: str) -> datetime:
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise KeyringError(source, f"{where}: times must read like 2026-12-02T12:00:00Z")
