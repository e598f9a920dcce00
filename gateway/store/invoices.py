"""customers and invoices: upserted in bulk, idempotently, as the CRM sends them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.store import learned as learned_store
from matching.invoices import Customer, Invoice, InvoiceKind
from parsers.jsonl import decimal_text
from parsers.money import Money


async def ensure_customers(conn: asyncpg.Connection, tenant: str,
                           invoices: Sequence[Invoice]) -> None:
    """Register the customers the invoices name; a name given on an invoice updates theirs."""
    named = {i.customer_id: i.customer_name for i in invoices if i.customer_name}
    await conn.executemany(
        """
        INSERT INTO customers (tenant_id, customer_id, name) VALUES ($1, $2, $3)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE SET name = excluded.name,
            updated_at = now()
        WHERE $4 AND customers.name IS DISTINCT FROM excluded.name
        """,
        [(tenant, customer_id, named.get(customer_id, customer_id), customer_id in named)
         for customer_id in sorted({i.customer_id for i in invoices})],
    )


async def upsert_customers(conn: asyncpg.Connection, tenant: str,
                           customers: Sequence[Customer]) -> None:
    await conn.executemany(
        """
        INSERT INTO customers (tenant_id, customer_id, name, ibans, aliases)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE SET name = excluded.name,
            ibans = excluded.ibans, aliases = excluded.aliases, updated_at = now()
        """,
        [(tenant, c.customer_id, c.name, list(c.ibans), list(c.aliases)) for c in customers],
    )


async def upsert(conn: asyncpg.Connection, tenant: str,
                 invoices: Sequence[Invoice]) -> tuple[int, int]:
    """Insert or update invoices; return (created, updated). Unchanged ones count as neither."""
    await ensure_customers(conn, tenant, invoices)
    rows = await conn.fetch(
        """
        INSERT INTO invoices AS i (tenant_id, invoice_id, customer_id, kind, currency, amount,
            crm_open_amount, issue_date, due_date, reference, related_invoice_id, cancelled)
        SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
            $6::numeric[], $7::numeric[], $8::date[], $9::date[], $10::text[], $11::text[],
            $12::boolean[])
        ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET
            customer_id = excluded.customer_id, kind = excluded.kind,
            currency = excluded.currency, amount = excluded.amount,
            crm_open_amount = excluded.crm_open_amount, issue_date = excluded.issue_date,
            due_date = excluded.due_date, reference = excluded.reference,
            related_invoice_id = excluded.related_invoice_id, cancelled = excluded.cancelled,
            updated_at = now()
        WHERE (i.customer_id, i.kind, i.currency, i.amount, i.crm_open_amount, i.issue_date,
               i.due_date, i.reference, i.related_invoice_id, i.cancelled)
          IS DISTINCT FROM
              (excluded.customer_id, excluded.kind, excluded.currency, excluded.amount,
               excluded.crm_open_amount, excluded.issue_date, excluded.due_date,
               excluded.reference, excluded.related_invoice_id, excluded.cancelled)
        RETURNING (xmax = 0) AS created
        """,
        tenant,
        [i.invoice_id for i in invoices], [i.customer_id for i in invoices],
        [i.kind.value for i in invoices], [i.currency for i in invoices],
        [i.amount.amount for i in invoices], [i.open_amount.amount for i in invoices],
        [i.issue_date for i in invoices], [i.due_date for i in invoices],
        [i.reference for i in invoices], [i.related_invoice_id for i in invoices],
        [i.cancelled for i in invoices],
    )
    created = sum(1 for r in rows if r["created"])
    return created, len(rows) - created


async def get(conn: asyncpg.Connection, tenant: str, invoice_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM invoices WHERE tenant_id = $1 AND invoice_id = $2", tenant, invoice_id)
    return row


def _public(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("tenant_id", None)
    for key in ("amount", "open_amount", "crm_open_amount", "settled_amount"):
        out[key] = decimal_text(out[key])
    for key in ("issue_date", "due_date", "created_at", "updated_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


async def get_public(conn: asyncpg.Connection, tenant: str,
                     invoice_id: str) -> dict[str, Any] | None:
    row = await get(conn, tenant, invoice_id)
    return _public(row) if row else None


async def list_page(conn: asyncpg.Connection, tenant: str, *, status: str | None,
                    customer_id: str | None, due_before: date | None, after: str | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT * FROM invoices
        WHERE tenant_id = $1 AND invoice_id > $2
          AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR customer_id = $4)
          AND ($5::date IS NULL OR due_date <= $5)
        ORDER BY invoice_id LIMIT $6
        """,
        tenant, after or "", status, customer_id, due_before, limit,
    )
    return [_public(r) for r in rows]


async def list_customers(conn: asyncpg.Connection, tenant: str, *, after: str | None,
                         limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT customer_id, name, ibans, aliases FROM customers"
        " WHERE tenant_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT $3",
        tenant, after or "", limit,
    )
    # What decisions taught is shown apart from what the CRM sent (a sync never erases it).
    learned = await learned_store.of_customers(conn, tenant, [r["customer_id"] for r in rows])
    return [{**dict(r), "learned": learned_store.public(learned.get(r["customer_id"]))}
            for r in rows]


async def load_all(conn: asyncpg.Connection, tenant: str) -> list[Invoice]:
    """Every invoice of the tenant as the engine sees it (its open amount is the effective one)."""
    rows = await conn.fetch(
        "SELECT invoice_id, customer_id, kind, currency, amount, open_amount, issue_date,"
        " due_date, reference, related_invoice_id, cancelled, c.name AS customer_name"
        " FROM invoices JOIN customers c USING (tenant_id, customer_id)"
        " WHERE tenant_id = $1 ORDER BY invoice_id",
        tenant,
    )
    return [Invoice(
        invoice_id=r["invoice_id"], customer_id=r["customer_id"],
        amount=Money(r["amount"], r["currency"]),
        open_amount=Money(r["open_amount"], r["currency"]),
        issue_date=r["issue_date"], due_date=r["due_date"], customer_name=r["customer_name"],
        reference=r["reference"], kind=InvoiceKind(r["kind"]), cancelled=r["cancelled"],
        related_invoice_id=r["related_invoice_id"],
    ) for r in rows]


async def load_customers(conn: asyncpg.Connection, tenant: str) -> list[Customer]:
    rows = await conn.fetch(
        "SELECT customer_id, name, ibans, aliases FROM customers WHERE tenant_id = $1"
        " ORDER BY customer_id", tenant)
    return [Customer(r["customer_id"], r["name"], tuple(r["ibans"]), tuple(r["aliases"]))
            for r in rows]


async def add_settled(conn: asyncpg.Connection, tenant: str, invoice_id: str,
                      delta: Decimal) -> asyncpg.Record | None:
    """Count ``delta`` more (or, negative, less) as settled by allocations; return the
    invoice as it is now."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "UPDATE invoices SET settled_amount = settled_amount + $3, updated_at = now()"
        " WHERE tenant_id = $1 AND invoice_id = $2 RETURNING *",
        tenant, invoice_id, delta,
    )
    return row
