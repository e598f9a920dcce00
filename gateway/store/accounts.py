"""bank_accounts: the accounts statements are about, registered on first sight."""

from __future__ import annotations

from typing import Any

import asyncpg

from parsers.model import Account


async def register(conn: asyncpg.Connection, tenant: str, account: Account) -> int:
    """The id of ``account``, registering it if the gateway has not seen it yet.

    Details the bank gives later (a BIC, the owner's name) fill gaps; they never erase
    what is known.
    """
    account_id: int = await conn.fetchval(
        """
        INSERT INTO bank_accounts
            (tenant_id, account_key, iban, number, bic, bank_id, currency, owner_name)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (tenant_id, account_key) DO UPDATE SET
            bic = coalesce(bank_accounts.bic, excluded.bic),
            bank_id = coalesce(bank_accounts.bank_id, excluded.bank_id),
            owner_name = coalesce(bank_accounts.owner_name, excluded.owner_name)
        RETURNING account_id
        """,
        tenant, account.key, account.iban, account.number, account.bic, account.bank_id,
        account.currency, account.owner_name,
    )
    return account_id


async def named(conn: asyncpg.Connection, tenant: str, text: str) -> list[tuple[int, str]]:
    """The accounts ``text`` names, each with how: ``id`` (its ``account_id``, when
    ``text`` is one), ``iban`` or ``number`` (spaces and case ignored). One IBAN may name
    several accounts: one per currency."""
    compact = "".join(text.split()).upper()
    account_id = int(compact) if compact.isascii() and compact.isdigit() \
        and len(compact) <= 19 and int(compact) < 2**63 else None
    rows = await conn.fetch(
        "SELECT account_id, CASE WHEN account_id = $3 THEN 'id' WHEN iban = $2 THEN 'iban'"
        " ELSE 'number' END AS how FROM bank_accounts WHERE tenant_id = $1"
        " AND (account_id = $3 OR iban = $2 OR upper(number) = $2) ORDER BY account_id",
        tenant, compact, account_id,
    )
    return [(r["account_id"], r["how"]) for r in rows]


async def list_page(conn: asyncpg.Connection, tenant: str, *, after: int | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT account_id, iban, number, bic, bank_id, currency, owner_name"
        " FROM bank_accounts WHERE tenant_id = $1 AND account_id > $2"
        " ORDER BY account_id LIMIT $3",
        tenant, after or 0, limit,
    )
    return [dict(r) for r in rows]
