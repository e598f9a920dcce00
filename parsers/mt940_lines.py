"""MT940/MT942 text in, tagged fields grouped into messages out: the layer under the fields.

What this layer removes, and what it says about it:

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
from dataclasses import dataclass

from parsers.errors import ParseError
from parsers.model import Flag

# Tags we know, MT940 and MT942 (SWIFT and the common national variants). A line that starts
# with one of these opens a field; anything else tag-like is text of the open field.
KNOWN_TAGS = frozenset({
    "13", "13D", "20", "21", "25", "25P", "28", "28C", "34F",
    "60", "60F", "60M", "61", "62", "62F", "62M", "64", "65", "65F", "86", "90C", "90D", "NS",
})

_TAG_LINE = re.compile(r":(?P<tag>\d{2}[A-Z]?|NS):")
_TRANSPORT_BYTES = str.maketrans("", "", "\x01\x03\x1a")
# Control characters no bank text contains; TAB, LF and CR are handled as text and line ends.
_GARBAGE = re.compile(r"[\x00\x02\x04-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")
_LINE_END = re.compile(r"\r\n|\r|\n")

_BIC_LINE = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_MESSAGE_TYPE_LINE = re.compile(r"94[02]")
_HEADER_LINES = (
    re.compile(r":94[02]:"),  # Rabobank, ING: ":940:"
    re.compile(r"\d{4} \d{2}[A-Z]{6}[A-Z0-9]{6}\d{5}"),  # Van Lanschot: "0000 01FVLBNL22AXXX00042"
    re.compile(r"94[02] \d{2}"),  # Van Lanschot: "940 00"
)
_TERMINATOR = re.compile(r"-(?:XXX)?")


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
    """The fields of one statement (one ``:20:`` to the next), in file order."""

    fields: tuple[Field, ...]
    first_line: int
    last_line: int
    message_type: str | None  # "940" or "942" from a SWIFT application header, if any
    flags: tuple[Flag, ...]


@dataclass(slots=True)
class _Line:
    number: int
    text: str
    message_type: str | None = None  # set on the line where an envelope header was removed
    flags: tuple[Flag, ...] = ()  # what was odd about the envelope removed from this line


def split_lines(text: str) -> list[str]:
    """Physical lines, whatever the line ends (CRLF, LF or CR alone)."""
    return _LINE_END.split(text)


# Block 2, the application header: I (input) or O (output), the message type (3!n).
_APPLICATION_HEADER = re.compile(r"\{2:[IO](\d{3})")
# A logical terminal address inside it: a BIC (4!a2!a2!c), a terminal code, a branch.
_BIC_ADDRESS = re.compile(r"(?!X{6})[A-Z]{6}[A-Z0-9]{2}[A-Z0-9][A-Z0-9X]{3}")


def _skip_block(text: str, start: int, *, source: str, line: int) -> int:
    """Index just past the ``{n:...}`` block at ``start``, nested braces included."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ParseError(
        "a SWIFT envelope block '{" + text[start + 1 : start + 3] + "' is not closed with '}' "
        "on its line", source=source, line=line,
    )


class _Envelope:
    """Removes SWIFT envelope blocks line by line, and checks that each text block closes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.opened_at: int | None = None  # line of an open "{4:" text block
        self.previous = ""  # the line before, as read
        self.flags: list[Flag] = []  # what was odd about the last line's envelope

    def strip(self, text: str, line: int) -> tuple[str, str | None]:
        """The line without envelope blocks, and the message type its header names."""
        previous, self.previous = self.previous, text.strip()
        if text.strip() == "}" and previous == "-" and self.opened_at is not None:
            self.opened_at = None  # "-}" cut over two lines
            return "", None
        message_type = None
        self.flags = []
        index = 0
        while index < len(text):
            rest = text[index:]
            stripped = rest.lstrip(" ")
            skip = len(rest) - len(stripped)
            if re.match(r"\{[1235]:", stripped):
                if stripped.startswith("{1:"):
                    self.check_closed(line)
                end = self._block_end(text, index + skip, line)
                block = text[index + skip : end]
                if block.startswith("{2:"):
                    message_type = self._application_header(block, line)
                index = end
            elif stripped.startswith("}{") and self.opened_at is None and index > 0:
                self._odd("envelope_header_unbalanced", "a '}' too many between the SWIFT "
                          "envelope blocks was ignored", line)
                index += skip + 1
            elif stripped.startswith("{4:"):
                self.check_closed(line)
                self.opened_at = line
                index += skip + 3
            elif stripped.startswith("-}") and self.opened_at is not None:
                self.opened_at = None
                index += skip + 2
            else:
                return rest, message_type
        return "", message_type

    def _block_end(self, text: str, start: int, line: int) -> int:
        """Where the ``{n:`` block at ``start`` ends: at its closing brace, or, for a header
        block left open, right before the ``{4:`` text block that follows it (flagged)."""
        text_block = text.find("{4:", start)
        try:
            end = _skip_block(text, start, source=self.source, line=line)
        except ParseError:
            if text_block < 0:
                raise
            end = len(text) + 1
        if 0 <= text_block < end:
            self._odd("envelope_header_unbalanced", "the SWIFT envelope block '"
                      + text[start : start + 3] + "' is not closed before the text block "
                      "'{4:'; read up to there", line)
            return text_block
        return end

    def _application_header(self, block: str, line: int) -> str | None:
        """The message type of a ``{2:`` block; a flag if it names no sender or receiver."""
        found = _APPLICATION_HEADER.match(block)
        if found is None or not _BIC_ADDRESS.search(block[7:]):
            shown = block if len(block) <= 40 else block[:37] + "..."
            self._odd("envelope_header_anonymised", f"the SWIFT application header {shown} "
                      "names no bank (anonymised or blanked): only the message text is read",
                      line)
        return found.group(1) if found else None

    def _odd(self, code: str, message: str, line: int) -> None:
        self.flags.append(Flag(code, message, f"line {line}"))

    def check_closed(self, line: int) -> None:
        if self.opened_at is not None:
            raise ParseError(
                f"the SWIFT message text opened with '{{4:' at line {self.opened_at} is not "
                "closed with '-}': the message is cut off", source=self.source, line=line,
            )


def _clean_lines(text: str, *, source: str) -> list[_Line]:
    lines = []
    envelope = _Envelope(source)
    physical = split_lines(text)
    for number, raw in enumerate(physical, start=1):
        raw = raw.translate(_TRANSPORT_BYTES)
        bad = _GARBAGE.search(raw)
        if bad:
            raise ParseError(
                f"control character U+{ord(bad.group()):04X} in the text: not an MT940 "
                "statement, or a damaged one", source=source, line=number,
            )
        content, message_type = envelope.strip(raw, number)
        lines.append(_Line(number, content, message_type, tuple(envelope.flags)))
    envelope.check_closed(len(physical))
    return lines


def _header_lines(lines: list[_Line]) -> set[int]:
    """Indexes of lines that are known non-SWIFT headers (judged outside messages only)."""
    found = set()
    for i, line in enumerate(lines):
        text = line.text.strip()
        if any(pattern.fullmatch(text) for pattern in _HEADER_LINES):
            found.add(i)
        elif (
            _MESSAGE_TYPE_LINE.fullmatch(text)
            and 0 < i < len(lines) - 1
            and _BIC_LINE.fullmatch(lines[i - 1].text.strip())
            and _BIC_LINE.fullmatch(lines[i + 1].text.strip())
        ):  # ABN AMRO, bunq: BIC / 940 / BIC
            found.update((i - 1, i, i + 1))
    return found


def _tag_of(text: str) -> str | None:
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


class _Builder:
    """Collects fields into messages while the lines go by."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fields: list[Field] = []
        self.lines: list[str] = []
        self.tag: str | None = None
        self.tag_line = 0
        self.first_line = 0
        self.last_line = 0
        self.message_type: str | None = None
        self.dropped: list[int] = []
        self.pending_flags: list[Flag] = []

    @property
    def in_message(self) -> bool:
        return self.tag is not None

    def close_field(self) -> None:
        if self.tag is not None:
            self.fields.append(Field(self.tag, tuple(self.lines), self.tag_line))
        self.lines = []

    def close_message(self) -> None:
        self.close_field()
        if self.fields:
            self.messages.append(Message(
                tuple(self.fields), self.first_line, self.last_line, self.message_type,
                tuple(self.pending_flags),
            ))
        self.fields = []
        self.pending_flags = []
        self.tag = None

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


def read_messages(text: str, *, source: str) -> tuple[Message, ...]:
    """Cut decoded MT940/MT942 text into messages of tagged fields.

    Raises ``ParseError`` for control characters, unclosed envelope blocks, and fields that
    stand outside any message; returns an empty tuple when there is no ``:20:`` at all.
    """
    lines = _clean_lines(text, source=source)
    headers = _header_lines(lines)
    build = _Builder()
    envelope_type: str | None = None

    def next_content(i: int) -> int | None:
        for j in range(i + 1, len(lines)):
            if lines[j].text.strip():
                return j
        return None

    envelope_flags: list[Flag] = []
    for i, line in enumerate(lines):
        if line.message_type:
            envelope_type = line.message_type
        envelope_flags.extend(line.flags)
        content = line.text
        stripped = content.strip()
        tag = _tag_of(content)
        if tag == "20":
            build.close_message()
            build.flush_dropped()
            build.tag, build.tag_line = "20", line.number
            build.lines = [content[4:]]
            build.first_line = build.last_line = line.number
            build.message_type = envelope_type
            build.pending_flags.extend(envelope_flags)
            envelope_type, envelope_flags = None, []
            continue
        if not build.in_message:
            if not stripped or i in headers or _TERMINATOR.fullmatch(stripped):
                continue
            if tag is not None:
                raise ParseError(
                    f"field :{tag}: stands outside a statement: expected :20: first",
                    source=source, line=line.number, field=f":{tag}:",
                )
            if stripped.startswith(":"):
                raise ParseError(
                    f"{stripped[:10]!r} outside a statement looks like a field cut off or "
                    "unknown: expected :20:", source=source, line=line.number,
                )
            build.drop(line.number)
            continue
        if tag is not None:
            build.close_field()
            build.tag, build.tag_line = tag, line.number
            build.lines = [content[len(tag) + 2 :]]
            build.last_line = line.number
            continue
        if _TERMINATOR.fullmatch(stripped):
            after = next_content(i)
            if (
                build.tag not in ("86", "NS")
                or after is None
                or _tag_of(lines[after].text) == "20"
                or after in headers
                or lines[after].message_type is not None
            ):
                build.close_message()
                continue
        if not stripped:
            if build.tag in ("86", "NS"):
                build.lines.append(content)  # blank lines inside free text are text
            continue
        build.lines.append(content)
        build.last_line = line.number
    build.close_message()
    if build.dropped and build.messages:
        build.flush_dropped()
        last = build.messages[-1]
        build.messages[-1] = Message(
            last.fields, last.first_line, last.last_line, last.message_type,
            last.flags + tuple(build.pending_flags),
        )
    return tuple(build.messages)


def count_statement_lines(lines: list[str], first_line: int, last_line: int) -> list[int]:
    """Line numbers of the raw ``lines`` in ``first_line..last_line`` that start a ``:61:``.

    Counted on the decoded lines directly, independently of the field reader, so that the
    number of entries can be checked against it.
    """
    return [
        number
        for number in range(first_line, last_line + 1)
        if lines[number - 1].translate(_TRANSPORT_BYTES).startswith(":61:")
    ]
