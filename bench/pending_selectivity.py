"""How selective the reverse index of unmatched payments is, on a matching_gen.py data set.

    python bench/pending_selectivity.py --data bench/out/matching/10000-s11 [--changes 200]
        [--seed 1] [--check 5]

As a service would: the engine matches every payment of the statement once, the automatic
allocations are applied (the invoices' open amounts go down), and the payments left without
one go into a ``matching.pending.PendingIndex``. Then, one at a time, ``--changes`` open
invoices drawn at random (seeded) are changed as a CRM would change them (paid elsewhere:
open amount 0; or a new open amount, a tenth less) and the index says which pending payments
each change concerns: alone (``batch=False``) and matched together (the default). The
change is undone (and told to the index) before the next. Printed: the share of pending
payments returned per change (median, 95th percentile, max) and the time per call.

``--check N`` also re-matches all pending payments before and after N of the changes and
counts the payments whose result differs but were not returned (must be 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import parsers  # noqa: E402  (the project root is put on the path just above)
from matching.engine import Engine  # noqa: E402
from matching.fx import read_rates_csv  # noqa: E402
from matching.invoices import Customer, read_customer, read_invoices_csv  # noqa: E402
from matching.model import Allocation, Decision  # noqa: E402
from matching.payments import payments_from_statements  # noqa: E402
from matching.pending import PendingIndex  # noqa: E402
from parsers.money import Money  # noqa: E402


def by_key(allocations: list[Allocation]) -> dict[str, list[Allocation]]:
    found: dict[str, list[Allocation]] = {}
    for allocation in allocations:
        found.setdefault(allocation.payment_key, []).append(allocation)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", type=int, default=0)
    args = parser.parse_args(argv)
    folder: Path = args.data
    payments = list(payments_from_statements(parsers.parse_path(folder / "statement.xml")))
    invoices, errors = read_invoices_csv((folder / "invoices.csv").read_text())
    rates, _ = read_rates_csv((folder / "rates.csv").read_text())
    customers = [c for i, r in enumerate(json.loads((folder / "customers.json").read_text()), 1)
                 if isinstance(c := read_customer(r, i), Customer)]
    if errors:
        raise SystemExit(f"{folder}: invoices do not read: {errors[:3]}")
    engine = Engine(invoices, customers, rates)
    allocations = engine.match(payments)
    paid: dict[str, Money] = {}
    decided: set[str] = set()
    for a in allocations:
        if a.decision is Decision.AUTO and a.invoice_id and a.amount:
            decided.add(a.payment_key)
            settles = a.settlement is not None and a.settlement.value in ("short", "overpaid")
            before = paid.get(a.invoice_id, engine.invoices[a.invoice_id].open_amount)
            paid[a.invoice_id] = Money(0 * before.amount, before.currency) if settles \
                else Money(before.amount - a.amount.amount, before.currency)
    engine.put_invoices([dataclasses.replace(engine.invoices[i], open_amount=m)
                         for i, m in paid.items()])
    pending = [p for p in payments if p.key not in decided]
    started = time.perf_counter()
    index = PendingIndex(engine, pending)
    built = time.perf_counter() - started
    rng = random.Random(args.seed)
    open_ids = sorted(engine.book.open_ids)
    shares: dict[bool, list[float]] = {False: [], True: []}
    seconds: dict[bool, list[float]] = {False: [], True: []}
    missed = checked = 0
    for n in range(args.changes):
        original = engine.invoices[rng.choice(open_ids)]
        amount = original.open_amount.amount
        changed_amount = amount * 0 if n % 2 == 0 else (amount * 9 / 10).quantize(amount)
        changed = dataclasses.replace(original, open_amount=Money(changed_amount,
                                                                  original.currency))
        check = n < args.check
        earlier = by_key(engine.match(pending)) if check else {}
        for batch in (False, True):
            if batch:   # the second index call must see the change afresh
                change = engine.put_invoices([original])
                index.affected(change)
            change = engine.put_invoices([changed])
            mark = time.perf_counter()
            found = index.affected(change, batch=batch)
            seconds[batch].append(time.perf_counter() - mark)
            shares[batch].append(len(found) / len(pending))
        if check:
            after = by_key(engine.match(pending))
            missed += sum(1 for p in pending if earlier[p.key] != after[p.key]
                          and p.key not in found)
            checked += 1
        index.affected(engine.put_invoices([original]))
    print(f"data: {folder.name}: {len(payments):,} payments, {len(invoices):,} invoices; "
          f"{len(pending):,} pending after the automatic allocations; index built in "
          f"{built:.1f} s")
    print(f"{args.changes} one-invoice changes (seed {args.seed}), share of pending "
          "payments returned:")
    print()
    print("| matched | median | 95th percentile | max | mean ms per call |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for batch in (False, True):
        values = sorted(shares[batch])
        print(f"| {'in one batch' if batch else 'alone'} | {statistics.median(values):.2%} | "
              f"{values[int(0.95 * (len(values) - 1))]:.2%} | {values[-1]:.2%} | "
              f"{1000 * statistics.mean(seconds[batch]):.1f} |")
    if checked:
        print()
        print(f"checked {checked} changes against a full re-match: {missed} payments whose "
              "result differed were not returned")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
