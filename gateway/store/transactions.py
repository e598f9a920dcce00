"""transactions: every bank line, stored once per account under its stable entry id."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg

from parsers.identity import entry_ids
from parsers.jsonl import decimal_text, entry_details
from parsers.model import Entry, Statement
from parsers.overlap import Decision, Outcome, StoredLine, is_provisional, reference_scheme

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
    "provisional", "possible_duplicate", "reference_scheme", "position", "balance_after",
    "rank",
)


def _details(entry: Entry) -> str:
    return json.dumps(entry_details(entry, leave_out=_IN_COLUMNS), ensure_ascii=False,
                      separators=(",", ":"))


def _row(statement: Statement, position: int, *, tenant: str, account_id: int,
         statement_pk: int, entry_id: str, decision: Decision) -> tuple[object, ...]:
    """One line as a row in the order of ``COLUMNS``."""
    e = statement.entries[position]
    return (tenant, account_id, entry_id, statement_pk, e.booking_date, e.value_date,
            e.amount.amount, e.amount.currency, e.status.value, e.reversal, e.bank_reference,
            e.counterparty_name, e.counterparty_account, e.end_to_end_id, e.remittance,
            e.creditor_reference, _details(e), is_provisional(statement, e),
            decision.possible_duplicate, reference_scheme(statement.format), position,
            decision.balance_after, None if is_provisional(statement, e) else position)


def records(statement: Statement, *, tenant: str, account_id: int,
            statement_pk: int) -> list[tuple[object, ...]]:
    """Every line of ``statement`` as a new row (what the import benchmark's floor copies)."""
    new = Decision(Outcome.NEW, None)
    return [_row(statement, position, tenant=tenant, account_id=account_id,
                 statement_pk=statement_pk, entry_id=entry_id, decision=new)
            for position, entry_id in enumerate(entry_ids(statement))]


async def on_days(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                  days: list[date | None]) -> list[StoredLine]:
    """The account's stored lines on these days (booking date, else value date), with the
    statements that reported each: what an incoming statement's lines are compared with."""
    dated = sorted({d for d in days if d is not None})
    rows = await conn.fetch(
        """
        SELECT t.entry_id, coalesce(t.booking_date, t.value_date) AS day, t.amount,
               t.currency, t.provisional, t.reference_scheme, t.bank_reference,
               t.end_to_end_id, t.counterparty_name, t.counterparty_account, t.remittance,
               t.balance_after,
               -- where it is ranked: in the statement that first reported it (its own
               -- row) and in those that reported it again (statement_lines)
               CASE WHEN t.rank IS NOT NULL THEN ARRAY[[t.statement_pk, t.rank]] END
               || (SELECT array_agg(ARRAY[l.statement_pk, l.rank]) FROM statement_lines l
                   WHERE l.tenant_id = t.tenant_id AND l.account_id = t.account_id
                     AND l.entry_id = t.entry_id AND l.rank IS NOT NULL) AS reports
        FROM transactions t
        WHERE t.tenant_id = $1 AND t.account_id = $2
          AND (coalesce(t.booking_date, t.value_date) = ANY($3::date[])
               OR ($4 AND t.booking_date IS NULL AND t.value_date IS NULL))
        """,
        tenant, account_id, dated, None in days)
    return [StoredLine(
        entry_id=r["entry_id"], day=r["day"], amount=r["amount"], currency=r["currency"],
        provisional=r["provisional"], scheme=r["reference_scheme"] or "",
        bank_reference=r["bank_reference"], end_to_end_id=r["end_to_end_id"],
        counterparty_name=r["counterparty_name"],
        counterparty_account=r["counterparty_account"], remittance=r["remittance"],
        reports=frozenset((int(pk), int(rank)) for pk, rank in r["reports"] or ()),
        balance_after=r["balance_after"],
    ) for r in rows]


async def stored_days(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                      days: list[date | None]) -> list[date | None]:
    """Which of ``days`` the account has lines on (None: lines without any date)."""
    dated = sorted({d for d in days if d is not None})
    rows = await conn.fetch(
        """
        SELECT DISTINCT coalesce(t.booking_date, t.value_date) AS day
        FROM transactions t
        WHERE t.tenant_id = $1 AND t.account_id = $2
          AND (coalesce(t.booking_date, t.value_date) = ANY($3::date[])
               OR ($4 AND t.booking_date IS NULL AND t.value_date IS NULL))
        """,
        tenant, account_id, dated, None in days)
    return [r["day"] for r in rows]


# The staged lines of one statement ($5), each with its decision where its day was decided
# (``ingest_decided``) and its rank: every other line is new, under the id it was staged
# with (``parsers.identity.IdMaker``, computed as it was read). Plain hash joins of
# the staging tables, no per-row expression but coalesce: the id, the decision and the
# rank are all computed before.
_STAGED = """
    FROM ingest_stage s
    LEFT JOIN ingest_ledger l USING (statement_no, position)
    LEFT JOIN ingest_decided d USING (statement_no, position)
    WHERE s.statement_no = $1
"""
_NEW = "d.outcome IS NULL OR d.outcome = 'new'"
_ID = "coalesce(d.entry_id, s.entry_id)"


def _count(status: str) -> int:
    """The row count of a command's status (``INSERT 0 42``)."""
    return int(status.rsplit(" ", 1)[-1])


async def move_staged(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                      statement_pk: int, statement_no: int, scheme: str) -> int:
    """Store a staged statement's new lines (in the bank's order, each with its place and
    rank in the statement) and record in ``statement_lines`` the lines it reported that
    were stored before it (``known``, ``supersedes``); returns how many lines are new. The
    new booked ones are noted in ``ingest_booked`` (after the lines ``confirm_staged``
    noted: call that first).

    The caller holds the account's ingest lock and has decided (``ingest_decided``) the
    lines of every day the account had lines on, so the ids chosen here are free.

    Plain ``INSERT ... SELECT`` from the staging tables (each scans them once, a few tens
    of milliseconds for 100,000 lines), not one statement with data-modifying CTEs, which
    wrote the joined lines to a temporary file and read it three times.
    """
    # Sorting a large statement's lines by position in memory, not in temporary files.
    await conn.execute("SET LOCAL work_mem = '64MB'")
    inserted = _count(await conn.execute(
        f"""
        INSERT INTO transactions ({", ".join(COLUMNS)})
        SELECT $2, $3, {_ID}, $4, s.booking_date, s.value_date, s.amount, s.currency,
               s.status, s.reversal, s.bank_reference, s.counterparty_name,
               s.counterparty_account, s.end_to_end_id, s.remittance,
               s.creditor_reference, s.details, s.provisional,
               coalesce(d.possible_duplicate, false), $5, s.position, l.balance_after,
               l.rank
        {_STAGED} AND ({_NEW})
        ORDER BY s.position
        """,
        statement_no, tenant, account_id, statement_pk, scheme))
    await conn.execute(
        """
        INSERT INTO statement_lines (tenant_id, account_id, statement_pk, position,
                                     entry_id, outcome, rank)
        SELECT $2, $3, $4, d.position, d.entry_id, d.outcome, l.rank
        FROM ingest_decided d
        LEFT JOIN ingest_ledger l USING (statement_no, position)
        WHERE d.statement_no = $1 AND d.outcome <> 'new'
        """,
        statement_no, tenant, account_id, statement_pk)
    await conn.execute(
        f"""
        INSERT INTO ingest_booked (statement_no, entry_id, {_PAYMENT_COLUMNS})
        SELECT $1, {_ID}, s.amount > 0 AND s.status = 'booked' AND NOT s.reversal,
               s.amount, s.currency, s.booking_date, s.value_date, s.bank_reference,
               s.end_to_end_id, s.counterparty_name, s.remittance
        {_STAGED} AND ({_NEW}) AND NOT s.provisional
        ORDER BY s.position
        """,
        statement_no)
    return inserted


# What ``payment.received`` says of a line besides its account and id (``ingest_booked``).
_PAYMENT_COLUMNS = ("payment, amount, currency, booking_date, value_date, bank_reference,"
                    " end_to_end_id, counterparty_name, remittance")


async def confirm_staged(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                         statement_pk: int, statement_no: int, scheme: str,
                         expected: int) -> None:
    """Provisional lines become the staged booked lines that supersede them (their ids
    stay, so what was allocated to them stays allocated); noted in ``ingest_booked``."""
    if not expected:
        return
    confirmed = await conn.fetchval(
        f"""
        WITH confirmed AS (
            UPDATE transactions t SET
                booking_date = u.booking_date, value_date = u.value_date, status = 'booked',
                reversal = u.reversal, bank_reference = u.bank_reference,
                counterparty_name = coalesce(u.counterparty_name, t.counterparty_name),
                counterparty_account = coalesce(u.counterparty_account,
                                                t.counterparty_account),
                end_to_end_id = coalesce(u.end_to_end_id, t.end_to_end_id),
                remittance = coalesce(u.remittance, t.remittance),
                creditor_reference = coalesce(u.creditor_reference, t.creditor_reference),
                details = t.details || u.details, provisional = false,
                reference_scheme = $3, confirmed_statement_pk = $4,
                balance_after = u.balance_after
            FROM (SELECT d.entry_id, s.booking_date, s.value_date, s.reversal,
                         s.bank_reference, s.counterparty_name, s.counterparty_account,
                         s.end_to_end_id, s.remittance, s.creditor_reference, s.details,
                         l.balance_after
                  FROM ingest_decided d
                  JOIN ingest_stage s USING (statement_no, position)
                  LEFT JOIN ingest_ledger l USING (statement_no, position)
                  WHERE d.statement_no = $5 AND d.outcome = 'supersedes') u
            WHERE t.tenant_id = $1 AND t.account_id = $2 AND t.entry_id = u.entry_id
              AND t.provisional
            RETURNING t.*
        ),
        noted AS (
            INSERT INTO ingest_booked (statement_no, entry_id, {_PAYMENT_COLUMNS})
            SELECT $5, entry_id, amount > 0 AND NOT reversal, amount, currency,
                   booking_date, value_date, bank_reference, end_to_end_id,
                   counterparty_name, remittance
            FROM confirmed ORDER BY seq
        )
        SELECT count(*) FROM confirmed
        """,  # noqa: S608 - constant SQL
        tenant, account_id, scheme, statement_pk, statement_no)
    if confirmed != expected:
        raise RuntimeError("a provisional line changed while its account was locked")


# What a line is, as the API shows it: the normalized fields (those of ``parse`` output),
# whether it is provisional or possibly a duplicate, and how far it is allocated.
_PUBLIC = """
    t.seq, t.account_id, t.entry_id, t.statement_pk, t.booking_date, t.value_date, t.amount,
    t.currency, t.status, t.reversal, t.bank_reference, t.end_to_end_id, t.counterparty_name,
    t.counterparty_account, t.remittance, t.creditor_reference, t.provisional,
    t.possible_duplicate, t.details,
    (SELECT coalesce(sum(a.payment_amount) FILTER (WHERE a.status = 'applied'), 0)
     FROM allocations a WHERE a.tenant_id = t.tenant_id AND a.account_id = t.account_id
       AND a.entry_id = t.entry_id) AS allocated_amount,
    EXISTS (SELECT 1 FROM allocations a WHERE a.tenant_id = t.tenant_id
              AND a.account_id = t.account_id AND a.entry_id = t.entry_id
              AND a.status = 'proposed') AS in_review,
    (SELECT f.error FROM reconcile_failures f WHERE f.tenant_id = t.tenant_id
       AND f.account_id = t.account_id AND f.entry_id = t.entry_id
       AND f.resolved_at IS NULL) AS reconcile_error
"""


def _public(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    allocated, in_review = item.pop("allocated_amount"), item.pop("in_review")
    if allocated >= abs(item["amount"]) and allocated > 0:
        item["allocation_status"] = "allocated"
    elif allocated > 0:
        item["allocation_status"] = "partially_allocated"
    elif in_review:
        item["allocation_status"] = "in_review"
    else:
        item["allocation_status"] = "unallocated"
    item["allocated_amount"] = decimal_text(allocated)
    item["amount"] = decimal_text(item["amount"])
    for key in ("booking_date", "value_date"):
        item[key] = item[key].isoformat() if item[key] else None
    item["details"] = json.loads(item["details"])
    return item


async def list_page(conn: asyncpg.Connection, tenant: str, *, account_ids: list[int] | None,
                    since: date | None, until: date | None, status: str | None,
                    after: int | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""
        SELECT {_PUBLIC}
        FROM transactions t
        WHERE t.tenant_id = $1 AND t.seq > $2
          AND ($3::bigint[] IS NULL OR t.account_id = ANY($3::bigint[]))
          AND ($4::date IS NULL OR t.booking_date >= $4)
          AND ($5::date IS NULL OR t.booking_date <= $5)
          AND ($6::text IS NULL OR t.status = $6)
        ORDER BY t.seq LIMIT $7
        """,  # noqa: S608 - the column list is a constant
        tenant, after or 0, account_ids, since, until, status, limit,
    )
    return [_public(row) for row in rows]


async def of_statement(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                       statement_pk: int, after: int | None,
                       limit: int) -> list[dict[str, Any]]:
    """A statement's lines in the bank's order, each with what its import found (``new``,
    ``known``: reported before, ``supersedes``: confirmed a provisional line)."""
    rows = await conn.fetch(
        f"""
        SELECT l.position, l.outcome, {_PUBLIC}
        FROM all_statement_lines l
        JOIN transactions t ON t.tenant_id = l.tenant_id AND t.account_id = l.account_id
                           AND t.entry_id = l.entry_id
        WHERE l.tenant_id = $1 AND l.account_id = $2 AND l.statement_pk = $3
          AND l.position > $4
        ORDER BY l.position LIMIT $5
        """,  # noqa: S608 - the column list is a constant
        tenant, account_id, statement_pk, -1 if after is None else after, limit)
    return [_public(row) for row in rows]


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
