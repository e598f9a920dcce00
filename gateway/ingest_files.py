"""Documents of any size in: from a file on disk, or from a request body spooled to one.

Neither is ever held whole in memory. The file is read once to hash it (a known document is
answered at once, unparsed), then streamed to the parser (``parsers.stream``) and, when it
is stored, to the database in pieces (``gateway.store.documents``).

For an upload, ``spool`` copies the request body (``request.content``) to a temporary file
while hashing it and refusing it past the limit, then ``ingest_spooled`` imports that file:

    async with spool(request.content, max_bytes=settings.max_body_bytes) as body:
        if body.blank: ...  # nothing but whitespace: the caller's 400
        result = await ingest_spooled(conn, body, source=name, tenant=tenant)

A body over the limit raises ``TooLargeError`` (a ``ParseError``: the caller's 413) before
more than the limit was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import asyncpg

import parsers
from gateway.ingest import Document, IngestResult, ingest_parts, known_document
from parsers.errors import ParseError, TooLargeError
from parsers.stream import Part

logger = logging.getLogger(__name__)

_READ = 1024 * 1024  # bytes read at a time
_WHITESPACE = b" \t\n\r\x0b\x0c"


class BodyReader(Protocol):
    """What ``spool`` reads: ``aiohttp.StreamReader`` (``request.content``) is one."""

    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Spooled:
    """A document copied to a temporary file: where, its SHA-256 and size, and whether it
    held nothing but whitespace (``bytes.strip`` would leave nothing)."""

    path: Path
    sha256: bytes
    size: int
    blank: bool


@contextlib.asynccontextmanager
async def spool(body: BodyReader, *, max_bytes: int,
                source: str = "upload") -> AsyncIterator[Spooled]:
    """Copy ``body`` to a temporary file while hashing it; the file is removed on leaving.

    Raises ``TooLargeError`` as soon as more than ``max_bytes`` came.
    """
    handle, name = tempfile.mkstemp(prefix="recon-upload-")
    path = Path(name)
    try:
        digest, size, blank = hashlib.sha256(), 0, True
        with os.fdopen(handle, "wb") as out:
            while True:
                chunk = await body.read(_READ)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise TooLargeError(f"the body is over the limit of {max_bytes} bytes",
                                        source=source)
                digest.update(chunk)
                blank = blank and not chunk.strip(_WHITESPACE)
                out.write(chunk)
        yield Spooled(path, digest.digest(), size, blank)
    finally:
        path.unlink(missing_ok=True)


async def ingest_spooled(conn: asyncpg.Connection, body: Spooled, *, source: str,
                         tenant: str = "default", strict: bool = False,
                         progress: Callable[[str], None] | None = None) -> IngestResult:
    """Import a spooled body (``spool``): as ``gateway.ingest.ingest`` does its bytes."""
    with body.path.open("rb") as handle:
        return await _ingest_file(conn, handle, body.path, sha256=body.sha256,
                                  size=body.size, source=source, tenant=tenant,
                                  strict=strict, progress=progress)


async def ingest_path(conn: asyncpg.Connection, path: Path, *, source: str | None = None,
                      tenant: str = "default", strict: bool = False,
                      max_bytes: int = parsers.DEFAULT_MAX_BYTES,
                      progress: Callable[[str], None] | None = None) -> IngestResult:
    """Import one file (the command line's ``import``): hashed first, a known document is
    answered unparsed; a file over ``max_bytes`` is refused unread, one found to grow past
    them as it is read refused then (``TooLargeError``, ``parsers.open_path``); one that
    cannot be read is a ``ParseError`` naming it."""
    name = source or str(path)
    with parsers.open_path(path, max_bytes=max_bytes, source=name) as handle:
        digest, size = await _hash(handle, source=name)
        handle.seek(0)
        return await _ingest_file(conn, handle, path, sha256=digest, size=size, source=name,
                                  tenant=tenant, strict=strict, progress=progress)


async def _hash(handle: BinaryIO, *, source: str) -> tuple[bytes, int]:
    def read() -> tuple[bytes, int]:
        digest, size = hashlib.sha256(), 0
        try:
            while chunk := handle.read(_READ):
                digest.update(chunk)
                size += len(chunk)
        except OSError as exc:
            raise ParseError(f"cannot read the file: {exc.strerror or exc}",
                             source=source) from exc
        return digest.digest(), size

    return await asyncio.to_thread(read)


async def _ingest_file(conn: asyncpg.Connection, handle: BinaryIO, path: Path, *,
                       sha256: bytes, size: int, source: str, tenant: str, strict: bool,
                       progress: Callable[[str], None] | None) -> IngestResult:
    """Import the document open in ``handle`` (at its start), the file at ``path``."""
    known = await known_document(conn, tenant, sha256)
    if known is not None:
        return known
    parts = _parts(handle, source=source, strict=strict)
    document = Document(sha256, source, size, path=path)
    return await ingest_parts(conn, tenant, parts, document=document, progress=progress)


def _parts(handle: BinaryIO, *, source: str, strict: bool) -> Iterator[Part]:
    """The file's parts; the format is detected when the first is asked for (in the worker
    thread, with the rest of the reading)."""
    yield from parsers.stream(handle, source=source, strict=strict)
