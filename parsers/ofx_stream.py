"""OFX read as a stream: each entry yielded as soon as its STMTTRN is read, and dropped.

One reader for OFX 1.x SGML and 2.x XML: the tokenizer of ``ofx_tree`` handles both, as
it always did (so lxml, which refuses the SGML and the damaged XML banks write, is not
needed). The tree is built as the tokens come (``ofx_tree.build_steps``) and each STMTTRN,
once complete, is cleaned, read into its entry (``ofx_statement.transaction_entry``),
yielded, and taken out of the tree; only the first ``CROSS_CHECK_TRANSACTIONS`` of a
statement stay, for ofxparse. What is left at the end of the document is a small tree:
the statement read from it (balances, period, account, flags) is the statement's end.
Memory holds the document's text and that small tree, never its entries.

The streaming reader takes the regular document: one statement (nearly every file; a
large one always), each STMTTRN inside its BANKTRANLIST, the statement's CURDEF before its
transactions. Anything else (several statements, a transaction outside a statement, an
error anywhere) is read whole by ``ofx_statement.read_whole``, which gives what the
document always gave, and the stream goes on from where it stood (the entries already
yielded are those the whole reading starts with). So the stream is exact by construction
for bad files, and the streaming reader needs to be exact only for good ones.

Two things of the whole reading are kept in the order it had: the set of tags closed
somewhere in the document (which decides whether an SGML element is a leaf) comes from
one regular expression over the text before reading; and the repairs of the cleaning
step, which the whole reading makes element by element in document order, are gathered
with their place in that order and sorted back (``_CleanRepairs``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from parsers import ofx_header
from parsers.errors import ParseError
from parsers.model import Statement
from parsers.ofx_clean import clean_element, clean_statement
from parsers.ofx_header import OfxText
from parsers.ofx_reference import differences
from parsers.ofx_statement import (
    CROSS_CHECK_TRANSACTIONS,
    STATEMENTS,
    Context,
    Streamed,
    account_of,
    check_every_transaction_read,
    created_at_of,
    read_whole,
    sample_tree,
    statement_aggregates,
    statement_of,
    transaction_entry,
)
from parsers.ofx_tree import (
    Element,
    Repairs,
    assign_paths,
    build_steps,
    iter_tokens,
    serialize,
)
from parsers.stream import Part, StatementEnd, StatementFailed, StatementStart

# The end tags the tokenizer finds: what it skips (comments, CDATA, PIs, declarations) is
# matched first, in its order, so that an end tag inside them does not count.
_END_TAGS = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!.*?>"
                       r"|</([A-Za-z][A-Za-z0-9_.]*)\s*/?>", re.DOTALL)
_STATEMENT_TAGS = re.compile(r"<(?:STMTRS|CCSTMTRS)\s*/?>", re.IGNORECASE)
# Elements a transaction never holds; one inside it is a document to read whole.
_NOT_IN_TRANSACTION = frozenset({
    "STATUS", "INVSTMTRS", "INVSTMTTRNRS", "STMTRS", "CCSTMTRS", "STMTTRNRS", "CCSTMTTRNRS",
    "SONRS", "BANKTRANLIST", "STMTTRN",
})


class _Whole(Exception):
    """The document is not one the streaming reader takes: read it whole."""


def stream_document(data: bytes, *, source: str) -> Iterator[Part]:
    """The parts of an OFX document (see the module docstring)."""
    text = ofx_header.read(data, source=source)
    if len(_STATEMENT_TAGS.findall(text.text, text.body_start)) != 1:
        yield from _parts(read_whole(data, source=source), started=False, taken=0)
        return
    reader = _Reader(text, source)
    try:
        yield from reader.parts()
    except (_Whole, ParseError):
        yield from _parts(read_whole(data, source=source), started=reader.started,
                          taken=reader.entries)


def _parts(results: Sequence[Statement | ParseError], *, started: bool,
           taken: int) -> Iterator[Part]:
    """The parts of statements read whole; the first one's start and ``taken`` entries
    already given when ``started``."""
    for index, result in enumerate(results):
        if isinstance(result, ParseError):
            yield StatementFailed(result)
            continue
        going_on = started and index == 0
        head = dataclasses.replace(result, entries=())
        if not going_on:
            yield StatementStart(head)
        yield from result.entries[taken if going_on else 0:]
        yield StatementEnd(head, len(result.entries))


class _CleanRepairs:
    """The cleaning step's repairs, each with its place in the order the whole reading
    makes them (the element's place in the document, then the repair's within it), kept
    as ``Repairs`` keeps them: a count, the first line, the first four examples."""

    def __init__(self) -> None:
        self.order = 0
        self.step = 0
        # what -> [count, first key, its line, {example: first key}]
        self.seen: dict[str, list[object]] = {}

    def at(self, element: Element) -> None:
        self.order, self.step = element.order, 0

    def add(self, what: str, example: str, line: int | None) -> None:
        self.step += 1
        key = (self.order, self.step)
        seen = self.seen.get(what)
        if seen is None:
            seen = self.seen[what] = [0, key, line, {}]
        seen[0] = _int(seen[0]) + 1
        if key < _key(seen[1]):
            seen[1], seen[2] = key, line
        examples = _examples(seen[3])
        if example and key < examples.get(example, (1 << 62, 0)):
            examples[example] = key
            if len(examples) > 4:
                del examples[max(examples, key=lambda e: examples[e])]

    def into(self, repairs: Repairs) -> None:
        for what, seen in sorted(self.seen.items(), key=lambda item: _key(item[1][1])):
            examples = _examples(seen[3])
            line = seen[2]
            repairs.put(what, _int(seen[0]), line if isinstance(line, int) else None,
                        sorted(examples, key=lambda e: examples[e]))


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _key(value: object) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (0, 0)


def _examples(value: object) -> dict[str, tuple[int, int]]:
    return value if isinstance(value, dict) else {}


class _Reader:
    """Reads one document, its one statement's entries as they come."""

    def __init__(self, text: OfxText, source: str) -> None:
        self.text = text
        self.source = source
        self.context = Context(source)
        self.clean = _CleanRepairs()
        self.statement: Element | None = None
        self.curdef: str | None = None
        self.streamed = Streamed()
        self.ready: list[Part] = []
        self.started = False  # the statement's start was yielded
        self.entries = 0  # entries yielded

    def parts(self) -> Iterator[Part]:
        text = self.text
        xml = (text.version or "").startswith("2") or text.text.startswith("<?xml",
                                                                           text.body_start)
        closed = {name.upper() for name in _END_TAGS.findall(text.text, text.body_start)
                  if name}
        token_repairs, tree_repairs = Repairs(), Repairs()
        tokens = iter_tokens(text.text, text.body_start, source=self.source,
                             repairs=token_repairs)
        steps = build_steps(tokens, source=self.source, repairs=tree_repairs, xml=xml,
                            closed_somewhere=closed, on_close=self._closed)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                root: Element = done.value
                break
            if self.ready:
                yield from self.ready
                self.ready.clear()
        yield from self.ready
        token_repairs.extend(tree_repairs)
        yield from self._end(root, token_repairs)

    def _closed(self, element: Element, open_: list[Element]) -> None:
        """Told of every element once complete: a transaction is read and dropped."""
        if element.tag != "STMTTRN":
            if element.tag in STATEMENTS:
                if self.statement is not None and element is not self.statement:
                    raise _Whole  # a second statement
                self.statement = element
            return
        if (len(open_) < 3 or open_[-1].tag != "BANKTRANLIST" or open_[-2].tag not in STATEMENTS
                or open_[-1].children[-1] is not element):
            raise _Whole  # a transaction outside a statement's list
        statement = open_[-2]
        if self.statement is None:
            self.statement = statement
        elif statement is not self.statement:
            raise _Whole
        for inner in element.iter():
            if inner is not element and inner.tag in _NOT_IN_TRANSACTION:
                raise _Whole
            self.clean.at(inner)
            clean_element(inner, self.clean.add)
        if self.curdef is None:
            curdef = statement.first("CURDEF")
            if curdef is None or not curdef.text:
                raise _Whole  # the currency comes later, or is empty: read whole
            self.curdef = self.context.currency(statement, "CURDEF")
        entry = transaction_entry(element, self.curdef, self.context, self.streamed.notes)
        if len(self.streamed.read) < CROSS_CHECK_TRANSACTIONS:
            self.streamed.read.append((element.value("FITID"), entry.amount.amount))
        else:
            del open_[-1].children[-1]  # ofxparse has its sample: the tree lets it go
        if element.value("CORRECTACTION") == "DELETE":
            return
        if not self.started:
            account, _ = account_of(statement, self.curdef, self.context)
            self.ready.append(StatementStart(Statement(
                source=self.source, format="ofx", account=account, entries=(),
                format_version=self._version())))
            self.started = True
        self.ready.append(entry)
        self.entries += 1

    def _version(self) -> str | None:
        return f"OFX {self.text.version}" if self.text.version else None

    def _end(self, root: Element, repairs: Repairs) -> Iterator[Part]:
        """The statement's end, read from what is left of the tree."""
        assign_paths(root)
        for element in root.iter():
            self.clean.at(element)
            clean_element(element, self.clean.add)
        self.clean.into(repairs)
        context = self.context
        created_at = created_at_of(root, context)
        found = statement_aggregates(root, context)
        if len(found) != 1 or (self.statement is not None
                               and found[0].aggregate is not self.statement):
            raise _Whole
        each = found[0]
        flags = (*each.flags, *clean_statement(each.aggregate))
        statement, reading = statement_of(each.aggregate, context, flags,
                                          streamed=self.streamed)
        check_every_transaction_read(root, found, context)
        sample = serialize(sample_tree(root, set(), CROSS_CHECK_TRANSACTIONS))
        (problem,) = differences([reading.first(CROSS_CHECK_TRANSACTIONS)], sample,
                                 source=self.source)
        if problem is not None:
            raise _Whole  # the whole reading names it
        shared = (*self.text.flags, *repairs.flags(), *context.flags)
        end = dataclasses.replace(statement, statement_id=each.trnuid, created_at=created_at,
                                  format_version=self._version(),
                                  flags=(*shared, *statement.flags))
        if not self.started:
            yield StatementStart(end)
            self.started = True
        yield StatementEnd(end, self.entries)
