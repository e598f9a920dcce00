"""The request log (gateway.access_log, gateway.logs): one line per request and per
delivery attempt, text or JSON, and never an IBAN, a name, an amount or a key in it,
whatever a client puts in a path or a query."""

from __future__ import annotations

import io
import json
import logging
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from gateway import access_log, logs
from gateway.routes import ROUTES, Route
from gateway.settings import SettingsError
from security import apikeys
from security.roles import Role
from tests.gateway.conftest import Api
from tests.gateway.test_demo import captured_log

_UPPER, _DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
IBAN = st.builds(lambda country, check, rest: country + check + rest,
                 st.text(_UPPER, min_size=2, max_size=2), st.text(_DIGITS, min_size=2, max_size=2),
                 st.text(_UPPER + _DIGITS, min_size=11, max_size=30))
WORDS = frozenset(part for r in ROUTES for part in r.path.split("/")
                  if part and not part.startswith("{"))
ISSUED = re.compile(r"[0-9]{1,19}|(?:sub|evt)_[0-9a-f]{32}")
ANY_ROUTE = st.sampled_from(ROUTES)


def _fill(declared: Route, values: list[str]) -> tuple[str, dict[str, str]]:
    names = re.findall(r"\{([a-z_]+)\}", declared.path)
    given_values = dict(zip(names, values + [""] * len(names), strict=False))
    path = declared.path
    for name, value in given_values.items():
        path = path.replace("{" + name + "}", value)
    return path, given_values


@given(ANY_ROUTE, st.lists(st.one_of(IBAN, st.text(min_size=1)), min_size=3, max_size=3))
def test_a_routes_path_shows_only_its_words_and_the_ids_we_issue(
        declared: Route, values: list[str]) -> None:
    path, match_info = _fill(declared, values)
    shown = access_log.shown_path(path, declared, match_info)
    for segment in shown.split("/")[1:]:
        assert segment in WORDS or ISSUED.fullmatch(segment) or re.fullmatch(
            r"\{[a-z_]+\}", segment), (segment, shown)


@given(st.lists(st.one_of(IBAN, st.text(), st.sampled_from(sorted(WORDS))), max_size=6))
def test_a_path_without_a_route_shows_only_route_words(segments: list[str]) -> None:
    shown = access_log.shown_path("/" + "/".join(segments), None, {})
    assert all(s in WORDS or s in ("*", "") for s in shown.split("/")), shown


@given(ANY_ROUTE, st.lists(st.tuples(st.one_of(st.text(max_size=12),
                                               st.sampled_from(["account", "limit", "status",
                                                                "filename", "from"])),
                                     st.one_of(IBAN, st.text(), st.sampled_from(
                                         ["5", "open", "proposed", "2026-11-21"]))),
                           max_size=5),
       IBAN)
def test_a_query_shows_only_numbers_dates_and_declared_words(
        declared: Route, pairs: list[tuple[str, str]], iban: str) -> None:
    query = MultiDict(pairs + [("account", iban)])
    shown = access_log.shown_query(query, declared)
    assert iban not in shown
    declared_names = {p["name"]: p.get("schema", {}) for p in
                      declared.operation.get("parameters", ()) if p.get("in") == "query"}
    for pair in shown[1:].split("&"):
        name, _, value = pair.partition("=")
        if value == access_log.MASK:
            continue
        schema = declared_names[name]
        assert value in [str(v) for v in schema.get("enum", [])] \
            or re.fullmatch(r"[0-9]{1,9}|[0-9]{4}-[0-9]{2}-[0-9]{2}", value), pair


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters=":"), max_size=30),
       st.text(min_size=1))
def test_a_delivery_error_shows_only_its_kind(kind: str, detail: str) -> None:
    shown = access_log.error_kind(f"{kind}: {detail}")
    assert shown in (kind.strip(), "error") and ":" not in (shown or "")


@given(st.text())
def test_a_text_line_is_one_line_whatever_the_message(message: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (message,), None)
    line = logs.TextFormatter().format(record)
    assert len(line.splitlines()) == 1 and line.isprintable()


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal:
        assert isinstance(logs.formatter_for("auto", terminal), logs.TextFormatter)
    os.close(primary)
    assert isinstance(logs.formatter_for("auto", io.StringIO()), logs.JsonFormatter)
    assert isinstance(logs.formatter_for("json", io.StringIO()), logs.JsonFormatter)
    with pytest.raises(SettingsError, match="log_format: expected one of auto, text, json"):
        logs.formatter_for("yaml", io.StringIO())


@pytest.mark.parametrize("server_url", ["embedded"], indirect=True)
async def test_what_clients_send_in_paths_and_queries_stays_out_of_the_log(api: Api) -> None:
    iban, name = "DE89370400440532013000", "Müller"
    key = api.keys[Role.ADMIN]
    with captured_log("text") as log:
        asked = [
            ("GET", f"/v1/transactions?account={iban}&limit=3", {400, 404}),
            ("GET", f"/v1/accounts/{iban}", {404, 405}),
            ("GET", f"/v1/invoices/{name}", {404}),
            ("GET", f"/v1/invoices?{name}=1", {400}),
            ("POST", f"/v1/statements?filename={name}.sta", {422}),
        ]
        for method, path, statuses in asked:
            response = await api.client.request(method, path, headers={
                **api.auth(Role.ADMIN), "X-Request-ID": "forged request id"}, data=b"x")
            assert response.status in statuses, (path, await response.text())
    lines = log.getvalue().splitlines()
    key_id = key.split("_")[1]
    caller = f"key={key_id} role=admin"
    expected = [
        ("GET /v1/transactions?account=***&limit=3 4", caller),
        ("GET /v1/accounts/* 404 ", "key=-"),  # no route: no key is looked at
        ("GET /v1/invoices/{invoice_id} 404 ", caller),
        ("GET /v1/invoices?***=*** 400 ", caller),
        ("POST /v1/statements?filename=*** 422 ", caller),
    ]
    for words, who in expected:
        line = next((line for line in lines if words in line), None)
        assert line is not None, (words, lines)
        assert re.search(rf" ms {who} request=[0-9a-f]{{32}}$", line), line
    text = log.getvalue()
    # The key's secret as the key splits (a secret may itself hold "_").
    secret = apikeys.split(key)
    assert secret is not None
    assert iban not in text and name not in text and secret[1] not in text
    assert "forged" not in text


def test_a_json_line_carries_the_fields_apart() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("gateway.access_log")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        access_log.delivery(subscription_id="sub_" + "a" * 32, event_id="evt_" + "b" * 32,
                            event_type="invoice.paid", attempt=3, status_code=None,
                            error="timed out", latency_ms=10003.14, outcome="failed",
                            next_attempt_at=None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    entry = json.loads(stream.getvalue())
    assert entry["message"] == (f"webhook invoice.paid evt_{'b' * 32} to sub_{'a' * 32} "
                                f"attempt 3: timed out in 10003.1 ms, given up")
    assert (entry["level"], entry["attempt"], entry["error"], entry["latency_ms"],
            entry["outcome"]) == ("WARNING", 3, "timed out", 10003.1, "failed")
