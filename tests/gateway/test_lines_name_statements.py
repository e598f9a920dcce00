"""Lines name stored statements (migration 0012): checked once per INSERT over the rows it
wrote, on an update that moves a line, and when a statement is removed."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.ingest import ingest
from tests.gateway.test_ingest_stream import camt, statement


async def test_a_line_naming_no_stored_statement_is_refused(db: asyncpg.Connection) -> None:
    result = await ingest(db, camt(statement(5)), source="s.xml")
    stored = result.statements[0]
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO transactions (tenant_id, account_id, entry_id, statement_pk, amount,"
            " currency, status, details) VALUES ('default', $1, 'x', $2, 1, 'EUR', 'booked',"
            " '{}')", stored.account_id, stored.statement_pk + 1)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO statement_lines (tenant_id, account_id, statement_pk, position,"
            " entry_id, outcome) VALUES ('default', $1, $2, 0, 'x', 'known')",
            stored.account_id, stored.statement_pk + 1)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("UPDATE transactions SET statement_pk = statement_pk + 1")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("DELETE FROM statements WHERE statement_pk = $1", stored.statement_pk)
    await db.execute("UPDATE transactions SET matched_at = now()")  # other columns: free
    assert await db.fetchval("SELECT count(*) FROM transactions") == 5
