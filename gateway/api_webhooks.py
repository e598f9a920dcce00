"""Subscriptions, replay, the event feed and the event types: /v1/subscriptions, /v1/events.

CRM keys see and change only the subscriptions they made; admin keys see all of the
tenant's. The signing secret is shown once, when it is made (create, rotate-secret).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import limits
from gateway.appkeys import POOL, SETTINGS, SUBSCRIBER_KEYS
from gateway.body import read_json, read_object
from gateway.events import EVENT_TYPES, document, plaintext, schema
from gateway.openapi import LIMIT_PARAMETER, cursor_parameter, page_of, page_parameters
from gateway.params import CursorKind, SortKey, limit_of, sort_key
from gateway.problems import BadRequest, NotFound, Unprocessable
from gateway.request_schemas import (
    EVENT_ID,
    EVENT_TYPE_NAMES,
    INSTANT,
    SUBSCRIPTION_ID,
    WEBHOOK_URL,
    json_body,
    one_of_present,
    subscriber_key,
)
from gateway.routes import Principal, current_principal, route
from gateway.store import audit, signing_keys
from gateway.store import events as event_store
from gateway.store import subscriptions as store
from gateway.webhook_http import target_problem
from security.roles import Role
from security.webhooks import (
    SubscriberKeyError,
    ed25519_jwk,
    new_secret,
    recipient_key,
    url_problem,
)

SUBSCRIBERS = frozenset({Role.ADMIN, Role.CRM})
# Auditors read everything and change nothing: every subscription, its deliveries and our keys.
SUBSCRIPTION_READERS = SUBSCRIBERS | {Role.AUDITOR}
MAX_OVERLAP = 7 * 86400.0
_SUB = {"content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Subscription"}}}}
_ONE = {"200": {"description": "the subscription", **_SUB}}
SUBSCRIPTIONS = sort_key(id=CursorKind.TEXT)
DELIVERIES = sort_key(created_at=CursorKind.INSTANT, event_id=CursorKind.TEXT)


def _to_subscription(subscription_id: str) -> dict[str, dict[str, str]]:
    """Where a subscription's id in an answer leads (the route table's ``links``)."""
    targets = ("get_subscription", "patch_subscription", "delete_subscription",
               "rotate_secret", "rotate_key", "replay", "list_deliveries", "event_feed")
    return {target: {"subscription_id": subscription_id} for target in targets}


def _owner(principal: Principal) -> str | None:
    return None if principal.role in (Role.ADMIN, Role.AUDITOR) else principal.key_id


def _subscription_id(request: web.Request) -> str:
    return request.match_info["subscription_id"]


def _event_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadRequest("event_types must be a non-empty list of event type names, or [\"*\"]")
    unknown = sorted(set(value) - set(EVENT_TYPES) - {"*"})
    if unknown:
        raise Unprocessable(f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
    return sorted(set(value))


def _url(request: web.Request, value: Any, name: str) -> str:
    """The URL in field ``name``, checked as far as it can be without a lookup."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string URL", field=name)
    problem = url_problem(value, allow_private=request.app[SETTINGS].allow_private_webhooks)
    if problem:
        raise BadRequest(f"{name} {problem}", field=name)
    return value


async def _public_target(request: web.Request, url: str, name: str) -> None:
    """Refuse a URL whose host resolves to a non-public address, or not at all: the check
    each delivery makes (``target_problem``), made before anything is stored. It runs after
    the body's other checks, so a mistake there is reported without waiting on DNS."""
    problem = await target_problem(url, allow_private=request.app[SETTINGS].allow_private_webhooks)
    if problem:
        raise BadRequest(f"{name} {problem}", field=name)


async def _key(request: web.Request, body: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                      str | None, str]:
    """(public_jwk, jwks_url, kid) from a body, checked: the key can be encrypted to."""
    jwk, jwks_url = body.get("public_jwk"), body.get("jwks_url")
    if (jwk is None) == (jwks_url is None):
        raise BadRequest("send either public_jwk (a JWK) or jwks_url with kid")
    try:
        if jwk is not None:
            return jwk, None, recipient_key(jwk).kid
        url = _url(request, jwks_url, "jwks_url")
        kid = body.get("kid")
        if not isinstance(kid, str) or not kid:
            raise BadRequest("jwks_url needs the kid of the key to encrypt to")
        await _public_target(request, url, "jwks_url")
        await request.app[SUBSCRIBER_KEYS].key(public_jwk=None, jwks_url=url, kid=kid,
                                               fresh=True)
        return None, url, kid
    except SubscriberKeyError as exc:
        raise Unprocessable(str(exc)) from None


def _state(row: Any) -> dict[str, Any] | None:
    """A subscription as the audit trail records it: never a secret, and its URL (which
    may carry a token) only as a reference."""
    if row is None:
        return None
    return {"url": audit.reference(row["url"]), "event_types": list(row["event_types"]),
            "status": row["status"], "kid": row["kid"],
            "jwks_url": audit.reference(row["jwks_url"])}


async def _audit(conn: Any, principal: Principal, action: str, subscription_id: str,
                 before: Any, after: Any) -> None:
    await audit.append(conn, principal.tenant, actor=principal.actor(), action=action,
                       object_type="subscription", object_id=subscription_id,
                       before=before, after=after)


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


@route("POST", "/v1/subscriptions", roles=SUBSCRIBERS,
       summary="Subscribe to events; the answer holds the signing secret, shown only once",
       requestBody=json_body({**subscriber_key(url=WEBHOOK_URL, event_types=EVENT_TYPE_NAMES),
                              "required": ["event_types"]}),
       links=_to_subscription("$response.body#/id"),
       responses={"201": {"description": "the subscription and its secret", "content": {
           "application/json": {"schema": {"$ref": "#/components/schemas/NewSubscription"}}}}},
       errors=("400", "422"))
async def create_subscription(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await _object_body(request)
    url = None if body.get("url") is None else _url(request, body["url"], "url")
    event_types = _event_types(body.get("event_types"))
    jwk, jwks_url, kid = await _key(request, body)
    if url is not None:
        await _public_target(request, url, "url")
    secret = new_secret()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await store.create(conn, principal.tenant, owner=principal.key_id, url=url,
                                 event_types=event_types, public_jwk=jwk, jwks_url=jwks_url,
                                 kid=kid, secret=secret)
        await _audit(conn, principal, "subscription.created", row["subscription_id"], None,
                     {**(_state(row) or {}), "secret": "set"})
    return web.json_response({**store.public(row), "secret": secret}, status=201)


@route("GET", "/v1/subscriptions", roles=SUBSCRIPTION_READERS, summary="The subscriptions",
       parameters=page_parameters(SUBSCRIPTIONS),
       links=_to_subscription("$response.body#/items/0/id"),
       responses={"200": {"description": "a page of subscriptions", "content": {
           "application/json": {"schema": page_of("Subscription")}}}}, errors=("400",))
async def list_subscriptions(request: web.Request) -> web.Response:
    principal = current_principal(request)
    limit, after = limit_of(request), SUBSCRIPTIONS.read(request)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_page(conn, principal.tenant, owner=_owner(principal),
                                     after=after[0] if after else None, limit=limit + 1)
    return web.json_response(SUBSCRIPTIONS.page(rows, limit))


async def _owned(conn: Any, principal: Principal, subscription_id: str) -> Any:
    """The caller's subscription (any of the tenant's for an admin), or 404."""
    row = await store.get(conn, principal.tenant, subscription_id, owner=_owner(principal))
    if row is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return row


async def _found(request: web.Request, row: Any) -> web.Response:
    if row is None:
        raise NotFound(f"no subscription {_subscription_id(request)!r}")
    return web.json_response(store.public(row))


@route("GET", "/v1/subscriptions/{subscription_id}", roles=SUBSCRIPTION_READERS,
       summary="One subscription", responses=_ONE, errors=("404",))
async def get_subscription(request: web.Request) -> web.Response:
    principal = current_principal(request)
    async with request.app[POOL].acquire() as conn:
        row = await store.get(conn, principal.tenant, _subscription_id(request),
                              owner=_owner(principal))
    return await _found(request, row)


@route("PATCH", "/v1/subscriptions/{subscription_id}", roles=SUBSCRIBERS,
       summary="Change the URL or event types, or pause (status paused) and resume "
               "(status active; a disabled subscription too, delivering its backlog)",
       requestBody=json_body({"type": "object", "additionalProperties": False, "properties": {
           "url": WEBHOOK_URL, "event_types": EVENT_TYPE_NAMES,
           "status": {"enum": ["active", "paused", None],
                      "description": "null: unchanged"}}}),
       responses=_ONE, errors=("400", "404", "422"))
async def patch_subscription(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await _object_body(request)
    unknown = sorted(set(body) - {"url", "event_types", "status"})
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; allowed: url, event_types, status")
    status = body.get("status")
    if status not in (None, "active", "paused"):
        raise BadRequest("status must be active or paused")
    set_url = "url" in body
    url = None if body.get("url") is None else _url(request, body["url"], "url")
    event_types = _event_types(body["event_types"]) if "event_types" in body else None
    if url is not None:
        await _public_target(request, url, "url")
    owner, tenant, sid = _owner(principal), principal.tenant, _subscription_id(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        before = _state(await store.get(conn, tenant, sid, owner=owner))
        row = await store.update(conn, tenant, sid, owner=owner, url=url, set_url=set_url,
                                 event_types=event_types)
        if row is not None and status == "paused":
            row = await store.pause(conn, tenant, sid, owner=owner)
        elif row is not None and status == "active":
            row = await store.resume(conn, tenant, sid, owner=owner)
        after = _state(row)
        if row is not None and after != before:
            await _audit(conn, principal, "subscription.updated", sid, before, after)
    return await _found(request, row)


@route("DELETE", "/v1/subscriptions/{subscription_id}", roles=SUBSCRIBERS,
       summary="Delete a subscription and its pending deliveries",
       responses={"204": {"description": "deleted"}}, errors=("404",))
async def delete_subscription(request: web.Request) -> web.Response:
    principal = current_principal(request)
    sid = _subscription_id(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        before = _state(await store.get(conn, principal.tenant, sid, owner=_owner(principal)))
        deleted = await store.delete(conn, principal.tenant, sid, owner=_owner(principal))
        if deleted:
            await _audit(conn, principal, "subscription.deleted", sid, before, None)
    if not deleted:
        raise NotFound(f"no subscription {_subscription_id(request)!r}")
    return web.Response(status=204)


@route("POST", "/v1/subscriptions/{subscription_id}/rotate-secret", roles=SUBSCRIBERS,
       summary="A new signing secret (shown once); the old one keeps signing beside it for "
               "overlap_seconds (default 86400)",
       requestBody=json_body({"type": "object", "additionalProperties": False, "properties": {
           "overlap_seconds": {"type": "number", "minimum": 0, "maximum": MAX_OVERLAP}}},
           required=False),
       responses={"200": {"description": "the subscription and its new secret", "content": {
           "application/json": {"schema": {"$ref": "#/components/schemas/NewSubscription"}}}}},
       errors=("400", "404"))
async def rotate_secret(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await read_object(request, fields=("overlap_seconds",), optional=True)
    overlap = body.get("overlap_seconds", 86400)
    if not isinstance(overlap, int | float) or isinstance(overlap, bool) \
            or not 0 <= overlap <= MAX_OVERLAP:
        raise BadRequest(f"overlap_seconds must be a number from 0 to {MAX_OVERLAP:.0f}")
    secret = new_secret()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await store.rotate_secret(conn, principal.tenant, _subscription_id(request),
                                        owner=_owner(principal), secret=secret,
                                        overlap_seconds=float(overlap))
        if row is not None:
            await _audit(conn, principal, "subscription.secret_rotated",
                         row["subscription_id"], None,
                         {"overlap_seconds": int(overlap) if float(overlap).is_integer()
                          else str(overlap)})
    if row is None:
        raise NotFound(f"no subscription {_subscription_id(request)!r}")
    return web.json_response({**store.public(row), "secret": secret})


@route("POST", "/v1/subscriptions/{subscription_id}/rotate-key", roles=SUBSCRIBERS,
       summary="Encrypt to a new key from now on (retries of older events too)",
       requestBody=json_body(subscriber_key()),
       responses=_ONE, errors=("400", "404", "422"))
async def rotate_key(request: web.Request) -> web.Response:
    principal = current_principal(request)
    jwk, jwks_url, kid = await _key(request, await _object_body(request))
    sid = _subscription_id(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        before = _state(await store.get(conn, principal.tenant, sid, owner=_owner(principal)))
        row = await store.set_key(conn, principal.tenant, sid, owner=_owner(principal),
                                  public_jwk=jwk, jwks_url=jwks_url, kid=kid)
        if row is not None:
            await _audit(conn, principal, "subscription.key_rotated", sid, before,
                         _state(row))
    return await _found(request, row)


@route("POST", "/v1/subscriptions/{subscription_id}/replay", roles=SUBSCRIBERS,
       summary="Deliver again one event (event_id) or all since a time (since), with the "
               "same webhook-id",
       requestBody=json_body(one_of_present("event_id", "since", event_id=EVENT_ID,
                                            since=INSTANT)),
       responses={"202": {"description": "how many deliveries were queued", "content": {
           "application/json": {"schema": {"type": "object", "required": ["queued"],
                                           "properties": {"queued": {"type": "integer"}}}}}}},
       errors=("400", "404", "422"))
async def replay(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await _object_body(request)
    event_id, since_text = body.get("event_id"), body.get("since")
    if (event_id is None) == (since_text is None):
        raise BadRequest("send either event_id or since (an ISO 8601 time with its offset)")
    since = None
    if since_text is not None:
        since = limits.instant_of(since_text) if isinstance(since_text, str) else None
        if since is None:
            raise BadRequest(f"since {since_text!r} is not a time with its UTC offset, "
                             f"e.g. 2026-11-01T00:00:00Z")
    elif not isinstance(event_id, str):
        raise BadRequest("event_id must be a string")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await _owned(conn, principal, _subscription_id(request))
        if row["url"] is None:
            raise Unprocessable("this subscription has no URL; read GET /v1/events instead")
        queued = await store.replay(conn, principal.tenant, row["subscription_id"],
                                    event_id=event_id, since=since)
        if queued:
            await _audit(conn, principal, "subscription.replayed", row["subscription_id"],
                         None, {"event_id": event_id, "since": since, "queued": queued})
    if event_id is not None and queued == 0:
        raise NotFound(f"no event {event_id!r} of this subscription's types")
    return web.json_response({"queued": queued}, status=202)


@route("GET", "/v1/subscriptions/{subscription_id}/deliveries", roles=SUBSCRIPTION_READERS,
       summary="The subscription's deliveries and their state, oldest first",
       parameters=page_parameters(DELIVERIES) + [{"name": "status", "in": "query", "schema": {
           "enum": ["pending", "succeeded", "failed"]}}],
       links={"list_attempts": {"subscription_id": "$request.path.subscription_id",
                                "event_id": "$response.body#/items/0/event_id"},
              "replay": {"subscription_id": "$request.path.subscription_id",
                         "requestBody": {"event_id": "$response.body#/items/0/event_id"}}},
       responses={"200": {"description": "a page of deliveries", "content": {
           "application/json": {"schema": page_of("Delivery")}}}}, errors=("400", "404"))
async def list_deliveries(request: web.Request) -> web.Response:
    principal = current_principal(request)
    limit = limit_of(request)
    after = DELIVERIES.read(request)
    status = request.query.get("status")
    if status not in (None, "pending", "succeeded", "failed"):
        raise BadRequest("status must be pending, succeeded or failed")
    async with request.app[POOL].acquire() as conn:
        row = await _owned(conn, principal, _subscription_id(request))
        rows = await store.deliveries_page(conn, principal.tenant, row["subscription_id"],
                                      status=status, after=after, limit=limit + 1)
    return web.json_response(DELIVERIES.page(rows, limit))


@route("GET", "/v1/subscriptions/{subscription_id}/deliveries/{event_id}/attempts",
       roles=SUBSCRIPTION_READERS,
       summary="Every attempt to deliver one event: time, answer, latency",
       responses={"200": {"description": "the attempts, oldest first"}}, errors=("404",))
async def list_attempts(request: web.Request) -> web.Response:
    principal = current_principal(request)
    async with request.app[POOL].acquire() as conn:
        row = await _owned(conn, principal, _subscription_id(request))
        items = await store.attempts(conn, principal.tenant, row["subscription_id"],
                                     request.match_info["event_id"])
    return web.json_response({"items": items})


# Declared here, so the route table refuses any other parameter (``after=`` included, the
# feed's old name for its cursor): read as absent, it would restart the feed from the start.
def _legacy_position(value: list[Any]) -> list[Any] | None:
    """A feed cursor given out before the pattern form: (transaction id, event_pk), the
    transaction id as a number or (before that) as a string of digits."""
    txid, event_pk = value
    if isinstance(txid, str) and txid.isascii() and txid.isdigit() and len(txid) <= 19:
        txid = int(txid)
    if not all(type(v) is int and 0 <= v <= event_store.MAX_POSITION for v in (txid, event_pk)):
        return None
    return [txid, event_pk]


FEED = SortKey(("position_txid", "position_pk"), (CursorKind.INT, CursorKind.INT),
               legacy=_legacy_position)
_FEED_PARAMETERS: list[dict[str, Any]] = [
    {"name": "subscription_id", "in": "query", "required": True, "schema": SUBSCRIPTION_ID},
    cursor_parameter(FEED, "the cursor of the last event read (an item's cursor, or "
                           "next_cursor); empty or absent: from the first event"),
    LIMIT_PARAMETER]


@route("GET", "/v1/events", roles=SUBSCRIBERS,
       summary="The event feed of a subscription, for CRMs that poll: the same events, "
               "encrypted the same way, in a stable order",
       parameters=_FEED_PARAMETERS,
       links={"replay": {"subscription_id": "$request.query.subscription_id",
                         "requestBody": {"event_id": "$response.body#/items/0/id"}}},
       responses={"200": {"description": "events after the cursor", "content": {
           "application/json": {"schema": {"$ref": "#/components/schemas/EventFeed"}}}}},
       errors=("400", "404", "422"))
async def event_feed(request: web.Request) -> web.Response:
    principal = current_principal(request)
    limit = limit_of(request)
    sid = request.query.get("subscription_id")
    if not sid:
        raise BadRequest("subscription_id is required: the events are encrypted to its key")
    value = FEED.read(request)
    after = (value[0], value[1]) if value else None
    async with request.app[POOL].acquire() as conn:
        row = await _owned(conn, principal, sid)
        rows = await event_store.feed(conn, principal.tenant, row["subscription_id"],
                                      after=after, limit=limit)
    try:
        key = await request.app[SUBSCRIBER_KEYS].key(
            public_jwk=row["public_jwk"], jwks_url=row["jwks_url"], kid=row["kid"])
    except SubscriberKeyError as exc:
        raise Unprocessable(f"cannot encrypt to the subscription's key: {exc}") from None
    items = []
    for event in rows:
        cursor = FEED.after(event)
        body = document(event)
        items.append({"id": body["id"], "cursor": cursor,
                      "jwe": key.encrypt(plaintext(body))})
    last = items[-1]["cursor"] if items else request.query.get("cursor")
    return web.json_response({"items": items, "next_cursor": last})


@route("GET", "/v1/event-types", roles=frozenset(Role),
       summary="Every event type with its version and JSON Schema",
       responses={"200": {"description": "the event types"}})
async def list_event_types(request: web.Request) -> web.Response:
    return web.json_response({"items": [
        {"type": t.name, "version": t.version, "summary": t.summary, "schema": schema(t)}
        for t in EVENT_TYPES.values()]})


@route("GET", "/v1/webhook-keys", roles=SUBSCRIPTION_READERS,
       summary="Our public ed25519 keys (JWKS) for the optional v1a webhook signature",
       responses={"200": {"description": "a JWK set"}})
async def webhook_keys(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        keys = await signing_keys.published(conn, current_principal(request).tenant)
    return web.json_response({"keys": [ed25519_jwk(kid, public) for kid, public in keys]})

