"""raw_documents: every file received, kept whole and deduplicated by SHA-256.

A small document is one ``content`` value. A large one (over ``CHUNKED_OVER`` bytes, read
from a file) is kept in ``document_chunks`` in pieces of ``CHUNK`` bytes, written as the
file is read, so that storing it never holds it whole in memory (nor needs one bytea value
of a gigabyte, PostgreSQL's limit); its ``content`` is then empty. ``content`` reads either
back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

CHUNK = 8 * 1024 * 1024
CHUNKED_OVER = 32 * 1024 * 1024


async def insert(conn: asyncpg.Connection, tenant: str, *, sha256: bytes, source: str,
                 format: str, content: bytes, size: int | None = None) -> int | None:
    """Store a document; return its id, or None when the same bytes are already stored.

    Two importers of the same bytes at once: the second waits on the unique index until
    the first commits, then gets None. ``size`` is given with an empty ``content`` for a
    document whose bytes follow in chunks (``insert_file``).
    """
    document_id: int | None = await conn.fetchval(
        """
        INSERT INTO raw_documents (tenant_id, sha256, source, format, size_bytes, content)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant_id, sha256) DO NOTHING
        RETURNING document_id
        """,
        tenant, sha256, source, format, len(content) if size is None else size, content,
    )
    return document_id


async def insert_file(conn: asyncpg.Connection, tenant: str, *, sha256: bytes, source: str,
                      format: str, path: Path, size: int) -> int | None:
    """``insert`` for a document in a file: a small one whole, a large one in chunks read
    one at a time (in the caller's transaction: all of it is stored, or none)."""
    if size <= CHUNKED_OVER:
        content = await asyncio.to_thread(path.read_bytes)
        return await insert(conn, tenant, sha256=sha256, source=source, format=format,
                            content=content)
    document_id = await insert(conn, tenant, sha256=sha256, source=source, format=format,
                               content=b"", size=size)
    if document_id is None:
        return None
    with path.open("rb") as handle:
        number = 0
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            await conn.execute(
                "INSERT INTO document_chunks (tenant_id, document_id, chunk, content)"
                " VALUES ($1, $2, $3, $4)", tenant, document_id, number, chunk)
            number += 1
    return document_id


async def content(conn: asyncpg.Connection, tenant: str, document_id: int) -> bytes | None:
    """A stored document's bytes (whole in memory: for documents that fit), or None."""
    row = await conn.fetchrow(
        "SELECT content, size_bytes FROM raw_documents WHERE tenant_id = $1"
        " AND document_id = $2", tenant, document_id)
    if row is None:
        return None
    if row["content"] or not row["size_bytes"]:
        return bytes(row["content"])
    chunks = await conn.fetch(
        "SELECT content FROM document_chunks WHERE tenant_id = $1 AND document_id = $2"
        " ORDER BY chunk", tenant, document_id)
    return b"".join(c["content"] for c in chunks)


async def find(conn: asyncpg.Connection, tenant: str, sha256: bytes) -> int | None:
    document_id: int | None = await conn.fetchval(
        "SELECT document_id FROM raw_documents WHERE tenant_id = $1 AND sha256 = $2",
        tenant, sha256,
    )
    return document_id
