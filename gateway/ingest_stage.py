"""Reading a document into the staging tables, in flat memory, off the event loop.

The parser's stream of parts (``parsers.stream``: a statement's start, its entries, its end)
is read in a worker thread a batch at a time (parsing is CPU-bound; the event loop keeps
answering other requests meanwhile), each batch turned into staging rows there and copied
to the database while the thread reads the next. What storing needs of a statement besides
its lines (its balances and flags, how many lines, on which days, their booked total, their
order) is gathered as the lines pass, in a ``StagedStatement``: nothing grows with the
number of lines but the set of days they fall on.

A bad document (a ``ParseError`` from the parser, a failed statement, a value that could
not be stored faithfully: ``gateway.limits``) raises ``ParseError``; the caller empties the
staging tables, so nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from gateway import limits
from gateway.store import staging
from parsers.errors import ParseError
from parsers.identity import IdMaker
from parsers.jsonl import entry_details
from parsers.model import BankTransactionCode, Entry, Statement
from parsers.overlap import PROVISIONAL_FORMATS, Ledger, is_provisional
from parsers.stream import Part, StatementEnd, StatementFailed, StatementStart

logger = logging.getLogger(__name__)

BATCH = 10_000  # lines per COPY: large enough to amortize a round trip, small in memory

# Entry fields stored in columns of their own (``transactions``); ``details`` holds the
# others that are set.
_IN_COLUMNS = frozenset({
    "booking_date", "value_date", "amount", "status", "reversal", "bank_reference",
    "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
    "creditor_reference",
})


@dataclass(slots=True)
class StagedStatement:
    """A statement whose lines are staged: the statement without its entries, and what
    storing it needs to know of them, gathered as they were read."""

    number: int  # its place in the document, from 0 (``statement_no`` of its staged lines)
    statement: Statement  # as its end part gives it, ``entries`` empty
    # The ids of its lines as if the account had none (``parsers.identity``), one line at a
    # time; dropped when the statement ends.
    ids: IdMaker | None = None
    entries: int = 0
    days: set[date | None] = field(default_factory=set)
    booked: int = 0
    booked_total: Decimal = Decimal(0)
    booked_currencies: set[str] = field(default_factory=set)
    # The booked lines' days in the bank's order (None as the earliest): rising, falling?
    rising: bool = True
    falling: bool = True
    last_day: date | None = None

    @property
    def first(self) -> date | None:
        return min((d for d in self.days if d is not None), default=None)

    @property
    def last(self) -> date | None:
        return max((d for d in self.days if d is not None), default=None)

    @property
    def newest_first(self) -> bool:
        """Listed newest first (read backwards): ``parsers.overlap.ledger_order``."""
        return not self.rising and self.falling

    def ledger(self) -> Ledger | None:
        """``parsers.overlap.ledger_of`` from what was gathered: the balances, without the
        balance after each line (those are ranked in the database: ``staging.rank``)."""
        statement = self.statement
        opening, closing = statement.opening_balance, statement.closing_balance
        reported = opening or closing
        currency = reported.amount.currency if reported is not None else None
        if currency is None or statement.format in PROVISIONAL_FORMATS \
                or any(c != currency for c in self.booked_currencies):
            return None
        if opening is not None:
            start = opening.amount.amount
        elif closing is not None:
            start = closing.amount.amount - self.booked_total
        else:  # pragma: no cover - ``reported`` is one of them
            return None
        end = closing.amount.amount if closing is not None else start + self.booked_total
        if closing is not None and closing.amount.currency != currency:
            return None
        return Ledger(start, end, currency)

    def take(self, entry: Entry, provisional: bool) -> None:
        self.entries += 1
        day = entry.booking_date or entry.value_date
        self.days.add(day)
        if provisional:
            return
        self.booked += 1
        self.booked_total += entry.amount.amount
        self.booked_currencies.add(entry.amount.currency)
        key = day or date.min
        if self.last_day is not None:
            self.rising = self.rising and key >= self.last_day
            self.falling = self.falling and key <= self.last_day
        self.last_day = key


# What may make a staged line unstorable (``limits``): in its text columns a NUL or a lone
# surrogate; in the JSON of ``details`` those (a NUL escaped), a number written with 16
# digits or more before its point (an amount past ``limits.MAX_AMOUNT``, or a long
# reference), or a non-finite one. Only a row where one of these shows, or with a text
# longer than the limit, is checked field by field.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SUSPECT_DETAILS = re.compile(r'[\x00\ud800-\udfff]|\\u0000|"-?[0-9]{16}|NaN|Infinity')


def _suspect(row: tuple[object, ...]) -> bool:
    """Whether the row may hold a value ``limits`` refuses (never False when it does)."""
    texts = [cell for cell in row[9:15] if isinstance(cell, str)]
    details_text, amount = row[15], row[5]
    if not isinstance(details_text, str) or not isinstance(amount, Decimal):
        return True
    return (abs(amount) >= limits.MAX_AMOUNT
            or any(len(text) > limits.MAX_STATEMENT_TEXT for text in texts)
            or len(details_text) > limits.MAX_STATEMENT_TEXT
            or _UNSTORABLE.search("".join(texts)) is not None
            or _SUSPECT_DETAILS.search(details_text) is not None)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_BUT_CODE = _IN_COLUMNS | {"bank_transaction_code"}
_ONLY_CODE = frozenset(f.name for f in dataclasses.fields(Entry)) - {"bank_transaction_code"}
_CODES_KEPT = 4_096  # transaction codes remembered: a document uses a few


def details(entry: Entry, codes: dict[BankTransactionCode, Any] | None = None) -> str:
    """The entry's fields that have no column of their own, as JSON (``entry_details``).

    ``codes`` remembers the JSON form of the bank transaction codes seen (a document uses
    a few, and turning one into JSON was half the time of the whole): the same fields,
    the code's last (``jsonb`` keeps no key order).
    """
    code = entry.bank_transaction_code
    if codes is None or code is None:
        return _ENCODER.encode(entry_details(entry, leave_out=_IN_COLUMNS))
    found = entry_details(entry, leave_out=_BUT_CODE)
    plain = codes.get(code)
    if plain is None:
        if len(codes) >= _CODES_KEPT:
            codes.clear()
        plain = codes[code] = entry_details(entry, leave_out=_ONLY_CODE).get(
            "bank_transaction_code")
    if plain is not None:
        found["bank_transaction_code"] = plain
    return _ENCODER.encode(found)


class Stager:
    """Parts in, staging rows out, a batch at a time (``next_batch``, run in a thread)."""

    def __init__(self, parts: Iterator[Part], *, source: str) -> None:
        self._parts = parts
        self._source = source
        self._open: StagedStatement | None = None
        self._codes: dict[BankTransactionCode, Any] = {}
        self.statements: list[StagedStatement] = []

    def next_batch(self, size: int = BATCH) -> list[tuple[object, ...]] | None:
        """The next rows to stage (``staging.STAGE_COLUMNS``), at most ``size``; None at the
        end of the document."""
        rows: list[tuple[object, ...]] = []
        for part in self._parts:
            if isinstance(part, Entry):
                rows.append(self._row(part))
                if len(rows) >= size:
                    break
            elif isinstance(part, StatementStart):
                self._open = StagedStatement(len(self.statements), part.statement,
                                             ids=IdMaker(part.statement.account.key))
            elif isinstance(part, StatementEnd):
                self._end(part)
            elif isinstance(part, StatementFailed):
                raise part.error
        else:
            if self._open is not None:
                raise ParseError("the document ended inside a statement", source=self._source)
            return rows or None
        return rows

    def _row(self, entry: Entry) -> tuple[object, ...]:
        staged = self._open
        if staged is None:
            raise ParseError("an entry came outside a statement", source=self._source)
        statement = staged.statement
        provisional = is_provisional(statement, entry)
        position = staged.entries
        staged.take(entry, provisional)
        ids = staged.ids
        if ids is None:  # pragma: no cover - set when the statement began
            raise RuntimeError("a staged statement without its ids")
        entry_id, id_key = ids.id_and_key(entry)
        row = (staged.number, position, entry.booking_date or entry.value_date,
               entry.booking_date, entry.value_date, entry.amount.amount,
               entry.amount.currency, entry.status.value, entry.reversal,
               entry.bank_reference, entry.counterparty_name, entry.counterparty_account,
               entry.end_to_end_id, entry.remittance, entry.creditor_reference,
               details(entry, self._codes), provisional,
               id_key, entry_id)
        if _suspect(row):
            self._check_entry(entry, position)
        return row

    def _check_entry(self, entry: Entry, position: int) -> None:
        """Refuse a value of the entry that could not be stored faithfully (``limits``),
        naming the statement and the entry as a reader counts them."""
        staged = self._open
        if staged is None:  # pragma: no cover - ``_row`` found it open
            return
        whole = dataclasses.replace(staged.statement, entries=(entry,))
        found = limits.statement_problems([whole])
        if found:
            self._refuse(found, staged.number, entry_offset=position)

    def _end(self, part: StatementEnd) -> None:
        staged = self._open
        if staged is None:
            raise ParseError("a statement ended that had not begun", source=self._source)
        if part.entries != staged.entries:
            raise ParseError(f"the statement's end counts {part.entries} entries, "
                             f"{staged.entries} came", source=self._source)
        staged.statement = dataclasses.replace(part.statement, entries=())
        staged.ids = None
        found = limits.statement_problems([staged.statement])
        if found:
            self._refuse(found, staged.number, entry_offset=0)
        self.statements.append(staged)
        self._open = None

    def _refuse(self, found: list[tuple[str, str, str]], number: int, *,
                entry_offset: int) -> None:
        where, name, problem = found[0]
        where = re.sub(r"^statement 1", f"statement {number + 1}", where)
        where = re.sub(r"entry (\d+)", lambda m: f"entry {int(m[1]) + entry_offset}", where,
                       count=1)
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ParseError(f"{where}: {problem}{more}; nothing was stored", source=self._source,
                         field=name)


async def stage(conn: asyncpg.Connection, parts: Iterator[Part], *,
                source: str) -> list[StagedStatement]:
    """Read ``parts`` into the (emptied) staging tables; the statements read, in order.

    The parser runs in a worker thread, one batch ahead of the copy. Raises ``ParseError``
    for a bad document, leaving what was staged for the caller to clear.
    """
    await staging.begin(conn)
    stager = Stager(parts, source=source)
    pending = asyncio.ensure_future(asyncio.to_thread(stager.next_batch))
    try:
        while True:
            rows = await pending
            if rows is None:
                break
            pending = asyncio.ensure_future(asyncio.to_thread(stager.next_batch))
            await staging.add_lines(conn, rows)
    finally:
        if not pending.done():
            # The copy failed: let the thread finish its batch before the stream is
            # dropped (a generator cannot be closed while another thread runs it).
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the copy's error is the one raised
    await staging.analyze(conn)
    logger.debug("staged %d statements, %d lines", len(stager.statements),
                 sum(s.entries for s in stager.statements))
    return stager.statements
