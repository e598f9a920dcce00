"""The last free-text ``:86:`` layouts of ``parsers.mt940_dialects``: ASN/SNS card lines (the
text opens with an empty line) and Westpac's BankRec narrative; and, over every layout, that
arbitrary ``:86:`` text never raises and never loses a character. Fixtures are written here
in each bank's shape, with invented names, places and numbers."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import parsers
from parsers import mt940_details
from parsers.model import Account
from parsers.mt940_dialects import Split, bank_of, split_dialect
from tests.parsers.mt940_layouts import DATA, corpus_entries, details, fields, non_blank

BLANK = " " * 65


# -- ASN, SNS, RegioBank card lines: the counterparty line is empty ----------------------

def card(merchant: str, rest: str) -> str:
    """A card line as SNS writes it: the merchant padded to 22 characters, then the rest."""
    return merchant.ljust(22) + rest


def test_sns_card_line_names_the_merchant() -> None:
    first = card("Groenteboer De Wilg", ">UTRECHT  04.11.2025 09U41 KV012 8PL3QX   M")
    assert len(first) == 65  # full: "M" and "CC:5411" are one word cut by the width
    got = details(" ", BLANK, first, "CC:5411 Contactloze betaling".ljust(65), BLANK)
    assert fields(got) == ("Groenteboer De Wilg", None,
                           "Groenteboer De Wilg >UTRECHT 04.11.2025 09U41 KV012 8PL3QX "
                           "MCC:5411 Contactloze betaling")
    assert got.complete


def test_sns_card_line_without_padding_lines() -> None:
    got = details("", "Fietsenwinkel Oost >ZWOLLE 14.02.2024 08U31 KV7 1AB2CD")
    assert got.counterparty_name == "Fietsenwinkel Oost" and got.complete


@pytest.mark.parametrize("lines", [
    ("", BLANK, "Kosten gebruik betaalrekening inclusief 1 betaalpas"),  # a fee
    (" ", BLANK, "Uw pas verloopt binnenkort.".ljust(65)),  # a notice
    ("", "Groenteboer De Wilg >UTRECHT 04.11.2025"),  # no time: not the whole shape
    ("", "Groenteboer De Wilg UTRECHT 04.11.2025 09U41 KV012"),  # no '>' before the place
    ("", "> UTRECHT 04.11.2025 09U41 KV012"),  # no merchant
    ("", BLANK, BLANK),  # nothing at all
])
def test_other_texts_opening_with_an_empty_line_stay_whole(lines: tuple[str, ...]) -> None:
    got = details(*lines)
    assert fields(got) == (None, None, None) and not got.complete


def test_a_card_line_needs_the_empty_first_line() -> None:
    # without it, the first line would be the counterparty's (IBAN and name): not this shape
    got = details(card("Groenteboer De Wilg", ">UTRECHT  04.11.2025 09U41 KV012 8PL3QX"))
    assert fields(got) == (None, None, None) and not got.complete


def test_sns_card_golden_fixture() -> None:
    statement, = parsers.parse((DATA / "nl-sns-card-lines.sta").read_bytes(), source="sns")
    assert [(e.counterparty_name, e.counterparty_account) for e in statement.entries] == [
        ("Groenteboer De Wilg", None), ("Geldautomaat Neude", None),
        ("j. de boer", "NL44RABO0123456789"), (None, None)]
    assert [e.additional_info is None for e in statement.entries] == [True, True, True, False]
    assert statement.entries[1].remittance == (
        "Geldautomaat Neude >UTRECHT 04.11.2025 12U05 GA7Q1 3ZK8RT MCC:6011")


_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=0x17F, exclude_characters=">",
                              exclude_categories=["Cc", "Cs", "Zs"]), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(merchant=st.lists(_NAME, min_size=1, max_size=3).map(" ".join),
       place=st.lists(_NAME, min_size=1, max_size=2).map(" ".join),
       tail=st.lists(_NAME, max_size=4).map(" ".join), pad=st.booleans())
def test_sns_card_loses_no_character(merchant: str, place: str, tail: str,
                                     pad: bool) -> None:
    line = card(merchant, f">{place} 01.02.2025 10U20 KV1 {tail}".rstrip())
    lines = [" ", *([BLANK] if pad else []), *[line[i:i + 65] for i in range(0, len(line), 65)]]
    split = split_dialect(lines)
    assert split is not None and split.complete
    assert split.counterparty_name == merchant
    assert split.remittance is not None and non_blank(line) == non_blank(split.remittance)


def test_corpus_sns_card_lines_name_the_merchant() -> None:
    entries = corpus_entries("oca-bsi__test-sns.940")
    cards = [e for e in entries if e.bank_transaction_code
             and e.bank_transaction_code.swift == "NBEA"]
    assert [e.counterparty_name for e in cards] == ["Jumbo Wijchen B.V.", "Albert Heijn 1370"]
    assert all(e.additional_info is None and e.remittance and "MCC:5411" in e.remittance
               for e in cards)
    # the notice (NDIV) that also opens with an empty line stays whole
    notices = [e for e in entries if e.bank_transaction_code
               and e.bank_transaction_code.swift == "NDIV"]
    assert len(notices) == 1 and notices[0].remittance is None
    assert notices[0].additional_info and "Mobiel betalen" in notices[0].additional_info


# -- Westpac (BankRec MT940) -------------------------------------------------------------

WESTPAC = Account(number="032000123456")  # :25: is the BSB and the account number


def test_westpac_kind_and_serial_then_narrative() -> None:
    got = details("DEPOSIT-OSKO PAYMENT    4410021", "K WHITFORD INV 2025-0456 GARDEN SVC",
                  account=WESTPAC)
    # the name and the description are not marked apart: both stay in the remittance
    assert fields(got) == (None, None, "K WHITFORD INV 2025-0456 GARDEN SVC")
    assert not got.complete  # the kind and the serial have no field: the text stays too


@pytest.mark.parametrize("first", ["WITHDRAWAL    4410022", "DEPOSIT 4410023",
                                   "WITHDRAWAL MOBILE 4410024", "DEPOSIT-OSKO PAYMENT 4410025"])
def test_westpac_kinds(first: str) -> None:
    got = details(first, "HARBOUR STATIONERY", account=WESTPAC)
    assert got.remittance == "HARBOUR STATIONERY"


@pytest.mark.parametrize(("lines", "account"), [
    (("DEPOSIT-PAYMENT    RETURN", "4410019 31 Oct 2025 AC04 Account closed"), WESTPAC),
    (("DEPOSIT-OSKO PAYMENT 4410021",), WESTPAC),  # no narrative
    (("DEPOSIT-OSKO PAYMENT 441002", "K WHITFORD"), WESTPAC),  # six digits
    (("DEPOSIT 4410021 K WHITFORD",), WESTPAC),  # one line
    (("DEPOSIT-OSKO PAYMENT 4410021", "K WHITFORD"), Account(number="062000123456")),
    (("DEPOSIT-OSKO PAYMENT 4410021", "K WHITFORD"), None),
])
def test_westpac_shape_not_all_there_stays_whole(lines: tuple[str, ...],
                                                 account: Account | None) -> None:
    assert fields(details(*lines, account=account)) == (None, None, None)


def test_westpac_by_bic() -> None:
    account = Account(number="123456789", bic="WPACNZ2W")
    assert bank_of(account) == "WPAC"
    assert details("WITHDRAWAL 4410022", "RENT", account=account).remittance == "RENT"


def test_westpac_golden_fixture() -> None:
    statement, = parsers.parse((DATA / "au-westpac-bankrec.sta").read_bytes(), source="w")
    assert [e.remittance for e in statement.entries] == [
        "K WHITFORD INV 2025-0456 GARDEN SVC", "HARBOUR STATIONERY OFFICE SUPPLIES", None]
    # the whole :86: text is kept beside: kind and serial (and the return) have no field
    assert all(e.additional_info and "4410" in e.additional_info for e in statement.entries)
    # {2:I940WIBSXXXXN}, the short receiver Westpac's guide shows, names a bank: no flag
    assert statement.flags == ()


# -- every layout: arbitrary :86: text ---------------------------------------------------

_PIECES = st.sampled_from([
    "GIRO   ", "1234567 ", "NL44RABO0123456789 ", "0456789012 ", "P1234 ", "41.23.45.678  ",
    "BEA   NR:AB12 ", "03.04.12/17.45 ", ",PAS042", "BEA, Betaalpas ", "NR:7Q, 14.02.19/08:31",
    "000>100000>20", ">10", ">21", ">31", ">32", "RABONL2U", "911 ", "222 ", "; Z RACH.: ",
    "; OD: ", "; TYT.: ", "; TNR: ", "; ID IPH: ", "64114020040000001234567890",
    ">UTRECHT ", "04.11.2025 09U41 ", "KV1 ", "MCC:5411", "DEPOSIT-OSKO PAYMENT ",
    "WITHDRAWAL ", "4410021", "3409 0012345678", " " * 30, " ", "-", "/", "?",
])
_FREE = st.text(st.characters(min_codepoint=32, max_codepoint=0x17F,
                              exclude_categories=["Cc", "Cs"]), max_size=12)
_TEXT_LINE = st.lists(st.one_of(_PIECES, _FREE), max_size=6).map(lambda p: "".join(p)[:65])
_F = st.builds(str.__add__, st.sampled_from("aZ9.&>;/-é"), _FREE)  # not blank
# each layout's shape with arbitrary text in its free parts, so that every reader is reached
_SHAPED = st.one_of(
    st.tuples(_F, _F, _F).map(lambda f: ["", BLANK, f"{f[0]} >{f[1]} 01.02.2025 10U20 {f[2]}"]),
    st.tuples(_F, _F).map(lambda f: ["DEPOSIT-OSKO PAYMENT    4410021", f[0], f[1]]),
    st.tuples(_F, _F).map(lambda f: [f"NL44RABO0123456789 {f[0]}", BLANK, f[1]]),
    st.tuples(_F, _F).map(lambda f: [f"0456789012 {f[0]}", f[1]]),
    st.tuples(_F, _F).map(lambda f: [f"GIRO   1234567 {f[0]}", f[1]]),
    _F.map(lambda f: [f"BEA   NR:AB12 03.04.12/17.45 {f},PAS042"]),
    st.tuples(_F, _F).map(lambda f: [f"000>100000000000>20{f[0]}>310212345678>32{f[1]}"]),
    st.tuples(_F, _F).map(lambda f: [f"911 ; Z RACH.: 64114020040000001234567890; OD: {f[0]}",
                                     f"; TYT.: {f[1]}"]),
    st.tuples(_F, _F).map(lambda f: [f[0], "3409 0012345678" if len(f[1]) % 2 else f[1]]),
)
_ACCOUNTS = st.sampled_from([None, Account(number="7654321098", bic="DABADKKK"), WESTPAC,
                             Account(iban="NL22SNSB0912345678")])
_MBANK_KEYS = re.compile(r"ID IPH:|Z RACH\.:|NA RACH\.:|OD:|DO:|DLA:|TYT\.:|TNR:|;")


def layout_marks(split: Split, text: str) -> Counter[str]:
    """What a layout is made of and drops: its tags and markers (the module docstring)."""
    if split.dialect == "abn-amro" and text.startswith("GIRO"):
        return non_blank("GIRO")
    if split.dialect == "mbank":
        return non_blank("".join(_MBANK_KEYS.findall(text)))
    if split.dialect == "triodos":
        parts = re.split(r"(>\d\d)", text.replace("\n", "")[3:])
        marks = "".join(parts[1::2]) + "".join(
            value for tag, value in zip(parts[1::2], parts[2::2], strict=True)
            if tag == ">10" and not value.strip("0 "))
        return non_blank(marks)
    return Counter()


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_TEXT_LINE, min_size=1, max_size=6) | _SHAPED, account=_ACCOUNTS)
def test_any_text_never_raises_and_a_complete_split_loses_nothing(
        lines: list[str], account: Account | None) -> None:
    split = split_dialect(lines, account)
    event(f"{split.dialect if split else 'no layout'}, complete: {bool(split and split.complete)}")
    if split is None or not split.complete:
        return  # the caller keeps the whole text: the property below
    kept = "".join(v or "" for v in (split.gvc, split.proprietary_code, split.counterparty_name,
                                     split.counterparty_account, split.counterparty_bic,
                                     split.remittance))
    text = "\n".join(lines)
    assert non_blank(text) <= non_blank(kept) + layout_marks(split, text)


def statement(lines: list[str], account: str) -> bytes:
    body = [":20:P", f":25:{account}", ":28C:1", ":60F:C251104EUR10,00",
            ":61:2511041104C1,00NTRFNONREF", f":86:{lines[0]}", *lines[1:],
            ":62F:C251104EUR11,00", "-"]
    return "".join(line + "\r\n" for line in body).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(lines=(st.lists(_TEXT_LINE, min_size=1, max_size=6) | _SHAPED).filter(
           lambda lines: not any(line.startswith((":", "-", "{")) for line in lines)),
       account=st.sampled_from(["NL22SNSB0912345678", "032000123456", "0398765432"]))
def test_any_86_text_through_the_parser_keeps_every_character(lines: list[str],
                                                              account: str) -> None:
    entry, = parsers.parse(statement(lines, account), source="p.sta")[0].entries
    text = "\n".join(lines)
    own = Account(iban=account) if account.startswith("NL") else Account(number=account)
    split = split_dialect(lines, own)
    event(split.dialect if split else "no layout")
    if split is None and mt940_details.is_structured(text):
        return  # the German ?nn or the /CODE/ layout: not this module's (test_mt940.py)
    code = entry.bank_transaction_code
    kept = "".join(v or "" for v in (
        entry.counterparty_name, entry.counterparty_account, entry.counterparty_bic,
        entry.remittance, entry.additional_info, code and code.gvc, code and code.proprietary))
    marks = layout_marks(split, text) if split and split.complete else Counter()
    assert non_blank(text) <= non_blank(kept) + marks
