"""Which lines of an incoming statement an account already has: the identity rule.

A bank line has no identity every format carries. MT940 has no end-to-end id, OFX writes its
own FITID, camt its AcctSvcrRef, and two genuinely distinct payments can agree on every field.
So the statements decide, not the lines alone (docs/ingest.md says the same for users):

1. **Booked statements** (MT940, camt.053, OFX) carry balances. Their ledger position is known:
   the opening balance (or the closing balance less the booked lines) is where the statement
   starts, the closing balance where it ends, and each line moves the balance on.

   - A stored statement with the same opening and closing balance is a *copy* (the same
     statement again, perhaps in another format): its lines are the only candidates.
   - A stored statement that ends where this one starts (and does not reach its other end)
     lies *before* it; one that starts where this one ends lies *after* it; and so on,
     transitively. Their lines are at other places in the ledger, so no line of this
     statement is taken for one of theirs: a line repeated in the next statement is a new
     line, however alike the two are.
   - A stored statement that shares a balance with this one (an opening, a closing, or a
     balance reached after a line) *overlaps* it: its lines between this statement's
     opening and closing balance, as it reached them line by line, are candidates.
   - Of any other stored statement nothing is proven: its lines are not taken for this
     statement's, but a new line like one of them is marked (rule 4).

2. **Matching by occurrence counting**: each incoming line is paired with at most one
   candidate that agrees on what every format carries (booking date, signed amount,
   currency) and does not contradict it on what both sides carry (counterparty account and
   name, remittance, end-to-end id; the bank reference only between two lines of the same
   reference scheme). Three identical incoming lines against two stored ones: two known, one
   new. The pairs agreeing on most are made first, and a stored line with the same balance
   after it (the same place in the ledger) is preferred.

3. **Provisional lines**, from intraday reports (MT942, camt.052, camt.054) or with a pending
   or information status, are matched against everything stored on their date, and stored
   only when nothing matches. A booked line that matches no booked candidate then *supersedes*
   a matching provisional one: the provisional line becomes that booked line (its id stays),
   so a line reported intraday and booked later is there once.

4. What cannot be decided is said, never silently merged: a new line is marked
   ``possible_duplicate`` when a line like it (same date, amount and currency) was reported
   by a statement the balances say nothing about, or when the statement is placed next to
   no stored one and a line like it is stored on that date.

Everything here is pure: the caller loads the stored statements and lines of the dates
concerned and stores what this module decides.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from parsers.identity import is_real_reference
from parsers.model import Entry, EntryStatus, Statement

# Formats whose statements are intraday or notifications: their lines are provisional.
PROVISIONAL_FORMATS = frozenset({"mt942", "camt.052", "camt.054"})

# Formats that share one reference scheme (the same bank reference means the same line).
_SCHEMES = {"mt940": "swift", "mt942": "swift", "camt.052": "iso", "camt.053": "iso",
            "camt.054": "iso", "ofx": "ofx"}


def reference_scheme(fmt: str) -> str:
    return _SCHEMES.get(fmt, fmt)


def is_provisional(statement: Statement, entry: Entry) -> bool:
    return _is_provisional(statement.format, entry)


def _is_provisional(fmt: str, entry: Entry) -> bool:
    return fmt in PROVISIONAL_FORMATS or entry.status is not EntryStatus.BOOKED


class Outcome(StrEnum):
    NEW = "new"  # stored now
    KNOWN = "known"  # already stored: this statement reports it again
    SUPERSEDES = "supersedes"  # a booked line confirming a stored provisional one


@dataclass(frozen=True, slots=True)
class Ledger:
    """Where a booked statement sits in its account's ledger: its balances in one currency,
    and ``afters``, the balance after each of its booked lines in ledger order (by booking
    date, then the bank's order: an OFX file listing the newest first is read oldest first).
    A line's *rank* is its index in ``afters``."""

    opening: Decimal
    closing: Decimal
    currency: str
    afters: tuple[Decimal | None, ...] = ()

    @property
    def marks(self) -> frozenset[Decimal]:
        """Every balance the statement passes through."""
        return frozenset({self.opening, self.closing,
                          *(a for a in self.afters if a is not None)})

    def window(self, other: Ledger) -> tuple[int, int]:
        """The ranks of this statement's lines that lie inside ``other``: those after the
        line that reaches ``other``'s opening balance, up to the one that reaches its
        closing balance (``(start, end]``). Where a balance is reached more than once, the
        wider window is taken; a statement stored without its balances line by line (before
        they were kept) is taken whole."""
        afters = self.afters
        return window_of(
            self.opening, self.closing, len(afters), other.opening, other.closing,
            first_at=lambda balance: next(
                (i for i, a in enumerate(afters) if a == balance), None),
            last_at=lambda balance: next(
                (i for i in range(len(afters) - 1, -1, -1) if afters[i] == balance), None))


def window_of(opening: Decimal, closing: Decimal, count: int, other_opening: Decimal,
              other_closing: Decimal, *, first_at: Callable[[Decimal], int | None],
              last_at: Callable[[Decimal], int | None]) -> tuple[int, int]:
    """``Ledger.window`` from what it needs of the statement: its balances, how many lines
    it ranks (``count``), and where a balance is first and last reached after a line
    (``first_at``, ``last_at``: a rank, or None). For a caller that finds those where the
    balances are kept (a database) rather than holding them all."""
    if not count:
        return -1, 2**31
    start, end = -1, count - 1
    if other_opening != opening:
        found = first_at(other_opening)
        start = -1 if found is None else found
    if other_closing != closing:
        found = last_at(other_closing)
        end = end if found is None else found
    return start, end


@dataclass(frozen=True, slots=True)
class StoredStatement:
    statement_pk: int
    ledger: Ledger


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A line the account has, with what every comparison needs."""

    entry_id: str
    day: date | None  # booking date, else value date
    amount: Decimal
    currency: str
    provisional: bool
    scheme: str
    bank_reference: str | None
    end_to_end_id: str | None
    counterparty_name: str | None
    counterparty_account: str | None
    remittance: str | None
    reports: frozenset[tuple[int, int]]  # (statement, rank) of every booked report of it
    balance_after: Decimal | None = None  # the ledger balance after it, where known

    @property
    def statements(self) -> frozenset[int]:
        return frozenset(statement for statement, _ in self.reports)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    entry_id: str | None  # the stored line (known, supersedes); None for a new line
    possible_duplicate: bool = False
    balance_after: Decimal | None = None  # the ledger balance after the line, where known
    rank: int | None = None  # its index in the statement's ledger order (booked lines)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the incoming statement lies relative to the stored booked statements."""

    copies: frozenset[int] = frozenset()  # the same opening and closing balance
    disjoint: frozenset[int] = frozenset()  # proven to lie before or after it
    overlapping: frozenset[int] = frozenset()  # share a balance inside it: same lines
    unrelated: frozenset[int] = frozenset()  # nothing proven either way
    ledger: Ledger | None = None  # the incoming statement's own, as ``ledger_of`` reads it


def ledger_of(statement: Statement) -> Ledger | None:
    """The statement's ledger balances: as reported, or one derived from the other and the
    booked lines. None for statements without a booked balance or with several currencies."""
    opening, closing = statement.opening_balance, statement.closing_balance
    booked = [e.amount for e in statement.entries if not is_provisional(statement, e)]
    reported = opening or closing
    currency = reported.amount.currency if reported is not None else None
    if currency is None or statement.format in PROVISIONAL_FORMATS \
            or any(m.currency != currency for m in booked):
        return None
    total = sum((m.amount for m in booked), Decimal(0))
    if opening is not None:
        start = opening.amount.amount
    elif closing is not None:
        start = closing.amount.amount - total
    else:
        return None
    afters, balance = [], start
    for position in ledger_order(statement):
        balance += statement.entries[position].amount.amount
        afters.append(balance)
    end = closing.amount.amount if closing is not None else balance
    if closing is not None and closing.amount.currency != currency:
        return None
    return Ledger(start, end, currency, tuple(afters))


def ledger_order(statement: Statement) -> list[int]:
    """The positions of the statement's booked lines in ledger order: by booking date,
    then as the bank lists them; a list that runs newest first is read backwards."""
    booked = [i for i, e in enumerate(statement.entries) if not is_provisional(statement, e)]
    days = [_day(statement.entries[i]) or date.min for i in booked]
    if days != sorted(days) and days == sorted(days, reverse=True):
        return booked[::-1]  # listed newest first, as many OFX files are
    return sorted(booked, key=lambda i: (_day(statement.entries[i]) or date.min, i))


def place(ledger: Ledger | None, stored: Iterable[StoredStatement],
          shares: Callable[[StoredStatement], bool] | None = None) -> Placement:
    """How each stored statement lies relative to one at ``ledger``.

    A copy has the same opening and closing balance. Before and after are found by walking
    balances that join, transitively. A stored statement sharing a balance with this one
    (its opening, closing or one reached after a line) overlaps it. The rest are unrelated.
    ``shares`` says whether a stored statement shares a balance with this one, for a
    caller that finds that where the balances are kept (default: their ``marks`` meet).
    """
    if ledger is None:
        return Placement()
    same = [s for s in stored if s.ledger.currency == ledger.currency]
    copies = frozenset(s.statement_pk for s in same
                       if (s.ledger.opening, s.ledger.closing) == (ledger.opening, ledger.closing))
    disjoint: frozenset[int] = frozenset()
    if ledger.opening != ledger.closing:
        # (A statement whose lines add up to nothing starts where it ends: "before" and
        # "after" cannot be told from a copy, so nothing is proven disjoint of it.)
        moving = [s for s in same if s.ledger.opening != s.ledger.closing
                  and s.statement_pk not in copies]
        before = _walk(ledger, moving, backwards=True)
        after = _walk(ledger, moving, backwards=False)
        # Found on both sides means the balances repeat: nothing is proven of it.
        disjoint = frozenset(before ^ after)
    rest = [s for s in same if s.statement_pk not in copies | disjoint]
    if shares is None:
        marks = ledger.marks

        def shares(s: StoredStatement) -> bool:
            return bool(s.ledger.marks & marks)

    overlapping = frozenset(s.statement_pk for s in rest if shares(s))
    return Placement(copies, disjoint, overlapping,
                     frozenset(s.statement_pk for s in rest) - overlapping)


def _walk(ledger: Ledger, stored: list[StoredStatement], *, backwards: bool) -> set[int]:
    found: set[int] = set()
    edge = {ledger.opening if backwards else ledger.closing}
    while edge:
        step = set()
        for s in stored:
            if s.statement_pk in found:
                continue
            near, far = (s.ledger.closing, s.ledger.opening) if backwards \
                else (s.ledger.opening, s.ledger.closing)
            # It joins the edge, and does not reach either end of the statement itself
            # (that would make it a longer statement covering this one, not a neighbour).
            if near in edge and far not in (ledger.opening, ledger.closing):
                found.add(s.statement_pk)
                step.add(far)
        edge = step
    return found


class IncomingLine(NamedTuple):
    """A line of the incoming statement as ``decide_lines`` takes it: its position in the
    statement, the entry, and its rank and balance after it in the statement's ledger
    order (None for provisional lines and statements without a ledger)."""

    position: int
    entry: Entry
    rank: int | None
    balance_after: Decimal | None


def decide(statement: Statement, stored_statements: Sequence[StoredStatement],
           stored_lines: Sequence[StoredLine]) -> tuple[Placement, list[Decision]]:
    """One decision per entry of ``statement``, in entry order."""
    ledger = ledger_of(statement)
    placement = dataclasses.replace(place(ledger, stored_statements), ledger=ledger)
    ranks: list[int | None] = [None] * len(statement.entries)
    afters: list[Decimal | None] = [None] * len(statement.entries)
    if ledger is not None:
        for rank, position in enumerate(ledger_order(statement)):
            ranks[position], afters[position] = rank, ledger.afters[rank]
    windows = windows_of(ledger, placement, stored_statements)
    lines = [IncomingLine(i, e, ranks[i], afters[i]) for i, e in enumerate(statement.entries)]
    return placement, decide_lines(statement.format, placement, windows, lines, stored_lines)


Windows = Mapping[int, tuple[tuple[int, int], tuple[int, int]]]


def windows_of(ledger: Ledger | None, placement: Placement,
               stored_statements: Sequence[StoredStatement]) -> Windows:
    """For each overlapping stored statement, the ranks of its lines inside the incoming
    statement (``ledger``) and of the incoming lines inside it: ``(theirs, ours)``, each
    ``(start, end]`` (``Ledger.window``). Empty for a copy or without a ledger: then every
    line fits anywhere."""
    if ledger is None or placement.copies:
        return {}
    return {s.statement_pk: (s.ledger.window(ledger), ledger.window(s.ledger))
            for s in stored_statements if s.statement_pk in placement.overlapping}


def decide_lines(fmt: str, placement: Placement, windows: Windows,
                 lines: Sequence[IncomingLine],
                 stored_lines: Sequence[StoredLine]) -> list[Decision]:
    """The decisions of ``decide`` for some lines of a statement in format ``fmt`` placed
    at ``placement``, one per line in the order given, against ``stored_lines``.

    Lines are only ever paired on the same day (booking date, else value date), so the
    lines of one day decided against the stored lines of that day get the decisions the
    whole statement would: a caller may go day by day, holding one day in memory.
    """
    scheme = reference_scheme(fmt)
    booked = [line for line in stored_lines if not line.provisional]
    ranks = {line.position: line.rank for line in lines}
    afters = {line.position: line.balance_after for line in lines}
    fits = _fits(windows, ranks)
    if placement.copies:
        same = [line for line in booked if line.statements & placement.copies]
    else:
        # A line another statement places elsewhere is never this statement's; one only
        # an unrelated statement reported is not taken for it either.
        same = [line for line in booked if not line.statements & placement.disjoint
                and (not line.statements & placement.unrelated
                     or line.statements & placement.overlapping)]
    # Lines of unrelated statements are not taken as these lines, but a new line like one
    # of them is marked: nothing proves it is not the same.
    doubtful = [line for line in booked if line.statements & placement.unrelated]
    provisional_pool = [line for line in stored_lines if line.provisional]
    entries = [(line.position, line.entry) for line in lines]
    provisional = {i: _is_provisional(fmt, e) for i, e in entries}
    booked_entries = [(i, e) for i, e in entries if not provisional[i]]
    taken: set[str] = set()
    known = _pair(booked_entries, scheme, afters, same, taken, fits,
                  copy=bool(placement.copies))
    known.update(_pair([(i, e) for i, e in entries if provisional[i]],
                       scheme, afters, stored_lines, taken))
    confirms = _pair([(i, e) for i, e in booked_entries if i not in known], scheme, afters,
                     provisional_pool, taken)
    unplaced = not placement.disjoint and not placement.copies
    # For the doubts below: how many lines alike each pool holds (untaken, for ``same``).
    doubtful_cores = {(line.day, line.amount, line.currency) for line in doubtful}
    cores = {id(pool): Counter((line.day, line.amount, line.currency) for line in pool
                               if line.entry_id not in taken)
             for pool in (same, stored_lines)}
    all_cores = {id(pool): {(line.day, line.amount, line.currency) for line in pool}
                 for pool in (same, stored_lines)}
    decisions: list[Decision] = []
    for i, entry in entries:
        after = afters[i]
        if i in known:
            decisions.append(Decision(Outcome.KNOWN, known[i], balance_after=after,
                                      rank=ranks[i]))
        elif i in confirms:
            decisions.append(Decision(Outcome.SUPERSEDES, confirms[i], balance_after=after,
                                      rank=ranks[i]))
        else:
            pool = stored_lines if provisional[i] else same
            # Doubt: a line like it that only an unrelated statement reported; or, for a
            # statement placed next to none, one stored at all; or one an overlapping
            # statement lists outside this one's balances, which a list in another order
            # than the ledger's could put there wrongly.
            core = (_day(entry), entry.amount.amount, entry.amount.currency)
            doubt = core in doubtful_cores or (unplaced and core in all_cores[id(pool)]) \
                or cores[id(pool)][core] > 0
            decisions.append(Decision(Outcome.NEW, None, possible_duplicate=doubt,
                                      balance_after=after, rank=ranks[i]))
    return decisions


def _fits(windows: Windows,
          ranks: Mapping[int, int | None]) -> Callable[[int, StoredLine], bool]:
    """Whether entry ``i`` may be a stored line, by where both statements put it: a line an
    overlapping statement reported must lie inside this statement's balances (as that
    statement reached them), and this statement's line inside that one's (as this one
    reaches them). A monday-and-tuesday statement and Tuesday's share only Tuesday."""
    if not windows:
        return lambda i, line: True

    def fits(i: int, line: StoredLine) -> bool:
        reported = [(pk, rank) for pk, rank in line.reports if pk in windows]
        rank = ranks[i]
        if not reported or rank is None:
            return True
        return any(theirs[0] < their_rank <= theirs[1] and ours[0] < rank <= ours[1]
                   for pk, their_rank in reported for theirs, ours in (windows[pk],))

    return fits


Core = tuple[date | None, Decimal, str]
# What two lines alike are compared on besides the reference: end-to-end id, counterparty
# account (exact), counterparty name and remittance (one may be a shortened other), folded.
Signature = tuple[str, str, str, str]


def _pair(entries: list[tuple[int, Entry]], scheme: str, afters: Mapping[int, Decimal | None],
          pool: Sequence[StoredLine], taken: set[str],
          fits: Callable[[int, StoredLine], bool] = lambda i, line: True,
          copy: bool = False) -> dict[int, str]:
    """Occurrence counting: each entry paired with at most one line of ``pool`` (and each
    line with at most one entry) that agrees on date, amount and currency and contradicts
    nothing. Returns entry index -> line id.

    Strongest first: the same bank reference of the same scheme (the bank saying it is the
    same line, wherever balances read in the listed order would put it); then the same
    place in the ledger (the same balance after the line); then, entries that can agree
    on most first, the line agreeing on most. Lines alike are looked up by what they are,
    never compared one by one with every other, so a day of 5,000 identical standing
    orders costs no more than 5,000 different ones.
    """
    pairs: dict[int, str] = {}
    lines = [line for line in pool if line.entry_id not in taken]
    if not lines or not entries:
        return pairs  # a new account, a day without lines yet: nothing to compare
    signatures = {line.entry_id: _signature(line.end_to_end_id, line.counterparty_account,
                                            line.counterparty_name, line.remittance)
                  for line in lines}
    agree: dict[tuple[Signature, Signature], int] = {}

    def score(i: int, entry: Entry, ours: Signature, line: StoredLine) -> int:
        reference = _reference_agreement(entry, scheme, line, copy=copy)
        if reference < 0:
            return -1
        key = (ours, signatures[line.entry_id])
        if key not in agree:
            agree[key] = _agreement(*key)
        return -1 if agree[key] < 0 else reference + agree[key]

    def take(i: int, line: StoredLine) -> None:
        pairs[i] = line.entry_id
        taken.add(line.entry_id)

    mine = {i: _signature(e.end_to_end_id, e.counterparty_account, e.counterparty_name,
                          e.remittance) for i, e in entries}
    by_reference: dict[tuple[str, str], list[StoredLine]] = {}
    by_place: dict[tuple[Core, Decimal], list[StoredLine]] = {}
    # Lines alike, grouped by what decides whether an entry may be one of them: their
    # signature, and the scheme of their bank reference if they have one.
    by_core: dict[Core, dict[tuple[Signature, str | None], deque[StoredLine]]] = {}
    for line in lines:
        core = (line.day, line.amount, line.currency)
        referenced = is_real_reference(line.bank_reference)
        if referenced:
            by_reference.setdefault((line.scheme, _fold(line.bank_reference)), []).append(line)
        if line.balance_after is not None:
            by_place.setdefault((core, line.balance_after), []).append(line)
        kind = (signatures[line.entry_id], line.scheme if referenced else None)
        by_core.setdefault(core, {}).setdefault(kind, deque()).append(line)

    def core_of(entry: Entry) -> Core:
        return (_day(entry), entry.amount.amount, entry.amount.currency)

    for i, entry in entries:  # the same reference
        if is_real_reference(entry.bank_reference):
            for line in by_reference.get((scheme, _fold(entry.bank_reference)), ()):
                if line.entry_id not in taken and (line.day, line.amount, line.currency) \
                        == core_of(entry) and score(i, entry, mine[i], line) >= 0:
                    take(i, line)
                    break
    for i, entry in entries:  # the same place in the ledger
        after = afters[i]
        if i in pairs or after is None:
            continue
        candidates = [(score(i, entry, mine[i], line), line)
                      for line in by_place.get((core_of(entry), after), ())
                      if line.entry_id not in taken and fits(i, line)]
        best = max(candidates, key=lambda c: c[0], default=None)
        if best is not None and best[0] >= 0:
            take(i, best[1])
    # The rest: the entries that can agree on most choose first, each the group of lines
    # agreeing most with it (a different reference of its own scheme contradicts, but in
    # a copy; the same one was paired above).
    rest: list[tuple[int, int, list[tuple[int, int, deque[StoredLine]]]]] = []
    for i, entry in entries:
        if i in pairs:
            continue
        own_reference = is_real_reference(entry.bank_reference)
        scored: list[tuple[int, int, deque[StoredLine]]] = []
        for n, ((signature, their_scheme), group) in enumerate(
                by_core.get(core_of(entry), {}).items()):
            key = (mine[i], signature)
            if key not in agree:
                agree[key] = _agreement(*key)
            value = agree[key]
            if value >= 0 and own_reference and their_scheme == scheme and not copy:
                value = -1
            if value >= 0:
                scored.append((-value, n, group))
        if scored:
            scored.sort(key=lambda g: (g[0], g[1]))
            rest.append((scored[0][0], i, scored))
    for _, i, groups in sorted(rest, key=lambda r: (r[0], r[1])):
        for _, _, group in groups:
            while group and group[0].entry_id in taken:
                group.popleft()
            found = next((c for c in group if c.entry_id not in taken and fits(i, c)), None)
            if found is not None:
                take(i, found)
                break
    return pairs


def _day(entry: Entry) -> date | None:
    return entry.booking_date or entry.value_date


def _reference_agreement(entry: Entry, scheme: str, line: StoredLine, *,
                         copy: bool = False) -> int:
    """``_SAME_REFERENCE`` for the same bank reference of one scheme, -1 for two different
    ones, else 0. In a copy (balances prove the same statement) a different reference does
    not contradict: banks issue new FITIDs for a download again, and of lines alike the
    stored one may carry the reference of its twin."""
    if scheme != line.scheme or not is_real_reference(entry.bank_reference) \
            or not is_real_reference(line.bank_reference):
        return 0
    if _fold(entry.bank_reference) == _fold(line.bank_reference):
        return _SAME_REFERENCE
    return 0 if copy else -1


def _signature(end_to_end_id: str | None, account: str | None, name: str | None,
               remittance: str | None) -> Signature:
    return (_fold(end_to_end_id), _fold(account), _fold(name), _fold(remittance))


def _agreement(ours: Signature, theirs: Signature) -> int:
    """How many fields both sides carry agree on; -1 if one of them contradicts."""
    score = 0
    for a, b, loose in zip(ours, theirs, (False, False, True, True), strict=True):
        if not a or not b:
            continue
        if a == b or (loose and (a in b or b in a)):
            score += 1
        else:
            return -1
    return score


_SAME_REFERENCE = 4  # outweighs the other fields together

_NOT_AN_ID = frozenset({"notprovided", "nonref", "none", "na"})


_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=65536)
def _fold(text: str | None) -> str:
    """Text as comparable across formats: letters and digits (of any script) only, case
    folded (a bank writes the same name in capitals in MT940, wraps it, or cuts it at 27
    characters). Names and texts repeat, so the folded forms are kept."""
    if not text:
        return ""
    folded = _NOT_LETTER_OR_DIGIT.sub("", text.casefold())
    return "" if folded in _NOT_AN_ID else folded
