"""OFX layer 2: the body as a generic element tree, read the way banks actually write it.

One reader for OFX 1.x SGML and OFX 2.x XML. In SGML (OFX 1.6 §2.3) an element holding
data (a *leaf*: ``<TRNAMT>-12.50``) needs no end tag, while an *aggregate* (``<STMTTRN>``
... ``</STMTTRN>``) always has one; in XML every element is closed. A start tag followed
by text is a leaf; one followed by another tag is an aggregate if it is a known OFX
aggregate or is closed somewhere in the document, else an empty leaf.

What the reader tolerates, each reported through ``Repairs`` (never silently):
SGML comments, closing tags that close nothing (tools that "tidy" OFX invent them for
leaves), aggregates left unclosed, leaves without end tags in a file declared as XML, a
raw ``&`` or ``<`` in data. What it refuses with a ``ParseError`` naming the line: text
where an element is expected, a document that ends before ``</OFX>`` (truncated), content
after ``</OFX>``, nesting deeper than any OFX document has.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from parsers.errors import ParseError
from parsers.model import Flag

# Aggregates of the banking, credit card and investment messages (OFX 2.1.1 §§ 2.5, 3, 11,
# 13), so that an empty one (<BANKTRANLIST></BANKTRANLIST>) is not taken for a leaf.
AGGREGATES = frozenset("""
    OFX SIGNONMSGSRSV1 SONRS STATUS FI BANKMSGSRSV1 STMTTRNRS STMTRS BANKACCTFROM BANKACCTTO
    CCACCTFROM CCACCTTO BANKTRANLIST STMTTRN PAYEE CURRENCY ORIGCURRENCY LEDGERBAL AVAILBAL
    BALLIST BAL CREDITCARDMSGSRSV1 CCSTMTTRNRS CCSTMTRS INVSTMTMSGSRSV1 INVSTMTTRNRS INVSTMTRS
    INVACCTFROM INVTRANLIST INVPOSLIST INVBAL SECLISTMSGSRSV1 SECLIST STMTENDTRNRS STMTENDRS
    CCSTMTENDTRNRS CCSTMTENDRS CLOSING CCCLOSING EXTBANKACCTTO IMAGEDATA SIGNUPMSGSRSV1
    ACCTINFOTRNRS ACCTINFORS ACCTINFO BANKACCTINFO CCACCTINFO INVACCTINFO
""".split())

# Leaves that may be written empty in SGML (<BALAMT> followed by <DTASOF>).
LEAVES = frozenset("""
    CODE SEVERITY MESSAGE DTSERVER LANGUAGE DTPROFUP DTACCTUP ORG FID TRNUID CLTCOOKIE CURDEF
    BANKID BRANCHID ACCTID ACCTTYPE ACCTKEY DTSTART DTEND TRNTYPE DTPOSTED DTUSER DTAVAIL
    TRNAMT FITID CORRECTFITID CORRECTACTION SRVRTID CHECKNUM REFNUM SIC PAYEEID NAME EXTDNAME
    MEMO CURRATE CURSYM BALAMT DTASOF MKTGINFO
""".split())

# Real OFX documents nest about ten deep; far deeper is hostile or broken input.
MAX_DEPTH = 48

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_.]*)\s*(/?)>")
_ENTITY = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


class Repairs:
    """Repairs made while reading, grouped by what was done, each with its first line."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int | None, list[str]]] = {}
        self._notes: list[Flag] = []

    def note(self, message: str, line: int | None) -> None:
        """A repair that is said in one sentence of its own."""
        self._notes.append(Flag("ofx_repaired", message,
                                f"line {line}" if line is not None else None))

    def add(self, what: str, example: str, line: int | None) -> None:
        count, first, examples = self._seen.get(what, (0, line, []))
        if example and example not in examples and len(examples) < 4:
            examples.append(example)
        self._seen[what] = (count + 1, first, examples)

    def put(self, what: str, count: int, line: int | None, examples: list[str]) -> None:
        """A repair made ``count`` times, first at ``line``, with its first examples (for a
        reader that sorts its repairs into document order itself)."""
        self._seen[what] = (count, line, examples[:4])

    def extend(self, other: Repairs) -> None:
        """``other``'s repairs after these (the two name different repairs)."""
        self._seen.update(other._seen)
        self._notes.extend(other._notes)

    def flags(self) -> tuple[Flag, ...]:
        flags = []
        for what, (count, line, examples) in self._seen.items():
            shown = ", ".join(examples[:3]) + (", ..." if len(examples) > 3 else "")
            detail = f"{count}: {shown}" if shown else str(count)
            flags.append(Flag("ofx_repaired", f"{what} ({detail})",
                              f"line {line}" if line is not None else None))
        return (*flags, *self._notes)


@dataclass(slots=True)
class Element:
    """An OFX element: a leaf with ``text`` (possibly empty), or an aggregate with children."""

    tag: str
    line: int
    text: str | None = None
    children: list[Element] = field(default_factory=list)
    path: str = ""
    order: int = 0  # place in document order, from 1 (0: made otherwise)

    def first(self, tag: str) -> Element | None:
        return next((c for c in self.children if c.tag == tag), None)

    def all(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def value(self, tag: str) -> str | None:
        """The text of child leaf ``tag``; None when absent or empty."""
        child = self.first(tag)
        return child.text if child is not None and child.text else None

    def iter(self) -> Iterator[Element]:
        """This element and all below it, in document order."""
        pending = [self]
        while pending:
            element = pending.pop()
            yield element
            pending.extend(reversed(element.children))


class _Kind(Enum):
    START = 1
    END = 2
    TEXT = 3


@dataclass(slots=True)
class _Token:
    kind: _Kind
    value: str  # tag name (upper case) or text
    line: int
    empty: bool = False  # <TAG/>


def _unescape(text: str, line: int, repairs: Repairs) -> str:
    if "&" not in text:
        return text
    if text.count("&") > len(_ENTITY.findall(text)):
        repairs.add("'&' not starting an entity read as a literal '&'", "", line)

    def entity(match: re.Match[str]) -> str:
        if match.group(1):
            return _NAMED[match.group(1)]
        code = int(match.group(2)) if match.group(2) else int(match.group(3), 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            repairs.add("invalid character references kept as text", match.group(0), line)
            return match.group(0)
        return chr(code)

    return _ENTITY.sub(entity, text)


# What the tokenizer skips or takes as text, tried in this order after a '<' that is
# followed by '!' or '?'.
_SPECIAL = (("<!--", "-->", "comment"), ("<![CDATA[", "]]>", "cdata"), ("<?", "?>", "pi"),
            ("<!", ">", "declaration"))


def iter_tokens(text: str, start: int, *, source: str, repairs: Repairs) -> Iterator[_Token]:
    """Tags and text of the body from ``start``, one at a time; comments, PIs and
    declarations dropped, text next to text joined into one token."""
    pos, line = start, 1 + text.count("\n", 0, start)
    pending: _Token | None = None  # a text token, until what follows it is known
    # Where blank text began since the last tag: no token is made of blank text alone (the
    # reader skips it), but text that follows it before a tag is a token from there.
    blank_at: int | None = None

    def add_text(chunk: str, at_line: int, *, literal: bool = False) -> None:
        """Text into ``pending`` (text joins the text before it)."""
        nonlocal pending, blank_at
        if not chunk:
            return
        at_line += chunk[: len(chunk) - len(chunk.lstrip())].count("\n")
        if pending is None and chunk.isspace():
            blank_at = at_line if blank_at is None else blank_at
            return
        value = chunk if literal else _unescape(chunk, at_line, repairs)
        if pending is not None:
            pending.value += value
        else:
            pending = _Token(_Kind.TEXT, value, at_line if blank_at is None else blank_at)

    while True:
        lt = text.find("<", pos)
        if lt == -1:
            add_text(text[pos:], line)
            if pending is not None:
                yield pending
            elif blank_at is not None:  # the last token is where the document's end is told
                yield _Token(_Kind.TEXT, "\n", blank_at)
            return
        add_text(text[pos:lt], line)
        line += text.count("\n", pos, lt)
        special = text[lt + 1:lt + 2] in ("!", "?")
        for opener, closer, what in _SPECIAL if special else ():
            if text.startswith(opener, lt):
                end = text.find(closer, lt + len(opener))
                if end == -1:
                    raise ParseError(f"the {what} opened here is never closed with {closer!r}",
                                     source=source, line=line)
                if what == "comment":
                    repairs.add("SGML comments removed", "", line)
                elif what == "cdata":
                    add_text(text[lt + len(opener):end], line, literal=True)
                pos = end + len(closer)
                break
        else:
            match = _TAG.match(text, lt)
            if match is None:
                repairs.add("'<' not starting a tag read as a literal '<'", "", line)
                add_text("<", line, literal=True)
                pos = lt + 1
                continue
            if pending is not None:
                yield pending
                pending = None
            blank_at = None
            closing, name, empty = match.groups()
            kind = _Kind.END if closing else _Kind.START
            yield _Token(kind, name.upper(), line, empty=bool(empty) and not closing)
            pos = match.end()
        line += text.count("\n", lt, pos)


def tokenize(text: str, start: int, *, source: str, repairs: Repairs) -> list[_Token]:
    """Tags and text of the body from ``start``; comments, PIs and declarations dropped."""
    return list(iter_tokens(text, start, source=source, repairs=repairs))


class _Tokens:
    """Tokens with a look at the next few."""

    __slots__ = ("ahead", "tokens")

    def __init__(self, tokens: Iterable[_Token]) -> None:
        self.tokens = iter(tokens)
        self.ahead: deque[_Token] = deque()

    def peek(self, offset: int = 0) -> _Token | None:
        while len(self.ahead) <= offset:
            token = next(self.tokens, None)
            if token is None:
                return None
            self.ahead.append(token)
        return self.ahead[offset]

    def take(self) -> _Token | None:
        return self.ahead.popleft() if self.ahead else next(self.tokens, None)


# Told of each element once it is complete, with the elements open around it (its parent
# last); may remove it from its parent.
Closed = Callable[[Element, list[Element]], None]


def build(tokens: list[_Token], *, source: str, repairs: Repairs, xml: bool) -> Element:
    """The ``<OFX>`` element of ``tokens``; ``xml`` says whether leaves should be closed."""
    closed_somewhere = {t.value for t in tokens if t.kind is _Kind.END}
    steps = build_steps(tokens, source=source, repairs=repairs, xml=xml,
                        closed_somewhere=closed_somewhere)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            root: Element = done.value
            return root


def build_steps(tokens: Iterable[_Token], *, source: str, repairs: Repairs, xml: bool,
                closed_somewhere: set[str],
                on_close: Closed | None = None) -> Generator[None, None, Element]:
    """``build`` a step at a time: resumed once per token, it returns the ``<OFX>`` element.

    ``closed_somewhere`` is the set of tags with an end tag anywhere in the document.
    ``on_close`` is told of each element once it is complete, its children in place, so
    that a reader can take elements as the document is read. Elements are numbered in
    document order (``Element.order``).
    """
    stream = _Tokens(tokens)
    document = Element("#document", 0)
    stack = [document]
    numbered = 0
    last_line = 1

    def close(element: Element) -> None:
        if on_close is not None:
            on_close(element, stack)

    while (token := stream.take()) is not None:
        yield
        last_line = token.line
        top = stack[-1]
        if token.kind is _Kind.TEXT:
            if token.value.strip():
                snippet = token.value.strip()[:40]
                if top is document:
                    raise ParseError(f"expected <OFX> as the document element, found "
                                     f"{snippet!r}", source=source, line=token.line)
                raise ParseError(f"unexpected text {snippet!r} inside <{top.tag}>: expected "
                                 "an element", source=source, line=token.line)
            continue
        if token.kind is _Kind.END:
            if not any(open_.tag == token.value for open_ in stack[1:]):
                repairs.add("closing tags that close no open element ignored",
                            f"</{token.value}>", token.line)
                continue
            while stack[-1].tag != token.value:
                unclosed = stack.pop()
                repairs.add("aggregates without a closing tag closed by the enclosing one",
                            f"<{unclosed.tag}>", unclosed.line)
                close(unclosed)
            close_ofx = stack.pop()
            close(close_ofx)
            if token.value == "OFX":
                _expect_nothing_after(stream, source)
                return document.children[0]
            continue
        if top is document and (token.value != "OFX" or document.children):
            raise ParseError(f"expected <OFX> as the document element, found <{token.value}>",
                             source=source, line=token.line)
        numbered += 1
        element = Element(token.value, token.line, order=numbered)
        if token.value in AGGREGATES:
            if any(open_.tag == token.value for open_ in stack[1:]):
                # An aggregate never contains itself: the previous one lacks its end tag.
                while True:
                    unclosed = stack.pop()
                    repairs.add("aggregates without a closing tag closed by the next one",
                                f"<{unclosed.tag}>", unclosed.line)
                    close(unclosed)
                    if unclosed.tag == token.value:
                        break
            stack[-1].children.append(element)
            if not token.empty:
                stack.append(element)
            else:
                close(element)
        elif token.empty:
            element.text = ""
            top.children.append(element)
            close(element)
        elif _leaf_or_aggregate(element, stream, stack, closed_somewhere,
                                repairs=repairs, xml=xml):
            close(element)
        if len(stack) > MAX_DEPTH:
            raise ParseError(f"elements nested more than {MAX_DEPTH} deep", source=source,
                             line=token.line)
    if not document.children:
        raise ParseError("no <OFX> element", source=source, line=last_line)
    if len(stack) == 1:  # <OFX/>
        return document.children[0]
    innermost = stack[-1]
    raise ParseError(f"the document ends before </OFX>: <{innermost.tag}> opened at line "
                     f"{innermost.line} is never closed (truncated file?)",
                     source=source, line=innermost.line, field=innermost.tag)


def _leaf_or_aggregate(element: Element, tokens: _Tokens, stack: list[Element],
                       closed_somewhere: set[str], *, repairs: Repairs, xml: bool) -> bool:
    """Place ``element`` (not a known aggregate); True if it is complete (a leaf)."""
    following = tokens.peek()
    if following is not None and following.kind is _Kind.TEXT and following.value.strip():
        element.text = following.value.strip()
        stack[-1].children.append(element)
        tokens.take()
        after = tokens.peek()
        if after is not None and after.kind is _Kind.END and after.value == element.tag:
            tokens.take()
            return True
        if xml:
            repairs.add("elements without a closing tag in a file declared as XML",
                        f"<{element.tag}>", element.line)
        return True
    offset = 0
    if following is not None and following.kind is _Kind.TEXT:
        offset = 1  # blank text
        following = tokens.peek(1)
    if following is not None and following.kind is _Kind.END and following.value == element.tag:
        element.text = ""
        stack[-1].children.append(element)
        for _ in range(offset + 1):
            tokens.take()
        return True
    if offset:
        tokens.take()
    stack[-1].children.append(element)
    if element.tag not in LEAVES and element.tag in closed_somewhere:
        stack.append(element)
        return False
    element.text = ""
    return True


def _expect_nothing_after(tokens: _Tokens, source: str) -> None:
    while (token := tokens.take()) is not None:
        if token.kind is not _Kind.TEXT or token.value.strip():
            raise ParseError("content after </OFX>: expected the end of the document",
                             source=source, line=token.line)


def assign_paths(root: Element) -> None:
    """Give every element its path (``/OFX/BANKMSGSRSV1/STMTTRNRS[2]/STMTRS``) for errors."""
    root.path = f"/{root.tag}"
    for element in root.iter():
        seen: dict[str, int] = {}
        totals: dict[str, int] = {}
        for child in element.children:
            totals[child.tag] = totals.get(child.tag, 0) + 1
        for child in element.children:
            seen[child.tag] = seen.get(child.tag, 0) + 1
            index = f"[{seen[child.tag]}]" if totals[child.tag] > 1 else ""
            child.path = f"{element.path}/{child.tag}{index}"


def parse_tree(text: str, start: int, *, source: str, xml: bool,
               repairs: Repairs) -> Element:
    """The ``<OFX>`` element of the body that begins at ``start`` in ``text``."""
    tokens = tokenize(text, start, source=source, repairs=repairs)
    root = build(tokens, source=source, repairs=repairs, xml=xml)
    assign_paths(root)
    return root


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def serialize(root: Element) -> str:
    """The tree as OFX with every element closed and data escaped: readable by any reader."""
    out: list[str] = []
    pending: list[Element | str] = [root]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            out.append(item)
        elif item.text is not None:
            out.append(f"<{item.tag}>{_escape(item.text)}</{item.tag}>\n")
        else:
            out.append(f"<{item.tag}>\n")
            pending.append(f"</{item.tag}>\n")
            pending.extend(reversed(item.children))
    return "".join(out)
