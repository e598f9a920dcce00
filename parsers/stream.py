"""Statements as a stream of parts, so that a file of any size is read in flat memory.

A streaming reader yields, for each statement of a document, in this order:

1. ``StatementStart``: the statement as far as it is known before its first entry (for
   camt everything but what follows the entries; for MT940 what comes before the first
   ``:61:``), with ``entries=()``;
2. one ``Entry`` per line, in file order;
3. ``StatementEnd``: the whole statement (balances after the entries, flags, the
   counts the reader checked) with ``entries=()``, and how many entries came.

A statement that turns out bad after some of its parts were yielded is followed by a
``StatementFailed`` carrying its ``ParseError`` (for readers that can go on with the next
statement, as ``parse_each`` does); a consumer drops what it took of that statement. A
reader that cannot go on raises the ``ParseError`` instead.

``collect`` turns a stream back into whole statements (what ``parse`` returns), and
``from_statements`` turns whole statements into a stream, for a format that does not
stream yet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from parsers.errors import ParseError
from parsers.model import Entry, Statement


@dataclass(frozen=True, slots=True)
class StatementStart:
    """A statement begins: what is known of it before its entries (``entries`` is empty)."""

    statement: Statement


@dataclass(frozen=True, slots=True)
class StatementEnd:
    """A statement is complete: all of it but its entries, and how many entries came."""

    statement: Statement
    entries: int


@dataclass(frozen=True, slots=True)
class StatementFailed:
    """The statement begun last is bad: drop what was taken of it."""

    error: ParseError


Part = StatementStart | Entry | StatementEnd | StatementFailed


def from_statements(statements: Iterable[Statement]) -> Iterator[Part]:
    """The parts of whole statements."""
    for statement in statements:
        yield StatementStart(dataclasses.replace(statement, entries=()))
        yield from statement.entries
        yield StatementEnd(dataclasses.replace(statement, entries=()), len(statement.entries))


def whole(results: Iterable[Statement | ParseError]) -> tuple[Statement, ...]:
    """Every statement, or the first ``ParseError`` raised: a document read all or nothing
    (what ``parse`` gives, from ``parse_each`` or ``collect``)."""
    statements = []
    for result in results:
        if isinstance(result, ParseError):
            raise result
        statements.append(result)
    return tuple(statements)


def collect(parts: Iterable[Part]) -> Iterator[Statement | ParseError]:
    """Whole statements from a stream (its entries gathered in memory), a failed statement
    as its ``ParseError`` in its place."""
    entries: list[Entry] = []
    open_ = False
    for part in parts:
        if isinstance(part, Entry):
            if not open_:
                raise ValueError("an entry came outside a statement")
            entries.append(part)
        elif isinstance(part, StatementStart):
            if open_:
                raise ValueError("a statement began before the one before it ended")
            entries, open_ = [], True
        elif isinstance(part, StatementEnd):
            if not open_:
                raise ValueError("a statement ended that had not begun")
            if part.entries != len(entries):
                raise ValueError(f"the statement's end counts {part.entries} entries, "
                                 f"{len(entries)} came")
            yield dataclasses.replace(part.statement, entries=tuple(entries))
            entries, open_ = [], False
        else:
            yield part.error
            entries, open_ = [], False
    if open_:
        raise ValueError("the stream ended inside a statement")
