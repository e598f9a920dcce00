"""``recon-gateway match``: statements and invoices from files in, allocations as CSV out.

Output columns (others rely on them): ``bank_reference,invoice_id,amount,currency,
confidence,decision``; ``--explain`` adds ``settlement,difference,explanation``. An
unmatched payment is one row with an empty ``invoice_id`` and its own amount.
Bad input (a statement that does not parse, an invoice or rate row that is wrong) is
listed on standard error and nothing is written: matching half the data would mislead.
While standard error is a terminal, a progress line there counts the statement files read
and the payments matched.

Statement files of ``PARALLEL_BYTES`` or more are parsed in a process of their own while
this one reads the invoices, rates and customers and builds the engine's indexes (``load``):
on two cores the two take about as long as the longer of them. The payments come back
pickled; everything else, matching included, runs here as before.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import parsers
from gateway.progress import Progress
from matching.engine import Engine
from matching.fx import RateTable, read_rates_csv
from matching.invoices import Customer, Invoice, read_customer, read_invoices_csv
from matching.model import Allocation, MatchConfig, Payment
from matching.payments import payments_from_statements
from parsers.jsonl import decimal_text
from parsers.model import Statement

PARALLEL_BYTES = 4 << 20   # statement files this big together are parsed beside the rest
COLUMNS = ("bank_reference", "invoice_id", "amount", "currency", "confidence", "decision")
EXPLAIN_COLUMNS = ("settlement", "difference", "explanation")


def _read_text(path: str, what: str, errors: list[str]) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: cannot read the {what} as UTF-8 text: {exc}")
        return None


def _statements(paths: Sequence[str], errors: list[str],
                progress: Progress) -> list[Statement]:
    statements: list[Statement] = []
    for done, path in enumerate(paths):
        progress.update(f"match: reading statements, {done} of {len(paths)} files done")
        try:
            statements.extend(parsers.parse_path(Path(path)))
        except parsers.ParseError as exc:
            errors.append(str(exc))
    return statements


def parsed_payments(paths: Sequence[str]) -> tuple[list[Payment], list[str], float]:
    """The payments of statement files, the errors of those that do not parse, and the
    seconds it took (what a process of its own runs for ``load``)."""
    started = time.perf_counter()
    errors: list[str] = []
    statements: list[Statement] = []
    for path in paths:
        try:
            statements.extend(parsers.parse_path(Path(path)))
        except parsers.ParseError as exc:
            errors.append(str(exc))
    return list(payments_from_statements(statements)), errors, time.perf_counter() - started


@dataclass
class Loaded:
    """What ``match`` works on: the engine (None when any input is bad), the payments, the
    problems found, and the seconds each step took on the wall clock (``parse``, ``read``
    and ``index``; ``parse`` in its own process when it ran beside the others)."""

    engine: Engine | None
    payments: list[Payment]
    invoices: int
    errors: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def load(statements: Sequence[str], invoices_path: str, rates_path: str | None,
         customers_path: str | None, config: MatchConfig, progress: Progress) -> Loaded:
    """Parse the statements and build the engine on the invoices, rates and customers: in
    two processes at once when the statement files are ``PARALLEL_BYTES`` or more."""
    seconds: dict[str, float] = {}
    size = sum(Path(p).stat().st_size for p in statements if Path(p).is_file())
    pool: ProcessPoolExecutor | None = None
    parsing: Future[tuple[list[Payment], list[str], float]] | None = None
    statement_errors: list[str] = []
    payments: list[Payment] = []
    if size >= PARALLEL_BYTES:
        pool = ProcessPoolExecutor(max_workers=1,
                                   mp_context=multiprocessing.get_context("spawn"))
        parsing = pool.submit(parsed_payments, list(statements))
        progress.update("match: reading statements and invoices")
    try:
        if parsing is None:
            started = time.perf_counter()
            parsed = _statements(statements, statement_errors, progress)
            payments = list(payments_from_statements(parsed))
            seconds["parse"] = time.perf_counter() - started
        started = time.perf_counter()
        errors: list[str] = []
        invoices: list[Invoice] = []
        text = _read_text(invoices_path, "invoices", errors)
        if text is not None:
            invoices, invoice_errors = read_invoices_csv(text)
            errors.extend(f"{invoices_path}: line {e.index}{f' ({e.key})' if e.key else ''}: "
                          f"{e.field}: {e.message}" for e in invoice_errors)
        rates = RateTable()
        if rates_path:
            text = _read_text(rates_path, "rates", errors)
            if text is not None:
                rates, rate_errors = read_rates_csv(text)
                errors.extend(f"{rates_path}: line {e.index}: {e.field}: {e.message}"
                              for e in rate_errors)
        customers = _customers(customers_path, errors)
        seconds["read"] = time.perf_counter() - started
        started = time.perf_counter()
        engine = None if errors else Engine(invoices, customers, rates, config)
        seconds["index"] = time.perf_counter() - started
        if parsing is not None:
            payments, statement_errors, seconds["parse"] = parsing.result()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    errors = statement_errors + errors
    return Loaded(None if errors else engine, payments, len(invoices), errors, seconds)


def _customers(path: str | None, errors: list[str]) -> list[Customer]:
    if path is None:
        return []
    text = _read_text(path, "customers", errors)
    if text is None:
        return []
    try:
        records: Any = json.loads(text)
    except ValueError as exc:
        errors.append(f"{path}: not JSON: {exc}")
        return []
    if not isinstance(records, list):
        errors.append(f"{path}: expected a JSON array of customers")
        return []
    customers = []
    for index, record in enumerate(records, 1):
        result = read_customer(record, index)
        if isinstance(result, list):
            errors.extend(f"{path}: {e}" for e in result)
        else:
            customers.append(result)
    return customers


def _row(allocation: Allocation, amount_of: dict[str, Any], explain: bool) -> list[str]:
    if allocation.invoice_id is None:
        money = amount_of[allocation.payment_key]
    else:
        money = allocation.amount
    row = [allocation.payment_key, allocation.invoice_id or "",
           decimal_text(money.amount) if money else "", money.currency if money else "",
           f"{allocation.confidence:.3f}", allocation.decision.value]
    if explain:
        row += [allocation.settlement.value if allocation.settlement else "",
                decimal_text(allocation.difference.amount) if allocation.difference else "",
                allocation.explanation]
    return row


def match(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with Progress(err) as progress:
        return _match(args, out, err, progress)


def _match(args: argparse.Namespace, out: TextIO, err: TextIO, progress: Progress) -> int:
    config = MatchConfig(auto_threshold=args.auto_threshold, review_floor=args.review_floor)
    loaded = load(args.statements, args.invoices, args.rates, args.customers, config, progress)
    progress.clear()
    if loaded.engine is None:
        for error in loaded.errors[:200]:
            err.write(f"error: {error}\n")
        err.write(f"{len(loaded.errors)} problem(s); nothing was matched\n")
        return 1
    payments = loaded.payments
    allocations = loaded.engine.match(
        payments, progress=lambda done, total: progress.update(
            f"match: {done} of {total} payments matched"))
    progress.clear()
    amount_of = {p.key: p.amount for p in payments}
    rows = [_row(a, amount_of, args.explain) for a in allocations]
    header = COLUMNS + (EXPLAIN_COLUMNS if args.explain else ())
    if args.out:
        with Path(args.out).open("w", newline="", encoding="utf-8") as target:
            csv.writer(target, lineterminator="\n").writerows([header, *rows])
    else:
        csv.writer(out, lineterminator="\n").writerows([header, *rows])
    counts = {d: sum(1 for a in allocations if a.decision.value == d)
              for d in ("auto", "review", "unmatched")}
    err.write(f"{len(payments)} incoming payments, {loaded.invoices} invoices: "
              f"{counts['auto']} automatic allocations, {counts['review']} to review, "
              f"{counts['unmatched']} unmatched\n")
    return 0


def register(commands: Any) -> None:
    defaults = MatchConfig()
    parser = commands.add_parser(
        "match", help="match the payments of statement files to the invoices of a CSV",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", nargs="+", required=True, metavar="FILE")
    parser.add_argument("--invoices", required=True, metavar="invoices.csv",
                        help="columns invoice_id,customer_id,customer_name,currency,amount,"
                        "open_amount,issue_date,due_date,reference")
    parser.add_argument("--rates", metavar="rates.csv",
                        help="columns date,from_currency,to_currency,rate")
    parser.add_argument("--customers", metavar="customers.json",
                        help='[{"customer_id", "name", "ibans": [...], "aliases": [...]}]')
    parser.add_argument("--out", metavar="allocations.csv", help="default: standard output")
    parser.add_argument("--auto-threshold", type=float, default=defaults.auto_threshold,
                        help=f"confidence from which a match is automatic "
                        f"(default {defaults.auto_threshold})")
    parser.add_argument("--review-floor", type=float, default=defaults.review_floor,
                        help=f"confidence below which nothing is proposed "
                        f"(default {defaults.review_floor})")
    parser.add_argument("--explain", action="store_true",
                        help="add settlement, difference and explanation columns")
    parser.set_defaults(run=match)
