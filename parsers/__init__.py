"""Bank documents in, normalized ``Statement`` objects out. Pure: no I/O but reading bytes.

Each family of formats is one module with ``FAMILY`` (its name: ``mt940``, ``camt``,
``ofx``), ``FORMAT_NAMES`` (what its statements' ``format`` may be: ``camt.052``,
``camt.053``, ``camt.054``), ``sniff(head: bytes) -> bool`` and
``parse(data: bytes, *, source: str) -> tuple[Statement, ...]``, listed in ``FORMATS``;
a family that can read each statement of a document apart (MT940) also has ``parse_each``,
which returns a bad statement's ``ParseError`` in its place.
A format is named by its statements' ``format`` (``parsers.model.FORMAT_NAMES``), never by
the family: a camt file holds camt.052, camt.053 or camt.054 statements.
Formats are recognised from the content, never the file name; two formats claiming one
document is an error, not a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from parsers import camt, mt940, ofx
from parsers.checks import check_statement
from parsers.errors import GatewayError, ParseError, TooLargeError, UnknownFormatError
from parsers.model import Statement

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "GatewayError",
    "ParseError",
    "Statement",
    "TooLargeError",
    "UnknownFormatError",
    "detect",
    "parse",
    "parse_each",
    "parse_path",
    "read_path",
]

FORMATS: tuple[ModuleType, ...] = (mt940, camt, ofx)

# Real statements run to tens of megabytes; anything past this is refused unread.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_SNIFF_BYTES = 64 * 1024


def detect(data: bytes, *, source: str) -> ModuleType:
    """The format module that recognises ``data``; ``UnknownFormatError`` if none or several."""
    head = data[:_SNIFF_BYTES]
    claims = [fmt for fmt in FORMATS if fmt.sniff(head)]
    if len(claims) == 1:
        return claims[0]
    if not claims:
        if not data.strip():
            raise UnknownFormatError("the document is empty", source=source)
        raise UnknownFormatError(
            "not a recognised bank statement: expected MT940/MT942, camt.052/053/054 or OFX",
            source=source,
            line=1,
        )
    names = ", ".join("/".join(fmt.FORMAT_NAMES) for fmt in claims)
    raise UnknownFormatError(f"the content looks like several formats at once ({names})",
                             source=source, line=1)


def parse(
    data: bytes, *, source: str, strict: bool = False, fmt: ModuleType | None = None
) -> tuple[Statement, ...]:
    """Parse a whole document into its statements, balance-checked.

    Raises ``ParseError`` (naming ``source``, where, and what was expected) for anything
    that cannot be read whole; with ``strict`` a balance mismatch is an error too.
    ``fmt`` is the format module when the caller has already detected it.
    """
    fmt = fmt or detect(data, source=source)
    parse_format: Callable[..., tuple[Statement, ...]] = fmt.parse
    statements = parse_format(data, source=source)
    return tuple(check_statement(s, strict=strict) for s in statements)


def parse_each(
    data: bytes, *, source: str, strict: bool = False, fmt: ModuleType | None = None
) -> tuple[Statement | ParseError, ...]:
    """Like ``parse``, but a bad statement of a multi-statement document is its
    ``ParseError`` in its place instead of failing the others (for showing a file; storing
    one stays all or nothing through ``parse``). Formats that cannot read a statement apart
    from its document fail as a whole: then the one result is that error.
    """
    fmt = fmt or detect(data, source=source)
    each: Callable[..., tuple[Statement | ParseError, ...]] | None = getattr(
        fmt, "parse_each", None)
    if each is None:
        return parse(data, source=source, strict=strict, fmt=fmt)
    results: list[Statement | ParseError] = []
    for result in each(data, source=source):
        try:
            results.append(result if isinstance(result, ParseError)
                           else check_statement(result, strict=strict))
        except ParseError as exc:
            results.append(exc)
    return tuple(results)


def read_path(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of one file, refusing files over ``max_bytes`` before reading them."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TooLargeError(
                f"the file is {size} bytes, over the limit of {max_bytes} bytes",
                source=source,
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}", source=source) from exc
    if len(data) > max_bytes:  # grew while we read it
        raise TooLargeError(f"the file is over the limit of {max_bytes} bytes", source=source)
    return data


def parse_path(
    path: Path, *, strict: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Statement, ...]:
    """Read and parse one file, refusing files over ``max_bytes`` before reading them."""
    return parse(read_path(path, max_bytes=max_bytes), source=str(path), strict=strict)
