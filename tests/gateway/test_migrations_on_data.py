"""Migrations 0006-0008 on a database that holds what version 0005 stored: they apply
without error, and the lines stored before them keep their place in their statements."""

from __future__ import annotations

import asyncpg

from gateway.migrate import migrate, migrations
from tests.gateway.migration_support import (
    add_account,
    add_api_keys,
    add_invoices,
    add_statement,
    migrate_before,
)


async def test_the_integrity_migrations_apply_to_a_database_holding_data(
        conn: asyncpg.Connection) -> None:
    assert await migrate_before(conn, "line_identity") == 5
    account = await add_account(conn, "t")
    iban = "DE89370400440532013000"
    statements = [
        await add_statement(conn, "t", account, "mt940", [("a", "booked", 10, "Payer", iban),
                                                          ("b", "booked", 10, "Payer", iban)]),
        await add_statement(conn, "t", account, "mt942", [("c", "pending", 10, "Payer", iban)])]
    await add_invoices(conn, "t", [("I1", 10)])
    for entry_id, status in (("a", "applied"), ("b", "undone")):
        await conn.execute(
            "INSERT INTO allocations (tenant_id, account_id, entry_id, payment_key, invoice_id,"
            " amount, currency, payment_amount, settles, decision, status, created_by,"
            " decided_at, decided_by) VALUES ('t', $1, $2, $2, 'I1', 10, 'EUR', 10, 10,"
            " 'manual', $3, 'alice', now(), 'alice')", account, entry_id, status)
    await add_api_keys(conn, [("t", "k1", "crm", None)])

    assert await migrate(conn) == len(migrations())

    placed = {r["entry_id"]: (r["statement_pk"], r["position"], r["outcome"])
              for r in await conn.fetch("SELECT * FROM all_statement_lines")}
    assert placed == {"a": (statements[0], 0, "new"), "b": (statements[0], 1, "new"),
                      "c": (statements[1], 0, "new")}
    stored = {r["entry_id"]: (r["position"], r["provisional"]) for r in await conn.fetch(
        "SELECT entry_id, position, provisional FROM transactions")}
    assert stored == {"a": (0, False), "b": (1, False), "c": (0, True)}
    assert await conn.fetchval("SELECT count(*) FROM learned_payers") == 2
    assert await conn.fetchval("SELECT owner_key_id FROM invoices") == "k1"
