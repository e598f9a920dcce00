"""Migration 0007 on a database that already holds decisions: what people's applied
decisions taught is recovered from the decisions themselves, and an undo that had
overwritten its decision is moved to the undo columns."""

from __future__ import annotations

import asyncpg

from gateway.migrate import migrate, migrations
from tests.gateway.migration_support import add_account, add_invoices, add_statement, migrate_before
from tests.gateway.test_matches import PAYER_IBAN


async def test_decisions_taken_before_the_migration_keep_what_they_taught(
        conn: asyncpg.Connection) -> None:
    assert await migrate_before(conn, "decisions") == 6
    # Stored as version 6 stores lines: this code's import writes columns added later.
    account = await add_account(conn, "default")
    await add_statement(conn, "default", account, "camt.053", [
        ("R1", "booked", 100, "G. CORP HOLDING", PAYER_IBAN),
        ("R2", "booked", 200, "G. CORP HOLDING", PAYER_IBAN)])
    await add_invoices(conn, "default", [("INV-1", 100), ("INV-2", 200)])
    for reference, invoice_id, amount, status, by, note in (
            ("R1", "INV-1", 100, "applied", "alice", None),
            ("R2", "INV-2", 200, "undone", "bob", "paid by a stranger")):
        await conn.execute(
            "INSERT INTO allocations (tenant_id, account_id, entry_id, payment_key, invoice_id,"
            " amount, currency, payment_amount, settles, decision, status, created_by,"
            " decided_at, decided_by, note)"
            " SELECT 'default', account_id, entry_id, $1, $2, $3, 'EUR', $3, $3, 'review', $4,"
            " 'engine', now(), $5, $6 FROM transactions WHERE entry_id = $1",
            reference, invoice_id, amount, status, by, note)
    assert await migrate(conn) == len(migrations())

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
