"""Schemathesis over our own OpenAPI document, with every check and every phase.

The gateway runs on a real loopback server (``make_api``) with a real database, seeded so
that every list has something in it. Schemathesis's engine (what ``schemathesis run``
drives) then runs all its phases: coverage (the boundaries of every schema, both sides,
and every undeclared method of every path), fuzzing (requests fitting the schemas and
breaking them), and the stateful phase, which follows the document's links from the
operations that return ids to those that take them. Every check is on, among them
``positive_data_acceptance`` (a request that fits the document is not refused as
malformed), ``negative_data_rejection``, ``unsupported_method`` (a 405 with ``Allow``),
``use_after_free``, ``ensure_resource_availability``, ``missing_required_header`` and
``ignored_auth``. Generation is derandomized and bounded (``EXAMPLES``, ``STATEFUL_*``), so
the run is the same on every machine: 40-60 s on a loaded 2-core one, most of it the
coverage phase (about 2,300 requests).

What the document cannot say is configured here, each with its reason: a request that fits
it may still be refused with 422 when what it says cannot be accepted (a file that is not
a bank statement, more decimals than the currency has), and a webhook URL's acceptance
depends on DNS at the moment it is given, so generated URLs are not sent (see
``_without_urls``). ``object_level_authorization`` needs two identities in a Web Fuzzing
Commons file; ownership between CRM keys is tested by ``test_ownership.py`` instead.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.run import PhaseName

from gateway.openapi import openapi_document
from gateway.store import subscriptions
from security.roles import Role
from security.webhooks import new_secret
from tests.gateway.conftest import AiohttpClient, make_api
from tests.gateway.test_api import INVOICE, PUBLIC_JWK
from tests.paths import DEMO_CAMT

EXAMPLES = 2  # fuzzed requests per operation and mode (coverage does the boundaries)
STATEFUL_STEPS = 5
STATEFUL_SCENARIOS = 20

# Refusing a request the document forbids with 413 (too large) or 414 (URL too long) is as
# right as a 400; a request that fits it may still be larger than this service takes (413:
# max_body_bytes, 200 KB here) or say something that cannot be accepted (422: the problem
# document says why). Each is documented on every operation it can answer.
_CONFIG = {
    "seed": 1, "workers": 1, "continue-on-failure": True, "cache": {"enabled": False},
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"max-steps": STATEFUL_STEPS,
                            "generation": {"max-examples": STATEFUL_SCENARIOS}}},
    "checks": {
        "positive_data_acceptance": {"expected-statuses": [
            "2xx", "401", "403", "404", "409", "413", "422"]},
        "negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "409", "413", "414", "415", "422"]},
    },
}
_URL_OPERATIONS = {"POST /v1/subscriptions", "PATCH /v1/subscriptions/{subscription_id}",
                   "POST /v1/subscriptions/{subscription_id}/rotate-key"}


def _without_urls(context: Any, case: Any) -> Any:
    """A request fitting the document with a webhook or JWKS URL in it, sent without: the
    host's addresses decide its acceptance (a 400 naming the field, as the document says),
    and the run must reach no other machine. ``url`` becomes null (poll instead), a JWKS
    URL the test's public key. Requests breaking the document are sent as generated."""
    body = case.body
    if case.operation.label not in _URL_OPERATIONS or not isinstance(body, dict) \
            or case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return case
    if isinstance(body.get("url"), str):
        body["url"] = None
    if isinstance(body.get("jwks_url"), str):
        body.pop("jwks_url")
        body.pop("kid", None)
        body["public_jwk"] = PUBLIC_JWK
    return case


@dataclass
class Outcome:
    """What a run found: every failing check, and what each operation was answered."""

    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    stateful_operations: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def record(self, event: events.ScenarioFinished | events.FuzzScenarioFinished) -> None:
        recorder = event.recorder
        stateful = getattr(event, "phase", None) is PhaseName.STATEFUL_TESTING
        for case_id, node in recorder.cases.items():
            interaction = recorder.interactions.get(case_id)
            label = node.value.operation.label
            if interaction is not None and interaction.response is not None:
                self.statuses[label].add(interaction.response.status_code)
                if stateful:
                    self.stateful_operations.add(label)
        for checks in recorder.checks.values():
            for check in checks:
                if check.status is Status.FAILURE and check.failure_info is not None:
                    failure = check.failure_info.failure
                    self.failures.setdefault(
                        (recorder.label, f"{check.name}: {failure.title}"),
                        f"{check.failure_info.code_sample[:1500]}\n{failure.message[:1500]}")


def _run(document: dict[str, Any], base_url: str, headers: dict[str, str]) -> Outcome:
    config = SchemathesisConfig.from_dict({**_CONFIG, "base-url": base_url, "headers": headers})
    schema = schemathesis.openapi.from_dict(document, config=config)
    schema.hook("map_case")(_without_urls)
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            outcome.record(event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(str(getattr(event, "value", None)
                                      or getattr(event, "exception", None))[:1500])
    return outcome


async def _seed(api: Any, admin: dict[str, str]) -> None:
    """Something in every list, so that answers with items are checked against their
    schemas and links have ids to follow: a subscription with a URL first (stored directly:
    its host is never resolved), so that the import's events give it deliveries."""
    conn = await asyncpg.connect(api.database_url)
    try:
        await subscriptions.create(conn, "default", owner="seed", url="https://crm.invalid/hook",
                                   event_types=["*"], public_jwk=PUBLIC_JWK, jwks_url=None,
                                   kid=PUBLIC_JWK["kid"], secret=new_secret())
    finally:
        await conn.close()
    seeded = [await api.client.post("/v1/statements", data=DEMO_CAMT.read_bytes(),
                                    headers=admin),
              await api.client.put("/v1/invoices", json=[INVOICE], headers=admin),
              await api.client.put("/v1/customers", headers=admin,
                                   json=[{"customer_id": "C1", "name": "Globex"}]),
              await api.client.post("/v1/subscriptions", headers=admin, json={
                  "url": None, "event_types": ["*"], "public_jwk": PUBLIC_JWK})]
    assert [r.status for r in seeded] == [201, 200, 200, 201]


# The HTTP layer is under test here, not the database: the embedded server alone suffices.
@pytest.mark.parametrize("server_url", ["embedded"], indirect=True)
async def test_schemathesis_with_every_check_finds_nothing(
        database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await make_api(database_url, aiohttp_client, max_body_bytes=200_000,
                         dispatcher=False)
    admin = api.auth(Role.ADMIN)
    await _seed(api, admin)
    document = await (await api.client.get("/openapi.json")).json()
    base_url = str(api.client.make_url("")).rstrip("/")
    outcome = await asyncio.to_thread(_run, document, base_url, admin)
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, "\n\n".join(
        f"{label} - {check}\n{detail}" for (label, check), detail in outcome.failures.items())
    # Every operation was reached: each got an answer other than 404 at least once.
    operations = {f"{method.upper()} {path}" for path, methods in document["paths"].items()
                  for method in methods}
    unreached = sorted(op for op in operations if not outcome.statuses[op] - {404})
    assert not unreached, f"only ever answered 404: {unreached}"
    # The stateful phase followed links (which ones a bounded run takes varies with the
    # answers; that every id has a link is checked below, without a server).
    assert {op for op in outcome.stateful_operations if "{" in op}


def test_every_operation_that_takes_an_id_is_linked_from_one_that_returns_it() -> None:
    document = openapi_document()
    operations = {op["operationId"]: (method.upper(), path)
                  for path, methods in document["paths"].items()
                  for method, op in methods.items()}
    targets = {link["operationId"] for methods in document["paths"].values()
               for op in methods.values() for answer in op["responses"].values()
               for link in answer.get("links", {}).values()}
    takes_an_id = {name for name, (_, path) in operations.items() if "{" in path}
    assert takes_an_id <= targets, sorted(takes_an_id - targets)


def _schema_at(document: dict[str, Any], schema: dict[str, Any], pointer: list[str]) -> Any:
    """The part of ``schema`` a JSON pointer into a document of it names, or None."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if not pointer:
        return schema
    step, rest = pointer[0], pointer[1:]
    for part in schema.get("allOf", ()):
        found = _schema_at(document, part, pointer)
        if found is not None:
            return found
    if step.isdigit() and "items" in schema:
        return _schema_at(document, schema["items"], rest)
    if step in schema.get("properties", {}):
        return _schema_at(document, schema["properties"][step], rest)
    return None


def _links(document: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """Every link: (its source operation, the answer's status, the link)."""
    return [(op, status, link) for methods in document["paths"].values()
            for op in methods.values() for status, answer in op["responses"].items()
            for link in answer.get("links", {}).values()]


def test_every_link_names_what_its_source_holds() -> None:
    """Each link's values point at a field the source's answer (or request) declares, so a
    client following it finds the id where the document says it is."""
    document = openapi_document()
    for source, status, link in _links(document):
        values = [*link.get("parameters", {}).values(), *link.get("requestBody", {}).values()]
        for expression in values:
            where, _, pointer = expression.partition("#/")
            if where == "$response.body":
                schema = source["responses"][status]["content"]["application/json"]["schema"]
            elif where == "$request.body":
                schema = source["requestBody"]["content"]["application/json"]["schema"]
            else:  # $request.path.NAME or $request.query.NAME
                name = expression.rsplit(".", 1)[-1]
                assert name in {p["name"] for p in source["parameters"]}, expression
                continue
            found = _schema_at(document, schema, pointer.split("/"))
            assert found is not None, (source["operationId"], link["operationId"], expression)
