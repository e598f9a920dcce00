"""OFX parser: what each fixture must say, the repairs, and the bad paths.

The golden files of tests/data/ are checked in test_golden.py.
"""

from __future__ import annotations

import io
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import parsers
from parsers import ofx, ofx_clean, ofx_header, ofx_reference, ofx_tree, ofx_values
from parsers.errors import ParseError
from parsers.model import BalanceKind, FxDetails, Statement
from tests.corpus import CORPUS

DATA = Path(__file__).resolve().parents[1] / "data" / "ofx"


def inputs() -> list[Path]:
    return sorted(p for p in DATA.iterdir() if p.is_file() and not p.name.endswith(".json"))


def read(name: str) -> tuple[Statement, ...]:
    return ofx.parse((DATA / name).read_bytes(), source=name)


def one(name: str) -> Statement:
    (statement,) = read(name)
    return statement


def flag_messages(statement: Statement, code: str = "ofx_repaired") -> list[str]:
    return [f.message for f in statement.flags if f.code == code]


# --- golden files -------------------------------------------------------------------------


# --- what each fixture says ---------------------------------------------------------------


def test_sgml_bank_statement_maps_every_field() -> None:
    statement = one("bank-sgml-102.ofx")
    assert (statement.format, statement.format_version) == ("ofx", "OFX 102")
    assert statement.statement_id == "4471"
    assert statement.created_at == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    account = statement.account
    assert (account.iban, account.number, account.bank_id, account.currency) == (
        None, "8800123456", "091000019", "USD")
    assert (statement.period_start, statement.period_end) == (date(2026, 11, 1),
                                                              date(2026, 11, 30))
    assert statement.opening_balance is None
    assert statement.closing_balance is not None
    assert statement.closing_balance.amount.amount == Decimal("4217.35")
    assert statement.closing_balance.kind is BalanceKind.CLOSING_BOOKED
    assert statement.closing_balance.date == date(2026, 11, 30)
    (available,) = statement.available_balances
    assert (available.amount.amount, available.kind) == (Decimal("4017.35"),
                                                         BalanceKind.CLOSING_AVAILABLE)
    credit, check, transfer, fee = statement.entries
    assert credit.amount.amount == Decimal("1500.00")
    assert credit.booking_date == date(2026, 11, 3)
    assert credit.value_date == date(2026, 11, 4)  # DTAVAIL; DTUSER (11-02) is not a value date
    assert (credit.bank_reference, credit.counterparty_name, credit.remittance) == (
        "LS-2026-11-0001", "NORTHWIND TRADERS", "INVOICE 2026-118")
    assert credit.bank_transaction_code is not None
    assert (credit.bank_transaction_code.proprietary,
            credit.bank_transaction_code.issuer) == ("CREDIT", "OFX")
    assert (check.amount.amount, check.customer_reference) == (Decimal("-240.50"), "3107")
    assert transfer.amount.amount == Decimal("-1000")
    assert transfer.customer_reference == "TRF889120"  # REFNUM when there is no CHECKNUM
    assert transfer.counterparty_name == "Harbor Holdings LLC"  # PAYEE/NAME
    assert transfer.counterparty_account == "552200771"  # BANKACCTTO/ACCTID
    assert fee.value_date is None
    assert statement.flags == ()


def test_xml_statement_with_iban_entities_cdata_and_currencies() -> None:
    (statement,) = parsers.parse((DATA / "bank-xml-211.ofx").read_bytes(), source="x.ofx")
    assert statement.format_version == "OFX 211"
    assert statement.account.iban == "DE89370400440532013000"
    assert statement.account.number is None
    # 07:15 at UTC+10 is 21:15 UTC the day before.
    assert statement.created_at == datetime(2026, 11, 30, 21, 15, 0, 250000, tzinfo=UTC)
    credit, card, foreign = statement.entries
    # Posted 01:30 at UTC+10 on 2 November: the booking date is the date the bank wrote.
    assert credit.booking_date == date(2026, 11, 2)
    assert credit.counterparty_name == "Müller & Söhne GmbH"
    assert credit.counterparty_account == "DE76100200300000556677"
    assert credit.remittance == "RE 4711 <paid in full>"
    # ORIGCURRENCY: the amount is in CURDEF, converted from GBP at CURRATE.
    assert (card.amount.amount, card.amount.currency) == (Decimal("-45.60"), "EUR")
    assert card.fx == FxDetails(rate=Decimal("1.1402"), source_currency="GBP",
                                target_currency="EUR")
    # CURRENCY: the amount is in CURSYM.
    assert (foreign.amount.amount, foreign.amount.currency) == (Decimal("-100.00"), "USD")
    assert foreign.fx == FxDetails(rate=Decimal("0.9215"), source_currency="USD",
                                   target_currency="EUR")
    assert [f.code for f in statement.flags] == ["entry_currency_mismatch"]


def test_credit_card_statement() -> None:
    statement = one("creditcard.ofx")
    assert (statement.account.number, statement.account.bank_id) == ("4111111111111111", None)
    assert [e.amount.amount for e in statement.entries] == [
        Decimal("-63.20"), Decimal("500.00"), Decimal("-19.99")]
    assert statement.entries[1].counterparty_account == "4111111111111111"  # CCACCTTO
    assert statement.closing_balance is not None
    assert statement.closing_balance.amount.amount == Decimal("-812.44")


def test_cp1252_file_is_read_as_its_charset_says_without_a_guess() -> None:
    statement = one("cp1252-charset.ofx")
    first, second = statement.entries
    assert first.counterparty_name == "Boulangerie Pâtisserie Élodie"
    assert first.remittance == "Carte 12/11 Café crème 5€"
    assert second.remittance == "Salaire novembre \u2013 Müller Straße"
    assert statement.flags == ()


def test_utf8_body_under_a_cp1252_header_is_read_as_utf8_and_flagged() -> None:
    statement = one("utf8-declared-1252.ofx")
    assert statement.account.iban == "NL91ABNA0417164300"
    assert statement.entries[0].counterparty_name == "Jörg Ødegård"
    assert flag_messages(statement) == [
        "the file declares the character set cp1252 but is valid UTF-8; read as UTF-8"]


def test_utf16_file_with_byte_order_mark() -> None:
    statement = one("utf16-bom.ofx")
    assert statement.format_version == "OFX 220"
    assert statement.entries[0].counterparty_name == "ÉRABLE FRET LTÉE"


def test_a_wrong_utf16_label_is_ignored_and_flagged() -> None:
    statement = one("repair-utf16-label.ofx")
    assert [str(e.amount.amount) for e in statement.entries] == [
        "1303.7355652284177", "-850.1196618322863"]
    assert statement.closing_balance is not None
    assert str(statement.closing_balance.amount.amount) == "3858.6713352286442"
    assert flag_messages(statement) == [
        "the XML declaration says encoding='utf-16' but the bytes are 8-bit text; the "
        "declaration was ignored"]


def test_whole_file_on_one_line_with_header_fields_run_together() -> None:
    statement = one("one-line.ofx")
    assert statement.format_version == "OFX 102"
    assert [e.bank_reference for e in statement.entries] == ["INT-202611", "DD-202612-01"]
    assert statement.flags[0].message.startswith("the OFX header fields run together")
    assert statement.flags[0].location == "line 1"


def test_headerless_file_is_read_and_flagged() -> None:
    statement = one("headerless.ofx")
    assert statement.format_version is None
    assert statement.entries[0].amount.amount == Decimal("640.00")
    assert [f.code for f in statement.flags] == ["ofx_header_missing", "timezone_assumed"]


def test_two_statements_in_one_transaction_response() -> None:
    first, second = read("two-stmtrs.ofx")
    assert (first.account.number, second.account.number) == ("12345-6", "65432-1")
    assert (len(first.entries), len(second.entries)) == (0, 2)
    assert first.closing_balance is not None and second.closing_balance is not None
    assert (first.closing_balance.amount.amount,
            second.closing_balance.amount.amount) == (Decimal("0.00"), Decimal("1164.10"))
    assert first.statement_id == second.statement_id == "0"


def test_corrections_are_flagged_and_a_delete_is_not_an_entry() -> None:
    statement = one("correction.ofx")
    assert statement.format_version == "OFX 160"
    assert [e.bank_reference for e in statement.entries] == ["201611206", "201611208"]
    assert flag_messages(statement, "ofx_correction") == [
        "transaction FITID 201611206 replaces the earlier transaction FITID 201611201: an "
        "import of that one needs correcting",
        "transaction FITID 201611207 deletes, and is not read as an entry, the earlier "
        "transaction FITID 201611199: an import of that one needs correcting",
    ]


# --- repairs ------------------------------------------------------------------------------


def test_sgml_leaves_in_a_file_declared_as_xml() -> None:
    statement = one("repair-xml-unclosed.ofx")
    assert statement.format_version == "OFX 203"
    assert statement.entries[0].remittance == "CORNER CAFE SYDNEY"
    (message,) = flag_messages(statement)
    assert message.startswith("elements without a closing tag in a file declared as XML (18:")


def test_invented_closing_tags_are_ignored() -> None:
    statement = one("repair-invented-closing-tags.ofx")
    (entry,) = statement.entries
    assert (entry.amount.amount, entry.counterparty_name, entry.remittance) == (
        Decimal("-54.10"), "GREEN GROCER        DENVER", "0000123  GROCERY")
    assert statement.account.number == "371449635398431"
    assert statement.closing_balance is not None
    assert statement.closing_balance.amount.amount == Decimal("-1054.10")
    (message,) = flag_messages(statement)
    assert message.startswith("closing tags that close no open element ignored (16: "
                              "</SEVERITY>, </CODE>, </DTSERVER>, ...)")


def test_sgml_comments_are_removed_with_what_they_hide() -> None:
    statement = one("repair-sgml-comments.ofx")
    (entry,) = statement.entries  # the STMTTRN inside a comment is not one
    assert (entry.amount.amount, entry.bank_reference) == (Decimal("-300.00"), "00003")
    assert statement.account.bank_id == "121099999"
    assert "SGML comments removed (12)" in flag_messages(statement)


def test_raw_ampersands_are_kept_as_text() -> None:
    statement = one("repair-raw-ampersand.ofx")
    first, second = statement.entries
    assert first.remittance == 'Livraria A & B "Centro" 1/3'
    assert (second.counterparty_name, second.remittance) == ("AT&T", "Tom & Jerry €")
    assert flag_messages(statement) == ["'&' not starting an entity read as a literal '&' (2)"]


def test_decimal_commas_are_read_and_reported() -> None:
    statement = one("repair-decimal-comma.ofx")
    assert [e.amount.amount for e in statement.entries] == [Decimal("-200.00"),
                                                            Decimal("1058.53")]
    assert statement.closing_balance is not None
    assert str(statement.closing_balance.amount.amount) == "3200.29"
    assert flag_messages(statement) == [
        "amounts with a decimal comma read with a decimal point (3: TRNAMT -200,00, "
        "TRNAMT +1058,53, BALAMT 3200,29)"]


def test_empty_balance_amounts_leave_no_balance() -> None:
    statement = one("repair-empty-balamt.ofx")
    assert (statement.closing_balance, statement.available_balances) == (None, ())
    assert statement.entries[0].amount.amount == Decimal("120")
    assert flag_messages(statement) == [
        "empty elements ignored (2: <BALAMT>)",
        "LEDGERBAL without an amount (empty BALAMT) ignored: no closing balance",
        "AVAILBAL without an amount (empty BALAMT) ignored: no available balance",
    ]


def test_ledger_balance_inside_an_unclosed_transaction_list() -> None:
    statement = one("repair-ledgerbal-in-tranlist.ofx")
    assert len(statement.entries) == 2
    assert statement.closing_balance is not None
    assert statement.closing_balance.amount.amount == Decimal("-175.90")
    assert flag_messages(statement) == [
        "aggregates without a closing tag closed by the enclosing one (1: <BANKTRANLIST>)",
        "LEDGERBAL found inside BANKTRANLIST; read as the statement's LEDGERBAL",
    ]


def test_several_transaction_lists_are_read_as_one() -> None:
    statement = one("repair-several-tranlists.ofx")
    assert [e.bank_reference for e in statement.entries] == ["T-1", "T-2", "T-3"]
    assert (statement.period_start, statement.period_end) == (date(2026, 11, 1),
                                                              date(2026, 11, 30))
    assert flag_messages(statement) == [
        "3 BANKTRANLIST aggregates in one statement read as one list, the period spanning "
        "all of them"]


def test_no_period_no_balance_and_no_account() -> None:
    statement = one("repair-no-dtstart-no-account.ofx")
    assert (statement.period_start, statement.period_end, statement.closing_balance) == (
        None, None, None)
    assert statement.account.key == ":AUD"
    assert [f.code for f in statement.flags] == ["timezone_assumed", "ofx_account_missing"]


def test_leading_blank_lines_empty_tags_and_a_broken_server_time() -> None:
    statement = one("repair-leading-blank-lines-empty-tags.ofx")
    (entry,) = statement.entries
    assert (entry.amount.amount, entry.amount.currency, entry.bank_reference) == (
        Decimal("12.34"), "AUD", None)
    assert entry.fx is None  # CURSYM AUD against an unknown CURDEF: no exchange to state
    assert entry.bank_transaction_code is not None
    assert entry.bank_transaction_code.proprietary == "CREDIT"
    assert (statement.account.currency, statement.created_at) == (None, None)
    assert flag_messages(statement) == [
        "empty elements ignored (9: <LANGUAGE>, <CURDEF>, <BRANCHID>, ...)",
        "TRNTYPE values upper-cased (1: Credit)",
        "DTSERVER '20261204093914:014' is not an OFX date and time; the creation time is "
        "left empty",
        "LEDGERBAL without an amount (empty BALAMT) ignored: no closing balance",
    ]


# --- sniff --------------------------------------------------------------------------------

MT940_SAMPLE = b":20:STMT2026\r\n:25:NL91ABNA0417164300\r\n:28C:1/1\r\n:60F:C261130EUR100,00\r\n-"
CAMT_SAMPLE = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:'
               b'20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt/></Document>')


@pytest.mark.parametrize("path", inputs(), ids=lambda p: p.name)
def test_sniff_claims_every_fixture(path: Path) -> None:
    assert ofx.sniff(path.read_bytes()[:65536])


@pytest.mark.parametrize("head", [
    MT940_SAMPLE, CAMT_SAMPLE, b"", b"   ", b"OFX statement attached", b"<html><OFX>",
    b"<?xml version='1.0'?><Document><!-- <OFX> --></Document>", b"<!-- never closed <OFX>",
    b"{1:F01BANKBEBBAXXX}{4:\r\n:20:X\r\n-}",
])
def test_sniff_refuses_what_is_not_ofx(head: bytes) -> None:
    assert not ofx.sniff(head)


@pytest.mark.parametrize("head", [
    b"\n\n\nOFXHEADER:100\nDATA:OFXSGML", b"\xef\xbb\xbfOFXHEADER:100", b"ofxheader:100",
    b"<OFX><SIGNONMSGSRSV1>", b"  <ofx>", b"<!-- exported -->\n<OFX>",
    b'<?xml version="1.0"?>\n<?OFX OFXHEADER="200" VERSION="211"?>\n<OFX>',
    b'<?xml version="1.0"?>\n<OFX>', "<OFX>".encode("utf-16"), "\n<OFX>\n".encode("utf-16-be"),
    "OFXHEADER:100".encode("utf-32"),
])
def test_sniff_claims_ofx_heads(head: bytes) -> None:
    assert ofx.sniff(head)


def test_sniff_refuses_the_other_formats_fixtures_and_corpus_folders() -> None:
    others = [p for folder in ("mt940", "camt") for p in (DATA.parent / folder).glob("*")
              if p.is_file() and not p.name.endswith(".json")]
    if (CORPUS / "FACTS.tsv").exists():
        others += [p for folder in ("mt940", "camt") for p in (CORPUS / folder).iterdir()]
    claimed = [p.name for p in others if ofx.sniff(p.read_bytes()[:65536])]
    assert claimed == []


def test_sniff_is_fast_on_hostile_heads() -> None:
    for head in (b" " * 65536 + b"x", b"<!-- a -->" * 6500, b"<?xml" * 13000):
        assert not ofx.sniff(head)


# --- bad input ----------------------------------------------------------------------------

GOOD = (DATA / "bank-sgml-102.ofx").read_bytes()


def error(data: bytes, source: str = "bad.ofx") -> ParseError:
    with pytest.raises(ParseError) as caught:
        ofx.parse(data, source=source)
    assert caught.value.source == source
    assert str(caught.value).startswith(source)
    return caught.value


def test_empty_documents() -> None:
    for data in (b"", b"  \r\n\r\n", b"\xef\xbb\xbf"):
        assert error(data).message == "the document is empty"


def test_truncated_document_names_the_unclosed_element() -> None:
    cut = GOOD[: GOOD.index(b"<TRNAMT>-240.50")]
    failure = error(cut)
    assert failure.line == 54
    assert failure.field == "STMTTRN"
    assert "ends before </OFX>: <STMTTRN> opened at line 54 is never closed" in failure.message


def test_truncated_inside_a_tag() -> None:
    failure = error(GOOD[: GOOD.index(b"<TRNAMT>-240.50") + 4])
    assert "ends before </OFX>" in failure.message


@pytest.mark.parametrize("name", ["one-line.ofx", "bank-xml-211.ofx",
                                  "repair-sgml-comments.ofx"])
def test_every_prefix_is_refused_never_a_crash(name: str) -> None:
    data = (DATA / name).read_bytes().rstrip()
    for end in range(0, len(data) - 1, 5):
        with pytest.raises(ParseError):
            ofx.parse(data[:end], source="cut.ofx")


def test_malformed_amount_names_line_path_and_field() -> None:
    failure = error(GOOD.replace(b"<TRNAMT>-240.50", b"<TRNAMT>-240.5O"))
    assert (failure.line, failure.field) == (57, "TRNAMT")
    assert failure.path == "/OFX/BANKMSGSRSV1/STMTTRNRS/STMTRS/BANKTRANLIST/STMTTRN[2]/TRNAMT"
    assert failure.message == "expected a decimal amount like -12.50, got '-240.5O'"


def test_thousands_separators_are_refused_not_guessed() -> None:
    failure = error(GOOD.replace(b"<TRNAMT>1500.00", b"<TRNAMT>1.500,00"))
    assert failure.field == "TRNAMT"


@pytest.mark.parametrize(("written", "complaint"), [
    (b"20261309", "not a real date"), (b"20260230", "not a real date"),
    (b"2026-11-09", "expected an OFX date"), (b"20261109[+25:XYZ]", "out of range"),
])
def test_malformed_dates(written: bytes, complaint: str) -> None:
    failure = error(GOOD.replace(b"<DTPOSTED>20261109", b"<DTPOSTED>" + written))
    assert (failure.field, failure.line) == ("DTPOSTED", 56)
    assert complaint in failure.message


def test_missing_posting_date() -> None:
    failure = error(GOOD.replace(b"<DTPOSTED>20261109\n", b""))
    assert failure.field == "DTPOSTED"
    assert failure.message == "<STMTTRN> has no DTPOSTED: expected a date"


def test_a_camt_document_handed_to_the_ofx_parser() -> None:
    failure = error(CAMT_SAMPLE)
    assert failure.message.startswith("expected <OFX> as the document element, found "
                                      "'<Document xmlns=")
    assert failure.line == 2


def test_mt940_handed_to_the_ofx_parser() -> None:
    assert "expected an OFX header" in error(MT940_SAMPLE + b"<x>").message
    assert "no OFX content" in error(MT940_SAMPLE).message


def test_error_response_quotes_the_server() -> None:
    data = GOOD.replace(b"<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<STMTRS>",
                        b"<CODE>2000\n<SEVERITY>ERROR\n<MESSAGE>Account locked\n</STATUS>\n"
                        b"<STMTRS>")
    data = data[: data.index(b"<STMTRS>")] + b"</STMTTRNRS></BANKMSGSRSV1></OFX>"
    failure = error(data)
    assert failure.message == ("the bank answered with an error instead of a statement: "
                               "status 2000 (ERROR) 'Account locked'")
    assert failure.path == "/OFX/BANKMSGSRSV1/STMTTRNRS"


def test_signon_failure_quotes_the_server() -> None:
    data = (b"<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>15500<SEVERITY>ERROR"
            b"<MESSAGE>Invalid password</STATUS><DTSERVER>20261201</SONRS></SIGNONMSGSRSV1>"
            b"</OFX>")
    assert "refused the sign-on: status 15500 (ERROR) 'Invalid password'" in error(data).message


def test_a_warning_status_beside_a_statement_is_flagged() -> None:
    data = GOOD.replace(b"<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<STMTRS>",
                        b"<CODE>2000\n<SEVERITY>WARN\n</STATUS>\n<STMTRS>")
    (statement,) = ofx.parse(data, source="warn.ofx")
    assert flag_messages(statement, "ofx_status") == [
        "the response carries status 2000 (WARN) '' beside its statement"]


def test_investment_statements_are_refused() -> None:
    data = (b"<OFX><INVSTMTMSGSRSV1><INVSTMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO"
            b"</STATUS><INVSTMTRS><DTASOF>20261201<CURDEF>USD</INVSTMTRS></INVSTMTTRNRS>"
            b"</INVSTMTMSGSRSV1></OFX>")
    assert "investment statements (INVSTMTRS) are not supported" in error(data).message


def test_a_file_without_statements() -> None:
    data = b"<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS></SONRS>" \
           b"</SIGNONMSGSRSV1></OFX>"
    assert error(data).message.startswith("no statement in the OFX document")


@pytest.mark.parametrize(("old", "new", "field", "complaint"), [
    (b"<CURDEF>USD", b"<CURDEF>XYZ", "CURDEF", "expected an ISO 4217 currency code"),
    (b"<CURDEF>USD", b"", "CURDEF", "no currency"),
    (b"<ACCTID>8800123456\n", b"", "ACCTID", "has no ACCTID"),
    (b"<DTASOF>20261130235959\n</LEDGERBAL>", b"</LEDGERBAL>", "DTASOF", "has no DTASOF"),
    (b"<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<DTSERVER>", b"<SEVERITY>INFO\n</STATUS>\n"
     b"<DTSERVER>", "CODE", "numeric CODE"),
    (b"<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<DTSERVER>", "<CODE>0\u00b3\n<SEVERITY>INFO\n"
     "</STATUS>\n<DTSERVER>".encode(), "CODE", "numeric CODE"),
    (b"<FITID>LS-2026-11-0004\n", b"<FITID>LS-2026-11-0004\n<CORRECTACTION>UNDO\n",
     "CORRECTACTION", "expected REPLACE or DELETE"),
    (b"<NAME>MONTHLY SERVICE FEE\n", b"<CURRENCY><CURSYM>CAD</CURRENCY><ORIGCURRENCY>"
     b"<CURSYM>CAD</ORIGCURRENCY>", "ORIGCURRENCY", "both CURRENCY and ORIGCURRENCY"),
    (b"<LEDGERBAL>", b"<LEDGERBAL><BALAMT>1<DTASOF>20261130</LEDGERBAL><LEDGERBAL>",
     "LEDGERBAL", "a second LEDGERBAL"),
])
def test_invalid_values_name_their_field(old: bytes, new: bytes, field: str,
                                         complaint: str) -> None:
    assert old in GOOD
    failure = error(GOOD.replace(old, new, 1))
    assert failure.field == field
    assert complaint in failure.message


def test_a_transaction_outside_any_list_is_refused() -> None:
    data = GOOD.replace(b"<LEDGERBAL>", b"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261130"
                        b"<TRNAMT>-1<FITID>Z</STMTTRN><LEDGERBAL>")
    failure = error(data)
    assert failure.field == "STMTTRN"
    assert "5 STMTTRN in the document but 4 in statements" in failure.message


def test_text_where_an_element_belongs() -> None:
    failure = error(GOOD.replace(b"<BANKTRANLIST>\n", b"<BANKTRANLIST>\nstray words\n"))
    assert failure.message == ("unexpected text 'stray words' inside <BANKTRANLIST>: expected "
                               "an element")
    assert failure.line == 42


def test_content_after_the_document() -> None:
    failure = error(GOOD + b"<OFX></OFX>")
    assert failure.message == "content after </OFX>: expected the end of the document"


def test_unterminated_comment() -> None:
    failure = error(GOOD.replace(b"<STMTRS>", b"<!-- oops <STMTRS>"))
    assert "never closed with '-->'" in failure.message


def test_hostile_nesting_is_refused() -> None:
    deep = b"<OFX>" + b"<A>" * 5000 + b"</A>" * 5000 + b"</OFX>"
    assert "nested more than" in error(deep).message


def test_malformed_header_line() -> None:
    failure = error(GOOD.replace(b"SECURITY:NONE", b"SECURITY NONE"))
    assert (failure.line, failure.field) == (4, "OFXHEADER")
    assert "malformed OFX header line 'SECURITY NONE'" in failure.message


# --- the reference reader (ofxparse) -------------------------------------------------------


def test_no_warning_escapes_the_parser() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in inputs():
            ofx.parse(path.read_bytes(), source=path.name)
    assert [str(w.message) for w in caught] == []


def test_an_ofxparse_exception_becomes_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(ofx_reference.OfxParser, "parse", explode)
    failure = error(GOOD)
    assert failure.message == ("ofxparse cannot read the document even after repairs: "
                               "IndexError: list index out of range")


def test_a_transaction_dropped_by_ofxparse_refuses_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = ofx_reference.read_with_ofxparse

    def drop_last(document: str, *, source: str) -> object:
        reading = real(document, source=source)
        (statement,) = reading.statements
        shorter = ofx_reference.StatementReading(
            statement.kind, statement.account_id, statement.transactions[:-1],
            statement.ledger_balance)
        return type(reading)((shorter,), reading.discarded)

    monkeypatch.setattr(ofx_reference, "read_with_ofxparse", drop_last)
    failure = error(GOOD)
    assert failure.message == ("ofxparse and this parser read statement 1 differently: "
                               "3 transactions for ofxparse, 4 here")
    assert failure.path == "/OFX/BANKMSGSRSV1/STMTTRNRS/STMTRS"


# --- properties ---------------------------------------------------------------------------

_AMOUNTS = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=16,
                       allow_nan=False, allow_infinity=False)


@given(amounts=st.lists(_AMOUNTS, min_size=1, max_size=5))
def test_amounts_come_back_exactly_as_written(amounts: list[Decimal]) -> None:
    transactions = "".join(
        f"<STMTTRN><TRNTYPE>OTHER<DTPOSTED>20261101<TRNAMT>{amount:f}<FITID>F{i}</STMTTRN>"
        for i, amount in enumerate(amounts))
    data = ("<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
            "<STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>1<ACCTID>2</BANKACCTFROM><BANKTRANLIST>"
            f"{transactions}</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>")
    (statement,) = ofx.parse(data.encode(), source="prop.ofx")
    assert [f"{e.amount.amount:f}" for e in statement.entries] == [f"{a:f}" for a in amounts]


# --- layer 1: header ----------------------------------------------------------------------


def test_header_of_ofx1_gives_version_and_body_start() -> None:
    text = ofx_header.read(GOOD, source="h.ofx")
    assert (text.version, text.flags) == ("102", ())
    assert text.text[text.body_start:].startswith("<OFX>")


def test_header_of_ofx2_comes_from_the_processing_instruction() -> None:
    text = ofx_header.read(b'<?xml version="1.0"?>\r\n<?OFX OFXHEADER="200" VERSION="211"?>'
                           b"\r\n<OFX></OFX>", source="h.ofx")
    assert text.version == "211"
    assert "\r" not in text.text


def test_header_after_blank_lines_and_a_byte_order_mark() -> None:
    text = ofx_header.read(b"\xef\xbb\xbf\r\n\r\n" + GOOD, source="h.ofx")
    assert text.version == "102"
    assert text.text.count("\n", 0, text.body_start) == 12


def test_header_fields_may_be_missing_or_unknown() -> None:
    text = ofx_header.read(b"OFXHEADER:100\nX-BANK:whatever\n\n<OFX></OFX>", source="h.ofx")
    assert (text.version, text.flags) == (None, ())


def test_header_with_a_bad_version() -> None:
    with pytest.raises(ParseError, match="VERSION 'one': expected digits"):
        ofx_header.read(b"OFXHEADER:100\nVERSION:one\n\n<OFX></OFX>", source="h.ofx")


def test_text_before_the_body_that_is_not_a_header() -> None:
    with pytest.raises(ParseError, match="expected an OFX header") as caught:
        ofx_header.read(b"\n\nHello\n<OFX></OFX>", source="h.ofx")
    assert caught.value.line == 3


def test_undecodable_bytes_without_a_charset_are_guessed_and_flagged() -> None:
    text = ofx_header.read(b"<OFX><NAME>Caf\xe9</NAME></OFX>", source="h.ofx")
    assert "Café" in text.text
    assert [f.code for f in text.flags] == ["encoding_guessed", "ofx_header_missing"]


def test_utf16_without_a_byte_order_mark_is_recognised() -> None:
    text = ofx_header.read("<OFX></OFX>".encode("utf-16-le"), source="h.ofx")
    assert text.text == "<OFX></OFX>"


# --- layer 2: values ----------------------------------------------------------------------


@pytest.mark.parametrize(("written", "day", "utc"), [
    ("20261130", date(2026, 11, 30), datetime(2026, 11, 30, tzinfo=UTC)),
    ("202611301120", date(2026, 11, 30), datetime(2026, 11, 30, 11, 20, tzinfo=UTC)),
    ("20261130235959.5[-5:EST]", date(2026, 11, 30),
     datetime(2026, 12, 1, 4, 59, 59, 500000, tzinfo=UTC)),
    ("20261201013000[+10:AEST]", date(2026, 12, 1), datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),
    ("20261130120000[-3.5:NST]", date(2026, 11, 30), datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),
    ("20261130120000 [0]", date(2026, 11, 30), datetime(2026, 11, 30, 12, tzinfo=UTC)),
])
def test_ofx_datetimes(written: str, day: date, utc: datetime) -> None:
    value = ofx_values.parse_datetime(written)
    assert (value.date, value.to_utc()) == (day, utc)


@pytest.mark.parametrize("written", ["2026113", "20261130T1200", "20261130[-5", "x", "",
                                     "20261130120000:014", "20261131", "20261130246000"])
def test_not_ofx_datetimes(written: str) -> None:
    with pytest.raises(ValueError, match=r"OFX date|real date"):
        ofx_values.parse_datetime(written)


def test_amounts() -> None:
    assert ofx_values.parse_amount("+3") == Decimal("3")
    assert str(ofx_values.parse_amount("3858.6713352286442")) == "3858.6713352286442"
    for bad in ("1,000.00", "1e5", "NaN", "", "12-", "- 1"):
        with pytest.raises(ValueError, match="expected a decimal amount"):
            ofx_values.parse_amount(bad)
    assert ofx_values.decimal_comma("-200,00") == "-200.00"
    assert ofx_values.decimal_comma(" +1058,53 ") == "+1058.53"
    assert ofx_values.decimal_comma("1.234,56") is None
    assert ofx_values.decimal_comma("1,234,56") is None


def test_iban_recognition() -> None:
    assert ofx_values.as_iban("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert ofx_values.as_iban("DE88370400440532013000") is None  # check digits wrong
    assert ofx_values.as_iban("8800123456") is None
    assert ofx_values.as_iban("11111111-UUID-UUID") is None


# --- layer 3: tree and repairs ------------------------------------------------------------


def tree(body: str, *, xml: bool = False) -> tuple[ofx_tree.Element, list[str]]:
    repairs = ofx_tree.Repairs()
    root = ofx_tree.parse_tree(body, 0, source="t.ofx", xml=xml, repairs=repairs)
    return root, [f.message for f in repairs.flags()]


def test_sgml_leaves_and_aggregates() -> None:
    root, repairs = tree("<OFX><A><B>1<C>two words </C><D></D></A><E/></OFX>")
    (a, e) = root.children
    assert (a.tag, a.text, [(c.tag, c.text) for c in a.children]) == (
        "A", None, [("B", "1"), ("C", "two words"), ("D", "")])
    assert (e.tag, e.text) == ("E", "")
    assert repairs == []
    assert a.children[1].path == "/OFX/A/C"


def test_empty_known_leaf_is_not_taken_for_an_aggregate() -> None:
    root, _ = tree("<OFX><LEDGERBAL><BALAMT>\n<DTASOF>20261130\n</LEDGERBAL></OFX>")
    (balance,) = root.children
    assert [(c.tag, c.text) for c in balance.children] == [("BALAMT", ""),
                                                            ("DTASOF", "20261130")]


def test_empty_known_aggregate_stays_an_aggregate() -> None:
    root, _ = tree("<OFX><BANKTRANLIST></BANKTRANLIST></OFX>")
    assert (root.children[0].text, root.children[0].children) == (None, [])


def test_an_aggregate_never_contains_itself() -> None:
    root, repairs = tree("<OFX><L><STMTTRN><X>1<STMTTRN><X>2</STMTTRN></L></OFX>")
    (lst,) = root.children
    assert [c.tag for c in lst.children] == ["STMTTRN", "STMTTRN"]
    assert repairs == ["aggregates without a closing tag closed by the next one (1: <STMTTRN>)"]


def test_paths_number_repeated_elements() -> None:
    root, _ = tree("<OFX><S><T>1</T><T>2</T></S></OFX>")
    assert [t.path for t in root.children[0].children] == ["/OFX/S/T[1]", "/OFX/S/T[2]"]


def test_entities_cdata_and_invalid_references() -> None:
    root, repairs = tree("<OFX><A>a &lt;b&gt; &#233;&#x20AC; &#0; <![CDATA[&amp;<x>]]></A></OFX>")
    assert root.children[0].text == "a <b> é€ &#0; &amp;<x>"
    assert repairs == ["invalid character references kept as text (1: &#0;)"]


def test_a_raw_less_than_sign_is_text() -> None:
    root, repairs = tree("<OFX><MEMO>1 < 2</OFX>")
    assert root.children[0].text == "1 < 2"
    assert repairs == ["'<' not starting a tag read as a literal '<' (1)"]


def test_serialize_closes_everything_and_reads_back_the_same() -> None:
    root, _ = tree("<OFX><A><B>x & y<C>1</A><D>&lt;</D></OFX>")
    written = ofx_tree.serialize(root)
    assert written == ("<OFX>\n<A>\n<B>x &amp; y</B>\n<C>1</C>\n</A>\n<D>&lt;</D>\n</OFX>\n")
    again, repairs = tree(written, xml=True)
    assert ofx_tree.serialize(again) == written
    assert repairs == []


def test_clean_document_and_statement_repairs() -> None:
    root, _ = tree("<OFX><STMTRS><CURDEF><BANKTRANLIST><STMTTRN><TRNTYPE>Debit<TRNAMT>-1,5"
                   "</STMTTRN><LEDGERBAL><BALAMT>2,5<DTASOF>20261130</LEDGERBAL>"
                   "</BANKTRANLIST><AVAILBAL><BALAMT><DTASOF>1</AVAILBAL></STMTRS></OFX>")
    repairs = ofx_tree.Repairs()
    ofx_clean.clean_document(root, repairs)
    (statement,) = root.children
    flags = ofx_clean.clean_statement(statement)
    assert [c.tag for c in statement.children] == ["BANKTRANLIST", "LEDGERBAL"]
    transaction = statement.children[0].children[0]
    assert (transaction.value("TRNTYPE"), transaction.value("TRNAMT")) == ("DEBIT", "-1.5")
    assert [f.message for f in repairs.flags()] == [
        "empty elements ignored (2: <CURDEF>, <BALAMT>)",
        "TRNTYPE values upper-cased (1: Debit)",
        "amounts with a decimal comma read with a decimal point (2: TRNAMT -1,5, BALAMT 2,5)",
    ]
    assert [f.message for f in flags] == [
        "LEDGERBAL found inside BANKTRANLIST; read as the statement's LEDGERBAL",
        "AVAILBAL without an amount (empty BALAMT) ignored: no available balance",
    ]


# --- layer 4: the reference reader --------------------------------------------------------


def test_ofxparse_reads_what_serialize_writes() -> None:
    root, _ = tree(GOOD.decode()[GOOD.index(b"<OFX>"):])
    reading = ofx_reference.read_with_ofxparse(ofx_tree.serialize(root), source="r.ofx")
    (statement,) = reading.statements
    assert (statement.kind, statement.account_id, statement.ledger_balance) == (
        "STMTRS", "8800123456", Decimal("4217.35"))
    assert statement.transactions[2] == ("LS-2026-11-0003", Decimal("-1000"))
    assert reading.discarded == (0,)


def test_cross_check_names_the_first_difference() -> None:
    mine = ofx_reference.StatementReading("STMTRS", "1", (("A", Decimal(1)), ("B", Decimal(2))),
                                          None, line=7, path="/OFX/S")
    document = ("<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR</CURDEF><BANKACCTFROM>"
                "<ACCTID>1</ACCTID></BANKACCTFROM><BANKTRANLIST><STMTTRN><TRNTYPE>X</TRNTYPE>"
                "<DTPOSTED>20261101</DTPOSTED><TRNAMT>1</TRNAMT><FITID>A</FITID></STMTTRN>"
                "<STMTTRN><TRNTYPE>X</TRNTYPE><DTPOSTED>20261101</DTPOSTED><TRNAMT>2.5</TRNAMT>"
                "<FITID>B</FITID></STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1>"
                "</OFX>")
    with pytest.raises(ParseError) as caught:
        ofx_reference.cross_check([mine], document, source="r.ofx")
    assert caught.value.message == (
        "ofxparse and this parser read statement 1 differently: transaction 2 is FITID B "
        "amount 2.5 for ofxparse, FITID B amount 2 here")
    assert (caught.value.line, caught.value.path) == (7, "/OFX/S")
    with pytest.raises(ParseError, match="ofxparse finds 1 statements where this parser "
                                         "finds 2"):
        ofx_reference.cross_check([mine, mine], document, source="r.ofx")


def test_an_account_after_the_transactions_is_still_the_account() -> None:
    # ofxparse takes the first ACCTID below STMTRS: here that would be the BANKACCTTO's.
    start, end = GOOD.index(b"<BANKACCTFROM>"), GOOD.index(b"</BANKACCTFROM>") + 16
    account = GOOD[start:end]
    moved = GOOD[:start] + GOOD[end:]
    moved = moved.replace(b"</BANKTRANLIST>\n", b"</BANKTRANLIST>\n" + account)
    (statement,) = ofx.parse(moved, source="moved.ofx")
    assert statement.account.number == "8800123456"
    assert flag_messages(statement) == [
        "BANKACCTFROM came after BANKTRANLIST; read as if before it, where OFX puts it"]


def test_an_empty_ofx_element() -> None:
    assert error(b"<OFX/>").message.startswith("no statement in the OFX document")


@pytest.mark.parametrize(("name", "failure"), [
    ("one-line.ofx", "too many values to unpack"),
    ("repair-empty-balamt.ofx", "Empty ledger balance"),
    ("repair-leading-blank-lines-empty-tags.ofx", "list index out of range"),
])
def test_ofxparse_alone_fails_on_the_files_the_cleaning_step_repairs(name: str,
                                                                     failure: str) -> None:
    data = (DATA / name).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(Exception, match=failure):
            ofx_reference.OfxParser.parse(io.BytesIO(data))
    assert len(ofx.parse(data, source=name)) == 1


def test_a_statement_outside_its_transaction_response_is_read_and_flagged() -> None:
    data = (b"<OFX><BANKMSGSRSV1><STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>1<ACCTID>2"
            b"</BANKACCTFROM><BANKTRANLIST><STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261101"
            b"<TRNAMT>-5<FITID>A</STMTTRN></BANKTRANLIST></STMTRS></BANKMSGSRSV1></OFX>")
    (statement,) = ofx.parse(data, source="loose.ofx")
    assert (statement.statement_id, len(statement.entries)) == (None, 1)
    assert flag_messages(statement) == [
        "<STMTRS> outside a STMTTRNRS or CCSTMTTRNRS read as a statement all the same"]


def test_a_charset_that_is_no_codec_name() -> None:
    for charset in (b"1252\x00", b"99999", b"\xff"):
        data = GOOD.replace(b"CHARSET:1252", b"CHARSET:" + charset)
        assert len(ofx.parse(data, source="c.ofx")[0].entries) == 4
