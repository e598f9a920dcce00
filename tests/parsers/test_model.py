from datetime import date, datetime
from decimal import Decimal

import pytest

from parsers.checks import balance_flags, check_statement
from parsers.errors import ParseError
from parsers.identity import entry_ids, is_real_reference
from parsers.model import Account, Balance, BalanceKind, Entry, EntryStatus, Statement
from parsers.money import Money, MoneyError, minor_units, parse_decimal


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


def statement(*entries: Entry, opening: str | None = "100.00", closing: str | None = "150.00",
              account: Account | None = None) -> Statement:
    return Statement(
        source="s.txt",
        format="mt940",
        account=account or Account(iban="DE89370400440532013000", currency="EUR"),
        entries=entries,
        statement_id="1",
        opening_balance=Balance(eur(opening), date(2026, 1, 1), BalanceKind.OPENING_BOOKED)
        if opening else None,
        closing_balance=Balance(eur(closing), date(2026, 1, 2), BalanceKind.CLOSING_BOOKED)
        if closing else None,
    )


def test_money_refuses_floats_unknown_currencies_and_nan() -> None:
    with pytest.raises(MoneyError, match="Decimal"):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="ISO 4217"):
        Money(Decimal("1"), "EUX")
    with pytest.raises(MoneyError):
        Money(Decimal("NaN"), "EUR")
    with pytest.raises(MoneyError, match="cannot add"):
        eur("1") + Money(Decimal("1"), "USD")


@pytest.mark.parametrize(("text", "value"), [("12.50", "12.50"), ("-0.01", "-0.01"),
                                             ("+3", "3"), (" 7.", "7")])
def test_parse_decimal_reads_plain_amounts_exactly(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)
    assert str(parse_decimal("12.50")) == "12.50"


@pytest.mark.parametrize("text", ["", "NaN", "1e5", "1,5", "Infinity", "1.2.3", ".", "--1",
                                  "\u0663", "1\u00b3"])
def test_parse_decimal_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_decimal(text)


def test_minor_units_follow_the_currency() -> None:
    assert (minor_units("JPY"), minor_units("EUR"), minor_units("BHD")) == (0, 2, 3)


def test_naive_creation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Statement(source="x", format="ofx", account=Account(), entries=(),
                  created_at=datetime(2026, 1, 1))


def test_balances_that_add_up_get_no_flag() -> None:
    s = statement(Entry(eur("70.00"), date(2026, 1, 2)), Entry(eur("-20.00"), date(2026, 1, 2)),
                  Entry(eur("999"), date(2026, 1, 2), status=EntryStatus.PENDING))
    assert balance_flags(s) == ()
    assert check_statement(s, strict=True) is s


def test_balance_mismatch_is_a_flag_and_an_error_when_strict() -> None:
    s = statement(Entry(eur("49.99"), date(2026, 1, 2)))
    flagged = check_statement(s, strict=False)
    assert [f.code for f in flagged.flags] == ["balance_mismatch"]
    assert "difference 0.01" in flagged.flags[0].message
    with pytest.raises(ParseError, match=r"difference 0\.01") as caught:
        check_statement(s, strict=True)
    assert caught.value.source == "s.txt"


def test_entries_in_another_currency_are_flagged_not_summed() -> None:
    s = statement(Entry(Money(Decimal("50"), "USD"), date(2026, 1, 2)))
    assert [f.code for f in balance_flags(s)] == ["entry_currency_mismatch"]


def test_without_both_balances_there_is_nothing_to_check() -> None:
    assert balance_flags(statement(Entry(eur("1"), date(2026, 1, 2)), closing=None)) == ()


def test_placeholder_references_do_not_identify_a_line() -> None:
    assert not any(map(is_real_reference, ["NONREF", " ", "0000", None, "NOTPROVIDED"]))
    assert is_real_reference("2026010512345")


def test_entry_ids_are_stable_and_tell_identical_lines_apart() -> None:
    same = Entry(eur("10.00"), date(2026, 1, 2), remittance="INV 1")
    s = statement(same, same, Entry(eur("10.00"), date(2026, 1, 2), remittance="INV 2"))
    ids = entry_ids(s)
    assert len(set(ids)) == 3
    # The same lines in an overlapping statement (more lines around them) keep their ids.
    wider = statement(Entry(eur("5.00"), date(2026, 1, 1)), *s.entries)
    assert entry_ids(wider)[1:] == ids
    # 10.0 and 10.00 are the same amount.
    assert entry_ids(statement(Entry(eur("10.0"), date(2026, 1, 2), remittance="INV 1")))[0] \
        == ids[0]


def test_entry_ids_use_the_bank_reference_and_the_account() -> None:
    a = Entry(eur("10.00"), date(2026, 1, 2), bank_reference="B1", remittance="x")
    b = Entry(eur("10.00"), date(2026, 1, 2), bank_reference="B1", remittance="changed text")
    assert entry_ids(statement(a)) == entry_ids(statement(b))
    other = Account(iban="NL91ABNA0417164300", currency="EUR")
    assert entry_ids(statement(a, account=other)) != entry_ids(statement(a))


def test_entry_details_keep_what_is_set_and_nothing_else() -> None:
    from parsers.jsonl import entry_details
    from parsers.model import Charge

    entry = Entry(eur("-10.00"), date(2026, 1, 2), charges=(Charge(eur("-1.50"), included=False),),
                  remittance="INV 1")
    assert entry_details(entry, leave_out=frozenset({"remittance", "amount"})) == {
        "booking_date": "2026-01-02", "status": "booked", "reversal": False,
        "charges": [{"amount": {"amount": "-1.50", "currency": "EUR"}, "included": False}],
    }
