"""MT940 writer: what it writes, what it refuses, and parse(write(s)) == s for what it carries."""

from __future__ import annotations

import dataclasses
import string
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import parsers
from parsers import mt940, mt940_details
from parsers.errors import WriteError
from parsers.model import (
    Account,
    Balance,
    BalanceKind,
    BankTransactionCode,
    Charge,
    Entry,
    EntryStatus,
    FxDetails,
    Statement,
)
from parsers.money import Money
from parsers.mt940_write import write
from tests import strategies

ENTRY_FIELDS = frozenset({
    "value_date", "status", "reversal", "bank_reference", "customer_reference",
    "counterparty_name", "counterparty_account", "counterparty_bic", "end_to_end_id",
    "mandate_id", "remittance", "creditor_reference",
})
STATEMENT_FIELDS = frozenset({
    "statement_id", "sequence", "opening_balance", "closing_balance", "available_balances",
    "iban", "number", "bic",
})
# SWIFT x characters, and letters MT940 files carry in UTF-8 or a code page nowadays.
TEXT = strategies.SWIFT_X + "ÄÖÜäöüßéèçñøåŁłŻżČčŠšΩЖ中€"
TYPES = ("NTRF", "NMSC", "NDDT", "NCHG", "FCHK", "S103")


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def statement(*entries: Entry, **changes: object) -> Statement:
    total = sum((e.amount.amount for e in entries if e.status is EntryStatus.BOOKED),
                Decimal("100.00"))
    base = Statement(
        source="test",
        format="mt940",
        account=Account(iban="NL91ABNA0417164300", currency="EUR"),
        entries=entries,
        statement_id="STMT1",
        sequence="7/1",
        opening_balance=Balance(eur("100.00"), date(2026, 11, 26), BalanceKind.OPENING_BOOKED),
        closing_balance=Balance(eur(f"{total}"), date(2026, 11, 27), BalanceKind.CLOSING_BOOKED),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def entry(value: str = "10.00", **changes: object) -> Entry:
    base = Entry(amount=eur(value), booking_date=date(2026, 11, 27),
                 value_date=date(2026, 11, 27),
                 bank_transaction_code=BankTransactionCode(swift="NTRF"))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def read_back(data: bytes) -> tuple[Statement, ...]:
    return tuple(dataclasses.replace(s, source="test", flags=())
                 for s in parsers.parse(data, source="test"))


# --- what it writes -----------------------------------------------------------------------


def test_a_statement_is_written_as_plain_mt940() -> None:
    written = write([statement(
        entry("1190.00", customer_reference="INV42", bank_reference="B1",
              end_to_end_id="E2E-1", counterparty_name="ACME Handels GmbH",
              counterparty_account="DE89370400440532013000", counterparty_bic="COBADEFFXXX",
              remittance="Rechnung INV-2026-0042 vom 02.11.2026",
              creditor_reference="RF18539007547034"),
        entry("-5.00", reversal=True, booking_date=None),
    )])
    assert written.decode() == (
        ":20:STMT1\r\n"
        ":25:NL91ABNA0417164300\r\n"
        ":28C:7/1\r\n"
        ":60F:C261126EUR100,00\r\n"
        ":61:2611271127C1190,00NTRFINV42//B1\r\n"
        ":86:/EREF/E2E-1//NAME/ACME Handels GmbH//IBAN/DE89370400440532013000/\r\n"
        "/BIC/COBADEFFXXX//REMI/Rechnung INV-2026-0042 vom 02.11.2026//CDT\r\n"
        "RREF/RF18539007547034/\r\n"
        ":61:261127RC5,00NTRFNONREF\r\n"
        ":62F:C261127EUR1285,00\r\n"
        "-\r\n"
    )


def test_free_text_and_defaults() -> None:
    written = write([statement(entry(bank_transaction_code=None,
                                     additional_info="FIRST LINE\nsecond line"))])
    assert b":61:2611271127C10,00NMSCNONREF\r\n:86:FIRST LINE\r\nsecond line\r\n" in written
    (back,) = read_back(written)
    assert back.entries[0].additional_info == "FIRST LINE\nsecond line"
    assert back.entries[0].bank_transaction_code == BankTransactionCode(swift="NMSC")


def test_86_lines_never_start_like_a_tag_or_terminator() -> None:
    name = "x" * 59 + "-:{" + "y" * 20  # the 66th character of the field is '-'
    written = write([statement(entry(counterparty_name=name))])
    lines = written.decode().split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(":86:"))
    # The cut moves back before '-', so no line starts like a terminator or a tag.
    assert lines[start : start + 2] == [":86:/NAME/" + "x" * 58, "x-:{" + "y" * 20 + "/"]
    assert read_back(written)[0].entries[0].counterparty_name == name


def test_parsed_files_write_back() -> None:
    """A statement read from a bank file, less what MT940 codes cannot hold, writes back."""
    source = parsers.parse(
        b":20:A\r\n:25:DABADKKK/1234567890\r\n:28C:00001/001\r\n:60F:D231229DKK1,\r\n"
        b":61:2312310102RD5,NCHGREF1//B9\r\n:86:/NAME/Bank/REMI/fee back\r\n"
        b":61:2401020102EC7,50NTRFNONREF\r\n:62M:C240102DKK4,\r\n:64:C240102DKK4,\r\n-\r\n",
        source="test",
    )
    again = read_back(write(source))
    assert again == tuple(dataclasses.replace(s, flags=()) for s in source)


# --- what it refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "message"), [
    (statement(entry(charges=(Charge(eur("1.00")),))), "entry 1: charges"),
    (statement(entry(fx=FxDetails(instructed_amount=Money(Decimal("2"), "USD")))),
     "entry 1: fx: MT940 has no field for it"),
    (statement(entry(bank_transaction_code=BankTransactionCode(swift="NTRF", gvc="166"))),
     "entry 1: bank_transaction_code: MT940 carries only the SWIFT type, not gvc"),
    (statement(entry(bank_transaction_code=BankTransactionCode(swift="TRF"))),
     "is not a SWIFT type"),
    (statement(entry(customer_reference="A" * 17)), "customer_reference 'AAAAAAAAAAAAAAAAA'"),
    (statement(entry(customer_reference="NONREF")), "'NONREF' would read back as none"),
    (statement(entry(bank_reference=" B1")), "blanks at its ends"),
    (statement(entry(status=EntryStatus.INFO)), "status info"),
    (statement(entry(status=EntryStatus.PENDING, reversal=True)), "a pending reversal"),
    (statement(entry(value_date=None)), "value_date: MT940 :61: needs a value date"),
    (statement(entry(amount=Money(Decimal("1"), "USD"))), "amount: in USD"),
    (statement(entry(remittance="x" * 400)), "would take 7 lines"),
    (statement(entry(remittance="a", additional_info="b")), "has both"),
    (statement(entry(additional_info="x" * 66)), "does not fit 6 lines of 65"),
    (statement(entry(remittance="see /NAME/ here")), "would read back as"),
    (statement(entry(remittance="line\nbreak")), "line break or control character"),
    (statement(entry(value_date=date(2085, 1, 1), booking_date=None)), "1980-2079"),
    (statement(account=Account(iban="NL91ABNA0417164300", owner_name="Me")),
     "account.owner_name"),
    (statement(created_at=datetime(2026, 11, 27).astimezone()), "created_at"),
    (statement(period_start=date(2026, 11, 1)), "period_start"),
    (statement(statement_id=None), "statement_id: MT940 needs a :20:"),
    (statement(closing_balance=None), "opening and a closing booked balance"),
    (statement(opening_balance=Balance(eur("100.00"), date(2026, 11, 26),
                                       BalanceKind.PREVIOUSLY_CLOSED)),
     "no field for a PRCD balance"),
    (statement(account=Account(currency="EUR")), "needs an IBAN or an account number"),
    (statement(account=Account(number="1", bic="DEUTDEFF", bank_id="1")), "not both"),
    (statement(sequence="seven"), "sequence 'seven' is not an MT940 statement number"),
])
def test_what_mt940_cannot_carry_is_refused(bad: Statement, message: str) -> None:
    with pytest.raises(WriteError, match="statement 1") as caught:
        write([bad])
    assert message in str(caught.value)


def test_nothing_is_written_when_one_statement_fails() -> None:
    with pytest.raises(WriteError, match="statement 2"):
        write([statement(), statement(entry(charges=(Charge(eur("1.00")),)))])


# --- the round trip -----------------------------------------------------------------------


_CODE = mt940_details.CODES
_PLACEHOLDERS = {"NONREF", "NOTPROVIDED"}


def _carried(text: str | None) -> bool:
    """A value the code dialect reads back as written (no '/CODE/' inside, no REMI forms)."""
    if text is None:
        return True
    framed = f"/{text}/"
    return not any(f"/{code}/" in framed for code in _CODE) and not text.startswith(
        ("USTD//", "STRD/"))


@st.composite
def mt940_statements(draw: st.DrawFn) -> Statement:
    """Generated statements as MT940 carries them: a SWIFT type on every entry, a value
    date (mandatory in :61:), no pending reversals, years 1980-2079."""
    s = draw(strategies.statements(format="mt940", entry_fields=ENTRY_FIELDS,
                                   statement_fields=STATEMENT_FIELDS, text=TEXT))
    entries = []
    for e in s.entries:
        entries.append(dataclasses.replace(
            e,
            value_date=e.value_date or e.booking_date,
            reversal=e.reversal and e.status is EntryStatus.BOOKED,
            bank_transaction_code=BankTransactionCode(swift=draw(st.sampled_from(TYPES))),
        ))
    s = dataclasses.replace(s, entries=tuple(entries))
    days = [d for e in s.entries for d in (e.booking_date, e.value_date) if d]
    assume(all(d.year < 2080 for d in days) and s.closing_balance is not None
           and s.closing_balance.date.year < 2080)
    assume(all(_carried(getattr(e, f)) for e in s.entries for f in (
        "counterparty_name", "end_to_end_id", "mandate_id", "remittance")))
    assume(all(mt940_details.find_creditor_reference(e.remittance) is None
               for e in s.entries if e.creditor_reference is None))
    # Placeholders mean "none" in MT940 and read back as None; the writer refuses them.
    assume(all(not {e.end_to_end_id, e.mandate_id, e.customer_reference} & _PLACEHOLDERS
               for e in s.entries))
    return s


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mt940_statements(), min_size=1, max_size=3))
def test_parse_of_write_gives_the_statements_back(generated: list[Statement]) -> None:
    written = write(generated)
    back = parsers.parse(written, source="generated")
    assert {f.code for s in back for f in s.flags} <= {"entry_date_year_inferred"}
    assert tuple(dataclasses.replace(s, flags=()) for s in back) == tuple(generated)
    text = written.decode("utf-8")
    assert text.endswith("-\r\n") and "\n" not in text.replace("\r\n", "")
    assert mt940.sniff(written[:65536])


@settings(deadline=None, max_examples=60)
@given(st.text(alphabet=string.ascii_letters + string.digits + " .,:-/?+()'", min_size=1,
               max_size=65).map(str.strip).filter(bool))
def test_free_text_round_trip(text: str) -> None:
    assume(not mt940_details.is_structured(text)
           and mt940_details.find_creditor_reference(text) is None
           and text[:1] not in ":-{" and text != "-")
    original = statement(entry(bank_transaction_code=BankTransactionCode(swift="NMSC"),
                               additional_info=text))
    assert read_back(write([original])) == (original,)
