"""OFX 1.x (SGML) and 2.x (XML) bank and credit card statements, to ``Statement``.

Layers, each a module tested on its own (after ofxtools)::

    bytes --ofx_header--> text and version (OFXHEADER lines or <?xml?><?OFX?>, encoding)
          --ofx_tree----> generic element tree, SGML or XML, as banks really write it
          --ofx_clean---> repaired tree (empty elements, decimal commas, misplaced balances)
          --here--------> Statement objects, then
          --ofx_reference-> ofxparse must read the repaired document the same way

Mapping (sections of the OFX 2.1.1 specification):

- ``STMTRS`` (§11.4.2.2) and ``CCSTMTRS`` (§11.4.3.2): one ``Statement`` each, in document
  order, several per file allowed. ``INVSTMTRS`` (investment) is refused: not supported.
- ``BANKACCTFROM``: ``BANKID`` -> ``bank_id``; ``ACCTID`` -> ``iban`` when it passes the
  IBAN mod-97 check, else ``number``. ``CCACCTFROM`` ``ACCTID`` -> ``number``. ``CURDEF`` ->
  the account's currency. ``BRANCHID`` and ``ACCTTYPE`` have no place in the model.
- ``TRNUID`` of the enclosing ``STMTTRNRS`` -> ``statement_id``; the signon's ``DTSERVER``
  -> ``created_at`` in UTC. ``DTSTART``/``DTEND`` -> the period, dates as written.
- ``LEDGERBAL`` -> ``closing_balance`` (CLBD, dated ``DTASOF``); ``AVAILBAL`` ->
  ``available_balances`` (CLAV). OFX has no opening balance: ``opening_balance`` is None.
- ``STMTTRN`` (§11.4.4.1) -> ``Entry``: ``TRNAMT`` signed as given (OFX amounts are the
  account holder's view already); ``DTPOSTED`` -> ``booking_date``, the calendar date the
  bank wrote (not shifted to UTC, which would move late bookings to the next day);
  ``DTAVAIL`` -> ``value_date`` (when the funds are available, ISO's value date).
  ``DTUSER``, the day the customer initiated it (a card payment), is not a value date
  and is not mapped. ``FITID`` -> ``bank_reference``; ``CHECKNUM``, else ``REFNUM`` ->
  ``customer_reference``; ``NAME`` or ``PAYEE/NAME`` -> ``counterparty_name``;
  ``BANKACCTTO``/``CCACCTTO`` ``ACCTID`` -> ``counterparty_account``; ``MEMO`` ->
  ``remittance``; ``TRNTYPE`` -> ``bank_transaction_code`` (proprietary, issuer "OFX").
  ``CURRENCY``: the amounts are in ``CURSYM``; ``ORIGCURRENCY``: they are in ``CURDEF``,
  converted from ``CURSYM``. Either way ``fx`` carries ``CURRATE`` from CURSYM to CURDEF.

Flags (codes): ``ofx_repaired`` (a repair made to read the file; the message says which),
``ofx_header_missing`` (no header: version unknown), ``encoding_guessed`` (parsers.text),
``timezone_assumed`` (DTSERVER without an offset, read as UTC), ``ofx_status`` (a non-zero
status beside a statement), ``ofx_account_missing`` (no BANKACCTFROM/CCACCTFROM),
``ofx_correction`` (CORRECTACTION: an entry replacing or deleting an earlier one; a
DELETE is not read as an entry).

Refused with ``ParseError``: an empty or truncated document, malformed amounts and
dates, an error response (the server's message is quoted), investment statements, and
any file ofxparse reads differently from this parser. ``parse_each`` (and ``stream``)
read each statement of a multi-statement file on its own: a bad one (a malformed amount,
a reading ofxparse disagrees with) is its ``ParseError`` in its place, named
``statement 2 of 3``, and the others are kept; what concerns the whole document still
raises.

The ofxparse cross-check reads a sample: the document as cleaned, with the first
``CROSS_CHECK_TRANSACTIONS`` (200) transactions of each statement. ofxparse (through
BeautifulSoup) needs about ten times our time per transaction and memory growing with the
file, so checking every transaction made it most of the time of a large file. What it is
there to catch is a document read another way (other statements, accounts, balances, a
shifted or dropped transaction), which shows in the first transactions as well as in all
of them; every transaction's own values are read and checked by this parser anyway. Files
up to 200 transactions a statement (nearly all real ones) are still checked whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

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
from parsers.stream import Part, StatementFailed, from_statements

# The parser family (its folder of golden files), and the format its statements say.
FAMILY = "ofx"
FORMAT_NAMES = ("ofx",)

_STATEMENTS = ("STMTRS", "CCSTMTRS")
# ofxparse reads the first this many transactions of each statement (module docstring).
CROSS_CHECK_TRANSACTIONS = 200
_ACCOUNT_FROM = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM"}


def sniff(head: bytes) -> bool:
    """True if ``head`` starts like OFX (see ``ofx_header.starts_like_ofx``)."""
    return ofx_header.starts_like_ofx(head)


@dataclass(slots=True)
class _Context:
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


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Every bank and credit card statement of an OFX document, in document order."""
    statements = []
    for result in parse_each(data, source=source):
        if isinstance(result, ParseError):
            raise result
        statements.append(result)
    return tuple(statements)


def stream(file: BinaryIO, *, source: str) -> Iterator[Part]:
    """The statements of an open binary file as a stream of parts (``parsers.stream``), a
    bad one of several a ``StatementFailed``. The document is read whole (see the module
    docstring): its entries come out once it is read."""
    for result in parse_each(file.read(), source=source):
        if isinstance(result, ParseError):
            yield StatementFailed(result)
        else:
            yield from from_statements((result,))


def parse_each(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """Every statement of the document, each read on its own: a bad one is its
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
    context = _Context(source)
    created_at = _created_at(root, context)
    found = _statement_aggregates(root, context)
    results: list[Statement | ParseError] = []
    readings: list[tuple[int, StatementReading]] = []  # of the statements read
    for number, each in enumerate(found, 1):
        try:
            flags = (*each.flags, *clean_statement(each.aggregate))
            statement, reading = _statement(each.aggregate, context, flags)
        except ParseError as exc:
            results.append(_naming(exc, number, len(found)))
            continue
        readings.append((len(results), reading))
        results.append(dataclasses.replace(
            statement, statement_id=each.trnuid, created_at=created_at,
            format_version=f"OFX {text.version}" if text.version else None))
    failed = {id(found[i].aggregate) for i, r in enumerate(results)
              if isinstance(r, ParseError)}
    try:
        _check_every_transaction_read(root, found, context)
    except ParseError:
        earlier = next((r for r in results if isinstance(r, ParseError)), None)
        if earlier is None:
            raise
        raise earlier from None  # as parse always said: the first error in the document
    if readings:
        sample = serialize(_sample(root, failed, CROSS_CHECK_TRANSACTIONS))
        ours = [r.first(CROSS_CHECK_TRANSACTIONS) for _, r in readings]
        for (index, _), problem in zip(readings, differences(ours, sample, source=source),
                                       strict=True):
            if problem is not None:
                results[index] = _naming(problem, index + 1, len(found))
    shared = (*text.flags, *repairs.flags(), *context.flags)
    return tuple(r if isinstance(r, ParseError)
                 else dataclasses.replace(r, flags=(*shared, *r.flags)) for r in results)


def _naming(error: ParseError, number: int, count: int) -> ParseError:
    """``error`` with the statement it is in named first, when there are several."""
    if count == 1:
        return error
    return ParseError(f"statement {number} of {count}: {error.message}", source=error.source,
                      line=error.line, path=error.path, field=error.field)


def _sample(element: Element, dropped: set[int], limit: int,
            taken: list[int] | None = None) -> Element:
    """A copy of the tree for ofxparse: without the aggregates in ``dropped`` (statements
    that failed), and with the first ``limit`` STMTTRN of each statement only."""
    taken = taken if taken is not None else [0]
    if element.tag in _STATEMENTS:
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
                        else _sample(child, dropped, limit, taken))
    return Element(element.tag, element.line, element.text, children, element.path)


def _created_at(root: Element, context: _Context) -> dt.datetime | None:
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


def _status(element: Element, context: _Context) -> tuple[int, str, str] | None:
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
class _Found:
    """A statement aggregate with what its transaction response says of it."""

    aggregate: Element
    trnuid: str | None
    flags: tuple[Flag, ...]


def _statement_aggregates(root: Element, context: _Context) -> list[_Found]:
    """Each STMTRS/CCSTMTRS in document order; refuse error responses and investments."""
    parents = {id(child): element for element in root.iter() for child in element.children}
    found: list[_Found] = []
    for element in root.iter():
        status = _status(element, context)
        if element.tag in ("INVSTMTRS", "INVSTMTTRNRS"):
            raise context.fail(element, "investment statements (INVSTMTRS) are not supported: "
                               "expected bank (STMTRS) or credit card (CCSTMTRS) statements")
        if element.tag in _TRNRS and status is not None and status[0] != 0 and not any(
                child.tag in _STATEMENTS for child in element.children):
            code, severity, message = status
            raise context.fail(element, f"the bank answered with an error instead of a "
                               f"statement: status {code} ({severity}) {message!r}", "STATUS")
        if element.tag in _STATEMENTS:
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


def _found(aggregate: Element, parent: Element, context: _Context) -> _Found:
    if parent.tag not in _TRNRS:
        return _Found(aggregate, None, (Flag(
            "ofx_repaired", f"<{aggregate.tag}> outside a STMTTRNRS or CCSTMTTRNRS read as a "
            "statement all the same", f"line {aggregate.line}"),))
    status = _status(parent, context)
    if status is None or status[0] == 0:
        return _Found(aggregate, parent.value("TRNUID"), ())
    code, severity, message = status
    return _Found(aggregate, parent.value("TRNUID"), (Flag(
        "ofx_status", f"the response carries status {code} ({severity}) {message!r} beside "
        "its statement", f"line {parent.line}"),))


def _statement(aggregate: Element, context: _Context,
               flags: tuple[Flag, ...]) -> tuple[Statement, StatementReading]:
    curdef = context.currency(aggregate, "CURDEF")
    account, account_id = _account(aggregate, curdef, context)
    tranlists = aggregate.all("BANKTRANLIST")
    starts = [d for t in tranlists if (d := context.date(t, "DTSTART")) is not None]
    ends = [d for t in tranlists if (d := context.date(t, "DTEND")) is not None]
    entries: list[Entry] = []
    read: list[tuple[str | None, Decimal]] = []
    notes: list[Flag] = []
    for tranlist in tranlists:
        for transaction in tranlist.all("STMTTRN"):
            entry = _entry(transaction, curdef, context, notes)
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


def _account(aggregate: Element, curdef: str | None,
             context: _Context) -> tuple[Account, str | None]:
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
             context: _Context) -> Balance | None:
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


def _entry(transaction: Element, curdef: str | None, context: _Context,
           notes: list[Flag]) -> Entry:
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
                    context: _Context) -> tuple[str, FxDetails | None]:
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


def _correction(transaction: Element, context: _Context, notes: list[Flag]) -> None:
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


def _check_every_transaction_read(root: Element, found: list[_Found],
                                  context: _Context) -> None:
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
