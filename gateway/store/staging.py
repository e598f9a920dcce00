"""staging: a document's lines held in the session's temporary tables while it is read.

An import copies its lines here in batches as the parser yields them (``COPY``, no WAL:
temporary tables are not logged), outside the transaction that stores them; that final
transaction then moves them into ``transactions`` and ``statement_lines`` with a few
set-based statements (``gateway.store.transactions.move_staged``). The tables belong to
the database session, so two imports never see each other's lines, and a session that
dies takes its staged lines with it; an import empties them when it begins and when it
ends, whatever happened.

- ``ingest_stage``: one row per line, what ``transactions`` stores of it, ``entry_id``, its
  id were the account to have no lines (``parsers.identity.IdMaker``, computed as the line
  was read), and ``id_key``, the text whose SHA-256 with an occurrence number is an id (a
  line of a day the account has lines on is given the first such id not taken);
- ``ingest_ledger``: each booked line's rank and the balance after it in the statement's
  ledger order (``parsers.overlap.ledger_order``), computed in the database;
- ``ingest_decided``: what ``parsers.overlap`` decided for the lines of the days on which
  the account already had lines (every other line is new);
- ``ingest_booked``: the lines a statement made booked (provisional lines it confirmed,
  then its new booked lines), in arrival order, with whether each is a payment (incoming,
  not a reversal) and what ``payment.received`` says of it as stored
  (``gateway.outbox.emit_staged_payments``).

Nothing here joins the staged lines with ``transactions`` or ``statement_lines`` after
they grew in the same transaction: their statistics do not count the new rows yet, and
such a join's plan can scan a table once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import asyncpg

STAGE_COLUMNS = (
    "statement_no", "position", "day", "booking_date", "value_date", "amount", "currency",
    "status", "reversal", "bank_reference", "counterparty_name", "counterparty_account",
    "end_to_end_id", "remittance", "creditor_reference", "details", "provisional", "id_key",
    "entry_id",
)
DECIDED_COLUMNS = ("statement_no", "position", "outcome", "entry_id", "possible_duplicate")

_TABLES = ("ingest_stage", "ingest_ledger", "ingest_decided", "ingest_booked")
_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    statement_no integer NOT NULL, position integer NOT NULL, day date,
    booking_date date, value_date date, amount numeric NOT NULL, currency text NOT NULL,
    status text NOT NULL, reversal boolean NOT NULL, bank_reference text,
    counterparty_name text, counterparty_account text, end_to_end_id text, remittance text,
    creditor_reference text, details jsonb NOT NULL, provisional boolean NOT NULL,
    id_key text NOT NULL, entry_id text NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS ingest_ledger (
    statement_no integer NOT NULL, position integer NOT NULL, rank integer NOT NULL,
    balance_after numeric NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS ingest_decided (
    statement_no integer NOT NULL, position integer NOT NULL, outcome text NOT NULL,
    entry_id text NOT NULL, possible_duplicate boolean NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS ingest_booked (
    n bigint GENERATED ALWAYS AS IDENTITY, statement_no integer NOT NULL,
    entry_id text NOT NULL, payment boolean NOT NULL, amount numeric NOT NULL,
    currency text NOT NULL, booking_date date, value_date date, bank_reference text,
    end_to_end_id text, counterparty_name text, remittance text);
"""


async def begin(conn: asyncpg.Connection) -> None:
    """The staging tables of this session, created if need be, and empty."""
    await conn.execute(_CREATE)
    await clear(conn)


async def clear(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE " + ", ".join(_TABLES))


async def add_lines(conn: asyncpg.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows in the order of ``STAGE_COLUMNS``."""
    await conn.copy_records_to_table("ingest_stage", records=rows, columns=STAGE_COLUMNS)


async def analyze(conn: asyncpg.Connection) -> None:
    """Statistics of the staged lines: the planner knows nothing of temporary tables else."""
    # Only the columns that joins and filters use: the texts are never looked up.
    await conn.execute("ANALYZE ingest_stage (statement_no, position, day, provisional)")


async def analyze_decided(conn: asyncpg.Connection) -> None:
    """Statistics of the decisions: joined with the staged lines when they are stored."""
    await conn.execute("ANALYZE ingest_decided")


async def booked_counts(conn: asyncpg.Connection, *, statement_no: int) -> tuple[int, int]:
    """How many lines in ``ingest_booked`` the statement made booked, and how many of them
    are payments."""
    row = await conn.fetchrow(
        "SELECT count(*) AS booked, count(*) FILTER (WHERE payment) AS payments"
        " FROM ingest_booked WHERE statement_no = $1", statement_no)
    return row["booked"], row["payments"]


async def rank(conn: asyncpg.Connection, *, statement_no: int, start: Decimal,
               newest_first: bool) -> None:
    """Rank the statement's booked lines in ledger order and note the balance after each,
    from ``start``: by day (lines without one first), then as the bank lists them; a list
    running newest first is read backwards (``parsers.overlap.ledger_order``)."""
    order = "position DESC" if newest_first else "day NULLS FIRST, position"
    await conn.execute(
        f"""
        INSERT INTO ingest_ledger (statement_no, position, rank, balance_after)
        SELECT statement_no, position, row_number() OVER w - 1, $2 + sum(amount) OVER w
        FROM ingest_stage WHERE statement_no = $1 AND NOT provisional
        WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)
        """,  # noqa: S608 - one of two constant orders
        statement_no, start)
    await conn.execute("ANALYZE ingest_ledger")


async def shares(conn: asyncpg.Connection, tenant: str, *, account_id: int, statement_no: int,
                 ends: tuple[Decimal, Decimal], statement_pks: list[int]) -> set[int]:
    """Of the stored statements ``statement_pks``, those passing through a balance the
    staged statement passes through (its ``ends`` or one after a line)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT s.statement_pk
        FROM statements s
        CROSS JOIN LATERAL unnest(coalesce(s.ledger_afters, '{}')
                                  || ARRAY[s.ledger_opening, s.ledger_closing]) AS a(mark)
        WHERE s.tenant_id = $1 AND s.account_id = $2 AND s.statement_pk = ANY($3::bigint[])
          AND (a.mark = ANY($4::numeric[])
               OR a.mark IN (SELECT balance_after FROM ingest_ledger WHERE statement_no = $5))
        """,
        tenant, account_id, statement_pks, list(ends), statement_no)
    return {r["statement_pk"] for r in rows}


async def their_ranks(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                      ends: tuple[Decimal, Decimal],
                      statement_pks: list[int]) -> dict[int, tuple[int, int | None, int | None]]:
    """For each stored statement: how many lines it ranks, the first rank after which it
    reaches the staged statement's opening balance and the last after which it reaches its
    closing balance (None where it never does)."""
    rows = await conn.fetch(
        """
        SELECT s.statement_pk, coalesce(cardinality(s.ledger_afters), 0) AS count,
               (SELECT min(o) - 1 FROM unnest(s.ledger_afters) WITH ORDINALITY AS u(a, o)
                WHERE a = $4) AS first_at,
               (SELECT max(o) - 1 FROM unnest(s.ledger_afters) WITH ORDINALITY AS u(a, o)
                WHERE a = $5) AS last_at
        FROM statements s
        WHERE s.tenant_id = $1 AND s.account_id = $2 AND s.statement_pk = ANY($3::bigint[])
        """,
        tenant, account_id, statement_pks, ends[0], ends[1])
    return {r["statement_pk"]: (r["count"], r["first_at"], r["last_at"]) for r in rows}


async def our_ranks(conn: asyncpg.Connection, *, statement_no: int,
                    ends: dict[int, tuple[Decimal, Decimal]]
                    ) -> dict[int, tuple[int | None, int | None]]:
    """For each stored statement (by its balances ``ends``): the first rank of the staged
    statement after which it reaches that statement's opening balance, and the last after
    which it reaches its closing balance (None where it never does)."""
    pks = list(ends)
    rows = await conn.fetch(
        """
        SELECT x.pk, min(l.rank) FILTER (WHERE v.kind = 'opening') AS first_at,
               max(l.rank) FILTER (WHERE v.kind = 'closing') AS last_at
        FROM unnest($2::bigint[], $3::numeric[], $4::numeric[]) AS x(pk, opening, closing)
        CROSS JOIN LATERAL (VALUES ('opening', x.opening), ('closing', x.closing))
            AS v(kind, mark)
        JOIN ingest_ledger l ON l.statement_no = $1 AND l.balance_after = v.mark
        GROUP BY x.pk
        """,
        statement_no, pks, [ends[pk][0] for pk in pks], [ends[pk][1] for pk in pks])
    found = {r["pk"]: (r["first_at"], r["last_at"]) for r in rows}
    return {pk: found.get(pk, (None, None)) for pk in pks}


def day_lines(conn: asyncpg.Connection, *, statement_no: int,
              days: list[date | None]) -> asyncpg.cursor.CursorFactory:
    """The staged lines of the statement on ``days`` (None: lines without a date), by day
    then position, with their rank and balance after: a cursor, read a day at a time
    (inside a transaction)."""
    dated = [d for d in days if d is not None]
    return conn.cursor(
        """
        SELECT s.position, s.day, s.booking_date, s.value_date, s.amount, s.currency,
               s.status, s.reversal, s.bank_reference, s.counterparty_name,
               s.counterparty_account, s.end_to_end_id, s.remittance, s.creditor_reference,
               s.id_key, l.rank, l.balance_after
        FROM ingest_stage s
        LEFT JOIN ingest_ledger l USING (statement_no, position)
        WHERE s.statement_no = $1
          AND (s.day = ANY($2::date[]) OR ($3 AND s.day IS NULL))
        ORDER BY s.day NULLS FIRST, s.position
        """,
        statement_no, dated, None in days, prefetch=2_000)


# The fields of a line every comparison of the rule may look at (``parsers.overlap``): a
# staged line equal to a stored one on all of them is that line, whatever the rule weighs.
_SAME_LINE = " AND ".join(f"s.{c} IS NOT DISTINCT FROM t.{c}" for c in (
    "booking_date", "value_date", "amount", "status", "reversal", "bank_reference",
    "counterparty_name", "counterparty_account", "end_to_end_id", "remittance",
    "creditor_reference")) + " AND s.currency = t.currency::text"


async def decide_as_copy(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                         statement_no: int, statement_pk: int, entries: int) -> bool:
    """Decide every staged line of the statement ``known`` as the line at its position in
    the stored statement ``statement_pk`` (``ingest_decided``), if each is equal to that
    line in every field the rule compares and both statements have ``entries`` lines:
    the same statement again, its lines in the same order. Otherwise decide nothing and
    return False.

    Each staged line is paired with one stored line (positions are unique on both sides)
    that it equals, so no line is lost and none is doubled: what the rule decides for a
    copy, without loading a day's lines."""
    inserted = int((await conn.execute(
        f"""
        INSERT INTO ingest_decided (statement_no, position, outcome, entry_id,
                                    possible_duplicate)
        SELECT $4, s.position, 'known', t.entry_id, false
        FROM ingest_stage s
        JOIN all_statement_lines c ON c.position = s.position
        JOIN transactions t ON t.tenant_id = c.tenant_id AND t.account_id = c.account_id
                           AND t.entry_id = c.entry_id
        WHERE s.statement_no = $4 AND c.tenant_id = $1 AND c.account_id = $2
          AND c.statement_pk = $3
          AND (SELECT entry_count FROM statements WHERE tenant_id = $1 AND account_id = $2
                 AND statement_pk = $3) = $5
          AND {_SAME_LINE}
        """,  # noqa: S608 - constant SQL
        tenant, account_id, statement_pk, statement_no, entries)).rsplit(" ", 1)[-1])
    if inserted == entries:
        return True
    await conn.execute("DELETE FROM ingest_decided WHERE statement_no = $1", statement_no)
    return False


async def add_decided(conn: asyncpg.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Decisions in the order of ``DECIDED_COLUMNS``."""
    await conn.copy_records_to_table("ingest_decided", records=rows, columns=DECIDED_COLUMNS)


async def decided_counts(conn: asyncpg.Connection, *,
                         statement_no: int) -> tuple[int, int, int]:
    """(known, superseded, possible duplicates) among the statement's decided lines."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE outcome = 'known') AS known,
               count(*) FILTER (WHERE outcome = 'supersedes') AS superseded,
               count(*) FILTER (WHERE possible_duplicate) AS doubts
        FROM ingest_decided WHERE statement_no = $1
        """, statement_no)
    return row["known"], row["superseded"], row["doubts"]
