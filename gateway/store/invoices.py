"""customers and invoices: upserted in bulk, idempotently, as the CRM sends them.

Ownership: every row records the API key that first pushed it (``owner_key_id``). The
functions here take ``owner``, the acting crm key's id, or None for a key that acts on every
row (admin, treasury, the command line). With an owner, reads see only that key's rows, and
writes refuse, whole, a batch naming a row another key owns (``NotOwned``), rather than take
it over. Unowned rows (pushed by an admin, or before ownership existed) are no crm key's:
only ``claim`` (the operator's ``invoices import --key``) hands them, and rows of revoked
keys, to a key.

Audit: ``upsert`` and ``upsert_customers`` append an entry for every invoice and customer
they create or change (``actor``: who acts; a system actor when the caller names none), in
their transaction (a savepoint of the caller's, when it has one). A customer's name, IBANs
and aliases appear there only as references (``gateway.store.audit.reference``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.store import audit
from gateway.store import learned as learned_store
from matching.invoices import Customer, Invoice, InvoiceKind
from parsers.jsonl import decimal_text
from parsers.money import Money


class NotOwned(Exception):
    """A batch names rows another API key owns; nothing of it was stored."""

    def __init__(self, refused: list[tuple[int, str, str]]) -> None:
        super().__init__(f"{len(refused)} record(s) name rows another API key owns")
        self.refused = refused  # (record number from 1, id, field)


# With an owner ($n), a row may be written when it is that key's; with claim ($n + 1), also
# when no active key owns it. Without an owner (NULL), every row may.
def _writable(alias: str, owner: int) -> str:
    return (f"(${owner}::text IS NULL OR {alias}.owner_key_id = ${owner} OR (${owner + 1}"  # noqa: S608
            f" AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.key_id = {alias}.owner_key_id"
            f" AND k.revoked_at IS NULL)))")


async def _refuse_foreign(conn: asyncpg.Connection, tenant: str, owner: str | None, *,
                          invoices: Sequence[Invoice] = (),
                          customers: Sequence[str] = ()) -> None:
    """After a batch's writes, in its transaction: raise ``NotOwned`` (so the caller's
    transaction rolls back) if any invoice, customer or related invoice it names exists and
    is not ``owner``'s. Run after the writes, so a row another key inserted at the same
    moment (our insert waited for it) is seen too."""
    if owner is None:
        return
    foreign = await conn.fetch(
        """
        SELECT 'invoice_id' AS field, invoice_id AS id FROM invoices
        WHERE tenant_id = $1 AND invoice_id = ANY($3::text[])
          AND owner_key_id IS DISTINCT FROM $2
        UNION ALL
        SELECT 'related_invoice_id', invoice_id FROM invoices
        WHERE tenant_id = $1 AND invoice_id = ANY($4::text[])
          AND owner_key_id IS DISTINCT FROM $2
        UNION ALL
        SELECT 'customer_id', customer_id FROM customers
        WHERE tenant_id = $1 AND customer_id = ANY($5::text[])
          AND owner_key_id IS DISTINCT FROM $2
        """,
        tenant, owner, [i.invoice_id for i in invoices],
        [i.related_invoice_id for i in invoices if i.related_invoice_id],
        sorted({i.customer_id for i in invoices} | set(customers)))
    if not foreign:
        return
    ids = {(r["field"], r["id"]) for r in foreign}
    refused = []
    for number, invoice in enumerate(invoices, 1):
        for field, value in (("invoice_id", invoice.invoice_id),
                             ("customer_id", invoice.customer_id),
                             ("related_invoice_id", invoice.related_invoice_id)):
            if (field, value) in ids:
                refused.append((number, str(value), field))
    refused += [(number, customer_id, "customer_id")
                for number, customer_id in enumerate(customers, 1)
                if ("customer_id", customer_id) in ids]
    raise NotOwned(refused)


async def ensure_customers(conn: asyncpg.Connection, tenant: str,
                           invoices: Sequence[Invoice], *, owner: str | None = None,
                           claim: bool = False) -> None:
    """Register the customers the invoices name (as ``owner``'s); a name given on an
    invoice updates theirs. Another key's customers are left alone (the caller refuses)."""
    named = {i.customer_id: i.customer_name for i in invoices if i.customer_name}
    await conn.executemany(
        f"""
        INSERT INTO customers AS c (tenant_id, customer_id, name, owner_key_id)
        VALUES ($1, $2, $3, $5)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
            name = CASE WHEN $4 THEN excluded.name ELSE c.name END,
            owner_key_id = coalesce($5, c.owner_key_id), updated_at = now()
        WHERE {_writable("c", 5)}
          AND (($4 AND c.name IS DISTINCT FROM excluded.name)
               OR c.owner_key_id IS DISTINCT FROM coalesce($5, c.owner_key_id))
        """,  # noqa: S608 - _writable is constant SQL with parameter numbers
        [(tenant, customer_id, named.get(customer_id, customer_id), customer_id in named,
          owner, claim)
         for customer_id in sorted({i.customer_id for i in invoices})],
    )


STORE_ACTOR = audit.system_actor("invoice store")  # a caller that names no actor


async def _customer_states(conn: asyncpg.Connection, tenant: str,
                           ids: list[str]) -> dict[str, dict[str, Any]]:
    """The customers' audited state, locked (before a change; after it, rows already
    ours)."""
    rows = await conn.fetch(
        "SELECT customer_id, name, ibans, aliases, owner_key_id FROM customers"
        " WHERE tenant_id = $1 AND customer_id = ANY($2::text[]) ORDER BY customer_id"
        " FOR UPDATE", tenant, ids)
    return {r["customer_id"]: {
        "name": audit.reference(r["name"]),
        "ibans": [audit.reference(iban) for iban in r["ibans"] or ()],
        "aliases": [audit.reference(alias) for alias in r["aliases"] or ()],
        "owner_key_id": r["owner_key_id"]} for r in rows}


async def _invoice_states(conn: asyncpg.Connection, tenant: str,
                          ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT invoice_id, customer_id, kind, currency, amount, crm_open_amount, issue_date,"
        " due_date, reference, related_invoice_id, cancelled, owner_key_id FROM invoices"
        " WHERE tenant_id = $1 AND invoice_id = ANY($2::text[]) ORDER BY invoice_id"
        " FOR UPDATE", tenant, ids)
    return {r["invoice_id"]: {
        "customer_id": r["customer_id"], "kind": r["kind"], "currency": r["currency"],
        "amount": r["amount"], "open_amount": r["crm_open_amount"],
        "issue_date": r["issue_date"], "due_date": r["due_date"],
        "reference": r["reference"], "related_invoice_id": r["related_invoice_id"],
        "cancelled": r["cancelled"], "owner_key_id": r["owner_key_id"]} for r in rows}


def _changes(kind: str, before: dict[str, dict[str, Any]],
             after: dict[str, dict[str, Any]]) -> list[audit.Change]:
    changes = []
    for ident in sorted(after):
        old, new = before.get(ident), after[ident]
        if old == new:
            continue
        verb = ("created" if old is None else
                "cancelled" if new.get("cancelled") and not old.get("cancelled") else
                "updated")
        changes.append(audit.Change(f"{kind}.{verb}", kind, ident, old, new))
    return changes


async def upsert_customers(conn: asyncpg.Connection, tenant: str,
                           customers: Sequence[Customer], *, owner: str | None = None,
                           claim: bool = False,
                           actor: Mapping[str, str] | None = None) -> None:
    """Store the customers as ``owner``'s; ``NotOwned`` if any is another key's (nothing
    of the batch is stored then)."""
    ids = sorted({c.customer_id for c in customers})
    async with conn.transaction():
        before = await _customer_states(conn, tenant, ids)
        await _upsert_customers(conn, tenant, customers, owner=owner, claim=claim)
        after = await _customer_states(conn, tenant, ids)
        await audit.append_many(conn, tenant, actor=actor or STORE_ACTOR,
                                changes=_changes("customer", before, after))


async def _upsert_customers(conn: asyncpg.Connection, tenant: str,
                            customers: Sequence[Customer], *, owner: str | None,
                            claim: bool) -> None:
    await conn.executemany(
        f"""
        INSERT INTO customers AS c (tenant_id, customer_id, name, ibans, aliases, owner_key_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE SET name = excluded.name,
            ibans = excluded.ibans, aliases = excluded.aliases,
            owner_key_id = coalesce($6, c.owner_key_id), updated_at = now()
        WHERE {_writable("c", 6)}
        """,  # noqa: S608 - _writable is constant SQL with parameter numbers
        [(tenant, c.customer_id, c.name, list(c.ibans), list(c.aliases), owner, claim)
         for c in sorted(customers, key=lambda c: c.customer_id)],  # one lock order
    )
    await _refuse_foreign(conn, tenant, owner, customers=[c.customer_id for c in customers])


async def upsert(conn: asyncpg.Connection, tenant: str, invoices: Sequence[Invoice], *,
                 owner: str | None = None, claim: bool = False,
                 actor: Mapping[str, str] | None = None) -> tuple[int, int]:
    """Insert or update invoices as ``owner``'s; return (created, updated). Unchanged ones
    count as neither. ``NotOwned`` if the batch names another key's invoice or customer
    (nothing of the batch is stored then)."""
    invoice_ids = sorted({i.invoice_id for i in invoices})
    customer_ids = sorted({i.customer_id for i in invoices})
    async with conn.transaction():
        customers = await _customer_states(conn, tenant, customer_ids)
        before = await _invoice_states(conn, tenant, invoice_ids)
        counts = await _upsert(conn, tenant, invoices, owner=owner, claim=claim)
        changes = _changes("customer", customers,
                           await _customer_states(conn, tenant, customer_ids))
        changes += _changes("invoice", before,
                            await _invoice_states(conn, tenant, invoice_ids))
        await audit.append_many(conn, tenant, actor=actor or STORE_ACTOR, changes=changes)
    return counts


async def _upsert(conn: asyncpg.Connection, tenant: str, invoices: Sequence[Invoice], *,
                  owner: str | None, claim: bool) -> tuple[int, int]:
    await ensure_customers(conn, tenant, invoices, owner=owner, claim=claim)
    batch = sorted(invoices, key=lambda i: i.invoice_id)  # one lock order: no deadlock
    rows = await conn.fetch(
        f"""
        INSERT INTO invoices AS i (tenant_id, invoice_id, customer_id, kind, currency, amount,
            crm_open_amount, issue_date, due_date, reference, related_invoice_id, cancelled,
            owner_key_id)
        SELECT $1, *, $13 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
            $6::numeric[], $7::numeric[], $8::date[], $9::date[], $10::text[], $11::text[],
            $12::boolean[])
        ON CONFLICT (tenant_id, invoice_id) DO UPDATE SET
            owner_key_id = coalesce($13, i.owner_key_id),
            customer_id = excluded.customer_id, kind = excluded.kind,
            currency = excluded.currency, amount = excluded.amount,
            crm_open_amount = excluded.crm_open_amount, issue_date = excluded.issue_date,
            due_date = excluded.due_date, reference = excluded.reference,
            related_invoice_id = excluded.related_invoice_id, cancelled = excluded.cancelled,
            updated_at = now()
        WHERE {_writable("i", 13)}
          AND ((i.customer_id, i.kind, i.currency, i.amount, i.crm_open_amount, i.issue_date,
               i.due_date, i.reference, i.related_invoice_id, i.cancelled, i.owner_key_id)
          IS DISTINCT FROM
              (excluded.customer_id, excluded.kind, excluded.currency, excluded.amount,
               excluded.crm_open_amount, excluded.issue_date, excluded.due_date,
               excluded.reference, excluded.related_invoice_id, excluded.cancelled,
               coalesce($13, i.owner_key_id)))
        RETURNING (xmax = 0) AS created
        """,  # noqa: S608 - _writable is constant SQL with parameter numbers
        tenant,
        [i.invoice_id for i in batch], [i.customer_id for i in batch],
        [i.kind.value for i in batch], [i.currency for i in batch],
        [i.amount.amount for i in batch], [i.open_amount.amount for i in batch],
        [i.issue_date for i in batch], [i.due_date for i in batch],
        [i.reference for i in batch], [i.related_invoice_id for i in batch],
        [i.cancelled for i in batch], owner, claim,
    )
    await _refuse_foreign(conn, tenant, owner, invoices=invoices)
    created = sum(1 for r in rows if r["created"])
    return created, len(rows) - created


async def get(conn: asyncpg.Connection, tenant: str, invoice_id: str, *,
              owner: str | None = None) -> asyncpg.Record | None:
    """The invoice; with ``owner``, only if it is that key's."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM invoices WHERE tenant_id = $1 AND invoice_id = $2"
        " AND ($3::text IS NULL OR owner_key_id = $3)", tenant, invoice_id, owner)
    return row


def _public(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("tenant_id", None)
    for key in ("amount", "open_amount", "crm_open_amount", "settled_amount"):
        out[key] = decimal_text(out[key])
    for key in ("issue_date", "due_date", "created_at", "updated_at"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


async def get_public(conn: asyncpg.Connection, tenant: str, invoice_id: str, *,
                     owner: str | None = None) -> dict[str, Any] | None:
    row = await get(conn, tenant, invoice_id, owner=owner)
    return _public(row) if row else None


async def list_page(conn: asyncpg.Connection, tenant: str, *, status: str | None,
                    customer_id: str | None, due_before: date | None, after: str | None,
                    limit: int, owner: str | None = None) -> list[dict[str, Any]]:
    """A page of invoices; with ``owner``, of that key's only."""
    rows = await conn.fetch(
        """
        SELECT * FROM invoices
        WHERE tenant_id = $1 AND invoice_id > $2
          AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR customer_id = $4)
          AND ($5::date IS NULL OR due_date <= $5)
          AND ($7::text IS NULL OR owner_key_id = $7)
        ORDER BY invoice_id LIMIT $6
        """,
        tenant, after or "", status, customer_id, due_before, limit, owner,
    )
    return [_public(r) for r in rows]


async def list_customers(conn: asyncpg.Connection, tenant: str, *, after: str | None,
                         limit: int, owner: str | None = None) -> list[dict[str, Any]]:
    """A page of customers; with ``owner``, of that key's only."""
    rows = await conn.fetch(
        "SELECT customer_id, name, ibans, aliases, owner_key_id FROM customers"
        " WHERE tenant_id = $1 AND customer_id > $2"
        " AND ($4::text IS NULL OR owner_key_id = $4) ORDER BY customer_id LIMIT $3",
        tenant, after or "", limit, owner,
    )
    # What decisions taught is shown apart from what the CRM sent (a sync never erases it).
    learned = await learned_store.of_customers(conn, tenant, [r["customer_id"] for r in rows])
    return [{**dict(r), "learned": learned_store.public(learned.get(r["customer_id"]))}
            for r in rows]


_ENGINE_COLUMNS = (
    "SELECT invoice_id, customer_id, kind, currency, amount, open_amount, issue_date,"
    " due_date, reference, related_invoice_id, cancelled, c.name AS customer_name"
    " FROM invoices JOIN customers c USING (tenant_id, customer_id)")


def _engine_invoice(r: asyncpg.Record) -> Invoice:
    return Invoice(
        invoice_id=r["invoice_id"], customer_id=r["customer_id"],
        amount=Money(r["amount"], r["currency"]),
        open_amount=Money(r["open_amount"], r["currency"]),
        issue_date=r["issue_date"], due_date=r["due_date"], customer_name=r["customer_name"],
        reference=r["reference"], kind=InvoiceKind(r["kind"]), cancelled=r["cancelled"],
        related_invoice_id=r["related_invoice_id"],
    )


async def load_all(conn: asyncpg.Connection, tenant: str) -> list[Invoice]:
    """Every invoice of the tenant as the engine sees it (its open amount is the effective one)."""
    rows = await conn.fetch(_ENGINE_COLUMNS + " WHERE tenant_id = $1 ORDER BY invoice_id",
                            tenant)
    return [_engine_invoice(r) for r in rows]


async def load_some(conn: asyncpg.Connection, tenant: str,
                    invoice_ids: Sequence[str]) -> list[Invoice]:
    """The named invoices as the engine sees them (those that exist), by invoice id."""
    rows = await conn.fetch(
        _ENGINE_COLUMNS + " WHERE tenant_id = $1 AND invoice_id = ANY($2::text[])"
        " ORDER BY invoice_id", tenant, list(invoice_ids))
    return [_engine_invoice(r) for r in rows]


async def versions(conn: asyncpg.Connection, tenant: str,
                   invoice_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Each invoice's version (of ``invoice_ids``, or all) as the engine sees it: it changes
    whenever the invoice or its customer's row is written (the rows' ``xmin``: the
    transaction that wrote them)."""
    query = ("SELECT i.invoice_id, i.xmin::text || '/' || c.xmin::text AS version"
             " FROM invoices i JOIN customers c USING (tenant_id, customer_id)"
             " WHERE i.tenant_id = $1")
    if invoice_ids is None:
        rows = await conn.fetch(query, tenant)
    else:  # a statement of its own: planned for the few ids, by the primary key
        rows = await conn.fetch(query + " AND i.invoice_id = ANY($2::text[])", tenant,
                                list(invoice_ids))
    return {r["invoice_id"]: r["version"] for r in rows}


async def customers_version(conn: asyncpg.Connection, tenant: str) -> str:
    """A version of the tenant's customers and what decisions taught about them: it
    changes whenever any of them is written or removed."""
    version: str = await conn.fetchval(
        """
        SELECT concat_ws('/',
            (SELECT count(*) || ':' || coalesce(md5(string_agg(
                customer_id || ':' || xmin::text, ',' ORDER BY customer_id)), '')
             FROM customers WHERE tenant_id = $1),
            (SELECT count(*) || ':' || coalesce(md5(string_agg(
                allocation_id::text || kind || ':' || xmin::text, ','
                ORDER BY allocation_id, kind)), '')
             FROM learned_payers WHERE tenant_id = $1))
        """, tenant)
    return version


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


_LOCK_WAITING = ("SELECT * FROM invoices WHERE tenant_id = $1 AND invoice_id = ANY($2::text[])"
                 ' ORDER BY invoice_id COLLATE "C" FOR NO KEY UPDATE')
_LOCK_SKIPPING = _LOCK_WAITING + " SKIP LOCKED"


async def lock_for_settling(conn: asyncpg.Connection, tenant: str, invoice_ids: Sequence[str],
                            *, wait: bool = True) -> dict[str, asyncpg.Record]:
    """These invoices as they are now, their rows locked as counting a settlement on them
    locks them (``FOR NO KEY UPDATE``) until the transaction ends; by id.

    Locked in invoice id order (code point order, ``COLLATE "C"``: Python's ``sorted``,
    the order people's decisions update invoices in), so the two never deadlock. With
    ``wait`` false an invoice another transaction holds is left out rather than waited for.
    """
    if not invoice_ids:
        return {}
    rows = await conn.fetch(_LOCK_WAITING if wait else _LOCK_SKIPPING, tenant,
                            sorted(set(invoice_ids)))
    return {r["invoice_id"]: r for r in rows}


async def settle(conn: asyncpg.Connection, tenant: str,
                 changes: Sequence[tuple[str, str, Decimal, Decimal]]) -> dict[str, asyncpg.Record]:
    """Count each change (invoice id, currency, needed, settled) as settled by allocations,
    each invoice at most once per call, where the invoice still takes it: not cancelled,
    in that currency, with ``needed`` or more open. Returns the invoices changed as they
    are now, by id; one that no longer takes its change is left as it was, and out.

    The guard is what the engine decided against; a caller holding the rows' locks
    (``lock_for_settling``) has checked it already, and finds every invoice changed.
    """
    if not changes:
        return {}
    ids, currencies, needed, settled = (list(c) for c in zip(*changes, strict=True))
    rows = await conn.fetch(
        """
        UPDATE invoices i SET settled_amount = i.settled_amount + c.settled,
                              updated_at = now()
        FROM unnest($2::text[], $3::text[], $4::numeric[], $5::numeric[])
             AS c(invoice_id, currency, needed, settled)
        WHERE i.tenant_id = $1 AND i.invoice_id = c.invoice_id AND i.currency = c.currency
          AND NOT i.cancelled AND i.open_amount >= c.needed
        RETURNING i.*
        """,
        tenant, ids, currencies, needed, settled)
    return {r["invoice_id"]: r for r in rows}
