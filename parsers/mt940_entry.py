"""One MT940 entry: a ``:61:`` statement line and the ``:86:``/``:NS:`` text after it, read
into an ``Entry`` (see ``parsers.mt940`` for the mapping). Apart from the statement reader
so that each module stays small; nothing here knows of statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parsers.iban import normalize_iban
from parsers.model import Account, BankTransactionCode, Entry, EntryStatus, FxDetails
from parsers.money import Money
from parsers.mt940_details import Details, read_details, supplementary_details
from parsers.mt940_fields import MARKS, StatementLine, Where


@dataclass(slots=True)
class RawEntry:
    """A ``:61:`` read, and the lines of the ``:86:`` and ``:NS:`` fields that followed it."""

    line: StatementLine
    where: Where
    details: list[str] = field(default_factory=list)
    non_swift: list[str] = field(default_factory=list)


def raw_text(lines: list[str]) -> str:
    """Field lines as kept in ``additional_info``: trailing blanks and blank ends removed."""
    return "\n".join(line.rstrip() for line in lines).strip("\n")


# Transaction codes are few and immutable: one object for each, shared by the entries.
_CODES: dict[tuple[str | None, str | None, str | None], BankTransactionCode | None] = {}
_MAX_CODES = 4096


def _code(swift: str | None, gvc: str | None,
          proprietary: str | None) -> BankTransactionCode | None:
    key = (swift, gvc, proprietary)
    code = _CODES.get(key)
    if code is None and key != (None, None, None):
        code = BankTransactionCode(swift=swift, gvc=gvc, proprietary=proprietary)
        if len(_CODES) < _MAX_CODES:
            _CODES[key] = code
    return code


def build_entry(raw: RawEntry, currency: str, account: Account | None) -> Entry:
    """The entry of one ``:61:`` and the ``:86:``/``:NS:`` text after it, in ``currency``;
    ``account`` (the statement's own) helps read some banks' ``:86:`` layouts."""
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
        read_details(raw.details, currency, details, account)
        if not details.complete:
            extra.append(raw_text(raw.details))
    if raw.non_swift:
        extra.append(raw_text(raw.non_swift))
    sign, reversal, expected = MARKS[line.mark]
    code = _code(line.transaction_type, details.gvc, details.proprietary_code)
    return Entry(
        amount=Money(line.amount if sign > 0 else -line.amount, currency),
        booking_date=line.booking_date,
        value_date=line.value_date,
        status=EntryStatus.PENDING if expected else EntryStatus.BOOKED,
        reversal=reversal,
        bank_reference=line.bank_reference,
        customer_reference=details.customer_reference
        if line.customer_reference in (None, "KREF+") else line.customer_reference,
        bank_transaction_code=code,
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
        additional_info="\n".join(e for e in extra if e) or None if extra else None,
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
