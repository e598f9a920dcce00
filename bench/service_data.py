"""Data for ``service_bench.py``: realistic receivables topped up to production volumes.

The realistic part is a ``matching_gen.py`` data set (invoices, customers and a statement
that pays them, kept under ``bench/out/matching``). It is topped up with filler, made here in
seconds (``matching_gen.py`` is quadratic: 139k invoices take about 25 CPU minutes):

- **filler invoices** ``BX-1nnnnnn`` of filler customers, open, in EUR, so that the tenant
  holds the number of open invoices asked for;
- **filler payments**: incoming EUR lines from payers nobody invoiced, quoting order numbers
  of no invoice (``AU-nnnnnnn``), so that the tenant holds the number of payments asked
  for; the engine looks at each of them and they stay unmatched (the unmatched pool);
- **probe payments**: incoming lines quoting ``BX-98765nn``, an invoice that does not
  exist yet: the benchmark pushes it later, one at a time, and times until the waiting
  payment is matched to it (the incremental path a changed invoice takes);
- **floor invoices** ``BX-10999nn`` (open, among the filler): the benchmark pays each by a
  one-line statement later, timing the path a new payment takes.

Amounts are integer cents, never floats. Statements are camt.053.001.08 built from
``generate.py``'s entry and balance writers.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import generate  # bench/generate.py, beside this script
from generate import EntrySpec

PROBE_IDS = tuple(f"BX-98765{k:02d}" for k in range(1, 100))
FLOOR_IDS = tuple(f"BX-10999{k:02d}" for k in range(1, 100))
_FILLER_START = 1_000_001
_INVOICE_FIELDS = ("invoice_id", "customer_id", "customer_name", "currency", "amount",
                   "open_amount", "issue_date", "due_date", "reference")


@dataclass(frozen=True, slots=True)
class Probe:
    """An invoice to push later and the payment (already stored) that settles it."""

    invoice_id: str
    customer_id: str
    name: str
    cents: int

    def record(self) -> dict[str, str]:
        """The invoice as ``PUT /v1/invoices`` takes it."""
        amount = generate._amount(self.cents)
        return {"invoice_id": self.invoice_id, "customer_id": self.customer_id,
                "customer_name": self.name, "currency": "EUR", "amount": amount,
                "open_amount": amount, "issue_date": "2026-06-01", "due_date": "2026-07-01",
                "reference": ""}


@dataclass(frozen=True, slots=True)
class DataSet:
    """What the benchmark loads: files in ``folder`` and the counts they hold."""

    customers_json: Path
    invoices_csv: Path
    statements: tuple[Path, ...]
    open_invoices: int
    payments: int
    realistic_payments: int
    probes: tuple[Probe, ...]
    floors: tuple[Probe, ...]


def _open_realistic(folder: Path) -> tuple[list[dict[str, str]], int]:
    rows = list(csv.DictReader(io.StringIO((folder / "invoices.csv").read_text("utf-8"))))
    open_count = sum(1 for r in rows if Decimal(r["open_amount"]) != 0)
    return rows, open_count


def _incoming(statement: bytes) -> int:
    """Incoming booked lines of a ``matching_gen.py`` statement (one ``CRDT`` per entry
    and one per transaction detail: the entry-level one is counted)."""
    count = 0
    for chunk in statement.split(b"<Ntry>")[1:]:
        head = chunk.split(b"<NtryDtls>", 1)[0]
        if b"<CdtDbtInd>CRDT</CdtDbtInd>" in head:
            count += 1
    return count


def camt(entries: Sequence[EntrySpec], *, account: str, statement_id: str,
         first: date) -> bytes:
    """A camt.053.001.08 document of one statement of ``entries`` on ``account``."""
    closing = sum(e.cents for e in entries)
    last = max((e.booking_date for e in entries), default=first)
    credits = sum(e.cents for e in entries if e.cents > 0)
    debits = -sum(e.cents for e in entries if e.cents < 0)
    amount = generate._amount
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">\n'
        "  <BkToCstmrStmt>\n"
        f"    <GrpHdr><MsgId>SVC-{statement_id}</MsgId>"
        "<CreDtTm>2026-12-01T06:00:00+01:00</CreDtTm></GrpHdr>\n"
        "    <Stmt>\n"
        f"      <Id>{statement_id}</Id>\n"
        "      <ElctrncSeqNb>1</ElctrncSeqNb>\n"
        "      <CreDtTm>2026-12-01T06:00:00+01:00</CreDtTm>\n"
        f"      <Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n",
        generate._camt_balance("OPBD", 0, first - timedelta(days=1)),
        generate._camt_balance("CLBD", closing, last),
        "      <TxsSummry>"
        f"<TtlNtries><NbOfNtries>{len(entries)}</NbOfNtries>"
        f"<Sum>{amount(credits + debits)}</Sum></TtlNtries>"
        "</TxsSummry>\n",
    ]
    parts.extend(generate._camt_entry(e) for e in entries)
    parts.append("    </Stmt>\n  </BkToCstmrStmt>\n</Document>\n")
    return "".join(parts).encode("utf-8")


def credit(rng: random.Random, index: int, cents: int, name: str, remittance: str,
           booked: date) -> EntrySpec:
    """One incoming SEPA credit."""
    domain, family, subfamily, swift, gvc = generate._CODES_CREDIT[0]
    return EntrySpec(
        cents=cents, booking_date=booked, value_date=booked,
        bank_reference=f"SVC{booked:%y%m%d}{index:09d}",
        end_to_end_id=f"E2E{rng.randrange(16**12):012X}", counterparty_name=name,
        counterparty_iban=generate.iban(rng),
        counterparty_bic=rng.choice(generate._BICS),
        remittance=remittance, domain=domain, family=family, subfamily=subfamily,
        swift_code=swift, gvc=gvc)


def _name(rng: random.Random) -> str:
    first, last = generate._FIRST, generate._LAST
    return f"{rng.choice(first)} {rng.choice(last)} {rng.randrange(100, 999)}"


def build(realistic: Path, out: Path, *, invoices: int, payments: int,
          probes: int, seed: int = 5) -> DataSet:
    """Write the data set into ``out`` (realistic part from ``realistic``)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    rows, realistic_open = _open_realistic(realistic)
    statement = (realistic / "statement.xml").read_bytes()
    realistic_payments = _incoming(statement)

    floors = tuple(Probe(i, f"BXC-F{k:02d}", f"Floor Payer {k:02d}", 10_000 + 37 * k)
                   for k, i in enumerate(FLOOR_IDS[:probes], 1))
    filler_invoices = max(2_000, invoices - realistic_open)
    customers = max(1, filler_invoices // 5)
    names = [_name(rng) for _ in range(customers)]
    for k in range(filler_invoices):
        customer = k % customers
        cents = rng.randrange(5_000, 2_000_000)
        issued = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
        amount = generate._amount(cents)
        rows.append({"invoice_id": f"BX-{_FILLER_START + k}", "customer_id": f"BXC-{customer}",
                     "customer_name": names[customer], "currency": "EUR", "amount": amount,
                     "open_amount": amount, "issue_date": issued.isoformat(),
                     "due_date": (issued + timedelta(days=30)).isoformat(), "reference": ""})
    for floor in floors:
        rows.append(floor.record())
    invoices_csv = out / "invoices.csv"
    with invoices_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_INVOICE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    customers_json = out / "customers.json"
    customers_json.write_text((realistic / "customers.json").read_text("utf-8"), "utf-8")

    probe_list = tuple(Probe(i, f"BXC-P{k:02d}", f"Probe Payer {k:02d}", 20_000 + 41 * k)
                       for k, i in enumerate(PROBE_IDS[:probes], 1))
    filler_payments = max(0, payments - realistic_payments - len(probe_list))
    entries: list[EntrySpec] = []
    start = date(2026, 1, 1)
    spread = max(1, filler_payments // 300)  # lines a day, over about 300 days
    for k in range(filler_payments):
        booked = start + timedelta(days=k // spread)
        entries.append(credit(rng, k, rng.randrange(100, 3_000_000), _name(rng),
                              f"Kd-Nr {rng.randrange(10_000, 99_999)} Auftrag "
                              f"AU-{rng.randrange(10**6, 10**7)}", booked))
    for k, probe in enumerate(probe_list):
        at = (k + 1) * len(entries) // (len(probe_list) + 1)
        booked = entries[at].booking_date if entries else start
        entries.insert(at, credit(rng, 10**8 + k, probe.cents, probe.name,
                                  f"Rechnung {probe.invoice_id}", booked))
    filler = out / "filler.xml"
    filler.write_bytes(camt(entries, account=generate.iban(rng), statement_id="SVC-FILLER",
                            first=start))
    realistic_copy = out / "realistic.xml"
    realistic_copy.write_bytes(statement)
    (out / "probes.json").write_text(json.dumps([p.record() for p in probe_list]), "utf-8")
    return DataSet(customers_json, invoices_csv, (realistic_copy, filler),
                   realistic_open + filler_invoices + len(floors),
                   realistic_payments + len(entries), realistic_payments, probe_list, floors)


def paying(floor: Probe, index: int) -> bytes:
    """A one-line statement on a new account that pays ``floor`` exactly."""
    rng = random.Random(index)
    booked = date(2026, 11, 20)
    entry = credit(rng, index, floor.cents, floor.name, f"Rechnung {floor.invoice_id}", booked)
    return camt([entry], account=generate.iban(rng), statement_id=f"SVC-FLOOR-{index}",
                first=booked)
