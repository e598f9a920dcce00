"""Finding the invoices a payment's texts refer to.

The numbering schemes are learned from the invoices themselves: every invoice number and
reference is indexed in three forms: compact (``INV-2026-0815`` -> ``INV20260815``), its
digits (``20260815``, when no other invoice shares them) and, for typing errors, its digits
with one position blanked. A payment's remittance, end-to-end id and structured creditor
reference are cut into candidate strings (runs of up to four neighbouring words that carry
a digit), which are looked up in the index:

- ``exact``: the compact form of an invoice number or reference;
- ``rf``: a valid ISO 11649 creditor reference (RF) that an invoice carries;
- ``reformatted``: the same digits, written with other separators or prefixes;
- ``typo``: one digit wrong or two neighbouring digits swapped (five digits or more).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from matching.invoices import Invoice
from matching.normalize import compact, digits, is_valid_rf

MIN_DIGITS = 4          # shorter numbers are amounts, days, house numbers
MIN_TYPO_DIGITS = 5     # a typo is only recognised in a number this long
_WORD = re.compile(r"[0-9A-Za-z]+")
# 2026-09-14, 14.09.2026, 14/09/26, 20260914: dates people write beside references.
_DATE = re.compile(
    r"(?:(?:19|20)\d\d[-./ ]?(?:0[1-9]|1[0-2])[-./ ]?(?:0[1-9]|[12]\d|3[01]))"
    r"|(?:(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d\d)")
_RF_IN_TEXT = re.compile(r"RF\s?\d{2}(?:\s?[0-9A-Za-z]){1,21}", re.IGNORECASE)


class HitKind(StrEnum):
    RF = "rf"
    EXACT = "exact"
    REFORMATTED = "reformatted"
    TYPO = "typo"


HIT_STRENGTH = {HitKind.RF: 4, HitKind.EXACT: 3, HitKind.REFORMATTED: 2, HitKind.TYPO: 1}


@dataclass(frozen=True, slots=True)
class ReferenceHit:
    invoice_id: str
    kind: HitKind
    source: str          # remittance, end_to_end_id or creditor_reference
    text: str            # what the payment said

    def __str__(self) -> str:
        return f"{self.kind.value} reference {self.text!r} in {self.source}"


class ReferenceIndex:
    """Invoice numbers and references, indexed for lookup in payment texts."""

    def __init__(self, invoices: Iterable[Invoice]) -> None:
        self._compact: dict[str, set[str]] = defaultdict(set)
        self._digits: dict[str, set[str]] = defaultdict(set)
        self._blanked: dict[str, set[str]] = defaultdict(set)
        self._rf: dict[str, set[str]] = defaultdict(set)
        self._unpadded: dict[str, set[str]] = defaultdict(set)
        self._letters: dict[str, set[str]] = defaultdict(set)  # letters of each invoice's keys
        self._written: dict[str, set[str]] = defaultdict(set)  # numbers as the CRM writes them
        self._found: dict[tuple[str | None, ...], list[ReferenceHit]] = {}
        self._hits_seen: dict[tuple[str, str], list[ReferenceHit]] = {}
        # Digit counts a mistyped number can have, with how many invoices have each.
        self._typo_lengths: dict[int, int] = defaultdict(int)
        # The two ends of every number a typo can be found against (``_typo_ends``), with
        # how many numbers have each: a number none shares an end with has no typo owner.
        self._ends: dict[tuple[str, int, str], int] = defaultdict(int)
        for invoice in invoices:
            self.add(invoice)

    def add(self, invoice: Invoice) -> None:
        """Index one more invoice's number and reference (``remove`` it first to replace)."""
        self._forget_found()
        lengths = set()
        for index, key, text in _keys_of(invoice):
            if index == "rf":
                self._rf[key].add(invoice.invoice_id)
                continue
            self._compact[key].add(invoice.invoice_id)
            self._unpadded[unpadded(key)].add(invoice.invoice_id)
            self._letters[invoice.invoice_id].add(letters(key))
            self._written[text.strip().upper()].add(invoice.invoice_id)
            core = digits(key)
            if len(core) >= MIN_DIGITS:
                self._digits[core].add(invoice.invoice_id)
            if len(core) >= MIN_TYPO_DIGITS:
                lengths.add(len(core))
                for end in _typo_ends(core):
                    self._ends[end] += 1
                blanked = self._blanked
                for at in range(len(core)):   # _blank_each, inline: every invoice has some
                    blanked[core[:at] + "?" + core[at + 1:]].add(invoice.invoice_id)
        for length in lengths:
            self._typo_lengths[length] += 1

    def remove(self, invoice: Invoice) -> None:
        """Take an invoice out of the index, as it was added: the time its keys take."""
        self._forget_found()
        invoice_id = invoice.invoice_id
        lengths = set()
        for index, key, text in _keys_of(invoice):
            if index == "rf":
                _discard(self._rf, key, invoice_id)
                continue
            _discard(self._compact, key, invoice_id)
            _discard(self._unpadded, unpadded(key), invoice_id)
            _discard(self._written, text.strip().upper(), invoice_id)
            core = digits(key)
            if len(core) >= MIN_DIGITS:
                _discard(self._digits, core, invoice_id)
            if len(core) >= MIN_TYPO_DIGITS:
                lengths.add(len(core))
                for end in _typo_ends(core):
                    self._ends[end] -= 1
                    if not self._ends[end]:
                        del self._ends[end]
                for blanked in _blank_each(core):
                    _discard(self._blanked, blanked, invoice_id)
        self._letters.pop(invoice_id, None)
        for length in lengths:
            self._typo_lengths[length] -= 1
            if not self._typo_lengths[length]:
                del self._typo_lengths[length]

    def _forget_found(self) -> None:
        """What payments' texts were found to name is stale once the index changes."""
        if self._found or self._hits_seen:
            self._found = {}
            self._hits_seen = {}

    def find(self, *, remittance: str | None, end_to_end_id: str | None,
             creditor_reference: str | None) -> list[ReferenceHit]:
        """Every invoice the texts refer to, the strongest way each is referred to."""
        key = (remittance, end_to_end_id, creditor_reference)
        found = self._found.get(key)
        if found is None:  # many payments say the same ("Danke", "Zahlung"): look up once
            found = self._find(remittance, end_to_end_id, creditor_reference)
            if len(self._found) < 100_000:
                self._found[key] = found
        return list(found)

    def _find(self, remittance: str | None, end_to_end_id: str | None,
              creditor_reference: str | None) -> list[ReferenceHit]:
        best: dict[str, ReferenceHit] = {}

        def keep(hit: ReferenceHit) -> None:
            held = best.get(hit.invoice_id)
            if held is None or HIT_STRENGTH[hit.kind] > HIT_STRENGTH[held.kind]:
                best[hit.invoice_id] = hit

        for source, text in (("creditor_reference", creditor_reference),
                             ("remittance", remittance), ("end_to_end_id", end_to_end_id)):
            if text:
                for hit in self._hits_of(text, source):
                    keep(hit)
        return sorted(best.values(), key=lambda h: (-HIT_STRENGTH[h.kind], h.invoice_id))

    def _hits_of(self, text: str, source: str) -> list[ReferenceHit]:
        found = self._hits_seen.get((text, source))
        if found is None:
            found = list(self._hits(text, source))
            if len(self._hits_seen) < 200_000:
                self._hits_seen[(text, source)] = found
        return found

    def _hits(self, text: str, source: str) -> Iterable[ReferenceHit]:
        for match in _RF_IN_TEXT.finditer(text):
            key = compact(match.group())
            if is_valid_rf(key):
                for invoice_id in self._rf.get(key, ()):
                    yield ReferenceHit(invoice_id, HitKind.RF, source, match.group())
        matched_cores: set[str] = set()
        analysed = _analysed(text)
        for candidate, shown, plain, core, is_date in analysed:
            if is_date and not self._written.get(shown.upper()):
                continue  # a date, unless an invoice is numbered exactly so
            for invoice_id in self._compact.get(candidate, ()):
                yield ReferenceHit(invoice_id, HitKind.EXACT, source, shown)
            owners = self._unpadded.get(plain, _NONE)
            if len(owners) == 1:
                yield ReferenceHit(next(iter(owners)), HitKind.REFORMATTED, source, shown)
            if len(core) < MIN_DIGITS:
                continue
            owners = self._digits.get(core, _NONE)
            if len(owners) == 1 and self._same_scheme(candidate, next(iter(owners))):
                matched_cores.add(core)
                yield ReferenceHit(next(iter(owners)), HitKind.REFORMATTED, source, shown)
        typo_lengths = self._typo_lengths
        for candidate, shown, _, core, is_date in analysed:
            if is_date or len(core) not in typo_lengths or core in matched_cores \
                    or core in self._digits:
                continue
            start, end = _typo_ends(core)
            if start not in self._ends and end not in self._ends:
                continue   # no number of this length shares either end: none is one typo away
            owners = set()
            for variant in _blank_each(core):
                owners |= self._blanked.get(variant, _NONE)
            for variant in _swap_each(core):
                owners |= self._digits.get(variant, _NONE)
            if len(owners) == 1 and self._same_scheme(candidate, next(iter(owners))):
                yield ReferenceHit(next(iter(owners)), HitKind.TYPO, source, shown)

    def _same_scheme(self, candidate: str, invoice_id: str) -> bool:
        """The digits alone, or with the letters the invoice's number has: ``ZV20260831``
        (a bank's id with a date in it) is no reformatting of invoice ``2026/0831``."""
        written = letters(candidate)
        return not written or written in self._letters.get(invoice_id, ())


def text_signatures(text: str) -> set[str]:
    """Keys of what a payment's text could be taken to name, for ``invoice_signatures``.

    Whenever a text's hits may change because an invoice is added to or removed from the
    index (an invoice it names, mistypes, or shares digits with, so that a hit becomes
    ambiguous or a typo no longer is one), the text's signatures and that invoice's share a
    key. ``matching.pending`` uses them to find the payments an invoice change concerns.
    """
    keys = {"R:" + compact(m.group()) for m in _RF_IN_TEXT.finditer(text)}
    for candidate, shown in _candidates(text):
        keys.update(("W:" + shown.upper(), "C:" + candidate, "U:" + unpadded(candidate)))
        core = digits(candidate)
        if len(core) >= MIN_DIGITS:
            keys.add("D:" + core)
        if len(core) >= MIN_TYPO_DIGITS:
            keys.update("B:" + b for b in _blank_each(core))
            keys.update("D:" + s for s in _swap_each(core))
    return keys


def invoice_signatures(invoice: Invoice) -> set[str]:
    """The keys an invoice's number and reference are indexed under (``text_signatures``)."""
    keys = set()
    for index, key, text in _keys_of(invoice):
        if index == "rf":
            keys.add("R:" + key)
            continue
        keys.update(("C:" + key, "U:" + unpadded(key), "W:" + text.strip().upper()))
        core = digits(key)
        if len(core) >= MIN_DIGITS:
            keys.add("D:" + core)
        if len(core) >= MIN_TYPO_DIGITS:
            keys.update("B:" + b for b in _blank_each(core))
    return keys


def _keys_of(invoice: Invoice) -> Iterable[tuple[str, str, str]]:
    """("rf" or "number", compact key, text as written) for an invoice's number and
    reference: the keys it is indexed under."""
    for text in {invoice.invoice_id, invoice.reference or ""}:
        key = compact(text)
        if len(key) >= MIN_DIGITS:
            rf = key.startswith("RF") and is_valid_rf(key)   # the check compacts again
            yield ("rf" if rf else "number"), key, text


def _discard(index: dict[str, set[str]], key: str, invoice_id: str) -> None:
    owners = index.get(key)
    if owners is not None:
        owners.discard(invoice_id)
        if not owners:  # an empty set would still count as a key (``core in _digits``)
            del index[key]


_NONE: frozenset[str] = frozenset()


@lru_cache(maxsize=65_536)
def _analysed(text: str) -> tuple[tuple[str, str, str, str, bool], ...]:
    """Each candidate of a text with what lookups need of it, worked out once: (compact
    form, text as written, unpadded form, its digits, whether it is written as a date)."""
    return tuple((candidate, shown, unpadded(candidate), digits(candidate),
                  bool(_DATE.fullmatch(shown))) for candidate, shown in _candidates(text))


def _candidates(text: str) -> list[tuple[str, str]]:
    """(compact form, text as written) of runs of up to four words that carry a digit."""
    return _candidates_cached(text)


@lru_cache(maxsize=65_536)
def _candidates_cached(text: str) -> list[tuple[str, str]]:
    # _WORD matches ASCII letters and digits only, so upper() is their compact form.
    words = [(m.group().upper(), m.start(), m.end()) for m in _WORD.finditer(text)]
    has_digit = [any(c.isdigit() for c in w) for w, _, _ in words]
    found = []
    for i in range(len(words)):
        key = ""
        digit_seen = False
        for j in range(i, min(i + 4, len(words))):
            word = words[j][0]
            key += word
            digit_seen = digit_seen or has_digit[j]
            if j > i and len(word) > 3 and not has_digit[j]:
                continue
            if digit_seen:
                found.append((key, text[words[i][1]:words[j][2]]))
    return found


_DIGIT_RUN = re.compile(r"\d+")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


_NOT_LETTER = re.compile(r"[^A-Za-z]+")


def letters(key: str) -> str:
    return _NOT_LETTER.sub("", key)


def unpadded(key: str) -> str:
    """A compact reference with the leading zeros of each number dropped: F00475K -> F475K."""
    if key.isascii():  # the common case, in one pass: zeros that start a number, not its last
        return _LEADING_ZEROS.sub("", key)
    return _DIGIT_RUN.sub(lambda m: str(int(m.group())), key)


def _typo_ends(core: str) -> tuple[tuple[str, int, str], tuple[str, int, str]]:
    """A number's start and end, cut so that one digit changed or two neighbours swapped
    leave one of them as it was: with m = half the length, the digits before m - 1 and
    those after m (a change at m - 1 or later keeps the start; one before, the end)."""
    half = len(core) // 2
    return ("start", len(core), core[:half - 1]), ("end", len(core), core[half + 1:])


def _blank_each(core: str) -> Iterable[str]:
    for i in range(len(core)):
        yield core[:i] + "?" + core[i + 1:]


def _swap_each(core: str) -> Iterable[str]:
    for i in range(len(core) - 1):
        if core[i] != core[i + 1]:
            yield core[:i] + core[i + 1] + core[i] + core[i + 2:]
