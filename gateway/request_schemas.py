"""What a request may hold, as JSON Schema: the parameters and bodies the route table declares.

Each schema says what its reader accepts, so that a request that fits the OpenAPI document
is never refused as malformed (a 400), and one that does not fit it is never taken. The
readers are the functions named beside each schema; a change to one is a change here. Two
kinds of refusal stay outside any schema and are answered otherwise: what depends on
stored data (an unknown id: 404; another key's row or an overpaid invoice: 409) and what
a well-formed document may still get wrong (a file that is not a bank statement, a
public key that is not on its curve, more decimals than the invoice's currency has,
a webhook host that resolves to a private address): 422, or for a webhook URL's host the
400 that names it (``gateway.webhook_http.target_problem``, decided by DNS at that moment).

Text everywhere is read as ``gateway.limits`` says: no NUL or lone surrogate, JSON strings
up to 10,000 characters, query values up to 1,000. Whitespace around a CRM record's
values is ignored (``matching.invoices``), so the patterns of record fields allow it.
"""

from __future__ import annotations

from typing import Any

from gateway.events import EVENT_TYPES
from gateway.limits import INT64_MAX, MAX_IDENTIFIER, MAX_JSON_STRING, MAX_QUERY_VALUE
from parsers.money import ISO_4217

# C0 and C1 control characters: never part of an identifier, a name or a reference.
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_NO_CONTROL = f"[^{_CONTROLS}]"
# What Python's str.strip() removes (str.isspace), spelled out: a pattern's \s is
# ECMA-262's, which differs (U+FEFF is one, U+001C-U+001F and U+0085 are not).
_SPACES = (r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
           r"\u205f\u3000")
_SPACE = f"[{_SPACES}]"
_ID_NOTE = ("at most 100 characters, not all spaces; no control, format (zero-width, bidi), "
            "private-use or unassigned characters (a record holding one is refused with "
            "422 naming the field)")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema.get("type", [])
    return {**schema, "type": [*([kinds] if isinstance(kinds, str) else kinds), "null"]}


# --- identifiers -------------------------------------------------------------------------

_EDGE = f"[^{_SPACES}{_CONTROLS}]"  # a first or last character: not a space either
IDENTIFIER: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER,
    "pattern": f"^{_EDGE}(?:{_NO_CONTROL}*{_EDGE})?$",
    "description": "an invoice or customer id as stored (without the spaces around it "
                   "that a record may carry): " + _ID_NOTE}
SUBSCRIPTION_ID = {"type": "string", "pattern": "^sub_[0-9a-f]{32}$",
                   "description": "a subscription's id, as POST /v1/subscriptions gave it"}
EVENT_ID = {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"}
ROW_ID = {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
# Text that is not only spaces (str.strip() leaves something), and holds no NUL.
NOT_BLANK = f"^[^\\x00]*[^{_SPACES}\\x00][^\\x00]*$"


def query_text(description: str) -> dict[str, Any]:
    """A query value compared as it is (a filter that matches nothing answers an empty page)."""
    return {"type": "string", "maxLength": MAX_QUERY_VALUE, "description": description}


# --- amounts, dates, times ---------------------------------------------------------------

# parsers.money.parse_decimal: a sign, ASCII digits with at most one point, spaces around;
# and limits.amount_problem: below 10^15 (leading zeros aside, at most 15 digits before it).
_BELOW_10_15 = 10**15 - 1
AMOUNT: dict[str, Any] = {
    "type": ["string", "integer"],
    "pattern": rf"^{_SPACE}*[+-]?0*(?:[0-9]{{1,15}}(?:\.[0-9]*)?|\.[0-9]+){_SPACE}*$",
    "minimum": -_BELOW_10_15, "maximum": _BELOW_10_15,
    "description": "a decimal string (or a whole JSON number) below 10^15, with no more "
                   "decimals than the currency has (else 422)"}
_FRACTION_NOT_ZERO = "|".join("0" * zeros + "[1-9]" + (f"[0-9]{{0,{5 - zeros}}}" if zeros < 5
                                                        else "") for zeros in range(6))
# api_matches.manual_match: greater than zero, below 10^15, at most six decimals.
POSITIVE_AMOUNT = {
    "type": "string",
    "pattern": (rf"^{_SPACE}*\+?0*(?:[1-9][0-9]{{0,14}}(?:\.[0-9]{{0,6}})?"
                rf"|\.(?:{_FRACTION_NOT_ZERO})){_SPACE}*$"),
    "description": "a decimal string greater than zero, below 10^15, with at most six "
                   "decimals (and no more than the invoice's currency has: else 422)"}
DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD, ASCII digits"}
INSTANT = {"type": "string", "format": "date-time",
           "description": "an RFC 3339 time with its offset, e.g. 2026-11-01T00:00:00Z"}

# --- CRM records (matching.invoices.read_invoice and read_customer, api_invoices.screen) ---

_RECORD_ID = {"type": "string", "maxLength": MAX_IDENTIFIER,
              "pattern": f"^{_NO_CONTROL}*{_EDGE}{_NO_CONTROL}*$", "description": _ID_NOTE}
_RECORD_AMOUNT = AMOUNT
_RECORD_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RECORD_TEXT = {"type": ["string", "null"], "maxLength": 500}


def _one_of_words(*words: str, optional: bool) -> dict[str, Any]:
    choice = "(?:" + "|".join(words) + ")" + ("?" if optional else "")
    return {"type": ["string", "null"] if optional else "string",
            "pattern": f"^{_SPACE}*{choice}{_SPACE}*$"}


INVOICE_RECORD: dict[str, Any] = {
    "type": "object",
    "description": "an invoice as the CRM holds it; blank or null optional fields are absent",
    "required": ["invoice_id", "customer_id", "currency", "amount", "issue_date"],
    "properties": {
        "invoice_id": _RECORD_ID, "customer_id": _RECORD_ID,
        "currency": {**_one_of_words(*sorted(ISO_4217), optional=False),
                     "description": "ISO 4217"},
        "amount": {**_RECORD_AMOUNT, "description": AMOUNT["description"]
                   + "; greater than zero (a credit note is kind credit_note)"},
        "open_amount": {**_nullable(_RECORD_AMOUNT), "description": "what is still to "
                        "pay, from 0 to amount; absent: all of it"},
        "issue_date": {"type": "string", "pattern": f"^{_SPACE}*{_RECORD_DATE}{_SPACE}*$",
                       "description": "YYYY-MM-DD"},
        "due_date": {"type": ["string", "null"],
                     "pattern": f"^{_SPACE}*(?:{_RECORD_DATE})?{_SPACE}*$",
                     "description": "YYYY-MM-DD, not before issue_date"},
        "customer_name": _RECORD_TEXT, "reference": _RECORD_TEXT,
        "related_invoice_id": {"type": ["string", "null"], "maxLength": MAX_IDENTIFIER,
                               "description": "the invoice a credit note corrects"},
        "kind": {**_one_of_words("invoice", "credit_note", optional=True),
                 "description": "invoice (the default) or credit_note"},
        "status": {**_one_of_words("open", "cancelled", optional=True),
                   "description": "open (the default) or cancelled; payments move the rest"},
    },
}

CUSTOMER_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["customer_id", "name"],
    "properties": {
        "customer_id": _RECORD_ID,
        "name": {"type": "string", "maxLength": 500, "pattern": NOT_BLANK},
        "ibans": {"type": "array", "items": {"type": "string"},
                  "description": "valid IBANs (spaces allowed), else 422"},
        "aliases": {"type": "array", "items": {"type": "string"},
                    "description": "other names the customer pays under"},
    },
}

# --- webhook subscriptions (api_webhooks) ---------------------------------------------

EVENT_TYPE_NAMES = {"type": "array", "minItems": 1,
                    "items": {"enum": [*EVENT_TYPES, "*"]},
                    "description": "event types to receive, or [\"*\"] for all"}
WEBHOOK_URL = {"type": ["string", "null"], "format": "uri", "pattern": "^https://[^\\x00]*$",
               "maxLength": 2000,
               "description": "https, no credentials, a host that resolves only to public "
                              "addresses (checked now and at every delivery; else 400 "
                              "naming the field); null: poll GET /v1/events instead"}
_KEY_PROPERTIES = {
    "public_jwk": {"type": ["object", "null"], "description": "the subscriber's public "
                   "encryption key (RSA 2048+ or EC P-256/384/521), with a kid"},
    "jwks_url": {"type": ["string", "null"], "format": "uri", "pattern": "^https://[^\\x00]*$",
                 "maxLength": 2000, "description": "instead of public_jwk: the https URL "
                 "of the subscriber's JWKS, with kid"},
    "kid": {"description": "with jwks_url: the id of the key in the JWKS to encrypt to"},
}
# Exactly one of public_jwk and jwks_url, and with jwks_url a kid (api_webhooks._key).
_ONE_KEY = [
    {"required": ["public_jwk"],
     "properties": {"public_jwk": {"type": "object"}, "jwks_url": {"type": "null"}}},
    {"required": ["jwks_url", "kid"],
     "properties": {"public_jwk": {"type": "null"}, "jwks_url": {"type": "string"},
                    "kid": {"type": "string", "minLength": 1}}},
]


def subscriber_key(**properties: Any) -> dict[str, Any]:
    """An object body naming the key to encrypt to, with ``properties`` beside it."""
    return {"type": "object", "properties": {**_KEY_PROPERTIES, **properties},
            "oneOf": _ONE_KEY}


def one_of_present(*names: str, **properties: Any) -> dict[str, Any]:
    """An object body with exactly one of ``names`` given (present and not null), and
    ``properties`` (each of them nullable: null is the same as absent)."""
    return {"type": "object", "properties": {
        name: _nullable(schema) for name, schema in properties.items()},
        "oneOf": [{"required": [name], "properties": {
            other: ({"type": "null"} if other != name else {"not": {"type": "null"}})
            for other in names}} for name in names]}


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """A ``requestBody`` of JSON fitting ``schema``."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}




# --- the limits every request is read with (gateway.limits), added to every schema -------

NO_NUL = "^[^\\x00]*$"
JSON_VALUE: dict[str, Any] = {
    "description": "any JSON value within the limits every body is read with: strings "
                   "without NUL of at most 10,000 characters, whole numbers within 64 bits",
    "anyOf": [
        {"type": "string", "maxLength": MAX_JSON_STRING, "pattern": NO_NUL},
        {"type": "number", "minimum": -INT64_MAX, "maximum": INT64_MAX},
        {"type": ["boolean", "null"]},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}]}
_ANY = {"$ref": "#/components/schemas/JsonValue"}
_COMBINATIONS = ("anyOf", "oneOf", "allOf")


def _types(schema: dict[str, Any]) -> set[str]:
    kinds = schema.get("type", ())
    return {kinds} if isinstance(kinds, str) else set(kinds)


def as_read(schema: dict[str, Any], where: str = "body") -> dict[str, Any]:
    """``schema`` with the limits of ``gateway.limits`` made explicit wherever it leaves them
    open: text without NUL, of at most ``MAX_JSON_STRING`` characters in a body and
    ``MAX_QUERY_VALUE`` in a query (a path is bounded by the URL's length alone), whole
    numbers within 64 bits, object keys without NUL, and other fields and items as
    ``JsonValue``. ``where`` is ``body`` or a parameter's ``in``. A binary body (a
    statement file) is bytes, left as it is."""
    if "$ref" in schema or schema.get("format") == "binary":
        return schema
    read = dict(schema)
    kinds = _types(schema)
    for combination in _COMBINATIONS:
        if combination in read:
            read[combination] = [as_read(part, where) for part in read[combination]]
    if "properties" in read:
        read["properties"] = {name: as_read(part, where)
                              for name, part in read["properties"].items()}
    if not kinds and not read.keys() & {"enum", "const", "properties", "required", "not",
                                        *_COMBINATIONS}:
        read["allOf"] = [_ANY]  # any JSON (a kid sent beside a public_jwk, unread)
    # Free text: a pattern, a format or an enum already says which text (none holds NUL),
    # and the document's description gives the limits of length everywhere.
    if "string" in kinds and not read.keys() & {"enum", "format", "pattern"}:
        read["pattern"] = NO_NUL
        if where != "path":
            read.setdefault("maxLength", MAX_QUERY_VALUE if where == "query" else MAX_JSON_STRING)
    if kinds & {"integer", "number"}:
        read.setdefault("minimum", -INT64_MAX)
        read.setdefault("maximum", INT64_MAX)
    if "object" in kinds:
        read.setdefault("propertyNames", {"pattern": NO_NUL})
        extra = read.get("additionalProperties", _ANY)
        read["additionalProperties"] = as_read(extra) if isinstance(extra, dict) else extra
    if "array" in kinds:
        read["items"] = as_read(read.get("items", _ANY))
    return read


SCHEMAS = {"Identifier": as_read(IDENTIFIER), "InvoiceRecord": as_read(INVOICE_RECORD),
           "CustomerRecord": as_read(CUSTOMER_RECORD), "JsonValue": JSON_VALUE}
