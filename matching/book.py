"""The invoices and customers an engine matches against, indexed, and kept up to date.

An ``InvoiceBook`` holds what ``matching.engine.Engine`` looks things up in: every invoice
by id, the reference index (numbers and references of all invoices, open or not), the
payer index (customers' IBANs, names and aliases, and the names invoices give them), and
the open invoices by customer and by amount. A service keeps one per tenant in memory and
tells it what changed (``put_invoices``, ``remove_invoices``, ``put_customers``,
``remove_customers``) instead of building a new one on every pass: each change costs the
time of the invoices and customers it touches (and a list insertion), not of the whole book.

The book after any sequence of changes indexes exactly what a book built from scratch on
the resulting invoices (in the order a dict keeps them: a replaced invoice keeps its place,
a new one comes last) and customers would: the customer an invoice names but the CRM never
sent is named after that customer's first invoice, and every other name an invoice gives a
customer is an alias of it. Each change returns a ``Change``: what each touched invoice
and customer (as the payer index sees it) was before and is after, for
``matching.pending.PendingIndex`` to find the payments it may concern.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from matching.invoices import Customer, Invoice, InvoiceKind, InvoiceStatus
from matching.payers import PayerIndex
from matching.references import ReferenceIndex


@dataclass(frozen=True, slots=True)
class Change:
    """What one update changed: (before, after) per invoice and per customer touched; None
    where there was none (added) or is none (removed). Customers are as the payer index
    sees them: the CRM's record with the names the customer's invoices add as aliases."""

    invoices: tuple[tuple[Invoice | None, Invoice | None], ...] = ()
    customers: tuple[tuple[Customer | None, Customer | None], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.invoices or self.customers)


def is_open(invoice: Invoice) -> bool:
    """An invoice a payment can settle: open or partly paid, something left to pay."""
    return invoice.kind is InvoiceKind.INVOICE and invoice.status in (
        InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID) and invoice.open_amount.amount > 0


class InvoiceBook:
    """Invoices and customers, indexed for the engine; updated in place by changes.

    The engine reads the attributes directly: ``invoices`` (every invoice by id),
    ``references``, ``payers``, ``open_ids`` (ids of the open invoices), ``open_amounts``
    (their open amounts by id), ``by_customer`` (a customer's open invoice ids, sorted),
    ``customer_amounts`` (per customer and currency, its open invoices' (open amount, id),
    sorted), ``equal`` (the ids of the open invoices by customer, or ``"*"`` for all, currency
    and open amount: ``equal_keys``), ``amounts`` (per currency, the open invoices' (open
    amount, id), sorted) and ``amount_keys`` (the same amounts alone, for bisect).
    """

    def __init__(self, invoices: Iterable[Invoice] = (),
                 customers: Iterable[Customer] = ()) -> None:
        self.invoices: dict[str, Invoice] = {}
        for invoice in invoices:
            self.invoices[invoice.invoice_id] = invoice
        self._explicit: dict[str, Customer] = {c.customer_id: c for c in customers}
        self._seq: dict[str, int] = {}              # an invoice's place in ``invoices``
        self._of_customer: dict[str, set[str]] = {}  # every invoice id of a customer
        self._derived: dict[str, Customer] = {}      # what the payer index holds
        self.references = ReferenceIndex(self.invoices.values())
        grouped: dict[str, list[Invoice]] = {}
        for seq, invoice in enumerate(self.invoices.values()):
            self._seq[invoice.invoice_id] = seq
            self._of_customer.setdefault(invoice.customer_id, set()).add(invoice.invoice_id)
            grouped.setdefault(invoice.customer_id, []).append(invoice)
        self._next_seq = len(self._seq)
        for customer_id in [*self._explicit, *(c for c in grouped if c not in self._explicit)]:
            derived = _derive(self._explicit.get(customer_id), customer_id,
                              grouped.get(customer_id, []))
            if derived is not None:
                self._derived[customer_id] = derived
        self.payers = PayerIndex(self._derived.values())
        self.open_ids: set[str] = {i for i, v in self.invoices.items() if is_open(v)}
        self.open_amounts: dict[str, Decimal] = {}
        self.by_customer: dict[str, list[str]] = {}
        self.customer_amounts: dict[str, dict[str, list[tuple[Decimal, str]]]] = {}
        self.equal: dict[tuple[str, str, Decimal], set[str]] = {}
        amounts: dict[str, list[tuple[Decimal, str]]] = {}
        for invoice_id in sorted(self.open_ids):
            invoice = self.invoices[invoice_id]
            amount = invoice.open_amount.amount
            self.open_amounts[invoice_id] = amount
            self.by_customer.setdefault(invoice.customer_id, []).append(invoice_id)
            amounts.setdefault(invoice.currency, []).append((amount, invoice_id))
            self.customer_amounts.setdefault(invoice.customer_id, {}).setdefault(
                invoice.currency, []).append((amount, invoice_id))
            for key in equal_keys(invoice, amount):
                self.equal.setdefault(key, set()).add(invoice_id)
        for by_currency in self.customer_amounts.values():
            for rows in by_currency.values():
                rows.sort()
        self.amounts = {c: sorted(v) for c, v in amounts.items()}
        self.amount_keys = {c: [a for a, _ in v] for c, v in self.amounts.items()}

    # -- changes ------------------------------------------------------------------------

    def put_invoices(self, invoices: Iterable[Invoice]) -> Change:
        """Add invoices, or replace those of the same id (open amount, status, customer,
        reference, anything): an invoice equal to the one held changes nothing."""
        changed: list[tuple[Invoice | None, Invoice | None]] = []
        touched: set[str] = set()
        for invoice in invoices:
            before = self.invoices.get(invoice.invoice_id)
            if before == invoice:
                continue
            if before is not None:
                self._unindex(before, invoice)
                touched.add(before.customer_id)
            else:
                self._seq[invoice.invoice_id] = self._next_seq
                self._next_seq += 1
            self.invoices[invoice.invoice_id] = invoice
            self._index(invoice, before)
            touched.add(invoice.customer_id)
            changed.append((before, invoice))
        return Change(tuple(changed), self._rederive(touched))

    def remove_invoices(self, invoice_ids: Iterable[str]) -> Change:
        """Forget invoices by id (an id not held is no error: nothing to forget)."""
        changed: list[tuple[Invoice | None, Invoice | None]] = []
        touched: set[str] = set()
        for invoice_id in invoice_ids:
            before = self.invoices.get(invoice_id)
            if before is None:
                continue
            self._unindex(before, None)
            del self.invoices[invoice_id]
            touched.add(before.customer_id)
            changed.append((before, None))
        return Change(tuple(changed), self._rederive(touched))

    def put_customers(self, customers: Iterable[Customer]) -> Change:
        """Add customers as the CRM sends them (name, IBANs, aliases), or replace them."""
        touched = set()
        for customer in customers:
            self._explicit[customer.customer_id] = customer
            touched.add(customer.customer_id)
        return Change((), self._rederive(touched))

    def remove_customers(self, customer_ids: Iterable[str]) -> Change:
        """Forget the CRM's records of customers; a customer its invoices still name stays
        known by the names they give it, as in a book built without the record."""
        touched = set()
        for customer_id in customer_ids:
            if self._explicit.pop(customer_id, None) is not None:
                touched.add(customer_id)
        return Change((), self._rederive(touched))

    # -- the indexes --------------------------------------------------------------------

    def _index(self, invoice: Invoice, before: Invoice | None) -> None:
        invoice_id = invoice.invoice_id
        if before is None or before.reference != invoice.reference:
            self.references.add(invoice)
        self._of_customer.setdefault(invoice.customer_id, set()).add(invoice_id)
        if is_open(invoice):
            self.open_ids.add(invoice_id)
            amount = invoice.open_amount.amount
            self.open_amounts[invoice_id] = amount
            bisect.insort(self.by_customer.setdefault(invoice.customer_id, []), invoice_id)
            entry = (amount, invoice_id)
            bisect.insort(self.customer_amounts.setdefault(invoice.customer_id, {}).setdefault(
                invoice.currency, []), entry)
            for key in equal_keys(invoice, amount):
                self.equal.setdefault(key, set()).add(invoice_id)
            amounts = self.amounts.setdefault(invoice.currency, [])
            at = bisect.bisect_left(amounts, entry)
            amounts.insert(at, entry)
            self.amount_keys.setdefault(invoice.currency, []).insert(at, entry[0])

    def _unindex(self, invoice: Invoice, replacement: Invoice | None) -> None:
        """Take an invoice out of every index, or out of those its ``replacement`` (same
        id) changes: its number and reference stay indexed when they stay the same, and a
        replaced invoice keeps its place."""
        invoice_id = invoice.invoice_id
        if replacement is None or replacement.reference != invoice.reference:
            self.references.remove(invoice)
        if replacement is None:
            del self._seq[invoice_id]
        owned = self._of_customer[invoice.customer_id]
        owned.discard(invoice_id)
        if not owned:
            del self._of_customer[invoice.customer_id]
        if invoice_id in self.open_ids:
            self.open_ids.discard(invoice_id)
            amount = self.open_amounts.pop(invoice_id)
            ids = self.by_customer[invoice.customer_id]
            del ids[bisect.bisect_left(ids, invoice_id)]
            if not ids:
                del self.by_customer[invoice.customer_id]
            by_currency = self.customer_amounts[invoice.customer_id]
            rows = by_currency[invoice.currency]
            del rows[bisect.bisect_left(rows, (amount, invoice_id))]
            if not rows:
                del by_currency[invoice.currency]
                if not by_currency:
                    del self.customer_amounts[invoice.customer_id]
            for key in equal_keys(invoice, amount):
                same = self.equal[key]
                same.discard(invoice_id)
                if not same:
                    del self.equal[key]
            amounts = self.amounts[invoice.currency]
            at = bisect.bisect_left(amounts, (amount, invoice_id))
            del amounts[at]
            del self.amount_keys[invoice.currency][at]
            if not amounts:
                del self.amounts[invoice.currency]
                del self.amount_keys[invoice.currency]

    def _rederive(self, customer_ids: set[str]) -> tuple[tuple[Customer | None,
                                                               Customer | None], ...]:
        """Bring the payer index's view of these customers up to date."""
        changed = []
        for customer_id in sorted(customer_ids):
            owned = sorted(self._of_customer.get(customer_id, ()), key=self._seq.__getitem__)
            after = _derive(self._explicit.get(customer_id), customer_id,
                            [self.invoices[i] for i in owned])
            before = self._derived.get(customer_id)
            if after == before:
                continue
            if after is None:
                del self._derived[customer_id]
                self.payers.remove(customer_id)
            else:
                self._derived[customer_id] = after
                self.payers.put(after)
            changed.append((before, after))
        return tuple(changed)


def equal_keys(invoice: Invoice, amount: Decimal) -> tuple[tuple[str, str, Decimal], ...]:
    """The keys of ``InvoiceBook.equal`` an invoice open for ``amount`` counts under: its
    customer's and every customer's (``"*"``), in its currency."""
    return ((invoice.customer_id, invoice.currency, amount), ("*", invoice.currency, amount))


def _derive(explicit: Customer | None, customer_id: str,
            invoices: list[Invoice]) -> Customer | None:
    """A customer as the payer index sees it: the CRM's record (or, without one, the name
    its first invoice gives), with every other name its invoices give as an alias."""
    if explicit is None:
        if not invoices:
            return None
        explicit = Customer(customer_id, invoices[0].customer_name or "")
    extra = tuple(n for i in invoices if (n := i.customer_name) and n != explicit.name)
    if not extra:
        return explicit
    return Customer(explicit.customer_id, explicit.name, explicit.ibans,
                    (*explicit.aliases, *extra))
