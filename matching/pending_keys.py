"""A compact multimap from text keys to small integers, for ``matching.pending``.

``PendingIndex`` keys each unmatched payment by some 75 signatures of its texts and a few
of its payer. Held as ``dict[str, set[str]]`` that cost some 30 KB a payment (a set, a
dict entry and the key's string for each, most of them the only payment under their key).
Here each (key, slot) pair is one 64-bit integer, the key's hash in the high bits and the
payment's slot (a small number ``PendingIndex`` gives it) in the low ones, kept sorted in
arrays: 8 bytes a pair.

Two keys whose hashes agree in the bits kept share their payments: a lookup can return a
slot the key does not belong to (rarely: with six million pairs held, about one key
looked up in 90,000), never miss one that it does. The index only ever over-reports (a
payment matched again for nothing), so that is safe. Slots are never reused until
``renumber``: a slot given up (``PendingIndex`` marks it so) may stay in the arrays, and
its owner filters it out.

The pairs are spread over shards by their hash; each shard is a sorted array and a short
unsorted tail of recent additions, merged in when the tail passes a share of the shard
(so adding is amortised O(1) and a merge never holds more than a shard as Python ints).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence

SLOT_BITS = 25                      # slots 0 .. 2**25 - 1 (33 million payments)
MAX_SLOTS = 1 << SLOT_BITS
_SLOT_MASK = MAX_SLOTS - 1
_HASH_BITS = 64 - SLOT_BITS
_HASH_MASK = (1 << _HASH_BITS) - 1
_SHARD_BITS = 8
_SHARD_MASK = (1 << _SHARD_BITS) - 1


def _hash(key: str) -> int:
    return hash(key) & _HASH_MASK


class SlotMultimap:
    """Text keys to slots (ints below ``MAX_SLOTS``), 8 bytes a pair."""

    __slots__ = ("_pairs", "_sorted", "_tails")

    def __init__(self) -> None:
        self._sorted = [array("Q") for _ in range(1 << _SHARD_BITS)]
        self._tails = [array("Q") for _ in range(1 << _SHARD_BITS)]
        self._pairs = 0

    def __len__(self) -> int:
        """Pairs held, those of slots given up included."""
        return self._pairs

    def nbytes(self) -> int:
        """Bytes the pairs take (the arrays' buffers)."""
        return sum(a.buffer_info()[1] * a.itemsize for a in (*self._sorted, *self._tails))

    def put(self, keys: Iterable[str], slot: int) -> None:
        """Hold ``slot`` under each of ``keys``."""
        if not 0 <= slot < MAX_SLOTS:
            raise ValueError(f"slot {slot} is out of range")
        for key in keys:
            hashed = _hash(key)
            shard = hashed & _SHARD_MASK
            tail = self._tails[shard]
            tail.append(hashed << SLOT_BITS | slot)
            self._pairs += 1
            if len(tail) > 32 + len(self._sorted[shard]) // 4:
                self._merge(shard)

    def get(self, keys: Iterable[str]) -> set[int]:
        """The slots held under any of ``keys`` (and, rarely, some others: see above)."""
        found: set[int] = set()
        for key in keys:
            hashed = _hash(key)
            shard = hashed & _SHARD_MASK
            low = hashed << SLOT_BITS
            rows = self._sorted[shard]
            at = bisect.bisect_left(rows, low)
            high = low | _SLOT_MASK
            while at < len(rows) and rows[at] <= high:
                found.add(rows[at] & _SLOT_MASK)
                at += 1
            found.update(v & _SLOT_MASK for v in self._tails[shard] if v >> SLOT_BITS == hashed)
        return found

    def renumber(self, new: Sequence[int]) -> None:
        """Give every pair of slot ``s`` the slot ``new[s]``, dropping those where it is
        negative. ``new`` must keep the order of the slots it keeps (each shard stays
        sorted without sorting again)."""
        self._pairs = 0
        for shard in range(1 << _SHARD_BITS):
            self._merge(shard)
            rows = self._sorted[shard]
            kept = array("Q", (v & ~_SLOT_MASK | new[v & _SLOT_MASK] for v in rows
                               if new[v & _SLOT_MASK] >= 0))
            self._sorted[shard] = kept
            self._pairs += len(kept)

    def _merge(self, shard: int) -> None:
        tail = self._tails[shard]
        if tail:
            self._sorted[shard] = array("Q", sorted(self._sorted[shard] + tail))
            self._tails[shard] = array("Q")
