"""The details JSON staged for a line: with the transaction codes remembered, the same
value as ``parsers.jsonl.entry_details`` gives (what ``jsonb`` stores: key order aside)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from gateway import ingest_stage
from gateway.ingest_stage import details
from parsers.jsonl import entry_details
from parsers.model import BankTransactionCode, Entry
from parsers.money import Money


def _entry(code: BankTransactionCode | None, info: str | None = None) -> Entry:
    return Entry(amount=Money(Decimal("12.50"), "EUR"), booking_date=date(2026, 1, 2),
                 bank_transaction_code=code, additional_info=info, counterparty_name="A")


def _expected(entry: Entry) -> object:
    return json.loads(json.dumps(entry_details(entry, leave_out=ingest_stage._IN_COLUMNS)))


def test_remembered_codes_give_the_same_details() -> None:
    codes: dict[BankTransactionCode, object] = {}
    entries = [_entry(BankTransactionCode(swift="NTRF", gvc="166")),
               _entry(BankTransactionCode(swift="NTRF", gvc="166"), info="x"),
               _entry(BankTransactionCode(domain="PMNT", family="RCDT", subfamily="ESCT")),
               _entry(BankTransactionCode()), _entry(None, info="no code")]
    for entry in entries * 2:
        assert json.loads(details(entry, codes)) == _expected(entry)
        assert json.loads(details(entry)) == _expected(entry)
    assert len(codes) == 3


def test_codes_forgotten_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_stage, "_CODES_KEPT", 2)
    codes: dict[BankTransactionCode, object] = {}
    for n in range(5):
        entry = _entry(BankTransactionCode(gvc=str(n)))
        assert json.loads(details(entry, codes)) == _expected(entry)
        assert len(codes) <= 2
