"""Seeded receivables and a bank statement that pays them, with ground truth (issue 4).

``python bench/matching_gen.py --seed 1 --invoices 2000 --out DIR`` writes into ``DIR``:

- ``invoices.csv``: the CRM's invoices (``invoice_id,customer_id,customer_name,currency,
  amount,open_amount,issue_date,due_date,reference``): open, partly paid before, some paid
  before in full (``open_amount`` 0); several numbering schemes per run, never named to the
  engine; ``reference`` holds an ISO 11649 creditor reference (RF) for some.
- ``customers.json``: what the CRM knows of each customer (``customer_id``, ``name``, the
  ``ibans`` it has seen, ``aliases``); a runner passes it only to an engine that takes it.
- ``rates.csv``: ``date,from_currency,to_currency,rate`` in the ECB's direction (1 EUR =
  rate USD/GBP/CHF/JPY) for every business day.
- ``statement.xml``: camt.053.001.08 written by ``parsers.camt_write``, one statement per
  month (August to October 2026) of the company's EUR account; balances add up.
- ``truth.csv``: ``bank_reference,invoice_id,amount,currency,case``, one row per true
  allocation; a payment that settles nothing has one row with empty invoice_id and amount.
- ``cases.json``: the case type of each bank_reference.

Truth amounts are in the invoice's currency: what the payment is worth as the bank data
shows it, capped at what is still open. That is the instructed amount when the bank reports
FX details in the invoice's currency; else the credited amount (net of any fee, even one
the bank reports in the charges), converted at the rates.csv rate of the booking date
(half-even to the currency's minor unit). An overpayment's surplus, a fee or an FX
shortfall stays unallocated: the sum of a payment's true allocations never exceeds it.

Cases (one per bank entry): see ``CASES`` and the table in docs/benchmarks.md; each is made
by a ``Generator.case_*`` method (the simple ones by ``single``). ``SETTLES_NOTHING`` cases
have an empty truth. Payments without a reference settle a customer's equal invoices oldest
first. Standard library and our ``parsers`` package only; amounts are Decimal, never float.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from matching_names import (  # bench/ is the script's folder: run as python bench/...
    BRANDS,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    DE_FIRST,
    DE_LAST,
    DE_SECTORS,
    DE_STEMS,
    GENERIC,
    INSTALMENT,
    JOIN,
    OTHERS,
    SCHEMES,
    TEXTS,
    ascii_text,
    creditor_reference,
    iban,
    norm,
)

from parsers.camt_write import write as write_camt
from parsers.model import (
    Account,
    Balance,
    BalanceKind,
    BankTransactionCode,
    Charge,
    Entry,
    FxDetails,
    Statement,
)
from parsers.money import Money, minor_units

GENERATOR_VERSION = 4
CASES = (
    "clean", "reformatted_reference", "mistyped_reference", "no_reference", "multi_invoice",
    "instalment", "bank_fee", "overpayment", "fx", "third_party", "trap_same_amount",
    "trap_wrong_reference", "trap_paid_twice", "outgoing", "unrelated",
)
SETTLES_NOTHING = frozenset({"trap_paid_twice", "outgoing", "unrelated"})
# Share of payment events per case (an instalment event books 2-3 entries).
_WEIGHTS = {
    "clean": 27, "reformatted_reference": 10, "mistyped_reference": 5, "no_reference": 9,
    "multi_invoice": 6, "instalment": 3, "bank_fee": 5, "overpayment": 3, "fx": 6,
    "third_party": 3, "trap_same_amount": 4, "trap_wrong_reference": 2, "trap_paid_twice": 3,
    "outgoing": 6, "unrelated": 7,
}
PERIOD_START, PERIOD_END = date(2026, 8, 3), date(2026, 10, 30)
OWN_NAME, OWN_BIC = "Nordwind Handels GmbH", "COBADEFFXXX"
CURRENCIES = ("USD", "GBP", "CHF", "JPY")
_ECB_START = {"USD": "1.0850", "GBP": "0.84500", "CHF": "0.9450", "JPY": "162.00"}
_MENU = ("49.00", "59.50", "99.00", "119.00", "149.00", "238.00", "357.00", "595.00")


def business_days(start: date, end: date) -> list[date]:
    days = (start + timedelta(n) for n in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


def _digits(ref: str) -> str:
    """The digits of a number as an engine may compare them: without leading zeros."""
    return re.sub(r"\D", "", ref).lstrip("0")


def money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), ROUND_HALF_EVEN)


# -- the receivables ---------------------------------------------------------------------


@dataclass(eq=False)
class Customer:
    customer_id: str
    country: str
    name: str  # as the CRM has it, with diacritics
    person: tuple[str, str] | None  # (first, last) for people
    trading_name: str | None
    ibans: tuple[str, ...]
    bic: str
    iban_known: bool
    alias_known: bool
    currency: str
    scheme: str
    menu: Decimal | None  # a subscription's fixed amount
    # How this customer's bank shows the name: umlaut replacement, width, word order, case.
    umlauts: bool = True
    width: int = 35
    swapped: bool = False
    upper: bool = True
    terms: int = 30  # days from issue to due date


@dataclass(eq=False)
class Invoice:
    customer: Customer
    currency: str
    amount: Decimal
    open_amount: Decimal
    issue: date
    due: date
    invoice_id: str = ""
    year: int = 0
    seq: int = 0
    letter: str = "A"
    reference: str = ""
    remaining: Decimal = Decimal(0)  # open amount not yet settled by a generated payment
    used: bool = False


@dataclass(eq=False)
class Payment:
    case: str
    booking: date
    amount: Decimal  # EUR, credit positive
    name: str | None
    account: str | None
    bic: str | None
    remittance: str | None
    code: tuple[str, str, str] = ("PMNT", "RCDT", "ESCT")
    creditor_reference: str | None = None
    end_to_end_id: str | None = None
    fx: FxDetails | None = None
    charges: tuple[Charge, ...] = ()
    allocations: list[tuple[Invoice, Decimal]] = field(default_factory=list)
    bank_reference: str = ""


class Generator:
    """One run: ``Generator(seed, invoices).run()`` then ``write(folder)``."""

    def __init__(self, seed: int, invoices: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.n_invoices = invoices
        self.customers: list[Customer] = []
        self.invoices: list[Invoice] = []
        self.payments: list[Payment] = []
        self.days = business_days(PERIOD_START, PERIOD_END)
        self.rates: dict[tuple[date, str], Decimal] = {}
        self.own_iban = iban("DE", "37040044", self.rng)
        self.own_savings = iban("DE", "37040044", self.rng)
        self.by_norm: dict[str, Invoice] = {}
        self.digits_only: set[str] = set()

    # -- customers and invoices --------------------------------------------------------

    def _customer(self, index: int, names: set[str]) -> Customer:
        rng = self.rng
        code = rng.choices(list(COUNTRY_WEIGHTS), list(COUNTRY_WEIGHTS.values()))[0]
        land = COUNTRIES[code]
        person = None
        trading = None
        for attempt in range(1000):
            if land.first and rng.random() < 0.35:
                person = (rng.choice(land.first), rng.choice(land.last))
                name = f"{person[0]} {person[1]}"
                if name in names:
                    person = (person[0], f"{person[1]}-{rng.choice(land.last)}")
                    name = f"{person[0]} {person[1]}"
            else:
                person = None
                stem = rng.choice(land.stems)
                if attempt > 20:  # the country's names run out: a double-barrelled one
                    stem += "-" + rng.choice(DE_STEMS + OTHERS)
                name = f"{stem} {rng.choice(land.sectors)} {rng.choice(land.forms)}"
            if name not in names:
                break
        names.add(name)
        if person is None and rng.random() < 0.3:
            trading = f"{name.split()[0]} {rng.choice(BRANDS)}"
        bank, bic = rng.choice(land.banks)
        count = 2 if rng.random() < 0.2 else 1
        accounts = tuple(iban(code, bank, rng) for _ in range(count)) if land.iban else ()
        currencies, weights = zip(*land.currency, strict=True)
        currency = rng.choices(currencies, weights)[0]
        return Customer(
            customer_id=f"C{10000 + index * 7 + rng.randrange(7):06d}", country=code, name=name,
            person=person, trading_name=trading, ibans=accounts, bic=bic,
            iban_known=rng.random() < 0.6, alias_known=rng.random() < 0.5, currency=currency,
            scheme="",
            menu=Decimal(rng.choice(_MENU)) if currency == "EUR" and rng.random() < 0.15
            else None,
            umlauts=rng.random() < 0.5, width=rng.choice((35, 35, 70, 140)),
            swapped=rng.random() < 0.5, upper=rng.random() < 0.9,
            terms=rng.choice((14, 30, 30, 30, 45, 60)))

    def _amount(self, customer: Customer) -> Decimal:
        rng = self.rng
        if customer.menu is not None:
            return customer.menu
        if customer.currency == "JPY":
            return Decimal(max(5000, int(round(rng.lognormvariate(11.7, 0.9), -2))))
        cents = int(min(max(rng.lognormvariate(11.0, 1.1), 1500), 6_000_000))
        if rng.random() < 0.25:  # a round net price plus 19 % VAT
            cents = round(cents, -4) * 119 // 100 or 11900
        return Decimal(cents).scaleb(-2)

    def build_receivables(self) -> None:
        rng = self.rng
        schemes = rng.sample(sorted(SCHEMES), rng.randint(3, 5))
        names: set[str] = set()
        while len(self.invoices) < self.n_invoices:
            customer = self._customer(len(self.customers), names)
            customer.scheme = rng.choice(schemes)
            self.customers.append(customer)
            count = min(1 + int(rng.expovariate(1 / 5)), 30, self.n_invoices - len(self.invoices))
            for i in range(count):
                if customer.menu is not None:
                    issue = date(2026, 5 + i % 6, 1)
                elif rng.random() < 0.04:
                    issue = date(2025, 10, 1) + timedelta(rng.randrange(80))
                else:
                    issue = date(2026, 5, 4) + timedelta(rng.randrange(172))
                due = issue + timedelta(customer.terms)
                amount = self._amount(customer)
                self.invoices.append(Invoice(customer, customer.currency, amount, amount, issue,
                                             due))
        self._number(schemes)
        for inv in self.invoices:
            roll = rng.random()
            # Subscriptions are mostly paid up to the last months; other invoices now and then.
            early = inv.issue < date(2026, 7 if inv.customer.menu is not None else 9, 1)
            if early and roll < (0.8 if inv.customer.menu is not None else 0.06):
                inv.open_amount = inv.amount - inv.amount  # paid before these statements (0.00)
            elif roll < 0.13 and inv.amount >= 20:
                paid = money(inv.amount * Decimal(rng.randint(20, 70)) / 100, inv.currency)
                inv.open_amount = inv.amount - paid
            inv.remaining = inv.open_amount
            if inv.currency == "EUR" and rng.random() < 0.2:
                inv.reference = creditor_reference(norm(inv.invoice_id))

    def _number(self, schemes: list[str]) -> None:
        rng = self.rng
        counters = {s: rng.randrange(10, 900) for s in schemes}
        counters["re"] = rng.randrange(10000, 40000)
        counters["plain"] = rng.randrange(1000000, 4000000)
        yearly: dict[tuple[str, int], int] = {}
        for inv in sorted(self.invoices, key=lambda i: (i.issue, rng.random())):
            scheme = inv.customer.scheme
            inv.year = inv.issue.year
            if scheme in ("inv", "slash"):
                key = (scheme, inv.year)
                yearly[key] = yearly.get(key, counters[scheme]) + rng.randint(1, 3)
                inv.seq = yearly[key]
            else:
                counters[scheme] += rng.randint(1, 3)
                inv.seq = counters[scheme]
            inv.letter = rng.choice("AABCK")
            inv.invoice_id = SCHEMES[scheme][0](inv.year, inv.seq, inv.letter)
        self.by_norm = {norm(i.invoice_id): i for i in self.invoices}
        self.digits_only = {_digits(i.invoice_id) for i in self.invoices}

    def build_rates(self) -> None:
        first = min(i.issue for i in self.invoices) - timedelta(7)
        for currency in CURRENCIES:
            rate = Decimal(_ECB_START[currency])
            for day in business_days(first, PERIOD_END):
                step = Decimal(round(self.rng.gauss(0, 0.004), 5))
                rate = (rate * (1 + step)).quantize(Decimal(_ECB_START[currency]))
                self.rates[(day, currency)] = rate

    # -- how payers write -------------------------------------------------------------

    def payer_name(self, customer: Customer, *, trading: bool = True) -> str:
        rng = self.rng
        if customer.person is not None:
            first, last = customer.person
            name = f"{last} {first}" if customer.swapped else f"{first} {last}"
            if rng.random() < 0.06:
                name = rng.choice(("HERR ", "FRAU ", "MR ", "")) + name
            if rng.random() < 0.05:
                partner = rng.choice([f for f in COUNTRIES["DE"].first if f != first])
                name = f"{name} UND {partner} {last}"
        elif trading and customer.trading_name and rng.random() < 0.5:
            name = customer.trading_name
        else:
            name = customer.name
            if rng.random() < 0.15:
                name = " ".join(name.split()[:-1]) or name  # legal form dropped
            if "&" in name and rng.random() < 0.5:
                name = name.replace("&", rng.choice(("UND", "+", "AND")))
        if rng.random() < 0.05:
            name = rng.choice(("SEPA CT FROM ", "SEPA-GUTSCHRIFT ", "GUTSCHRIFT VON ")) + name
        name = ascii_text(name, umlauts=customer.umlauts)
        name = name.upper() if customer.upper else name
        return " ".join(name[:customer.width].split())

    def quote(self, inv: Invoice, style: str) -> str:
        """The invoice number as a payer types it: ``exact``, ``reformatted``, ``mistyped``."""
        if style == "exact":
            return inv.invoice_id
        forms = [f(inv.year, inv.seq, inv.letter) for f in SCHEMES[inv.customer.scheme][1]]
        forms = [f for f in forms if f != inv.invoice_id]
        if style == "reformatted":
            return self.rng.choice(forms)
        for _ in range(100):
            base = self.rng.choice([inv.invoice_id, *forms])
            runs = list(re.finditer(r"\d{3,}", base))
            if not runs:
                continue
            run = runs[-1]
            digits = list(run.group())
            i = self.rng.randrange(len(digits))
            if self.rng.random() < 0.5 and i + 1 < len(digits) and digits[i] != digits[i + 1]:
                digits[i], digits[i + 1] = digits[i + 1], digits[i]
            else:
                digits[i] = self.rng.choice([d for d in "0123456789" if d != digits[i]])
            typed = base[:run.start()] + "".join(digits) + base[run.end():]
            if norm(typed) not in self.by_norm and _digits(typed) not in self.digits_only:
                return typed  # a typo, not by chance another invoice's number
        return self.rng.choice(forms)

    def remittance(self, customer: Customer, refs: list[str], *, clean: bool,
                   issue: date | None = None) -> str:
        rng = self.rng
        land = COUNTRIES[customer.country].language
        template = rng.choice(TEXTS[land])
        if len(refs) > 1:
            joined = rng.choice((", ", " ", " / ", JOIN[land])).join(refs[:-1])
            ref = joined + (JOIN[land] if rng.random() < 0.5 else ", ") + refs[-1]
        else:
            ref = refs[0]
        text = template.format(r=ref, c=customer.customer_id,
                               d=(issue or PERIOD_START).strftime("%d.%m.%Y"))
        text = ascii_text(text, umlauts=True)
        roll = rng.random()
        if roll < 0.15:
            text = text.upper()
        elif roll < 0.3 and not clean:
            text = text.lower()
        if rng.random() < 0.15:
            text = text.replace(" ", "  ", 1)
        return text[:140].strip()

    def booking_near(self, inv: Invoice, earliest: date | None = None) -> date | None:
        low = max(inv.issue + timedelta(1), earliest or PERIOD_START, PERIOD_START)
        wanted = inv.due + timedelta(int(self.rng.gauss(-3, 12)))
        days = [d for d in self.days if d >= low]
        if not days:
            return None
        return min(days, key=lambda d: abs((d - wanted).days))

    def e2e(self, inv: Invoice | None, booking: date) -> str | None:
        roll = self.rng.random()
        if inv is not None and roll < 0.12:
            return self.rng.choice((norm(inv.invoice_id), inv.invoice_id.replace("/", "-")))
        if roll < 0.5:
            return f"ZV{booking:%Y%m%d}-{self.rng.randrange(10000):04d}-{self.rng.randrange(99)}"
        return None

    def paying(self, case: str, customer: Customer, booking: date, amount: Decimal,
               remittance: str | None, inv: Invoice | None = None) -> Payment:
        account = self.rng.choice(customer.ibans) if customer.ibans else None
        if account is None and customer.country in ("US", "JP"):
            account = f"{self.rng.randrange(10**9, 10**10)}"
        return Payment(case, booking, amount, self.payer_name(customer), account, customer.bic,
                       remittance, end_to_end_id=self.e2e(inv, booking))

    # -- the cases -------------------------------------------------------------------

    def pick(self, test: Callable[[Invoice], bool]) -> Invoice | None:
        for _ in range(400):
            inv = self.rng.choice(self.invoices)
            if not inv.used and test(inv):
                return inv
        pool = [i for i in self.invoices if not i.used and test(i)]
        return self.rng.choice(pool) if pool else None

    def open_eur(self, inv: Invoice) -> bool:
        return inv.currency == "EUR" and inv.remaining > 0 and inv.issue < PERIOD_END

    def settle(self, p: Payment, inv: Invoice, value: Decimal) -> None:
        amount = min(value, inv.remaining)
        if amount > 0:
            inv.remaining -= amount
            p.allocations.append((inv, amount))

    def single(self, case: str, style: str = "exact", test: Callable[[Invoice], bool] | None
               = None) -> Payment | None:
        test = test or self.open_eur
        inv = self.pick(test)
        if inv is not None and style == "none":  # one pays the oldest of equal invoices first
            inv = min((i for i in self.invoices if i.customer is inv.customer and not i.used
                       and test(i) and i.remaining == inv.remaining),
                      key=lambda i: (i.due, i.invoice_id))
        if inv is None or (booking := self.booking_near(inv)) is None:
            return None
        inv.used = True
        c = inv.customer
        p = self.paying(case, c, booking, inv.remaining, None, inv)
        roll = self.rng.random()
        if style == "exact" and inv.reference and roll < 0.7:
            p.creditor_reference = inv.reference
            p.remittance = self.rng.choice((None, "Zahlung", c.customer_id))
        elif style == "exact" and inv.reference and roll < 0.85:
            ref = inv.reference
            p.remittance = " ".join(ref[i:i + 4] for i in range(0, len(ref), 4))
        elif style == "exact" and roll < 0.05:
            p.end_to_end_id = inv.invoice_id.replace("/", "-")  # the only carrier
            p.remittance = self.rng.choice(GENERIC)
        elif style == "none":
            p.remittance = self.rng.choice((*GENERIC, None, None))
            p.end_to_end_id = self.e2e(None, booking)
        else:
            p.remittance = self.remittance(c, [self.quote(inv, style)], clean=style == "exact",
                                           issue=inv.issue)
        if style != "exact":  # typed by hand: no ERP end-to-end id with the number
            p.end_to_end_id = self.e2e(None, booking)
        self.settle(p, inv, inv.remaining)
        return p

    def case_multi(self) -> list[Payment]:
        groups: dict[Customer, list[Invoice]] = defaultdict(list)
        for inv in self.invoices:
            if not inv.used and self.open_eur(inv) and inv.remaining == inv.open_amount:
                groups[inv.customer].append(inv)
        choices = [g for g in groups.values() if len(g) >= 2]
        if not choices:
            return []
        group = sorted(self.rng.choice(choices), key=lambda i: (i.due, i.invoice_id))
        chosen = group[:self.rng.randint(2, 4)]  # the oldest ones
        booking = self.booking_near(max(chosen, key=lambda i: i.issue))
        if booking is None:
            return []
        total = sum((i.remaining for i in chosen), Decimal(0))
        p = self.paying("multi_invoice", chosen[0].customer, booking, total, None)
        roll = self.rng.random()
        quoted = chosen if roll < 0.5 else chosen[:max(1, len(chosen) - 1)] if roll < 0.75 else []
        styles = ("exact", "exact", "reformatted")
        customer = chosen[0].customer
        if quoted:
            refs = [self.quote(i, self.rng.choice(styles)) for i in quoted]
            p.remittance = self.remittance(customer, refs, clean=False, issue=chosen[0].issue)
        else:
            p.remittance = self.rng.choice((*GENERIC, f"Kundennr {customer.customer_id}"))
        for inv in chosen:
            inv.used = True
            self.settle(p, inv, inv.remaining)
        return [p]

    def case_instalment(self) -> list[Payment]:
        inv = self.pick(lambda i: self.open_eur(i) and i.remaining >= 60
                        and i.issue < PERIOD_START)
        if inv is None:
            return []
        inv.used = True
        k = self.rng.choice((2, 3, 3))
        paid = k if self.rng.random() < 0.75 else k - 1
        part = money(inv.remaining / k, "EUR")
        start = self.rng.choice(self.days[: max(1, len(self.days) - 22 * (paid - 1))])
        out: list[Payment] = []
        for i in range(1, paid + 1):
            booking = next(d for d in self.days if d >= start) if i == 1 else min(
                [d for d in self.days if d >= out[-1].booking + timedelta(28)] or [PERIOD_END])
            amount = part if i < k else inv.remaining
            quoted = self.quote(inv, self.rng.choice(("exact", "exact", "reformatted")))
            text = self.rng.choice(INSTALMENT).format(i=i, k=k, r=quoted)
            p = self.paying("instalment", inv.customer, booking, amount, text, inv)
            self.settle(p, inv, amount)
            out.append(p)
        return out

    def case_bank_fee(self) -> list[Payment]:
        p = self.single("bank_fee", test=lambda i: self.open_eur(i) and i.remaining > 100)
        if p is None:
            return []
        fee = Decimal(self.rng.choice(("2.50", "3.00", "5.00", "7.50", "10.00", "12.50", "15.00")))
        p.amount -= fee
        if self.rng.random() < 0.4:  # the bank says so; the fee is still not the payer's money
            p.charges = (Charge(Money(-fee, "EUR"), included=True, code="BRKF"),)
        inv, value = p.allocations[0]  # the payment settles only what arrived
        inv.remaining += fee
        p.allocations[0] = (inv, value - fee)
        return [p]

    def case_overpayment(self) -> list[Payment]:
        p = self.single("overpayment")
        if p is None:
            return []
        inv = p.allocations[0][0]
        extra = inv.amount - inv.open_amount if inv.open_amount < inv.amount else Decimal(
            self.rng.choice(("5.00", "10.00", "15.00", "40.00", "0.01", "100.00")))
        p.amount += extra
        return [p]

    def case_fx(self) -> list[Payment]:
        inv = self.pick(lambda i: i.currency != "EUR" and i.remaining > 0
                        and i.issue < PERIOD_END)
        if inv is None or (booking := self.booking_near(inv)) is None:
            return []
        inv.used = True
        ecb = self.rates[(booking, inv.currency)]
        text = self.remittance(inv.customer, [self.quote(inv, "exact")], clean=True)
        p = self.paying("fx", inv.customer, booking, Decimal(0), text, inv)
        p.code = ("PMNT", "RCDT", "XBCT")
        if self.rng.random() < 0.5:  # the bank converts and says how
            spread = Decimal(self.rng.randint(0, 60)) / 10000
            rate = (1 / ecb * (1 - spread)).quantize(Decimal("0.000001"))
            p.amount = money(inv.remaining * rate, "EUR")
            p.fx = FxDetails(Money(inv.remaining, inv.currency), rate, inv.currency, "EUR")
            self.settle(p, inv, inv.remaining)
        else:  # the payer converted, at some rate of its own
            drift = Decimal(self.rng.randint(-60, 40)) / 10000
            p.amount = money(inv.remaining / ecb * (1 + drift), "EUR")
            self.settle(p, inv, money(p.amount * ecb, inv.currency))
        return [p]

    def case_third_party(self) -> list[Payment]:
        p = self.single("third_party", style=self.rng.choice(("exact", "reformatted")))
        if p is None:
            return []
        inv = p.allocations[0][0]
        land = COUNTRIES["DE"]
        if inv.customer.person is not None:
            first, last = inv.customer.person
            p.name = f"{self.rng.choice([f for f in land.first if f != first])} {last}"
        else:
            p.name = f"{self.rng.choice(OTHERS)} {self.rng.choice(('Holding', 'Factoring'))} " \
                     f"{self.rng.choice(('GmbH', 'AG', 'B.V.'))}"
        p.name = ascii_text(p.name, umlauts=True).upper()
        bank, p.bic = self.rng.choice(land.banks)
        p.account = iban("DE", bank, self.rng)
        if self.rng.random() < 0.4 and p.remittance:
            p.remittance = f"{p.remittance} fuer {inv.customer.name.split()[0]}"
            p.remittance = ascii_text(p.remittance, umlauts=True)[:140]
        return [p]

    def case_same_amount(self) -> list[Payment]:
        amounts: dict[Decimal, list[Invoice]] = defaultdict(list)
        for inv in self.invoices:
            if not inv.used and self.open_eur(inv) and inv.remaining == inv.amount:
                amounts[inv.amount].append(inv)
        groups = [g for g in amounts.values() if len({i.customer for i in g}) >= 2]
        if not groups:
            return []
        group = self.rng.choice(groups)
        p = self.single("trap_same_amount", style="none", test=lambda i: i in group)
        if p is None:
            return []
        inv = p.allocations[0][0]
        for other in group:  # the look-alikes stay open, so the amount stays ambiguous
            if other.customer is not inv.customer:
                other.used = True
        if self.rng.random() < 0.4:  # a payer nobody knows: the truth, but not for auto
            p.name = f"{self.rng.choice(OTHERS)} {self.rng.choice(DE_FIRST)}"
            p.name = ascii_text(p.name, umlauts=True).upper()
            p.account = iban("DE", "50010517", self.rng)
        return [p]

    def case_wrong_reference(self) -> list[Payment]:
        p = self.single("trap_wrong_reference")
        if p is None:
            return []
        inv = p.allocations[0][0]
        decoys = [i for i in self.invoices if i.customer is not inv.customer
                  and i.amount != inv.amount and i.remaining > 0]
        decoy = self.rng.choice(decoys)
        p.creditor_reference = None
        p.end_to_end_id = self.e2e(None, p.booking)
        p.remittance = self.remittance(inv.customer, [decoy.invoice_id], clean=True)
        return [p]

    def case_paid_twice(self) -> list[Payment]:
        earlier = [p for p in self.payments if p.case == "clean" and p.booking < PERIOD_END
                   - timedelta(10) and len(p.allocations) == 1 and p.allocations[0][0].remaining
                   == 0 and p.allocations[0][0].currency == "EUR"]
        if earlier and self.rng.random() < 0.5:
            first = self.rng.choice(earlier)
            later = [d for d in self.days if d > first.booking + timedelta(3)]
            p = Payment("trap_paid_twice", self.rng.choice(later[:20]), first.amount, first.name,
                        first.account, first.bic, first.remittance,
                        creditor_reference=first.creditor_reference)
            return [p]
        inv = self.pick(lambda i: i.currency == "EUR" and i.open_amount == 0)
        if inv is None:
            return []
        inv.used = True
        booking = self.rng.choice(self.days)
        text = self.remittance(inv.customer, [self.quote(inv, "exact")], clean=True)
        return [self.paying("trap_paid_twice", inv.customer, booking, inv.amount, text)]

    def eur_amount(self) -> Decimal:
        return Decimal(int(min(max(self.rng.lognormvariate(11.0, 1.1), 1500), 6_000_000))
                       ).scaleb(-2)

    def case_outgoing(self) -> list[Payment]:
        rng = self.rng
        inv = rng.choice([i for i in self.invoices if i.currency == "EUR"])
        booking = rng.choice(self.days)
        code = ("PMNT", "ICDT", "ESCT")
        if rng.random() < 0.5:  # a refund to a customer, quoting its invoice
            amount = -(inv.amount if rng.random() < 0.3 else money(inv.amount / 10, "EUR"))
            text = rng.choice(("Erstattung {r}", "Refund {r}", "Gutschrift zu Rechnung {r}"))
            p = self.paying("outgoing", inv.customer, booking, amount,
                            text.format(r=inv.invoice_id))
        else:  # a supplier's invoice that looks like one of ours
            amount = -(inv.remaining if inv.remaining > 0 and rng.random() < 0.4
                       else self.eur_amount())
            name = f"{rng.choice(DE_STEMS)} {rng.choice(DE_SECTORS)} GmbH"
            text = f"Rechnung {inv.invoice_id}" if rng.random() < 0.6 else \
                f"Rechnung {SCHEMES[inv.customer.scheme][0](2026, inv.seq + 7919, 'Z')}"
            p = Payment("outgoing", booking, amount or Decimal("-1.00"),
                        ascii_text(name, umlauts=True).upper(),
                        iban("DE", "10050000", rng), "BELADEBEXXX", text)
        p.code = code
        return [p]

    def case_unrelated(self) -> list[Payment]:
        rng = self.rng
        booking = rng.choice(self.days)
        kind = rng.choice(("salary", "interest", "card", "own", "tax"))
        if kind == "salary":
            first, last = rng.choice(DE_FIRST), rng.choice(DE_LAST)
            p = Payment("unrelated", booking, -Decimal(rng.randint(180000, 520000)).scaleb(-2),
                        ascii_text(f"{first} {last}", umlauts=True).upper(),
                        iban("DE", "50010517", rng), "INGDDEFFXXX",
                        f"LOHN/GEHALT {booking:%m/%Y}", code=("PMNT", "ICDT", "SALA"))
        elif kind == "interest":
            p = Payment("unrelated", booking, Decimal(rng.randint(100, 90000)).scaleb(-2),
                        None, None, None, f"Habenzinsen {booking:%m/%Y}",
                        code=("ACMT", "MCOP", "INTR"))
        elif kind == "card":
            open_amounts = [i.remaining for i in self.invoices if self.open_eur(i)]
            amount = rng.choice(open_amounts) if open_amounts and rng.random() < 0.25 else \
                Decimal(rng.randint(5000, 900000)).scaleb(-2)
            p = Payment("unrelated", booking, amount,
                        rng.choice(("ADYEN N.V.", "SUMUP LIMITED", "PAYONE GMBH")),
                        iban("NL", "ABNA", rng), "ABNANL2AXXX",
                        f"SETTLEMENT {booking:%Y-%m-%d} BATCH {rng.randrange(10**6):06d}",
                        code=("PMNT", "MCRD", "POSP"))
        elif kind == "own":
            amount = Decimal(rng.choice((-1, 1)) * rng.randint(1, 50) * 100000).scaleb(-2)
            p = Payment("unrelated", booking, amount, OWN_NAME.upper(), self.own_savings, OWN_BIC,
                        rng.choice(("Umbuchung", "Liquiditaetsausgleich", "Uebertrag Tagesgeld")),
                        code=("PMNT", "RCDT", "BOOK"))
        else:
            p = Payment("unrelated", booking, Decimal(rng.randint(10000, 2000000)).scaleb(-2),
                        "FINANZAMT MUENCHEN", iban("DE", "70020270", rng), "HYVEDEMMXXX",
                        f"Erstattung USt {booking:%m/%Y} StNr 143/{rng.randrange(1000):03d}/"
                        f"{rng.randrange(100000):05d}")
        return [p]

    def make(self, case: str) -> list[Payment]:
        simple = {"clean": "exact", "reformatted_reference": "reformatted",
                  "mistyped_reference": "mistyped", "no_reference": "none"}
        if case in simple:
            p = self.single(case, simple[case])
            return [p] if p else []
        makers: dict[str, Callable[[], list[Payment]]] = {
            "multi_invoice": self.case_multi, "instalment": self.case_instalment,
            "bank_fee": self.case_bank_fee, "overpayment": self.case_overpayment,
            "fx": self.case_fx, "third_party": self.case_third_party,
            "trap_same_amount": self.case_same_amount,
            "trap_wrong_reference": self.case_wrong_reference,
            "trap_paid_twice": self.case_paid_twice, "outgoing": self.case_outgoing,
            "unrelated": self.case_unrelated}
        return makers[case]()

    def build_payments(self) -> None:
        target = int(self.n_invoices * 0.72)
        for case in (*CASES, "clean"):  # every case at least once (paid twice after a clean)
            self.payments.extend(self.make(case))
        cases, weights = zip(*_WEIGHTS.items(), strict=True)
        misses = 0
        while len(self.payments) < target and misses < 200:
            made = self.make(self.rng.choices(cases, weights)[0])
            misses = 0 if made else misses + 1  # stop when the pools run dry
            self.payments.extend(made)
        self.payments = [p for p in self.payments if p.amount != 0]
        used = set()
        for p in sorted(self.payments, key=lambda p: (p.booking, self.rng.random())):
            while not p.bank_reference or p.bank_reference in used:
                p.bank_reference = f"{p.booking:%y%m%d}{self.rng.choice('BCDEFGHK')}" \
                                   f"{self.rng.randrange(10**9):09d}"
            used.add(p.bank_reference)
        self.payments.sort(key=lambda p: (p.booking, p.bank_reference))
        self._first_in_first_out()

    def _first_in_first_out(self) -> None:
        """Payments without a reference for equal invoices of one customer settle the
        oldest first: the truth an engine can know, whatever order they were planned in."""
        groups: dict[tuple[str, Decimal], list[Payment]] = defaultdict(list)
        for p in self.payments:
            if p.case in ("no_reference", "trap_same_amount"):
                inv, amount = p.allocations[0]
                groups[(inv.customer.customer_id, amount)].append(p)
        for group in groups.values():
            invoices = sorted((p.allocations[0][0] for p in group),
                              key=lambda i: (i.due, i.issue, i.invoice_id))
            for p, inv in zip(group, invoices, strict=True):  # group is in booking order
                p.allocations = [(inv, p.allocations[0][1])]

    # -- output --------------------------------------------------------------------------

    def entry(self, p: Payment) -> Entry:
        domain, family, sub = p.code
        return Entry(
            amount=Money(p.amount, "EUR"), booking_date=p.booking, value_date=p.booking,
            bank_reference=p.bank_reference,
            bank_transaction_code=BankTransactionCode(domain=domain, family=family,
                                                      subfamily=sub),
            counterparty_name=p.name, counterparty_account=p.account, counterparty_bic=p.bic,
            end_to_end_id=p.end_to_end_id, remittance=p.remittance or None,
            creditor_reference=p.creditor_reference, fx=p.fx, charges=p.charges)

    def statements(self) -> list[Statement]:
        balance = Decimal(self.rng.randint(5_000_000, 50_000_000)).scaleb(-2)
        account = Account(iban=self.own_iban, bic=OWN_BIC, currency="EUR", owner_name=OWN_NAME)
        out = []
        for month in sorted({(p.booking.year, p.booking.month) for p in self.payments}):
            entries = [self.entry(p) for p in self.payments
                       if (p.booking.year, p.booking.month) == month]
            first, last = date(*month, 1), max(e.booking_date for e in entries if e.booking_date)
            closing = balance + sum((e.amount.amount for e in entries), Decimal(0))
            out.append(Statement(
                source="", format="camt.053", account=account, entries=tuple(entries),
                statement_id=f"NW-{month[0]}-{month[1]:02d}", sequence=str(month[1]),
                created_at=datetime(*month, 28, 6, 0, tzinfo=UTC) + timedelta(7),
                period_start=first, period_end=last,
                opening_balance=Balance(Money(balance, "EUR"), first, BalanceKind.OPENING_BOOKED),
                closing_balance=Balance(Money(closing, "EUR"), last, BalanceKind.CLOSING_BOOKED)))
            balance = closing
        return out

    def run(self) -> Generator:
        self.build_receivables()
        self.build_rates()
        self.build_payments()
        return self

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "invoices.csv").open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(("invoice_id", "customer_id", "customer_name", "currency", "amount",
                          "open_amount", "issue_date", "due_date", "reference"))
            for inv in sorted(self.invoices, key=lambda i: (i.issue, i.invoice_id)):
                out.writerow((inv.invoice_id, inv.customer.customer_id, inv.customer.name,
                              inv.currency, inv.amount, inv.open_amount, inv.issue, inv.due,
                              inv.reference))
        customers = [{"customer_id": c.customer_id, "name": c.name,
                      "ibans": list(c.ibans) if c.iban_known else [],
                      "aliases": [c.trading_name] if c.trading_name and c.alias_known else []}
                     for c in self.customers]
        (folder / "customers.json").write_text(json.dumps(customers, indent=1,
                                                          ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        with (folder / "rates.csv").open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(("date", "from_currency", "to_currency", "rate"))
            for (day, currency), rate in sorted(self.rates.items()):
                out.writerow((day, "EUR", currency, rate))
        (folder / "statement.xml").write_bytes(write_camt(self.statements(),
                                                          version="camt.053.001.08"))
        with (folder / "truth.csv").open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(("bank_reference", "invoice_id", "amount", "currency", "case"))
            for p in self.payments:
                for inv, amount in p.allocations:
                    out.writerow((p.bank_reference, inv.invoice_id, amount, inv.currency, p.case))
                if not p.allocations:
                    out.writerow((p.bank_reference, "", "", "", p.case))
        cases = {p.bank_reference: p.case for p in self.payments}
        (folder / "cases.json").write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")


def generate(folder: Path, *, seed: int, invoices: int = 2000) -> dict[str, int]:
    """Write one seeded run into ``folder``; returns the number of payments per case."""
    generator = Generator(seed, invoices).run()
    generator.write(folder)
    counts = dict.fromkeys(CASES, 0)
    for p in generator.payments:
        counts[p.case] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--out", type=Path, help="folder (default bench/out/matching-s<seed>)")
    args = parser.parse_args(argv)
    folder = args.out or Path(__file__).resolve().parent / "out" / f"matching-s{args.seed}"
    counts = generate(folder, seed=args.seed, invoices=args.invoices)
    print(f"{sum(counts.values())} payments into {folder}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
