"""Migration 0007 on a database that already holds decisions: what people's applied
decisions taught is recovered from the decisions themselves, and an undo that had
overwritten its decision is moved to the undo columns."""

from __future__ import annotations

import asyncpg
import pytest

from gateway import migrate as module
from gateway.ingest import ingest
from tests.gateway.test_matches import PAYER_IBAN, statement


async def test_decisions_taken_before_the_migration_keep_what_they_taught(
        conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = module.migrations()
    monkeypatch.setattr(module, "migrations", lambda: everything[:6])
    assert await module.migrate(conn) == 6
    await ingest(conn, statement(("R1", "100.00", "G. CORP HOLDING", None),
                                 ("R2", "200.00", "G. CORP HOLDING", None)), source="old.xml")
    await conn.execute("INSERT INTO customers (tenant_id, customer_id, name)"
                       " VALUES ('default', 'C1', 'Globex')")
    for invoice_id, amount in (("INV-1", 100), ("INV-2", 200)):
        await conn.execute(
            "INSERT INTO invoices (tenant_id, invoice_id, customer_id, kind, currency, amount,"
            " crm_open_amount, issue_date) VALUES ('default', $1, 'C1', 'invoice', 'EUR', $2,"
            " $2, '2026-11-01')", invoice_id, amount)
    for reference, invoice_id, amount, status, by, note in (
            ("R1", "INV-1", 100, "applied", "alice", None),
            ("R2", "INV-2", 200, "undone", "bob", "paid by a stranger")):
        await conn.execute(
            "INSERT INTO allocations (tenant_id, account_id, entry_id, payment_key, invoice_id,"
            " amount, currency, payment_amount, settles, decision, status, created_by,"
            " decided_at, decided_by, note)"
            " SELECT 'default', account_id, entry_id, $1, $2, $3, 'EUR', $3, $3, 'review', $4,"
            " 'engine', now(), $5, $6 FROM transactions WHERE bank_reference = $1",
            reference, invoice_id, amount, status, by, note)
    monkeypatch.setattr(module, "migrations", lambda: everything)
    assert await module.migrate(conn) == len(everything)

    learned = await conn.fetch("SELECT a.invoice_id, l.kind, l.value FROM learned_payers l"
                               " JOIN allocations a USING (tenant_id, allocation_id)"
                               " ORDER BY l.kind")
    assert [tuple(r) for r in learned] == [("INV-1", "iban", PAYER_IBAN),
                                           ("INV-1", "name", "G. CORP HOLDING")]
    undone = await conn.fetchrow("SELECT * FROM allocations WHERE invoice_id = 'INV-2'")
    assert (undone["undone_by"], undone["undo_reason"], undone["decided_by"]) == (
        "bob", "paid by a stranger", None)
    assert undone["undone_at"] is not None and undone["note"] is None
    applied = await conn.fetchrow("SELECT * FROM allocations WHERE invoice_id = 'INV-1'")
    assert (applied["decided_by"], applied["undone_by"]) == ("alice", None)
