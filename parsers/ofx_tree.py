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

The tokens come from ``ofx_tokens`` one at a time; ``build_steps`` takes them as they come
(``parsers.ofx_stream`` reads a document that way), ``parse_tree`` reads a body whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from dataclasses import dataclass, field

from parsers.errors import ParseError
from parsers.ofx_tokens import Kind, Repairs, Token, iter_tokens, tokenize

__all__ = ["AGGREGATES", "LEAVES", "MAX_DEPTH", "Element", "Repairs", "assign_paths", "build",
           "build_steps", "iter_tokens", "parse_tree", "serialize", "tokenize"]

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


class Tokens:
    """Tokens with a look at the next few."""

    __slots__ = ("ahead", "tokens")

    def __init__(self, tokens: Iterable[Token]) -> None:
        self.tokens = iter(tokens)
        self.ahead: deque[Token] = deque()

    def peek(self, offset: int = 0) -> Token | None:
        while len(self.ahead) <= offset:
            token = next(self.tokens, None)
            if token is None:
                return None
            self.ahead.append(token)
        return self.ahead[offset]

    def take(self) -> Token | None:
        return self.ahead.popleft() if self.ahead else next(self.tokens, None)


# Told of each element once it is complete, with the elements open around it (its parent
# last); may remove it from its parent.
Closed = Callable[[Element, list[Element]], None]


def build(tokens: list[Token], *, source: str, repairs: Repairs, xml: bool) -> Element:
    """The ``<OFX>`` element of ``tokens``; ``xml`` says whether leaves should be closed."""
    closed_somewhere = {t.value for t in tokens if t.kind is Kind.END}
    steps = build_steps(tokens, source=source, repairs=repairs, xml=xml,
                        closed_somewhere=closed_somewhere)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            root: Element = done.value
            return root


def build_steps(tokens: Iterable[Token], *, source: str, repairs: Repairs, xml: bool,
                closed_somewhere: Container[str],
                on_close: Closed | None = None) -> Generator[None, None, Element]:
    """``build`` a step at a time: resumed once per token, it returns the ``<OFX>`` element.

    ``closed_somewhere`` holds the tags with an end tag anywhere in the document (asked
    only of a tag neither known as an aggregate nor as a leaf, before another tag).
    ``on_close`` is told of each element once it is complete, its children in place, so
    that a reader can take elements as the document is read. Elements are numbered in
    document order (``Element.order``).
    """
    stream = Tokens(tokens)
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
        if token.kind is Kind.TEXT:
            if token.value.strip():
                snippet = token.value.strip()[:40]
                if top is document:
                    raise ParseError(f"expected <OFX> as the document element, found "
                                     f"{snippet!r}", source=source, line=token.line)
                raise ParseError(f"unexpected text {snippet!r} inside <{top.tag}>: expected "
                                 "an element", source=source, line=token.line)
            continue
        if token.kind is Kind.END:
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


def _leaf_or_aggregate(element: Element, tokens: Tokens, stack: list[Element],
                       closed_somewhere: Container[str], *, repairs: Repairs,
                       xml: bool) -> bool:
    """Place ``element`` (not a known aggregate); True if it is complete (a leaf)."""
    following = tokens.peek()
    if following is not None and following.kind is Kind.TEXT and following.value.strip():
        element.text = following.value.strip()
        stack[-1].children.append(element)
        tokens.take()
        after = tokens.peek()
        if after is not None and after.kind is Kind.END and after.value == element.tag:
            tokens.take()
            return True
        if xml:
            repairs.add("elements without a closing tag in a file declared as XML",
                        f"<{element.tag}>", element.line)
        return True
    offset = 0
    if following is not None and following.kind is Kind.TEXT:
        offset = 1  # blank text
        following = tokens.peek(1)
    if following is not None and following.kind is Kind.END and following.value == element.tag:
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


def _expect_nothing_after(tokens: Tokens, source: str) -> None:
    while (token := tokens.take()) is not None:
        if token.kind is not Kind.TEXT or token.value.strip():
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
