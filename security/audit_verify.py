"""Verification of the audit trail, by anyone: the standard library and ``cryptography`` only.

This module imports nothing else, so an auditor can copy it and run it apart from the gateway
with the short script in docs/audit.md. ``security.audit`` writes entries and signs
checkpoints; this module checks them, and is what ``verify`` there (and, once wired, the
``recon-gateway audit verify`` command) uses.

The recipe (docs/audit.md says it in full):

- An entry is a JSON object with exactly the keys ``v`` (1), ``seq``, ``time``, ``actor``,
  ``action``, ``object``, ``before``, ``after``, ``prev`` and ``hash``. Its ``hash`` is the
  lower-case hex SHA-256 of the canonical JSON (RFC 8785) of the entry without ``hash``; its
  ``prev`` is the previous entry's ``hash`` (64 zeros for seq 1). Values are strings,
  integers of at most 2**53 - 1, booleans, null, lists and objects (no floats: amounts are
  decimal strings), so ``canonical`` below is RFC 8785 in full for them.
- The Merkle tree is RFC 6962's over the entries' hashes (32 bytes each) in seq order: a leaf
  is SHA-256(0x00 || hash), a node SHA-256(0x01 || left || right).
- A checkpoint signs, with ed25519, ``PAYLOAD_LABEL`` followed by the canonical JSON of
  ``{"v", "chain", "seq", "head", "root", "time", "key_id"}``: the chain's head (the ``hash``
  of entry ``seq``) and the Merkle root of entries 1..seq.

``verify_chain`` finds the first bad entry of a list; ``verify_export`` checks an export
against signed checkpoints too, which catches a chain rewritten whole with its hashes
recomputed. Both return a ``Problem`` (seq, kind, detail), or None when all is well.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _string  # json.dumps(s, ensure_ascii=False)
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
ENTRY_KEYS = frozenset({"v", "seq", "time", "actor", "action", "object", "before", "after",
                        "prev", "hash"})
CHECKPOINT_KEYS = ("v", "chain", "seq", "head", "root", "time", "key_id")
PAYLOAD_LABEL = b"recon-gateway audit checkpoint v1\n"
MAX_INTEGER = 2**53 - 1
_HEX = frozenset("0123456789abcdef")


# --- canonical JSON (RFC 8785) for the values an entry may hold -------------------------------

def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``, which may hold no floats (``ValueError``)."""
    return _canonical(value).encode("utf-8")


def _canonical(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ValueError(f"integer {value} is beyond 2**53 - 1")
        return str(value)
    if isinstance(value, str):  # escapes as RFC 8785: \" \\ \b \f \n \r \t, else \u00xx
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object keys must be strings")
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code units
        return "{" + ",".join(_string(key) + ":" + _canonical(value[key]) for key in keys) + "}"
    raise ValueError(f"{type(value).__name__} is not allowed in an audit entry")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash an entry should carry: hex SHA-256 of its canonical form without ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


# --- Merkle tree (RFC 6962) --------------------------------------------------------------------

def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of the leaves ``hashes`` (the entries' 32-byte hashes)."""
    def tree(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return hashlib.sha256(b"\x00" + hashes[lo]).digest()
        split = 1
        while split * 2 < hi - lo:
            split *= 2
        return hashlib.sha256(b"\x01" + tree(lo, lo + split) + tree(lo + split, hi)).digest()
    return tree(0, len(hashes)) if hashes else hashlib.sha256(b"").digest()


class MerkleFrontier:
    """The same root, kept as leaves arrive: the roots of the perfect subtrees so far
    (one per bit of the leaf count), so adding a leaf or taking the root costs O(log n)."""

    def __init__(self) -> None:
        self._nodes: list[tuple[int, bytes]] = []  # (height, subtree root), heights falling
        self.size = 0

    def add(self, leaf: bytes) -> None:
        height, node = 0, hashlib.sha256(b"\x00" + leaf).digest()
        while self._nodes and self._nodes[-1][0] == height:
            node = hashlib.sha256(b"\x01" + self._nodes.pop()[1] + node).digest()
            height += 1
        self._nodes.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._nodes:
            return hashlib.sha256(b"").digest()
        root = self._nodes[-1][1]
        for _, node in reversed(self._nodes[:-1]):
            root = hashlib.sha256(b"\x01" + node + root).digest()
        return root


# --- checkpoints -------------------------------------------------------------------------------

def checkpoint_payload(checkpoint: Mapping[str, Any]) -> bytes:
    """The bytes a checkpoint's ed25519 signature covers."""
    return PAYLOAD_LABEL + canonical({key: checkpoint[key] for key in CHECKPOINT_KEYS})


def checkpoint_signed(checkpoint: Mapping[str, Any],
                      keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when the checkpoint's signature verifies with the key it names, else why not."""
    if set(CHECKPOINT_KEYS) | {"signature"} != set(checkpoint):
        return "not a checkpoint (its fields are not " + ", ".join(CHECKPOINT_KEYS) + \
            ", signature)"
    key = keys.get(str(checkpoint["key_id"]))
    if key is None:
        return f"signed by key {checkpoint['key_id']!r}, which is not one of the keys given"
    try:
        key.verify(base64.b64decode(str(checkpoint["signature"]), validate=True),
                   checkpoint_payload(checkpoint))
    except (InvalidSignature, binascii.Error, ValueError):
        return "its signature does not verify: the checkpoint was forged or altered"
    return None


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong: at which seq (or None if unknown), what kind, and the detail.

    Kinds: malformed, altered, broken link, deleted, inserted, reordered (entries);
    forged checkpoint, rewritten (checkpoints)."""

    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.detail}"


def _malformed(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "an entry must be a JSON object"
    if set(entry) != ENTRY_KEYS:
        missing, extra = ENTRY_KEYS - set(entry), set(entry) - ENTRY_KEYS
        return f"fields missing {sorted(missing)}, unknown {sorted(extra)}"
    if entry["v"] != 1 or not isinstance(entry["v"], int) or isinstance(entry["v"], bool):
        return f"unknown entry version {entry['v']!r}"
    if not isinstance(entry["seq"], int) or isinstance(entry["seq"], bool) or entry["seq"] < 1:
        return "seq must be a positive integer"
    for key in ("prev", "hash"):
        if not (isinstance(entry[key], str) and len(entry[key]) == 64
                and set(entry[key]) <= _HEX):
            return f"{key} must be 64 lower-case hex digits"
    return None


def verify_chain(entries: Sequence[Mapping[str, Any]], *,
                 start: tuple[int, str] | None = (0, GENESIS)) -> Problem | None:
    """The first bad entry of ``entries`` (in the order given, meant to be seq order).

    ``start`` is the (seq, hash) just before the first entry: (0, GENESIS) for a chain from
    its beginning, None for a window whose first entry is taken as it is. A chain cut short
    at its end looks whole here; the checkpoints catch that (``verify_export``)."""
    position: dict[int, int] = {}
    for n, entry in enumerate(entries):
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if isinstance(seq, int):
            position.setdefault(seq, n)
    seen: set[int] = set()
    expected_seq, expected_prev = (start[0] + 1, start[1]) if start else (None, None)
    for n, entry in enumerate(entries):
        problem = _malformed(entry)
        seq = entry.get("seq") if isinstance(entry, dict) else None
        where = seq if isinstance(seq, int) else None
        if problem:
            return Problem(where, "malformed", f"entry {n + 1} of the list: {problem}")
        seq = int(entry["seq"])
        try:
            actual = entry_hash(entry)
        except (ValueError, UnicodeError) as exc:
            return Problem(seq, "malformed", str(exc))
        if actual != entry["hash"]:
            return Problem(seq, "altered", "its content does not match its hash")
        if seq in seen:
            return Problem(seq, "inserted", f"a second entry with seq {seq}")
        if expected_seq is not None and seq < expected_seq:
            return Problem(seq, "reordered", f"seq {seq} comes after seq {expected_seq - 1}")
        if expected_seq is not None and seq > expected_seq:
            low = expected_seq
            later = min((s for s, p in position.items() if low <= s < seq and p > n),
                        default=None)
            if later is not None:
                return Problem(seq, "reordered", f"seq {seq} comes before seq {later}")
            gap = (f"seq {expected_seq}" if seq == expected_seq + 1 else
                   f"seqs {expected_seq} to {seq - 1}")
            return Problem(expected_seq, "deleted", f"{gap} missing before seq {seq}")
        if expected_prev is not None and entry["prev"] != expected_prev:
            return Problem(seq, "broken link",
                           f"prev is not the hash of seq {seq - 1}: one of the two was "
                           "changed and its hash recomputed")
        seen.add(seq)
        expected_seq, expected_prev = seq + 1, entry["hash"]
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``verify_export`` found: the first problem (or None), and how much it checked."""

    problem: Problem | None
    entries: int
    checkpoints_checked: int
    checkpoints_outside: int  # checkpoints of seqs the export does not cover


def verify_export(entries: Sequence[Mapping[str, Any]],
                  checkpoints: Sequence[Mapping[str, Any]],
                  keys: Mapping[str, Ed25519PublicKey], *, whole: bool = False) -> Verdict:
    """Check exported entries (seq order) against signed checkpoints.

    Every checkpoint's signature must verify. A checkpoint whose seq the export covers must
    name the hash the entries have at that seq (and, when the export starts at seq 1, their
    Merkle root), so entries rewritten before it show even with every hash recomputed.
    ``whole``: the export claims to be the whole chain, so a checkpoint past its end means
    entries at the end were deleted."""
    for checkpoint in checkpoints:
        why = checkpoint_signed(checkpoint, keys)
        if why:
            seq = checkpoint.get("seq")
            return Verdict(Problem(seq if isinstance(seq, int) else None,
                                   "forged checkpoint", why), len(entries), 0, 0)
    heads = {int(c["seq"]): str(c["head"]) for c in checkpoints}
    first = entries[0].get("seq") if entries and isinstance(entries[0], dict) else None
    start: tuple[int, str] | None = None
    if first == 1 or whole:  # the whole chain starts at seq 1
        start = (0, GENESIS)
    elif isinstance(first, int) and first - 1 in heads:
        start = (first - 1, heads[first - 1])
    problem = verify_chain(entries, start=start)
    if problem:
        return Verdict(problem, len(entries), 0, 0)
    hashes = {int(e["seq"]): str(e["hash"]) for e in entries}
    last = max(hashes, default=0)
    frontier = MerkleFrontier() if first == 1 else None  # roots only from seq 1
    checked = outside = 0
    trusted = 0  # the highest seq a checkpoint vouched for so far
    for checkpoint in sorted(checkpoints, key=lambda c: int(c["seq"])):
        seq = int(checkpoint["seq"])
        when = f"the checkpoint of {checkpoint['time']} (seq {seq})"
        if seq in hashes:
            while frontier is not None and frontier.size < seq:
                frontier.add(bytes.fromhex(str(entries[frontier.size]["hash"])))
            if hashes[seq] != checkpoint["head"] or (
                    frontier is not None and frontier.root().hex() != checkpoint["root"]):
                since = f"after seq {trusted} " if trusted else ""
                return Verdict(Problem(seq, "rewritten",
                                       f"{when} signed another chain: entries {since}up to "
                                       f"seq {seq} were rewritten"),
                               len(entries), checked, outside)
            checked += 1
            trusted = seq
        elif whole and seq > last:
            return Verdict(Problem(last + 1, "deleted",
                                   f"{when} was signed, the chain ends at seq {last}: "
                                   "entries at its end were deleted"),
                           len(entries), checked, outside)
        else:
            outside += 1
    return Verdict(None, len(entries), checked, outside)
