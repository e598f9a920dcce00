"""Statements over the API as a first-time user meets them: one name per format, the
account filter taking the account id that GET /v1/accounts gives, and an empty upload
answered with what was received and what to send."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from security.roles import Role
from tests.gateway.conftest import Api
from tests.paths import DATA, DEMO_CAMT, DEMO_MT940

# Nothing here depends on the database server: the embedded one only.
pytestmark = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)

# One document of every format, and what its statements are.
DOCUMENTS = {
    "camt.052": DATA / "camt" / "camt052_v02.xml",
    "camt.053": DEMO_CAMT,
    "camt.054": DATA / "camt" / "camt054_v02.xml",
    "mt940": DEMO_MT940,
    "mt942": DATA / "mt940" / "mt942-interim.sta",
    "ofx": DATA / "ofx" / "bank-sgml-102.ofx",
}


def mt940(account: str, currency: str, statement_id: str) -> bytes:
    """A one-line MT940 statement of ``account`` (:25:) in ``currency``."""
    text = [f":20:{statement_id}", f":25:{account}", ":28C:1/1",
            f":60F:C261123{currency}100,00", ":61:2611231123C10,00NTRFNONREF//R1",
            ":86:/REMI/INV 1", f":62F:C261123{currency}110,00", "-"]
    return ("\r\n".join(text) + "\r\n").encode()


async def fetch(api: Api, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(api.database_url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def upload(api: Api, data: bytes, **headers: str) -> Any:
    response = await api.client.post("/v1/statements", data=data,
                                     headers={**api.auth(Role.TREASURY), **headers})
    assert response.status == 201, await response.text()
    return await response.json()


async def get(api: Api, path: str) -> Any:
    response = await api.client.get(path, headers=api.auth(Role.TREASURY))
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_format_has_one_name_in_the_answer_the_statement_and_the_event(
        api: Api) -> None:
    for name, path in DOCUMENTS.items():
        for attempt in ("first", "again"):
            body = await upload(api, path.read_bytes())
            assert body["document_known"] is (attempt == "again")
            assert body["format"] == name, (path.name, attempt)
            assert {s["format"] for s in body["statements"]} == {name}, (path.name, attempt)
            for item in body["statements"]:
                statement = await get(api, f"/v1/statements/{item['statement_pk']}")
                assert statement["format"] == name
    documents = await fetch(api, "SELECT format FROM raw_documents ORDER BY document_id")
    assert [r["format"] for r in documents] == list(DOCUMENTS)
    imported = await fetch(api, "SELECT data->>'format' AS format FROM events"
                                " WHERE type = 'statement.imported' ORDER BY event_pk")
    assert {r["format"] for r in imported} == set(DOCUMENTS)


async def test_a_swift_file_of_mt940_and_mt942_messages_names_each_statements_format(
        api: Api) -> None:
    data = (DATA / "mt940" / "nl-ing-codes.sta").read_bytes() + DOCUMENTS["mt942"].read_bytes()
    body = await upload(api, data)
    assert body["format"] is None  # no one name: each statement says its own
    assert [s["format"] for s in body["statements"]] == ["mt940", "mt940", "mt942"]
    again = await upload(api, data)
    assert (again["document_known"], again["format"]) == (True, None)
    assert [s["format"] for s in again["statements"]] == ["mt940", "mt940", "mt942"]
    [document] = await fetch(api, "SELECT format FROM raw_documents")
    assert document["format"] == "mt940,mt942"


async def test_the_account_filter_takes_the_account_id_an_iban_or_a_number(api: Api) -> None:
    await upload(api, mt940("NL91ABNA0417164300", "EUR", "S-EUR"))
    await upload(api, mt940("NL91ABNA0417164300", "USD", "S-USD"))  # the IBAN's USD account
    await upload(api, mt940("37040044/0532013000", "EUR", "S-NUMBER"))
    accounts = {(a["iban"] or a["number"], a["currency"]): a["account_id"]
                for a in (await get(api, "/v1/accounts"))["items"]}
    eur, usd = accounts["NL91ABNA0417164300", "EUR"], accounts["NL91ABNA0417164300", "USD"]
    numbered = accounts["0532013000", "EUR"]

    async def lines(account: str) -> set[int]:
        found = await get(api, f"/v1/transactions?account={account}")
        statements = await get(api, f"/v1/statements?account={account}")
        assert {s["account_id"] for s in statements["items"]} \
            == {t["account_id"] for t in found["items"]}
        return {t["account_id"] for t in found["items"]}

    assert await lines(str(usd)) == {usd}  # the id GET /v1/accounts gives
    assert await lines(str(numbered)) == {numbered}
    assert await lines("NL91 ABNA 0417 1643 00") == {eur, usd}  # an IBAN: every currency
    assert await lines("0532013000") == {numbered}
    unknown = await api.client.get("/v1/transactions?account=999999",
                                   headers=api.auth(Role.TREASURY))
    assert unknown.status == 404
    assert "account_id from GET /v1/accounts" in (await unknown.json())["detail"]


async def test_an_account_id_that_is_also_another_accounts_number_is_refused_as_ambiguous(
        api: Api) -> None:
    await upload(api, mt940("NL91ABNA0417164300", "EUR", "S1"))
    [first] = (await get(api, "/v1/accounts"))["items"]
    await upload(api, mt940(f"37040044/{first['account_id']}", "EUR", "S2"))
    response = await api.client.get(f"/v1/transactions?account={first['account_id']}",
                                    headers=api.auth(Role.TREASURY))
    assert response.status == 400
    assert "ambiguous" in (await response.json())["detail"]
    assert len((await get(api, "/v1/transactions?account=NL91ABNA0417164300"))["items"]) == 1


@pytest.mark.parametrize(("body", "content_type", "received"), [
    (b"", "application/x-www-form-urlencoded", "0 bytes"),  # curl --data-binary @missing
    (b"", None, "0 bytes"),
    (b" \r\n\t", "application/octet-stream", "4 bytes of whitespace"),
])
async def test_an_empty_upload_says_what_was_received_and_what_to_send(
        api: Api, body: bytes, content_type: str | None, received: str) -> None:
    headers = api.auth(Role.TREASURY)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await api.client.post("/v1/statements?filename=statement.sta", data=body,
                                     headers=headers, skip_auto_headers=["Content-Type"])
    assert response.status == 400
    problem = await response.json()
    assert problem["type"].endswith("/invalid-request")
    assert problem["received_bytes"] == len(body)
    assert problem["content_type"] == content_type
    detail = problem["detail"]
    assert f"the body is empty ({received}, Content-Type: {content_type or 'none'})" in detail
    assert "--data-binary @FILE" in detail and "application/octet-stream" in detail
    assert "MT940/MT942, camt.052/053/054 or OFX" in detail
    assert await fetch(api, "SELECT 1 FROM raw_documents") == []


async def test_a_form_upload_says_how_to_send_the_file_itself(api: Api) -> None:
    response = await api.client.post("/v1/statements", data={"file": "x"},
                                     headers=api.auth(Role.TREASURY))
    assert response.status == 415
    assert "--data-binary @FILE" in (await response.json())["detail"]
