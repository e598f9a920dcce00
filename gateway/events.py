"""The events we publish: their types, versions, JSON Schemas, and how their data is built.

Every event has the same envelope (``id``, ``type``, ``version``, ``created_at``, ``lane``,
``sequence``, ``previous_event_id``, ``data``); ``data`` depends on the type. A type's
``version`` grows when its data changes incompatibly; new optional fields do not change it.
The schemas are served at ``GET /v1/event-types`` and every emitted event is checked
against them in the tests.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from parsers.jsonl import decimal_text

DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
DATE = {"type": ["string", "null"], "format": "date"}
TEXT = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name in properties if name not in optional]}


_INVOICE = {
    "invoice_id": {"type": "string"}, "customer_id": {"type": "string"},
    "status": {"enum": ["open", "partially_paid", "paid", "overpaid", "cancelled"]},
    "currency": CURRENCY, "amount": DECIMAL, "open_amount": DECIMAL,
    "settled_amount": DECIMAL,
}
_PAYMENT = {
    "account_id": {"type": "integer"}, "entry_id": {"type": "string"},
    "amount": DECIMAL, "currency": CURRENCY, "booking_date": DATE, "value_date": DATE,
    "bank_reference": TEXT, "end_to_end_id": TEXT, "counterparty_name": TEXT,
    "remittance": TEXT,
}
_ALLOCATION = _object({
    "allocation_id": {"type": "integer"}, "amount": DECIMAL, "currency": CURRENCY,
    "decision": {"enum": ["auto", "review", "manual"]},
    "payment": _object({k: _PAYMENT[k] for k in ("account_id", "entry_id", "amount",
                                                  "currency", "booking_date")}),
})
_BALANCE = {"type": ["object", "null"], "additionalProperties": False,
            "properties": {"amount": DECIMAL, "currency": CURRENCY, "date": DATE},
            "required": ["amount", "currency", "date"]}


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    version: int
    summary: str
    data: dict[str, Any]


EVENT_TYPES: dict[str, EventType] = {t.name: t for t in (
    EventType("invoice.paid", 1, "an allocation left the invoice with nothing open",
              _object({**_INVOICE, "allocation": _ALLOCATION})),
    EventType("invoice.partially_paid", 1, "an allocation paid part of the invoice",
              _object({**_INVOICE, "allocation": _ALLOCATION})),
    EventType("invoice.overpaid", 1, "an allocation paid more than the invoice's open amount",
              _object({**_INVOICE, "allocation": _ALLOCATION})),
    EventType("allocation.reversed", 1, "an applied allocation was undone; the invoice "
              "shows its amounts after the reversal",
              _object({**_INVOICE, "allocation_id": {"type": "integer"},
                       "allocation_amount": DECIMAL, "reason": {"type": "string"},
                       "by": {"type": "string"}})),
    EventType("payment.received", 1, "a new incoming line on a bank account",
              _object(_PAYMENT)),
    EventType("payment.unmatched", 1, "an incoming payment the engine could not tie to any "
              "invoice (sent once per payment)", _object(_PAYMENT)),
    EventType("statement.imported", 1, "a bank statement was stored",
              _object({"account_id": {"type": "integer"}, "statement_pk": {"type": "integer"},
                       "statement_id": TEXT, "document_id": {"type": "integer"},
                       "format": {"type": "string"}, "entries": {"type": "integer"},
                       "entries_new": {"type": "integer"}, "opening_balance": _BALANCE,
                       "closing_balance": _BALANCE,
                       "flags": {"type": "array", "items": {"type": "string"}},
                       "entries_known": {"type": "integer"},
                       "entries_superseded": {"type": "integer"},
                       "possible_duplicates": {"type": "integer"}},
                      optional=("entries_known", "entries_superseded",
                                "possible_duplicates"))),
    EventType("statement.gap", 1, "a booked statement does not open at the closing balance "
              "of the account's statement before it: lines may be missing between the two",
              _object({"account_id": {"type": "integer"}, "statement_pk": {"type": "integer"},
                       "statement_id": TEXT, "previous_statement_pk": {"type": "integer"},
                       "previous_closing_balance": _BALANCE, "opening_balance": _BALANCE,
                       "difference": DECIMAL})),
    EventType("statement.overlap", 1, "a statement that does not chain to the stored ones "
              "reported lines the account already had; they were matched line by line",
              _object({"account_id": {"type": "integer"}, "statement_pk": {"type": "integer"},
                       "statement_id": TEXT, "entries": {"type": "integer"},
                       "entries_known": {"type": "integer"}, "entries_new": {"type": "integer"},
                       "entries_superseded": {"type": "integer"},
                       "possible_duplicates": {"type": "integer"}})),
    EventType("subscription.failing", 1, "deliveries to a subscription have failed for a "
              "while; it will be disabled unless one succeeds",
              _object({"subscription_id": {"type": "string"},
                       "failing_since": {"type": "string", "format": "date-time"},
                       "disable_after": {"type": "string", "format": "date-time"},
                       "last_status_code": {"type": ["integer", "null"]},
                       "last_error": TEXT})),
    EventType("subscription.disabled", 1, "a subscription was disabled; its deliveries wait "
              "until it is enabled again",
              _object({"subscription_id": {"type": "string"}, "reason": {"type": "string"}})),
)}


def schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of a whole event of this type, envelope included."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{event_type.name} v{event_type.version}",
        "description": event_type.summary,
        **_object({
            "id": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"},
            "type": {"const": event_type.name},
            "version": {"const": event_type.version},
            "created_at": {"type": "string", "format": "date-time"},
            "lane": {"type": "string"},
            "sequence": {"type": "integer", "minimum": 1},
            "previous_event_id": {"type": ["string", "null"]},
            "data": event_type.data,
        }),
    }


def invoice_lane(invoice_id: str) -> str:
    return f"invoice:{invoice_id}"


def account_lane(account_id: int) -> str:
    return f"account:{account_id}"


def subscription_lane(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_fields(invoice: Any) -> dict[str, Any]:
    """The invoice part of invoice events, from an ``invoices`` row."""
    return {"invoice_id": invoice["invoice_id"], "customer_id": invoice["customer_id"],
            "status": invoice["status"], "currency": invoice["currency"],
            "amount": decimal_text(invoice["amount"]),
            "open_amount": decimal_text(invoice["open_amount"]),
            "settled_amount": decimal_text(invoice["settled_amount"])}


def payment_fields(row: Any) -> dict[str, Any]:
    """A payment's fields, from a ``transactions`` row."""
    return {"account_id": row["account_id"], "entry_id": row["entry_id"],
            "amount": decimal_text(row["amount"]), "currency": row["currency"],
            "booking_date": _date(row["booking_date"]), "value_date": _date(row["value_date"]),
            "bank_reference": row["bank_reference"], "end_to_end_id": row["end_to_end_id"],
            "counterparty_name": row["counterparty_name"], "remittance": row["remittance"]}


def allocation_fields(allocation: Any, payment: Any) -> dict[str, Any]:
    """What invoice events say of the allocation that changed the invoice."""
    return {"allocation_id": allocation["allocation_id"],
            "amount": decimal_text(allocation["amount"]), "currency": allocation["currency"],
            "decision": allocation["decision"],
            "payment": {"account_id": payment["account_id"], "entry_id": payment["entry_id"],
                        "amount": decimal_text(payment["amount"]),
                        "currency": payment["currency"],
                        "booking_date": _date(payment["booking_date"])}}


def balance_fields(amount: Decimal | None, currency: str | None,
                   date: dt.date | None) -> dict[str, Any] | None:
    if amount is None or currency is None:
        return None
    return {"amount": decimal_text(amount), "currency": currency, "date": _date(date)}


def invoice_event_type(status: str) -> str | None:
    """The event an allocation causes, from the invoice's status after it (None: no event)."""
    return {"paid": "invoice.paid", "partially_paid": "invoice.partially_paid",
            "overpaid": "invoice.overpaid"}.get(status)


def instant(value: dt.datetime) -> str:
    """An instant as events carry it: ISO 8601 in UTC, with a Z."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def document(row: Any) -> dict[str, Any]:
    """The event as subscribers get it (inside the JWE), from an ``events`` row (or a row
    of store.deliveries.claim, which has the same columns)."""
    data = row["data"]
    return {"id": row["event_id"], "type": row["type"], "version": row["version"],
            "created_at": instant(row["created_at"]),
            "lane": row["lane"], "sequence": row["sequence"],
            "previous_event_id": row["previous_event_id"],
            "data": json.loads(data) if isinstance(data, str) else data}


def plaintext(event: dict[str, Any]) -> bytes:
    """The bytes encrypted into a JWE: the same for webhooks and the feed."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
