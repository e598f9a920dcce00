"""Where webhooks may go: one address check (``webhook_http.target_problem``), made when a
subscription's URL or JWKS URL is given and again at every delivery.

Every form a resolver reads as a loopback or private address is refused with a 400 that
names the field, and nothing is stored; the dispatcher refuses the same forms by the same
check. Names are resolved for real (the machine's own host name and ``.invalid`` need no
network).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import asyncpg
import pytest

from gateway import outbox
from gateway.webhook_http import target_problem
from security.addresses import address_problem
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.gateway.webhook_support import FAST, Receiver, ec_key, public

PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address: no lookup needed

HOSTS = ["2130706433", "0x7f000001", "127.1", "0", "017700000001", "0x7f.0.0.1",
         "127.0.0.1.", "10.1", "100.64.0.1", "169.254.169.254", "[::ffff:127.0.0.1]",
         "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
         "[fe80::1%25eth0]", "[::]", "[ff02::1]", "localhost", "LOCALHOST.",
         "nothing.invalid"]


def own_name() -> list[str]:
    """The machine's host name when it resolves (to itself: never a public address here)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    except OSError:
        return []
    return [name] if all(address_problem(str(a)) for a in addresses) else []


# The address checks do not depend on the database server: the embedded one is enough.
EMBEDDED_ONLY = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)


async def api_without_private(database_url: str, aiohttp_client: AiohttpClient) -> Api:
    return await make_api(database_url, aiohttp_client,
                          **{**FAST, "allow_private_webhooks": False})


@EMBEDDED_ONLY
async def test_every_form_of_a_private_address_is_refused_at_creation_by_name(
        migrated_database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await api_without_private(migrated_database_url, aiohttp_client)
    key = public(ec_key())
    made = await api.client.post("/v1/subscriptions", headers=api.auth(Role.CRM), json={
        "url": PUBLIC_URL, "event_types": ["*"], "public_jwk": key})
    assert made.status == 201, await made.text()
    path = f"/v1/subscriptions/{(await made.json())['id']}"
    for host in HOSTS + own_name():
        url = f"https://{host}/hooks"
        attempts: list[tuple[str, str, dict[str, Any], str]] = [
            ("POST", "/v1/subscriptions", {"url": url, "event_types": ["*"],
                                           "public_jwk": key}, "url"),
            ("PATCH", path, {"url": url}, "url"),
            ("POST", "/v1/subscriptions", {"url": None, "event_types": ["*"], "jwks_url": url,
                                           "kid": "k1"}, "jwks_url"),
            ("POST", path + "/rotate-key", {"jwks_url": url, "kid": "k1"}, "jwks_url")]
        for method, where, body, field in attempts:
            response = await api.client.request(method, where, json=body,
                                                headers=api.auth(Role.CRM))
            assert response.status == 400, (host, method, where, await response.text())
            assert response.content_type == "application/problem+json"
            problem = await response.json()
            assert problem["field"] == field, (host, problem)
            assert problem["detail"].startswith(f"{field} "), (host, problem)
            assert "not public" in problem["detail"] or "resolve" in problem["detail"], problem
    listed = await (await api.client.get("/v1/subscriptions", headers=api.auth(Role.CRM))).json()
    assert [s["url"] for s in listed["items"]] == [PUBLIC_URL]  # nothing else stored or changed


@EMBEDDED_ONLY
async def test_a_name_that_does_not_resolve_is_refused_with_a_clear_400(
        migrated_database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await api_without_private(migrated_database_url, aiohttp_client)
    response = await api.client.post("/v1/subscriptions", headers=api.auth(Role.CRM), json={
        "url": "https://crm.nothing.invalid/hooks", "event_types": ["*"],
        "public_jwk": public(ec_key())})
    assert response.status == 400
    problem = await response.json()
    assert problem["detail"] == ("url host crm.nothing.invalid does not resolve to any "
                                 "address"), problem


@EMBEDDED_ONLY
async def test_allowing_private_webhooks_lifts_the_address_check(
        migrated_database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await make_api(migrated_database_url, aiohttp_client, **FAST)
    for host in ("127.1", "2130706433", "[::ffff:127.0.0.1]", "localhost"):
        response = await api.client.post("/v1/subscriptions", headers=api.auth(Role.CRM), json={
            "url": f"http://{host}:9/hooks", "event_types": ["*"],
            "public_jwk": public(ec_key())})
        assert response.status == 201, (host, await response.text())


@pytest.mark.parametrize("host", HOSTS)
async def test_the_check_is_one_function_for_every_form(host: str) -> None:
    problem = await target_problem(f"https://{host}/h", allow_private=False)
    assert problem is not None and ("not public" in problem or "resolve" in problem), problem
    assert await target_problem(f"http://{host}/h", allow_private=True) is None


@EMBEDDED_ONLY
async def test_the_dispatcher_refuses_the_same_forms_with_the_same_check(
        migrated_database_url: str, aiohttp_client: AiohttpClient) -> None:
    """Subscribed to a public address, then (as if the row were changed behind the API's
    back) pointed at loopback forms of the receiver's port: the dispatcher sends nothing,
    and each attempt records the check's own words."""
    receiver = Receiver(keys=[ec_key()])
    await receiver.start()
    try:
        api = await api_without_private(migrated_database_url, aiohttp_client)
        made = await api.client.post("/v1/subscriptions", headers=api.auth(Role.CRM), json={
            "url": PUBLIC_URL, "event_types": ["*"], "public_jwk": public(receiver.keys[0])})
        assert made.status == 201
        subscription = (await made.json())["id"]
        port = receiver.url.split(":")[2].split("/")[0]
        for n, host in enumerate(["2130706433", "127.1", "[::ffff:127.0.0.1]",
                                  "nothing.invalid"]):
            url = f"https://{host}:{port}/hooks"
            conn = await asyncpg.connect(migrated_database_url)
            try:
                await conn.execute("UPDATE subscriptions SET url = $1", url)
                async with conn.transaction():  # a bank event: every subscription gets it
                    await outbox.emit(conn, "default", [outbox.NewEvent(
                        "payment.received", f"account:{n}", {"entry_id": f"T-{n}"})])
            finally:
                await conn.close()
            expected = await target_problem(url, allow_private=False)
            assert expected is not None
            errors = await _errors_until(api, subscription, f"refused: {expected}")
            assert f"refused: {expected}" in errors, errors
        assert receiver.deliveries == []
    finally:
        await receiver.stop()


async def _errors_until(api: Api, subscription: str, wanted: str) -> list[str]:
    """The attempts' errors of the subscription's deliveries, once one of them is ``wanted``."""
    errors: list[str] = []

    async def seen() -> bool:
        nonlocal errors
        response = await api.client.get(f"/v1/subscriptions/{subscription}/deliveries",
                                        headers=api.auth(Role.CRM), params={"limit": "1000"})
        items = (await response.json())["items"]
        errors = [item["last_error"] for item in items if item["last_error"]]
        return wanted in errors

    deadline = asyncio.get_running_loop().time() + 60.0
    while not await seen():
        assert asyncio.get_running_loop().time() < deadline, (wanted, errors)
        await asyncio.sleep(0.05)  # polling interval
    return errors
