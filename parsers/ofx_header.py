"""OFX layer 1: the header, and the document's bytes turned into text.

OFX 1.x (OFX 1.6 spec §2.2) opens with ``KEY:VALUE`` lines (``OFXHEADER:100``,
``VERSION:102``, ``ENCODING:USASCII``, ``CHARSET:1252``, ...) before the SGML body; OFX 2.x
(OFX 2.1.1 spec §2.2) opens with ``<?xml ... encoding="..."?>`` and ``<?OFX ... VERSION="211"
...?>``. Real files also come with no header at all, with blank lines before it, with
every header field run together on one line, or with an XML declaration that names an
encoding the bytes are not in. What is read here and how it was decoded is reported as
flags; nothing is assumed silently.

The file is read in blocks (``ofx_bytes``), never whole (``open_document``; ``read``
gathers the text for the readers that take the document whole). The encoding is decided
as for the whole text, so the file is read through first to decide it: UTF-16/32 by byte
order mark or NUL bytes (and checked to the end, so that an error names its byte), else
UTF-8 if all of it is UTF-8 (``parsers.text.decode``), else the charset the header
declares if all of it decodes so, else the code page whose non-ASCII characters come out
most as letters. The body is then decoded block by block (a character or a CRLF split
between blocks waits for the next) and its line ends normalised to ``\\n``.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from parsers.errors import ParseError
from parsers.model import Flag
from parsers.ofx_bytes import HEAD_BYTES, blocks, check, find, has_content, letters, read_at
from parsers.text import LEGACY_ENCODINGS

# OFX 1.x header fields in the order the specification lists them (OFX 1.6 §2.2).
_HEADER_KEYS = (
    "OFXHEADER", "DATA", "VERSION", "SECURITY", "ENCODING", "CHARSET", "COMPRESSION",
    "OLDFILEUID", "NEWFILEUID",
)
_KEY_AT = re.compile(r"(?i)(" + "|".join(_HEADER_KEYS) + r")\s*:")
_ANY_FIELD = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.-]*)\s*:(.*)")
_XML_ENCODING = re.compile(r"""<\?xml[^>]*?\bencoding\s*=\s*["']([^"']+)["']""", re.I)
_OFX_PI_VERSION = re.compile(r"""<\?OFX[^>]*?\bVERSION\s*=\s*["']?([0-9]+)""", re.I)

_UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SKIPPABLE = ((b"<?xml", b"?>"), (b"<!--", b"-->"))
_BLANK = re.compile(rb"\s*")


def starts_like_ofx(head: bytes) -> bool:
    """True if ``head`` starts like OFX: an OFXHEADER header, or ``<?OFX?>``/``<OFX>`` first.

    Before the ``<?OFX ...?>`` instruction or the ``<OFX>`` element only blank space, an
    XML declaration and comments may come; so a CAMT document (``<Document>``) or MT940
    text is never claimed, even if it mentions OFX somewhere.
    """
    wide = _wide_encoding(head)
    if wide is not None:
        head = head.decode(wide, errors="ignore").lstrip("\ufeff").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if head[:9].upper() == b"OFXHEADER":
        return True
    position = 0
    while True:
        for opener, closer in _SKIPPABLE:
            if head[position:position + len(opener)].lower() == opener:
                end = head.find(closer, position + len(opener))
                if end == -1:
                    return False
                blank = _BLANK.match(head, end + len(closer))
                position = blank.end() if blank else end + len(closer)
                break
        else:
            start = head[position:position + 6].upper()
            return start.startswith(b"<OFX>") or (start[:5] == b"<?OFX" and start[5:6] in
                                                  (b" ", b"\t", b"\r", b"\n", b"?"))


@dataclass(frozen=True, slots=True)
class OfxText:
    """The decoded document: newlines normalised to ``\\n``, so line numbers are the file's."""

    text: str
    body_start: int  # index of the first ``<`` of the body (the XML declaration for 2.x)
    version: str | None  # "102", "211"; None when the file has no header
    flags: tuple[Flag, ...]


def read(data: bytes, *, source: str) -> OfxText:
    """Decode ``data`` and read its OFX header; ``ParseError`` if it has neither header nor body.
    The whole text of ``open_document``."""
    document = open_document(io.BytesIO(data), source=source)
    return OfxText(document.head + "".join(document.body()), len(document.head),
                   document.version, document.flags)


class OfxDocument:
    """An OFX document in an open binary file: its header read, its encoding decided as
    for the whole text (see the module docstring), its body read in pieces by ``body``."""

    def __init__(self, file: BinaryIO, *, source: str) -> None:
        if not file.seekable():
            file = io.BytesIO(file.read())
        self._file = file
        self._start = file.tell()
        self._decoding = _choose(file, self._start, source)
        pieces = self._pieces()
        prefix, self._skip = _prefix(pieces, wide=self._decoding.wide)
        self._first: tuple[str, Iterator[str]] | None = (prefix, pieces)
        self.body_start, self.version, self.flags = _read_head(
            prefix, source=source, flags=self._decoding.flags)
        self.head = prefix[:self.body_start]
        # OFX 2.x is XML: a leaf must be closed (the tree reader reports one that is not).
        self.xml = (self.version or "").startswith("2") or prefix.startswith(
            "<?xml", self.body_start)
        self.body_line = 1 + self.head.count("\n")  # the line of the body's first ``<``

    def _pieces(self) -> Iterator[str]:
        """The text from the start, decoded and its newlines normalised, in pieces."""
        decoding = self._decoding
        decoder = codecs.getincrementaldecoder(decoding.codec)()
        held = ""  # a CR at the end of a piece: a CRLF may go on in the next one
        for block in blocks(self._file, self._start + decoding.skip):
            piece = held + decoder.decode(block)
            held = "\r" if piece.endswith("\r") else ""
            if held:
                piece = piece[:-1]
            if piece:
                yield _normalise(piece) if "\r" in piece else piece
        last = _normalise(held + decoder.decode(b"", final=True))
        if last:
            yield last

    def body(self) -> Iterator[str]:
        """The text from the body's first ``<`` to the end, in pieces; the file is read
        again from its start at each call but the first (the first goes on from the header)."""
        if self._first is not None:
            prefix, pieces = self._first
            self._first = None
            yield prefix[self.body_start:]
            yield from pieces
            return
        skip = self._skip + self.body_start
        for piece in self._pieces():
            if skip >= len(piece):
                skip -= len(piece)
                continue
            yield piece[skip:] if skip else piece
            skip = 0


def open_document(file: BinaryIO, *, source: str) -> OfxDocument:
    """The document in ``file`` from where it stands, its header read; ``ParseError`` if it
    is empty, not text in the encoding it must be in, or has no header and no body."""
    return OfxDocument(file, source=source)


@dataclass(frozen=True, slots=True)
class _Decoding:
    codec: str
    skip: int  # bytes before the text: the byte order marks a codec does not take itself
    wide: bool  # UTF-16 or UTF-32
    flags: tuple[Flag, ...]


def _choose(file: BinaryIO, start: int, source: str) -> _Decoding:
    """How the document is decoded: what the whole-text reading decided, found by reading
    the file through (twice or more when it is not UTF-8), never holding it."""
    head = read_at(file, start, HEAD_BYTES)
    if not has_content(file, start, head):
        raise ParseError("the document is empty", source=source)
    wide = _wide_encoding(head)
    if wide is not None:
        problem, has_body = check(file, start, wide, look_for="<")
        if problem is not None:
            raise ParseError(f"not valid {wide} text: {problem[0]} at byte {problem[1]}",
                             source=source)
        if not has_body:
            raise _no_content(source)
        return _Decoding(wide, 0, True, ())
    skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    body_at = find(file, start + skip, b"<")
    if body_at is None:
        raise _no_content(source)
    data = head[skip:]
    declared, flags = _declared_encoding(data, read_at(file, start + skip, body_at))
    if data.startswith(codecs.BOM_UTF8):  # a second mark: UTF-8 it must be (parsers.text)
        skip += len(codecs.BOM_UTF8)
        problem, _ = check(file, start + skip, "utf-8")
        if problem is not None:
            raise ParseError(f"not valid UTF-8 text after its byte order mark: {problem[0]} "
                             f"at byte {problem[1] + skip}", source=source)
    problem, non_ascii = check(file, start + skip, "utf-8", look_for_non_ascii=True)
    if problem is None:
        if declared not in (None, "utf-8") and non_ascii:
            flags += (Flag("ofx_repaired", f"the file declares the character set {declared} "
                           "but is valid UTF-8; read as UTF-8"),)
        return _Decoding("utf-8", skip, False, flags)
    if declared and check(file, start + skip, declared)[0] is None:
        return _Decoding(declared, skip, False, flags)
    scores: dict[str, int] = {}
    for encoding in LEGACY_ENCODINGS:
        score = letters(file, start + skip, encoding)
        if score is not None:
            scores[encoding] = score
    # latin-1 decodes every byte string; ties go to the code page listed first.
    encoding = max(scores, key=lambda name: (scores[name], -LEGACY_ENCODINGS.index(name)))
    return _Decoding(encoding, skip, False, (*flags, Flag(
        "encoding_guessed", f"not UTF-8; decoded as {encoding} by the letters it yields")))


def _no_content(source: str) -> ParseError:
    return ParseError("no OFX content: expected an OFXHEADER header or an <OFX> element",
                      source=source, line=1)


def _prefix(pieces: Iterator[str], *, wide: bool) -> tuple[str, int]:
    """The text up to the body's first ``<`` and 2,048 characters after it (where the
    ``<?OFX?>`` instruction is looked for), or all of it; and how many characters before
    it were dropped (the byte order marks of a wide text, as the whole reading drops them)."""
    taken: list[str] = []
    size, first = 0, -1
    for piece in pieces:
        if first == -1:
            found = piece.find("<")
            if found != -1:
                first = size + found
        taken.append(piece)
        size += len(piece)
        if first != -1 and size >= first + 2048:
            break
    prefix = "".join(taken)
    if wide:
        stripped = prefix.lstrip("\ufeff")
        return stripped, len(prefix) - len(stripped)
    return prefix, 0


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 by byte order mark, or UTF-16 without one when every other byte is NUL."""
    for bom in _UTF16_BOMS:
        if data.startswith(bom):
            return "utf-32" if len(bom) == 4 else "utf-16"
    probe = data[:64]
    if len(probe) >= 8 and b"\x00" in probe:
        odd_nul = probe[1::2].count(0) == len(probe[1::2])
        even_nul = probe[0::2].count(0) == len(probe[0::2])
        if odd_nul and not even_nul:
            return "utf-16-le"
        if even_nul and not odd_nul:
            return "utf-16-be"
    return None


def _declared_encoding(data: bytes, head: bytes) -> tuple[str | None, tuple[Flag, ...]]:
    """The Python codec the document declares for itself, if any, and flags about it."""
    try:
        head_text = head.decode("ascii")
    except UnicodeDecodeError:
        return None, ()
    if head_text.strip():
        try:
            fields = dict(_header_fields(head_text)[0])
        except ValueError:
            return None, ()  # _read_text reports the malformed line
        encoding = fields.get("ENCODING", "").upper()
        charset = fields.get("CHARSET", "").upper()
        if encoding in ("UTF-8", "UNICODE", "UTF8"):
            return "utf-8", ()
        if charset in ("8859-1", "ISO-8859-1", "LATIN-1", "LATIN1"):
            return "latin-1", ()
        if charset.isdigit():
            return _known_codec(f"cp{charset}"), ()
        return None, ()
    match = _XML_ENCODING.search(data[:1024].decode("ascii", errors="replace"))
    if match is None:
        return None, ()
    name = match.group(1).strip().lower()
    if name in ("usascii", "us-ascii", "ascii"):
        return "ascii", ()
    codec = _known_codec(name)
    if codec is not None and codecs.lookup(codec).name.startswith(("utf-16", "utf-32")):
        # Reached only when the bytes are not wide (see _wide_encoding): the label is wrong.
        return None, (Flag("ofx_repaired",
                           f"the XML declaration says encoding={match.group(1)!r} but the bytes "
                           "are 8-bit text; the declaration was ignored"),)
    return codec, ()


def _known_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # unknown, or not even a name ("cp\x00")
        return None


def _header_fields(head: str) -> tuple[list[tuple[str, str]], bool]:
    """``(KEY, value)`` pairs of an OFX 1.x header, and whether fields were run together.

    A well-formed header has one field a line; some banks write them all on one line
    with nothing between (``OFXHEADER:100DATA:OFXSGMLVERSION:102...``), which only the
    known field names can split.
    """
    fields: list[tuple[str, str]] = []
    run_together = False
    for line in head.split("\n"):
        if not line.strip():
            continue
        starts = list(_KEY_AT.finditer(line))
        if starts and starts[0].start() == len(line) - len(line.lstrip()):
            run_together = run_together or len(starts) > 1
            for here, after in zip(starts, [*starts[1:], None], strict=True):
                end = after.start() if after is not None else len(line)
                fields.append((here.group(1).upper(), line[here.end():end].strip()))
            continue
        match = _ANY_FIELD.fullmatch(line)
        if match is None:
            raise ValueError(line)
        fields.append((match.group(1).upper(), match.group(2).strip()))
    return fields, run_together


def _read_head(text: str, *, source: str,
               flags: tuple[Flag, ...]) -> tuple[int, str | None, tuple[Flag, ...]]:
    """Where the body starts in ``text`` (the document's text, or as much of it as reaches
    2,048 characters past the first ``<``), the OFX version, and the flags."""
    body_start = text.find("<")
    if body_start == -1:
        raise _no_content(source)
    head = text[:body_start]
    if not head.strip():
        pi = _OFX_PI_VERSION.search(text, body_start, body_start + 2048)
        if pi is not None:
            return body_start, pi.group(1), flags
        return body_start, None, (*flags, Flag(
            "ofx_header_missing", "the file has no OFX header: read as OFX 1.x SGML, version "
            "unknown"))
    first_line = 1 + head.count("\n", 0, len(head) - len(head.lstrip()))
    if not head.lstrip().upper().startswith("OFXHEADER"):
        raise ParseError("expected an OFX header starting with OFXHEADER: or an <OFX> element",
                         source=source, line=first_line, field="OFXHEADER")
    try:
        fields, run_together = _header_fields(head)
    except ValueError as exc:
        bad = str(exc)
        line = 1 + text.count("\n", 0, text.find(bad)) if bad else first_line
        raise ParseError(f"malformed OFX header line {bad.strip()!r}: expected NAME:VALUE",
                         source=source, line=line, field="OFXHEADER") from exc
    header = dict(fields)
    if run_together:
        flags += (Flag("ofx_repaired", "the OFX header fields run together without line "
                       "breaks; split by their names", f"line {first_line}"),)
    version = header.get("VERSION") or None
    if version is not None and not (version.isascii() and version.isdigit()):
        raise ParseError(f"OFX header VERSION {version!r}: expected digits like 102",
                         source=source, line=first_line, field="VERSION")
    return body_start, version, flags
