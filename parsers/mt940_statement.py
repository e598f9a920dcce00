"""One MT940/MT942 statement read from its fields as they come: the layer above the fields.

``StatementReader`` takes a message's fields piece by piece (``mt940_lines.read_messages``)
and yields, in the order of ``parsers.stream``, the statement's start, each entry as soon as
its ``:86:`` is read, and its end once the statement is checked (see ``parsers.mt940`` for
the mapping and the checks). An entry is made at once when its currency is certain, that
is when the opening balance came before it (the rule in every real file); otherwise (an
MT942 without balances, whose currency may come from ``:90D:`` after the entries) the
entries are held to the end of the statement.

``RawStatementLines`` counts the physical lines starting ``:61:`` apart from the field
reader, so that the number of entries is checked against them.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from parsers.errors import ParseError
from parsers.model import Account, Balance, BalanceKind, Entry, Flag, Statement
from parsers.money import Money
from parsers.mt940_entry import RawEntry, build_entry, raw_text
from parsers.mt940_fields import (
    MARKS,
    AccountValue,
    BalanceValue,
    EntryTotal,
    FlagLog,
    Where,
    parse_account,
    parse_balance,
    parse_creation_time,
    parse_entry_total,
    parse_floor_limit_currency,
    parse_statement_line,
    parse_statement_number,
    single_line,
)
from parsers.mt940_lines import Field, Message
from parsers.stream import Part, StatementEnd, StatementStart
from parsers.text_stream import TextSource

_OPENING = {"60F": BalanceKind.OPENING_BOOKED, "60": BalanceKind.OPENING_BOOKED,
            "60M": BalanceKind.INTERIM_BOOKED}
_CLOSING = {"62F": BalanceKind.CLOSING_BOOKED, "62": BalanceKind.CLOSING_BOOKED,
            "62M": BalanceKind.INTERIM_BOOKED}
_AVAILABLE = {"64": BalanceKind.CLOSING_AVAILABLE, "65": BalanceKind.FORWARD_AVAILABLE,
              "65F": BalanceKind.FORWARD_AVAILABLE}
_MT942_TAGS = frozenset({"13", "13D", "34F", "90D", "90C"})


# A physical line that starts a :61: once transport bytes are removed.
_RAW_61_FIRST = frozenset(":\x01\x03\x1a")
_RAW_61 = re.compile(r"[\x01\x03\x1a]*:[\x01\x03\x1a]*6[\x01\x03\x1a]*1[\x01\x03\x1a]*:")


class RawStatementLines:
    """The numbers of the physical lines that start ``:61:``, counted as the lines are read,
    apart from the field reader, so that the number of entries can be checked against
    them (a reader losing a line would not go unnoticed)."""

    def __init__(self, text: TextSource) -> None:
        self.text = text
        self.found: deque[int] = deque()

    def tap(self) -> Iterator[str]:
        found, match = self.found, _RAW_61.match
        for number, line in enumerate(self.text.lines(), 1):
            if line[:1] in _RAW_61_FIRST and match(line):
                found.append(number)
            yield line

    def count(self, first_line: int, last_line: int) -> int:
        """How many of those read so far lie in ``first_line..last_line``; forgets them
        and those before."""
        found, count = self.found, 0
        while found and found[0] <= last_line:
            count += found.popleft() >= first_line
        return count

    def nth(self, first_line: int, last_line: int, index: int) -> int:
        """The line number of the ``index``-th (from 0) of them in ``first_line..last_line``,
        read again from the start of the file (for an error message)."""
        lines = [n for n, line in enumerate(self.text.lines(), 1)
                 if first_line <= n <= last_line and _RAW_61.match(line)]
        return lines[index]


class StatementReader:
    """Reads one message's fields into a Statement, piece by piece, entries as they come."""

    def __init__(self, first: Message, source: str, flags: tuple[Flag, ...],
                 raw: RawStatementLines) -> None:
        self.source = source
        self.raw = raw
        self.first_line = first.first_line
        self.message_type = first.message_type
        self.reference = next((f.lines[0].strip() for f in first.fields if f.tag == "20"), "")
        self.log = FlagLog()
        self.log.extend(flags)
        self.statement_id: str | None = None
        self.sequence: str | None = None
        self.account: AccountValue | None = None
        self.opening: tuple[BalanceValue, BalanceKind] | None = None
        self.closing: tuple[BalanceValue, BalanceKind] | None = None
        self.available: list[tuple[BalanceValue, BalanceKind]] = []
        self.created_at: datetime | None = None
        self.floor_currency: str | None = None
        self.totals: dict[str, EntryTotal] = {}
        self.current: RawEntry | None = None
        self.tags: set[str] = set()
        self.information: list[tuple[int, str]] = []  # statement-level :86:/:NS: text
        self.raw_entries = 0  # :61: fields read
        self.entries = 0  # entries made
        self.held: list[RawEntry] = []  # entries read before their currency is known
        self.sums: dict[bool, tuple[int, Decimal | None]] = {True: (0, None), False: (0, None)}
        self.raw_lines = 0  # physical :61: lines counted in the message
        self.started = False

    def where(self, f: Field) -> Where:
        return Where(self.source, f.line, f":{f.tag}:")

    def _once(self, f: Field, seen: object, what: str) -> None:
        if seen is not None:
            raise self.where(f).error(f"a second {what} in one statement")

    def take(self, piece: Message) -> Iterator[Part]:
        """Read the fields of one piece; yield the entries they complete."""
        self.log.extend(piece.flags)
        for f in piece.fields:
            if self.current is not None and f.tag not in ("86", "NS"):
                done, self.current = self.current, None
                if (entry := self._complete(done)) is not None:
                    if not self.started:
                        yield self._start()
                    yield entry
            self.read(f)
        self.raw_lines += self.raw.count(self.first_line, piece.last_line)

    def _complete(self, raw: RawEntry) -> Entry | None:
        """An entry whose text is all read: made now if its currency is certain (the
        opening balance came before it), else held to the end (None)."""
        if self.opening is None or self.account is None or self.held:
            self.held.append(raw)
            return None
        return self._entry(raw, self.opening[0].currency)

    def _start(self) -> StatementStart:
        if self.opening is None:  # pragma: no cover - entries are made early only after it
            raise ValueError("an entry made before the opening balance")
        self.started = True
        return StatementStart(self._statement(self.opening[0].currency, closed=False))

    def _entry(self, raw: RawEntry, currency: str) -> Entry:
        entry = build_entry(raw, currency, self.account.account if self.account else None)
        debit = MARKS[raw.line.mark][0] < 0
        count, total = self.sums[debit]
        amount = abs(entry.amount.amount)
        self.sums[debit] = (count + 1, amount if total is None else total + amount)
        self.entries += 1
        return entry

    def read(self, f: Field) -> None:
        """Take in one field; one branch per tag, flat on purpose."""
        tag = f.tag
        self.tags.add(tag)
        if tag in ("86", "NS"):
            if self.current is None:
                text = raw_text(list(f.lines))
                if text:
                    self.information.append((f.line, f":{tag}: {text}"))
            elif tag == "86":
                self.current.details.extend(f.lines)
            else:
                self.current.non_swift.extend(f.lines)
            return
        where = self.where(f)
        if tag == "61":
            if self.closing is not None:
                raise where.error("an entry (:61:) after the closing balance :62a:")
            self.current = RawEntry(parse_statement_line(f.lines, where, self.log), where)
            self.raw_entries += 1
        elif tag == "20":
            self.statement_id = single_line(f.lines, where, self.log) or None
        elif tag in ("25", "25P"):
            self._once(f, self.account, "account :25:")
            value = single_line(f.lines[:1], where, self.log)
            self.account = parse_account(value, where, self.log)
            if tag == "25P" and len(f.lines) > 1:
                bic = f.lines[1].strip()
                self.account = AccountValue(
                    _replace(self.account.account, bic=bic or None), self.account.currency)
        elif tag in ("28", "28C"):
            self._once(f, self.sequence, "statement number :28C:")
            self.sequence = parse_statement_number(single_line(f.lines, where, self.log), where)
        elif tag in ("13", "13D"):
            self._once(f, self.created_at, "creation time :13D:")
            self.created_at = parse_creation_time(single_line(f.lines, where, self.log), where,
                                                  self.log)
        elif tag == "34F":
            floor = parse_floor_limit_currency(single_line(f.lines, where, self.log), where)
            self.floor_currency = self.floor_currency or floor
        elif tag in _OPENING:
            self._once(f, self.opening, "opening balance :60a:")
            if self.raw_entries:
                raise where.error("the opening balance comes after entries (:61:)")
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.opening = (balance, _OPENING[tag])
        elif tag in _CLOSING:
            self._once(f, self.closing, "closing balance :62a:")
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.closing = (balance, _CLOSING[tag])
        elif tag in _AVAILABLE:
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.available.append((balance, _AVAILABLE[tag]))
        elif tag in ("90D", "90C"):
            self._once(f, self.totals.get(tag[-1]), f"total :{tag}:")
            self.totals[tag[-1]] = parse_entry_total(single_line(f.lines, where, self.log),
                                                     where, self.log)
        # :21: (related reference) has no place in the model and says nothing of the money.

    def finish(self, last: Message) -> Iterator[Part]:
        """The statement's checks once all its fields are read, the entries held back, and
        its end."""
        if self.current is not None:
            done, self.current = self.current, None
            if (entry := self._complete(done)) is not None:
                if not self.started:
                    yield self._start()
                yield entry
        first = Where(self.source, self.first_line, ":20:")
        if self.account is None:
            raise first.error("the statement has no account identification :25:")
        if not self._is_942() and self.opening is None:
            raise first.error("the statement has no opening balance :60F:/:60M:")
        if not self._is_942() and self.closing is None:
            raise Where(self.source, last.last_line, ":62F:").error(
                "the statement ends without a closing balance :62F:/:62M: (cut off?)")
        currency = self._currency(first)
        held = [self._entry(raw, currency) for raw in self.held]
        self._check_count(last.last_line)
        self._check_totals(first)
        if self.information:
            self.log.extend([Flag(
                "statement_information",
                "text for the statement as a whole, which the model has no field for: "
                + "\n".join(text for _, text in self.information),
                f"line {self.information[0][0]}",
            )])
        if self.account.currency and self.account.currency != currency:
            self.log.add("account_currency_mismatch", f"the account is marked "
                         f"{self.account.currency}, its balances are in {currency}",
                         first.line)
        if not self.started:
            yield StatementStart(self._statement(currency, closed=False))
        yield from held
        yield StatementEnd(self._statement(currency, closed=True), self.entries)

    def _is_942(self) -> bool:
        return self.message_type == "942" or bool(self.tags & _MT942_TAGS)

    def _statement(self, currency: str, *, closed: bool) -> Statement:
        """The statement without its entries: as far as read (``closed``: all of it)."""
        account = self.account.account if self.account else Account()
        return Statement(
            source=self.source,
            format="mt942" if self._is_942() else "mt940",
            account=_replace(account, currency=currency),
            entries=(),
            statement_id=self.statement_id,
            sequence=self.sequence,
            created_at=self.created_at,
            opening_balance=_balance(self.opening),
            closing_balance=_balance(self.closing) if closed else None,
            available_balances=tuple(b for b in map(_balance, self.available) if b)
            if closed else (),
            flags=self.log.flags(),
        )

    def _currency(self, first: Where) -> str:
        for candidate in (self.opening, self.closing):
            if candidate is not None:
                return candidate[0].currency
        if self.floor_currency:
            return self.floor_currency
        for total in self.totals.values():
            return total.currency
        raise first.error("no currency: the report has no balance, :34F: or :90D:/:90C:")

    def _check_count(self, last_line: int) -> None:
        lines = self.raw_lines + self.raw.count(self.first_line, last_line)
        self.raw_lines = lines
        if lines != self.entries:
            at = (self.raw.nth(self.first_line, last_line, self.entries)
                  if lines > self.entries else self.first_line)
            raise ParseError(
                f"the statement has {lines} lines starting ':61:' but {self.entries} "
                "entries were read", source=self.source, line=at, field=":61:",
            )

    def _check_totals(self, first: Where) -> None:
        for mark, total in self.totals.items():
            count, running = self.sums[mark == "D"]
            amount = total.amount * 0
            if running is not None:
                amount += running
            if count != total.count or amount != total.amount:
                raise first.error(
                    f":90{mark}: says {total.count} entries totalling {total.amount}, but the "
                    f"report has {count} totalling {amount}"
                )


def _balance(value: tuple[BalanceValue, BalanceKind] | None) -> Balance | None:
    if value is None:
        return None
    balance, kind = value
    return Balance(Money(balance.amount, balance.currency), balance.date, kind)


def _replace(account: Account, **changes: str | None) -> Account:
    return dataclasses.replace(account, **changes)
