"""OFX layer 2a: the body's tags and text as tokens, one at a time (``parsers.ofx_tree``
builds the element tree from them, and says what the layer reads and refuses).

Comments, processing instructions and declarations are dropped; CDATA is text; entities
are read, a ``&`` or ``<`` that starts none is taken literally (each reported through
``Repairs``). No token is made of blank text between tags, which the tree reader skips.

The body is read from its whole text or from its pieces as the file is decoded; the tokens
are the same either way. Text between two tags is taken whole (an entity or a repair is
read in the text it belongs to), so what is held at a time is a piece of the file and the
text since the last tag: a document that runs megabytes without a ``<`` is held that long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from parsers.errors import ParseError
from parsers.model import Flag

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


class Kind(Enum):
    """What a token is."""

    START = 1
    END = 2
    TEXT = 3


@dataclass(slots=True)
class Token:
    """A start tag, an end tag, or text."""

    kind: Kind
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


# The part of a tag that the text seen so far may still complete.
_TAG_BEGUN = re.compile(r"</?(?:[A-Za-z][A-Za-z0-9_.]*\s*/?)?")
# A '<' is looked at only with this many characters after it in hand (or the text's end),
# enough to tell the longest opener of _SPECIAL ("<![CDATA[").
_LOOK_AHEAD = 9


def _more(buffer: str, keep: int, pieces: Iterator[str]) -> tuple[str, bool]:
    """``buffer`` from ``keep`` on with the next piece of text after it, and whether the
    text has ended (then nothing was added)."""
    for piece in pieces:
        if piece:
            return buffer[keep:] + piece, False
    return buffer[keep:], True


def iter_tokens(text: str | Iterable[str], start: int = 0, *, source: str, repairs: Repairs,
                line: int | None = None) -> Iterator[Token]:
    """Tags and text of the body, one at a time; comments, PIs and declarations dropped,
    text next to text joined into one token.

    ``text`` is the document's text, read from ``start``, or its body in pieces of any size
    (``ofx_header.OfxDocument.body``), read as they come and let go once read past: what is
    held is the text from the last token read on (a tag or a construct split between
    pieces waits for the next). The tokens are the same whatever the pieces. ``line`` is
    the line the body starts on (by default counted in ``text``).
    """
    if isinstance(text, str):
        buffer, pos, ended = text, start, True
        pieces: Iterator[str] = iter(())
        line = 1 + text.count("\n", 0, start) if line is None else line
    else:
        buffer, pos, ended = "", 0, False
        pieces = iter(text)
        line = 1 if line is None else line
    pending: Token | None = None  # a text token, until what follows it is known
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
            pending = Token(Kind.TEXT, value, at_line if blank_at is None else blank_at)

    while True:
        lt = buffer.find("<", pos)
        if not ended and (lt == -1 or len(buffer) - lt < _LOOK_AHEAD):
            buffer, ended = _more(buffer, pos, pieces)  # text is taken whole, up to a '<'
            pos = 0
            continue
        if lt == -1:
            add_text(buffer[pos:], line)
            if pending is not None:
                yield pending
            elif blank_at is not None:  # the last token is where the document's end is told
                yield Token(Kind.TEXT, "\n", blank_at)
            return
        add_text(buffer[pos:lt], line)
        line += buffer.count("\n", pos, lt)
        pos = lt  # what comes before is read: a new piece need not keep it
        special = buffer[lt + 1:lt + 2] in ("!", "?")
        for opener, closer, what in _SPECIAL if special else ():
            if buffer.startswith(opener, lt):
                end = buffer.find(closer, lt + len(opener))
                while end == -1 and not ended:
                    searched = len(buffer) - lt - len(closer) + 1
                    buffer, ended = _more(buffer, lt, pieces)
                    pos = lt = 0
                    end = buffer.find(closer, max(searched, len(opener)))
                if end == -1:
                    raise ParseError(f"the {what} opened here is never closed with {closer!r}",
                                     source=source, line=line)
                if what == "comment":
                    repairs.add("SGML comments removed", "", line)
                elif what == "cdata":
                    add_text(buffer[lt + len(opener):end], line, literal=True)
                pos = end + len(closer)
                break
        else:
            match = _TAG.match(buffer, lt)
            if match is None and not ended:
                begun = _TAG_BEGUN.match(buffer, lt)
                if begun is not None and begun.end() == len(buffer):
                    buffer, ended = _more(buffer, lt, pieces)  # the tag goes on
                    pos = 0
                    continue
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
            kind = Kind.END if closing else Kind.START
            yield Token(kind, name.upper(), line, empty=bool(empty) and not closing)
            pos = match.end()
        line += buffer.count("\n", lt, pos)


def tokenize(text: str, start: int, *, source: str, repairs: Repairs) -> list[Token]:
    """Tags and text of the body from ``start``; comments, PIs and declarations dropped."""
    return list(iter_tokens(text, start, source=source, repairs=repairs))
