"""gateway.store.audit: entries appended in the caller's transaction, one chain per tenant
that concurrent writers never fork or break."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store import audit
from security.audit_verify import verify_chain

SYSTEM = audit.system_actor("test")


async def chain(conn: asyncpg.Connection, tenant: str) -> list[dict[str, object]]:
    return [entry async for batch in audit.entries(conn, tenant, batch=7) for entry in batch]


async def test_an_entry_is_stored_as_made_and_only_with_its_change(pool: asyncpg.Pool
                                                                   ) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(audit.AuditError, match="transaction"):
            await audit.append(conn, "t1", actor=SYSTEM, action="invoice.created",
                               object_type="invoice", object_id="4711")
        async with conn.transaction():
            made = await audit.append(
                conn, "t1", actor=audit.key_actor("k1", "billing crm"),
                action="invoice.created", object_type="invoice", object_id="4711",
                after={"amount": Decimal("100.00"), "customer": audit.reference("Globex")})
        with pytest.raises(RuntimeError, match="rolled back"):
            async with conn.transaction():
                await audit.append(conn, "t1", actor=SYSTEM, action="invoice.deleted",
                                   object_type="invoice", object_id="4711")
                raise RuntimeError("rolled back with the change")
        stored = await chain(conn, "t1")
    assert stored == [made.as_json()]
    assert stored[0]["after"] == {"amount": "100.00", "customer": audit.reference("Globex")}
    assert verify_chain(stored) is None


async def test_each_tenant_has_a_chain_of_its_own(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for tenant in ("t1", "t2", "t1"):
            async with conn.transaction():
                await audit.append(conn, tenant, actor=SYSTEM, action="x.done",
                                   object_type="x", object_id=1)
        assert await audit.tenants(conn) == ["t1", "t2"]
        assert [e["seq"] for e in await chain(conn, "t1")] == [1, 2]
        assert [e["seq"] for e in await chain(conn, "t2")] == [1]


WRITERS = st.lists(st.lists(st.booleans(), min_size=1, max_size=5), min_size=2, max_size=4)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writers=WRITERS)
async def test_concurrent_appends_never_fork_or_break_the_chain(
        pool: asyncpg.Pool, writers: list[list[bool]]) -> None:
    """Writers on connections of their own append at once, each in transactions that
    commit or roll back: the chain holds exactly the committed entries, seqs 1..n, each
    linked to the one before."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    start = asyncio.Event()

    async def write(number: int, commits: list[bool]) -> int:
        async with pool.acquire() as conn:
            await start.wait()
            for step, commit in enumerate(commits):
                try:
                    async with conn.transaction():
                        await audit.append(conn, tenant, actor=SYSTEM, action="x.done",
                                           object_type="writer", object_id=number,
                                           after={"step": step})
                        await asyncio.sleep(0)  # let the others queue on the lock
                        if not commit:
                            raise LookupError
                except LookupError:
                    pass
        return sum(commits)

    tasks = [asyncio.create_task(write(n, commits)) for n, commits in enumerate(writers)]
    start.set()
    committed = sum(await asyncio.gather(*tasks))
    async with pool.acquire() as conn:
        stored = await chain(conn, tenant)
    assert verify_chain(stored) is None
    assert [e["seq"] for e in stored] == list(range(1, committed + 1))
    for number, commits in enumerate(writers):  # each writer's own entries in its order
        steps = [e["after"]["step"] for e in stored if e["object"]["id"] == str(number)]
        assert steps == [s for s, commit in enumerate(commits) if commit]


def test_a_sensitive_value_leaves_no_hash_to_guess_it_by() -> None:
    iban = "DE89370400440532013000"
    assert audit.reference(iban) == audit.REDACTED
    assert hashlib.sha256(iban.encode()).hexdigest()[:16] not in str(audit.reference(iban))
    assert audit.reference(None) is None
