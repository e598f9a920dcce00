"""What waits for the reconcile workers: payments not yet matched, changed invoices and
customers (migration 0010), and the queue's state for the API and metrics.

A payment waits while ``transactions.matched_at`` is NULL (new lines, and payments a
person's reject or undo handed back); an invoice or customer changed by the CRM or by a
person waits in ``reconcile_work`` (queued by triggers). Workers wake on NOTIFY
``recon_reconcile`` with the tenant as payload.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.store.transactions import payment_key
from matching.model import Payment
from parsers.model import Charge, FxDetails
from parsers.money import Money

CHANNEL = "recon_reconcile"

# An incoming booked line the engine matches (the same as every pass has always taken).
_PAYMENT = ("t.amount > 0 AND t.status = 'booked' AND NOT t.reversal AND NOT t.provisional"
            " AND coalesce(t.booking_date, t.value_date) IS NOT NULL")
_COLUMNS = ("t.account_id, t.entry_id, t.booking_date, t.value_date, t.amount, t.currency,"
            " t.bank_reference, t.counterparty_name, t.counterparty_account,"
            " t.end_to_end_id, t.remittance, t.creditor_reference, t.details")

Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Change:
    """An invoice or customer queued for matching (its row in ``reconcile_work``)."""

    work_id: int
    subject: str            # "invoice" or "customer"
    subject_id: str
    queued_at: datetime


def _payments(rows: Sequence[asyncpg.Record]) -> list[tuple[int, Payment]]:
    out = []
    for row in rows:
        booked = row["booking_date"] or row["value_date"]
        if booked is None:
            continue
        details: dict[str, Any] = json.loads(row["details"])
        out.append((row["account_id"], Payment(
            key=payment_key(row["account_id"], row["entry_id"]),
            entry_id=row["entry_id"], booking_date=booked,
            amount=Money(row["amount"], row["currency"]),
            bank_reference=row["bank_reference"], payer_name=row["counterparty_name"],
            payer_account=row["counterparty_account"],
            remittance=row["remittance"] or details.get("additional_info"),
            end_to_end_id=row["end_to_end_id"], creditor_reference=row["creditor_reference"],
            fx=_fx(details.get("fx")), charges=_charges(details.get("charges") or []),
        )))
    return out


async def unallocated(conn: asyncpg.Connection, tenant: str) -> list[tuple[int, Payment]]:
    """Every payment with no proposed or applied allocation, matched before or not (what a
    full pass matches), oldest first. Keys from two plain scans and a difference, then the
    payments of those keys (see ``unmatched_keys`` for why no anti-join)."""
    keys = await _keys(conn, tenant, matched=False) - await allocated_keys(conn, tenant)
    return await payments(conn, tenant, sorted(keys))


async def waiting(conn: asyncpg.Connection, tenant: str, *,
                  limit: int) -> list[tuple[int, Payment]]:
    """Payments never matched (or handed back), oldest first, at most ``limit``. One a
    person allocated meanwhile is among them: the pass leaves it to them (``taken``)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM transactions t"  # noqa: S608 - constant fragments only
        f" WHERE t.tenant_id = $1 AND t.matched_at IS NULL AND {_PAYMENT}"
        " ORDER BY t.seq LIMIT $2", tenant, limit)
    return _payments(rows)


async def unmatched(conn: asyncpg.Connection, tenant: str) -> list[tuple[int, Payment]]:
    """Payments matched before that hold no allocation: what a changed invoice may settle,
    oldest first."""
    return await payments(conn, tenant, sorted(await unmatched_keys(conn, tenant)))


async def unmatched_keys(conn: asyncpg.Connection, tenant: str) -> set[str]:
    """The payment keys of ``unmatched``, without the payments (which payments a worker's
    index should hold). Two plain scans and a difference here, not an anti-join: with
    statistics taken before the workers marked anything, the planner ran that join as a
    nested loop, 78 s instead of 40 ms."""
    return await _keys(conn, tenant, matched=True) - await allocated_keys(conn, tenant)


async def _keys(conn: asyncpg.Connection, tenant: str, *, matched: bool) -> set[str]:
    """The keys of the tenant's payments: those matched before, or all."""
    rows = await conn.fetch(
        f"SELECT t.account_id, t.entry_id FROM transactions t"  # noqa: S608 - constants
        f" WHERE t.tenant_id = $1 AND {_PAYMENT}"
        + (" AND t.matched_at IS NOT NULL" if matched else ""), tenant)
    return {payment_key(r["account_id"], r["entry_id"]) for r in rows}


async def allocated_keys(conn: asyncpg.Connection, tenant: str,
                         keys: Sequence[str] | None = None) -> set[str]:
    """The payments (of ``keys``, or all) that hold a proposed or applied allocation."""
    pairs = [key.split("/", 1) for key in keys] if keys is not None else None
    rows = await conn.fetch(
        "SELECT DISTINCT a.account_id, a.entry_id FROM allocations a"
        " WHERE a.tenant_id = $1 AND a.status IN ('proposed', 'applied')"
        " AND ($2::bigint[] IS NULL OR (a.account_id, a.entry_id) IN ("
        "     SELECT * FROM unnest($2::bigint[], $3::text[])))",
        tenant, [int(a) for a, _ in pairs] if pairs is not None else None,
        [e for _, e in pairs] if pairs is not None else None)
    return {payment_key(r["account_id"], r["entry_id"]) for r in rows}


async def payments(conn: asyncpg.Connection, tenant: str,
                   keys: Sequence[str]) -> list[tuple[int, Payment]]:
    """The payments of these keys (``account_id/entry_id``), those that exist."""
    if not keys:
        return []
    pairs = [key.split("/", 1) for key in keys]
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM transactions t"  # noqa: S608 - constant fragments only
        " JOIN unnest($2::bigint[], $3::text[]) AS k(account_id, entry_id)"
        " USING (account_id, entry_id) WHERE t.tenant_id = $1 ORDER BY t.seq",
        tenant, [int(a) for a, _ in pairs], [e for _, e in pairs])
    return _payments(rows)


async def mark_matched(conn: asyncpg.Connection, tenant: str, keys: Sequence[Key]) -> None:
    """The payments a pass looked at: they wait no more."""
    if not keys:
        return
    await conn.execute(
        "UPDATE transactions t SET matched_at = now()"
        " FROM unnest($2::bigint[], $3::text[]) AS k(account_id, entry_id)"
        " WHERE t.tenant_id = $1 AND t.account_id = k.account_id AND t.entry_id = k.entry_id"
        " AND t.matched_at IS NULL",
        tenant, [k[0] for k in keys], [k[1] for k in keys])


async def hand_back(conn: asyncpg.Connection, tenant: str, keys: Sequence[Key]) -> None:
    """Payments to match again (a person rejected or undid their allocation)."""
    if not keys:
        return
    await conn.execute(
        "UPDATE transactions t SET matched_at = NULL"
        " FROM unnest($2::bigint[], $3::text[]) AS k(account_id, entry_id)"
        " WHERE t.tenant_id = $1 AND t.account_id = k.account_id AND t.entry_id = k.entry_id",
        tenant, [k[0] for k in keys], [k[1] for k in keys])
    await notify(conn, tenant)


async def retry_due(conn: asyncpg.Connection, tenant: str) -> int:
    """Failed payments whose backoff ran out wait again; how many."""
    result = await conn.execute(
        "UPDATE transactions t SET matched_at = NULL FROM reconcile_failures f"
        " WHERE f.tenant_id = $1 AND f.resolved_at IS NULL AND f.retry_at <= now()"
        " AND t.tenant_id = f.tenant_id AND t.account_id = f.account_id"
        " AND t.entry_id = f.entry_id AND t.matched_at IS NOT NULL", tenant)
    return int(result.split()[-1])


async def begin_pass(conn: asyncpg.Connection, tenant: str) -> tuple[str | None, str]:
    """Record the caller's transaction as the tenant's last pass (migration 0013; under the
    tenant's reconcile lock): the pass recorded before (None if none was) and this one."""
    row = await conn.fetchrow(
        "WITH before AS (SELECT last_pass FROM reconcile_passes WHERE tenant_id = $1)"
        " INSERT INTO reconcile_passes AS r (tenant_id, last_pass)"
        " VALUES ($1, pg_current_xact_id())"
        " ON CONFLICT (tenant_id) DO UPDATE SET last_pass = excluded.last_pass"
        " RETURNING (SELECT last_pass::text FROM before) AS before, r.last_pass::text AS now",
        tenant)
    if row is None:  # pragma: no cover - an upsert always returns its row
        raise RuntimeError("recording the pass returned nothing")
    return row["before"], row["now"]


async def changes(conn: asyncpg.Connection, tenant: str, *, limit: int) -> list[Change]:
    rows = await conn.fetch(
        "SELECT work_id, subject, subject_id, queued_at FROM reconcile_work"
        " WHERE tenant_id = $1 ORDER BY work_id LIMIT $2", tenant, limit)
    return [Change(r["work_id"], r["subject"], r["subject_id"], r["queued_at"])
            for r in rows]


async def done(conn: asyncpg.Connection, tenant: str, taken: Sequence[Change]) -> None:
    """Drop the changes a pass handled; those queued since stay."""
    if not taken:
        return
    await conn.execute("DELETE FROM reconcile_work WHERE tenant_id = $1"
                       " AND work_id = ANY($2::bigint[])", tenant, [c.work_id for c in taken])


async def clear(conn: asyncpg.Connection, tenant: str) -> None:
    """Every change of the tenant is handled (a full pass looked at every payment)."""
    await conn.execute("DELETE FROM reconcile_work WHERE tenant_id = $1", tenant)


async def tenants(conn: asyncpg.Connection) -> list[str]:
    """Tenants with something waiting (a loose scan of the waiting index: one probe a
    tenant, however many payments wait)."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE waiting(tenant_id) AS (
            (SELECT t.tenant_id FROM transactions t
             WHERE t.matched_at IS NULL AND {_PAYMENT} ORDER BY t.tenant_id LIMIT 1)
            UNION ALL
            SELECT (SELECT t.tenant_id FROM transactions t
                    WHERE t.matched_at IS NULL AND {_PAYMENT} AND t.tenant_id > w.tenant_id
                    ORDER BY t.tenant_id LIMIT 1)
            FROM waiting w WHERE w.tenant_id IS NOT NULL)
        SELECT tenant_id FROM waiting WHERE tenant_id IS NOT NULL
        UNION
        SELECT DISTINCT tenant_id FROM reconcile_work
        UNION
        SELECT DISTINCT tenant_id FROM reconcile_failures
        WHERE resolved_at IS NULL AND retry_at <= now()
        """)  # noqa: S608 - constant fragments only
    return sorted(r["tenant_id"] for r in rows)


async def notify(conn: asyncpg.Connection, tenant: str) -> None:
    """Wake the workers for ``tenant`` (delivered when the caller's transaction commits)."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)


async def status(conn: asyncpg.Connection, tenant: str) -> dict[str, Any]:
    """What waits for the workers, for the API and the command line."""
    row = await conn.fetchrow(
        f"""
        SELECT (SELECT count(*) FROM transactions t
                WHERE t.tenant_id = $1 AND t.matched_at IS NULL AND {_PAYMENT})
                   AS payments_waiting,
               (SELECT t.imported_at FROM transactions t
                WHERE t.tenant_id = $1 AND t.matched_at IS NULL AND {_PAYMENT}
                ORDER BY t.seq LIMIT 1) AS payments_since,
               (SELECT count(DISTINCT (subject, subject_id)) FROM reconcile_work
                WHERE tenant_id = $1) AS changes_waiting,
               (SELECT min(queued_at) FROM reconcile_work WHERE tenant_id = $1)
                   AS changes_since,
               (SELECT count(*) FROM reconcile_failures
                WHERE tenant_id = $1 AND resolved_at IS NULL) AS failures
        """, tenant)  # noqa: S608 - constant fragments only
    if row is None:  # pragma: no cover - an aggregate always answers one row
        raise RuntimeError("the queue's status query answered nothing")
    since = [t for t in (row["payments_since"], row["changes_since"]) if t is not None]
    return {
        "status": "idle" if not (row["payments_waiting"] or row["changes_waiting"])
        else "queued",
        "payments_waiting": row["payments_waiting"],
        "changes_waiting": row["changes_waiting"],
        "waiting_since": min(since).isoformat() if since else None,
        "failures": row["failures"],
    }


def _money(value: dict[str, str] | None) -> Money | None:
    return Money(Decimal(value["amount"]), value["currency"]) if value else None


def _fx(value: dict[str, Any] | None) -> FxDetails | None:
    if not value:
        return None
    return FxDetails(instructed_amount=_money(value.get("instructed_amount")),
                     rate=Decimal(value["rate"]) if value.get("rate") else None,
                     source_currency=value.get("source_currency"),
                     target_currency=value.get("target_currency"))


def _charges(values: list[dict[str, Any]]) -> tuple[Charge, ...]:
    charges = []
    for value in values:
        amount = _money(value.get("amount"))
        if amount is not None:
            charges.append(Charge(amount, value.get("included"), value.get("code")))
    return tuple(charges)
