"""transactions: every bank line, stored once per account under its stable entry id."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from matching.model import Payment
from parsers.identity import entry_ids
from parsers.jsonl import decimal_text, entry_details
from parsers.model import Charge, FxDetails, Statement
from parsers.money import Money

# Entry fields stored in columns of their own; ``details`` holds the others that are set.
_IN_COLUMNS = frozenset({
    "booking_date", "value_date", "amount", "status", "reversal", "bank_reference",
    "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
    "creditor_reference",
})

COLUMNS = (
    "tenant_id", "account_id", "entry_id", "statement_pk", "booking_date", "value_date",
    "amount", "currency", "status", "reversal", "bank_reference", "counterparty_name",
    "counterparty_account", "end_to_end_id", "remittance", "creditor_reference", "details",
)


def records(statement: Statement, *, tenant: str, account_id: int,
            statement_pk: int) -> list[tuple[object, ...]]:
    """The statement's lines as rows in the order of ``COLUMNS``."""
    return [
        (tenant, account_id, entry_id, statement_pk, e.booking_date, e.value_date,
         e.amount.amount, e.amount.currency, e.status.value, e.reversal, e.bank_reference,
         e.counterparty_name, e.counterparty_account, e.end_to_end_id, e.remittance,
         e.creditor_reference, json.dumps(entry_details(e, leave_out=_IN_COLUMNS),
                                          ensure_ascii=False, separators=(",", ":")))
        for e, entry_id in zip(statement.entries, entry_ids(statement), strict=True)
    ]


async def insert_new(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                     statement_pk: int, statement: Statement) -> int:
    """Store the statement's lines the account does not have yet; return how many were new.

    The lines not yet stored are copied straight into the table, in entry-id order (so two
    imports of overlapping statements take row locks in the same order and never
    deadlock). If a concurrent import stored some of them first, the copy fails on the
    primary key; it is then redone through a staging table, skipping what is stored.
    """
    rows = records(statement, tenant=tenant, account_id=account_id, statement_pk=statement_pk)
    known = set(await conn.fetchval(
        "SELECT coalesce(array_agg(entry_id), '{}') FROM transactions"
        " WHERE tenant_id = $1 AND account_id = $2 AND entry_id = ANY($3::text[])",
        tenant, account_id, [row[2] for row in rows],
    ))
    fresh = sorted((row for row in rows if row[2] not in known), key=lambda row: str(row[2]))
    if not fresh:
        return 0
    try:
        async with conn.transaction():  # a savepoint: the copy is undone alone on conflict
            await conn.copy_records_to_table("transactions", records=fresh, columns=COLUMNS)
        return len(fresh)
    except asyncpg.UniqueViolationError:
        return await _insert_skipping_stored(conn, fresh)


async def _insert_skipping_stored(conn: asyncpg.Connection, rows: list[tuple[object, ...]]) -> int:
    await conn.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS staging_transactions ON COMMIT DROP AS
        SELECT tenant_id, account_id, entry_id, statement_pk, booking_date, value_date,
               amount, currency, status, reversal, bank_reference, counterparty_name,
               counterparty_account, end_to_end_id, remittance, creditor_reference, details
        FROM transactions WITH NO DATA
        """
    )
    await conn.execute("TRUNCATE staging_transactions")
    await conn.copy_records_to_table("staging_transactions", records=rows, columns=COLUMNS)
    status: str = await conn.execute(
        """
        INSERT INTO transactions (
            tenant_id, account_id, entry_id, statement_pk, booking_date, value_date,
            amount, currency, status, reversal, bank_reference, counterparty_name,
            counterparty_account, end_to_end_id, remittance, creditor_reference, details)
        SELECT * FROM staging_transactions
        ORDER BY entry_id
        ON CONFLICT (tenant_id, account_id, entry_id) DO NOTHING
        """
    )
    return int(status.rsplit(" ", 1)[1])


async def list_page(conn: asyncpg.Connection, tenant: str, *, account_id: int | None,
                    since: date | None, until: date | None, status: str | None,
                    after: int | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT seq, account_id, entry_id, statement_pk, booking_date, value_date, amount,
               currency, status, details
        FROM transactions
        WHERE tenant_id = $1 AND seq > $2
          AND ($3::bigint IS NULL OR account_id = $3)
          AND ($4::date IS NULL OR booking_date >= $4)
          AND ($5::date IS NULL OR booking_date <= $5)
          AND ($6::text IS NULL OR status = $6)
        ORDER BY seq LIMIT $7
        """,
        tenant, after or 0, account_id, since, until, status, limit,
    )
    out = []
    for row in rows:
        item = dict(row)
        item["amount"] = decimal_text(item["amount"])
        for key in ("booking_date", "value_date"):
            item[key] = item[key].isoformat() if item[key] else None
        item["details"] = json.loads(item["details"])
        out.append(item)
    return out


async def unallocated_payments(conn: asyncpg.Connection, tenant: str,
                               limit: int = 1_000_000) -> list[tuple[int, Payment]]:
    """Incoming booked lines with no proposed or applied allocation, as (account, payment)."""
    rows = await conn.fetch(
        """
        SELECT t.account_id, t.entry_id, t.booking_date, t.value_date, t.amount, t.currency,
               t.bank_reference, t.counterparty_name, t.counterparty_account,
               t.end_to_end_id, t.remittance, t.creditor_reference, t.details
        FROM transactions t
        WHERE t.tenant_id = $1 AND t.amount > 0 AND t.status = 'booked' AND NOT t.reversal
          AND NOT EXISTS (SELECT 1 FROM allocations a
                          WHERE a.tenant_id = t.tenant_id AND a.account_id = t.account_id
                            AND a.entry_id = t.entry_id
                            AND a.status IN ('proposed', 'applied'))
        ORDER BY t.seq LIMIT $2
        """,
        tenant, limit,
    )
    out = []
    for row in rows:
        details = json.loads(row["details"])
        booked = row["booking_date"] or row["value_date"]
        if booked is None:
            continue
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


async def payment(conn: asyncpg.Connection, tenant: str, account_id: int,
                  entry_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT account_id, entry_id, booking_date, value_date, amount, currency,"
        " bank_reference, end_to_end_id, counterparty_name, remittance, counterparty_account"
        " FROM transactions WHERE tenant_id = $1 AND account_id = $2 AND entry_id = $3",
        tenant, account_id, entry_id)
    return row


async def payments(conn: asyncpg.Connection, tenant: str,
                   keys: list[tuple[int, str]]) -> list[asyncpg.Record]:
    """The lines with these (account, entry) keys, in the order asked for."""
    if not keys:
        return []
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT t.account_id, t.entry_id, t.booking_date, t.value_date, t.amount, t.currency,
               t.bank_reference, t.end_to_end_id, t.counterparty_name, t.remittance
        FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS k(account_id, entry_id, o)
        JOIN transactions t ON t.tenant_id = $1 AND t.account_id = k.account_id
            AND t.entry_id = k.entry_id
        ORDER BY k.o
        """, tenant, [k[0] for k in keys], [k[1] for k in keys])
    return rows


def payment_key(account_id: int, entry_id: str) -> str:
    return f"{account_id}/{entry_id}"


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
