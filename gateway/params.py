"""Query and path parameters: limits, cursors, dates and ids, read the same way everywhere.

Pagination: ``?limit=&cursor=`` in, ``{"items": [...], "next_cursor": ...}`` out. A
cursor is the sort key of the last item returned (``SortKey``), so pages stay stable while
rows are added. It is written so that a regular expression says exactly which cursors
exist (the OpenAPI document gives it as the parameter's ``pattern``): the key's values
joined by ``.``, a whole number as its ASCII digits, a time as whole microseconds since
1970-01-01T00:00Z, a text as ``~`` and the base64url of its UTF-8 (no padding), so a cursor
needs no escaping in a URL. Every string the pattern matches is a position a page can
start after (an empty one: the first page); any other string is a 400.

Cursors given out before that form (base64url JSON lists, always starting with ``W``) are
still read, each value checked against the kind of its place in the key (``CursorKind``)
before it reaches SQL, so a client paging or polling across an upgrade goes on where it was.

Which query parameters a route takes is declared once, in its route table entry; the
``query_middleware`` in ``gateway.routes`` refuses the others.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

from aiohttp import web

from gateway import limits
from gateway.problems import BadRequest, NotFound

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def digits_up_to(maximum: int) -> str:
    """A regular expression (unanchored) for the ASCII digit strings whose value is at most
    ``maximum``, with up to as many digits as ``maximum`` has (leading zeros allowed):
    exactly what ``limits.int64_of`` reads when ``maximum`` is ``limits.INT64_MAX``."""
    text = str(maximum)
    width = len(text)
    choices = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for place, digit in enumerate(text):
        if digit != "0":
            rest = width - place - 1
            choices.append(text[:place] + ("0" if digit == "1" else f"[0-{int(digit) - 1}]")
                           + (f"[0-9]{{{rest}}}" if rest else ""))
    choices.append(text)
    return "(?:" + "|".join(choices) + ")"


class CursorKind(Enum):
    """What one element of a cursor's sort key is."""

    INT = "a 64-bit whole number"
    INT32 = "a 32-bit whole number"
    TEXT = "an identifier"
    INSTANT = "a time with its UTC offset"


_INT32_MAX = 2**31 - 1
_WHOLE = digits_up_to(limits.INT64_MAX)
_BASE64URL = r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?"
_FIELD = {CursorKind.INT: _WHOLE, CursorKind.INT32: digits_up_to(_INT32_MAX),
          CursorKind.INSTANT: _WHOLE}
_LONGEST = {CursorKind.INT: len(str(limits.INT64_MAX)), CursorKind.INT32: len(str(_INT32_MAX)),
            CursorKind.INSTANT: len(str(limits.INT64_MAX))}
_BASE64URL_CHAR = "[A-Za-z0-9_-]"


def _text_field(room: int) -> str:
    """A text value of a cursor that has ``room`` characters left: ``~`` and base64url
    without padding (never a length of 4n+1), at most ``room`` long."""
    return (f"~(?:{_BASE64URL_CHAR}{{4}}){{0,{(room - 4) // 4}}}"
            f"(?:{_BASE64URL_CHAR}{{2,3}})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _decode_old(text: str) -> Any:
    """A cursor as given out before the pattern form: base64url JSON, or None."""
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None


def _fits(value: Any, kind: CursorKind) -> bool:
    """Whether ``value`` from an old-form cursor is of ``kind`` and storable."""
    if kind in (CursorKind.INT, CursorKind.INT32):
        bound = limits.INT64_MAX if kind is CursorKind.INT else _INT32_MAX
        return isinstance(value, int) and not isinstance(value, bool) \
            and -bound - 1 <= value <= bound
    if not isinstance(value, str) or limits.text_problem(value) \
            or len(value) > limits.MAX_QUERY_VALUE:
        return False
    return kind is not CursorKind.INSTANT or limits.instant_of(value) is not None


def _read_field(text: str, kind: CursorKind) -> Any:
    """One value of a pattern-form cursor (the pattern has matched): a whole number; a time
    as an RFC 3339 string (past the year 9999: the last time there is); a text, its bytes
    read as UTF-8 with anything that is not (and NUL, which text never holds) as U+FFFD."""
    if kind in (CursorKind.INT, CursorKind.INT32):
        return int(text)
    if kind is CursorKind.INSTANT:
        try:
            return (_EPOCH + int(text) * _MICROSECOND).isoformat()
        except OverflowError:
            return _LAST_INSTANT.isoformat()
    raw = base64.urlsafe_b64decode(text[1:] + "=" * (-len(text[1:]) % 4))
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _write_field(value: Any, kind: CursorKind) -> str:
    if kind is CursorKind.TEXT:
        return "~" + base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")
    if kind is CursorKind.INSTANT:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        value = max(0, (instant - _EPOCH) // _MICROSECOND)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"a sort key's whole number must be at least 0, got {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class SortKey:
    """What a list is ordered by: the fields of an item that make its cursor, in order,
    with their kinds. ``legacy`` reads an old-form cursor's values in place of the kinds'
    check, for a list whose old cursors held values of another kind."""

    fields: tuple[str, ...]
    kinds: tuple[CursorKind, ...]
    legacy: Callable[[list[Any]], list[Any] | None] | None = None

    @property
    def pattern(self) -> str:
        """Every cursor this list reads, as a regular expression (empty: the first page).
        Its length is bounded by the pattern itself: at most ``MAX_QUERY_VALUE``, however
        long the whole numbers before a text are."""
        room = limits.MAX_QUERY_VALUE - len(self.kinds) + 1 \
            - sum(_LONGEST.get(kind, 0) for kind in self.kinds)
        return "^(?:" + r"\.".join(_text_field(room) if kind is CursorKind.TEXT
                                    else _FIELD[kind] for kind in self.kinds) + ")?$"

    def encode(self, values: list[Any]) -> str:
        return ".".join(map(_write_field, values, self.kinds))

    def after(self, item: dict[str, Any]) -> str:
        """The cursor of the page that starts after ``item``."""
        return self.encode([item[name] for name in self.fields])

    def read(self, request: web.Request, name: str = "cursor") -> list[Any] | None:
        """The query parameter ``name`` as this key's values, or None on the first page."""
        return self.parse(request.query.get(name), name)

    def parse(self, text: str | None, name: str = "cursor") -> list[Any] | None:
        """``text`` as this key's values (None: the first page), or a 400 naming ``name``."""
        if not text:
            return None
        if re.fullmatch(self.pattern, text):
            return [_read_field(part, kind)
                    for part, kind in zip(text.split(".", len(self.kinds) - 1), self.kinds,
                                          strict=True)]
        value = _decode_old(text) if text.startswith("W") else None
        if isinstance(value, list) and len(value) == len(self.kinds) \
                and not limits.json_problem(value):
            if self.legacy is not None:
                value = self.legacy(value)
            elif not all(map(_fits, value, self.kinds)):
                value = None
            if value is not None:
                return value
        raise BadRequest(f"{name} is not a cursor this API gave out: pass next_cursor "
                         f"(or an item's cursor) back unchanged")

    def page(self, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
        """The response body for ``items`` fetched with ``limit + 1`` rows."""
        more = len(items) > limit
        items = items[:limit]
        return {"items": items, "next_cursor": self.after(items[-1]) if more else None}


def sort_key(**fields: CursorKind) -> SortKey:
    """``sort_key(account_id=CursorKind.INT)``: the key of a list ordered by those fields."""
    return SortKey(tuple(fields), tuple(fields.values()))


def limit_of(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    number = limits.int64_of(text)
    if number is None or not 1 <= number <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return number


def date_param(request: web.Request, name: str) -> date | None:
    """The query parameter ``name`` as a date (exactly YYYY-MM-DD), or None when absent."""
    text = request.query.get(name)
    if text is None:
        return None
    day = limits.date_of(text)
    if day is None:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {text!r}")
    return day


def instant_param(request: web.Request, name: str) -> datetime | None:
    """The query parameter ``name`` as an instant with its offset, or None when absent."""
    text = request.query.get(name)
    if text is None:
        return None
    when = limits.instant_of(text)
    if when is None:
        raise BadRequest(f"{name} must be a time with its offset, e.g. 2026-12-01T00:00:00Z, "
                         f"got {text!r}")
    return when


def path_id(request: web.Request, name: str, what: str) -> int:
    """The path parameter ``name`` as a row id; anything that cannot be one is a 404."""
    text = request.match_info[name]
    number = limits.int64_of(text)
    if number is None:
        raise NotFound(f"no {what} {text!r}")
    return number

