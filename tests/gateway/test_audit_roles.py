"""The audit trail refuses to be changed (migration 0014): by its trigger, for everyone, and,
with the roles docs/operations.md sets up, the service's role cannot lift that refusal."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from gateway.cli import main
from gateway.migrate import migrate, migrations
from gateway.store import audit
from tests.databases import drop_database, with_database
from tests.paths import ROOT

APPEND = ("INSERT INTO audit_log (tenant_id, seq, time, actor, action, object, before, after,"
          " prev, hash) VALUES ('t1', $1, now(), '{}', 'test.done', '{}', 'null', 'null',"
          " repeat('0', 64), repeat('1', 64))")


async def test_the_trigger_refuses_changes_even_to_a_superuser(conn: asyncpg.Connection
                                                                ) -> None:
    await migrate(conn)
    await conn.execute(APPEND, 1)
    for statement in ("UPDATE audit_log SET action = 'other'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
    assert await conn.fetchval("SELECT action FROM audit_log") == "test.done"


_END = re.compile(r";[ ]*(?:--[^\n]*)?\n")  # a statement's end, and its comment


def _setup_block() -> str:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = page.split("## The audit trail's protection", 1)[1]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


@dataclass
class Roles:
    owner_url: str
    app_url: str


@pytest.fixture
async def roles(server_url: str) -> AsyncIterator[Roles]:
    """A database set up with the block of docs/operations.md, under names of its own
    (roles belong to the whole server)."""
    tag = uuid.uuid4().hex[:10]
    owner, app, database = f"recon_owner_{tag}", f"recon_app_{tag}", f"recon_test_{tag}"
    block = _setup_block().replace("recon_owner", owner).replace("recon_app", app)
    block = re.sub(r"\b(DATABASE|connect) recon\b", rf"\1 {database}", block)
    before, after = block.split(f"\\connect {database}\n")
    admin = await asyncpg.connect(server_url)
    try:
        for statement in filter(str.strip, re.split(_END, before)):
            await admin.execute(statement)
        inside = await asyncpg.connect(with_database(server_url, database))
        try:
            for statement in filter(str.strip, re.split(_END, after)):
                await inside.execute(statement)
        finally:
            await inside.close()
        url = with_database(server_url, database)
        yield Roles(re.sub(r"//[^@/]*@|//", f"//{owner}@", url, count=1),
                    re.sub(r"//[^@/]*@|//", f"//{app}@", url, count=1))
    finally:
        await drop_database(server_url, database)
        for role in (app, owner):
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


async def test_the_service_role_cannot_lift_the_refusal(roles: Roles) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(main, ["migrate", "--database-url", roles.owner_url],
                                   out=out, err=err)
    assert code == 0, err.getvalue()
    assert out.getvalue() == f"database ready at schema version {len(migrations())}\n"
    owner = await asyncpg.connect(roles.owner_url)
    try:
        assert (await audit.unprotected(owner) or "").endswith(" owns audit_log")
    finally:
        await owner.close()
    app = await asyncpg.connect(roles.app_url)
    try:
        assert not await app.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        await migrate(app)  # the schema is current: the service starts
        assert await audit.unprotected(app) is None
        await app.execute(APPEND, 1)
        await app.execute("INSERT INTO customers (tenant_id, customer_id, name)"
                          " VALUES ('t1', 'C1', 'Globex')")  # the rest it may write
        await app.execute("UPDATE customers SET name = 'Globex AG'")
        refused = {
            "UPDATE audit_log SET action = 'other'": "permission denied",
            "DELETE FROM audit_log": "permission denied",
            "TRUNCATE audit_log": "permission denied",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only": "must be owner",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL": "must be owner",
            "DROP TABLE audit_log": "must be owner",
            "ALTER TABLE audit_log RENAME TO old_log": "must be owner",
            "CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RETURN OLD; END $$": "permission denied",
            "SET session_replication_role = replica": "permission denied",
        }
        for statement, why in refused.items():
            with pytest.raises(asyncpg.PostgresError, match=why):
                await app.execute(statement)
        await app.execute("GRANT UPDATE ON audit_log TO CURRENT_USER")  # a warning, no grant
        with pytest.raises(asyncpg.PostgresError, match="permission denied"):
            await app.execute("UPDATE audit_log SET action = 'other'")
        assert await app.fetchval("SELECT count(*) FROM audit_log") == 1
    finally:
        await app.close()
