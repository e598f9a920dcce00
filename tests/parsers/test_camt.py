"""camt.052/053/054: golden files, every feature on our own fixtures, and the bad paths."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

import parsers
from parsers import camt
from parsers.camt_xml import Shapes
from parsers.errors import ParseError
from parsers.jsonl import statement_to_dict
from parsers.model import BalanceKind, Charge, EntryStatus, FxDetails, Statement
from parsers.money import Money
from tests.corpus import CORPUS

DATA = Path(__file__).resolve().parents[1] / "data" / "camt"
CASES = sorted(p for p in DATA.glob("*.xml"))
REGENERATE = os.environ.get("RECON_REGENERATE_GOLDEN") == "1"


def load(name: str) -> tuple[Statement, ...]:
    return parsers.parse((DATA / name).read_bytes(), source=name)


def flag_codes(statement: Statement) -> list[str]:
    return [f.code for f in statement.flags]


# -- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    got = [statement_to_dict(s) for s in parsers.parse(path.read_bytes(), source=path.name)]
    expected = path.with_name(f"{path.stem}.expected.json")
    if REGENERATE:
        expected.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    assert expected.exists(), f"no golden file {expected.name}: run with RECON_REGENERATE_GOLDEN=1"
    assert json.loads(expected.read_text(encoding="utf-8")) == got


def test_no_golden_file_is_orphaned() -> None:
    goldens = {p.name.removesuffix(".expected.json") for p in DATA.glob("*.expected.json")}
    assert goldens == {p.stem for p in CASES}
    assert len(CASES) >= 12  # .02, .04, .08 and a current version of each message type


# -- camt.053 ---------------------------------------------------------------------------------


def test_053_v02_statement_header_and_balances() -> None:
    (statement,) = load("camt053_v02.xml")
    assert statement.format == "camt.053"
    assert statement.format_version == "camt.053.001.02"
    assert statement.statement_id == "STMT-2024-03-14"
    assert statement.sequence == "74"  # ElctrncSeqNb before LglSeqNb
    assert statement.created_at == datetime(2024, 3, 15, 5, 30, tzinfo=UTC)
    assert (statement.period_start, statement.period_end) == (date(2024, 3, 14),
                                                              date(2024, 3, 14))
    account = statement.account
    assert (account.iban, account.number, account.currency) == ("DE89370400440532013000",
                                                                None, "EUR")
    assert (account.bic, account.bank_id, account.owner_name) == ("COBADEFFXXX", "37040044",
                                                                  "Muster Handels GmbH")
    assert statement.opening_balance is not None and statement.closing_balance is not None
    assert statement.opening_balance.amount == Money(Decimal("1000.00"), "EUR")
    assert statement.opening_balance.date == date(2024, 3, 13)
    assert statement.closing_balance.amount == Money(Decimal("897.00"), "EUR")
    assert [(b.kind, b.amount.amount) for b in statement.available_balances] == [
        (BalanceKind.CLOSING_AVAILABLE, Decimal("857.00")),
        (BalanceKind.FORWARD_AVAILABLE, Decimal("-12.50")),
    ]
    # XPCD is not in the model: left out, and said so. The balances add up: no mismatch.
    assert flag_codes(statement) == ["balance_type_unsupported"]
    assert "XPCD" in statement.flags[0].message
    assert statement.flags[0].location == "/Document/BkToCstmrStmt/Stmt[1]/Bal[4]"


def test_053_v02_single_transaction_details_go_on_the_entry() -> None:
    entry = load("camt053_v02.xml")[0].entries[0]
    assert entry.amount == Money(Decimal("250.00"), "EUR")
    assert entry.status is EntryStatus.BOOKED
    assert entry.customer_reference == "0001"
    assert entry.bank_reference == "BANKREF-0001"  # the entry's own, not TxDtls/Refs
    assert entry.end_to_end_id == "E2E-4711"
    assert (entry.counterparty_name, entry.counterparty_account, entry.counterparty_bic) == (
        "Kunde AG", "DE02120300000000202051", "BYLADEM1001")
    assert entry.remittance == "Rechnung 4711 Kundennummer 0815"
    assert entry.creditor_reference == "RF18539007547034"
    code = entry.bank_transaction_code
    assert code is not None
    assert (code.domain, code.family, code.subfamily) == ("PMNT", "RCDT", "ESCT")
    assert (code.proprietary, code.issuer, code.swift, code.gvc) == (
        "NTRF+166+9310", "DK", "NTRF", "166")
    assert entry.transactions == ()


def test_053_v02_batch_entry_lists_its_transactions() -> None:
    entry = load("camt053_v02.xml")[0].entries[1]
    assert entry.amount.amount == Decimal("-300.00")
    assert entry.counterparty_name is None
    first, second = entry.transactions
    assert first.amount == Money(Decimal("-120.00"), "EUR")  # sign of the entry (no CdtDbtInd)
    assert first.end_to_end_id is None  # NOTPROVIDED
    assert first.bank_reference == "TXREF-0002-1"
    assert (first.counterparty_name, first.counterparty_account, first.counterparty_bic) == (
        "Lieferant Eins KG", "12345678", "DEUTDEFF")
    assert first.remittance == "Bestellung 88"
    assert second.amount == Money(Decimal("-180.00"), "EUR")
    assert (second.end_to_end_id, second.counterparty_account) == (
        "E2E-B2", "DE75512108001245126199")


def test_053_v02_reversal_keeps_the_sign_and_the_original_parties() -> None:
    entry = load("camt053_v02.xml")[0].entries[2]
    assert entry.reversal is True
    assert entry.amount.amount == Decimal("-53.00")  # a reversed collection is a debit
    # The parties are those of the collection reversed: the counterparty is its debtor.
    assert entry.counterparty_name == "Saeumig Zahler"
    assert entry.counterparty_account == "DE44500105175407324931"
    assert entry.counterparty_bic == "INGDDEFFXXX"
    assert entry.mandate_id == "MANDATE-77"
    assert entry.fx == FxDetails(instructed_amount=Money(Decimal("50.00"), "EUR"))
    assert entry.charges == (
        Charge(Money(Decimal("-3.00"), "EUR"), None, "COMM"),
        Charge(Money(Decimal("0.00"), "EUR"), None, "RETURNFEE"),
    )


def test_053_v02_pending_entry_with_fx_and_datetime_booking() -> None:
    entry = load("camt053_v02.xml")[0].entries[3]
    assert entry.status is EntryStatus.PENDING
    assert entry.booking_date == date(2024, 3, 14)  # DtTm: the date as written
    assert entry.value_date == date(2024, 3, 15)
    assert entry.fx == FxDetails(Money(Decimal("43.50"), "USD"), Decimal("0.9195"), "USD", "EUR")
    assert entry.additional_info == "Kartenzahlung Coffee Shop New York"


def test_053_v04_prcd_opening_inferred_currency_and_batch_of_one() -> None:
    (statement,) = load("camt053_v04.xml")
    assert statement.format_version == "camt.053.001.04"
    assert statement.sequence == "77"  # LglSeqNb when there is no ElctrncSeqNb
    assert statement.account.number == "0532013000"
    assert statement.account.bic == "UBSWCHZH80A"
    assert statement.account.currency == "CHF"
    assert statement.opening_balance is not None
    assert statement.opening_balance.kind is BalanceKind.PREVIOUSLY_CLOSED
    assert flag_codes(statement) == ["opening_balance_substitute", "currency_inferred"]
    assert "PRCD" in statement.flags[0].message
    first, second = statement.entries
    # Btch with NbOfTxs 1: the details are the entry's; the reference comes from TxDtls.
    assert first.transactions == ()
    assert first.bank_reference == "CH-TX-1"
    assert first.counterparty_name == "Overseas Buyer Inc"  # Dbtr before UltmtDbtr
    assert first.counterparty_account == "000123456789"
    assert first.counterparty_bic == "CHASUS33"
    code = first.bank_transaction_code  # the entry's BkTxCd is empty: the TxDtls one
    assert code is not None and (code.subfamily, code.proprietary) == ("XBCT", "Z05")
    assert first.fx == FxDetails(Money(Decimal("1300.00"), "USD"), Decimal("0.9230769231"),
                                 "USD", "CHF")
    assert first.charges == (Charge(Money(Decimal("-15.00"), "CHF"), True, "COMM"),)
    # A Chrgs with only a total is one charge of that total.
    assert second.charges == (Charge(Money(Decimal("-2.50"), "CHF"), None, None),)
    assert second.additional_info == "E-Banking Zahlung"


def test_053_v08_two_statements_status_codes_and_ultimate_debtor() -> None:
    first, second = load("camt053_v08.xml")
    assert first.created_at is None  # optional from .08
    assert first.opening_balance is not None and first.opening_balance.date == date(2024, 3, 14)
    credit, future, fee = first.entries
    assert credit.counterparty_name == "Ultimate Payer Ltd"  # Dbtr has no name
    assert credit.counterparty_account == "40-20-10 12345678"
    assert future.status is EntryStatus.PENDING
    assert future.counterparty_name == "Charity Fund"
    assert future.counterparty_bic == "NWBKGB2L"
    assert flag_codes(first) == ["entry_status_future"]
    assert first.flags[0].location == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]"
    assert fee.charges == (
        Charge(Money(Decimal("-1.00"), "GBP"), None, None),
        Charge(Money(Decimal("0.50"), "GBP"), False, "FEE-REFUND"),  # CRDT: money back
    )
    # Only available balances: kept as such, no booked opening or closing is made up.
    assert second.opening_balance is None and second.closing_balance is None
    assert [b.kind for b in second.available_balances] == [BalanceKind.OPENING_AVAILABLE,
                                                           BalanceKind.CLOSING_AVAILABLE]
    assert second.created_at == datetime(2024, 3, 15, 7, 0, 0, 123456, tzinfo=UTC)
    assert flag_codes(second) == ["timezone_assumed", "time_truncated"]
    code = second.entries[0].bank_transaction_code
    assert code is not None and (code.proprietary, code.issuer, code.swift) == (
        "CASH-WDL", "BARC", None)


def test_053_v12_current_version_with_crlf() -> None:
    (statement,) = load("camt053_v12.xml")
    assert statement.format_version == "camt.053.001.12"
    assert statement.created_at == datetime(2025, 7, 1, 2, 15, tzinfo=UTC)
    assert statement.period_end == date(2025, 6, 30)  # the date as written, not in UTC
    assert statement.opening_balance is not None
    assert statement.opening_balance.amount.amount == Decimal("-10.00")
    credit, debit = statement.entries
    code = credit.bank_transaction_code
    assert code is not None and (code.swift, code.gvc) == ("NMSC", "201")
    assert credit.creditor_reference == "RF712348231"
    assert (debit.mandate_id, debit.counterparty_name) == ("NL-MANDATE-0042",
                                                           "Energie Maatschappij")
    assert statement.flags == ()


def test_053_quirks_no_namespace_bom_missing_codes() -> None:
    (statement,) = load("camt053_quirks.xml")
    assert statement.format == "camt.053"
    assert statement.format_version is None  # no namespace, no V-suffix: unknown
    assert statement.account.number == "LT-ÖÄÜ-1"
    assert statement.account.owner_name == "Šiaulių Žąsys UAB"
    assert statement.currency == "XXX"
    assert statement.opening_balance is not None
    assert statement.opening_balance.amount == Money(Decimal("0.12345"), "XXX")
    assert flag_codes(statement) == ["balance_sign_assumed", "balance_type_unsupported",
                                     "entry_status_assumed", "currency_inferred"]
    assert "1 more like it" in statement.flags[0].message
    (entry,) = statement.entries
    assert entry.status is EntryStatus.BOOKED
    assert len(entry.transactions) == 1  # NbOfTxs 6: a batch, though one TxDtls is shown


def test_053_utf16() -> None:
    (statement,) = load("camt053_utf16.xml")
    assert statement.account.owner_name == "Łódzka Spółdzielnia Mleczarska"
    assert statement.entries[0].remittance == "Faktura nr 5/2024 \u2013 dzi\u0119kujemy"


# -- camt.052 and camt.054 --------------------------------------------------------------------


def test_052_v01_element_names() -> None:
    (report,) = load("camt052_v01.xml")
    assert (report.format, report.format_version) == ("camt.052", "camt.052.001.01")
    assert report.account.number == "5490-1234567"
    assert report.account.bic == "ESSESESS"
    assert report.opening_balance is not None and report.closing_balance is not None
    assert (report.opening_balance.amount.amount, report.closing_balance.amount.amount) == (
        Decimal("100"), Decimal("65"))
    assert flag_codes(report) == ["opening_balance_substitute", "closing_balance_substitute"]
    credit, salaries = report.entries
    assert credit.end_to_end_id == "SE-E2E-1"  # TxDtls directly under Ntry
    assert credit.counterparty_account == "52001234567"  # BBAN
    assert credit.charges == (Charge(Money(Decimal("-2"), "SEK"), None, "AVGF"),)
    assert credit.booking_date == date(2010, 5, 4)
    assert salaries.transactions == ()  # a batch of 3 with no details shown


def test_052_v02_cr_line_endings_prcd_and_interim() -> None:
    (report,) = load("camt052_v02.xml")
    assert report.opening_balance is not None and report.closing_balance is not None
    assert report.opening_balance.kind is BalanceKind.PREVIOUSLY_CLOSED
    assert report.closing_balance.kind is BalanceKind.INTERIM_BOOKED
    assert [b.kind for b in report.available_balances] == [BalanceKind.INTERIM_AVAILABLE]
    assert [e.status for e in report.entries] == [EntryStatus.BOOKED, EntryStatus.PENDING,
                                                  EntryStatus.INFO]
    assert report.entries[0].creditor_reference == "12344"
    assert "balance_mismatch" not in flag_codes(report)  # 1000 + 40 = 1040


def test_052_v04_single_interim_balance_is_the_closing() -> None:
    (report,) = load("camt052_v04.xml")
    assert report.opening_balance is None
    assert report.closing_balance is not None
    assert report.closing_balance.amount.amount == Decimal("5000.00")
    assert report.entries[0].counterparty_bic == "CRESCHZZ80A"


def test_052_v08_dk_code_from_the_transaction() -> None:
    (report,) = load("camt052_v08.xml")
    debit, pending = report.entries
    code = debit.bank_transaction_code
    assert code is not None and (code.swift, code.gvc, code.issuer) == ("NDDT", "105", "DK")
    assert debit.counterparty_name == "Zeitungsverlag GmbH"  # a debit: the creditor
    assert debit.mandate_id == "ZEIT-4711"
    assert debit.bank_reference == "NONREF"  # kept as written
    assert pending.status is EntryStatus.PENDING
    assert pending.bank_transaction_code is None  # an empty BkTxCd


def test_052_v12_report_without_balances() -> None:
    (report,) = load("camt052_v12.xml")
    assert report.format_version == "camt.052.001.12"
    assert report.opening_balance is None and report.available_balances == ()
    assert report.entries[0].remittance == "RE-2024-999"


def test_054_v02_batch_without_count_and_reversal() -> None:
    (notification,) = load("camt054_v02.xml")
    assert notification.format == "camt.054"
    batch, reversal = notification.entries
    assert [t.amount for t in batch.transactions] == [Money(Decimal("100.00"), "EUR"),
                                                      Money(Decimal("50.00"), "EUR")]
    assert [t.creditor_reference for t in batch.transactions] == ["1230", "4564"]
    assert reversal.reversal and reversal.amount.amount == Decimal("-40.00")
    assert reversal.counterparty_name == "Maksaja Kolme"


def test_054_v04_v08_v12() -> None:
    (v04,) = load("camt054_v04.xml")
    assert v04.entries[0].charges == (Charge(Money(Decimal("-0.90"), "CHF"), False, "QR-FEE"),)
    assert v04.entries[0].creditor_reference == "210000000003139471430009017"
    (v08,) = load("camt054_v08.xml")
    transactions = v08.entries[0].transactions
    assert [t.counterparty_name for t in transactions] == ["Kund A", "Kund B", "Kund C"]
    assert transactions[0].remittance == "Block one Block two"
    (v12,) = load("camt054_v12.xml")
    assert v12.created_at is None
    assert v12.entries[0].fx == FxDetails(Money(Decimal("97.20"), "EUR"),
                                          Decimal("0.1340689655"), "DKK", "EUR")


# -- sniff --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_sniff_claims_our_fixtures(path: Path) -> None:
    assert camt.sniff(path.read_bytes()[:65536])


OTHER_FORMATS = {
    "mt940": b":20:STARTUMS\r\n:25:10020030/1234567\r\n:28C:1/1\r\n:60F:C240314EUR100,00\r\n",
    "ofx1": b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\n\r\n<OFX><SIGNONMSGSRSV1>",
    "ofx2": b'<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="211"?>\n'
            b"<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR</CURDEF></STMTRS>",
    "pain001": b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
               b'pain.001.001.03"><CstmrCdtTrfInitn/></Document>',
    "html": b"<html><body><p>BkToCstmrStmt</p></body></html>",
    "camt056": b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.056.001.08">'
               b"<FIToFIPmtCxlReq/></Document>",
}


@pytest.mark.parametrize("name", sorted(OTHER_FORMATS))
def test_sniff_refuses_other_documents(name: str) -> None:
    assert not camt.sniff(OTHER_FORMATS[name])


def _other_samples() -> list[Path]:
    folders = [DATA.parent / "mt940", DATA.parent / "ofx", CORPUS / "mt940", CORPUS / "ofx"]
    return sorted(p for f in folders if f.is_dir() for p in f.iterdir()
                  if p.is_file() and not p.name.endswith(".json"))


def test_sniff_refuses_every_other_sample_and_corpus_file() -> None:
    samples = _other_samples()
    if not samples:
        pytest.skip("no MT940 or OFX samples here")
    claimed = [p.name for p in samples if camt.sniff(p.read_bytes()[:65536])]
    assert claimed == []


def test_sniff_sees_through_prolog_variants() -> None:
    ns = b'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"'
    assert camt.sniff(b"\xef\xbb\xbf  <?xml version='1.0'?>\n<!-- a -->\n<?pi x?><Document "
                      + ns + b"><BkToCstmrStmt>")
    assert camt.sniff(b'<doc:Document xmlns:doc="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04">')
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?><Document '
             'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02">').encode("utf-16")
    assert camt.sniff(utf16)
    assert not camt.sniff(b"")
    assert not camt.sniff(b"<?xml version='1.0'?><!-- only a comment -->")


def test_detect_picks_camt_for_every_fixture() -> None:
    for path in CASES:
        assert parsers.detect(path.read_bytes(), source=path.name) is camt, path.name


# -- bad input ----------------------------------------------------------------------------------

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ACCT = "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
GOOD_ENTRY = ('<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd>'
              "</Sts><BookgDt><Dt>2024-03-14</Dt></BookgDt><BkTxCd/></Ntry>")


def document(*statements: str, namespace: str = NS, message: str = "BkToCstmrStmt") -> bytes:
    body = "".join(f"<Stmt><Id>S{i}</Id>{s}</Stmt>" for i, s in enumerate(statements, 1))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace}">\n'
            f"<{message}><GrpHdr><MsgId>M</MsgId><CreDtTm>2024-03-14T10:00:00Z</CreDtTm>"
            f"</GrpHdr>\n{body}\n</{message}>\n</Document>\n").encode()


def parse_error(data: bytes) -> ParseError:
    with pytest.raises(ParseError) as caught:
        camt.parse(data, source="bad.xml")
    assert caught.value.source == "bad.xml"
    assert str(caught.value).startswith("bad.xml: ")
    return caught.value


def test_a_well_formed_minimal_document_parses() -> None:
    (statement,) = camt.parse(document(ACCT + GOOD_ENTRY), source="ok.xml")
    assert statement.entries[0].amount == Money(Decimal("1.00"), "EUR")


@pytest.mark.parametrize(("entry", "path", "field", "message"), [
    ('<Ntry><Amt Ccy="EUR">12,50</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>',
     "Ntry[2]/Amt", "Amt", "expected a decimal amount"),
    ('<Ntry><Amt Ccy="EUR">-5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>',
     "Ntry[2]/Amt", "Amt", "expected an unsigned amount"),
    ('<Ntry><Amt Ccy="EURO">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>',
     "Ntry[2]/Amt", "Ccy", "expected an ISO 4217 currency code"),
    ("<Ntry><Amt>5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
     "Ntry[2]/Amt", "Amt", "expected a Ccy attribute"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CR</CdtDbtInd></Ntry>',
     "Ntry[2]/CdtDbtInd", "CdtDbtInd", "expected CRDT or DBIT"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt></Ntry>',
     "Ntry[2]/CdtDbtInd", "CdtDbtInd", "expected CRDT or DBIT"),
    ("<Ntry><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
     "Ntry[2]/Amt", "Amt", "expected the entry amount"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
     "<BookgDt><Dt>2024-02-30</Dt></BookgDt></Ntry>",
     "Ntry[2]/BookgDt/Dt", "Dt", "expected a date such as 2024-03-14"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt/></Ntry>',
     "Ntry[2]/BookgDt/Dt", "Dt", "expected a date (Dt or DtTm)"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>DONE</Cd></Sts>'
     "</Ntry>", "Ntry[2]/Sts/Cd", "Sts", "expected an entry status BOOK, PDNG, INFO or FUTR"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>yes</RvslInd></Ntry>',
     "Ntry[2]/RvslInd", "RvslInd", "expected true or false"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><NtryDtls><Btch><NbOfTxs>two'
     "</NbOfTxs></Btch></NtryDtls></Ntry>",
     "Ntry[2]/NtryDtls[1]/Btch/NbOfTxs", "NbOfTxs", "expected a number of transactions"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><NtryDtls><TxDtls/><TxDtls>'
     '<Amt Ccy="EUR">x</Amt></TxDtls></NtryDtls></Ntry>',
     "Ntry[2]/NtryDtls[1]/TxDtls[2]/Amt", "Amt", "expected a decimal amount"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><AmtDtls><InstdAmt>'
     '<Amt Ccy="USD">5</Amt><CcyXchg><SrcCcy>USD</SrcCcy><XchgRate>1,1</XchgRate></CcyXchg>'
     "</InstdAmt></AmtDtls></Ntry>",
     "Ntry[2]/AmtDtls/InstdAmt/CcyXchg/XchgRate", "XchgRate", "expected a decimal number"),
    ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Chrgs><Rcrd>'
     '<Amt Ccy="EUR">1</Amt><ChrgInclInd>maybe</ChrgInclInd></Rcrd></Chrgs></Ntry>',
     "Ntry[2]/Chrgs[1]/Rcrd[1]/ChrgInclInd", "ChrgInclInd", "expected true or false"),
])
def test_bad_entry_names_its_element_path(entry: str, path: str, field: str,
                                          message: str) -> None:
    error = parse_error(document(ACCT + GOOD_ENTRY + entry + GOOD_ENTRY))
    assert error.path == f"/Document/BkToCstmrStmt/Stmt[1]/{path}"
    assert error.field == field
    assert message in error.message


def test_the_path_names_the_statement_too() -> None:
    bad = ACCT + '<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1</Amt></Bal>'
    error = parse_error(document(ACCT, bad))
    assert error.path == "/Document/BkToCstmrStmt/Stmt[2]/Bal[1]/Dt"
    assert "expected the balance date" in error.message


@pytest.mark.parametrize(("statement", "path", "message"), [
    (GOOD_ENTRY, "/Document/BkToCstmrStmt/Stmt[1]/Acct", "expected an account (Acct)"),
    ("<Acct><Id/></Acct>", "/Document/BkToCstmrStmt/Stmt[1]/Acct/Id",
     "expected an account identification"),
    ("<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>Euro</Ccy></Acct>",
     "/Document/BkToCstmrStmt/Stmt[1]/Acct/Ccy", "expected an ISO 4217 currency code"),
    (ACCT + "<CreDtTm>2024-03-14 10:00</CreDtTm>", "/Document/BkToCstmrStmt/Stmt[1]/CreDtTm",
     "expected a date and time"),
])
def test_bad_statement_parts(statement: str, path: str, message: str) -> None:
    error = parse_error(document(statement))
    assert error.path == path
    assert message in error.message


def test_not_camt_documents() -> None:
    ofx = parse_error(OFX2)
    assert (ofx.path, ofx.field) == ("/OFX", "OFX")
    assert "expected a camt Document root element" in ofx.message
    pain = parse_error(OTHER_FORMATS["pain001"])
    assert pain.path == "/Document/CstmrCdtTrfInitn"
    assert "expected a camt message" in pain.message
    mixed = parse_error(document(ACCT, namespace="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"))
    assert "the namespace is camt.052 but the message is BkToCstmrStmt" in mixed.message
    empty_message = parse_error(document())
    assert "expected at least one Stmt element" in empty_message.message
    assert "the document is empty" in parse_error(b"  \n").message


OFX2 = (b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        b'<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE" OLDFILEUID="NONE"'
        b' NEWFILEUID="NONE"?>\n<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE>'
        b"<SEVERITY>INFO</SEVERITY></STATUS></SONRS></SIGNONMSGSRSV1></OFX>\n")


def test_xml_errors_carry_the_line() -> None:
    data = document(ACCT + GOOD_ENTRY)
    truncated = parse_error(data[: len(data) - 30])
    assert truncated.line is not None and truncated.line >= 4
    assert truncated.message.startswith("not well-formed XML")
    mismatched = parse_error(data.replace(b"</Ntry>", b"</Ntri>"))
    assert mismatched.line == 4
    assert "mismatch" in mismatched.message


def test_wrong_encoding_is_refused_with_its_line() -> None:
    data = document(ACCT.replace("<Ccy>", "<Nm>M\xfcller</Nm><Ccy>"))
    latin1 = data.replace("M\xfcller".encode(), "M\xfcller".encode("latin-1"))
    error = parse_error(latin1)
    assert error.line == 4
    assert "encoding" in error.message.lower() or "utf-8" in error.message.lower()


def test_a_batch_without_any_detail_is_an_entry_alone() -> None:
    entry = ('<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><NtryDtls><Btch>'
             "<NbOfTxs>2</NbOfTxs></Btch></NtryDtls></Ntry>")
    (statement,) = camt.parse(document(ACCT + entry), source="b.xml")
    assert statement.entries[0].transactions == ()
    assert statement.entries[0].amount.amount == Decimal("-5.00")


# -- the fast reader and the exact reader -------------------------------------------------------
# parse() reads a document with the fast reader (end events of statements and of their main
# children only); for a document it cannot read whole, the exact reader (every start and end
# event) names the first problem in document order. Both must give the same statements.


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_the_fast_and_the_exact_reader_agree(path: Path) -> None:
    data = path.read_bytes()
    fast = camt._read_fast(data, path.name)
    assert fast is not None
    assert fast == camt._read_exactly(data, path.name)


def test_statement_children_in_any_order_among_unknown_elements() -> None:
    later = GOOD_ENTRY.replace("1.00", "2.00")
    forward = ('<Bal><Tp><CdOrPrtry><Cd>XPCD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1</Amt>'
               "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-03-14</Dt></Dt></Bal>")
    statement = (f"<Foo><Ntry/></Foo>{GOOD_ENTRY}<CreDtTm>2024-03-14T10:00:00</CreDtTm>"
                 f"<Bar/>{ACCT}{forward}{later}<Id>LATE</Id><AddtlStmtInf>x</AddtlStmtInf>")
    data = document(statement, ACCT)
    fast = camt._read_fast(data, "o.xml")
    assert fast is not None
    assert fast == camt._read_exactly(data, "o.xml")
    first, second = fast
    assert first.statement_id == "LATE"
    assert first.created_at == datetime(2024, 3, 14, 10, tzinfo=UTC)
    assert [e.amount.amount for e in first.entries] == [Decimal("1.00"), Decimal("2.00")]
    assert [(f.code, f.location) for f in first.flags] == [
        ("timezone_assumed", "/Document/BkToCstmrStmt/Stmt[1]/CreDtTm"),
        ("balance_type_unsupported", "/Document/BkToCstmrStmt/Stmt[1]/Bal[1]"),
    ]
    assert (second.statement_id, second.entries) == ("S2", ())


def test_the_first_problem_in_document_order_is_the_one_named() -> None:
    bad_entry = GOOD_ENTRY.replace("CRDT", "CR")
    before_message = document(ACCT + bad_entry).replace(b"<BkToCstmrStmt>",
                                                        b"<Foo/><BkToCstmrStmt>")
    assert parse_error(before_message).path == "/Document/Foo"
    bad_time = "<CreDtTm>later</CreDtTm>"  # read by the fast reader only when Acct ends
    error = parse_error(document(bad_time + ACCT + bad_entry))
    assert error.path == "/Document/BkToCstmrStmt/Stmt[1]/CreDtTm"
    then_broken = document(ACCT + bad_entry + "<Ntry>").replace(b"</Stmt>", b"")
    assert parse_error(then_broken).path == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/CdtDbtInd"


def test_a_subtree_maps_paths_as_child_finds_them() -> None:
    ntry = etree.fromstring(
        f'<Ntry xmlns="{NS}"><Amt>1</Amt><Amt>2</Amt><NtryDtls><TxDtls/><TxDtls><Amt>3</Amt>'
        "</TxDtls></NtryDtls><NtryDtls><Btch/><TxDtls><Amt>4</Amt></TxDtls></NtryDtls></Ntry>")
    tree = Shapes().subtree(ntry)
    assert tree.root is ntry
    assert tree.nodes["Amt"].text == "1"  # the first of its name, as child() finds it
    assert tree.group("NtryDtls") == ("NtryDtls[1]", "NtryDtls[2]")
    assert tree.group("NtryDtls[1]/TxDtls") == ("NtryDtls[1]/TxDtls[1]", "NtryDtls[1]/TxDtls[2]")
    assert tree.nodes["NtryDtls[1]/TxDtls[2]/Amt"].text == "3"
    assert tree.nodes["NtryDtls[2]/TxDtls[1]/Amt"].text == "4"
    assert tree.group("NtryDtls[2]/Btch") == ("NtryDtls[2]/Btch[1]",)
    assert tree.group("TxDtls") == ()


def test_entries_of_one_shape_share_a_layout_not_their_values() -> None:
    shapes = Shapes()
    one, two = (etree.fromstring(f"<Ntry><Amt>{v}</Amt><Sts><Cd>BOOK</Cd></Sts></Ntry>")
                for v in ("1", "2"))
    assert shapes.subtree(one).nodes["Amt"].text == "1"
    assert shapes.subtree(two).nodes["Amt"].text == "2"
    other = etree.fromstring("<Ntry><Sts><Cd>BOOK</Cd></Sts><Amt>5</Amt></Ntry>")  # same sizes
    assert shapes.subtree(other).nodes["Amt"].text == "5"


def test_more_shapes_than_are_kept_still_read_right(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (DATA / "camt053_v02.xml").read_bytes()
    usual = camt.parse(data, source="s.xml")
    monkeypatch.setattr(Shapes, "MAX_SHAPES", 0)
    assert camt.parse(data, source="s.xml") == usual


def test_a_batch_size_in_other_digits_is_a_parse_error() -> None:
    data = (DATA / "camt053_quirks.xml").read_bytes()
    assert b"<Btch><NbOfTxs>6" in data
    bad = data.replace(b"<Btch><NbOfTxs>6", "<Btch><NbOfTxs>²".encode(), 1)
    with pytest.raises(ParseError, match="number of transactions"):
        parsers.parse(bad, source="sup.xml")
