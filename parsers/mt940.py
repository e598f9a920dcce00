"""SWIFT MT940 statements and MT942 interim reports: bytes in, ``Statement`` objects out.

Layers, each in its own module: ``parsers.text.decode`` (UTF-8, else a guessed code page,
flagged) -> ``mt940_lines`` (transport bytes, envelopes, bank headers, fields, one message
per ``:20:``) -> ``mt940_fields`` (each field's value, via the ``mt-940`` package's tag
patterns where they hold) -> ``mt940_details`` (the ``:86:`` dialects) -> the model, here.

Mapping: ``:20:`` statement_id; ``:25:`` account (IBAN when the check digits hold, BIC or
bank code / number, else a number); ``:28C:`` sequence; ``:60F:``/``:60M:`` opening balance
(OPBD/ITBD); ``:62F:``/``:62M:`` closing balance (CLBD/ITBD); ``:64:`` CLAV and ``:65:`` FWAV
in available_balances; ``:13D:`` created_at (UTC). The statement's currency is that of the
opening balance (MT942: of ``:34F:`` or ``:90D:``/``:90C:``). Each ``:61:`` is one entry:
C/D signed +/-, RC negative and RD positive with ``reversal``, EC/ED pending; the type
(``NTRF``) is ``bank_transaction_code.swift``; ``NONREF`` is no reference.
``:86:`` is read by ``mt940_details`` (German ``?nn`` subfields with SEPA keys, Romanian
variants, ``/CODE/`` dialects) and, for the free-text layouts of some banks (ING old
format, ABN AMRO, ASN/SNS, Triodos, mBank, Danske), ``mt940_dialects``; other free text is
not guessed at and sets no remittance. A ``:61:``
reference ``KREF+`` points to the ``:86:`` ``KREF+`` value, which is taken instead.
``Entry.additional_info`` keeps, verbatim, whatever the bank wrote about an entry that did
not all go into fields: the ``:61:`` supplementary details, the ``:86:`` text, ``:NS:``.

Checks: every MT940 statement needs ``:25:``, ``:60a:`` and ``:62a:`` (a statement without its
closing balance is a cut-off file, not a short statement); the number of ``:61:`` lines in
the text must equal the number of entries; MT942 ``:90D:``/``:90C:`` counts and sums must
match the entries. Any failure is a ``ParseError`` naming the line and field.

Flags set here (besides ``encoding_guessed``): ``replacement_characters`` (U+FFFD already
in the file), ``text_outside_statement`` (a preamble or trailing text ignored),
``field_wrapped`` (a one-line field continued on the next line, joined),
``decimal_point`` (amounts with ``.`` for the decimal comma), ``amount_without_decimal_comma``,
``transaction_type_missing``, ``entry_date_year_inferred`` (MMDD placed across a year end),
``timezone_assumed`` (``:13D:`` without offset), ``account_not_iban`` (IBAN-shaped, wrong
check digits), ``account_currency_mismatch`` (currency after the account differs from the
balances'), ``statement_information`` (``:86:``/``:NS:`` text for the statement as a whole,
before the first or after the last entry, which the model has no field for: the text is in
the flag's message).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime

from parsers.errors import ParseError
from parsers.iban import normalize_iban
from parsers.model import (
    Account,
    Balance,
    BalanceKind,
    BankTransactionCode,
    Entry,
    EntryStatus,
    Flag,
    FxDetails,
    Statement,
)
from parsers.money import Money
from parsers.mt940_details import Details, read_details, supplementary_details
from parsers.mt940_fields import (
    MARKS,
    AccountValue,
    BalanceValue,
    EntryTotal,
    FlagLog,
    StatementLine,
    Where,
    parse_account,
    parse_balance,
    parse_creation_time,
    parse_entry_total,
    parse_floor_limit_currency,
    parse_statement_line,
    parse_statement_number,
    single_line,
)
from parsers.mt940_lines import (
    Field,
    Message,
    count_statement_lines,
    read_messages,
    split_lines,
)
from parsers.text import decode

# The parser family (its folder of golden files); its statements say "mt940" or "mt942".
FAMILY = "mt940"
FORMAT_NAMES = ("mt940", "mt942")

_OPENING = {"60F": BalanceKind.OPENING_BOOKED, "60": BalanceKind.OPENING_BOOKED,
            "60M": BalanceKind.INTERIM_BOOKED}
_CLOSING = {"62F": BalanceKind.CLOSING_BOOKED, "62": BalanceKind.CLOSING_BOOKED,
            "62M": BalanceKind.INTERIM_BOOKED}
_AVAILABLE = {"64": BalanceKind.CLOSING_AVAILABLE, "65": BalanceKind.FORWARD_AVAILABLE,
              "65F": BalanceKind.FORWARD_AVAILABLE}
_MT942_TAGS = frozenset({"13", "13D", "34F", "90D", "90C"})

_SNIFF_NOISE = str.maketrans("", "", "\x01\x03\x1a")
_SNIFF_START = re.compile(r"(?m)^(?:\{4:)?:20:")
_SNIFF_MORE = re.compile(r"(?m)^:(?:28C?|6[0-2][FM]?|13D?|34F):")


def sniff(head: bytes) -> bool:
    """True for MT940/MT942: a ``:20:`` line followed by ``:25:`` and a statement field.

    Whatever precedes the first ``:20:`` (envelope, bank header, preamble) is allowed,
    except the start of an XML or OFX document.
    """
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1").translate(_SNIFF_NOISE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    opening = text.lstrip()[:64].upper()
    if opening.startswith(("<", "OFXHEADER")):
        return False
    start = _SNIFF_START.search(text)
    if start is None:
        return False
    rest = text[start.end():]
    account = re.search(r"(?m)^:25P?:", rest)
    return account is not None and _SNIFF_MORE.search(rest) is not None


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Every statement (MT940) or report (MT942) in ``data``, whole, or a ``ParseError``."""
    statements = []
    for result in parse_each(data, source=source):
        if isinstance(result, ParseError):
            raise result
        statements.append(result)
    return tuple(statements)


def parse_each(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """Every statement in ``data``, each read on its own: a bad one is its ``ParseError``,
    in its place, naming it (``statement 2 of 3, :20: REF``), so that the good ones of a
    multi-statement file can still be shown. A file that cannot be cut into statements at
    all still raises.
    """
    text, file_flags = decode(data)
    flags = list(file_flags)
    if "\ufffd" in text:
        first = len(split_lines(text[: text.index("\ufffd")]))
        flags.append(Flag("replacement_characters", "the file already contains U+FFFD "
                          "replacement characters: text was damaged before it reached us",
                          f"line {first}"))
    messages = read_messages(text, source=source)
    if not messages:
        raise ParseError("no statement found: expected a :20: field (MT940/MT942)",
                         source=source, line=1, field=":20:")
    lines = split_lines(text)
    results: list[Statement | ParseError] = []
    for number, message in enumerate(messages, 1):
        try:
            results.append(_Reader(message, lines, source, tuple(flags)).statement())
        except ParseError as exc:
            results.append(_naming(exc, number, len(messages), message) if len(messages) > 1
                           else exc)
    return tuple(results)


def _naming(error: ParseError, number: int, count: int, message: Message) -> ParseError:
    """``error`` with the statement it is in named first."""
    reference = next((f.lines[0].strip() for f in message.fields if f.tag == "20"), "")
    name = f"statement {number} of {count}" + (f", :20: {reference}" if reference else "")
    return ParseError(f"{name}: {error.message}", source=error.source, line=error.line,
                      path=error.path, field=error.field)


@dataclass(slots=True)
class _RawEntry:
    line: StatementLine
    where: Where
    details: list[str] = field(default_factory=list)
    non_swift: list[str] = field(default_factory=list)


def _raw_text(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip("\n")


class _Reader:
    """Reads one message's fields into a Statement."""

    def __init__(self, message: Message, lines: list[str], source: str,
                 flags: tuple[Flag, ...]) -> None:
        self.message = message
        self.lines = lines
        self.source = source
        self.log = FlagLog()
        self.log.extend(flags + message.flags)
        self.statement_id: str | None = None
        self.sequence: str | None = None
        self.account: AccountValue | None = None
        self.opening: tuple[BalanceValue, BalanceKind] | None = None
        self.closing: tuple[BalanceValue, BalanceKind] | None = None
        self.available: list[tuple[BalanceValue, BalanceKind]] = []
        self.created_at: datetime | None = None
        self.floor_currency: str | None = None
        self.totals: dict[str, EntryTotal] = {}
        self.entries: list[_RawEntry] = []
        self.current: _RawEntry | None = None
        self.tags: set[str] = set()
        self.information: list[tuple[int, str]] = []  # statement-level :86:/:NS: text

    def where(self, f: Field) -> Where:
        return Where(self.source, f.line, f":{f.tag}:")

    def _once(self, f: Field, seen: object, what: str) -> None:
        if seen is not None:
            raise self.where(f).error(f"a second {what} in one statement")

    def read(self, f: Field) -> None:
        """Take in one field; one branch per tag, flat on purpose."""
        where, tag = self.where(f), f.tag
        self.tags.add(tag)
        if tag not in ("61", "86", "NS"):
            self.current = None
        if tag == "20":
            self.statement_id = single_line(f.lines, where, self.log) or None
        elif tag in ("25", "25P"):
            self._once(f, self.account, "account :25:")
            value = single_line(f.lines[:1], where, self.log)
            self.account = parse_account(value, where, self.log)
            if tag == "25P" and len(f.lines) > 1:
                bic = f.lines[1].strip()
                self.account = AccountValue(
                    _replace(self.account.account, bic=bic or None), self.account.currency)
        elif tag in ("28", "28C"):
            self._once(f, self.sequence, "statement number :28C:")
            self.sequence = parse_statement_number(single_line(f.lines, where, self.log), where)
        elif tag in ("13", "13D"):
            self._once(f, self.created_at, "creation time :13D:")
            self.created_at = parse_creation_time(single_line(f.lines, where, self.log), where,
                                                  self.log)
        elif tag == "34F":
            floor = parse_floor_limit_currency(single_line(f.lines, where, self.log), where)
            self.floor_currency = self.floor_currency or floor
        elif tag in _OPENING:
            self._once(f, self.opening, "opening balance :60a:")
            if self.entries:
                raise where.error("the opening balance comes after entries (:61:)")
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.opening = (balance, _OPENING[tag])
        elif tag in _CLOSING:
            self._once(f, self.closing, "closing balance :62a:")
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.closing = (balance, _CLOSING[tag])
        elif tag in _AVAILABLE:
            balance = parse_balance(single_line(f.lines, where, self.log), where, self.log)
            self.available.append((balance, _AVAILABLE[tag]))
        elif tag in ("90D", "90C"):
            self._once(f, self.totals.get(tag[-1]), f"total :{tag}:")
            self.totals[tag[-1]] = parse_entry_total(single_line(f.lines, where, self.log),
                                                     where, self.log)
        elif tag == "61":
            if self.closing is not None:
                raise where.error("an entry (:61:) after the closing balance :62a:")
            self.current = _RawEntry(parse_statement_line(f.lines, where, self.log), where)
            self.entries.append(self.current)
        elif tag in ("86", "NS"):
            if self.current is None:
                text = _raw_text(list(f.lines))
                if text:
                    self.information.append((f.line, f":{tag}: {text}"))
            elif tag == "86":
                self.current.details.extend(f.lines)
            else:
                self.current.non_swift.extend(f.lines)
        # :21: (related reference) has no place in the model and says nothing of the money.

    def statement(self) -> Statement:
        for f in self.message.fields:
            self.read(f)
        first = Where(self.source, self.message.first_line, ":20:")
        is_942 = self.message.message_type == "942" or bool(self.tags & _MT942_TAGS)
        if self.account is None:
            raise first.error("the statement has no account identification :25:")
        if not is_942 and self.opening is None:
            raise first.error("the statement has no opening balance :60F:/:60M:")
        if not is_942 and self.closing is None:
            raise Where(self.source, self.message.last_line, ":62F:").error(
                "the statement ends without a closing balance :62F:/:62M: (cut off?)")
        currency = self._currency(first)
        entries = tuple(self._entry(raw, currency) for raw in self.entries)
        self._check_count(entries)
        self._check_totals(entries, first)
        if self.information:
            self.log.extend([Flag(
                "statement_information",
                "text for the statement as a whole, which the model has no field for: "
                + "\n".join(text for _, text in self.information),
                f"line {self.information[0][0]}",
            )])
        if self.account.currency and self.account.currency != currency:
            self.log.add("account_currency_mismatch", f"the account is marked "
                         f"{self.account.currency}, its balances are in {currency}",
                         first.line)
        return Statement(
            source=self.source,
            format="mt942" if is_942 else "mt940",
            account=_replace(self.account.account, currency=currency),
            entries=entries,
            statement_id=self.statement_id,
            sequence=self.sequence,
            created_at=self.created_at,
            opening_balance=_balance(self.opening),
            closing_balance=_balance(self.closing),
            available_balances=tuple(b for b in map(_balance, self.available) if b),
            flags=self.log.flags(),
        )

    def _currency(self, first: Where) -> str:
        for candidate in (self.opening, self.closing):
            if candidate is not None:
                return candidate[0].currency
        if self.floor_currency:
            return self.floor_currency
        for total in self.totals.values():
            return total.currency
        raise first.error("no currency: the report has no balance, :34F: or :90D:/:90C:")

    def _entry(self, raw: _RawEntry, currency: str) -> Entry:
        line = raw.line
        details = Details()
        extra = []
        if (
            line.supplementary
            and not _counterparty_in_line(line, details)
            and not supplementary_details(line.supplementary, details)
        ):
            extra.append(line.supplementary)
        if raw.details:
            read_details(raw.details, currency, details,
                         self.account.account if self.account else None)
            if not details.complete:
                extra.append(_raw_text(raw.details))
        if raw.non_swift:
            extra.append(_raw_text(raw.non_swift))
        sign, reversal, expected = MARKS[line.mark]
        code = BankTransactionCode(swift=line.transaction_type, gvc=details.gvc,
                                   proprietary=details.proprietary_code)
        return Entry(
            amount=Money(sign * line.amount, currency),
            booking_date=line.booking_date,
            value_date=line.value_date,
            status=EntryStatus.PENDING if expected else EntryStatus.BOOKED,
            reversal=reversal,
            bank_reference=line.bank_reference,
            customer_reference=details.customer_reference
            if line.customer_reference in (None, "KREF+") else line.customer_reference,
            bank_transaction_code=code if code != BankTransactionCode() else None,
            counterparty_name=details.counterparty_name,
            counterparty_account=details.counterparty_account,
            counterparty_bic=details.counterparty_bic,
            end_to_end_id=details.end_to_end_id,
            mandate_id=details.mandate_id,
            remittance=details.remittance,
            creditor_reference=details.creditor_reference,
            fx=FxDetails(instructed_amount=details.instructed_amount)
            if details.instructed_amount else None,
            charges=tuple(details.charges),
            additional_info="\n".join(e for e in extra if e) or None,
        )

    def _check_count(self, entries: tuple[Entry, ...]) -> None:
        lines = count_statement_lines(self.lines, self.message.first_line,
                                      self.message.last_line)
        if len(lines) != len(entries):
            at = lines[len(entries)] if len(lines) > len(entries) else self.message.first_line
            raise ParseError(
                f"the statement has {len(lines)} lines starting ':61:' but {len(entries)} "
                "entries were read", source=self.source, line=at, field=":61:",
            )

    def _check_totals(self, entries: tuple[Entry, ...], first: Where) -> None:
        for mark, total in self.totals.items():
            debit = mark == "D"
            picked = [e for e, raw in zip(entries, self.entries, strict=True)
                      if (MARKS[raw.line.mark][0] < 0) == debit]
            count = len(picked)
            amount = sum((abs(e.amount.amount) for e in picked), start=total.amount * 0)
            if count != total.count or amount != total.amount:
                raise first.error(
                    f":90{mark}: says {total.count} entries totalling {total.amount}, but the "
                    f"report has {count} totalling {amount}"
                )


def _counterparty_in_line(line: StatementLine, details: Details) -> bool:
    """The counterparty in the :61: supplementary details, by two bank conventions.

    Rabobank: the supplementary details are the counterparty's IBAN alone. ASN, SNS: the
    owner's reference is the counterparty's IBAN and the details its name. Only IBANs whose
    check digits hold are taken.
    """
    text = (line.supplementary or "").strip()
    if "\n" in text or text.startswith("/"):
        return False
    if iban := normalize_iban(text):
        details.put("counterparty_account", iban)
        return True
    if iban := normalize_iban(line.customer_reference):
        details.put("counterparty_account", iban)
        details.put("counterparty_name", text)
        return True
    return False


def _balance(value: tuple[BalanceValue, BalanceKind] | None) -> Balance | None:
    if value is None:
        return None
    balance, kind = value
    return Balance(Money(balance.amount, balance.currency), balance.date, kind)


def _replace(account: Account, **changes: str | None) -> Account:
    return dataclasses.replace(account, **changes)
