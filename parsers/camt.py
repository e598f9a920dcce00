"""ISO 20022 camt.052 (intraday report), camt.053 (statement), camt.054 (notification).

Every version from camt.05x.001.01 to .13, matched on local element names; the version
comes from the namespace (``urn:iso:std:iso:20022:tech:xsd:camt.053.001.08``) or, for
files without one, from the message element (``BkToCstmrAcctRptV01``). One ``Statement``
per ``Stmt``/``Rpt``/``Ntfctn`` (``parsers.camt_statement``); entries are read by
``parsers.camt_entries``; typed values and element paths by ``parsers.camt_xml``.

Safety: a DOCTYPE (and so any entity declaration) is refused before parsing, and again if
lxml sees one; lxml parses with entity resolution, DTD loading and network access off,
without ``huge_tree`` (so libxml2's depth and text-size limits hold). The document is
streamed: each child of a statement is converted when it ends and then freed, so the XML
tree never holds more than one entry at a time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from lxml import etree

from parsers.camt_statement import StatementReader, split_balances
from parsers.camt_xml import REPEATABLE, Element, local
from parsers.errors import ParseError
from parsers.model import Statement

FORMAT = "camt"

__all__ = ["FORMAT", "parse", "sniff", "split_balances"]

# message element -> (message type, name of its statement element)
MESSAGES = {
    "BkToCstmrAcctRpt": ("052", "Rpt"),
    "BkToCstmrStmt": ("053", "Stmt"),
    "BkToCstmrDbtCdtNtfctn": ("054", "Ntfctn"),
}
_MESSAGE_NAME = re.compile(r"(BkToCstmrAcctRpt|BkToCstmrStmt|BkToCstmrDbtCdtNtfctn)(?:V(\d\d))?")
_NAMESPACE = re.compile(r"camt\.(05[234])\.001\.(\d\d)")
_MESSAGE_TAG = re.compile(r"<(?:[\w.\-]+:)?BkToCstmr(?:Stmt|AcctRpt|DbtCdtNtfctn)(?:V\d+)?[\s>/]")

# The prolog: declaration, processing instructions, comments and a DOCTYPE, then the root.
_PROLOG_ITEM = re.compile(r"\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]*\[.*?\])?[^>]*>)", re.S)
_ROOT_TAG = re.compile(r"\s*<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)([^>]*)>")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_HEAD_BYTES = 64 * 1024


def _head_text(data: bytes) -> str:
    """The first bytes as text, for looking at the prolog (UTF-16 aware, else byte-wise)."""
    head = data[:_HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "replace").lstrip("\ufeff")
    if head.startswith(b"<\x00?\x00"):
        return head.decode("utf-16-le", "replace")
    if head.startswith(b"\x00<\x00?"):
        return head.decode("utf-16-be", "replace")
    return head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


@dataclass(frozen=True, slots=True)
class _Prolog:
    doctype_line: int | None  # line of a DOCTYPE, if there is one
    root: str | None  # local name of the root element
    root_attributes: str


def _prolog(head: str) -> _Prolog:
    pos, doctype_line = 0, None
    while (item := _PROLOG_ITEM.match(head, pos)) is not None:
        if item[1].startswith("<!DOCTYPE") and doctype_line is None:
            doctype_line = len(_NEWLINE.findall(head, 0, item.start(1))) + 1
        pos = item.end()
    root = _ROOT_TAG.match(head, pos)
    return _Prolog(doctype_line, root[1] if root else None, root[2] if root else "")


def sniff(head: bytes) -> bool:
    """True for XML whose root is a camt.05x ``Document`` or that holds a camt message."""
    text_head = _head_text(head)
    prolog = _prolog(text_head)
    if prolog.root is None:
        return False
    if prolog.root == "Document" and _NAMESPACE.search(prolog.root_attributes):
        return True
    return _MESSAGE_TAG.search(text_head) is not None


class _DocumentReader:
    """Follows the iterparse events of one document, keeping element paths to depth 3."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0
        self.steps: list[str] = []  # path steps of the open elements, depth 0 to 3
        self.counts: list[dict[str, int]] = [{} for _ in range(5)]  # sibling counts by depth
        self.statement_name: str | None = None
        self.message_path = "/Document"
        self.format = ""
        self.version: str | None = None
        self.namespace_version: tuple[str, str] | None = None
        self.current: StatementReader | None = None
        self.statements: list[Statement] = []

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
            self._root(node, name)
        elif depth == 1:
            self._message(name)
        elif depth == 2 and name == self.statement_name:
            self.current = StatementReader(self.source, self.path(), f"camt.{self.format}",
                                            self.version)

    def end(self, node: Element) -> None:
        self.depth -= 1
        depth = self.depth
        if depth > 3:
            return
        if depth == 3 and self.current is not None:
            self.current.add(node, self.path())
        elif depth == 2 and self.current is not None:
            self.statements.append(self.current.finish())
            self.current = None
        if depth >= 2:  # converted or not needed: free it and what came before it
            node.clear()
            parent = node.getparent()
            while parent is not None and node.getprevious() is not None:
                del parent[0]
        self.steps.pop()

    def _root(self, node: Element, name: str) -> None:
        info = node.getroottree().docinfo
        doctype: str = info.doctype  # type: ignore[attr-defined]  # missing from lxml-stubs
        if doctype or info.internalDTD is not None:
            raise ParseError("a DOCTYPE is not allowed in camt (it could declare entities)",
                             source=self.source, line=1)
        if name != "Document":
            raise ParseError(f"expected a camt Document root element, found {name}",
                             source=self.source, path=self.path(), field=name)
        match = _NAMESPACE.search(etree.QName(node).namespace or "")
        self.namespace_version = (match[1], match[2]) if match else None

    def _message(self, name: str) -> None:
        match = _MESSAGE_NAME.fullmatch(name)
        if match is None:
            raise ParseError(
                "expected a camt message: BkToCstmrStmt, BkToCstmrAcctRpt or "
                f"BkToCstmrDbtCdtNtfctn, found {name}",
                source=self.source, path=self.path(), field=name)
        message_type, self.statement_name = MESSAGES[match[1]]
        number = match[2]
        if self.namespace_version is not None:
            ns_type, number = self.namespace_version
            if ns_type != message_type:
                raise ParseError(
                    f"the namespace is camt.{ns_type} but the message is {name} "
                    f"(camt.{message_type})", source=self.source, path=self.path(), field=name)
        self.format = message_type
        self.version = f"camt.{message_type}.001.{number}" if number else None
        self.message_path = self.path()

    def finish(self) -> tuple[Statement, ...]:
        if not self.statements:
            raise ParseError(
                f"expected at least one {self.statement_name or 'Stmt'} element, found none",
                source=self.source, path=self.message_path)
        return tuple(self.statements)


_XML_POSITION = re.compile(r",? line \d+, column \d+.*$")


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Parse a camt.052/053/054 document into one ``Statement`` per statement element.

    Raises ``ParseError`` for anything that is not a whole, well-formed camt document.
    """
    if not data or data.isspace():  # (strip() would copy the whole document)
        raise ParseError("the document is empty", source=source)
    prolog = _prolog(_head_text(data))
    if prolog.doctype_line is not None:
        raise ParseError("a DOCTYPE is not allowed in camt (it could declare entities): "
                         "the document was refused unread", source=source,
                         line=prolog.doctype_line)
    reader = _DocumentReader(source)
    events = etree.iterparse(
        io.BytesIO(data), events=("start", "end"), resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
    )
    try:
        for event, node in events:
            if event == "start":
                reader.start(node)
            else:
                reader.end(node)
    except etree.XMLSyntaxError as exc:
        message = _XML_POSITION.sub("", str(exc.msg or exc)).strip()
        if "encoding" in message.lower():
            message += " (expected UTF-8, or the encoding the XML declaration names)"
        raise ParseError(f"not well-formed XML: {message}", source=source,
                         line=exc.lineno or None) from exc
    except etree.LxmlError as exc:
        raise ParseError(f"the XML could not be read: {exc}", source=source) from exc
    return reader.finish()
