"""The free-text ``:86:`` layouts of banks (``parsers.mt940_dialects``): what each puts into
the counterparty name, account and remittance, that nothing of the text is lost, and that a
text of no known layout stays whole in ``additional_info``. Fixtures are written here in each
bank's shape, with invented names, accounts and texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parsers
from parsers import mt940_details
from parsers.model import Account
from parsers.mt940_dialects import bank_of, split_dialect
from tests.parsers.mt940_layouts import DATA, corpus_entries, details, fields, non_blank


def loses_nothing(lines: list[str], got: mt940_details.Details, marker: str = "") -> bool:
    """Every non-blank character of the :86: lines is in some field, as often as there;
    but the layout's own ``marker`` (ABN AMRO's ``GIRO``), which the fields replace."""
    kept = "".join(v or "" for v in (got.counterparty_name, got.counterparty_account,
                                     got.counterparty_bic, got.remittance))
    return non_blank("".join(lines)) <= non_blank(kept) + non_blank(marker)


# -- ING, old format ---------------------------------------------------------------------

def test_ing_old_account_and_name_then_remittance_lines() -> None:
    got = details("0456789012 Bakkerij De Korenschoof", "UTRECHT Factuur 2013-118",
                  "maart levering")
    assert fields(got) == ("Bakkerij De Korenschoof", "0456789012",
                           "UTRECHT Factuur 2013-118 maart levering")
    assert got.complete


def test_ing_old_postbank_giro_account() -> None:
    got = details("P1234567 Stichting Groene Daken", "Donatie maart")
    assert fields(got) == ("Stichting Groene Daken", "P1234567", "Donatie maart")


def test_ing_old_single_line_has_no_name_boundary() -> None:
    got = details("0456789012 Retour statiegeld 2013-119")
    assert fields(got) == (None, "0456789012", "Retour statiegeld 2013-119")
    assert got.complete


@pytest.mark.parametrize("lines", [
    (" RC AFREKENING BETALINGSVERKEER", "ING Bank N.V. tarifering"),  # leading blank
    ("045678901 short account",),  # 9 digits and one blank: neither ING nor ABN AMRO
    ("Factuur 0456789012 betaald",),
])
def test_texts_of_no_layout_stay_whole(lines: tuple[str, ...]) -> None:
    got = details(*lines)
    assert fields(got) == (None, None, None)
    assert not got.complete


_WORD = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")),
                min_size=1, max_size=12)
_LINE = st.lists(_WORD, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(account=st.from_regex(r"\d{10}|P\d{1,9}", fullmatch=True), name=_LINE,
       after=st.lists(_LINE, max_size=3))
def test_ing_old_loses_no_character(account: str, name: str, after: list[str]) -> None:
    lines = [f"{account} {name}", *after]
    got = details(*lines)
    assert got.complete and got.counterparty_account == account
    assert loses_nothing(lines, got)


def test_ing_old_golden_fixture_reads_every_layout() -> None:
    statement, = parsers.parse((DATA / "nl-ing-old-format.sta").read_bytes(), source="ing")
    assert [(e.counterparty_name, e.counterparty_account) for e in statement.entries] == [
        ("Bakkerij De Korenschoof", "0456789012"), ("Stichting Groene Daken", "P1234567"),
        (None, "0456789012"), (None, None)]
    assert statement.entries[3].additional_info == (
        " RC AFREKENING BETALINGSVERKEER\nING Bank N.V. tarifering")


def test_bank_of_the_statement_account() -> None:
    assert bank_of(Account(iban="NL20INGB0001234567")) == "INGB"
    assert bank_of(Account(number="1234567890", bic="DABADKKK")) == "DABA"
    assert bank_of(Account(number="0001234567")) is None


def test_no_lines_no_layout() -> None:
    assert split_dialect([]) is None
    assert split_dialect(["", "0456789012 Naam"]) is None


# -- the real files of the corpus (skipped without it) -----------------------------------

def test_corpus_ing_old_format_now_names_accounts() -> None:
    entries = corpus_entries("jejik-mt940__ing-dos.txt")
    read = [e for e in entries if e.counterparty_account]
    assert len(read) == 5 and all(e.additional_info is None for e in read)
    assert sum(1 for e in read if e.counterparty_name) == 1  # one has a second line
    # the bank's own charge and a line opening with a blank stay whole, as before
    assert sum(1 for e in entries if e.additional_info) == 2


# -- ABN AMRO, old format ----------------------------------------------------------------

def test_abn_amro_giro_column_layout() -> None:
    got = details("GIRO   7654321 VERENIGING DE ZWALUW    BETALINGSKENM.  000000012345678",
                  "0123456789                       CONTRIBUTIE 2012 LID 88",
                  "INCL. 0,00 BTW")
    assert fields(got) == ("VERENIGING DE ZWALUW", "7654321",
                           "BETALINGSKENM. 000000012345678 0123456789 CONTRIBUTIE 2012 LID 88 "
                           "INCL. 0,00 BTW")
    assert got.complete


def test_abn_amro_bank_account_with_points() -> None:
    got = details("41.23.45.678                    GARAGE VAN DIJK")
    assert fields(got) == ("GARAGE VAN DIJK", "41.23.45.678", None)


def test_abn_amro_card_line_old() -> None:
    got = details("BEA   NR:AB12CD   03.04.12/17.45 BOEKHANDEL HET BLAUWE HUIS,PAS042")
    assert fields(got) == ("BOEKHANDEL HET BLAUWE HUIS", None,
                           "BEA NR:AB12CD 03.04.12/17.45 BOEKHANDEL HET BLAUWE HUIS,PAS042")


def test_abn_amro_card_line_new() -> None:
    got = details("BEA, Betaalpas                   Fietsenmaker Oost,PAS117",
                  "NR:7QX2AB, 14.02.19/08:31        ZWOLLE")
    assert got.counterparty_name == "Fietsenmaker Oost"
    assert got.remittance == ("BEA, Betaalpas Fietsenmaker Oost,PAS117 NR:7QX2AB, "
                              "14.02.19/08:31 ZWOLLE")


def test_abn_amro_storno_text_stays_whole() -> None:
    got = details("STORNO GIRO   428428 TERUGBOEKING")
    assert fields(got) == (None, None, None) and not got.complete


_CAPS = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-/&'"), min_size=1,
                max_size=10)


@settings(max_examples=60, deadline=None)
@given(merchant=st.lists(_CAPS, min_size=1, max_size=4).map(" ".join),
       terminal=st.from_regex(r"[A-Z0-9]{4,8}", fullmatch=True),
       card=st.from_regex(r"\d{1,4}", fullmatch=True), kind=st.sampled_from(["BEA", "GEA"]))
def test_abn_amro_card_line_loses_no_character(merchant: str, terminal: str, card: str,
                                                kind: str) -> None:
    lines = [f"{kind}   NR:{terminal}   01.02.13/10.20 {merchant},PAS{card}"]
    got = details(*lines)
    assert got.complete and got.counterparty_name == merchant
    assert loses_nothing(lines, got)


@settings(max_examples=60, deadline=None)
@given(giro=st.from_regex(r"\d{1,7}", fullmatch=True),
       name=st.lists(_CAPS, min_size=1, max_size=3).map(" ".join),
       after=st.lists(_LINE, max_size=3))
def test_abn_amro_giro_loses_no_character(giro: str, name: str, after: list[str]) -> None:
    lines = [f"GIRO   {giro} {name}", *after]
    got = details(*lines)
    assert got.complete and (got.counterparty_account, got.counterparty_name) == (giro, name)
    assert loses_nothing(lines, got, marker="GIRO")


def test_corpus_abn_amro_card_and_account_lines() -> None:
    entries = corpus_entries("jejik-mt940__abnamro.txt")
    assert all(e.counterparty_name and e.additional_info is None for e in entries)
    assert sum(1 for e in entries if e.counterparty_account) == 2  # a giro, an account


# -- Triodos (">" subfields) -------------------------------------------------------------

TRIODOS = Account(number="0398765432", bic="TRIODOSBANK")


def triodos(*lines: str) -> mt940_details.Details:
    return details(*lines, account=TRIODOS)


def test_triodos_transfer_bic_and_iban_then_name_and_remittance() -> None:
    got = triodos("000>100000000000", ">20RABONL2U", ">21NL44RABO0123456789",
                  ">22J. DE VRIES BUURTMOESTUIN>23 BIJDRAGE JUNI", ">310398765432")
    assert (got.counterparty_bic, got.counterparty_account) == ("RABONL2U",
                                                                "NL44RABO0123456789")
    # the name and the remittance follow each other with nothing between: both stay there
    assert got.remittance == "J. DE VRIES BUURTMOESTUIN BIJDRAGE JUNI"
    assert got.counterparty_name is None and got.complete and got.gvc == "000"


def test_triodos_card_payment_names_the_merchant() -> None:
    got = triodos("000>100000000000",
                  ">20NATUURWINKEL KLAVER - DEVEN>21TER - TERMINAL 7KQ2ZP - 01-",
                  ">2206-2025 16:41 - PASNR. *004>232 - CONTACTLOOS", ">310398765432")
    assert got.counterparty_name == "NATUURWINKEL KLAVER - DEVENTER"
    assert got.remittance == ("NATUURWINKEL KLAVER - DEVENTER - TERMINAL 7KQ2ZP - "
                              "01-06-2025 16:41 - PASNR. *0042 - CONTACTLOOS")


def test_triodos_counter_account_and_name_subfields() -> None:
    got = triodos("000>100000000000>20CONTRIBUTIE SCHAAKCLUB>310212345678",
                  ">32SCHAAKCLUB DE PION")
    assert fields(got) == ("SCHAAKCLUB DE PION", "0212345678", "CONTRIBUTIE SCHAAKCLUB")
    assert got.complete


def test_triodos_transaction_number_has_no_field() -> None:
    got = triodos("000>104711>20HUUR JULI>310212345678")
    assert fields(got) == (None, "0212345678", "HUUR JULI") and not got.complete


def test_triodos_golden_fixture() -> None:
    statement, = parsers.parse((DATA / "nl-triodos-subfields.sta").read_bytes(), source="t")
    assert [e.counterparty_name for e in statement.entries] == [
        "NATUURWINKEL KLAVER - DEVENTER", None, "SCHAAKCLUB DE PION", None]
    assert statement.entries[3].additional_info == "Kosten betalingsverkeer juni"


_SUBFIELD_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                       blacklist_characters=">"), min_size=1, max_size=27)


@settings(max_examples=60, deadline=None)
@given(description=st.lists(_SUBFIELD_TEXT, min_size=1, max_size=8),
       counter=st.none() | st.from_regex(r"[1-9]\d{9}", fullmatch=True),
       name=st.none() | _SUBFIELD_TEXT)
def test_triodos_loses_no_character(description: list[str], counter: str | None,
                                    name: str | None) -> None:
    subfields = "".join(f">{20 + i}{text}" for i, text in enumerate(description))
    lines = ["000>100000000000", subfields, ">310398765432"]
    if counter:
        lines.append(f">31{counter}")
    if name:
        lines.append(f">32{name}")
    got = triodos(*lines)
    assert got.complete
    # the subfield tags, the zeros of no transaction number and the own account are layout
    layout = "000>100000000000>310398765432" + "".join(
        f">{20 + i}" for i in range(len(description))) + (">31" if counter else "") + (
        ">32" if name else "")
    assert loses_nothing(lines, got, marker=layout)


# -- ASN, SNS, RegioBank (IBAN and name, then 65-character lines) ------------------------

def test_asn_iban_and_name_then_fixed_width_remittance() -> None:
    got = details("NL44RABO0123456789 waterbedrijf de bron", " " * 65,
                  "Europese incasso door:WATERBEDRIJF DE BRON NL-Klantnummer 0031415",
                  "9 Termijn juli", " " * 65)
    assert fields(got) == ("waterbedrijf de bron", "NL44RABO0123456789",
                           "Europese incasso door:WATERBEDRIJF DE BRON NL-Klantnummer "
                           "00314159 Termijn juli")
    assert got.complete


def test_asn_name_agrees_with_the_statement_line() -> None:
    statement, = parsers.parse((DATA / "nl-asn-iban-name.sta").read_bytes(), source="asn")
    first, second, card = statement.entries
    assert (first.counterparty_name, first.counterparty_account) == (
        "waterbedrijf de bron", "NL44RABO0123456789")
    assert first.additional_info is None and first.remittance is not None
    assert first.remittance.endswith("Kenmerk Machtiging: M-2041")
    assert (second.counterparty_name, second.remittance) == (
        "m. el amrani", "Terugbetaling fietstas 2025-07")
    # the card line (first line empty): test_mt940_dialects_layouts.py
    assert card.counterparty_name == "Bakkerij Zonnig" and card.additional_info is None


def test_asn_iban_with_wrong_check_digits_is_not_this_layout() -> None:
    got = details("NL45RABO0123456789 waterbedrijf de bron", "Termijn juli")
    assert fields(got) == (None, None, None) and not got.complete


@settings(max_examples=60, deadline=None)
@given(name=_LINE, remittance=st.lists(_LINE, max_size=4),
       iban=st.sampled_from(["NL44RABO0123456789", "NL03INGB0004567890",
                             "DK8030000012345678"]))
def test_asn_loses_no_character(name: str, remittance: list[str], iban: str) -> None:
    lines = [f"{iban} {name}", " " * 65, *remittance]
    got = details(*lines)
    assert got.complete and got.counterparty_account == iban
    assert loses_nothing(lines, got)


def test_corpus_sns_iban_and_name_lines() -> None:
    entries = corpus_entries("oca-bsi__test-sns.940")
    read = [e for e in entries if e.counterparty_account and e.remittance]
    # the third statement is cut off (no :62F:); of the first two, the three transfers are
    # read (their name and IBAN also stand in :61:); the card lines (no account) are read
    # in test_mt940_dialects_layouts.py
    assert len(read) == 3 and all(e.additional_info is None for e in read)


# -- mBank (PL): "; KEY: value" parts ----------------------------------------------------

def test_mbank_collect_account_name_and_title() -> None:
    got = details("911 TRANSAKCJA COLLECT; ID IPH: XX000000004711; Z RACH.: ",
                  "64114020040000001234567890; OD: ZOFIA WÓJCIK  ",
                  "UL. KWIATOWA 7 90-001 ŁÓDŹ; TYT.: FAKTURA FV/2025/08/17   ; ",
                  "TNR: 190000000000001.000001")
    assert fields(got) == ("ZOFIA WÓJCIK UL. KWIATOWA 7 90-001 ŁÓDŹ",
                           "PL64114020040000001234567890", "FAKTURA FV/2025/08/17")
    assert got.proprietary_code == "911"
    assert not got.complete  # IPH id, TNR and the kind have no field: the text stays too


def test_mbank_outgoing_without_unplaced_parts_is_complete() -> None:
    got = details("222 ; NA RACH.: 60102010260000042270201111; DLA: SPÓŁDZIELNIA ZACISZE; "
                  "TYT.: CZYNSZ SIERPIEŃ")
    assert fields(got) == ("SPÓŁDZIELNIA ZACISZE", "PL60102010260000042270201111",
                           "CZYNSZ SIERPIEŃ")
    assert got.complete


def test_mbank_unknown_part_is_not_this_layout() -> None:
    got = details("222 PRZELEW; NA RACH.: 60102010260000042270201111; UWAGI: cokolwiek")
    assert fields(got) == (None, None, None) and not got.complete


def test_mbank_golden_fixture() -> None:
    statement, = parsers.parse((DATA / "pl-mbank-collect.sta").read_bytes(), source="mb")
    collect, outgoing, fee = statement.entries
    assert collect.counterparty_account == "PL64114020040000001234567890"
    assert outgoing.remittance == "CZYNSZ SIERPIEŃ"
    assert fee.counterparty_name is None and fee.additional_info is not None


_PL = st.text(st.sampled_from("ABCĆDEĘFGHIJKLŁMNŃOÓPRSŚTUWYZŹŻ0123456789 ./-"), min_size=1,
              max_size=30).filter(lambda t: t.strip() != "")


@settings(max_examples=60, deadline=None)
@given(code=st.from_regex(r"\d{3}", fullmatch=True), head=st.sampled_from(["", "PRZELEW"]),
       nrb=st.sampled_from(["64114020040000001234567890", "12345"]), name=_PL, title=_PL,
       tnr=st.none() | st.from_regex(r"\d{15}\.\d{6}", fullmatch=True))
def test_mbank_loses_no_character(code: str, head: str, nrb: str, name: str, title: str,
                                  tnr: str | None) -> None:
    text = f"{code} {head}; Z RACH.: {nrb}; OD: {name}; TYT.: {title}" + (
        f"; TNR: {tnr}" if tnr else "")
    lines = [text[i:i + 65] for i in range(0, len(text), 65)]
    got = details(*lines)
    assert got.proprietary_code == code
    assert got.complete == (not head and not tnr)  # else the text is kept whole as well
    placed = (got.counterparty_name or "") + (got.counterparty_account or "") + (
        got.remittance or "") + code + head + (tnr or "")
    assert non_blank(text) <= non_blank(placed) + non_blank("; Z RACH.: ; OD: ; TYT.: ; TNR:")


def test_corpus_mbank_collect_lines() -> None:
    entries = corpus_entries("wolph-mt940__mBank-mt940.sta")
    assert all(e.counterparty_account and e.counterparty_account.startswith("PL")
               and e.counterparty_name and e.remittance for e in entries)
    assert all(e.additional_info for e in entries)  # IPH id and TNR: kept in the raw text


# -- Danske Bank (told by the statement account's BIC) -----------------------------------

DANSKE = Account(number="7654321098", bic="DABADKKK")


def test_danske_text_then_registration_and_account() -> None:
    got = details("DBT.Husleje sept", "3409 0012345678", account=DANSKE)
    assert fields(got) == (None, "3409 0012345678", "DBT.Husleje sept") and got.complete


def test_danske_text_then_name_then_address() -> None:
    got = details("Faktura 2025-77", "Møbelsnedker Ærø ApS", "Strandvejen 12",
                  "5970  Ærøskøbing", account=DANSKE)
    assert fields(got) == ("Møbelsnedker Ærø ApS", None, "Faktura 2025-77")
    assert not got.complete  # the address has no field: the text is kept whole as well


def test_danske_layout_needs_a_danske_account() -> None:
    other = Account(number="7654321098", bic="NDEADKKK")
    assert fields(details("Indbetaling kontant", "Karen Sørensen", account=other)) == (
        None, None, None)
    assert fields(details("Indbetaling kontant", "Karen Sørensen")) == (None, None, None)


def test_danske_golden_fixture() -> None:
    statement, = parsers.parse((DATA / "dk-danske-text-name.sta").read_bytes(), source="d")
    assert [(e.counterparty_name, e.counterparty_account) for e in statement.entries] == [
        (None, "3409 0012345678"), ("Møbelsnedker Ærø ApS", None), (None, None),
        ("Karen Sørensen", None)]


@settings(max_examples=60, deadline=None)
@given(text=_LINE, name=st.none() | _LINE,
       account=st.none() | st.from_regex(r"\d{4} \d{6,11}", fullmatch=True))
def test_danske_loses_no_character(text: str, name: str | None, account: str | None) -> None:
    lines = [text, *([account] if account else []), *([name] if name and not account else [])]
    got = details(*lines, account=DANSKE)
    assert got.complete
    assert loses_nothing(lines, got)


def test_corpus_danske_texts_names_and_accounts() -> None:
    entries = corpus_entries("mt940-rs__MT940_DK_Example.sta")
    assert sum(1 for e in entries if e.counterparty_account) >= 3
    assert sum(1 for e in entries if e.counterparty_name) >= 4
    # only entries with an address after the name keep their raw text
    assert all(e.additional_info is None or e.additional_info.count("\n") >= 2
               for e in entries)
