"""The request log: one line per HTTP request and one per webhook delivery attempt.

A request line says what an operator asks first: which call, how it ended, how long it
took, which key made it, and the request id to find its other lines::

    GET /v1/transactions?account=***&limit=5 200 4.2 ms key=3f2a9c01ab12 role=admin request=...

A delivery line says which event went to which subscription, at which attempt, how it
ended and when the next attempt is due::

    webhook invoice.paid evt_... to sub_... attempt 2: 503 in 41.0 ms, next attempt at ...

Nothing in them can hold an IBAN, a name, an amount or a key: paths show only the words
of the route table and the ids the gateway issues (numbers, ``sub_``/``evt_`` ids), other
path values are shown as the route's ``{name}``; query values only where the route
declares them as a number or one of a list of words, others as ``***``; a delivery's
error only as its kind (``timed out``, ``refused``, an exception's name), never the text
that may quote a URL. The key is named by its id (names are reused after a revocation).
"""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime
from typing import Any

from gateway.logs import SAYS_REQUEST
from gateway.routes import ROUTES, Principal, Route

logger = logging.getLogger(__name__)

MASK = "***"
_ISSUED_ID = re.compile(r"[0-9]{1,19}|(?:sub|evt)_[0-9a-f]{32}")
_ERROR_KIND = re.compile(r"[A-Za-z][A-Za-z ]{0,39}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]{1,9}")


@functools.cache
def _route_words() -> frozenset[str]:
    """The literal path segments of the route table (read once the routes are declared)."""
    return frozenset(part for declared in ROUTES for part in declared.path.split("/")
                     if part and not part.startswith("{"))


def shown_path(path: str, declared: Route | None, match_info: dict[str, str]) -> str:
    """The request's path as the log shows it: the route's template with the ids we issue
    filled in; without a route, the words of the route table and ``*`` for the rest."""
    if declared is None:
        words = _route_words()
        return "/".join(part if part in words or not part else "*"
                        for part in path.split("/")) or "/"
    shown = declared.path
    for name, value in match_info.items():
        if _ISSUED_ID.fullmatch(value):
            shown = shown.replace("{" + name + "}", value)
    return shown


def shown_query(query: Any, declared: Route | None) -> str:
    """``?name=value&...``: values the route declares as numbers, dates or enumerated
    words, and that are such, shown; every other value masked; names the route does not
    take masked too (they are refused, but a name is text the client chose)."""
    if not query:
        return ""
    safe: dict[str, set[str] | re.Pattern[str]] = {}
    for parameter in (declared.operation.get("parameters", ()) if declared else ()):
        if parameter.get("in") != "query":
            continue
        schema = parameter.get("schema", {})
        if "enum" in schema:
            safe[parameter["name"]] = {str(v) for v in schema["enum"]}
        elif schema.get("type") == "integer":
            safe[parameter["name"]] = _NUMBER
        elif schema.get("format") == "date":
            safe[parameter["name"]] = _DATE
        else:
            safe[parameter["name"]] = set()
    parts = []
    for name, value in query.items():
        if name not in safe:
            parts.append(f"{MASK}={MASK}")
            continue
        allowed = safe[name]
        visible = bool(allowed.fullmatch(value)) if isinstance(allowed, re.Pattern) \
            else value in allowed
        parts.append(f"{name}={value if visible else MASK}")
    return "?" + "&".join(parts)


def request(method: str, path: str, status: int, duration_ms: float,
            principal: Principal | None, rid: str) -> None:
    """One line for one HTTP request, when its answer is known."""
    key = principal.key_id if principal else "-"
    role = principal.role.value if principal else None
    logger.info("%s %s %d %.1f ms key=%s%s request=%s", method, path, status, duration_ms,
                key, f" role={role}" if role else "", rid, extra={
                    "method": method, "path": path, "status": status,
                    "duration_ms": round(duration_ms, 1), "role": role,
                    "key_id": principal.key_id if principal else None, SAYS_REQUEST: True})


def error_kind(error: str | None) -> str | None:
    """What kind of failure an attempt's error text records, without its details."""
    if error is None:
        return None
    kind = error.split(":", 1)[0].strip()
    return kind if _ERROR_KIND.fullmatch(kind) else "error"


def delivery(*, subscription_id: str, event_id: str, event_type: str, attempt: int,
             status_code: int | None, error: str | None, latency_ms: float, outcome: str,
             next_attempt_at: datetime | None) -> None:
    """One line for one attempt at one delivery, once its outcome is settled."""
    kind = error_kind(error)
    answer = str(status_code) if status_code is not None else kind
    if outcome == "succeeded":
        after = "delivered"
    elif next_attempt_at is not None:
        after = f"next attempt at {next_attempt_at.isoformat(timespec='seconds')}"
    else:
        after = "given up"
    level = logging.INFO if outcome == "succeeded" else logging.WARNING
    logger.log(level, "webhook %s %s to %s attempt %d: %s in %.1f ms, %s", event_type,
               event_id, subscription_id, attempt, answer, latency_ms, after, extra={
                   "subscription_id": subscription_id, "event_id": event_id,
                   "event_type": event_type, "attempt": attempt, "status": status_code,
                   "error": kind, "latency_ms": round(latency_ms, 1), "outcome": outcome,
                   "next_attempt_at": next_attempt_at.isoformat()
                   if next_attempt_at else None})
