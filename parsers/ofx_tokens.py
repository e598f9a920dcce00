"""OFX layer 2a: the body's tags and text as tokens, one at a time (``parsers.ofx_tree``
builds the element tree from them, and says what the layer reads and refuses).

Comments, processing instructions and declarations are dropped; CDATA is text; entities
are read, a ``&`` or ``<`` that starts none is taken literally (each reported through
``Repairs``). No token is made of blank text between tags, which the tree reader skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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


def iter_tokens(text: str, start: int, *, source: str, repairs: Repairs) -> Iterator[Token]:
    """Tags and text of the body from ``start``, one at a time; comments, PIs and
    declarations dropped, text next to text joined into one token."""
    pos, line = start, 1 + text.count("\n", 0, start)
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
        lt = text.find("<", pos)
        if lt == -1:
            add_text(text[pos:], line)
            if pending is not None:
                yield pending
            elif blank_at is not None:  # the last token is where the document's end is told
                yield Token(Kind.TEXT, "\n", blank_at)
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
            kind = Kind.END if closing else Kind.START
            yield Token(kind, name.upper(), line, empty=bool(empty) and not closing)
            pos = match.end()
        line += text.count("\n", lt, pos)


def tokenize(text: str, start: int, *, source: str, repairs: Repairs) -> list[Token]:
    """Tags and text of the body from ``start``; comments, PIs and declarations dropped."""
    return list(iter_tokens(text, start, source=source, repairs=repairs))
