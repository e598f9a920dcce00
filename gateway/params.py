"""Query and path parameters: limits, cursors, dates and ids, read the same way everywhere.

Pagination: ``?limit=&cursor=`` in, ``{"items": [...], "next_cursor": ...}`` out. A
cursor is the sort key of the last item returned, opaque to clients (base64url JSON), so
pages stay stable while rows are added. A cursor is checked element by element against the
kinds of its sort key (``CursorKind``) before it reaches SQL: anything else is a 400.
Which query parameters a route takes is declared once, in its route table entry; the
``query_middleware`` in ``gateway.routes`` refuses the others.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date
from enum import Enum
from typing import Any

from aiohttp import web

from gateway import limits
from gateway.problems import BadRequest, NotFound

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class CursorKind(Enum):
    """What one element of a cursor's sort key is."""

    INT = "a 64-bit whole number"
    TEXT = "an identifier"
    INSTANT = "a time with its UTC offset"


def limit_of(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    number = limits.int64_of(text)
    if number is None or not 1 <= number <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return number


def _fits(value: Any, kind: CursorKind) -> bool:
    if kind is CursorKind.INT:
        return isinstance(value, int) and not isinstance(value, bool) \
            and -limits.INT64_MAX - 1 <= value <= limits.INT64_MAX
    if not isinstance(value, str) or limits.text_problem(value) \
            or len(value) > limits.MAX_QUERY_VALUE:
        return False
    return kind is not CursorKind.INSTANT or limits.instant_of(value) is not None


def cursor_of(request: web.Request, size: int, name: str = "cursor", *,
              kinds: tuple[CursorKind, ...] | None = None) -> list[Any] | None:
    """The decoded cursor (a list of ``size`` values), or None on the first page.

    With ``kinds`` each value is checked to be of its kind; without, only that no string in
    it holds what text may not (the caller checks the rest).
    """
    text = request.query.get(name)
    if not text:
        return None
    refused = BadRequest(f"{name} is not a cursor this API gave out")
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise refused from None
    if not isinstance(value, list) or len(value) != size or limits.json_problem(value):
        raise refused
    if kinds is not None and (len(kinds) != size
                              or not all(map(_fits, value, kinds))):
        raise refused
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
    """The query parameter ``name`` as a date (exactly YYYY-MM-DD), or None when absent."""
    text = request.query.get(name)
    if text is None:
        return None
    day = limits.date_of(text)
    if day is None:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {text!r}")
    return day


def path_id(request: web.Request, name: str, what: str) -> int:
    """The path parameter ``name`` as a row id; anything that cannot be one is a 404."""
    text = request.match_info[name]
    number = limits.int64_of(text)
    if number is None:
        raise NotFound(f"no {what} {text!r}")
    return number
