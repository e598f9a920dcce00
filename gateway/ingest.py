"""Ingest: a bank document in, its statements and lines stored exactly once.

The document's SHA-256 is looked up first: the same bytes again are answered from what was
stored, unparsed. Otherwise the parser's stream of parts (``parsers.stream``) is read in a
worker thread a batch at a time and copied into the session's staging tables
(``gateway.ingest_stage``, ``gateway.store.staging``), outside any transaction, in memory
that does not grow with the document; a bad document raises ``ParseError`` there and
nothing of it is kept. Then one transaction stores it all: the raw bytes (large ones in
chunks), the accounts it is about (registered on first sight, locked in one order), its
statements with their flags, and the lines the account does not have yet, decided from the
statements themselves (``parsers.overlap``, docs/ingest.md): days the account has lines on
a day at a time in Python (``gateway.ingest_decide``), every other line new; lines (a new
one with its place in the statement, a known one in ``statement_lines``) and events go in
set-based. Re-importing the same document, or a
statement overlapping one already stored, adds nothing twice; a genuinely new line is never
dropped; what cannot be decided is flagged. Continuity with the account's previous
statement is checked and recorded as flags on the new statement and as a
``statement.gap`` event.

Entry points: ``ingest`` (bytes in memory), ``store_document`` (statements already
parsed), and in ``gateway.ingest_files`` ``ingest_path`` (a file) and ``spool`` +
``ingest_spooled`` (a request body of any size).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

import parsers
from gateway import events, ingest_decide, outbox
from gateway.ingest_stage import StagedStatement, stage
from gateway.store import accounts, documents, staging, statements, transactions
from parsers.jsonl import decimal_text
from parsers.model import Balance, Flag, Statement
from parsers.overlap import PROVISIONAL_FORMATS, reference_scheme
from parsers.stream import Part, from_statements

logger = logging.getLogger(__name__)

_ANALYZE_AFTER = 5_000  # new lines in one import that make its statistics stale


@dataclass(frozen=True, slots=True)
class StoredStatement:
    statement_pk: int
    account_id: int
    account_key: str
    statement_id: str | None
    format: str
    entries: int
    entries_new: int
    flags: tuple[dict[str, Any], ...]
    # Lines now booked that were not before: new booked lines and the provisional lines
    # this statement confirmed. Each is a payment reconciliation has not seen.
    entries_booked: int = 0


@dataclass(frozen=True, slots=True)
class IngestResult:
    document_id: int
    document_known: bool
    statements: tuple[StoredStatement, ...] = field(default=())

    @property
    def format(self) -> str | None:
        """The format of the document's statements (``mt940``, ``camt.053``, ...), or None
        when they differ: only a SWIFT file holding both MT940 and MT942 messages."""
        return document_format(s.format for s in self.statements)

    @property
    def entries_new(self) -> int:
        return sum(s.entries_new for s in self.statements)

    @property
    def entries_booked(self) -> int:
        return sum(s.entries_booked for s in self.statements)

    @property
    def entries_known(self) -> int:
        return sum(s.entries - s.entries_new for s in self.statements)


def document_format(formats: Iterable[str]) -> str | None:
    """The one format of a document's statements, or None when it mixes several."""
    found = set(formats)
    return found.pop() if len(found) == 1 else None


def continuity_flags(statement: Statement, previous: asyncpg.Record | None) -> tuple[Flag, ...]:
    """What does not join up between the account's previous statement and this one."""
    opening = statement.opening_balance
    if opening is None or previous is None:
        return ()
    flags = []
    before = previous["statement_id"] or f"#{previous['statement_pk']}"
    if (previous["closing_currency"], previous["closing_amount"]) != (
        opening.amount.currency, opening.amount.amount
    ):
        flags.append(Flag(
            "continuity_mismatch",
            f"opening balance {opening.amount} does not equal the closing balance "
            f"{previous['closing_amount']} {previous['closing_currency']} of statement "
            f"{before} on {previous['closing_date']}",
        ))
    number, previous_number = _sequence_number(statement.sequence), _sequence_number(
        previous["sequence"])
    if number is not None and previous_number is not None and number > previous_number + 1:
        flags.append(Flag(
            "continuity_gap",
            f"statement sequence jumps from {previous_number} (statement {before}) to {number}: "
            f"{number - previous_number - 1} statement(s) missing",
        ))
    return tuple(flags)


def _sequence_number(sequence: str | None) -> int | None:
    """The statement number of an MT940 :28C: ``00221/001`` or an ISO sequence ``221``."""
    if not sequence:
        return None
    head = sequence.split("/", 1)[0].strip()
    return int(head) if head.isdigit() else None


@dataclass(frozen=True, slots=True)
class Document:
    """A document to store: its SHA-256, name and size, and its bytes in memory
    (``content``) or in a file (``path``, read again when it is stored, in pieces)."""

    sha256: bytes
    source: str
    size: int
    content: bytes | None = None
    path: Path | None = None


async def known_document(conn: asyncpg.Connection, tenant: str,
                         sha256: bytes) -> IngestResult | None:
    """The stored result of the document with this SHA-256, or None if it is new."""
    if await documents.find(conn, tenant, sha256) is None:
        return None
    return await _known_document(conn, tenant, sha256)


async def ingest(conn: asyncpg.Connection, data: bytes, *, source: str, tenant: str = "default",
                 strict: bool = False,
                 progress: Callable[[str], None] | None = None) -> IngestResult:
    """Parse and store one document; raise ``ParseError`` with nothing stored if it is bad.

    A document whose bytes are already stored is answered from what was stored, unparsed.
    ``progress`` hears the step begun once parsing is done (the command line's progress).
    """
    sha256 = hashlib.sha256(data).digest()
    known = await known_document(conn, tenant, sha256)
    if known is not None:
        return known
    parts = parsers.stream(io.BytesIO(data), source=source, strict=strict)
    document = Document(sha256, source, len(data), content=data)
    return await ingest_parts(conn, tenant, parts, document=document, progress=progress)


async def store_document(conn: asyncpg.Connection, tenant: str, *, data: bytes, source: str,
                         statements: Sequence[Statement]) -> IngestResult:
    """Store a document already parsed into ``statements`` (all of it, or, already known,
    nothing), as ``ingest`` stores what it parses."""
    sha256 = hashlib.sha256(data).digest()
    known = await known_document(conn, tenant, sha256)
    if known is not None:
        return known
    document = Document(sha256, source, len(data), content=data)
    return await ingest_parts(conn, tenant, iter(from_statements(statements)),
                              document=document)


async def ingest_parts(conn: asyncpg.Connection, tenant: str, parts: Iterator[Part], *,
                       document: Document,
                       progress: Callable[[str], None] | None = None) -> IngestResult:
    """Stage a document's parts (read in a worker thread, copied in batches, outside any
    transaction of ours), then store them in one short transaction: all of it, or, when
    the same bytes were stored meanwhile, nothing. Staged lines are dropped whatever
    happens."""
    try:
        staged = await stage(conn, parts, source=document.source)
        for statement in staged:
            ledger = statement.ledger()
            if ledger is not None:
                await staging.rank(conn, statement_no=statement.number, start=ledger.opening,
                                   newest_first=statement.newest_first)
        if progress is not None:
            progress(f"storing {sum(s.entries for s in staged):,} lines")
        return await _store(conn, tenant, document, staged)
    finally:
        try:
            await staging.clear(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The connection is gone or its transaction failed: the error that did that
            # is the one the caller hears; the session's staged lines go with it.
            logger.debug("staged lines not cleared: %s", type(exc).__name__)


async def _store(conn: asyncpg.Connection, tenant: str, document: Document,
                 staged: Sequence[StagedStatement]) -> IngestResult:
    """Store a staged document in one transaction.

    The accounts it is about are registered and locked in one order (two imports touching
    the same accounts never deadlock); while an account is locked, no other import decides
    about its lines, so each line is judged against everything stored before it.
    """
    async with conn.transaction():
        # The document's formats, in the order its statements come (one, but for a SWIFT
        # file mixing MT940 and MT942 messages): names of ``parsers.model.FORMAT_NAMES``.
        formats = ",".join(dict.fromkeys(s.statement.format for s in staged))
        if document.path is not None:
            document_id = await documents.insert_file(
                conn, tenant, sha256=document.sha256, source=document.source, format=formats,
                path=document.path, size=document.size)
        else:
            document_id = await documents.insert(
                conn, tenant, sha256=document.sha256, source=document.source, format=formats,
                content=document.content or b"")
        if document_id is None:
            return await _known_document(conn, tenant, document.sha256)
        account_ids = {}
        for key, account in sorted({s.statement.account.key: s.statement.account
                                    for s in staged}.items()):
            account_ids[key] = await accounts.register(conn, tenant, account)
        for account_id in sorted(account_ids.values()):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ingest_lock(tenant, account_id))
        stored = [await _store_statement(conn, tenant, statement,
                                         account_id=account_ids[statement.statement.account.key],
                                         document_id=document_id)
                  for statement in staged]
    result = IngestResult(document_id=document_id, document_known=False,
                          statements=tuple(stored))
    # Fresh statistics now rather than when autovacuum next looks: without them the
    # planner misjudges the table and a page of lines takes ten times as long.
    grown = [table for table, added in (("transactions", result.entries_new),
                                        ("statement_lines", result.entries_known))
             if added >= _ANALYZE_AFTER]
    if grown:
        await conn.execute("ANALYZE " + ", ".join(grown))
    logger.info("imported document %s: %d statements, %d new lines, %d known",
                document_id, len(stored), result.entries_new, result.entries_known)
    return result


def _ingest_lock(tenant: str, account_id: int) -> int:
    digest = hashlib.sha256(f"ingest:{tenant}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _store_statement(conn: asyncpg.Connection, tenant: str, staged: StagedStatement, *,
                           account_id: int, document_id: int) -> StoredStatement:
    """One staged statement: decide what the account has (``parsers.overlap``, day by day
    where it has lines), then store the statement, its new lines, the provisional lines it
    confirms, and its events, set-based."""
    statement = staged.statement
    placement, windows = await ingest_decide.place(conn, tenant, account_id=account_id,
                                                   staged=staged, ledger=staged.ledger())
    await ingest_decide.decide_days(conn, tenant, account_id=account_id, staged=staged,
                                    placement=placement, windows=windows)
    known, superseded, doubts = await staging.decided_counts(conn, statement_no=staged.number)
    outcomes = statements.Outcomes(new=staged.entries - known - superseded, known=known,
                                   superseded=superseded, possible_duplicates=doubts)
    previous, opening = None, statement.opening_balance
    if opening is not None and statement.format not in PROVISIONAL_FORMATS:
        previous = await statements.previous(
            conn, tenant, account_id=account_id, on_or_before=opening.date,
            document_id=document_id)
    flags = statement.flags + continuity_flags(statement, previous)
    if outcomes.possible_duplicates:
        flags += (Flag("possible_duplicate",
                       f"{outcomes.possible_duplicates} line(s) were stored although a line "
                       "like each is already stored on the same date, and the balances do "
                       "not prove them different: check them"),)
    statement_pk = await statements.insert(
        conn, tenant, account_id=account_id, document_id=document_id, ordinal=staged.number,
        statement=statement, flags=flags, ledger=placement.ledger, outcomes=outcomes,
        span=statements.Span(staged.entries, staged.first, staged.last), staged=staged.number)
    scheme = reference_scheme(statement.format)
    await transactions.confirm_staged(conn, tenant, account_id=account_id,
                                      statement_pk=statement_pk, statement_no=staged.number,
                                      scheme=scheme, expected=superseded)
    added = await transactions.move_staged(conn, tenant, account_id=account_id,
                                           statement_pk=statement_pk,
                                           statement_no=staged.number, scheme=scheme)
    if added != outcomes.new:  # pragma: no cover - the decisions and the move disagree
        raise RuntimeError(f"{added} lines stored where {outcomes.new} were decided new")
    new_events = [_statement_imported(
        account_id=account_id, statement_pk=statement_pk, document_id=document_id,
        statement=statement, entries=staged.entries, flags=flags, outcomes=outcomes)]
    if previous is not None and opening is not None \
            and any(f.code == "continuity_mismatch" for f in flags):
        new_events.append(_statement_gap(account_id, statement_pk, statement, opening,
                                         previous))
    if outcomes.known or outcomes.possible_duplicates:
        new_events.append(outbox.NewEvent("statement.overlap", events.account_lane(account_id), {
            "account_id": account_id, "statement_pk": statement_pk,
            "statement_id": statement.statement_id, "entries": staged.entries,
            "entries_known": outcomes.known, "entries_new": outcomes.new,
            "entries_superseded": outcomes.superseded,
            "possible_duplicates": outcomes.possible_duplicates}))
    await outbox.emit(conn, tenant, new_events)
    booked = await _payments_received(conn, tenant, account_id=account_id,
                                      statement_no=staged.number)
    return StoredStatement(
        statement_pk=statement_pk, account_id=account_id, account_key=statement.account.key,
        statement_id=statement.statement_id, format=statement.format,
        entries=staged.entries, entries_new=outcomes.new,
        flags=tuple({"code": f.code, "message": f.message, "location": f.location}
                    for f in flags),
        entries_booked=booked)


async def _payments_received(conn: asyncpg.Connection, tenant: str, *, account_id: int,
                             statement_no: int) -> int:
    """``payment.received`` for the incoming lines a statement made booked, in arrival
    order, in one statement (``outbox.emit_staged_payments``); returns how many lines it
    made booked (incoming or not).

    The events' fan-out looks the new events up by an array of their ids: a generic plan
    cannot hash such an array, and compares each row with every id. Plans are made for
    the values at hand while it runs, and only then: with ``force_custom_plan`` in force,
    every foreign-key check of the lines stored before (one per line, a cached plan) was
    planned again."""
    booked, payments = await staging.booked_counts(conn, statement_no=statement_no)
    if not payments:
        return booked
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    await outbox.emit_staged_payments(conn, tenant, account_id=account_id,
                                      statement_no=statement_no, count=payments)
    # (Not reset when it failed: the transaction is lost then, and the setting with it.)
    await conn.execute("SET LOCAL plan_cache_mode = DEFAULT")
    return booked


def _statement_gap(account_id: int, statement_pk: int, statement: Statement, opening: Balance,
                   previous: asyncpg.Record) -> outbox.NewEvent:
    return outbox.NewEvent("statement.gap", events.account_lane(account_id), {
        "account_id": account_id, "statement_pk": statement_pk,
        "statement_id": statement.statement_id,
        "previous_statement_pk": previous["statement_pk"],
        "previous_closing_balance": events.balance_fields(
            previous["closing_amount"], previous["closing_currency"], previous["closing_date"]),
        "opening_balance": events.balance_fields(
            opening.amount.amount, opening.amount.currency, opening.date),
        "difference": decimal_text(opening.amount.amount - previous["closing_amount"])})


def _statement_imported(*, account_id: int, statement_pk: int, document_id: int,
                        statement: Statement, entries: int, flags: tuple[Flag, ...],
                        outcomes: statements.Outcomes) -> outbox.NewEvent:
    opening, closing = statement.opening_balance, statement.closing_balance
    return outbox.NewEvent("statement.imported", events.account_lane(account_id), {
        "account_id": account_id, "statement_pk": statement_pk,
        "statement_id": statement.statement_id, "document_id": document_id,
        "format": statement.format,
        "entries": entries, "entries_new": outcomes.new,
        "entries_known": outcomes.known, "entries_superseded": outcomes.superseded,
        "possible_duplicates": outcomes.possible_duplicates,
        "opening_balance": events.balance_fields(
            opening.amount.amount, opening.amount.currency, opening.date) if opening else None,
        "closing_balance": events.balance_fields(
            closing.amount.amount, closing.amount.currency, closing.date) if closing else None,
        "flags": [f.code for f in flags]})


async def _known_document(conn: asyncpg.Connection, tenant: str,
                          sha256: bytes) -> IngestResult:
    document_id = await documents.find(conn, tenant, sha256)
    if document_id is None:  # pragma: no cover - the insert conflicted on this very row
        raise RuntimeError("document vanished between insert and lookup")
    rows = await statements.of_document(conn, tenant, document_id)
    return IngestResult(
        document_id=document_id, document_known=True,
        statements=tuple(
            StoredStatement(
                statement_pk=r["statement_pk"], account_id=r["account_id"],
                account_key=r["account_key"], statement_id=r["statement_id"],
                format=r["format"], entries=r["entry_count"], entries_new=0,
                flags=tuple(statements.decode_flags(r["flags"])),
            ) for r in rows
        ),
    )
