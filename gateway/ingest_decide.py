"""Deciding a staged statement's lines against what its account has, a day at a time.

``parsers.overlap`` holds the rule (docs/ingest.md). Here it is applied to a statement whose
lines sit in the staging tables (``gateway.store.staging``), without holding them all:

1. Placement: the stored booked statements of the same dates are placed relative to the
   staged one by their balances (``overlap.place``); whether one passes through a balance
   the staged one passes through, and where (``Ledger.window``), is found in the database,
   where both statements' balances line by line are.
2. The same statement again (a stored copy, ``Placement.copies``, with as many lines,
   each equal to the line at its position there in every field the rule compares): every
   line is known as that line, decided at once in the database
   (``staging.decide_as_copy``).
3. Lines are only ever paired with stored lines of the same day. Days the account has no
   line on need no decision: every line of them is new and no doubt can arise (each
   keeps the id it was staged with, ``parsers.identity.IdMaker``'s). For each other day,
   its staged lines and the account's stored lines of that day are loaded, decided
   (``overlap.decide_lines``, the very rule ``decide`` applies to a whole statement),
   given ids where new, and the decisions copied back to ``ingest_decided``. Memory
   follows the largest day.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal

import asyncpg

from gateway.ingest_stage import StagedStatement
from gateway.store import staging, statements, transactions
from parsers import overlap
from parsers.model import Entry, EntryStatus
from parsers.money import Money
from parsers.overlap import IncomingLine, Ledger, Outcome, Placement, StoredStatement

_FLUSH = 10_000  # decisions per copy


async def place(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                staged: StagedStatement, ledger: Ledger | None) -> tuple[Placement,
                                                                          overlap.Windows]:
    """Where the staged statement lies among the account's stored booked statements, and
    the windows of the overlapping ones (``overlap.windows_of``)."""
    first, last = staged.first, staged.last
    stored = await statements.ledgers(conn, tenant, account_id=account_id, first=first,
                                      last=last, afters=False) \
        if first is not None and last is not None else []
    if ledger is None or not stored:
        return dataclasses.replace(overlap.place(ledger, stored), ledger=ledger), {}
    ends = (ledger.opening, ledger.closing)
    sharing = await staging.shares(conn, tenant, account_id=account_id,
                                   statement_no=staged.number, ends=ends,
                                   statement_pks=[s.statement_pk for s in stored])
    placement = dataclasses.replace(
        overlap.place(ledger, stored, shares=lambda s: s.statement_pk in sharing),
        ledger=ledger)
    if placement.copies or not placement.overlapping:
        return placement, {}
    return placement, await _windows(conn, tenant, account_id=account_id, staged=staged,
                                     ledger=ledger, stored=stored, placement=placement)


async def _windows(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                   staged: StagedStatement, ledger: Ledger, stored: list[StoredStatement],
                   placement: Placement) -> overlap.Windows:
    overlapping = [s for s in stored if s.statement_pk in placement.overlapping]
    pks = [s.statement_pk for s in overlapping]
    theirs = await staging.their_ranks(conn, tenant, account_id=account_id,
                                       ends=(ledger.opening, ledger.closing), statement_pks=pks)
    ours = await staging.our_ranks(conn, statement_no=staged.number, ends={
        s.statement_pk: (s.ledger.opening, s.ledger.closing) for s in overlapping})
    windows = {}
    for s in overlapping:
        count, their_first, their_last = theirs[s.statement_pk]
        our_first, our_last = ours[s.statement_pk]
        windows[s.statement_pk] = (
            overlap.window_of(s.ledger.opening, s.ledger.closing, count, ledger.opening,
                              ledger.closing, first_at=_found(their_first),
                              last_at=_found(their_last)),
            overlap.window_of(ledger.opening, ledger.closing, staged.booked,
                              s.ledger.opening, s.ledger.closing,
                              first_at=_found(our_first), last_at=_found(our_last)))
    return windows


def _found(rank: int | None) -> Callable[[Decimal], int | None]:
    """The rank the database found for the one balance ``window_of`` asks about."""
    return lambda _balance: rank


async def decide_days(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                      staged: StagedStatement, placement: Placement,
                      windows: overlap.Windows) -> None:
    """Decide the staged lines of every day the account has lines on (``ingest_decided``);
    the lines of the other days are all new."""
    for statement_pk in sorted(placement.copies):
        if await staging.decide_as_copy(conn, tenant, account_id=account_id,
                                        statement_no=staged.number,
                                        statement_pk=statement_pk, entries=staged.entries):
            await staging.analyze_decided(conn)
            return
    days = await transactions.stored_days(conn, tenant, account_id=account_id,
                                          days=list(staged.days))
    if not days:
        return
    decided: list[tuple[object, ...]] = []
    day_rows: list[asyncpg.Record] = []
    current: date | None = None
    async for row in staging.day_lines(conn, statement_no=staged.number, days=days):
        if day_rows and row["day"] != current:
            decided += await _decide_day(conn, tenant, account_id, staged, placement,
                                         windows, current, day_rows)
            day_rows = []
            if len(decided) >= _FLUSH:
                await staging.add_decided(conn, decided)
                decided = []
        current = row["day"]
        day_rows.append(row)
    if day_rows:
        decided += await _decide_day(conn, tenant, account_id, staged, placement, windows,
                                     current, day_rows)
    if decided:
        await staging.add_decided(conn, decided)
    await staging.analyze_decided(conn)


async def _decide_day(conn: asyncpg.Connection, tenant: str, account_id: int,
                      staged: StagedStatement, placement: Placement,
                      windows: overlap.Windows, day: date | None,
                      rows: Sequence[asyncpg.Record]) -> list[tuple[object, ...]]:
    stored = await transactions.on_days(conn, tenant, account_id=account_id, days=[day])
    lines = [IncomingLine(r["position"], _entry(r), r["rank"], r["balance_after"])
             for r in rows]
    decisions = overlap.decide_lines(staged.statement.format, placement, windows, lines,
                                     stored)
    taken = {line.entry_id for line in stored}
    out: list[tuple[object, ...]] = []
    for row, decision in zip(rows, decisions, strict=True):
        if decision.outcome is Outcome.NEW:
            entry_id = _fresh_id(row["id_key"], taken)
        elif decision.entry_id is None:  # pragma: no cover - known lines name theirs
            raise RuntimeError("a known line without the stored line it is")
        else:
            entry_id = decision.entry_id
        out.append((staged.number, row["position"], decision.outcome.value, entry_id,
                    decision.possible_duplicate))
    return out


def _fresh_id(key: str, taken: set[str]) -> str:
    """``parsers.identity.fresh_ids`` for one line: the first occurrence not taken."""
    occurrence = 0
    while True:
        entry_id = hashlib.sha256(f"{key}{occurrence}".encode()).hexdigest()[:32]
        if entry_id not in taken:
            taken.add(entry_id)
            return entry_id
        occurrence += 1


def _entry(row: asyncpg.Record) -> Entry:
    """The fields of a staged line that the rule compares, as an entry."""
    return Entry(amount=Money(row["amount"], row["currency"].strip()),
                 booking_date=row["booking_date"], value_date=row["value_date"],
                 status=EntryStatus(row["status"]), reversal=row["reversal"],
                 bank_reference=row["bank_reference"],
                 counterparty_name=row["counterparty_name"],
                 counterparty_account=row["counterparty_account"],
                 end_to_end_id=row["end_to_end_id"], remittance=row["remittance"],
                 creditor_reference=row["creditor_reference"])
