"""MT940/MT942 parser: what each fixture must say, each layer, the bad paths.

The golden files of tests/data/ are checked in test_golden.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parsers
from parsers import mt940, mt940_details, mt940_fields, mt940_lines
from parsers.errors import ParseError
from parsers.model import BalanceKind, Charge, EntryStatus, Statement
from parsers.money import Money
from tests.corpus import CORPUS

DATA = Path(__file__).resolve().parents[1] / "data" / "mt940"
OTHER_DATA = [DATA.parent / "camt", DATA.parent / "ofx"]


def inputs() -> list[Path]:
    return sorted(p for p in DATA.iterdir() if p.is_file() and not p.name.endswith(".json"))


def read(name: str) -> tuple[Statement, ...]:
    return parsers.parse((DATA / name).read_bytes(), source=name)


def mt(*lines: str) -> bytes:
    """A document from its lines, CRLF."""
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def codes(statement: Statement) -> list[str]:
    return [f.code for f in statement.flags]


MINIMAL = (":20:REF1", ":25:NL91ABNA0417164300", ":28C:1/1", ":60F:C261127EUR100,00")


def minimal(*body: str, closing: str = ":62F:C261127EUR100,00") -> bytes:
    return mt(*MINIMAL, *body, closing, "-")


def error_of(data: bytes, source: str = "bad.sta") -> ParseError:
    with pytest.raises(ParseError) as caught:
        mt940.parse(data, source=source)
    assert caught.value.source == source
    return caught.value


# --- golden files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", inputs(), ids=lambda p: p.name)
def test_golden_file_is_refused_when_cut(path: Path) -> None:
    """Cut anywhere in its last statement before the closing balance: an error, never less."""
    data = path.read_bytes()
    last_statement = data.rindex(b":20:")
    end = data.rfind(b":62", last_statement)
    end = len(data) - 3 if end < 0 else end + 14  # MT942: no closing balance, an envelope
    for cut in range(last_statement + 1, end):
        with pytest.raises(ParseError):
            mt940.parse(data[:cut], source=path.name)


# --- what each fixture says ---------------------------------------------------------------


def test_german_subfields_gvc_and_sepa_keys() -> None:
    (statement,) = read("de-sparkasse-gvc.sta")
    assert statement.format == "mt940"
    assert (statement.account.bank_id, statement.account.number) == ("10050000", "0123456789")
    assert codes(statement) == ["encoding_guessed"]
    assert "cp1252" in statement.flags[0].message
    credit, debit, reversal, charge = statement.entries
    assert credit.amount == Money(Decimal("250.00"), "EUR")
    assert credit.bank_transaction_code is not None
    assert (credit.bank_transaction_code.swift, credit.bank_transaction_code.gvc) == (
        "NTRF", "166")
    assert credit.end_to_end_id == "INV-2026-1187-A"
    # ?21 and ?22 cut "vom 20.11.2026" after "vom": joined without separator, as written.
    assert credit.remittance == "Rechnung INV-2026-1187 vom 20.11.2026"
    assert credit.counterparty_name == "Jürgen Müller-Lüdenscheidt Straßenbau GmbH"
    assert credit.counterparty_account == "DE89370400440532013000"
    assert credit.counterparty_bic == "BYLADEM1001"
    # ?00 posting text and ?10 prima nota have no field: the raw :86: stays.
    assert credit.additional_info is not None
    assert credit.additional_info.startswith("166?00SEPA-GUTSCHRIFT?109310?20EREF+")
    assert debit.amount.amount == Decimal("-120.50")
    assert (debit.mandate_id, debit.creditor_reference) == ("M-778812", "RF18539007547034")
    # A line starting ":KO:" inside :86: is text, not a new field.
    assert debit.remittance == "RF18539007547034 Abs:KO:NR:4711 chlag"
    # RD: reversal of a debit, money comes back.
    assert reversal.amount.amount == Decimal("49.90") and reversal.reversal
    assert reversal.customer_reference == "SEPA-DA2026102712"  # ":61:...KREF+" points to :86:
    assert reversal.fx is not None and reversal.fx.instructed_amount == Money(
        Decimal("49.90"), "EUR")
    assert charge.booking_date is None and charge.value_date == date(2026, 11, 27)
    assert charge.remittance == "Kontofuehrung 11/2026"


def test_dutch_codes_envelopes_and_a_dash_inside_86() -> None:
    first, second = read("nl-ing-codes.sta")
    assert first.account.iban == "NL20INGB0001234567"
    assert first.account.currency == "EUR"
    assert [e.amount.amount for e in first.entries] == [
        Decimal("1500.00"), Decimal("-89.95"), Decimal("42.00")]
    ing, incasso, rabo = first.entries
    assert ing.counterparty_account == "NL91ABNA0417164300"
    assert ing.counterparty_bic == "ABNANL2A"
    assert ing.counterparty_name == "ACME Handels B.V."
    assert ing.remittance == "Factuur 2026-0042 november"
    assert ing.bank_transaction_code is not None
    assert ing.bank_transaction_code.proprietary == "00100"  # /TRCD/ on the :61: second line
    # "MND" / "-" / "EV01": the lone dash is text of the field, not the end of the message.
    assert incasso.mandate_id == "MND-EV01"
    assert incasso.creditor_reference == "1234567890123456"  # /REMI/STRD/CUR/...
    assert incasso.remittance is None
    assert rabo.counterparty_account == "NL44RABO0123456789"  # the :61: second line
    assert rabo.counterparty_name == "J. de Vries"
    assert rabo.remittance == "Terugbetaling lunch"
    assert [b.kind for b in first.available_balances] == [BalanceKind.CLOSING_AVAILABLE]
    assert codes(first) == ["statement_information"]
    assert first.flags[0].message.endswith(":86: /SUM/1/2/89,95/1542,00/")
    (bunq,) = second.entries
    assert (bunq.counterparty_account, bunq.counterparty_name, bunq.remittance) == (
        "NL69INGB0123456789", "Sportclub De Ballen", "Contributie december")
    assert bunq.additional_info is None  # every code went into a field


def test_mt942_interim_report() -> None:
    (report,) = read("mt942-interim.sta")
    assert report.format == "mt942"
    assert report.created_at == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert report.opening_balance is None and report.closing_balance is None
    assert report.currency == "EUR"
    assert [e.status for e in report.entries] == [
        EntryStatus.BOOKED, EntryStatus.BOOKED, EntryStatus.PENDING]
    assert [e.amount.amount for e in report.entries] == [
        Decimal("300.00"), Decimal("-120.50"), Decimal("25.00")]
    assert report.flags == ()


def test_negative_balances_reversal_and_year_end() -> None:
    first, second, third = read("nl-abn-negative-yearend.sta")
    assert first.opening_balance is not None and first.closing_balance is not None
    assert first.opening_balance.amount.amount == Decimal("-1500.00")
    assert first.closing_balance.kind is BalanceKind.INTERIM_BOOKED
    card, storno, salary = first.entries
    assert (card.value_date, card.booking_date) == (date(2023, 12, 31), date(2024, 1, 2))
    assert storno.amount.amount == Decimal("-80.00") and storno.reversal  # RC
    # ABN AMRO's giro layout (parsers.mt940_dialects) is read; the storno line is not one
    assert (salary.counterparty_account, salary.counterparty_name, salary.remittance) == (
        "123456", "WERKGEVER BV", "SALARIS DECEMBER")
    assert salary.additional_info is None and storno.additional_info is not None
    assert second.opening_balance is not None
    assert second.opening_balance.kind is BalanceKind.INTERIM_BOOKED
    assert (second.entries[0].value_date, second.entries[0].booking_date) == (
        date(2024, 1, 1), date(2023, 12, 31))
    assert codes(first) == codes(second) == ["entry_date_year_inferred"]
    assert third.entries == ()
    assert [(b.kind, b.amount.amount) for b in third.available_balances] == [
        (BalanceKind.CLOSING_AVAILABLE, Decimal("50.01")),
        (BalanceKind.FORWARD_AVAILABLE, Decimal("50.01")),
        (BalanceKind.FORWARD_AVAILABLE, Decimal("0.01")),
    ]


def test_code_page_852_and_a_preamble() -> None:
    (statement,) = read("pl-cp852-preamble.sta")
    assert codes(statement) == ["encoding_guessed", "text_outside_statement"]
    assert "cp852" in statement.flags[0].message
    assert statement.flags[1].location == "line 1"
    assert "lines 1-2" in statement.flags[1].message
    info = statement.entries[0].additional_info
    assert info is not None and "DVOŘÁK, ŽLUŤOUČKÁ 7" in info
    assert info.startswith("911-PRZELEW PRZYCHODZĄCY\n")  # :61: supplementary details first


def test_old_rabobank_format_with_decimal_points() -> None:
    (statement,) = read("nl-rabo-940a-point.sta")
    assert statement.account.number == "1234.56.789"
    assert codes(statement) == ["decimal_point"]
    assert statement.opening_balance is not None
    assert statement.opening_balance.amount.amount == Decimal("1000.00")
    tmobile, refund = statement.entries
    assert tmobile.amount.amount == Decimal("-44.95")
    assert tmobile.customer_reference == "0733959555"
    assert tmobile.additional_info == (
        "T-MOBILE NETHERLANDS BV\nBETALINGSKENM.  123456789\nFACTUURNUMMER 987654321")
    assert refund.customer_reference is None
    assert refund.creditor_reference == "RF712348231"  # found in free text, checksum valid


_MUTATION_BYTES = st.sampled_from(list(b":0123456789CDRNF,./?+-{}\r\n \x01\x03\x1aAZ\xfc"))


@settings(deadline=None, max_examples=150)
@given(st.data())
def test_damaged_files_give_statements_or_a_parse_error(data: st.DataObject) -> None:
    """Whatever bytes a fixture is damaged with: a result or a ParseError, nothing else."""
    document = bytearray(data.draw(st.sampled_from(inputs())).read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(document) - 1))
        kind = data.draw(st.sampled_from(("replace", "insert", "delete")))
        if kind == "replace":
            document[at] = data.draw(_MUTATION_BYTES)
        elif kind == "insert":
            document.insert(at, data.draw(_MUTATION_BYTES))
        else:
            del document[at]
    try:
        statements = mt940.parse(bytes(document), source="damaged")
    except ParseError as error:
        assert error.source == "damaged"
    else:
        assert all(s.source == "damaged" for s in statements)


# --- sniff --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", inputs(), ids=lambda p: p.name)
def test_sniff_claims_our_fixtures(path: Path) -> None:
    assert mt940.sniff(path.read_bytes()[:65536])


def _others() -> list[Path]:
    found = [p for folder in OTHER_DATA if folder.exists() for p in sorted(folder.iterdir())
             if p.is_file() and not p.name.endswith(".json")]
    for folder in ("camt", "ofx"):
        if (CORPUS / folder).exists():
            found += sorted((CORPUS / folder).iterdir())
    return found


def test_sniff_refuses_every_other_format() -> None:
    others = _others()
    claimed = [p.name for p in others if mt940.sniff(p.read_bytes()[:65536])]
    assert claimed == []
    for path in others:
        with pytest.raises(ParseError):
            mt940.parse(path.read_bytes(), source=path.name)


def test_sniff_needs_the_statement_fields() -> None:
    assert mt940.sniff(b"\x01{1:F01X}{2:I940X}{4:\r:20:A\r:25:B\r:28C:1\r")  # CR only
    assert mt940.sniff(b"Preamble\n-----\n:20:A\n:25:B\n:60F:C261127EUR1,\n")
    assert not mt940.sniff(b":20:A\n:21:B\n")
    assert not mt940.sniff(b"<?xml version='1.0'?>\n:20:A\n:25:B\n:60F:C\n")
    assert not mt940.sniff(b"OFXHEADER:100\n:20:A\n:25:B\n:60F:C\n")


# --- the line layer -----------------------------------------------------------------------


def test_envelopes_on_one_line_with_control_bytes() -> None:
    body = ":25:123\r\n:28C:1\r\n:60F:C261127CHF1,\r\n:62F:C261127CHF1,\r\n"
    data = (f"\x01{{1:F01X}}{{2:I940X}}{{3:{{108:A}}}}{{4:\r\n:20:ONE\r\n{body}"
            f"-}}\x03\x01{{1:F01X}}{{2:I940X}}{{4:\r\n:20:TWO\r\n{body}-}}{{5:{{CHK:1}}}}\x03"
            ).encode()
    first, second = mt940.parse(data, source="env.sta")
    assert (first.statement_id, second.statement_id) == ("ONE", "TWO")
    # "{2:I940X}" names no bank: read, flagged as an anonymised header.
    assert [f.code for f in first.flags] == [f.code for f in second.flags] == [
        "envelope_header_anonymised"]


def test_a_message_envelope_left_open_is_cut_off() -> None:
    data = b"{1:F01X}{2:I940X}{4:\r\n" + minimal()
    error = error_of(data)
    assert "not closed with '-}'" in error.message
    assert "line 1" in error.message


def test_a_dash_ends_the_message_only_before_the_next_one() -> None:
    messages = mt940_lines.read_messages(
        ":20:A\n:86:one\n-\ntwo\n-\n\n:20:B\n:86:x\n-\n", source="s")
    assert [m.fields[-1].lines for m in messages] == [("one", "-", "two"), ("x",)]
    error = error_of(minimal("-", ":61:2611271127C1,NTRFNONREF"))
    assert (error.line, error.field) == (6, ":61:")
    assert "outside a statement" in error.message
    (statement,) = mt940.parse(minimal() + b"-\r\nEnd of file\r\n", source="trailer")
    assert [(f.code, f.location) for f in statement.flags] == [
        ("text_outside_statement", "line 8")]


def test_unknown_tag_like_lines_are_text_of_the_field() -> None:
    (statement,) = mt940.parse(minimal(":61:2611271127C0,NTRFNONREF", ":86:free text",
                                       ":23:not a field", ":KO:neither"), source="t")
    assert statement.entries[0].additional_info == "free text\n:23:not a field\n:KO:neither"


def test_a_field_before_the_first_20_is_refused() -> None:
    error = error_of(b":25:NL91ABNA0417164300\r\n" + minimal())
    assert (error.line, error.field) == (1, ":25:")


def test_a_wrapped_one_line_field_is_joined_and_flagged() -> None:
    data = mt(":20:REF1", ":25:NL91ABNA0417164300", ":28C:0000", "0",
              ":60F:C261127EUR1,", ":62F:C261127EUR1,")
    (statement,) = mt940.parse(data, source="w")
    assert statement.sequence == "00000"
    assert codes(statement) == ["field_wrapped"]
    assert statement.flags[0].location == "line 3"


# --- field values -------------------------------------------------------------------------


LINES = [
    # line, (value date, booking date, mark, amount, type, owner's ref, bank ref, supplementary)
    ("2611271127C1,56NTRFNONREF//B1", ("261127", "1127", "C", "1.56", "NTRF", None, "B1", None)),
    ("261127D12,NMSC", ("261127", None, "D", "12", "NMSC", None, None, None)),
    ("2611271127RCR204,88NRTINONREF", ("261127", "1127", "RC", "204.88", "NRTI", None, None,
                                       None)),
    ("2611271127DR20,00N037NONREF", ("261127", "1127", "D", "20.00", "N037", None, None, None)),
    ("261127    DD212,39NMSCNONREF//", ("261127", None, "D", "212.39", "NMSC", None, None,
                                        None)),
    ("2611271127C50,00 NTRFKREF+//2016", ("261127", "1127", "C", "50.00", "NTRF", "KREF+",
                                          "2016", None)),
    ("2611271127CN220000,00//1923", ("261127", "1127", "C", "220000.00", None, None, "1923",
                                     None)),
    ("2611271127D20,00NONREF", ("261127", "1127", "D", "20.00", None, None, None, None)),
    ("2611271127ED1,NOV NONREF", ("261127", "1127", "ED", "1", "NOV", None, None, None)),
    ("261127D000000001213,28N0440121470966      W.P. Jansen      ",
     ("261127", None, "D", "1213.28", "N044", "0121470966", None, "W.P. Jansen")),
]


@pytest.mark.parametrize(("line", "want"), LINES, ids=[row[0] for row in LINES])
def test_statement_line_forms(
    line: str, want: tuple[str, str | None, str, str, str | None, str | None, str | None,
                           str | None]
) -> None:
    log = mt940_fields.FlagLog()
    got = mt940_fields.parse_statement_line((line,), mt940_fields.Where("s", 1, ":61:"), log)
    value, booked, mark, amount, kind, owner, bank, supplementary = want
    assert got.value_date.strftime("%y%m%d") == value
    assert (got.booking_date.strftime("%m%d") if got.booking_date else None) == booked
    assert (got.mark, got.amount, got.transaction_type) == (mark, Decimal(amount), kind)
    assert (got.customer_reference, got.bank_reference, got.supplementary) == (
        owner, bank, supplementary)


def test_a_statement_line_without_amount_names_the_line() -> None:
    error = error_of(minimal(":61:2611271127CNTRFNONREF"))
    assert (error.line, error.field) == (5, ":61:")
    assert "expected a statement line" in error.message


def test_30_february_is_an_error_not_a_repair() -> None:
    error = error_of(minimal(":61:2602301127C1,NTRFNONREF"))
    assert (error.line, error.field) == (5, ":61:")
    assert "'260230' is not a calendar date" in error.message
    error = error_of(minimal(":61:2602280230C1,NTRFNONREF"))
    assert "'0230' is not a calendar date" in error.message


def test_entry_date_february_29_is_placed_in_a_leap_year() -> None:
    (statement,) = mt940.parse(minimal(":61:2403010229C0,NTRFNONREF"), source="leap")
    assert statement.entries[0].booking_date == date(2024, 2, 29)


@pytest.mark.parametrize(("text", "want", "flag"), [
    ("11,8", "11.8", None), ("0,", "0", None), ("000000001000,89", "1000.89", None),
    ("12.50", "12.50", "decimal_point"), ("500", "500", "amount_without_decimal_comma"),
])
def test_amounts(text: str, want: str, flag: str | None) -> None:
    log = mt940_fields.FlagLog()
    amount = mt940_fields.parse_amount(text, mt940_fields.Where("s", 3, ":61:"), log)
    assert str(amount) == want
    assert [f.code for f in log.flags()] == ([flag] if flag else [])


@pytest.mark.parametrize("text", ["1,2,3", "1.2,3", ",5", "1 000,00", ""])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ParseError, match="expected digits with a decimal comma"):
        mt940_fields.parse_amount(text, mt940_fields.Where("s", 3, ":61:"),
                                  mt940_fields.FlagLog())


@pytest.mark.parametrize(("value", "iban", "number", "bic", "bank_id", "currency"), [
    ("DE19662800530622160900", "DE19662800530622160900", None, None, None, None),
    ("NL20INGB0001234567EUR", "NL20INGB0001234567", None, None, None, "EUR"),
    ("NL44RABO0123456789 EUR", "NL44RABO0123456789", None, None, None, "EUR"),
    ("/NL44RABO0123456789", "NL44RABO0123456789", None, None, None, None),
    ("28020050/1426292700", None, "1426292700", None, "28020050", None),
    ("DABADKKK/1234567890", None, "1234567890", "DABADKKK", None, None),
    ("ABNANL2A/NL91ABNA0417164300", "NL91ABNA0417164300", None, "ABNANL2A", None, None),
    ("UBRTHUHB/123456789150ABCDEF002/HUF", None, "123456789150ABCDEF002", "UBRTHUHB", None,
     "HUF"),
    ("1291.99.348EUR", None, "1291.99.348", None, None, "EUR"),
    ("0878787878   ", None, "0878787878", None, None, None),
])
def test_account_forms(value: str, iban: str | None, number: str | None, bic: str | None,
                       bank_id: str | None, currency: str | None) -> None:
    log = mt940_fields.FlagLog()
    got = mt940_fields.parse_account(value, mt940_fields.Where("s", 2, ":25:"), log)
    account = got.account
    assert (account.iban, account.number, account.bic, account.bank_id, got.currency) == (
        iban, number, bic, bank_id, currency)
    assert log.flags() == ()


def test_an_iban_with_wrong_check_digits_is_a_number_and_flagged() -> None:
    log = mt940_fields.FlagLog()
    got = mt940_fields.parse_account("NL81ASNB9999999999", mt940_fields.Where("s", 2, ":25:"),
                                     log)
    assert (got.account.iban, got.account.number) == (None, "NL81ASNB9999999999")
    assert [f.code for f in log.flags()] == ["account_not_iban"]


def test_statement_number_forms() -> None:
    where = mt940_fields.Where("s", 3, ":28C:")
    assert mt940_fields.parse_statement_number("00042/001", where) == "00042/001"
    assert mt940_fields.parse_statement_number(" /1", where) == "/1"  # number left blank
    with pytest.raises(ParseError, match="expected a statement number"):
        mt940_fields.parse_statement_number("ABC", where)


def test_creation_time_is_utc() -> None:
    where, log = mt940_fields.Where("s", 5, ":13D:"), mt940_fields.FlagLog()
    assert mt940_fields.parse_creation_time("2612312330-0130", where, log) == datetime(
        2027, 1, 1, 1, 0, tzinfo=UTC)
    assert mt940_fields.parse_creation_time("2611271530", where, log) == datetime(
        2026, 11, 27, 15, 30, tzinfo=UTC)
    assert [f.code for f in log.flags()] == ["timezone_assumed"]
    with pytest.raises(ParseError, match="not a time of day"):
        mt940_fields.parse_creation_time("2611272530+0100", where, log)


def test_balances_are_signed_and_checked() -> None:
    where, log = mt940_fields.Where("s", 4, ":60F:"), mt940_fields.FlagLog()
    balance = mt940_fields.parse_balance("D070903EUR1234718,36", where, log)
    assert (balance.amount, balance.currency, balance.date) == (
        Decimal("-1234718.36"), "EUR", date(2007, 9, 3))
    for bad, message in [("Dnullnull7414,3", "expected a balance"),
                         ("C261127XYZ1,00", "ISO 4217"),
                         ("C261127EUR1,2,3", "expected digits with a decimal comma"),
                         ("C261127EUR12", "expected digits with a decimal comma")]:
        with pytest.raises(ParseError, match=message):
            mt940_fields.parse_balance(bad, where, log)


# --- :86: dialects ------------------------------------------------------------------------


def details(*lines: str, currency: str = "EUR") -> mt940_details.Details:
    result = mt940_details.Details()
    mt940_details.read_details(list(lines), currency, result)
    return result


def test_german_identifiers_stop_at_35_characters() -> None:
    got = details("159?00RETOURE?20EREF+TFNR 40005 00005?21MTLG:Grund nicht s",
                  "pezifizie?22rt Reject")
    assert got.end_to_end_id == "TFNR 40005 00005"
    assert got.remittance == "MTLG:Grund nicht spezifiziert Reject"


def test_german_keys_after_a_blank_or_at_a_subfield_start_only() -> None:
    got = details("166?20EREF+A1 KREF+K2 MREF+M3?21SVWZ+Text mit NOTEREF+ drin",
                  "?31DE89370400440532013000?32Name")
    assert (got.end_to_end_id, got.customer_reference, got.mandate_id) == ("A1", "K2", "M3")
    assert got.remittance == "Text mit NOTEREF+ drin"
    assert got.complete  # every subfield went into a field


def test_german_placeholders_are_no_reference() -> None:
    got = details("166?20EREF+NOTPROVIDED?21SVWZ+x")
    assert got.end_to_end_id is None


@pytest.mark.parametrize("lines", [
    ("000+20Plata           +31RO89RZBR0000060003480121", "+32NEXTERP SRL+23FACT 46"),
    ("000^20Plata^31RO89RZBR0000060003480121^32NEXTERP SRL^23FACT 46",),
    ("035~20Plata     ~21           ~31RO89RZBR0000060003480121", "~32NEXTERP SRL ~23FACT 46~"),
])
def test_romanian_separators(lines: tuple[str, ...]) -> None:
    got = details(*lines)
    assert got.counterparty_account == "RO89RZBR0000060003480121"
    assert got.counterparty_name == "NEXTERP SRL"
    assert got.remittance == "Plata FACT 46"


def test_ing_counterparty_and_remittance() -> None:
    got = details("/EREF/E1//CNTP/NL91ABNA0417164300/ABNANL2A/J. Jansen///REMI/USTD//Fact",
                  "uur 12/")
    assert (got.end_to_end_id, got.counterparty_account, got.counterparty_bic) == (
        "E1", "NL91ABNA0417164300", "ABNANL2A")
    assert (got.counterparty_name, got.remittance) == ("J. Jansen", "Factuur 12")
    assert got.complete


def test_amount_codes() -> None:
    got = details("/OCMT/USD2853,12/PAYMENT OF INVOICES")
    assert got.instructed_amount == Money(Decimal("2853.12"), "USD")
    assert not got.complete
    supplementary = mt940_details.Details()
    assert mt940_details.supplementary_details("/OCMT/EUR11,85//CHGS/EUR0,50/", supplementary)
    assert supplementary.charges == [Charge(Money(Decimal("0.50"), "EUR"))]


def test_free_text_is_kept_and_only_a_valid_rf_reference_is_taken() -> None:
    got = details("BETALING RF18539007547034 EN RF18539007547035")
    assert (got.creditor_reference, got.remittance, got.complete) == (
        "RF18539007547034", None, False)
    assert details("REF RF18539007547035").creditor_reference is None


def test_creditor_reference_check_digits() -> None:
    assert mt940_details.is_valid_creditor_reference("RF18 5390 0754 7034")
    assert not mt940_details.is_valid_creditor_reference("RF19539007547034")
    assert not mt940_details.is_valid_creditor_reference("RF18")


# --- statements as a whole: checks and bad input ------------------------------------------


def test_a_statement_without_closing_balance_is_cut_off() -> None:
    error = error_of(mt(*MINIMAL, ":61:2611271127C1,NTRFNONREF", ":86:x"))
    assert (error.line, error.field) == (6, ":62F:")
    assert "ends without a closing balance" in error.message


@pytest.mark.parametrize(("body", "line", "field", "message"), [
    ((":61:2611271127C1,NTRFNONREF", ":60F:C261127EUR1,"), 6, ":60F:",
     "a second opening balance"),
    ((":62F:C261127EUR1,", ":61:2611271127C1,NTRFNONREF"), 6, ":61:",
     "after the closing balance"),
    ((":61:2611271127X1,NTRFNONREF",), 5, ":61:", "expected a statement line"),
    ((":61:2611271127C1,NTRFNONREF", "/A/", "/B/"), 5, ":61:", "runs over 3 lines"),
])
def test_malformed_statements(body: tuple[str, ...], line: int, field: str,
                              message: str) -> None:
    error = error_of(mt(*MINIMAL, *body, ":62F:C261127EUR100,00"))
    assert (error.line, error.field) == (line, field)
    assert message in error.message


def test_missing_account_and_opening_balance() -> None:
    error = error_of(mt(":20:A", ":28C:1", ":60F:C261127EUR1,", ":62F:C261127EUR1,"))
    assert (error.line, error.field) == (1, ":20:")
    assert ":25:" in error.message
    error = error_of(mt(":20:A", ":25:1", ":62F:C261127EUR1,"))
    assert "no opening balance" in error.message


@pytest.mark.parametrize(("data", "message"), [
    (b"", "no statement found"),
    (b"Dear customer,\r\nyour statement.\r\n", "no statement found"),
    (":20:A\r\n:25:1\r\n".encode("utf-16"), "control character U+0000"),
    (b":20:A\x00\r\n", "control character U+0000"),
])
def test_garbage_is_a_parse_error(data: bytes, message: str) -> None:
    error = error_of(data)
    assert message in error.message
    assert error.line == 1


def test_mt942_totals_are_checked() -> None:
    head = (":20:R", ":25:NL91ABNA0417164300", ":28C:1", ":34F:EUR0,", ":13D:2611271530+0100",
            ":61:2611271127D10,NTRFNONREF", ":61:2611271127C5,NTRFNONREF")
    (report,) = mt940.parse(mt(*head, ":90D:1EUR10,", ":90C:1EUR5,", "-"), source="ok")
    assert len(report.entries) == 2
    error = error_of(mt(*head, ":90D:2EUR10,", ":90C:1EUR5,", "-"))
    assert ":90D: says 2 entries totalling 10, but the report has 1 totalling 10" in (
        error.message)


def test_the_count_of_61_lines_is_checked_against_the_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the field reader ever lose a :61:, the raw line count catches it."""
    real = mt940_lines.read_messages

    def losing_one(text: str, *, source: str) -> tuple[mt940_lines.Message, ...]:
        (message,) = real(text, source=source)
        fields = tuple(f for f in message.fields if f.line != 6)
        return (mt940_lines.Message(fields, message.first_line, message.last_line,
                                    message.message_type, message.flags),)

    monkeypatch.setattr(mt940, "read_messages", losing_one)
    error = error_of(minimal(":61:2611271127C0,NTRFNONREF", ":61:2611271127C0,NTRFNONREF"))
    assert (error.line, error.field) == (6, ":61:")
    assert "2 lines starting ':61:' but 1 entries" in error.message


def test_statement_level_86_and_ns_are_flagged_with_their_text() -> None:
    (statement,) = mt940.parse(mt(
        *MINIMAL, ":86:ACCOUNT OWNER INFO", ":62F:C261127EUR100,00", ":86:CLOSING NOTE", "-",
    ), source="s")
    assert [(f.code, f.location) for f in statement.flags] == [
        ("statement_information", "line 5")]
    assert statement.flags[0].message.endswith(
        ":86: ACCOUNT OWNER INFO\n:86: CLOSING NOTE")


def test_currency_after_the_account_must_agree() -> None:
    (statement,) = mt940.parse(mt(
        ":20:A", ":25:NL44RABO0123456789 USD", ":60F:C261127EUR1,", ":62F:C261127EUR1,",
    ), source="c")
    assert codes(statement) == ["account_currency_mismatch"]
    assert statement.currency == "EUR"


def test_replacement_characters_in_the_file_are_flagged() -> None:
    (statement,) = mt940.parse(minimal(":61:2611271127C0,NTRFNONREF", ":86:Illet\ufffdk"),
                               source="r")
    assert [(f.code, f.location) for f in statement.flags] == [
        ("replacement_characters", "line 6")]
