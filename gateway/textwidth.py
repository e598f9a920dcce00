"""Text as a terminal shows it: columns that stay aligned with Chinese names.

A terminal gives a wide character (most CJK ideographs, kana, hangul, full-width forms:
East Asian Width ``W`` or ``F``) two columns, a combining mark or an invisible format
character (zero-width space, joiners) none, and everything else one. Counting ``len()``
instead pushes every cell after a Chinese name out of line. Control characters, which a
bank file may hold and which would let a file move the cursor or recolour the terminal,
are shown as U+FFFD.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence

ELLIPSIS = "…"
REPLACEMENT = "\ufffd"


def char_width(char: str) -> int:
    """Columns one code point takes on a terminal: 0, 1 or 2."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal."""
    return sum(char_width(c) for c in text)


def printable(text: str | None) -> str:
    """``text`` on one line: runs of white space as one space, control characters as
    U+FFFD (a bank file must not be able to steer the terminal)."""
    joined = " ".join((text or "").split())
    return "".join(REPLACEMENT if unicodedata.category(c) == "Cc" else c for c in joined)


def clip(text: str, columns: int) -> str:
    """``text`` cut to at most ``columns`` columns, with an ellipsis where it was cut."""
    if width(text) <= columns:
        return text
    kept, used = [], 0
    for char in text:
        size = char_width(char)
        if used + size > columns - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + ELLIPSIS


def pad(text: str, columns: int, *, right: bool = False) -> str:
    """``text`` filled with spaces to ``columns`` columns (aligned right if ``right``)."""
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
            right: Collection[int] = (), caps: Mapping[int, int] | None = None,
            gap: str = "  ") -> list[str]:
    """Header and rows as lines of aligned columns (columns counted as a terminal shows
    them). ``right``: indexes of right-aligned columns; ``caps``: the most columns a cell
    of that index may take (longer ones are clipped). The last column is never padded,
    so lines carry no trailing spaces."""
    caps = caps or {}
    cells = [[printable(c) for c in row] for row in [headers, *rows]]
    cells = [[clip(c, caps[i]) if i in caps else c for i, c in enumerate(row)]
             for row in cells]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    last = len(headers) - 1
    return [gap.join(cell if i == last else pad(cell, widths[i], right=i in right)
                     for i, cell in enumerate(row)).rstrip()
            for row in cells]
