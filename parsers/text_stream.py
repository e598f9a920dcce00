"""The lines of a text file (MT940, OFX 1.x) read from an open binary file, in flat memory.

``parsers.text.decode`` decides on a whole document: UTF-8 only if all of it decodes,
else the code page whose non-ASCII characters come out most as letters. A stream must
know that before its first line, so ``TextSource`` reads the file twice: once in chunks
to decide the encoding exactly as ``decode`` would (and to see whether U+FFFD is already
in the text), then line by line with that encoding. The file is read from where it stood
when the source was made; ``lines()`` can be called again (for a rare second look, such as
the line of an error) and puts the file back where it was.

Lines are the physical lines of the decoded text, whatever the line ends (CRLF, LF or CR
alone), without them, as ``parsers.mt940_lines.split_lines`` cuts them: a text ending
with a line end has an empty last line.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO

from parsers.model import Flag
from parsers.text import LEGACY_ENCODINGS, letter_score

_CHUNK = 1 << 20


class TextSource:
    """An open binary file read as decoded lines (see the module docstring)."""

    def __init__(self, file: BinaryIO) -> None:
        if not file.seekable():
            file = io.BytesIO(file.read())
        self.file = file
        self.start = file.tell()
        self.encoding, self.flags, self.replacement_characters = self._choose()

    def _chunks(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        while chunk := self.file.read(_CHUNK):
            yield chunk

    def _choose(self) -> tuple[str, tuple[Flag, ...], bool]:
        """The codec to read with, the flags that say what was assumed, and whether the
        text holds U+FFFD; what ``parsers.text.decode`` would decide for the whole file."""
        try:
            head = self.file.read(len(codecs.BOM_UTF8))
            bom = head == codecs.BOM_UTF8
            decoder = codecs.getincrementaldecoder("utf-8-sig")()
            replacement = False
            for chunk in self._chunks():
                replacement = "\ufffd" in decoder.decode(chunk) or replacement
            decoder.decode(b"", final=True)
            return "utf-8-sig", (), replacement
        except UnicodeDecodeError:
            if bom:
                raise  # as decode(): a byte order mark promises UTF-8
        scores: dict[str, int] = {}
        for encoding in LEGACY_ENCODINGS:
            try:
                candidate = codecs.getincrementaldecoder(encoding)()
                score = sum(letter_score(candidate.decode(chunk)) for chunk in self._chunks())
                score += letter_score(candidate.decode(b"", final=True))
            except UnicodeDecodeError:
                continue
            scores[encoding] = score
        # latin-1 decodes every byte string; ties go to the code page listed first.
        encoding = max(scores, key=lambda name: (scores[name], -LEGACY_ENCODINGS.index(name)))
        return encoding, (
            Flag("encoding_guessed",
                 f"not UTF-8; decoded as {encoding} by the letters it yields"),
        ), False

    def lines(self) -> Iterator[str]:
        """The physical lines from the start, decoded; the file is put back afterwards."""
        position = self.file.tell()
        self.file.seek(self.start)
        text = io.TextIOWrapper(self.file, encoding=self.encoding,
                                newline=None)
        try:
            ended = True
            for line in text:
                ended = line.endswith("\n")
                yield line[:-1] if ended else line
            if ended:
                yield ""
        finally:
            if not self.file.closed:  # else nothing is left to put back
                text.detach()  # the caller's file stays open
                self.file.seek(position)
