"""Field ``:86:`` in the free-text layouts of banks that use neither ``?nn`` subfields nor
``/CODE/`` values, split into counterparty name, account and remittance.

Each layout is recognised from the text itself (and, where the text alone is ambiguous, from
the bank of the statement's account), and only when its whole shape is there: anything else
stays whole in ``additional_info`` as before. A recognised text loses no character: what has
no field of its own inside a line (the terminal and time of a card payment) stays in the
remittance; a part with no field at all (mBank's ``TNR``, a Danske address, a Triodos
transaction number, Westpac's serial number) leaves ``complete`` False, so the whole text is
kept in ``additional_info`` as well. Dropped are only runs of blanks (column padding, made one) and
what the layout is made of: subfield tags, ABN AMRO's word ``GIRO``, a Triodos transaction
number of zeros, and the statement's own account where Triodos repeats it.

- **ING (old format, before 2014)**: the first line is the counterparty's 10-digit account
  (``P`` and up to 9 digits for a Postbank giro account), one blank and its name; the lines
  after it are the remittance. A single line holds no name boundary: after the account it
  is all remittance.
- **ASN, SNS, RegioBank**: the first line is the counterparty's IBAN (valid check digits),
  one blank and its name; the remittance follows in lines of 65 characters, cut mid-word
  where the width ran out (a full line joins the next directly, a shorter one with a blank).
  ING's old lines are joined the same way. A card payment leaves the first line empty; the
  remittance is then ``merchant (padded) >PLACE dd.mm.yyyy HHUMM terminal id MCC:nnnn``
  (often ``Contactloze betaling``): the merchant is the counterparty, the whole line the
  remittance. Other texts opening with an empty line (fees, notices) stay whole.
- **ABN AMRO (old format)**: two columns of 32 characters. ``GIRO`` and a giro number, or a
  bank account (``12.34.56.789`` or 9-10 digits), then the name, padded; what follows is the
  remittance. Card lines: ``BEA``/``GEA`` (payment terminal, cash machine), ``NR:`` the
  terminal, the date and time, the merchant, ``,PAS`` and the card number; the newer form
  ``BEA, Betaalpas  merchant,PAS123 NR:..., date/time  place``. The merchant is the
  counterparty; the whole line is the remittance.
- **mBank** (PL): a 3-digit transaction code and kind, then ``; KEY: value`` parts: ``Z RACH.``
  / ``NA RACH.`` the account money came from / went to (26-digit NRB, written here as its
  ``PL`` IBAN), ``OD`` / ``DO`` / ``DLA`` the name (and address: not marked apart),
  ``TYT.`` the title (remittance); ``ID IPH`` and ``TNR`` have no field, so the text is also
  kept in ``additional_info``. Lines join as ASN's.
- **Danske Bank** (accounts whose BIC is ``DABA...``): the first line is the posting text
  (the remittance); after it either the counterparty's registration and account number
  (``4200 1234567890``) or its name, then its address (no field: the text stays too).
- **Triodos**: German-like subfields with ``>``: a 3-digit code, ``>10`` transaction number
  (zeros: none), ``>20``-``>29`` description in 27-character subfields cut mid-word, ``>31``
  an account (often the statement's own, repeated), ``>32``/``>33`` a name. A transfer's
  description opens with the counterparty's BIC and IBAN, then its name and the remittance
  with nothing between them: they stay together in the remittance. A card payment's
  (``merchant - TERMINAL id - date time - PASNR. ...``) merchant is the counterparty.
- **Westpac** (AU; statement account of a Westpac BSB, ``03``/``73``, or BIC ``WPAC``): the
  first line is the transaction's kind (``DEPOSIT``, ``WITHDRAWAL-OSKO PAYMENT``, ...) and its
  7-digit serial number, the next its narrative: the payer's or payee's name and the
  description, with nothing between them. Read from one public sample of Westpac's BankRec
  MT940 (no bank guide describing the field was found), so only that shape: the narrative
  is the remittance; the kind and serial have no field (the text stays too). Returns and
  reversals (``DEPOSIT-PAYMENT RETURN``, then the original serial, date and ISO reason code)
  stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from parsers import mt940_details
from parsers.iban import normalize_iban
from parsers.model import Account


@dataclass(slots=True)
class Split:
    """What one bank's free-text ``:86:`` says, by model field."""

    dialect: str
    gvc: str | None = None
    proprietary_code: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_bic: str | None = None
    remittance: str | None = None
    complete: bool = True


def _blanks(text: str) -> str:
    """Runs of blanks (column padding, tabs) as one blank; nothing else changes."""
    return " ".join(text.split())


def _text(lines: list[str]) -> str:
    return _blanks(" ".join(lines))


_ACCOUNT_FIRST = re.compile(r"(?P<account>\d{10}|P\d{1,9}|[A-Z]{2}\d{2}[A-Z0-9]{11,30}) "
                            r"(?P<rest>\S.*)")
LINE_WIDTH = 65


def _lines(lines: list[str]) -> str:
    """Lines of a fixed-width field joined: directly after a line that reaches the full 65
    characters (cut where the width ran out), with a blank after a shorter one."""
    pieces: list[str] = []
    full = False
    for line in (line.rstrip() for line in lines):
        if line and pieces and not full:
            pieces.append(" ")
        pieces.append(line)
        full = len(line) >= LINE_WIDTH
    return _blanks("".join(pieces))


def _account_then_name(lines: list[str], account: Account | None) -> Split | None:
    match = _ACCOUNT_FIRST.fullmatch(lines[0].rstrip())
    if match is None:
        return None
    number = match["account"]
    iban = normalize_iban(number) if number[:2].isalpha() else None
    if number[:2].isalpha() and iban is None:
        return None  # IBAN-shaped, wrong check digits: not this layout's account
    after = lines[1:] if any(line.strip() for line in lines[1:]) else []
    dialect = "account-name"  # ING before 2014; ASN, SNS, RegioBank
    if not after and iban is None:
        # ING's single line: no name boundary, all of it is the remittance
        return Split(dialect, counterparty_account=number, remittance=_blanks(match["rest"]))
    return Split(dialect, counterparty_account=iban or number,
                 counterparty_name=_blanks(match["rest"]), remittance=_lines(after) or None)


_ABN_ACCOUNT_FIRST = (
    re.compile(r"GIRO +(?P<account>\d{1,9}) +(?P<name>\S.*?)(?: {2,}(?P<rest>\S.*))?"),
    re.compile(r"(?P<account>\d\d\.\d\d\.\d\d\.\d{3}|\d{9,10}) {2,}(?P<name>\S.*?)"
               r"(?: {2,}(?P<rest>\S.*))?"),
)
_ABN_CARD = re.compile(
    r"(?P<kind>BEA|GEA) +NR:(?P<terminal>\S+) +(?P<when>\d\d\.\d\d\.\d\d/\d\d[.:]\d\d)"
    r" +(?P<merchant>\S.*?) *,PAS ?(?P<card>\d+)")
_ABN_CARD_NEW = re.compile(
    r"(?P<kind>BEA|GEA|ECOM), (?P<means>[A-Za-z][A-Za-z ]*?) +(?P<merchant>\S.*?) *,PAS ?"
    r"(?P<card>\d+) +NR:(?P<terminal>[^,\s]+), *(?P<when>\d\d\.\d\d\.\d\d/\d\d[.:]\d\d)"
    r"(?: +(?P<place>\S.*))?")


def _abn_amro(lines: list[str], account: Account | None) -> Split | None:
    first = lines[0].rstrip()
    if first.startswith(("BEA", "GEA", "ECOM")):
        text = _text(lines)
        card = _ABN_CARD.fullmatch(text) or _ABN_CARD_NEW.fullmatch(text)
        if card is None:
            return None
        return Split("abn-amro-card", counterparty_name=card["merchant"], remittance=text)
    if not (first[:1].isdigit() or first.startswith("GIRO")):
        return None  # checked first: most free text is neither
    match = _ABN_ACCOUNT_FIRST[0].fullmatch(first) or _ABN_ACCOUNT_FIRST[1].fullmatch(first)
    if match is None:
        return None
    remittance = _text([match["rest"] or "", *lines[1:]])
    return Split("abn-amro", counterparty_account=match["account"],
                 counterparty_name=_blanks(match["name"]), remittance=remittance or None)


_TRIODOS_START = re.compile(r"(?P<gvc>\d{3})>\d{2}")
_TRIODOS_TAG = re.compile(r">(\d{2})")
_TRIODOS_CARD = re.compile(r"(?P<merchant>\S.*?) - TERMINAL \S+ - \d\d-\d\d-\d{4} \d\d:\d\d"
                           r" - PASNR\. .*")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def _is_own(value: str, account: Account | None) -> bool:
    """``>31`` naming the statement's own account (Triodos repeats it there)."""
    digits = value.strip().lstrip("0")
    own = [(account.iban or ""), (account.number or "")] if account else []
    return bool(digits) and any(o.replace(" ", "").endswith(digits) for o in own if o)


def _triodos(lines: list[str], account: Account | None) -> Split | None:
    text = "".join(lines).rstrip()
    start = _TRIODOS_START.match(text)
    if start is None:
        return None
    parts = _TRIODOS_TAG.split(text[3:])
    split = Split("triodos", gvc=start["gvc"])
    description: list[str] = []
    names: list[str] = []
    for code, value in zip(parts[1::2], parts[2::2], strict=True):
        number = int(code)
        if 20 <= number <= 29:
            description.append(value)
        elif number == 31 and not _is_own(value, account):
            split.counterparty_account = _blanks(value) or None
        elif number in (32, 33):
            names.append(value)
        elif number == 31:
            pass  # the statement's own account, as in :25:
        elif number == 10 and not value.strip("0 "):
            pass  # no transaction number: zeros
        elif value.strip():
            split.complete = False  # a transaction number, a subfield of no known use
    if (len(description) >= 2 and _BIC.fullmatch(description[0].strip())
            and (iban := normalize_iban(description[1])) is not None):
        split.counterparty_bic = description[0].strip()
        split.counterparty_account = split.counterparty_account or iban
        if split.counterparty_account != iban:
            split.complete = False
        description = description[2:]  # the name, then the remittance, unmarked between
    flow = _blanks(mt940_details.join_subfields(description)[0])
    split.remittance = flow or None
    if names:
        split.counterparty_name = _blanks("".join(names))
    elif card := _TRIODOS_CARD.fullmatch(flow):
        split.counterparty_name = card["merchant"]
    return split


_MBANK_HEAD = re.compile(r"(?P<code>\d{3}) (?P<head>[^;]*)")
_MBANK_KEY = re.compile(r" ?(?P<key>ID IPH|Z RACH\.|NA RACH\.|OD|DO|DLA|TYT\.|TNR): ?(?P<value>.*)",
                        re.DOTALL)
_MBANK_FIELDS = {"Z RACH.": "counterparty_account", "NA RACH.": "counterparty_account",
                 "OD": "counterparty_name", "DO": "counterparty_name",
                 "DLA": "counterparty_name", "TYT.": "remittance"}


def _mbank(lines: list[str], account: Account | None) -> Split | None:
    if not (lines[0][:3].isdigit() and lines[0][3:4] == " "):
        return None
    text = _lines(lines)
    head, *segments = text.split(";")
    start = _MBANK_HEAD.fullmatch(head)
    found = [_MBANK_KEY.fullmatch(segment) for segment in segments if segment.strip()]
    keyed = [match for match in found if match is not None]
    if start is None or not keyed or len(keyed) != len(found):
        return None
    split = Split("mbank", proprietary_code=start["code"])
    # the transaction's kind (TRANSAKCJA COLLECT), its IPH id and TNR have no field
    split.complete = not start["head"].strip()
    for match in keyed:
        name, value = _MBANK_FIELDS.get(match["key"]), _blanks(match["value"])
        if name is None or getattr(split, name) is not None:
            split.complete = split.complete and not value
            continue
        if name == "counterparty_account" and re.fullmatch(r"\d{26}", value):
            value = normalize_iban("PL" + value) or value  # NRB: the IBAN less "PL"
        setattr(split, name, value or None)
    return split


_DANSKE_ACCOUNT = re.compile(r"\d{4} \d{6,11}")  # registration number and account


def _danske(lines: list[str], account: Account | None) -> Split | None:
    if account is None or bank_of(account) != "DABA":
        return None
    kept = [_blanks(line) for line in lines if line.strip()]
    if len(kept) == 1 and _DANSKE_ACCOUNT.fullmatch(kept[0]):
        return Split("danske", counterparty_account=kept[0])
    split = Split("danske", remittance=kept[0])
    rest = kept[1:]
    if len(rest) == 1 and _DANSKE_ACCOUNT.fullmatch(rest[0]):
        split.counterparty_account = rest[0]
    elif rest:
        split.counterparty_name = rest[0]
        split.complete = len(rest) == 1  # the address after the name has no field
    return split


_SNS_CARD = re.compile(r"(?P<merchant>[^>]*[^>\s]) ?>(?P<place>[^>]*?\S) \d\d\.\d\d\.\d{4}"
                       r" \d\dU\d\d(?: \S.*)?")


def _sns_card(lines: list[str], account: Account | None) -> Split | None:
    """ASN, SNS, RegioBank card payment: the counterparty line empty, then the card line."""
    if lines[0].strip() or not any(line.strip() for line in lines):
        return None
    text = _lines(lines)
    card = _SNS_CARD.fullmatch(text)
    if card is None:
        return None  # a fee, a notice: no layout
    return Split("sns-card", counterparty_name=card["merchant"], remittance=text)


_WESTPAC_FIRST = re.compile(r"(?:DEPOSIT|WITHDRAWAL)(?:[- ][A-Z]+(?: [A-Z]+)*)? +\d{7}")
_WESTPAC_ACCOUNT = re.compile(r"(?:03|73)\d{10}")  # BSB (6 digits) and account number


def _westpac(lines: list[str], account: Account | None) -> Split | None:
    if not lines[0].startswith(("DEPOSIT", "WITHDRAWAL")) or account is None:
        return None
    if not (bank_of(account) == "WPAC"
            or _WESTPAC_ACCOUNT.fullmatch((account.number or "").replace(" ", ""))):
        return None
    rest = [line for line in lines[1:] if line.strip()]
    if not rest or _WESTPAC_FIRST.fullmatch(lines[0].rstrip()) is None:
        return None
    # the kind and the serial number have no field: the whole text is kept as well
    return Split("westpac", remittance=_text(rest), complete=False)


Reader = Callable[[list[str], "Account | None"], "Split | None"]

# Most specific first: the layouts told by the account's bank, then the ABN AMRO account
# line (two blanks) before ING's (one).
_READERS: tuple[Reader, ...] = (_danske, _westpac, _triodos, _abn_amro, _mbank,
                                _account_then_name)


_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{4}")


def bank_of(account: Account) -> str | None:
    """The account's bank as four characters: its BIC's bank code, or the IBAN's (or an
    IBAN-shaped number's) first four after the check digits (``INGB``, ``TRIO``)."""
    if account.bic:
        return account.bic[:4].upper()
    ident = (account.iban or account.number or "").replace(" ", "").upper()
    return ident[4:8] if _IBAN_SHAPE.match(ident) else None


def split_dialect(lines: list[str], account: Account | None = None) -> Split | None:
    """The ``:86:`` ``lines`` split by the first bank layout they have, or None.

    ``account`` is the statement's own account, when known: some layouts repeat it, and
    some are told apart by its bank (``bank_of``).
    """
    if not lines:
        return None
    if not lines[0].strip():
        return _sns_card(lines, account)  # the only layout opening with an empty line
    for reader in _READERS:
        split = reader(lines, account)
        if split is not None:
            return split
    return None


__all__ = ["Split", "bank_of", "split_dialect"]
