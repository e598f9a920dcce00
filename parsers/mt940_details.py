"""Field ``:86:`` (information to the account owner) in the dialects banks use.

- **Subfields** (German DFÜ-Abkommen, Anlage 3): a 3-digit GVC, then ``?00`` posting text,
  ``?10`` prima nota, ``?20``-``?29`` and ``?60``-``?63`` remittance, ``?30`` BIC (or bank
  code), ``?31`` account, ``?32``/``?33`` name, ``?34`` code supplement. The remittance is
  the subfields joined without separator (banks fill 27 characters and cut mid-word), then
  split at the SEPA keys ``EREF+`` ``KREF+`` ``MREF+`` ``CRED+`` ``SVWZ+`` ``ABWA+`` ...
  Romanian banks use the same layout with ``+``, ``~`` or ``^`` in place of ``?``.
- **Codes** (SWIFT / Dutch banks: ING, Rabobank, ABN AMRO, bunq, Van Lanschot):
  ``/EREF/.../NAME/.../REMI/...``; ING's ``/CNTP/account/BIC/name/city/`` and
  ``/REMI/USTD//text/`` or ``/REMI/STRD/CUR/reference/``. Lines are joined without separator
  (the field is cut every 65 characters, also mid-value).
- **Bank layouts** of free text (ING old format, ABN AMRO, ...): ``mt940_dialects``.
- **Free text**: anything else. It stays whole in ``additional_info``; nothing is guessed
  from it but a valid ISO 11649 creditor reference (``RF..``, check digits verified).

``Details.complete`` says whether every part of the field went into a model field; if not,
the caller keeps the raw text in ``Entry.additional_info``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from parsers import mt940_dialects
from parsers.iban import normalize_iban
from parsers.model import Account, Charge
from parsers.money import Money, MoneyError, is_statement_currency, parse_decimal

_SUBFIELDS_START = re.compile(r"(?P<gvc>\d{3})(?P<sep>[?+~^])\d{2}")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")

# SEPA keys inside the remittance subfields (DFÜ-Abkommen, "SEPA-Verwendungszweck").
_SEPA_KEYS = (
    "EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC", "PURP",
    "MDAT", "SQTP", "ORCR", "ORMR", "DDAT", "COAM", "OAMT", "RCUR",
)
_SEPA_KEY = re.compile(r"(?P<key>" + "|".join(_SEPA_KEYS) + r")\+")
_IDENTIFIER_KEYS = frozenset({"EREF", "KREF", "MREF", "CRED", "DEBT"})
_IDENTIFIER_LENGTH = 35

# Codes of the /CODE/ dialect (SWIFT field 86 guidelines, Rabobank, ING, ABN AMRO specs).
CODES = (
    "EREF", "PREF", "MARF", "CSID", "CNTP", "REMI", "PURP", "ULTC", "ULTD", "ULTB", "RTRN",
    "ORDP", "BENM", "NAME", "ADDR", "IBAN", "BIC", "ISDT", "TRTP", "OCMT", "CHGS", "EXCH",
    "CDTRREFTP", "CDTRREF", "TRCD", "SUM",
)
_CODE = re.compile(r"/(?P<code>" + "|".join(CODES) + r")/")
_PLACEHOLDERS = frozenset({"NOTPROVIDED", "NOT PROVIDED", "NONREF"})
_IDENTIFIERS = frozenset({"end_to_end_id", "mandate_id"})  # where a placeholder means none
_RF = re.compile(r"(?<![A-Z0-9])RF\d{2}[A-Z0-9]{1,21}(?![A-Z0-9])")
_CURRENCY_AMOUNT = re.compile(r"(?P<currency>[A-Z]{3})(?P<amount>\d+(?:,\d*)?)")


@dataclass(slots=True)
class Details:
    """What field 86 (and the :61: supplementary details) said, by model field."""

    gvc: str | None = None
    proprietary_code: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_bic: str | None = None
    end_to_end_id: str | None = None
    mandate_id: str | None = None
    customer_reference: str | None = None
    remittance: str | None = None
    creditor_reference: str | None = None
    instructed_amount: Money | None = None
    charges: list[Charge] = field(default_factory=list)
    complete: bool = True

    def put(self, name: str, value: str | None) -> None:
        """Set a field from bank text: stripped, blanks and placeholders left out."""
        if not value or not (text := value.strip()):
            return
        if name in _IDENTIFIERS and text.upper() in _PLACEHOLDERS:
            return
        now = getattr(self, name)
        if now is None:
            setattr(self, name, text)
        elif now != text:
            self.complete = False  # a second, different value has nowhere to go


def is_valid_creditor_reference(text: str) -> bool:
    """ISO 11649 ``RF`` reference: ``RF``, two check digits, up to 21 characters; mod 97."""
    ref = text.replace(" ", "").upper()
    if not re.fullmatch(r"RF\d{2}[A-Z0-9]{1,21}", ref):
        return False
    digits = "".join(str(int(c, 36)) for c in ref[4:] + ref[:4])
    return int(digits) % 97 == 1


def find_creditor_reference(text: str | None) -> str | None:
    """The first valid ISO 11649 reference in ``text``, if any."""
    for match in _RF.finditer((text or "").upper()):
        if is_valid_creditor_reference(match.group()):
            return match.group()
    return None


def _money(text: str) -> Money | None:
    """``EUR11,85`` as money; None if it is not that."""
    match = _CURRENCY_AMOUNT.fullmatch(text.strip())
    if not match or not is_statement_currency(match["currency"]):
        return None
    try:
        return Money(parse_decimal(match["amount"].replace(",", ".")), match["currency"])
    except MoneyError:  # pragma: no cover - the pattern admits decimals only
        return None


def _plain_amount(text: str, currency: str) -> Money | None:
    try:
        return Money(parse_decimal(text.strip().replace(",", ".")), currency)
    except MoneyError:
        return None


def _sepa_keys(text: str, starts: list[int]) -> list[tuple[str, str]]:
    """``text`` split at SEPA keys that begin a subfield or follow a blank: (key, value).

    Identifiers (``EREF``, ``KREF``, ``MREF``, ``CRED``, ``DEBT``) are at most 35 characters
    in SEPA: one that would run longer ends at the subfield where it reaches that length,
    and the text after it comes back under the key ``""`` (like text before any key).
    """
    cuts = [
        m for m in _SEPA_KEY.finditer(text)
        if m.start() == 0 or m.start() in starts or text[m.start() - 1] == " "
    ]
    if not cuts:
        return [("", text)]
    pieces = [("", text[: cuts[0].start()])]
    for this, after in zip(cuts, [*cuts[1:], None], strict=True):
        end = after.start() if after else len(text)
        if this["key"] in _IDENTIFIER_KEYS and end - this.end() > _IDENTIFIER_LENGTH:
            bounds = [b for b in starts if this.end() < b < end]
            fits = [b for b in bounds if b - this.end() <= _IDENTIFIER_LENGTH]
            if fits or bounds:
                cut = fits[-1] if fits else bounds[0]
                pieces.append((this["key"], text[this.end() : cut]))
                pieces.append(("", text[cut:end]))
                continue
        pieces.append((this["key"], text[this.end() : end]))
    return pieces


def _subfields(text: str, separator: str, details: Details, currency: str) -> None:
    """The German ``?nn`` layout (also with ``+``, ``~``, ``^`` as separator)."""
    details.gvc = text[:3]
    body = text[3:].rstrip().removesuffix(separator)  # ING Romania ends with a lone '~'
    parts = re.split(re.escape(separator) + r"(\d{2})", body)
    if parts[0].strip():
        details.complete = False
    remittance: list[str] = []
    names: list[str] = []
    account_in_name = None
    for code, value in zip(parts[1::2], parts[2::2], strict=True):
        number = int(code)
        if 20 <= number <= 29 or 60 <= number <= 63:
            remittance.append(value)
        elif number == 30 and _BIC.fullmatch(value.strip()):
            details.put("counterparty_bic", value)
        elif number == 31:
            details.put("counterparty_account", value)
        elif number == 32:
            names.append(value)
        elif number == 33:
            if normalize_iban(value) and not details.counterparty_account:
                account_in_name = value  # ING Romania: ?33 holds the IBAN
            else:
                names.append(value)
        elif value.strip():
            details.complete = False  # ?00 posting text, ?10 prima nota, ?34, a bank code
    if account_in_name is not None:
        details.put("counterparty_account", normalize_iban(account_in_name))
    if separator != "?":
        # Romanian layouts pad their subfields with blanks instead of cutting text into
        # them: each is a piece of its own.
        names = [" ".join(n.split()) for n in names]
        remittance = [" ".join(r.split()) for r in remittance if r.strip()]
        details.put("counterparty_name", " ".join(names))
        details.put("remittance", " ".join(remittance))
        return
    details.put("counterparty_name", "".join(names))
    _remittance_keys(remittance, details, currency)


SUBFIELD_WIDTH = 27


def join_subfields(subfields: list[str]) -> tuple[str, list[int]]:
    """The remittance subfields as one text, and where each subfield starts in it.

    A subfield filled to its full 27 characters was cut by the bank wherever the width ran
    out, often mid-word, so the next one follows it directly; a shorter one ended where
    its writer ended it (``PARTNERKEY 0123`` then ``SPENDE``), so a blank goes between
    them, unless one of the two already has it. Nothing else is added or removed.
    """
    starts = []
    pieces: list[str] = []
    offset = 0
    previous = ""
    for value in subfields:
        if (pieces and len(previous) < SUBFIELD_WIDTH and previous[-1:] != " "
                and value[:1] != " " and value):
            pieces.append(" ")
            offset += 1
        starts.append(offset)
        pieces.append(value)
        offset += len(value)
        previous = value or previous
    return "".join(pieces), starts


def _remittance_keys(subfields: list[str], details: Details, currency: str) -> None:
    """The ``?2x``/``?6x`` remittance: joined, then split at the SEPA keys."""
    text, starts = join_subfields(subfields)
    loose = []
    for key, value in _sepa_keys(text, starts):
        if key == "":
            loose.append(value)
        elif key == "SVWZ":
            details.put("remittance", value)
        elif key == "EREF":
            details.put("end_to_end_id", value)
        elif key == "MREF":
            details.put("mandate_id", value)
        elif key == "KREF":
            details.put("customer_reference", value)
        elif key == "IBAN":
            details.put("counterparty_account", value)
        elif key == "BIC":
            details.put("counterparty_bic", value)
        elif key == "OAMT" and (amount := _plain_amount(value, currency)) is not None:
            details.instructed_amount = amount
        elif value.strip():
            details.complete = False  # CRED, ABWA, PURP, ...: no model field
    rest = " ".join(piece.strip() for piece in loose if piece.strip())
    if rest and details.remittance is None:
        details.put("remittance", rest)
    elif rest:
        details.complete = False


def _codes(text: str, details: Details) -> None:
    """The ``/CODE/value`` layout."""
    parts = _CODE.split(text)  # text before the first code, then code, value, code, ...
    if parts[0].strip():
        details.complete = False
    for code, value in zip(parts[1::2], parts[2::2], strict=True):
        value = value.removesuffix("/")  # ING ends each value with '/'
        if code in _CODE_FIELDS:
            details.put(_CODE_FIELDS[code], value)
        elif code == "CNTP":
            _counterparty(value, details)
        elif code == "REMI":
            _remittance(value, details)
        elif code in ("ORDP", "BENM"):
            account, _, rest = value.partition("/")
            details.put("counterparty_account", account)
            if rest.strip():
                details.complete = False
        elif code in ("OCMT", "CHGS"):
            _amount_code(code, value, details)
        elif value.strip():
            details.complete = False


# /CODE/ values that go into one field as they are.
_CODE_FIELDS = {
    "EREF": "end_to_end_id",
    "MARF": "mandate_id",
    "NAME": "counterparty_name",
    "IBAN": "counterparty_account",
    "BIC": "counterparty_bic",
    "TRTP": "proprietary_code",
    "CDTRREF": "creditor_reference",
}


def _counterparty(value: str, details: Details) -> None:
    """ING ``/CNTP/account/BIC/name/city/``."""
    parts = value.split("/")
    for name, part in zip(("counterparty_account", "counterparty_bic", "counterparty_name"),
                          parts, strict=False):
        details.put(name, part)
    if len(parts) > 4 or any(p.strip() for p in parts[3:]):
        details.complete = False  # the city, or more


_STRUCTURED = re.compile(r"STRD/(?P<issuer>[A-Z]*)/(?P<reference>.*)")


def _remittance(value: str, details: Details) -> None:
    """``/REMI/text``, ING ``/REMI/USTD//text/`` and ``/REMI/STRD/CUR/reference/``."""
    if value.startswith("USTD//"):
        details.put("remittance", value[6:])
    elif structured := _STRUCTURED.fullmatch(value):
        details.put("creditor_reference", structured["reference"])
    else:
        details.put("remittance", value)


def _amount_code(code: str, value: str, details: Details) -> None:
    """``/OCMT/EUR11,85/`` original amount, ``/CHGS/EUR0,50/`` charges (text after: unused)."""
    head, _, tail = value.partition("/")
    money = _money(head)
    if money is None or tail.strip():
        details.complete = False
    if money is not None and code == "OCMT":
        details.instructed_amount = money
    elif money is not None:
        details.charges.append(Charge(money))


def supplementary_details(text: str, details: Details) -> bool:
    """Read codes of :61: subfield 9 (``/OCMT/``, ``/CHGS/``, ``/TRCD/``) into ``details``.

    Returns True if the whole text went into fields.
    """
    matches = list(re.finditer(r"/(?P<code>OCMT|CHGS|TRCD)/", text))
    if not matches or matches[0].start() != 0:
        return False
    whole = True
    for this, after in zip(matches, [*matches[1:], None], strict=True):
        value = text[this.end() : after.start() if after else len(text)].removesuffix("/")
        if this["code"] == "TRCD":
            details.put("proprietary_code", value)
            continue
        probe = Details()
        _amount_code(this["code"], value, probe)
        whole = whole and probe.complete
        details.instructed_amount = probe.instructed_amount or details.instructed_amount
        details.charges.extend(probe.charges)
    return whole


def read_details(lines: list[str], currency: str, details: Details,
                 account: Account | None = None) -> None:
    """Read the lines of one entry's :86: field(s) into ``details``.

    ``account`` (the statement's own) helps ``mt940_dialects`` read some banks' layouts.
    """
    joined = "".join(lines)
    start = _SUBFIELDS_START.match(joined)
    if start:
        _subfields(joined, start["sep"], details, currency)
    elif _CODE.match(stripped := joined.lstrip()):
        _codes(stripped, details)
    elif (split := mt940_dialects.split_dialect(lines, account)) is not None:
        for name in ("gvc", "proprietary_code", "counterparty_name", "counterparty_account",
                     "counterparty_bic", "remittance"):
            details.put(name, getattr(split, name))
        details.complete = details.complete and split.complete
    else:
        details.complete = False
        details.put("creditor_reference", find_creditor_reference(" ".join(lines)))
        return
    if details.creditor_reference is None:
        details.put("creditor_reference", find_creditor_reference(details.remittance))


def is_structured(text: str) -> bool:
    """True if ``text`` would be read as one of the structured dialects or bank layouts."""
    return bool(_SUBFIELDS_START.match(text) or _CODE.match(text.lstrip())
                or mt940_dialects.split_dialect(text.splitlines()) is not None)


__all__ = [
    "CODES",
    "Details",
    "find_creditor_reference",
    "is_structured",
    "is_valid_creditor_reference",
    "join_subfields",
    "read_details",
    "supplementary_details",
]
