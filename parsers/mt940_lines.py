"""MT940/MT942 text in, tagged fields grouped into messages out: the layer under the fields.

The lines are read one at a time as they come (a string is cut into its lines first), with
a look at most a few lines ahead, and a message is handed on in pieces of at most
``PIECE_FIELDS`` fields, so no more than that is ever held. What this layer (with
``mt940_clean`` under it, line by line) removes, and what it says about it:

- transport bytes SOH (0x01), ETX (0x03) and SUB (Ctrl-Z, 0x1A), wherever they are: silently,
  they carry no bank data;
- SWIFT FIN envelopes ``{1:...}{2:...}{3:...}{4:`` ... ``-}{5:...}``, also several on one line:
  silently; the application header ``{2:I940...}`` tells MT940 from MT942. A block 2 that
  names no bank (anonymised: ``{2:I940XXXXXXXXXXXXN}``, zeros, blanks) or is unbalanced
  (``{2:I940...N{4:``, ``{2:...}}{4:``) around a valid text block is read with an
  ``envelope_header_anonymised`` or ``envelope_header_unbalanced`` flag: the statement is
  in block 4, the header only says who sent it;
- the non-SWIFT headers banks put in front of each message (``ABNANL2A`` / ``940`` /
  ``ABNANL2A``, ``:940:``, ``0000 01FVLBNL22AXXX00042`` and ``940 00``) and message
  terminators (``-``, ``-XXX``): silently;
- any other text outside a message (a free preamble, trailing notes): dropped with a
  ``text_outside_statement`` flag on the neighbouring statement.

Inside a message a line starting with a known tag (``:61:``, ``:86:``, ...) opens a field; any
other line continues the open field. So ``:KO:NR:...`` or ``:23Cont curent`` inside ``:86:``
stay text. A lone ``-`` line ends the message, except inside the free text of ``:86:`` or
``:NS:`` when more text follows that is not a ``:20:`` or a header: there it is text
(``MND`` / ``-`` / ``EV01``, ING).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from parsers.errors import ParseError
from parsers.model import Flag
from parsers.mt940_clean import Clean, clean_lines

# Tags we know, MT940 and MT942 (SWIFT and the common national variants). A line that starts
# with one of these opens a field; anything else tag-like is text of the open field.
KNOWN_TAGS = frozenset({
    "13", "13D", "20", "21", "25", "25P", "28", "28C", "34F",
    "60", "60F", "60M", "61", "62", "62F", "62M", "64", "65", "65F", "86", "90C", "90D", "NS",
})

_TAG_LINE = re.compile(r":(?P<tag>\d{2}[A-Z]?|NS):")
_LINE_END = re.compile(r"\r\n|\r|\n")

_BIC_LINE = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_MESSAGE_TYPE_LINE = re.compile(r"94[02]")
_HEADER_LINES = (
    re.compile(r":94[02]:"),  # Rabobank, ING: ":940:"
    re.compile(r"\d{4} \d{2}[A-Z]{6}[A-Z0-9]{6}\d{5}"),  # Van Lanschot: "0000 01FVLBNL22AXXX00042"
    re.compile(r"94[02] \d{2}"),  # Van Lanschot: "940 00"
)


@dataclass(frozen=True, slots=True)
class Field:
    """One tagged field: ``tag`` without colons, its value lines, and where it starts.

    ``lines[0]`` is the text after the tag; the others are continuation lines. Line ends are
    removed, nothing else: trailing blanks can be content (27-character ``?2x`` subfields).
    """

    tag: str
    lines: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Message:
    """The fields of one statement (one ``:20:`` to the next), in file order; or a piece of
    them (``more``: the statement goes on in the next piece; see ``read_messages``).

    ``last_line`` is the last line read so far; ``flags`` are on the first piece, and the
    flag of text after the last message on the last piece.
    """

    fields: tuple[Field, ...]
    first_line: int
    last_line: int
    message_type: str | None  # "940" or "942" from a SWIFT application header, if any
    flags: tuple[Flag, ...]
    more: bool = False


def split_lines(text: str) -> list[str]:
    """Physical lines, whatever the line ends (CRLF, LF or CR alone)."""
    return _LINE_END.split(text)


def _is_header(before2: str | None, before: str | None, text: str, after: str | None,
               after2: str | None) -> bool:
    """Whether ``text`` is a known non-SWIFT header line, given its neighbours (None: there
    is no such line). Judged for lines outside messages only."""
    stripped = text.strip()
    if any(pattern.fullmatch(stripped) for pattern in _HEADER_LINES):
        return True
    if _MESSAGE_TYPE_LINE.fullmatch(stripped):  # ABN AMRO, bunq: BIC / 940 / BIC
        return (before is not None and after is not None
                and _BIC_LINE.fullmatch(before.strip()) is not None
                and _BIC_LINE.fullmatch(after.strip()) is not None)
    if not _BIC_LINE.fullmatch(stripped):
        return False
    return (
        after is not None and after2 is not None
        and _MESSAGE_TYPE_LINE.fullmatch(after.strip()) is not None
        and _BIC_LINE.fullmatch(after2.strip()) is not None
    ) or (
        before is not None and before2 is not None
        and _MESSAGE_TYPE_LINE.fullmatch(before.strip()) is not None
        and _BIC_LINE.fullmatch(before2.strip()) is not None
    )


def _tag_of(text: str) -> str | None:
    if text[:1] != ":":
        return None
    match = _TAG_LINE.match(text)
    if match and match.group("tag") in KNOWN_TAGS:
        return match.group("tag")
    return None


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    parts = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        if n is not None:
            start = prev = n
    return ", ".join(parts)


# A statement of more fields than this is handed on in pieces of this many fields, so that
# no statement is held whole, however many entries it has.
PIECE_FIELDS = 256

_TERMINATORS = frozenset({"-", "-XXX"})


class _Ahead:
    """The cleaned lines, with a look at the ones coming next."""

    __slots__ = ("buffer", "lines")

    def __init__(self, lines: Iterator[Clean]) -> None:
        self.lines = lines
        self.buffer: deque[Clean] = deque()  # looked at, not yet taken

    def peek(self, offset: int) -> Clean | None:
        """The line ``offset`` after the next one (0: the next one); None past the end."""
        while len(self.buffer) <= offset:
            line = next(self.lines, None)
            if line is None:
                return None
            self.buffer.append(line)
        return self.buffer[offset]

    def text(self, offset: int) -> str | None:
        """The text of ``peek(offset)``."""
        line = self.peek(offset)
        return line[1] if line is not None else None


class _Builder:
    """Collects fields into messages while the lines go by."""

    def __init__(self, piece: int) -> None:
        self.piece = piece
        self.fields: list[Field] = []
        self.lines: list[str] = []
        self.tag: str | None = None
        self.tag_line = 0
        self.first_line = 0
        self.last_line = 0
        self.message_type: str | None = None
        self.dropped: list[int] = []
        self.pending_flags: list[Flag] = []
        self.handed_on = False  # a piece of the open message went out already
        self.held: Message | None = None  # a closed message, until it is known to be last

    @property
    def in_message(self) -> bool:
        return self.tag is not None

    def close_field(self) -> Message | None:
        """Close the open field; a piece of the message if enough fields are waiting."""
        if self.tag is not None:
            self.fields.append(Field(self.tag, tuple(self.lines), self.tag_line))
        self.lines = []
        if len(self.fields) >= self.piece:
            return self._piece(more=True)
        return None

    def _piece(self, *, more: bool) -> Message:
        flags = () if self.handed_on else tuple(self.pending_flags)
        piece = Message(tuple(self.fields), self.first_line, self.last_line,
                        self.message_type, flags, more)
        self.handed_on = more
        self.fields = []
        return piece

    def close_message(self) -> Message | None:
        """Close the open message and hold it back (the last message of a file takes the
        flag of text after it); return the message held before, now known not to be last."""
        if self.tag is not None:
            self.fields.append(Field(self.tag, tuple(self.lines), self.tag_line))
        self.lines = []
        before, self.held = self.held, None
        if self.fields or self.handed_on:
            self.held = self._piece(more=False)
        self.pending_flags = []
        self.tag = None
        return before

    def drop(self, number: int) -> None:
        self.dropped.append(number)

    def flush_dropped(self) -> None:
        if self.dropped:
            self.pending_flags.append(Flag(
                "text_outside_statement",
                f"{len(self.dropped)} line(s) of text outside any statement were ignored "
                f"(lines {_ranges(self.dropped)})",
                f"line {self.dropped[0]}",
            ))
            self.dropped = []


def read_messages(text: str | Iterable[str], *, source: str) -> Iterator[Message]:
    """Cut decoded MT940/MT942 text (a string, or its physical lines as they are read) into
    messages of tagged fields, as the lines go by.

    A message of more than ``PIECE_FIELDS`` fields comes in pieces: every piece but the
    last has ``more`` set. Raises ``ParseError`` for control characters, unclosed envelope
    blocks, and fields that stand outside any message, when the reading gets there; gives
    nothing when there is no ``:20:`` at all.
    """
    physical = split_lines(text) if isinstance(text, str) else text
    return _messages(_Ahead(clean_lines(physical, source=source)), source)


def _messages(lines: _Ahead, source: str) -> Iterator[Message]:
    build = _Builder(PIECE_FIELDS)
    envelope_type: str | None = None
    envelope_flags: list[Flag] = []
    before2: str | None = None
    before: str | None = None
    text: str | None = None

    buffered, following = lines.buffer, lines.lines
    while (line := buffered.popleft() if buffered else next(following, None)) is not None:
        number, content, message_type, line_flags = line
        before2, before, text = before, text, content
        if message_type:
            envelope_type = message_type
        if line_flags:
            envelope_flags.extend(line_flags)
        tag = _tag_of(content)
        if tag == "20":
            done = build.close_message()
            if done is not None:  # closed before, with text between: not the last
                yield done
            if build.held is not None:
                yield build.held
                build.held = None
            build.flush_dropped()
            build.tag, build.tag_line = "20", number
            build.lines = [content[4:]]
            build.first_line = build.last_line = number
            build.message_type = envelope_type
            build.pending_flags.extend(envelope_flags)
            envelope_type, envelope_flags = None, []
            continue
        if not build.in_message:
            stripped = content.strip()
            if not stripped or stripped in _TERMINATORS:
                continue
            if _is_header(before2, before, content, lines.text(0), lines.text(1)):
                continue
            if tag is not None:
                raise ParseError(
                    f"field :{tag}: stands outside a statement: expected :20: first",
                    source=source, line=number, field=f":{tag}:",
                )
            if stripped.startswith(":"):
                raise ParseError(
                    f"{stripped[:10]!r} outside a statement looks like a field cut off or "
                    "unknown: expected :20:", source=source, line=number,
                )
            build.drop(number)
            continue
        if tag is not None:
            piece = build.close_field()
            if piece is not None:
                yield piece
            build.tag, build.tag_line = tag, number
            build.lines = [content[len(tag) + 2 :]]
            build.last_line = number
            continue
        stripped = content.strip()
        if stripped in _TERMINATORS and (
                build.tag not in ("86", "NS") or _ends_message(lines, content, before)):
            build.close_message()  # nothing was held: this message was open
            continue
        if not stripped:
            if build.tag in ("86", "NS"):
                build.lines.append(content)  # blank lines inside free text are text
            continue
        build.lines.append(content)
        build.last_line = number
    if build.in_message:
        build.close_message()
    last = build.held
    if last is not None:
        if build.dropped:
            build.flush_dropped()
            last = Message(last.fields, last.first_line, last.last_line, last.message_type,
                           last.flags + tuple(build.pending_flags), last.more)
        yield last


def _ends_message(lines: _Ahead, current: str, before: str | None) -> bool:
    """Whether a lone ``-`` inside free text ends the message: when what follows it (after
    blank lines) is the next message (a ``:20:``, a header line, an envelope) or nothing."""
    offset = 0
    behind, behind2 = current, before
    while (after := lines.peek(offset)) is not None and not after[1].strip():
        behind, behind2 = after[1], behind
        offset += 1
    if after is None:
        return True
    return (_tag_of(after[1]) == "20" or after[2] is not None
            or _is_header(behind2, behind, after[1], lines.text(offset + 1),
                          lines.text(offset + 2)))
