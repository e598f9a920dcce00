"""The two readers of camt documents behind ``parsers.camt.stream``.

``FastReader`` hears from lxml only of statements, entries, balances and accounts ending,
and reads the other children of a statement in order when a later one ends (or the
statement does). It is for whole, good documents; at the first sign of a problem
``parsers.camt.stream`` reads the document again with ``read_exactly``, which follows every
element's start and end and so names the first problem in document order. Both convert
with the same code (``parsers.camt_statement``), so they give the same parts.

Both hand on parts (``parsers.stream``) as they read: a statement's start before its first
entry, each entry, its end. The tree never holds more than one child of a statement: each
is converted once it has ended and then freed with what came before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from parsers.camt_statement import StatementReader
from parsers.camt_xml import REPEATABLE, Element, local
from parsers.errors import ParseError
from parsers.stream import Part, StatementEnd, StatementFailed, StatementStart

# message element -> (message type, name of its statement element)
MESSAGES = {
    "BkToCstmrAcctRpt": ("052", "Rpt"),
    "BkToCstmrStmt": ("053", "Stmt"),
    "BkToCstmrDbtCdtNtfctn": ("054", "Ntfctn"),
}
_MESSAGE_NAME = re.compile(r"(BkToCstmrAcctRpt|BkToCstmrStmt|BkToCstmrDbtCdtNtfctn)(?:V(\d\d))?")
NAMESPACE = re.compile(r"camt\.(05[234])\.001\.(\d\d)")


@dataclass(frozen=True, slots=True)
class _Message:
    """What a message element says: its statement elements' name, the type and version."""

    statement_name: str
    format: str  # "052", "053" or "054"
    version: str | None
    path: str


def _check_root(node: Element, name: str, path: str, source: str) -> tuple[str, str] | None:
    """Refuse a DOCTYPE or a root that is not ``Document``; the (type, version) of its
    namespace (``camt.053.001.08`` -> ("053", "08")), if it names one."""
    info = node.getroottree().docinfo
    doctype: str = info.doctype  # type: ignore[attr-defined]  # missing from lxml-stubs
    if doctype or info.internalDTD is not None:
        raise ParseError("a DOCTYPE is not allowed in camt (it could declare entities)",
                         source=source, line=1)
    if name != "Document":
        raise ParseError(f"expected a camt Document root element, found {name}",
                         source=source, path=path, field=name)
    match = NAMESPACE.search(etree.QName(node).namespace or "")
    return (match[1], match[2]) if match else None


def _message(name: str, path: str, namespace_version: tuple[str, str] | None,
             source: str) -> _Message:
    match = _MESSAGE_NAME.fullmatch(name)
    if match is None:
        raise ParseError(
            "expected a camt message: BkToCstmrStmt, BkToCstmrAcctRpt or "
            f"BkToCstmrDbtCdtNtfctn, found {name}", source=source, path=path, field=name)
    message_type, statement_name = MESSAGES[match[1]]
    number = match[2]
    if namespace_version is not None:
        ns_type, number = namespace_version
        if ns_type != message_type:
            raise ParseError(
                f"the namespace is camt.{ns_type} but the message is {name} "
                f"(camt.{message_type})", source=source, path=path, field=name)
    version = f"camt.{message_type}.001.{number}" if number else None
    return _Message(statement_name, message_type, version, path)


def _no_statement(name: str | None, path: str, source: str) -> ParseError:
    return ParseError(f"expected at least one {name or 'Stmt'} element, found none",
                      source=source, path=path)


def _free(node: Element) -> None:
    """Drop what ``node`` holds and the elements before it: they have been read."""
    node.clear()
    parent = node.getparent()
    while parent is not None and node.getprevious() is not None:
        del parent[0]


def _events(file: BinaryIO, events: tuple[str, ...],
            tag: list[str] | None = None) -> etree.iterparse:
    return etree.iterparse(
        file, events=events, tag=tag, resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
    )


def _add(reader: StatementReader, node: Element, name: str, path: str,
         parts: list[Part]) -> None:
    """Read one child of a statement; an entry goes to ``parts`` (after the statement's
    start, before its first entry)."""
    if name == "Ntry" and not reader.entries:
        parts.append(StatementStart(reader.head()))
    entry = reader.add(node, name, path)
    if entry is not None:
        parts.append(entry)


def _finish(reader: StatementReader, parts: list[Part]) -> None:
    """The end of a statement (and its start, if it had no entries) to ``parts``."""
    statement = reader.finish()
    if not reader.entries:
        parts.append(StatementStart(statement))
    parts.append(StatementEnd(statement, reader.entries))


# The fast reader hears only of these elements ending: statements and their main children.
_FAST_TAGS = [f"{{*}}{name}" for name in ("Ntry", "Bal", "Acct", "Stmt", "Rpt", "Ntfctn")]


class _OpenStatement:
    """A statement element being read: its children are read in order, then freed."""

    __slots__ = ("children", "last_read", "node", "reader")

    def __init__(self, node: Element, reader: StatementReader) -> None:
        self.node = node
        self.reader = reader
        self.children: dict[str, int] = {}  # children so far, by name
        self.last_read: Element | None = None  # still in the tree (it may be the last)

    def read_children(self, until: Element | None, parts: list[Part]) -> None:
        """Read the children not read yet, up to ``until`` (else all)."""
        statement, reader, counts = self.node, self.reader, self.children
        while len(statement):
            node = statement[0]
            if node is not self.last_read:
                name = local(node.tag)
                count = counts[name] = counts.get(name, 0) + 1
                step = f"{name}[{count}]" if name in REPEATABLE else name
                _add(reader, node, name, f"{reader.path}/{step}", parts)
                node.clear()
            if node is until:
                self.last_read = node
                return
            del statement[0]


class FastReader:
    """Reads a whole, good document, seeing only the ends of ``_FAST_TAGS`` elements.

    The other children of a statement are read in document order when a later one ends,
    or the statement does; the root and the messages are checked from the tree. Any
    problem is a ``ParseError`` or an lxml error, with no promise about which problem or
    where: ``parsers.camt.stream`` then reads the document again with the exact reader.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.root_checked = False
        self.namespace_version: tuple[str, str] | None = None
        self.message_node: Element | None = None
        self.message: _Message | None = None
        self.statement_counts: dict[str, int] = {}  # statements so far in this message
        self.statement: _OpenStatement | None = None
        self.statements = 0  # statements read
        self.parts: list[Part] = []  # read, not handed on yet
        self.handed_on = 0  # parts handed on

    def read(self, file: BinaryIO) -> Iterator[Part]:
        events = _events(file, ("end",), _FAST_TAGS)
        parts = self.parts
        for _, node in events:
            parent = node.getparent()
            statement = self.statement
            if statement is not None and parent is statement.node:
                statement.read_children(node, parts)  # the usual case: an entry
            else:
                self._elsewhere(node, parent)
            if parts:
                yield from parts
                self.handed_on += len(parts)
                parts.clear()
        root: Element = events.root
        self._check_root(root)
        for message in root:
            self._message(message)
        if not self.statements:
            raise _no_statement(None, "/Document", self.source)

    def _check_root(self, root: Element) -> None:
        if not self.root_checked:
            name = local(root.tag)
            self.namespace_version = _check_root(root, name, f"/{name}", self.source)
            self.root_checked = True

    def _message(self, node: Element) -> _Message:
        if node is not self.message_node or self.message is None:
            parent = node.getparent()
            for earlier in () if parent is None else parent:  # a problem before it comes
                if earlier is node:  # first, and before any part of this message is read
                    break
                name = local(earlier.tag)
                _message(name, f"/Document/{name}", self.namespace_version, self.source)
            name = local(node.tag)
            self.message = _message(name, f"/Document/{name}", self.namespace_version,
                                    self.source)
            self.message_node = node
            self.statement_counts = {}
        return self.message

    def _elsewhere(self, node: Element, parent: Element | None) -> None:
        if not self.root_checked:
            self._check_root(node.getroottree().getroot())
        grandparent = parent.getparent() if parent is not None else None
        if parent is None or grandparent is None:
            return  # the root or a message: checked at the end
        above = grandparent.getparent()
        if above is None:  # node is an element of the message parent
            statement = self.statement  # if open, it is node: siblings end one by one
            if statement is None and local(node.tag) == self._message(parent).statement_name:
                statement = self._start(node, parent)  # none of its children was heard of
            if statement is not None:
                statement.read_children(None, self.parts)
                _finish(statement.reader, self.parts)
                self.statements += 1
                self.statement = None
            _free(node)
        elif above.getparent() is None:  # node is a child of parent, in the message
            if local(parent.tag) == self._message(grandparent).statement_name:
                self._start(parent, grandparent).read_children(node, self.parts)
            else:
                _free(node)
        # Deeper elements are read with the child of a statement they belong to.

    def _start(self, node: Element, message_node: Element) -> _OpenStatement:
        message = self._message(message_node)
        name = message.statement_name
        count = self.statement_counts[name] = self.statement_counts.get(name, 0) + 1
        reader = StatementReader(self.source, f"{message.path}/{name}[{count}]",
                                 f"camt.{message.format}", message.version)
        self.statement = _OpenStatement(node, reader)
        return self.statement


class _ExactReader:
    """Follows every start and end event of a document, keeping element paths to depth 3:
    the first problem in document order is the one named. A problem inside a statement
    fails that statement (``StatementFailed``) and the reader goes on with the next."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0
        self.steps: list[str] = []  # path steps of the open elements, depth 0 to 3
        self.counts: list[dict[str, int]] = [{} for _ in range(5)]  # sibling counts by depth
        self.message: _Message | None = None
        self.namespace_version: tuple[str, str] | None = None
        self.current: StatementReader | None = None  # None too once it failed
        self.statements = 0  # statements begun
        self.parts: list[Part] = []  # read, not handed on yet

    def path(self) -> str:
        return "/" + "/".join(self.steps)

    def start(self, node: Element) -> None:
        depth = self.depth
        self.depth += 1
        if depth > 3:
            return
        name = local(node.tag)
        counts = self.counts[depth]
        counts[name] = counts.get(name, 0) + 1
        self.counts[depth + 1] = {}
        self.steps.append(f"{name}[{counts[name]}]" if name in REPEATABLE else name)
        if depth == 0:
            self.namespace_version = _check_root(node, name, self.path(), self.source)
        elif depth == 1:
            self.message = _message(name, self.path(), self.namespace_version, self.source)
        elif depth == 2 and self.message is not None and name == self.message.statement_name:
            self.current = StatementReader(self.source, self.path(),
                                           f"camt.{self.message.format}", self.message.version)
            self.statements += 1

    def end(self, node: Element) -> None:
        self.depth -= 1
        depth = self.depth
        if depth > 3:
            return
        current = self.current
        if current is not None and depth in (2, 3):
            try:
                if depth == 3:
                    _add(current, node, local(node.tag), self.path(), self.parts)
                else:
                    self.current = None
                    _finish(current, self.parts)
            except ParseError as exc:
                self.parts.append(StatementFailed(exc))
                self.current = None
        if depth >= 2:  # converted or not needed: free it and what came before it
            _free(node)
        self.steps.pop()

    def finish(self) -> None:
        if not self.statements:
            if self.message is None:
                raise _no_statement(None, "/Document", self.source)
            raise _no_statement(self.message.statement_name, self.message.path, self.source)


_XML_POSITION = re.compile(r",? line \d+, column \d+.*$")


def read_exactly(file: BinaryIO, source: str) -> Iterator[Part]:
    reader = _ExactReader(source)
    parts = reader.parts
    try:
        for event, node in _events(file, ("start", "end")):
            if event == "start":
                reader.start(node)
            else:
                reader.end(node)
            if parts:
                yield from parts
                parts.clear()
    except etree.XMLSyntaxError as exc:
        message = _XML_POSITION.sub("", str(exc.msg or exc)).strip()
        if "encoding" in message.lower():
            message += " (expected UTF-8, or the encoding the XML declaration names)"
        raise ParseError(f"not well-formed XML: {message}", source=source,
                         line=exc.lineno or None) from exc
    except etree.LxmlError as exc:
        raise ParseError(f"the XML could not be read: {exc}", source=source) from exc
    reader.finish()


