"""Schemathesis over our own OpenAPI document: no 5xx, and every answer as documented.

The gateway runs on a real loopback server (``make_api``) with a real database; Schemathesis
generates requests for every operation of ``/openapi.json`` from its schemas, both fitting
them (positive) and breaking them (negative), and sends them with an admin key from a worker
thread while the server's event loop keeps serving. Generation is derandomized and bounded,
so the run is the same on every machine and takes well under a minute.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from security.roles import Role
from tests.gateway.conftest import AiohttpClient, make_api
from tests.gateway.test_api import INVOICE, PUBLIC_JWK
from tests.paths import DEMO_CAMT

EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

# Refusing broken input with 413 (too large) or 414 (URL too long) is as right as a 400.
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": ["400", "401", "403", "404", "405", "413", "414", "415", "422"]}}})


def _checker(operation: Any, mode: GenerationMode, base_url: str,
             headers: dict[str, str]) -> Any:
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        case.validate_response(response, checks=checks)

    return check


def _run(document: dict[str, Any], base_url: str, headers: dict[str, str]) -> list[str]:
    """Every operation in both modes; the failures found, one entry each."""
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _checker(operation, mode, base_url, headers)()
            except Unsatisfiable:
                # nothing to break: an operation without parameters or body has no
                # negative case (/healthz, /readyz, /openapi.json)
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as exc:  # one report for the whole API
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): "
                                f"{str(exc)[:3000]}")
    return failures


# The HTTP layer is under test here, not the database: the embedded server alone suffices.
@pytest.mark.parametrize("server_url", ["embedded"], indirect=True)
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
        database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await make_api(database_url, aiohttp_client, max_body_bytes=200_000)
    admin = api.auth(Role.ADMIN)
    # Something in every list, so that answers with items are checked against their schemas.
    seeded = [await api.client.post("/v1/statements", data=DEMO_CAMT.read_bytes(),
                                    headers=admin),
              await api.client.put("/v1/invoices", json=[INVOICE], headers=admin),
              await api.client.put("/v1/customers", headers=admin,
                                   json=[{"customer_id": "C1", "name": "Globex"}]),
              await api.client.post("/v1/subscriptions", headers=admin, json={
                  "url": None, "event_types": ["*"], "public_jwk": PUBLIC_JWK})]
    assert [r.status for r in seeded] == [201, 200, 200, 201]
    document = await (await api.client.get("/openapi.json")).json()
    base_url = str(api.client.make_url("")).rstrip("/")
    failures = await asyncio.to_thread(_run, document, base_url, admin)
    assert not failures, "\n\n".join(failures)
