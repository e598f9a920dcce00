"""Bank documents in, normalized ``Statement`` objects out. Pure: no I/O but reading the
document (its bytes, or a file opened for it).

Each family of formats is one module with ``FAMILY`` (its name: ``mt940``, ``camt``,
``ofx``), ``FORMAT_NAMES`` (what its statements' ``format`` may be: ``camt.052``,
``camt.053``, ``camt.054``), ``sniff(head: bytes) -> bool`` and
``parse(data: bytes, *, source: str) -> tuple[Statement, ...]``, listed in ``FORMATS``;
each family also has ``parse_each``, which returns a bad statement's ``ParseError`` in its
place, and ``stream(file: BinaryIO, *, source: str)``, which reads as it goes and yields the
parts of ``parsers.stream`` (OFX reads a few irregular documents whole, ``parsers.ofx`` says
which).
A format is named by its statements' ``format`` (``parsers.model.FORMAT_NAMES``), never by
the family: a camt file holds camt.052, camt.053 or camt.054 statements.
Formats are recognised from the content, never the file name; two formats claiming one
document is an error, not a guess.

``stream(file, *, source, strict=False)`` reads an open binary file as a stream of parts
(``parsers.stream``: ``StatementStart``, each ``Entry``, ``StatementEnd``, and
``StatementFailed`` for a bad statement the reader could step over), so that a file of any
size is read in flat memory. The format is detected from the file's first 64 KiB; a format
module with its own ``stream(file, *, source)`` reads as it goes, any other is read whole
(``parse_each``, else ``parse``) and its statements streamed. Each statement is checked as
``parse`` checks it, as it streams (``parsers.checks.StreamCheck``): the flags are on the
``StatementEnd``'s statement; with ``strict`` a statement that does not add up is followed
by a ``StatementFailed`` naming the mismatch instead of its ``StatementEnd``. ``parse`` and
``parse_each`` give whole statements, as before. ``open_path`` opens a file for ``stream``:
a streamed document may be up to ``STREAM_MAX_BYTES`` (its size costs no memory), one of a
format read whole up to ``DEFAULT_MAX_BYTES``, as ``read_path`` allows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from parsers import camt, mt940, ofx
from parsers.checks import StreamCheck, check_statement
from parsers.errors import GatewayError, ParseError, TooLargeError, UnknownFormatError
from parsers.model import Entry, Statement
from parsers.stream import (
    Part,
    StatementEnd,
    StatementFailed,
    StatementStart,
    from_statements,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "STREAM_MAX_BYTES",
    "GatewayError",
    "ParseError",
    "Statement",
    "TooLargeError",
    "UnknownFormatError",
    "detect",
    "open_path",
    "parse",
    "parse_each",
    "parse_path",
    "read_path",
    "stream",
]

FORMATS: tuple[ModuleType, ...] = (mt940, camt, ofx)

# Real statements run to tens of megabytes; anything past this is refused unread.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# A file read as a stream costs no memory by its size: only a sanity limit (a camt.053 of a
# million entries is about 1 GiB).
STREAM_MAX_BYTES = 16 * 1024 * 1024 * 1024

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


def _peek(file: BinaryIO) -> bytes:
    """The first bytes of ``file`` from where it stands, leaving it there."""
    where = file.tell()
    head = file.read(_SNIFF_BYTES)
    file.seek(where)
    return head


def stream(
    file: BinaryIO, *, source: str, strict: bool = False, fmt: ModuleType | None = None
) -> Iterator[Part]:
    """The statements of an open binary ``file`` as a stream of parts, checked as ``parse``
    checks them (see the module docstring). ``file`` need not be seekable (one that is not
    is read whole first). Raises ``ParseError`` for what the reader cannot go on after.
    """
    if not file.seekable():
        file = io.BytesIO(file.read())
    if fmt is None:
        fmt = detect(_peek(file), source=source)
    own: Callable[..., Iterator[Part]] | None = getattr(fmt, "stream", None)
    if own is not None:
        parts: Iterable[Part] = own(file, source=source)
    else:  # read whole: the size limit of whole documents holds
        data = file.read(DEFAULT_MAX_BYTES + 1)
        if len(data) > DEFAULT_MAX_BYTES:
            raise TooLargeError(f"the file is over the limit of {DEFAULT_MAX_BYTES} bytes "
                                f"for a {fmt.FAMILY} document", source=source)
        parts = _whole(data, source, fmt)
    return _checked(parts, strict=strict)


def _whole(data: bytes, source: str, fmt: ModuleType) -> Iterator[Part]:
    """The parts of a document read whole by a format that does not stream."""
    each: Callable[..., tuple[Statement | ParseError, ...]] | None = getattr(
        fmt, "parse_each", None)
    parse_format: Callable[..., tuple[Statement | ParseError, ...]] = each or fmt.parse
    for result in parse_format(data, source=source):
        if isinstance(result, ParseError):
            yield StatementFailed(result)
        else:
            yield from from_statements((result,))


def _checked(parts: Iterable[Part], *, strict: bool) -> Iterator[Part]:
    """``parts`` with each statement's check flags on its end (``StreamCheck``)."""
    check = StreamCheck()
    for part in parts:
        if isinstance(part, Entry):
            check.add(part)
            yield part
        elif isinstance(part, StatementEnd):
            try:
                checked = check.finish(part.statement, strict=strict)
            except ParseError as exc:
                yield StatementFailed(exc)
            else:
                yield part if checked is part.statement else StatementEnd(checked, part.entries)
        else:
            if isinstance(part, StatementStart):
                check = StreamCheck()
            yield part


def read_path(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of one file, refusing files over ``max_bytes`` before reading them."""
    source = str(path)
    with io.BufferedReader(_open_within(path, max_bytes, source)) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise ParseError(f"cannot read the file: {exc.strerror or exc}",
                             source=source) from exc
    if len(data) > max_bytes:  # grew while we read it
        raise TooLargeError(f"the file is over the limit of {max_bytes} bytes", source=source)
    return data


class _Limited(io.RawIOBase):
    """A file read no further than ``max_bytes``: past them, ``TooLargeError``."""

    def __init__(self, file: io.FileIO, max_bytes: int, source: str) -> None:
        super().__init__()
        self._file, self._max, self._source = file, max_bytes, source

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        if self._file.tell() > self._max:  # grew while we read it
            raise TooLargeError(f"the file is over the limit of {self._max} bytes",
                                source=self._source)
        return int(count or 0)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_path(path: Path, *, max_bytes: int = STREAM_MAX_BYTES,
              source: str | None = None) -> BinaryIO:
    """One file open for ``stream``, refused before reading when over ``max_bytes`` (and
    as soon as it is found to have grown past them); errors name ``source`` (the path by
    default). Close it after use."""
    source = source or str(path)
    return io.BufferedReader(_Limited(_open_within(path, max_bytes, source), max_bytes,
                                      source), 1 << 16)


def _open_within(path: Path, max_bytes: int, source: str) -> io.FileIO:
    """The file open, refused unread (``TooLargeError``) when over ``max_bytes``; one that
    cannot be opened is a ``ParseError``."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TooLargeError(
                f"the file is {size} bytes, over the limit of {max_bytes} bytes",
                source=source,
            )
        return io.FileIO(path, "rb")
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}", source=source) from exc


def parse_path(
    path: Path, *, strict: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Statement, ...]:
    """Read and parse one file, refusing files over ``max_bytes`` before reading them."""
    return parse(read_path(path, max_bytes=max_bytes), source=str(path), strict=strict)
