"""The audit trail: entries hash-chained over RFC 8785 canonical JSON, and signed checkpoints
(pure: the caller gives the time, the head of the chain and the signing key).

An entry says who (``actor``) did what (``action``) to which thing (``object``), with the
thing's state ``before`` and ``after``; its ``seq`` follows the head's, its ``prev`` is the
head's hash, and its ``hash`` is SHA-256 over the canonical JSON of everything else (computed
here with the ``rfc8785`` package; ``security.audit_verify`` checks it with a short canonical
form of its own, so writing and checking do not share that code). Sensitive values never go
in ``before`` or ``after`` as text: put a reference (a blind index, a row id) instead.

Values are made JSON first (``jsonable``): ``Decimal`` becomes its string (never a float),
dates and aware times their ISO form (UTC, ``Z``), tuples lists; floats, naive times, bytes,
integers past 2**53 - 1 and unpaired surrogates are refused with ``AuditValueError``.

A checkpoint signs, with an ed25519 key kept outside the database, the chain's head and the
Merkle root (RFC 6962) of every entry up to it; docs/audit.md has the recipe.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security.audit_verify import (
    GENESIS,
    MAX_INTEGER,
    MerkleFrontier,
    Problem,
    checkpoint_payload,
    verify_chain,
)

__all__ = ["GENESIS", "START", "AuditValueError", "Checkpoint", "Entry", "Head",
           "MerkleFrontier", "Problem", "actor", "jsonable", "new_entry", "sign_checkpoint",
           "verify"]

VERSION = 1
Json = Any  # None | bool | int | str | list[Json] | dict[str, Json]


class AuditValueError(ValueError):
    """A value an entry cannot hold; says where in the entry."""


class Head(NamedTuple):
    """The last entry of a chain: its seq and hash (``Head(0, GENESIS)`` before the first)."""

    seq: int
    hash: str


START = Head(0, GENESIS)


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise AuditValueError("times must be aware (UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonable(value: Any, where: str = "value") -> Json:
    """``value`` as the JSON an entry may hold (see the module's docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_text(value, where)
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise AuditValueError(f"{where}: integer beyond 2**53 - 1 (write it as text)")
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item, f"{where}[{n}]") for n, item in enumerate(value)]
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditValueError(f"{where}: object keys must be text, not {key!r}")
            _check_text(key, f"{where} (a key)")
            result[key] = jsonable(item, f"{where}.{key}")
        return result
    raise AuditValueError(f"{where}: a {type(value).__name__} cannot go in an audit entry"
                          + (" (amounts are Decimal)" if isinstance(value, float) else ""))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate, as json.loads lets through
        raise AuditValueError(f"{where}: text that is not valid Unicode") from None


def actor(kind: str, ident: str, name: str | None = None) -> dict[str, str]:
    """Who acts: ``kind`` is ``api_key`` (id and name), ``user`` or ``system`` (a worker, a
    command run on the server)."""
    if kind not in ("api_key", "user", "system"):
        raise AuditValueError(f"actor kind must be api_key, user or system, not {kind!r}")
    return {"type": kind, "id": ident, **({"name": name} if name is not None else {})}


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    time: str
    actor: Mapping[str, Json]
    action: str
    object: Mapping[str, Json]
    before: Json
    after: Json
    prev: str
    hash: str

    @property
    def head(self) -> Head:
        return Head(self.seq, self.hash)

    def as_json(self) -> dict[str, Json]:
        """The entry's JSON object (an export's line, and what the hash covers)."""
        return {"v": VERSION, "seq": self.seq, "time": self.time, "actor": dict(self.actor),
                "action": self.action, "object": dict(self.object), "before": self.before,
                "after": self.after, "prev": self.prev, "hash": self.hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> Entry:
        """An entry as stored or exported (unchecked: ``verify`` says whether it holds)."""
        return cls(seq=data["seq"], time=data["time"], actor=data["actor"],
                   action=data["action"], object=data["object"], before=data["before"],
                   after=data["after"], prev=data["prev"], hash=data["hash"])


def _hash(body: Mapping[str, Json]) -> str:
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def new_entry(head: Head, *, time: datetime, actor: Mapping[str, str], action: str,
              object: Mapping[str, Any], before: Any = None,
              after: Any = None) -> Entry:
    """The entry that follows ``head``."""
    if not isinstance(action, str) or not action:
        raise AuditValueError("an entry needs an action (text)")
    _check_text(action, "action")
    body: dict[str, Json] = {
        "v": VERSION, "seq": head.seq + 1, "time": _time(time),
        "actor": jsonable(actor, "actor"), "action": action,
        "object": jsonable(object, "object"), "before": jsonable(before, "before"),
        "after": jsonable(after, "after"), "prev": head.hash}
    return Entry(seq=head.seq + 1, time=body["time"], actor=body["actor"], action=action,
                 object=body["object"], before=body["before"], after=body["after"],
                 prev=head.hash, hash=_hash(body))


def verify(entries: Sequence[Entry], *, start: Head | None = START) -> Problem | None:
    """The first bad entry of a chain, or None (``audit_verify.verify_chain``)."""
    return verify_chain([e.as_json() for e in entries],
                        start=None if start is None else (start.seq, start.hash))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain: str
    seq: int
    head: str
    root: str
    time: str
    key_id: str
    signature: str  # base64 of the 64-byte ed25519 signature

    def as_json(self) -> dict[str, Json]:
        return {"v": VERSION, "chain": self.chain, "seq": self.seq, "head": self.head,
                "root": self.root, "time": self.time, "key_id": self.key_id,
                "signature": self.signature}


def sign_checkpoint(key: Ed25519PrivateKey, key_id: str, *, chain: str, head: Head,
                    root: bytes, time: datetime) -> Checkpoint:
    """A signed checkpoint of ``chain`` at ``head``, whose entries 1..head.seq have the
    Merkle root ``root`` (keep a ``MerkleFrontier`` as entries are appended)."""
    fields: dict[str, Json] = {"v": VERSION, "chain": chain, "seq": head.seq,
                               "head": head.hash, "root": root.hex(), "time": _time(time),
                               "key_id": key_id}
    signature = key.sign(checkpoint_payload(fields))
    return Checkpoint(chain=chain, seq=head.seq, head=head.hash, root=root.hex(),
                      time=fields["time"], key_id=key_id,
                      signature=base64.b64encode(signature).decode())
