"""Each crm key owns the invoices and customers it pushed: other crm keys neither see nor
change them; admin, treasury and auditor keys see all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.migrate import migrate
from gateway.store import invoices as store
from matching.invoices import Customer, Invoice
from parsers.money import Money
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, Api, another_key, make_api
from tests.gateway.migration_support import add_api_keys, add_invoices, migrate_before
from tests.gateway.processes import command
from tests.paths import DEMO_CAMT

INVOICE = {"invoice_id": "INV-A1", "customer_id": "CUST-A", "customer_name": "Globex",
           "currency": "EUR", "amount": "100.00", "open_amount": "100.00",
           "issue_date": "2026-11-01", "due_date": "2026-11-30", "reference": "RF-A1"}
IBAN_A = "DE89370400440532013000"
IBAN_B = "GB82WEST12345698765432"


class TwoCrms:
    """The API with a key for every role and a second crm key, ``b``."""

    def __init__(self, api: Api, b_key: str) -> None:
        self.api = api
        self.client = api.client
        self.a = api.auth(Role.CRM)
        self.b = {"Authorization": f"Bearer {b_key}"}

    async def json(self, method: str, path: str, headers: dict[str, str],
                   body: Any = None, status: int = 200) -> Any:
        response = await self.client.request(method, path, headers=headers, json=body)
        assert response.status == status, (method, path, await response.text())
        return await response.json()


@pytest.fixture
async def crms(migrated_database_url: str, aiohttp_client: AiohttpClient) -> TwoCrms:
    api = await make_api(migrated_database_url, aiohttp_client)
    crms = TwoCrms(api, await another_key(migrated_database_url, Role.CRM, "second-crm"))
    await crms.json("PUT", "/v1/customers", crms.a, [
        {"customer_id": "CUST-A", "name": "Globex", "ibans": [IBAN_A], "aliases": []}])
    await crms.json("PUT", "/v1/invoices", crms.a, [INVOICE])
    await crms.json("PUT", "/v1/customers", crms.b, [
        {"customer_id": "CUST-B", "name": "Initech", "ibans": [IBAN_B], "aliases": []}])
    await crms.json("PUT", "/v1/invoices", crms.b, [
        {**INVOICE, "invoice_id": "INV-B1", "customer_id": "CUST-B", "customer_name": None}])
    return crms


async def ids(crms: TwoCrms, path: str, headers: dict[str, str], key: str) -> list[str]:
    page = await crms.json("GET", path, headers)
    return [item[key] for item in page["items"]]


async def test_a_crm_key_reads_only_what_it_pushed(crms: TwoCrms) -> None:
    assert await ids(crms, "/v1/invoices", crms.b, "invoice_id") == ["INV-B1"]
    assert await ids(crms, "/v1/invoices?customer_id=CUST-A", crms.b, "invoice_id") == []
    assert await ids(crms, "/v1/invoices", crms.a, "invoice_id") == ["INV-A1"]
    customers = await crms.client.get("/v1/customers", headers=crms.b)
    listed = await customers.text()
    assert IBAN_A not in listed and "CUST-A" not in listed
    assert await ids(crms, "/v1/customers", crms.b, "customer_id") == ["CUST-B"]
    # Another key's invoice is absent, exactly as one that does not exist.
    other = await crms.json("GET", "/v1/invoices/INV-A1", crms.b, status=404)
    missing = await crms.json("GET", "/v1/invoices/INV-NONE", crms.b, status=404)
    assert other["type"] == missing["type"] and other["title"] == missing["title"]
    mine = await crms.json("GET", "/v1/invoices/INV-B1", crms.b)
    assert mine["owner_key_id"] is not None


@pytest.mark.parametrize("role", [Role.ADMIN, Role.TREASURY, Role.AUDITOR])
async def test_admin_treasury_and_auditor_see_every_crms_rows(crms: TwoCrms,
                                                             role: Role) -> None:
    auth = crms.api.auth(role)
    assert await ids(crms, "/v1/invoices", auth, "invoice_id") == ["INV-A1", "INV-B1"]
    assert await ids(crms, "/v1/customers", auth, "customer_id") == ["CUST-A", "CUST-B"]
    for invoice_id in ("INV-A1", "INV-B1"):
        await crms.json("GET", f"/v1/invoices/{invoice_id}", auth)


async def test_a_crm_key_cannot_change_or_cancel_another_keys_invoice(crms: TwoCrms) -> None:
    for change in ({"status": "cancelled"}, {"open_amount": "0"}):
        await crms.json("PATCH", "/v1/invoices/INV-A1", crms.b, change, status=404)
    still = await crms.json("GET", "/v1/invoices/INV-A1", crms.a)
    assert (still["status"], still["open_amount"]) == ("open", "100.00")
    # Its owner can, and so can an admin: the invoice stays its owner's.
    await crms.json("PATCH", "/v1/invoices/INV-A1", crms.a, {"open_amount": "40.00"})
    await crms.json("PATCH", "/v1/invoices/INV-A1", crms.api.auth(Role.ADMIN),
                    {"status": "cancelled"})
    cancelled = await crms.json("GET", "/v1/invoices/INV-A1", crms.a)
    assert (cancelled["status"], cancelled["owner_key_id"]) == ("cancelled", still["owner_key_id"])


@pytest.mark.parametrize(("path", "batch", "field"), [
    ("/v1/invoices", [{**INVOICE, "invoice_id": "INV-B2", "customer_id": "CUST-B"},
                      {**INVOICE, "amount": "1.00", "open_amount": "1.00",
                       "customer_id": "CUST-B"}], "invoice_id"),
    ("/v1/invoices", [{**INVOICE, "invoice_id": "INV-B2", "customer_id": "CUST-B"},
                      {**INVOICE, "invoice_id": "INV-B3", "customer_name": "Mine now"}],
     "customer_id"),
    ("/v1/invoices", [{**INVOICE, "invoice_id": "INV-B2", "customer_id": "CUST-B"},
                      {**INVOICE, "invoice_id": "CN-B3", "customer_id": "CUST-B",
                       "kind": "credit_note", "related_invoice_id": "INV-A1"}],
     "related_invoice_id"),
    ("/v1/customers", [{"customer_id": "CUST-B", "name": "Initech", "ibans": []},
                       {"customer_id": "CUST-A", "name": "Globex", "ibans": [IBAN_B]}],
     "customer_id"),
])
async def test_a_crm_key_cannot_take_over_another_keys_ids(
        crms: TwoCrms, path: str, batch: list[dict[str, Any]], field: str) -> None:
    admin = crms.api.auth(Role.ADMIN)
    before = [await crms.json("GET", "/v1/invoices", admin),
              await crms.json("GET", "/v1/customers", admin)]
    problem = await crms.json("PUT", path, crms.b, batch, status=409)
    assert problem["type"].endswith("/conflict")
    assert [(e["record"], e["field"]) for e in problem["errors"]] == [(2, field)]
    # The whole batch was refused: B's own record 1 is not stored either.
    after = [await crms.json("GET", "/v1/invoices", admin),
             await crms.json("GET", "/v1/customers", admin)]
    assert after == before


async def test_the_openapi_document_lists_the_conflict(crms: TwoCrms) -> None:
    document = await crms.json("GET", "/openapi.json", {})
    for path in ("/v1/invoices", "/v1/customers"):
        assert "409" in document["paths"][path]["put"]["responses"]


# The promise as a property: whatever two crm keys and an admin push, in whatever order,
# a row belongs to the key that first pushed it, only that key (and the admin) changes it,
# and a crm key's reads return exactly its own rows.

KEYS = ("crm-a", "crm-b", None)  # None: an admin key
INVOICE_IDS = ("I1", "I2", "I3", "I4")
CUSTOMER_IDS = ("C1", "C2", "C3")

_invoices = st.lists(st.tuples(st.sampled_from(INVOICE_IDS), st.sampled_from(CUSTOMER_IDS),
                               st.integers(1, 10**6)),
                     min_size=1, max_size=4, unique_by=lambda r: r[0])
_customers = st.lists(st.sampled_from(CUSTOMER_IDS), min_size=1, max_size=3, unique=True)
STEPS = st.lists(st.one_of(st.tuples(st.just("invoices"), st.sampled_from(KEYS), _invoices),
                           st.tuples(st.just("customers"), st.sampled_from(KEYS), _customers)),
                 min_size=1, max_size=12)


def _invoice(invoice_id: str, customer_id: str, cents: int) -> Invoice:
    amount = Money(Decimal(cents) / 100, "EUR")
    return Invoice(invoice_id=invoice_id, customer_id=customer_id, amount=amount,
                   open_amount=amount, issue_date=date(2026, 11, 1),
                   due_date=None, customer_name=None)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
async def test_no_crm_key_ever_sees_or_changes_another_keys_rows(
        pool: asyncpg.Pool, steps: list[tuple[str, str | None, list[Any]]]) -> None:
    tenant = uuid.uuid4().hex
    invoice_owner: dict[str, str | None] = {}
    invoice_data: dict[str, tuple[str, Decimal]] = {}
    customer_owner: dict[str, str | None] = {}
    for kind, key, records in steps:
        named_invoices = [r[0] for r in records] if kind == "invoices" else []
        named_customers = [r[1] for r in records] if kind == "invoices" else records
        refused = key is not None and (
            any(i in invoice_owner and invoice_owner[i] != key for i in named_invoices)
            or any(c in customer_owner and customer_owner[c] != key for c in named_customers))
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if kind == "invoices":
                        await store.upsert(conn, tenant, [_invoice(*r) for r in records],
                                           owner=key)
                    else:
                        await store.upsert_customers(conn, tenant, [
                            Customer(c, f"name {c}", (), ()) for c in records],
                            owner=key)
                stored = True
            except store.NotOwned:
                stored = False
        assert stored is not refused, (kind, key, records)
        if stored:
            for customer_id in named_customers:
                customer_owner.setdefault(customer_id, key)
            for invoice_id, customer_id, cents in records if kind == "invoices" else ():
                invoice_owner.setdefault(invoice_id, key)
                invoice_data[invoice_id] = (customer_id, Decimal(cents) / 100)
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT invoice_id, owner_key_id, customer_id, amount"
                                    " FROM invoices WHERE tenant_id = $1", tenant)
            assert {r["invoice_id"]: r["owner_key_id"] for r in rows} == invoice_owner
            assert {r["invoice_id"]: (r["customer_id"], r["amount"]) for r in rows} \
                == invoice_data
            owners = await conn.fetch("SELECT customer_id, owner_key_id FROM customers"
                                      " WHERE tenant_id = $1", tenant)
            assert {r["customer_id"]: r["owner_key_id"] for r in owners} == customer_owner
            for reader in ("crm-a", "crm-b"):
                listed = await store.list_page(conn, tenant, status=None, customer_id=None,
                                               due_before=None, after=None, limit=100,
                                               owner=reader)
                assert sorted(i["invoice_id"] for i in listed) == sorted(
                    i for i, o in invoice_owner.items() if o == reader)
                customers = await store.list_customers(conn, tenant, after=None, limit=100,
                                                       owner=reader)
                assert sorted(c["customer_id"] for c in customers) == sorted(
                    c for c, o in customer_owner.items() if o == reader)
                for invoice_id, owner in invoice_owner.items():
                    found = await store.get(conn, tenant, invoice_id, owner=reader)
                    assert (found is not None) == (owner == reader)


async def test_rows_from_before_ownership_go_to_the_tenants_only_crm_key(
        conn: asyncpg.Connection) -> None:
    """Where one active crm key could already see every row, they become its own; where
    several could, no one can tell whose they are, and no crm key sees them."""
    await migrate_before(conn, "ownership")
    await add_api_keys(conn, [
        ("solo", "k_solo", "crm", None), ("solo", "k_gone", "crm", "2026-01-01"),
        ("solo", "k_admin", "admin", None), ("many", "k_one", "crm", None),
        ("many", "k_two", "crm", None)])
    for tenant in ("solo", "many"):
        await add_invoices(conn, tenant, [("I1", 10)])
    await migrate(conn)
    owners = {(r["tenant_id"], r["table"]): r["owner_key_id"] for r in await conn.fetch(
        "SELECT tenant_id, 'invoices' AS table, owner_key_id FROM invoices UNION ALL"
        " SELECT tenant_id, 'customers', owner_key_id FROM customers")}
    assert owners == {("solo", "invoices"): "k_solo", ("solo", "customers"): "k_solo",
                      ("many", "invoices"): None, ("many", "customers"): None}
    for key_id in ("k_one", "k_two"):
        assert await store.get(conn, "many", "I1", owner=key_id) is None
    assert await store.get(conn, "many", "I1") is not None  # admin and treasury see it


def test_the_import_command_hands_unowned_invoices_to_a_named_crm_key(
        database_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "invoices.csv"
    csv.write_text("invoice_id,customer_id,customer_name,currency,amount,open_amount,"
                   "issue_date,due_date,reference\n"
                   "A-1,C1,Alpha GmbH,EUR,100.00,100.00,2026-11-01,2026-11-30,A-1\n")
    url = ["--database-url", database_url]

    def run(*args: str) -> Any:
        return command("invoices", "import", str(csv), *args, *url)

    def owner() -> Any:
        async def read() -> Any:
            connection = await asyncpg.connect(database_url)
            try:
                return await connection.fetchval(
                    "SELECT owner_key_id FROM invoices WHERE invoice_id = 'A-1'")
            finally:
                await connection.close()
        return asyncio.run(read())

    assert run().returncode == 0  # as an admin: no crm key owns it
    assert owner() is None
    for name in ("crm-a", "crm-b"):
        made = command("keys", "create", "--role", "crm", "--name", name, *url)
        assert made.returncode == 0, made.stderr
    claimed = run("--key", "crm-a")
    assert claimed.returncode == 0, claimed.stderr
    crm_a = owner()
    assert crm_a is not None
    refused = run("--key", "crm-b")
    assert refused.returncode == 1
    assert f"{csv}: line 2 (A-1): invoice_id: belongs to another API key" in refused.stderr
    assert owner() == crm_a
    assert run("--key", "nobody").returncode == 1
    assert command("keys", "revoke", "crm-a", *url).returncode == 0
    # A revoked key's invoices: only an operator hands them on.
    handed = run("--key", "crm-b")
    assert handed.returncode == 0, handed.stderr
    assert owner() not in (None, crm_a)


PUBLIC_JWK = {"kty": "EC", "crv": "P-256", "kid": "crm-b",  # a public key, nothing secret
              "x": "mzSztSl4D9CHG5Gy395qau90g1sIqEPIDICMJjMNdPI",
              "y": "t8RiqUblfj_kVe8OeMA4T-anhWBZi3YWyRkBkF7JEmE"}


async def test_a_crm_keys_feed_has_no_events_of_another_keys_invoices(crms: TwoCrms) -> None:
    treasury = crms.api.auth(Role.TREASURY)
    imported = await crms.client.post("/v1/statements", data=DEMO_CAMT.read_bytes(),
                                      headers=treasury)
    assert imported.status == 201, await imported.text()
    lines = await crms.json("GET", "/v1/transactions", treasury)
    payment = next(line for line in lines["items"] if Decimal(line["amount"]) > 100)
    await crms.json("POST", "/v1/matches", treasury, {
        "account_id": payment["account_id"], "entry_id": payment["entry_id"],
        "allocations": [{"invoice_id": "INV-A1", "amount": "100.00"}]}, status=201)
    assert (await crms.json("GET", "/v1/invoices/INV-A1", crms.a))["status"] == "paid"
    subscription = await crms.json("POST", "/v1/subscriptions", crms.b, {
        "url": None, "event_types": ["invoice.paid"], "public_jwk": PUBLIC_JWK}, status=201)
    feed = await crms.json("GET", f"/v1/events?subscription_id={subscription['id']}", crms.b)
    assert feed["items"] == []  # B owns no paid invoice
