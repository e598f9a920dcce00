"""OFX read as a stream: each entry yielded as soon as its STMTTRN is read, and dropped.

One reader for OFX 1.x SGML and 2.x XML: the tokenizer of ``ofx_tree`` handles both, as
it always did (so lxml, which refuses the SGML and the damaged XML banks write, is not
needed). The tree is built as the tokens come (``ofx_tree.build_steps``) and each STMTTRN,
once complete, is cleaned, read into its entry (``ofx_statement.transaction_entry``),
yielded, and taken out of the tree; only the first ``CROSS_CHECK_TRANSACTIONS`` of a
statement stay, for ofxparse. What is left at the end of the document is a small tree:
the statement read from it (balances, period, account, flags) is the statement's end.
The file is read in blocks (``ofx_header.OfxDocument``) and tokenized as they come
(``ofx_tokens.iter_tokens``): memory holds a block, the text from the last token on, and
that small tree, never the document's text nor its entries; so the ofxparse cross-check,
made on that small tree, needs no more of the file either.

The streaming reader takes the regular document: one statement (nearly every file; a
large one always), each STMTTRN inside its BANKTRANLIST, the statement's CURDEF before its
transactions. Anything else (several statements, a transaction outside a statement, an
error anywhere) is read whole by ``ofx_statement.read_whole``, which gives what the
document always gave, and the stream goes on from where it stood (the entries already
yielded are those the whole reading starts with). So the stream is exact by construction
for bad files, and the streaming reader needs to be exact only for good ones. A document
read whole is held whole: memory follows the size of such a file (of a large one only
when it has several statements or is irregular, or has a bad value). One kind of error is
raised where it is met instead, without reading whole, as it is the whole reading's: an
error in the tokens or the tree (a truncated or damaged file), once the rest of the file
is found to tokenize (the whole reading tokenizes all before building; an error further in
the tokens is the one it raises, and is raised).

Two things of the whole reading are kept as it has them: the set of tags closed
somewhere in the document (which decides whether an SGML element of a tag not known as
an aggregate or a leaf is one or the other) is the end tags of the document's tokens,
found by reading the file through once more when a tag first needs it
(``_ClosedTags``); and the repairs of the cleaning step, which the whole reading makes
element by element in document order, are gathered with their place in that order and
sorted back (``_CleanRepairs``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from parsers import ofx_header
from parsers.errors import ParseError, TooLargeError
from parsers.model import Statement
from parsers.ofx_clean import clean_element, clean_statement
from parsers.ofx_header import OfxDocument
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
from parsers.ofx_tokens import Kind
from parsers.ofx_tree import (
    Element,
    Repairs,
    assign_paths,
    build_steps,
    iter_tokens,
    serialize,
)
from parsers.stream import Part, StatementEnd, StatementFailed, StatementStart

# Elements a transaction never holds; one inside it is a document to read whole.
_NOT_IN_TRANSACTION = frozenset({
    "STATUS", "INVSTMTRS", "INVSTMTTRNRS", "STMTRS", "CCSTMTRS", "STMTTRNRS", "CCSTMTTRNRS",
    "SONRS", "BANKTRANLIST", "STMTTRN",
})


class _Whole(Exception):
    """The document is not one the streaming reader takes: read it whole."""


def stream_document(file: BinaryIO, *, source: str) -> Iterator[Part]:
    """The parts of the OFX document in ``file``, from where it stands (see the module
    docstring)."""
    if not file.seekable():
        file = io.BytesIO(file.read())
    start = file.tell()
    reader = _Reader(ofx_header.open_document(file, source=source), source)
    try:
        yield from reader.parts()
    except TooLargeError:
        raise  # the file grew past its limit while read: read no further
    except (_Whole, ParseError):
        if reader.refused:
            raise
        file.seek(start)
        yield from _parts(read_whole(file.read(), source=source), started=reader.started,
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


class _ClosedTags:
    """The tags closed somewhere in the document (``ofx_tree.build_steps`` asks of tags
    it does not know): the end tags of its tokens, as the whole reading has them, found
    by reading the document again, once, when first asked (most documents never are)."""

    def __init__(self, document: OfxDocument, source: str) -> None:
        self.document = document
        self.source = source
        self.tags: frozenset[str] | None = None

    def __contains__(self, tag: object) -> bool:
        if self.tags is None:
            tokens = iter_tokens(self.document.body(), 0, source=self.source,
                                 repairs=Repairs(), line=self.document.body_line)
            self.tags = frozenset(t.value for t in tokens if t.kind is Kind.END)
        return tag in self.tags


class _Reader:
    """Reads one document, its one statement's entries as they come."""

    def __init__(self, document: OfxDocument, source: str) -> None:
        self.document = document
        self.source = source
        self.context = Context(source)
        self.clean = _CleanRepairs()
        self.statement: Element | None = None
        self.curdef: str | None = None
        self.streamed = Streamed()
        self.ready: list[Part] = []
        self.started = False  # the statement's start was yielded
        self.entries = 0  # entries yielded
        self.refused = False  # the error raised is the whole reading's: no need to read it

    def parts(self) -> Iterator[Part]:
        document = self.document
        token_repairs, tree_repairs = Repairs(), Repairs()
        tokens = iter_tokens(document.body(), 0, source=self.source, repairs=token_repairs,
                             line=document.body_line)
        steps = build_steps(tokens, source=self.source, repairs=tree_repairs,
                            xml=document.xml, closed_somewhere=_ClosedTags(document, self.source),
                            on_close=self._closed)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                root: Element = done.value
                break
            except ParseError:
                # The tokens or the tree are bad (what _closed raises is _Whole): the whole
                # reading, which tokenizes all before it builds, raises the first error in
                # the tokens, else this one; the tokens left tell which, in flat memory.
                self.refused = True
                for _ in tokens:
                    pass
                raise
            if self.ready:
                yield from self.ready
                self.ready.clear()
        yield from self.ready
        token_repairs.extend(tree_repairs)
        yield from self._end(root, token_repairs)

    def _closed(self, element: Element, open_: list[Element]) -> None:
        """Told of every element once complete: a transaction is read and dropped; an
        error in it is for the whole reading to name (it reads the tree first)."""
        try:
            self._take(element, open_)
        except ParseError as exc:
            raise _Whole from exc

    def _take(self, element: Element, open_: list[Element]) -> None:
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
        return f"OFX {self.document.version}" if self.document.version else None

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
        shared = (*self.document.flags, *repairs.flags(), *context.flags)
        end = dataclasses.replace(statement, statement_id=each.trnuid, created_at=created_at,
                                  format_version=self._version(),
                                  flags=(*shared, *statement.flags))
        if not self.started:
            yield StatementStart(end)
            self.started = True
        yield StatementEnd(end, self.entries)
