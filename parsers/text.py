"""Turning the bytes of a text format (MT940, OFX 1.x) into text, saying what was guessed.

UTF-8 is tried first and taken only if the whole document decodes. Otherwise the single
byte code pages banks use are compared by how many of the non-ASCII characters come out
as letters; the choice is reported as an ``encoding_guessed`` flag, never made silently.
"""

from __future__ import annotations

import codecs
import unicodedata

from parsers.model import Flag

# Single-byte code pages seen in bank files: Western Europe, Central Europe (PL/CZ/HU),
# then ISO Latin-1 which decodes anything and so comes last.
LEGACY_ENCODINGS = ("cp1252", "cp852", "iso-8859-2", "latin-1")


def letter_score(text: str) -> int:
    """How much ``text`` looks like words (letters rank above symbols and controls): the
    encoding whose reading scores highest is taken (``parsers.text_stream`` too)."""
    score = 0
    for char in text:
        if ord(char) < 128:
            continue
        category = unicodedata.category(char)
        if category.startswith("L"):
            score += 2
        elif category.startswith(("S", "C")):  # box drawing, control characters
            score -= 3
    return score


def decode(data: bytes, *, declared: str | None = None) -> tuple[str, tuple[Flag, ...]]:
    """Decode ``data``; return the text and the flags that say what was assumed.

    ``declared`` is the encoding the document names for itself (an OFX ``CHARSET``),
    tried first after a byte order mark.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), ()
    try:
        return data.decode("utf-8"), ()
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared), ()
        except (UnicodeDecodeError, LookupError):
            pass
    decoded = []
    for rank, encoding in enumerate(LEGACY_ENCODINGS):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        decoded.append((letter_score(text), -rank, encoding, text))
    # latin-1 decodes every byte string, so there is always a candidate; ties go to the
    # code page listed first.
    _, _, encoding, text = max(decoded)
    return text, (
        Flag("encoding_guessed", f"not UTF-8; decoded as {encoding} by the letters it yields"),
    )
