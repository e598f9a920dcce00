"""MT940/MT942 physical lines cleaned of what is not bank text: the layer under the fields.

Removed here: transport bytes SOH (0x01), ETX (0x03) and SUB (Ctrl-Z, 0x1A), wherever they
are, silently (they carry no bank data); SWIFT FIN envelope blocks ``{1:...}{2:...}{3:...}``,
``{4:`` and ``-}{5:...}``, also several on one line, silently, except that a block 2 that
names no bank or is unbalanced around a valid text block is flagged (see
``parsers.mt940_lines``). Refused: any other control character, and a text block left open.
Each line is checked and cleaned on its own as it is read; nearly every line has no
envelope and costs one regular expression search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from parsers.errors import ParseError
from parsers.model import Flag

_TRANSPORT_BYTES = str.maketrans("", "", "\x01\x03\x1a")
# Control characters no bank text contains; TAB, LF and CR are handled as text and line ends.
_GARBAGE = re.compile(r"[\x00\x02\x04-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")

# Block 2, the application header: I (input) or O (output), the message type (3!n).
_APPLICATION_HEADER = re.compile(r"\{2:[IO](\d{3})")
# A logical terminal address inside it: a BIC (4!a2!a2!c), a terminal code, a branch.
_BIC_ADDRESS = re.compile(r"(?!X{6})[A-Z]{6}[A-Z0-9]{2}[A-Z0-9][A-Z0-9X]{3}")
# An input header whose receiver is given short, as a bank's four letters and four more
# (Westpac documents ``{2:I940WIBSXXXXN}``): it names a bank, unlike ``XXXX`` placeholders.
_SHORT_RECEIVER = re.compile(r"\{2:I\d{3}(?!XXXX)[A-Z]{4}[A-Z0-9]{4}[A-Z]?\}")


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
        self.previous = ""  # the line before, as read (set by clean_lines too)
        self.flags: list[Flag] = []  # what was odd about the last line's envelope

    def strip(self, text: str, line: int) -> tuple[str, str | None]:
        """The line without envelope blocks, and the message type its header names."""
        previous, self.previous = self.previous, text
        if text.strip() == "}" and previous.strip() == "-" and self.opened_at is not None:
            self.opened_at = None  # "-}" cut over two lines
            self.flags = []
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
        if found is None or not (_BIC_ADDRESS.search(block[7:]) or _SHORT_RECEIVER.match(block)):
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


# Any control character: a transport byte to remove, or garbage to refuse (see below).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# A cleaned line: (number, text without envelope blocks, message type its envelope header
# names, what was odd about that envelope). Tuples: one is made for every line of a file.
Clean = tuple[int, str, str | None, tuple[Flag, ...]]


def clean_lines(physical: Iterable[str], *, source: str) -> Iterator[Clean]:
    """The physical lines without transport bytes and SWIFT envelope blocks, numbered."""
    envelope = _Envelope(source)
    number = 0
    for number, raw in enumerate(physical, start=1):
        if _CONTROL.search(raw):
            raw = raw.translate(_TRANSPORT_BYTES)
            bad = _GARBAGE.search(raw)
            if bad:
                raise ParseError(
                    f"control character U+{ord(bad.group()):04X} in the text: not an MT940 "
                    "statement, or a damaged one", source=source, line=number,
                )
        if "{" in raw or "}" in raw:
            content, message_type = envelope.strip(raw, number)
            yield number, content, message_type, tuple(envelope.flags)
        else:  # no envelope on this line (nearly every line)
            envelope.previous = raw
            envelope.flags = []
            yield number, raw, None, ()
    envelope.check_closed(number)
