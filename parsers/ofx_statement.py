"""OFX statements read from the cleaned element tree (see ``parsers.ofx`` for the mapping).

``read_whole`` reads a document whole: its tree, then every statement in it, then
ofxparse's reading of a sample (``CROSS_CHECK_TRANSACTIONS``). ``parsers.ofx_stream`` uses
the same functions on a tree it reads as it goes, taking each transaction out of it once
its entry is made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from parsers import ofx_header
from parsers.errors import ParseError
from parsers.model import (
    Account,
    Balance,
    BalanceKind,
    BankTransactionCode,
    Entry,
    Flag,
    FxDetails,
    Statement,
)
from parsers.money import Money, is_statement_currency
from parsers.ofx_clean import clean_document, clean_statement
from parsers.ofx_reference import StatementReading, differences
from parsers.ofx_tree import Element, Repairs, parse_tree, serialize
from parsers.ofx_values import OfxDateTime, as_iban, parse_amount, parse_datetime

STATEMENTS = ("STMTRS", "CCSTMTRS")
# ofxparse reads the first this many transactions of each statement (parsers.ofx).
CROSS_CHECK_TRANSACTIONS = 200
_ACCOUNT_FROM = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM"}


@dataclass(slots=True)
class Context:
    source: str
    flags: list[Flag] = field(default_factory=list)

    def fail(self, element: Element, message: str, tag: str | None = None) -> ParseError:
        return ParseError(message, source=self.source, line=element.line,
                          path=element.path, field=tag or element.tag)

    def datetime(self, parent: Element, tag: str, *, required: bool) -> OfxDateTime | None:
        child = parent.first(tag)
        if child is None or not child.text:
            if required:
                raise self.fail(parent, f"<{parent.tag}> has no {tag}: expected a date", tag)
            return None
        try:
            return parse_datetime(child.text)
        except ValueError as exc:
            raise self.fail(child, str(exc)) from exc

    def date(self, parent: Element, tag: str) -> dt.date | None:
        value = self.datetime(parent, tag, required=False)
        return value.date if value is not None else None

    def required_date(self, parent: Element, tag: str) -> dt.date:
        value = self.datetime(parent, tag, required=True)
        if value is None:  # pragma: no cover - datetime() raised already
            raise self.fail(parent, f"<{parent.tag}> has no {tag}: expected a date", tag)
        return value.date

    def amount(self, parent: Element, tag: str) -> Decimal | None:
        child = parent.first(tag)
        if child is None or not child.text:
            return None
        try:
            return parse_amount(child.text)
        except ValueError as exc:
            raise self.fail(child, str(exc)) from exc

    def currency(self, parent: Element, tag: str) -> str | None:
        child = parent.first(tag)
        if child is None or not child.text:
            return None
        if not is_statement_currency(child.text.upper()):
            raise self.fail(child, f"expected an ISO 4217 currency code, got {child.text!r}")
        return child.text.upper()


def read_whole(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """``parsers.ofx.parse_each`` on the document read whole, as one tree (what a file the
    streaming reader does not take, or stops on, is read by). Every statement of the
    document, each read on its own: a bad one is its
    ``ParseError`` in its place (``statement 2 of 3: ...`` when there are several), so that
    the good ones of a multi-statement file can still be shown. What concerns the whole
    document (its header and tree, an error response, a transaction outside any
    statement, ofxparse reading another number of statements) still raises.
    """
    text = ofx_header.read(data, source=source)
    repairs = Repairs()
    xml = (text.version or "").startswith("2") or text.text.startswith("<?xml", text.body_start)
    root = parse_tree(text.text, text.body_start, source=source, xml=xml, repairs=repairs)
    clean_document(root, repairs)
    context = Context(source)
    created_at = created_at_of(root, context)
    found = statement_aggregates(root, context)
    results: list[Statement | ParseError] = []
    readings: list[tuple[int, StatementReading]] = []  # of the statements read
    for number, each in enumerate(found, 1):
        try:
            flags = (*each.flags, *clean_statement(each.aggregate))
            statement, reading = statement_of(each.aggregate, context, flags)
        except ParseError as exc:
            results.append(naming(exc, number, len(found)))
            continue
        readings.append((len(results), reading))
        results.append(dataclasses.replace(
            statement, statement_id=each.trnuid, created_at=created_at,
            format_version=f"OFX {text.version}" if text.version else None))
    failed = {id(found[i].aggregate) for i, r in enumerate(results)
              if isinstance(r, ParseError)}
    try:
        check_every_transaction_read(root, found, context)
    except ParseError:
        earlier = next((r for r in results if isinstance(r, ParseError)), None)
        if earlier is None:
            raise
        raise earlier from None  # as parse always said: the first error in the document
    if readings:
        sample = serialize(sample_tree(root, failed, CROSS_CHECK_TRANSACTIONS))
        ours = [r.first(CROSS_CHECK_TRANSACTIONS) for _, r in readings]
        for (index, _), problem in zip(readings, differences(ours, sample, source=source),
                                       strict=True):
            if problem is not None:
                results[index] = naming(problem, index + 1, len(found))
    shared = (*text.flags, *repairs.flags(), *context.flags)
    return tuple(r if isinstance(r, ParseError)
                 else dataclasses.replace(r, flags=(*shared, *r.flags)) for r in results)


def naming(error: ParseError, number: int, count: int) -> ParseError:
    """``error`` with the statement it is in named first, when there are several."""
    if count == 1:
        return error
    return ParseError(f"statement {number} of {count}: {error.message}", source=error.source,
                      line=error.line, path=error.path, field=error.field)


def sample_tree(element: Element, dropped: set[int], limit: int,
            taken: list[int] | None = None) -> Element:
    """A copy of the tree for ofxparse: without the aggregates in ``dropped`` (statements
    that failed), and with the first ``limit`` STMTTRN of each statement only."""
    taken = taken if taken is not None else [0]
    if element.tag in STATEMENTS:
        taken[0] = 0
    children = []
    for child in element.children:
        if id(child) in dropped:
            continue
        if child.tag == "STMTTRN" and element.tag == "BANKTRANLIST":
            if taken[0] >= limit:
                continue
            taken[0] += 1
        children.append(child if child.text is not None
                        else sample_tree(child, dropped, limit, taken))
    return Element(element.tag, element.line, element.text, children, element.path)


def created_at_of(root: Element, context: Context) -> dt.datetime | None:
    sonrs = next((e for e in root.iter() if e.tag == "SONRS"), None)
    dtserver = sonrs.first("DTSERVER") if sonrs is not None else None
    if dtserver is None or not dtserver.text:
        return None
    try:
        when = parse_datetime(dtserver.text)
    except ValueError:
        context.flags.append(Flag("ofx_repaired", f"DTSERVER {dtserver.text!r} is not an OFX "
                                  "date and time; the creation time is left empty",
                                  f"line {dtserver.line}"))
        return None
    if when.offset is None:
        context.flags.append(Flag("timezone_assumed", "DTSERVER has no time zone offset: read "
                                  "as UTC, the OFX default", f"line {dtserver.line}"))
    return when.to_utc()


def _status(element: Element, context: Context) -> tuple[int, str, str] | None:
    """(CODE, SEVERITY, MESSAGE) of ``element``'s STATUS aggregate (OFX 2.1.1 §3.1.5)."""
    status = element.first("STATUS")
    if status is None:
        return None
    code = status.value("CODE")
    if code is None or not (code.isascii() and code.isdigit()):
        raise context.fail(status, f"STATUS needs a numeric CODE, got {code!r}", "CODE")
    if status.value("SEVERITY") is None:
        raise context.fail(status, "STATUS has no SEVERITY: expected INFO, WARN or ERROR",
                           "SEVERITY")
    return int(code), status.value("SEVERITY") or "", status.value("MESSAGE") or ""


_TRNRS = ("STMTTRNRS", "CCSTMTTRNRS")


@dataclass(frozen=True, slots=True)
class Found:
    """A statement aggregate with what its transaction response says of it."""

    aggregate: Element
    trnuid: str | None
    flags: tuple[Flag, ...]


def statement_aggregates(root: Element, context: Context) -> list[Found]:
    """Each STMTRS/CCSTMTRS in document order; refuse error responses and investments."""
    parents = {id(child): element for element in root.iter() for child in element.children}
    found: list[Found] = []
    for element in root.iter():
        status = _status(element, context)
        if element.tag in ("INVSTMTRS", "INVSTMTTRNRS"):
            raise context.fail(element, "investment statements (INVSTMTRS) are not supported: "
                               "expected bank (STMTRS) or credit card (CCSTMTRS) statements")
        if element.tag in _TRNRS and status is not None and status[0] != 0 and not any(
                child.tag in STATEMENTS for child in element.children):
            code, severity, message = status
            raise context.fail(element, f"the bank answered with an error instead of a "
                               f"statement: status {code} ({severity}) {message!r}", "STATUS")
        if element.tag in STATEMENTS:
            found.append(_found(element, parents[id(element)], context))
    if found:
        return found
    sonrs = next((e for e in root.iter() if e.tag == "SONRS"), None)
    signon = _status(sonrs, context) if sonrs is not None else None
    if sonrs is not None and signon is not None and signon[0] != 0:
        raise context.fail(sonrs, f"the bank refused the sign-on: status {signon[0]} "
                           f"({signon[1]}) {signon[2]!r}; the file holds no statement", "STATUS")
    raise context.fail(root, "no statement in the OFX document: expected STMTRS (bank) or "
                       "CCSTMTRS (credit card)")


def _found(aggregate: Element, parent: Element, context: Context) -> Found:
    if parent.tag not in _TRNRS:
        return Found(aggregate, None, (Flag(
            "ofx_repaired", f"<{aggregate.tag}> outside a STMTTRNRS or CCSTMTTRNRS read as a "
            "statement all the same", f"line {aggregate.line}"),))
    status = _status(parent, context)
    if status is None or status[0] == 0:
        return Found(aggregate, parent.value("TRNUID"), ())
    code, severity, message = status
    return Found(aggregate, parent.value("TRNUID"), (Flag(
        "ofx_status", f"the response carries status {code} ({severity}) {message!r} beside "
        "its statement", f"line {parent.line}"),))


@dataclass(slots=True)
class Streamed:
    """What a streaming reader took of a statement's transactions already (``ofx_stream``):
    (FITID, amount) of the first ones, for ofxparse, and the notes they gave."""

    read: list[tuple[str | None, Decimal]] = field(default_factory=list)
    notes: list[Flag] = field(default_factory=list)


def statement_of(aggregate: Element, context: Context, flags: tuple[Flag, ...],
               streamed: Streamed | None = None) -> tuple[Statement, StatementReading]:
    """The statement of ``aggregate`` and what ofxparse must read of it; without entries when
    they were ``streamed`` (taken out of the tree as they were read)."""
    curdef = context.currency(aggregate, "CURDEF")
    account, account_id = account_of(aggregate, curdef, context)
    tranlists = aggregate.all("BANKTRANLIST")
    starts = [d for t in tranlists if (d := context.date(t, "DTSTART")) is not None]
    ends = [d for t in tranlists if (d := context.date(t, "DTEND")) is not None]
    entries: list[Entry] = []
    read: list[tuple[str | None, Decimal]] = streamed.read if streamed else []
    notes: list[Flag] = list(streamed.notes) if streamed else []
    for tranlist in tranlists if streamed is None else ():
        for transaction in tranlist.all("STMTTRN"):
            entry = transaction_entry(transaction, curdef, context, notes)
            read.append((transaction.value("FITID"), entry.amount.amount))
            if transaction.value("CORRECTACTION") != "DELETE":
                entries.append(entry)
    closing = _balance(aggregate, "LEDGERBAL", BalanceKind.CLOSING_BOOKED, curdef, context)
    available = _balance(aggregate, "AVAILBAL", BalanceKind.CLOSING_AVAILABLE, curdef, context)
    if account_id is None:
        notes.append(Flag("ofx_account_missing", f"<{aggregate.tag}> has no "
                          f"{_ACCOUNT_FROM[aggregate.tag]}: the account is not identified",
                          f"line {aggregate.line}"))
    statement = Statement(
        source=context.source, format="ofx", account=account, entries=tuple(entries),
        period_start=min(starts) if starts else None, period_end=max(ends) if ends else None,
        closing_balance=closing,
        available_balances=(available,) if available is not None else (),
        flags=(*flags, *notes),
    )
    reading = StatementReading(aggregate.tag, account_id, tuple(read),
                               closing.amount.amount if closing else None,
                               line=aggregate.line, path=aggregate.path)
    return statement, reading


def account_of(aggregate: Element, curdef: str | None,
             context: Context) -> tuple[Account, str | None]:
    source = aggregate.first(_ACCOUNT_FROM[aggregate.tag])
    if source is None:
        return Account(currency=curdef), None
    account_id = source.value("ACCTID")
    if account_id is None:
        raise context.fail(source, f"<{source.tag}> has no ACCTID: expected the account number",
                           "ACCTID")
    iban = as_iban(account_id)
    return Account(iban=iban, number=None if iban else account_id,
                   bank_id=source.value("BANKID"), currency=curdef), account_id


def _balance(aggregate: Element, tag: str, kind: BalanceKind, curdef: str | None,
             context: Context) -> Balance | None:
    found = aggregate.all(tag)
    if len(found) > 1:
        raise context.fail(found[1], f"a second {tag} in one statement: expected at most one")
    if not found:
        return None
    balance = found[0]
    amount = context.amount(balance, "BALAMT")
    if amount is None:  # pragma: no cover - clean_statement drops balances without BALAMT
        raise context.fail(balance, f"{tag} has no BALAMT: expected an amount", "BALAMT")
    as_of = context.required_date(balance, "DTASOF")
    if curdef is None:
        raise context.fail(aggregate, f"{tag} but no CURDEF: the balance's currency is unknown",
                           "CURDEF")
    return Balance(Money(amount, curdef), as_of, kind)


def transaction_entry(transaction: Element, curdef: str | None, context: Context,
                      notes: list[Flag]) -> Entry:
    """The entry of one STMTTRN (cleaned) of a statement in ``curdef``; a CORRECTACTION adds
    its note to ``notes``."""
    amount = context.amount(transaction, "TRNAMT")
    if amount is None:
        raise context.fail(transaction, "STMTTRN has no TRNAMT: expected the amount", "TRNAMT")
    posted = context.required_date(transaction, "DTPOSTED")
    currency, fx = _entry_currency(transaction, curdef, context)
    payee = transaction.first("PAYEE")
    to_account = transaction.first("BANKACCTTO") or transaction.first("CCACCTTO")
    to_id = to_account.value("ACCTID") if to_account is not None else None
    trntype = transaction.value("TRNTYPE")
    _correction(transaction, context, notes)
    return Entry(
        amount=Money(amount, currency),
        booking_date=posted,
        value_date=context.date(transaction, "DTAVAIL"),
        bank_reference=transaction.value("FITID"),
        customer_reference=transaction.value("CHECKNUM") or transaction.value("REFNUM"),
        bank_transaction_code=BankTransactionCode(proprietary=trntype, issuer="OFX")
        if trntype else None,
        counterparty_name=transaction.value("NAME")
        or (payee.value("NAME") if payee is not None else None),
        counterparty_account=(as_iban(to_id) or to_id) if to_id else None,
        remittance=transaction.value("MEMO"),
        fx=fx,
    )


def _entry_currency(transaction: Element, curdef: str | None,
                    context: Context) -> tuple[str, FxDetails | None]:
    """The entry's currency and exchange details (OFX 2.1.1 §5.2 CURRENCY/ORIGCURRENCY)."""
    given = [c for c in transaction.children if c.tag in ("CURRENCY", "ORIGCURRENCY")]
    if len(given) > 1:
        raise context.fail(given[1], "both CURRENCY and ORIGCURRENCY: expected at most one")
    if not given:
        if curdef is None:
            raise context.fail(transaction, "no currency: the statement has no CURDEF and the "
                               "transaction no CURRENCY", "CURDEF")
        return curdef, None
    aggregate = given[0]
    cursym = context.currency(aggregate, "CURSYM")
    if cursym is None:
        raise context.fail(aggregate, f"<{aggregate.tag}> has no CURSYM: expected an ISO 4217 "
                           "code", "CURSYM")
    currency = cursym if aggregate.tag == "CURRENCY" else curdef
    if currency is None:
        raise context.fail(transaction, "ORIGCURRENCY but no CURDEF: the amount's currency "
                           "is unknown", "CURDEF")
    if curdef is None or cursym == curdef:
        return currency, None
    rate = context.amount(aggregate, "CURRATE")
    return currency, FxDetails(rate=rate, source_currency=cursym, target_currency=curdef)


def _correction(transaction: Element, context: Context, notes: list[Flag]) -> None:
    action = transaction.value("CORRECTACTION")
    if action is None:
        return
    if action not in ("REPLACE", "DELETE"):
        raise context.fail(transaction, f"CORRECTACTION {action!r}: expected REPLACE or DELETE",
                           "CORRECTACTION")
    fitid = transaction.value("FITID")
    earlier = transaction.value("CORRECTFITID")
    what = ("replaces" if action == "REPLACE" else "deletes, and is not read as an entry,")
    notes.append(Flag("ofx_correction", f"transaction FITID {fitid} {what} the earlier "
                      f"transaction FITID {earlier}: an import of that one needs correcting",
                      f"line {transaction.line}"))


def check_every_transaction_read(root: Element, found: list[Found],
                                  context: Context) -> None:
    """Every STMTTRN in the document belongs to a statement's BANKTRANLIST."""
    everywhere = [e for e in root.iter() if e.tag == "STMTTRN"]
    read = sum(len(t.all("STMTTRN")) for f in found for t in f.aggregate.all("BANKTRANLIST"))
    if len(everywhere) != read:
        placed = {id(t) for e in root.iter() if e.tag == "BANKTRANLIST"
                  for t in e.all("STMTTRN")}
        stray = next((t for t in everywhere if id(t) not in placed), everywhere[-1])
        raise context.fail(stray, f"{len(everywhere)} STMTTRN in the document but {read} in "
                           "statements: expected every STMTTRN inside a BANKTRANLIST of a "
                           "STMTRS or CCSTMTRS")
