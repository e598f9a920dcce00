"""learned_payers: payer IBANs and names people's decisions taught the engine.

Kept apart from ``customers`` (which the CRM owns and replaces on every sync), one row per
(allocation, kind), so that undoing an allocation takes back exactly what it taught. A
value stays known while any applied allocation still teaches it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import asyncpg

from matching.invoices import Customer


@dataclass(slots=True)
class Learned:
    """What a customer's confirmed payers taught: IBANs (compact) and names."""

    ibans: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


async def learn(conn: asyncpg.Connection, tenant: str, allocation_id: int, customer_id: str,
                *, iban: str | None, name: str | None) -> None:
    """Record what the applied allocation ``allocation_id`` teaches about its customer."""
    rows = [(tenant, allocation_id, kind, customer_id, value)
            for kind, value in (("iban", iban), ("name", name and name.strip())) if value]
    await conn.executemany(
        "INSERT INTO learned_payers (tenant_id, allocation_id, kind, customer_id, value)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", rows)


async def unlearn(conn: asyncpg.Connection, tenant: str, allocation_id: int) -> None:
    """Take back what ``allocation_id`` taught; the same value taught by another live
    allocation has its own row and stays."""
    await conn.execute("DELETE FROM learned_payers WHERE tenant_id = $1 AND allocation_id = $2",
                       tenant, allocation_id)


async def of_customers(conn: asyncpg.Connection, tenant: str,
                       customer_ids: Sequence[str] | None = None) -> dict[str, Learned]:
    """What was learned, by customer (all of the tenant's, or those named), each value once."""
    rows = await conn.fetch(
        "SELECT DISTINCT customer_id, kind, value FROM learned_payers"
        " WHERE tenant_id = $1 AND ($2::text[] IS NULL OR customer_id = ANY($2::text[]))"
        " ORDER BY customer_id, kind, value",
        tenant, list(customer_ids) if customer_ids is not None else None)
    found: dict[str, Learned] = defaultdict(Learned)
    for row in rows:
        learned = found[row["customer_id"]]
        (learned.ibans if row["kind"] == "iban" else learned.names).append(row["value"])
    return dict(found)


def public(learned: Learned | None) -> dict[str, list[str]]:
    """What was learned of a customer, as the API shows it beside the CRM's data."""
    return {"ibans": list(learned.ibans) if learned else [],
            "names": list(learned.names) if learned else []}


def with_learned(customers: Sequence[Customer], learned: dict[str, Learned]) -> list[Customer]:
    """The customers as the engine sees them: the CRM's IBANs and aliases plus what was
    learned (a learned name becomes an alias)."""
    out = []
    for customer in customers:
        extra = learned.get(customer.customer_id)
        if extra is None:
            out.append(customer)
            continue
        ibans = (*customer.ibans, *(i for i in extra.ibans if i not in customer.ibans))
        aliases = (*customer.aliases, *(n for n in extra.names
                                        if n not in customer.aliases and n != customer.name))
        out.append(replace(customer, ibans=ibans, aliases=aliases))
    return out
