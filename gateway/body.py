"""Request bodies: JSON read once, the same way, by every route that takes it.

A body is refused with a 400 problem naming what is wrong before any handler sees it:
not JSON, not declared as JSON, nested deeper than ``limits.MAX_JSON_DEPTH``, a string
holding NUL or a lone surrogate or longer than ``limits.MAX_JSON_STRING``, a number that
is not finite or does not fit in 64 bits. Object bodies also refuse fields the route does not
take, so a misspelt field is an error rather than a silently ignored wish.

Numbers are read as JSON Schema reads them: ``107.0`` and ``1.07e2`` are the whole number
107 (an int, read exactly through ``Decimal``, never through a float), so a field the
OpenAPI document declares ``integer`` takes every spelling of a whole number; a number with
a fraction stays a float, which amounts refuse (floats lose cents).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway import limits
from gateway.problems import BadRequest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> int | float:
    """A JSON number written with a fraction or an exponent: an int when its value is
    whole (below 10^19, beyond which the 64-bit check refuses it anyway), else a float."""
    value = Decimal(text)
    if value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value():
        return int(value)
    return float(text)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The request's JSON body; with ``optional`` an empty body is None."""
    body = await request.read()
    if optional and not body.strip():
        return None
    if request.content_type != "application/json":
        raise BadRequest(f"send JSON with Content-Type application/json, "
                         f"not {request.content_type or 'nothing'}")
    try:
        document = json.loads(body, parse_constant=_no_constants, parse_float=_number)
    except RecursionError:
        raise BadRequest(f"the body is not acceptable JSON: $: nested deeper than "
                         f"{limits.MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    problem = limits.json_problem(document)
    if problem:
        raise BadRequest(f"the body is not acceptable JSON: {problem}")
    return document


async def read_object(request: web.Request, *, fields: Collection[str],
                      optional: bool = False) -> dict[str, Any]:
    """A JSON object body with only ``fields``; with ``optional`` no body at all is ``{}``."""
    if optional and not (await request.read()).strip():
        return {}
    document = await read_json(request)
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object"
                         f"{' with ' + ', '.join(sorted(fields)) if fields else ''}")
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; allowed: {', '.join(sorted(fields))}"
                         if fields else f"unknown fields {unknown}; send no body")
    return document
