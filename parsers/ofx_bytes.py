"""OFX layer 0: the document's file read in blocks, never whole (``ofx_header`` decides
its encoding and reads its text with these).

Each block is read from where the one before it ended, seeking there first, so that the
file can be read through again (for the encoding, or the tags closed somewhere) while a
reading of it is under way.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from parsers.text import letter_score

# How much of the file is read at a time (the tests make it small).
BLOCK_BYTES = 1 << 20
# What the head of the file must hold to tell its encoding and header.
HEAD_BYTES = 4096
_BLANK_BYTES = b" \t\r\n\x00\x1a"


def blocks(file: BinaryIO, position: int) -> Iterator[bytes]:
    """The file's bytes from ``position``, ``BLOCK_BYTES`` at a time; the file may be read
    elsewhere meanwhile (each block is read from where the last one ended)."""
    while True:
        file.seek(position)
        block = file.read(BLOCK_BYTES)
        if not block:
            return
        position += len(block)
        yield block


def read_at(file: BinaryIO, position: int, size: int) -> bytes:
    """Up to ``size`` bytes from ``position`` (fewer only at the end of the file)."""
    parts: list[bytes] = []
    for block in blocks(file, position):
        parts.append(block)
        size -= len(block)
        if size <= 0:
            break
    data = b"".join(parts)
    return data[:len(data) + size] if size < 0 else data


def has_content(file: BinaryIO, start: int, head: bytes) -> bool:
    """Anything but blanks, NULs and end-of-file marks after a UTF-8 byte order mark in the
    file from ``start``, whose first ``HEAD_BYTES`` (all of it, when shorter) are ``head``."""
    if head.removeprefix(codecs.BOM_UTF8).strip(_BLANK_BYTES):
        return True
    if len(head) < HEAD_BYTES:
        return False
    return any(block.strip(_BLANK_BYTES) for block in blocks(file, start + len(head)))


def find(file: BinaryIO, position: int, byte: bytes) -> int | None:
    """How far after ``position`` the first ``byte`` is, or None."""
    offset = 0
    for block in blocks(file, position):
        found = block.find(byte)
        if found != -1:
            return offset + found
        offset += len(block)
    return None


def check(file: BinaryIO, position: int, codec: str, *, look_for: str = "",
           look_for_non_ascii: bool = False) -> tuple[tuple[str, int] | None, bool]:
    """Whether the bytes from ``position`` are text in ``codec``: None, or the reason and
    byte offset of the first error; and whether the text holds ``look_for`` (or, with
    ``look_for_non_ascii``, a character beyond ASCII)."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    found = False
    try:
        for block in blocks(file, position):
            buffered = len(decoder.getstate()[0])
            text = decoder.decode(block)
            if not found:
                found = (not block.isascii()) if look_for_non_ascii else look_for in text
            offset += len(block)
        buffered = len(decoder.getstate()[0])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return (str(exc.reason), offset - buffered + exc.start), found
    return None, found


def letters(file: BinaryIO, position: int, encoding: str) -> int | None:
    """``parsers.text.letter_score`` of the text in ``encoding``; None if it is not."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        score = sum(letter_score(decoder.decode(block)) for block in blocks(file, position))
        return score + letter_score(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        return None
