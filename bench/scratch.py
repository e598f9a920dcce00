"""Scratch databases for the benchmarks: made empty on a server, dropped afterwards."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def fresh_database(server_url: str, prefix: str = "bench") -> str:
    """A new, empty database on the server of ``server_url``; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        name = urlsplit(url).path.lstrip("/")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
