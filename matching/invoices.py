"""Invoices and customers as the CRM gives them, validated. Pure: no I/O.

The same field names everywhere: the CSV columns of ``recon-gateway invoices import``
and the JSON objects of ``PUT /v1/invoices`` are
``invoice_id,customer_id,customer_name,currency,amount,open_amount,issue_date,due_date,reference``
(JSON may add ``kind``, ``status`` and ``related_invoice_id``). Bad records are returned
as errors naming the record and the field, never half-accepted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from parsers.iban import normalize_iban
from parsers.money import Money, MoneyError, is_currency, minor_units, parse_decimal

CSV_COLUMNS = ("invoice_id", "customer_id", "customer_name", "currency", "amount",
               "open_amount", "issue_date", "due_date", "reference")
_MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x1f]")


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_id: str
    customer_id: str
    amount: Money
    open_amount: Money
    issue_date: date
    due_date: date | None = None
    customer_name: str | None = None
    reference: str | None = None
    kind: InvoiceKind = InvoiceKind.INVOICE
    cancelled: bool = False
    related_invoice_id: str | None = None

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def status(self) -> InvoiceStatus:
        if self.cancelled:
            return InvoiceStatus.CANCELLED
        if self.open_amount.amount < 0:
            return InvoiceStatus.OVERPAID
        if self.open_amount.amount == 0:
            return InvoiceStatus.PAID
        if self.open_amount.amount < self.amount.amount:
            return InvoiceStatus.PARTIALLY_PAID
        return InvoiceStatus.OPEN


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    ibans: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordError:
    """What is wrong with one record: which (``index``, ``key``), which field, and why."""

    index: int
    key: str | None
    field: str
    message: str

    def __str__(self) -> str:
        who = f"record {self.index}" + (f" ({self.key})" if self.key else "")
        return f"{who}: {self.field}: {self.message}"


@dataclass(slots=True)
class _Reader:
    """Reads one record's fields, collecting every problem rather than stopping at one."""

    record: Mapping[str, Any]
    index: int
    errors: list[RecordError] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        value = self.record.get("invoice_id") or self.record.get("customer_id")
        return str(value)[:60] if value else None

    def fail(self, name: str, message: str) -> None:
        self.errors.append(RecordError(self.index, self.key, name, message))

    def text(self, name: str, *, required: bool = False, limit: int = _MAX_TEXT) -> str | None:
        value = self.record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(name, "is required")
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {type(value).__name__}")
            return None
        value = value.strip()
        if len(value) > limit:
            self.fail(name, f"is longer than {limit} characters")
            return None
        if _CONTROL.search(value):
            self.fail(name, "contains control characters")
            return None
        return value

    def day(self, name: str, *, required: bool = False) -> date | None:
        value = self.text(name, required=required, limit=10)
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            self.fail(name, f"must be a date as YYYY-MM-DD, got {value!r}")
            return None

    def amount(self, name: str, currency: str | None, *, required: bool = True) -> Decimal | None:
        """A decimal amount: a string (or a whole JSON number), never a float."""
        raw = self.record.get(name)
        if isinstance(raw, float):
            self.fail(name, "must be a decimal string such as \"12.50\", not a JSON number "
                      "with a fraction (floats lose cents)")
            return None
        if (raw is not None and not isinstance(raw, str | int)) or isinstance(raw, bool):
            self.fail(name, f"must be a decimal string, got {type(raw).__name__}")
            return None
        # A whole JSON number is its digits (it was read as text again, and refused).
        value = str(raw) if isinstance(raw, int) else self.text(name, required=required,
                                                                  limit=40)
        if value is None:
            return None
        try:
            number = parse_decimal(value)
        except MoneyError:
            self.fail(name, f"must be a decimal amount such as 12.50, got {value!r}")
            return None
        places = -int(number.as_tuple().exponent)
        if currency is not None and places > minor_units(currency):
            self.fail(name, f"has more decimals than {currency} allows ({minor_units(currency)})")
            return None
        return number

    def currency(self) -> str | None:
        value = self.text("currency", required=True, limit=40)
        if value is not None and not is_currency(value):
            self.fail("currency", f"must be an ISO 4217 code such as EUR, got {value!r}")
            return None
        return value


def read_invoice(record: Mapping[str, Any], index: int) -> Invoice | list[RecordError]:
    """One invoice from a CSV row or JSON object, or the list of what is wrong with it."""
    if not isinstance(record, Mapping):
        return [RecordError(index, None, "(record)", "must be an object")]
    r = _Reader(record, index)
    invoice_id = r.text("invoice_id", required=True, limit=100)
    customer_id = r.text("customer_id", required=True, limit=100)
    currency = r.currency()
    amount = r.amount("amount", currency)
    open_amount = r.amount("open_amount", currency, required=False)
    issue_date = r.day("issue_date", required=True)
    due_date = r.day("due_date")
    customer_name = r.text("customer_name")
    reference = r.text("reference")
    related_invoice_id = r.text("related_invoice_id", limit=100)
    kind_text = r.text("kind", limit=20) or InvoiceKind.INVOICE.value
    status_text = r.text("status", limit=20) or InvoiceStatus.OPEN.value
    if kind_text not in {k.value for k in InvoiceKind}:
        r.fail("kind", f"must be invoice or credit_note, got {kind_text!r}")
    if status_text not in (InvoiceStatus.OPEN.value, InvoiceStatus.CANCELLED.value):
        r.fail("status", f"must be open or cancelled (payments move the rest), got {status_text!r}")
    if amount is not None and amount <= 0:
        r.fail("amount", "must be greater than zero (a credit note is kind=credit_note)")
    if open_amount is not None and amount is not None and amount > 0 and not (
        0 <= open_amount <= amount
    ):
        r.fail("open_amount", "must be between 0 and the amount")
    if issue_date and due_date and due_date < issue_date:
        r.fail("due_date", "is before the issue date")
    if r.errors or invoice_id is None or customer_id is None or amount is None \
            or issue_date is None or currency is None:
        return r.errors or [RecordError(index, None, "(record)", "incomplete")]
    return Invoice(
        invoice_id=invoice_id,
        customer_id=customer_id,
        amount=Money(amount, currency),
        open_amount=Money(amount if open_amount is None else open_amount, currency),
        issue_date=issue_date,
        due_date=due_date,
        customer_name=customer_name,
        reference=reference,
        kind=InvoiceKind(kind_text),
        cancelled=status_text == InvoiceStatus.CANCELLED.value,
        related_invoice_id=related_invoice_id,
    )


_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_KINDS = {k.value: k for k in InvoiceKind}


def _quick_invoice(record: Mapping[str, Any]) -> Invoice | None:
    """A well-formed record of text fields read in one pass: what ``read_invoice`` makes
    of it, or None when anything in it needs ``read_invoice`` (which then names it). A big
    CSV is read this way, nearly every row taken by the quick path."""
    get = record.get
    raw = (get("invoice_id"), get("customer_id"), get("currency"), get("amount"),
           get("open_amount"), get("issue_date"), get("due_date"), get("customer_name"),
           get("reference"), get("related_invoice_id"), get("kind"), get("status"))
    if not all(v is None or type(v) is str for v in raw):
        return None
    (invoice_id, customer_id, currency, amount_text, open_text, issued_text, due_text,
     customer_name, reference, related, kind_text, status_text) = (
        v.strip() or None if v is not None else None for v in raw)
    if _CONTROL.search("|".join(v for v in raw if v)):
        return None
    if invoice_id is None or customer_id is None or currency is None or amount_text is None \
            or issued_text is None or len(invoice_id) > 100 or len(customer_id) > 100 \
            or not is_currency(currency) or len(issued_text) != 10:
        return None
    if (customer_name is not None and len(customer_name) > _MAX_TEXT) or (
            reference is not None and len(reference) > _MAX_TEXT) or (
            related is not None and len(related) > 100):
        return None
    kind = _KINDS.get(kind_text or InvoiceKind.INVOICE.value)
    if kind is None or status_text not in (None, InvoiceStatus.OPEN.value,
                                           InvoiceStatus.CANCELLED.value):
        return None
    places = minor_units(currency)
    amount = _quick_decimal(amount_text, places)
    open_amount = amount if open_text is None else _quick_decimal(open_text, places)
    if amount is None or open_amount is None or amount <= 0 or not 0 <= open_amount <= amount:
        return None
    try:
        issue_date = date.fromisoformat(issued_text)
        due_date = None
        if due_text is not None:
            due_date = date.fromisoformat(due_text) if len(due_text) == 10 else None
            if due_date is None or due_date < issue_date:
                return None
    except ValueError:
        return None
    return Invoice(invoice_id=invoice_id, customer_id=customer_id,
                   amount=Money(amount, currency), open_amount=Money(open_amount, currency),
                   issue_date=issue_date, due_date=due_date, customer_name=customer_name,
                   reference=reference, kind=kind,
                   cancelled=status_text == InvoiceStatus.CANCELLED.value,
                   related_invoice_id=related)


def _quick_decimal(text: str, places: int) -> Decimal | None:
    if len(text) > 40 or not _PLAIN_DECIMAL.fullmatch(text):
        return None
    number = Decimal(text)
    return number if -int(number.as_tuple().exponent) <= places else None


def read_invoices(records: Iterable[Any]) -> tuple[list[Invoice], list[RecordError]]:
    """All invoices, or with errors: a batch is accepted whole or not at all by callers."""
    invoices: list[Invoice] = []
    errors: list[RecordError] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records, 1):
        quick = _quick_invoice(record) if isinstance(record, Mapping) else None
        result = quick if quick is not None else read_invoice(record, index)
        if isinstance(result, list):
            errors.extend(result)
            continue
        if result.invoice_id in seen:
            errors.append(RecordError(index, result.invoice_id, "invoice_id",
                                      f"appears twice in the batch (also record "
                                      f"{seen[result.invoice_id]})"))
            continue
        seen[result.invoice_id] = index
        invoices.append(result)
    return invoices, errors


def read_invoices_csv(text: str) -> tuple[list[Invoice], list[RecordError]]:
    """Invoices from CSV text with the documented header; row numbers count the header."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [RecordError(1, None, ",".join(missing),
                                "missing column(s) in the header; expected "
                                + ",".join(CSV_COLUMNS))]
    invoices, errors = read_invoices(reader)
    # Report CSV line numbers (the header is line 1).
    return invoices, [RecordError(e.index + 1, e.key, e.field, e.message) for e in errors]


def read_customer(record: Mapping[str, Any], index: int) -> Customer | list[RecordError]:
    if not isinstance(record, Mapping):
        return [RecordError(index, None, "(record)", "must be an object")]
    r = _Reader(record, index)
    customer_id = r.text("customer_id", required=True, limit=100)
    name = r.text("name", required=True)
    lists: dict[str, tuple[str, ...]] = {}
    for name_of_list in ("ibans", "aliases"):
        value = record.get(name_of_list, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.fail(name_of_list, "must be a list of strings")
            value = []
        lists[name_of_list] = tuple(v.strip() for v in value if v.strip())
    ibans = []
    for text in lists["ibans"]:
        iban = normalize_iban(text)
        if iban is None:
            r.fail("ibans", f"{text!r} is not a valid IBAN")
        else:
            ibans.append(iban)
    if r.errors or customer_id is None or name is None:
        return r.errors
    return Customer(customer_id, name, tuple(ibans), lists["aliases"])
