"""audit_log: the audit trail's one place (migration 0014, docs/audit.md).

``append`` is the only writer: it takes the tenant's chain head under a transaction-scoped
advisory lock, makes the entry with ``security.audit`` and inserts it, in the caller's
transaction, so the entry and the change it records are committed together or not at all.
The lock is held until that transaction ends, so a tenant's changes that append are
serialized from the append on: append last, just before the commit, where a transaction
does other long work.

Who acts: ``key_actor`` for an API key (its id and name), ``system_actor`` for a command or
a worker. Sensitive values (IBANs, names, remittance text, secrets) never go in ``before``
or ``after`` as text: ``reference`` gives a short hash to put there instead, until the
blind indexes of encryption at rest replace it.

Reading: ``entries`` gives a chain's entries as exported (security.audit's JSON, in seq
order), ``page`` the filtered pages of GET /v1/audit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from security import audit
from security.audit import Entry, Head

# First key of the two-integer advisory locks of audit chains (the second: the tenant's
# hashtext); one-integer locks (reconcile, ingest, migrate) live in another key space.
LOCK_CLASS = int.from_bytes(b"audt", "big") & 0x7FFF_FFFF


class AuditError(RuntimeError):
    """An entry cannot be appended as asked (outside a transaction)."""


def key_actor(key_id: str, name: str) -> dict[str, str]:
    """An API key acting (the request's principal)."""
    return audit.actor("api_key", key_id, name)


def user_actor(who: str) -> dict[str, str]:
    """A person named by the caller, where no API key is known (``by`` of a decision)."""
    return audit.actor("user", who)


def system_actor(what: str) -> dict[str, str]:
    """A command run on the server (``"keys create"``) or a worker (``"reconcile worker"``)."""
    return audit.actor("system", what)


REDACTED = "redacted"


def reference(value: str | None) -> str | None:
    """A sensitive value as the trail may hold it: only that there is one. An unkeyed hash
    would not do: the trail can never be changed, and an IBAN or a name can be guessed
    from its hash; a keyed blind index will take this place once those columns are
    encrypted (docs/audit.md)."""
    return None if value is None else REDACTED


async def head(conn: asyncpg.Connection, tenant: str) -> Head:
    """The tenant's chain head (``START`` before its first entry)."""
    row = await conn.fetchrow("SELECT seq, hash FROM audit_log WHERE tenant_id = $1"
                              " ORDER BY seq DESC LIMIT 1", tenant)
    return audit.START if row is None else Head(row["seq"], row["hash"])


@dataclass(frozen=True, slots=True)
class Change:
    """One state change to record: ``action`` (``<thing>.<verb>``) on the object
    ``object_type``/``object_id``, its state ``before`` and ``after`` (None: absent)."""

    action: str
    object_type: str
    object_id: str | int
    before: Any = None
    after: Any = None


async def append(conn: asyncpg.Connection, tenant: str, *, actor: Mapping[str, str],
                 action: str, object_type: str, object_id: str | int, before: Any = None,
                 after: Any = None, time: datetime | None = None) -> Entry:
    """Append an entry to ``tenant``'s chain in the transaction ``conn`` is in (one line
    beside the change it records). ``AuditError`` outside a transaction."""
    made = await append_many(conn, tenant, actor=actor, time=time, changes=[
        Change(action, object_type, object_id, before, after)])
    return made[0]


async def append_many(conn: asyncpg.Connection, tenant: str, *, actor: Mapping[str, str],
                      changes: Sequence[Change], time: datetime | None = None
                      ) -> list[Entry]:
    """Append an entry per change, in order, with one lock and one INSERT (a batch of
    invoices, a statement's lines). ``AuditError`` outside a transaction."""
    if not conn.is_in_transaction():
        raise AuditError("an audit entry is appended in the transaction of the change it "
                         "records: open one first")
    if not changes:
        return []
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, tenant)
    when = datetime.now(UTC) if time is None else time
    last = await head(conn, tenant)
    made = []
    for change in changes:
        entry = audit.new_entry(last, time=when, actor=actor, action=change.action,
                                object={"type": change.object_type,
                                        "id": str(change.object_id)},
                                before=change.before, after=change.after)
        made.append(entry)
        last = entry.head
    await conn.execute(
        "INSERT INTO audit_log (tenant_id, seq, time, actor, action, object, before, after,"
        " prev, hash) SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[],"
        " $4::jsonb[], $5::text[], $6::jsonb[], $7::jsonb[], $8::jsonb[], $9::text[],"
        " $10::text[])",
        tenant, [e.seq for e in made], [_instant(e.time) for e in made],
        [json.dumps(e.actor) for e in made], [e.action for e in made],
        [json.dumps(e.object) for e in made], [json.dumps(e.before) for e in made],
        [json.dumps(e.after) for e in made], [e.prev for e in made],
        [e.hash for e in made])
    return made


def _instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_json(row: asyncpg.Record) -> dict[str, Any]:
    """A stored row as its entry's JSON object (an export's line)."""
    return {"v": 1, "seq": row["seq"], "time": _time(row["time"]),
            "actor": json.loads(row["actor"]), "action": row["action"],
            "object": json.loads(row["object"]), "before": json.loads(row["before"]),
            "after": json.loads(row["after"]), "prev": row["prev"], "hash": row["hash"]}


async def tenants(conn: asyncpg.Connection) -> list[str]:
    """The tenants that have a chain."""
    rows = await conn.fetch(
        "WITH RECURSIVE t AS ("
        " (SELECT tenant_id FROM audit_log ORDER BY tenant_id LIMIT 1)"
        " UNION ALL SELECT (SELECT tenant_id FROM audit_log WHERE tenant_id > t.tenant_id"
        "  ORDER BY tenant_id LIMIT 1) FROM t WHERE t.tenant_id IS NOT NULL)"
        " SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL")
    return [row["tenant_id"] for row in rows]


async def entries(conn: asyncpg.Connection, tenant: str, *, first: int = 1,
                  last: int | None = None, batch: int = 2000
                  ) -> AsyncIterator[list[dict[str, Any]]]:
    """The tenant's entries from seq ``first`` to ``last`` (all when None), in seq order,
    in lists of up to ``batch``: each list one short query, so no transaction stays open."""
    after = first - 1
    while True:
        rows = await conn.fetch(
            "SELECT seq, time, actor, action, object, before, after, prev, hash"
            " FROM audit_log WHERE tenant_id = $1 AND seq > $2"
            " AND ($3::bigint IS NULL OR seq <= $3) ORDER BY seq LIMIT $4",
            tenant, after, last, batch)
        if not rows:
            return
        yield [as_json(row) for row in rows]
        after = rows[-1]["seq"]


@dataclass(frozen=True, slots=True)
class Filters:
    """GET /v1/audit's filters; None: any."""

    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page(conn: asyncpg.Connection, tenant: str, filters: Filters, *, after: int,
               limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` entries after seq ``after`` that pass ``filters``, in seq order."""
    rows = await conn.fetch(
        "SELECT seq, time, actor, action, object, before, after, prev, hash"
        " FROM audit_log WHERE tenant_id = $1 AND seq > $2"
        " AND ($3::text IS NULL OR action = $3)"
        " AND ($4::text IS NULL OR object ->> 'type' = $4)"
        " AND ($5::text IS NULL OR object ->> 'id' = $5)"
        " AND ($6::text IS NULL OR actor ->> 'id' = $6)"
        " AND ($7::timestamptz IS NULL OR time >= $7)"
        " AND ($8::timestamptz IS NULL OR time < $8)"
        " ORDER BY seq LIMIT $9",
        tenant, after, filters.action, filters.object_type, filters.object_id,
        filters.actor_id, filters.since, filters.until, limit)
    return [as_json(row) for row in rows]


async def unprotected(conn: asyncpg.Connection) -> str | None:
    """Why this connection's role could lift the trail's refusal of changes (a superuser,
    or the owner of ``audit_log``), or None (docs/operations.md)."""
    row = await conn.fetchrow(
        "SELECT r.rolsuper, pg_has_role(current_user, c.relowner, 'MEMBER') AS owner,"
        " current_user AS role FROM pg_class c, pg_roles r"
        " WHERE c.oid = 'audit_log'::regclass AND r.rolname = current_user")
    if row is None:
        return None
    if row["rolsuper"]:
        return f"the database role {row['role']} is a superuser"
    if row["owner"]:
        return f"the database role {row['role']} owns audit_log"
    return None


async def record_verification(conn: asyncpg.Connection, tenant: str, *, entries: int,
                              head_seq: int, problem: audit.Problem | None) -> None:
    """What a run of ``audit verify`` found for ``tenant``."""
    await conn.execute(
        "INSERT INTO audit_verifications (tenant_id, verified_at, entries, head_seq,"
        " problem_seq, problem_kind, problem) VALUES ($1, clock_timestamp(), $2, $3, $4,"
        " $5, $6)", tenant, entries, head_seq,
        None if problem is None else problem.seq,
        None if problem is None else problem.kind,
        None if problem is None else str(problem))


async def last_verification(conn: asyncpg.Connection, tenant: str) -> dict[str, Any] | None:
    """The last ``audit verify`` of ``tenant``: when, how far, and what it found."""
    row = await conn.fetchrow(
        "SELECT verified_at, entries, head_seq, problem_seq, problem_kind, problem"
        " FROM audit_verifications WHERE tenant_id = $1 ORDER BY verified_at DESC LIMIT 1",
        tenant)
    if row is None:
        return None
    return {"verified_at": _time(row["verified_at"]), "entries": row["entries"],
            "head_seq": row["head_seq"], "ok": row["problem"] is None,
            "problem": None if row["problem"] is None else {
                "seq": row["problem_seq"], "kind": row["problem_kind"],
                "detail": row["problem"]}}
