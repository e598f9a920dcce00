"""The HTTP API on a real aiohttp server over loopback, with a real database behind it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jsonschema
import pytest

from gateway.store import api_keys
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, make_api
from tests.paths import DEMO_CAMT, DEMO_MT940

CAMT = DEMO_CAMT.read_bytes()
MT940 = DEMO_MT940.read_bytes()

PUBLIC_JWK = {"kty": "EC", "crv": "P-256", "kid": "crm-1",  # a public key, nothing secret
              "x": "mzSztSl4D9CHG5Gy395qau90g1sIqEPIDICMJjMNdPI",
              "y": "t8RiqUblfj_kVe8OeMA4T-anhWBZi3YWyRkBkF7JEmE"}

INVOICE = {"invoice_id": "INV-1", "customer_id": "C1", "customer_name": "Globex Corporation",
           "currency": "EUR", "amount": "1500.00", "open_amount": "1500.00",
           "issue_date": "2026-11-01", "due_date": "2026-11-30", "reference": "INV-2026-1187"}


async def stored(api: Api, table: str) -> int:
    conn = await asyncpg.connect(api.database_url)
    try:
        count: int = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        return count
    finally:
        await conn.close()


async def test_import_returns_counts_and_reimport_adds_nothing(api: Api) -> None:
    first = await api.client.post("/v1/statements?filename=nordbank.xml", data=CAMT,
                                  headers=api.auth(Role.TREASURY))
    assert first.status == 201
    body = await first.json()
    assert (body["entries_new"], body["entries_known"], body["format"]) == (3, 0, "camt.053")
    assert body["statements"][0]["flags"] == []
    again = await api.client.post("/v1/statements", data=CAMT, headers=api.auth(Role.ADMIN))
    assert again.status == 201
    assert (await again.json())["entries_known"] == 3
    assert await stored(api, "transactions") == 3


async def test_a_malformed_statement_is_a_422_problem_and_stores_nothing(api: Api) -> None:
    response = await api.client.post("/v1/statements?filename=cut.xml", data=CAMT[:900],
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"].endswith("/unprocessable")
    assert problem["source"] == "cut.xml"
    assert await stored(api, "raw_documents") == 0
    # The service keeps serving.
    ok = await api.client.post("/v1/statements", data=MT940, headers=api.auth(Role.TREASURY))
    assert ok.status == 201


async def test_an_oversized_body_is_413(api: Api) -> None:
    response = await api.client.post("/v1/statements", data=b"x" * 300_000,
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 413
    assert (await response.json())["type"].endswith("/payload-too-large")


async def test_a_statement_has_its_own_limit_and_is_never_read_whole(
        migrated_database_url: str, aiohttp_client: AiohttpClient) -> None:
    """A statement larger than the limit of JSON bodies is taken (it streams to a file);
    one over its own limit is 413 and stores nothing."""
    api = await make_api(migrated_database_url, aiohttp_client, max_body_bytes=1_000,
                         max_statement_bytes=len(CAMT) + 10)
    assert len(CAMT) > 1_000
    response = await api.client.post("/v1/statements", data=CAMT,
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 201, await response.text()
    too_big = await api.client.post("/v1/statements", data=CAMT + b" " * 100,
                                    headers=api.auth(Role.TREASURY))
    assert too_big.status == 413
    assert "max_statement_bytes" in (await too_big.json())["detail"]
    documents = await (await api.client.get("/v1/statements",
                                            headers=api.auth(Role.TREASURY))).json()
    assert len(documents["items"]) == 1


async def test_invoices_upsert_is_idempotent_and_counts(api: Api) -> None:
    crm = api.auth(Role.CRM)
    counts = ("received", "created", "updated", "unchanged")
    first = await (await api.client.put("/v1/invoices", json=[INVOICE], headers=crm)).json()
    assert [first[k] for k in counts] == [1, 1, 0, 0]
    same = await (await api.client.put("/v1/invoices", json=[INVOICE], headers=crm)).json()
    assert [same[k] for k in counts] == [1, 0, 0, 1]
    assert same["reconciliation"] is None  # nothing changed: nothing to reconcile
    changed = await api.client.put("/v1/invoices", json=[{**INVOICE, "open_amount": "500.00"}],
                                   headers=crm)
    assert (await changed.json())["updated"] == 1
    got = await (await api.client.get("/v1/invoices/INV-1", headers=crm)).json()
    assert (got["open_amount"], got["status"]) == ("500.00", "partially_paid")


async def test_cancel_and_open_amount_by_patch(api: Api) -> None:
    crm = api.auth(Role.CRM)
    await api.client.put("/v1/invoices", json=[INVOICE], headers=crm)
    paid = await api.client.patch("/v1/invoices/INV-1", json={"open_amount": "0"}, headers=crm)
    assert (await paid.json())["status"] == "paid"
    cancelled = await api.client.patch("/v1/invoices/INV-1", json={"status": "cancelled"},
                                       headers=crm)
    assert (await cancelled.json())["status"] == "cancelled"
    too_much = await api.client.patch("/v1/invoices/INV-1", json={"open_amount": "9999"},
                                      headers=crm)
    assert too_much.status == 422


@pytest.mark.parametrize(("change", "field"), [
    ({"currency": "EURO"}, "currency"),
    ({"amount": "-5.00"}, "amount"),
    ({"amount": 12.5}, "amount"),
    ({"issue_date": "01/11/2026"}, "issue_date"),
    ({"amount": "1.005"}, "amount"),
    ({"invoice_id": ""}, "invoice_id"),
])
async def test_bad_invoices_are_refused_whole(api: Api, change: dict[str, Any],
                                              field: str) -> None:
    good = {**INVOICE, "invoice_id": "INV-2"}
    response = await api.client.put("/v1/invoices", json=[good, {**INVOICE, **change}],
                                    headers=api.auth(Role.CRM))
    assert response.status == 422
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["errors"][0]["record"] == 2
    assert await stored(api, "invoices") == 0


async def test_invalid_json_is_400(api: Api) -> None:
    response = await api.client.put("/v1/invoices", data=b"[{", headers={
        **api.auth(Role.CRM), "Content-Type": "application/json"})
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["detail"]


async def test_sql_looking_strings_are_stored_as_text(api: Api) -> None:
    sly = {**INVOICE, "invoice_id": "X'; DROP TABLE invoices; --",
           "reference": "1 OR 1=1"}
    response = await api.client.put("/v1/invoices", json=[sly], headers=api.auth(Role.CRM))
    assert response.status == 200
    listed = await (await api.client.get("/v1/invoices", headers=api.auth(Role.CRM))).json()
    assert [i["invoice_id"] for i in listed["items"]] == [sly["invoice_id"]]


async def test_lists_paginate_with_cursors_and_filter(api: Api) -> None:
    crm = api.auth(Role.CRM)
    batch = [{**INVOICE, "invoice_id": f"INV-{n:03}"} for n in range(25)]
    await api.client.put("/v1/invoices", json=batch, headers=crm)
    seen: list[str] = []
    url = "/v1/invoices?limit=10"
    while True:
        page = await (await api.client.get(url, headers=crm)).json()
        seen += [i["invoice_id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/v1/invoices?limit=10&cursor={page['next_cursor']}"
    assert seen == [b["invoice_id"] for b in batch]
    bad = await api.client.get("/v1/invoices?cursor=garbage!", headers=crm)
    assert bad.status == 400


async def test_transactions_filter_by_account_date_and_status(api: Api) -> None:
    treasury = api.auth(Role.TREASURY)
    await api.client.post("/v1/statements", data=CAMT, headers=treasury)
    await api.client.post("/v1/statements", data=MT940, headers=treasury)
    everything = await (await api.client.get("/v1/transactions", headers=treasury)).json()
    assert len(everything["items"]) == 6
    pending = await (await api.client.get(
        "/v1/transactions?account=NL91ABNA0417164300&status=pending", headers=treasury)).json()
    assert [t["amount"] for t in pending["items"]] == ["250.00"]
    unknown = await api.client.get("/v1/transactions?account=XX00UNKNOWN", headers=treasury)
    assert unknown.status == 404
    bad_date = await api.client.get("/v1/transactions?from=2026-13-01", headers=treasury)
    assert bad_date.status == 400


async def test_health_readiness_metrics_and_request_ids(api: Api) -> None:
    assert (await api.client.get("/healthz")).status == 200
    ready = await api.client.get("/readyz", headers={"X-Request-ID": "abc-123"})
    assert ready.status == 200
    assert ready.headers["X-Request-ID"] == "abc-123"
    metrics = await api.client.get("/metrics", headers=api.auth(Role.ADMIN))
    text = await metrics.text()
    assert 'recon_http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in text


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    missing = await api.client.get("/v1/nothing", headers=api.auth(Role.ADMIN))
    assert (missing.status, missing.content_type) == (404, "application/problem+json")
    wrong = await api.client.delete("/v1/invoices", headers=api.auth(Role.ADMIN))
    assert wrong.status == 405


async def test_a_revoked_key_is_refused(api: Api) -> None:
    conn = await asyncpg.connect(api.database_url)
    try:
        await api_keys.revoke(conn, "default", "test-treasury")
    finally:
        await conn.close()
    response = await api.client.get("/v1/statements", headers=api.auth(Role.TREASURY))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", "1", path)


async def test_every_route_is_checked_against_every_role(api: Api) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url = _concrete(path)
            anonymous = await api.client.request(method.upper(), url)
            if operation.get("security") == []:
                assert anonymous.status == 200, (method, path)
                continue
            assert anonymous.status == 401, (method, path)
            for role in Role:
                response = await api.client.request(method.upper(), url,
                                                    headers=api.auth(role))
                if role.value in operation["x-roles"]:
                    assert response.status not in (401, 403), (method, path, role)
                    assert response.status < 500, (method, path, role, await response.text())
                else:
                    assert response.status == 403, (method, path, role)
                checked += 1
    assert checked >= 5 * 10


async def test_the_openapi_document_lists_exactly_the_served_routes(api: Api) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in api.client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert documented == served


async def test_readiness_and_imports_report_a_lost_database(api: Api) -> None:
    parts = urlsplit(api.database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1", name)
        ready = await api.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["type"].endswith("/unavailable")
        failed = await api.client.post("/v1/statements", data=CAMT,
                                       headers=api.auth(Role.TREASURY))
        assert failed.status == 503  # not even the key can be checked without a database
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await api.client.get("/readyz")).status == 200
        retried = await api.client.post("/v1/statements", data=CAMT,
                                        headers=api.auth(Role.TREASURY))
        assert retried.status == 201
        assert (await retried.json())["entries_new"] == 3
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_responses_match_the_schemas_the_openapi_document_gives(api: Api) -> None:
    admin = api.auth(Role.ADMIN)
    await api.client.post("/v1/statements", data=CAMT, headers=admin)
    await api.client.put("/v1/invoices", json=[INVOICE], headers=admin)
    await api.client.put("/v1/customers", json=[{"customer_id": "C1", "name": "Globex",
                                                 "ibans": [], "aliases": ["GLX"]}],
                         headers=admin)
    await api.settled()  # the workers' proposals, for /v1/matches
    conn = await asyncpg.connect(api.database_url)
    try:  # a payment whose reconciliation failed, so that their list has one to check
        await conn.execute(
            "INSERT INTO reconcile_failures (tenant_id, account_id, entry_id, stage, error,"
            " basis, retry_at) SELECT tenant_id, account_id, entry_id, 'apply', 'test', '',"
            " now() FROM transactions LIMIT 1")
    finally:
        await conn.close()
    subscribed = await api.client.post("/v1/subscriptions", headers=admin, json={
        "url": None, "event_types": ["*"],
        "public_jwk": PUBLIC_JWK})
    assert subscribed.status == 201, await subscribed.text()
    queries = {"/v1/events": {"subscription_id": (await subscribed.json())["id"]}}
    document = await (await api.client.get("/openapi.json")).json()
    checked = 0
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None or "{" in path:
            continue
        content = operation["responses"]["200"].get("content", {}).get("application/json")
        if content is None:
            continue
        response = await api.client.get(path, headers=admin, params=queries.get(path, {}))
        body = await response.json()
        schema = {**content["schema"], "components": document["components"]}
        jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
        if "items" in body:
            assert body["items"], f"{path} returned nothing to check"
        checked += 1
    assert checked >= 5
    imported = await api.client.post("/v1/statements", data=MT940, headers=admin)
    schema = {"$ref": "#/components/schemas/ImportResult", "components": document["components"]}
    jsonschema.validate(await imported.json(), schema, cls=jsonschema.Draft202012Validator)
