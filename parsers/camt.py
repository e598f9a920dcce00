"""ISO 20022 camt.052 (intraday report), camt.053 (statement), camt.054 (notification).

Every version from camt.05x.001.01 to .13, matched on local element names; the version
comes from the namespace (``urn:iso:std:iso:20022:tech:xsd:camt.053.001.08``) or, for
files without one, from the message element (``BkToCstmrAcctRptV01``). One ``Statement``
per ``Stmt``/``Rpt``/``Ntfctn`` (``parsers.camt_statement``); entries are read by
``parsers.camt_entries``; typed values and element paths by ``parsers.camt_xml``.

Safety: a DOCTYPE (and so any entity declaration) is refused before parsing, and again if
lxml sees one; lxml parses with entity resolution, DTD loading and network access off,
without ``huge_tree`` (so libxml2's depth and text-size limits hold).

``stream(file, *, source)`` reads from an open file as it goes, in flat memory: each child
of a statement is converted once it has ended and then freed, so the XML tree never holds
more than one entry at a time, and each entry is handed on as it is read (the parts of
``parsers.stream``). ``parse`` and ``parse_each`` are built on it. A good document is read
once, by the fast reader; at its first sign of a problem it is read again from the start
by the exact reader, which names the first problem in document order
(``parsers.camt_readers``). A problem inside one statement of a well-formed document fails
that statement only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from parsers.camt_readers import NAMESPACE, FastReader, read_exactly
from parsers.camt_statement import split_balances
from parsers.errors import ParseError
from parsers.model import Statement
from parsers.stream import Part, collect, whole

# The parser family (its folder of golden files). A statement's format is its message type,
# "camt.052", "camt.053" or "camt.054", never the family's name.
FAMILY = "camt"
FORMAT_NAMES = ("camt.052", "camt.053", "camt.054")

__all__ = ["FAMILY", "FORMAT_NAMES", "parse", "parse_each", "sniff", "split_balances", "stream"]

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
    if prolog.root == "Document" and NAMESPACE.search(prolog.root_attributes):
        return True
    return _MESSAGE_TAG.search(text_head) is not None


def _read_fast(data: bytes, source: str) -> tuple[Statement, ...] | None:
    """The statements of a whole, good document by the fast reader alone; None if it
    meets a problem."""
    try:
        return tuple(s for s in collect(FastReader(source).read(io.BytesIO(data)))
                     if isinstance(s, Statement))
    except (ParseError, etree.LxmlError):
        return None


def _read_exactly(data: bytes, source: str) -> tuple[Statement, ...]:
    """The statements of a document by the exact reader alone; the first problem raised."""
    return _whole(read_exactly(io.BytesIO(data), source))


def _whole(parts: Iterator[Part]) -> tuple[Statement, ...]:
    return whole(collect(parts))


def _is_blank(file: BinaryIO, head: bytes) -> bool:
    """True if the document (whose first bytes are ``head``) is empty or only blanks."""
    if head and not head.isspace():
        return False
    if len(head) < _HEAD_BYTES:
        return True
    where = file.tell()
    try:
        while chunk := file.read(1 << 20):
            if not chunk.isspace():
                return False
        return True
    finally:
        file.seek(where)


def stream(file: BinaryIO, *, source: str) -> Iterator[Part]:
    """The statements of a camt.052/053/054 document read from ``file`` (binary, seekable,
    from where it stands) as a stream of parts (``parsers.stream``), in flat memory.

    A problem inside one statement of a well-formed document is a ``StatementFailed`` in
    its place, and the next statement is read; anything else (not well-formed XML, not a
    camt document) raises ``ParseError``. A good document is read once, by the fast
    reader; at its first sign of a problem the document is read again from the start by
    the exact reader, which names the first problem in document order (the parts already
    handed on are not repeated).
    """
    start = file.tell()
    head = file.read(_HEAD_BYTES)
    file.seek(start)
    if _is_blank(file, head):  # (strip() would copy the whole document)
        raise ParseError("the document is empty", source=source)
    prolog = _prolog(_head_text(head))
    if prolog.doctype_line is not None:
        raise ParseError("a DOCTYPE is not allowed in camt (it could declare entities): "
                         "the document was refused unread", source=source,
                         line=prolog.doctype_line)
    fast = FastReader(source)
    try:
        yield from fast.read(file)
        return
    except (ParseError, etree.LxmlError):
        pass
    file.seek(start)
    for number, part in enumerate(read_exactly(file, source)):
        if number >= fast.handed_on:
            yield part


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Parse a camt.052/053/054 document into one ``Statement`` per statement element.

    Raises ``ParseError`` for anything that is not a whole, well-formed camt document:
    the first problem in document order.
    """
    return _whole(stream(io.BytesIO(data), source=source))


def parse_each(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """Like ``parse``, but a bad statement of a well-formed document is its
    ``ParseError`` in its place and the others are still read."""
    return tuple(collect(stream(io.BytesIO(data), source=source)))
