"""Stable identity of a bank line (docs/architecture.md: "Identity of a bank line").

An entry is known by the bank's own reference where it has a real one, else by a hash of
what the bank says of it: account, booking date, amount, currency, counterparty and
remittance, and an occurrence number that tells apart lines the bank reports identically.
Whether a line is new at all is decided elsewhere (``parsers.overlap``): the id only has
to be unique within the account.

``entry_ids`` gives the ids of a whole statement; ``IdMaker`` gives the same ids one entry
at a time, for a statement read as a stream, remembering of each id given only its first
64 bits in a flat table (8 to 16 bytes an entry, not a string each).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable

from parsers.model import Entry, Statement

# References banks write when they have none: not an identity.
_PLACEHOLDER_REFERENCES = frozenset({"NONREF", "NOTPROVIDED", "NOT PROVIDED", "NONE", "N/A", "-"})


def is_real_reference(reference: str | None) -> bool:
    """True if ``reference`` can identify a line (not blank, a placeholder or all zeros)."""
    if reference is None:
        return False
    ref = reference.strip().upper()
    return bool(ref) and ref not in _PLACEHOLDER_REFERENCES and ref.strip("0") != ""


def _amount(entry: Entry) -> str:
    """The amount as text, the same however many zeros the file wrote (12.5 == 12.50)."""
    return f"{entry.amount.amount.normalize():f}"


def _natural_key(entry: Entry) -> tuple[str, ...]:
    reference = entry.bank_reference if is_real_reference(entry.bank_reference) else None
    if reference is not None:
        return ("ref", reference.strip(), str(entry.booking_date or entry.value_date),
                _amount(entry), entry.amount.currency)
    return (
        "content",
        str(entry.booking_date),
        str(entry.value_date),
        _amount(entry),
        entry.amount.currency,
        entry.status.value,
        entry.counterparty_account or "",
        entry.counterparty_name or "",
        entry.end_to_end_id or "",
        entry.remittance or entry.additional_info or "",
    )


def entry_ids(statement: Statement) -> tuple[str, ...]:
    """One stable id per entry of ``statement``, in entry order, as if nothing were stored."""
    return tuple(fresh_ids(statement, range(len(statement.entries)), taken=set()))


def fresh_ids(statement: Statement, positions: Iterable[int], *, taken: set[str]) -> list[str]:
    """Ids for the entries at ``positions``, none of them in ``taken`` (which grows).

    The id hashes the line's content and an occurrence number: the first free one, so a
    line identical to stored ones gets an id of its own, and the ids an account had before
    stay what they were.
    """
    ids = []
    for position in positions:
        key = _natural_key(statement.entries[position])
        occurrence = 0
        while True:
            material = "\x1f".join((statement.account.key, *key, str(occurrence)))
            entry_id = hashlib.sha256(material.encode()).hexdigest()[:32]
            if entry_id not in taken:
                break
            occurrence += 1
        taken.add(entry_id)
        ids.append(entry_id)
    return ids


class _Taken:
    """A set of nonzero 64-bit numbers in one flat table (open addressing, linear
    probing, at most half full): 8 to 16 bytes a number, where a Python set of ints
    takes about 70."""

    __slots__ = ("_mask", "_size", "_table")

    def __init__(self) -> None:
        self._table = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._size = 0

    def add(self, number: int) -> bool:
        """Add ``number``; False if it was there already."""
        table, mask = self._table, self._mask
        slot = number & mask
        while (there := table[slot]) != 0:
            if there == number:
                return False
            slot = (slot + 1) & mask
        table[slot] = number
        self._size += 1
        if 2 * self._size > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(16 * len(old)))
        self._mask = 2 * len(old) - 1
        self._size = 0
        for number in old:
            if number:
                self.add(number)


class IdMaker:
    """The ids of one statement's entries, given one entry at a time in entry order: the
    ids ``entry_ids`` gives the whole statement (two ids that differ but share their
    first 64 bits would be taken for one, as ``fresh_ids`` does not: a chance of about 3 in
    10^8 for a million lines, and then only an occurrence number differs)."""

    __slots__ = ("_account", "_taken")

    def __init__(self, account_key: str) -> None:
        self._account = account_key
        self._taken = _Taken()

    def __call__(self, entry: Entry) -> str:
        return self.id_and_key(entry)[0]

    def id_and_key(self, entry: Entry) -> tuple[str, str]:
        """The entry's id, and its key: the text whose SHA-256 followed by an occurrence
        number (``0``, ``1``, ...) gives the ids of lines like it, the first 32 hex digits
        of it (what a line stored later among others like it is given: the first free)."""
        key = "\x1f".join((self._account, *_natural_key(entry))) + "\x1f"
        occurrence = 0
        while True:
            digest = hashlib.sha256(f"{key}{occurrence}".encode()).digest()
            if self._taken.add(int.from_bytes(digest[:8]) or 1):
                return digest[:16].hex(), key
            occurrence += 1
