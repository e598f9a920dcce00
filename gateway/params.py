"""Query parameters: dates, and cursor pagination.

Pagination: ``?limit=&cursor=`` in, ``{"items": [...], "next_cursor": ...}`` out. A
cursor is the sort key of the last item returned, opaque to clients (base64url JSON), so
pages stay stable while rows are added.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date
from typing import Any

from aiohttp import web

from gateway.problems import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def limit_of(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def cursor_of(request: web.Request, size: int, name: str = "cursor") -> list[Any] | None:
    """The decoded cursor (a list of ``size`` values), or None on the first page."""
    text = request.query.get(name)
    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{name} is not a cursor this API gave out") from exc
    if not isinstance(value, list) or len(value) != size:
        raise BadRequest(f"{name} is not a cursor this API gave out")
    return value


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def page(items: list[dict[str, Any]], limit: int, key: list[str]) -> dict[str, Any]:
    """The response body for ``items`` fetched with ``limit + 1`` rows."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor([items[-1][k] for k in key]) if more else None
    return {"items": items, "next_cursor": next_cursor}


def date_param(request: web.Request, name: str) -> date | None:
    """The query parameter ``name`` as a date (YYYY-MM-DD), or None when absent."""
    text = request.query.get(name)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {text!r}") from None
