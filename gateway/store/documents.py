"""raw_documents: every file received, kept whole and deduplicated by SHA-256."""

from __future__ import annotations

import asyncpg


async def insert(conn: asyncpg.Connection, tenant: str, *, sha256: bytes, source: str,
                 format: str, content: bytes) -> int | None:
    """Store a document; return its id, or None when the same bytes are already stored.

    Two importers of the same bytes at once: the second waits on the unique index until
    the first commits, then gets None.
    """
    document_id: int | None = await conn.fetchval(
        """
        INSERT INTO raw_documents (tenant_id, sha256, source, format, size_bytes, content)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant_id, sha256) DO NOTHING
        RETURNING document_id
        """,
        tenant, sha256, source, format, len(content), content,
    )
    return document_id


async def find(conn: asyncpg.Connection, tenant: str, sha256: bytes) -> int | None:
    document_id: int | None = await conn.fetchval(
        "SELECT document_id FROM raw_documents WHERE tenant_id = $1 AND sha256 = $2",
        tenant, sha256,
    )
    return document_id
