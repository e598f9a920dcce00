"""HTTP errors as RFC 9457 problem documents, rendered in one place.

::

    ApiError (carries status, a stable ``type`` and a title)
    ├── BadRequest         400  invalid-request      malformed JSON, query or field values
    ├── Unauthenticated    401  unauthenticated      no key, or not a valid one
    ├── Forbidden          403  forbidden            the key's role may not call this route
    ├── NotFound           404  not-found
    ├── Conflict           409  conflict             the request names what another key owns
    │   └── Overpayment    409  overpayment          an allocation would overpay an invoice
    │                                                and the request did not insist
    ├── PayloadTooLarge    413  payload-too-large
    ├── UriTooLong         414  uri-too-long         a request line past the limit
    ├── UnsupportedMedia   415  unsupported-media-type  a body of a kind the route does not take
    ├── Unprocessable      422  unprocessable        a well-formed document we cannot accept
    └── Unavailable        503  unavailable          the database cannot be reached, or
                                                     rolled the request back to break a
                                                     deadlock (Retry-After: 1)

The ``type`` URIs are stable: clients may branch on them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiohttp import web

from gateway.appkeys import SETTINGS

logger = logging.getLogger(__name__)

TYPE_BASE = "https://recon-gateway.dev/problems/"

# What asyncpg raises when the database cannot be reached or goes away mid-request: the
# request changed nothing (its transaction is rolled back) and may be retried.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection broken mid-query
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.ObjectNotInPrerequisiteStateError,
    asyncpg.TooManyConnectionsError,
)
# What the database raises when it rolls a transaction back because of another one at
# the same moment (a deadlock broken, a serialization failure): the request changed
# nothing and, sent again, will most likely succeed.
DATABASE_CONTENTION: tuple[type[BaseException], ...] = (asyncpg.TransactionRollbackError,)
PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def document(self, instance: str) -> dict[str, Any]:
        return {"type": TYPE_BASE + self.slug, "title": self.title, "status": self.status,
                "detail": self.detail, "instance": instance, **self.extra}


class BadRequest(ApiError):
    status, slug, title = 400, "invalid-request", "Invalid request"


class Unauthenticated(ApiError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ApiError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict"


class Overpayment(Conflict):
    slug, title = "overpayment", "The allocation would overpay an invoice"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UriTooLong(ApiError):
    status, slug, title = 414, "uri-too-long", "URI too long"


class UnsupportedMedia(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(ApiError):
    status, slug, title = 422, "unprocessable", "Document cannot be processed"


class Unavailable(ApiError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_response(error: ApiError, request: web.Request, retry_after: int | None = None,
                     allow: Iterable[str] = ()) -> web.Response:
    """The problem document for ``error``, with the headers its status calls for:
    ``WWW-Authenticate`` on a 401, ``Retry-After`` when given, and on a 405 ``Allow``
    listing the methods the path takes (RFC 9110 requires it)."""
    headers = {}
    if allow:
        headers["Allow"] = ", ".join(sorted(set(allow)))
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="recon-gateway"'
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return web.Response(
        status=error.status,
        text=json.dumps(error.document(request.path)),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as a problem document; nothing else reaches the client."""
    try:
        return await handler(request)
    except ApiError as error:
        return problem_response(error, request)
    except web.HTTPRequestEntityTooLarge:
        return problem_response(PayloadTooLarge(
            f"the body is larger than the limit of "
            f"{request.app[SETTINGS].max_body_bytes} bytes"), request)
    except web.HTTPNotFound:
        return problem_response(NotFound(f"no route {request.path}"), request)
    except web.HTTPMethodNotAllowed as exc:
        return problem_response(MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}; "
            f"allowed: {', '.join(sorted(exc.allowed_methods))}"), request,
            allow=exc.allowed_methods)
    except DATABASE_CONTENTION as exc:
        logger.warning("request rolled back by the database: %s", type(exc).__name__)
        return problem_response(Unavailable(
            "the database rolled this request back because of another change at the same "
            "moment; nothing was changed, send it again"), request, retry_after=1)
    except DATABASE_UNAVAILABLE as exc:
        logger.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(Unavailable(
            "the database cannot be reached; nothing was changed, retry later"), request)
    except web.HTTPClientError as exc:
        # aiohttp's own refusals (a malformed body it was asked to decode, and the like):
        # the same document as ours, with aiohttp's reason as the detail.
        refused = BadRequest(exc.reason)
        refused.status = exc.status
        return problem_response(refused, request)
    except web.HTTPException:
        raise
    except Exception:
        logger.exception("unhandled error")
        return problem_response(ApiError("an internal error occurred; it has been logged"),
                                request)
