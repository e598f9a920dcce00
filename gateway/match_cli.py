"""``recon-gateway match``: statements and invoices from files in, allocations as CSV out.

Output columns (others rely on them): ``bank_reference,invoice_id,amount,currency,
confidence,decision``; ``--explain`` adds ``settlement,difference,explanation``. An
unmatched payment is one row with an empty ``invoice_id`` and its own amount.
Bad input (a statement that does not parse, an invoice or rate row that is wrong) is
listed on standard error and nothing is written: matching half the data would mislead.
While standard error is a terminal, a progress line there counts the statement files read
and the payments matched.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import parsers
from gateway.progress import Progress
from matching.engine import Engine
from matching.fx import RateTable, read_rates_csv
from matching.invoices import Customer, Invoice, read_customer, read_invoices_csv
from matching.model import Allocation, MatchConfig
from matching.payments import payments_from_statements
from parsers.jsonl import decimal_text
from parsers.model import Statement

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
    errors: list[str] = []
    statements = _statements(args.statements, errors, progress)
    invoices: list[Invoice] = []
    text = _read_text(args.invoices, "invoices", errors)
    if text is not None:
        invoices, invoice_errors = read_invoices_csv(text)
        errors.extend(f"{args.invoices}: line {e.index}{f' ({e.key})' if e.key else ''}: "
                      f"{e.field}: {e.message}" for e in invoice_errors)
    rates = RateTable()
    if args.rates:
        text = _read_text(args.rates, "rates", errors)
        if text is not None:
            rates, rate_errors = read_rates_csv(text)
            errors.extend(f"{args.rates}: line {e.index}: {e.field}: {e.message}"
                          for e in rate_errors)
    customers = _customers(args.customers, errors)
    progress.clear()
    if errors:
        for error in errors[:200]:
            err.write(f"error: {error}\n")
        err.write(f"{len(errors)} problem(s); nothing was matched\n")
        return 1
    config = MatchConfig(auto_threshold=args.auto_threshold, review_floor=args.review_floor)
    payments = list(payments_from_statements(statements))
    allocations = Engine(invoices, customers, rates, config).match(
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
    err.write(f"{len(payments)} incoming payments, {len(invoices)} invoices: "
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
