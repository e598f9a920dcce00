"""What a value read from outside may be: the limits every request and document is held to.

Pure functions, no I/O: each answers with a sentence saying what is wrong (or None), so the
HTTP layer can name the place (a query parameter, a JSON path, a record's field) and the
ingest can name the statement and entry. Kept in one module so that every reader applies the
same rules:

- text never holds NUL or a lone surrogate (PostgreSQL cannot store them, and they are
  never part of real bank or CRM data); a JSON document is at most ``MAX_JSON_DEPTH`` deep,
  its strings at most ``MAX_JSON_STRING`` characters and its integers fit in 64 bits;
- identifiers (invoice and customer ids, cursors' keys) are also free of control, format
  (zero-width, bidi) and separator characters, which make two ids look the same while
  comparing different;
- whole numbers in a URL are ASCII digits within PostgreSQL's ``bigint``;
- dates are exactly ``YYYY-MM-DD`` (no week or ordinal dates, no other digits than ASCII),
  and times are RFC 3339 with their offset;
- amounts are finite, below ``MAX_AMOUNT`` in major units, with no more decimals than the
  currency has (``MAX_SCALE`` when the currency is not known).
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from parsers.errors import ParseError
from parsers.model import Statement
from parsers.money import Money, is_currency, minor_units

MAX_JSON_DEPTH = 32
MAX_JSON_STRING = 10_000
MAX_IDENTIFIER = 100
MAX_QUERY_VALUE = 1_000
INT64_MAX = 2**63 - 1
MAX_AMOUNT = Decimal(10) ** 15
MAX_SCALE = 6
# A statement's text fields: the longest a bank sends is an ISO 20022 remittance (up to
# 140 characters, repeated); 10,000 leaves room for every real file and none for abuse.
MAX_STATEMENT_TEXT = 10_000

_DIGITS = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                      r"(Z|[+-][0-9]{2}:[0-9]{2})")
# Unicode categories an identifier may not contain: controls, format characters
# (zero-width space and joiners, bidi embeddings and isolates, the BOM), surrogates,
# private use, unassigned, and line/paragraph separators.
_NOT_IN_IDENTIFIERS = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What makes ``value`` unstorable as text: a NUL or a lone surrogate."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return "contains a lone surrogate (not valid Unicode)"


def identifier_problem(value: str, *, limit: int = MAX_IDENTIFIER) -> str | None:
    """What is wrong with ``value`` as an identifier (invoice id, customer id), or None."""
    problem = text_problem(value)
    if problem:
        return problem
    if len(value) > limit:
        return f"is longer than {limit} characters"
    for c in value:
        if unicodedata.category(c) in _NOT_IN_IDENTIFIERS:
            return (f"contains the invisible or control character U+{ord(c):04X}; "
                    f"identifiers may hold only visible characters and spaces")
    return None


def int64_of(text: str) -> int | None:
    """``text`` as a non-negative whole number in ASCII digits within bigint, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number <= INT64_MAX else None


def date_of(text: str) -> date | None:
    """``text`` as a calendar date written exactly ``YYYY-MM-DD``, else None."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def instant_of(text: str) -> datetime | None:
    """``text`` as a time with its UTC offset, written as RFC 3339 says
    (``2026-11-01T09:30:00Z``, ``2026-11-01T10:30:00+01:00``), else None."""
    if not _INSTANT.fullmatch(text):
        return None
    try:
        instant = datetime.fromisoformat(text)
        instant.astimezone(UTC)  # 0001-01-01T00:00+01:00 has no UTC time
    except (ValueError, OverflowError):
        return None
    return instant


def amount_problem(amount: Decimal, currency: str | None = None, *,
                   scale: bool = True) -> str | None:
    """What is wrong with ``amount`` as money (the sign is the caller's concern); without
    ``scale``, only its size."""
    if not amount.is_finite():
        return "must be a finite number"
    if abs(amount) >= MAX_AMOUNT:
        return f"must be less than {MAX_AMOUNT:,.0f} in absolute value"
    if not scale:
        return None
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    allowed = minor_units(currency) if currency and is_currency(currency) else MAX_SCALE
    if places > allowed:
        return f"has {places} decimals; at most {allowed}" + (f" for {currency}" if currency
                                                               else "")
    return None


def json_problem(document: Any) -> str | None:
    """The first thing in a parsed JSON document that no reader should see, with its path.

    Walks without recursion, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, str, int]] = [(document, "$", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
            return f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    return f"{path}: a key {problem}"
                stack.append((item, f"{path}.{key}"[:200], depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value))
        elif isinstance(value, str):
            problem = text_problem(value)
            if problem is None and len(value) > MAX_JSON_STRING:
                problem = f"is longer than {MAX_JSON_STRING} characters"
            if problem:
                return f"{path} {problem}"
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int) and abs(value) > INT64_MAX:
            return f"{path} is a whole number beyond 64 bits"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{path} is not a finite number"
    return None


# --- statements: what a parser produced, before it is stored -------------------------------

def _walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a model object: (field path, value)."""
    if isinstance(value, Money):
        yield where, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)
    elif isinstance(value, tuple):
        for n, item in enumerate(value, 1):
            yield from _walk(item, f"{where}[{n}]")
    else:
        yield where, value


def _statement_leaf_problem(value: Any) -> str | None:
    if isinstance(value, Money) and abs(value.amount) >= MAX_AMOUNT:
        return f"amount must be less than {MAX_AMOUNT:,.0f} in absolute value"
    if isinstance(value, Decimal):
        return "must be a finite number" if not value.is_finite() else None
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is None and len(value) > MAX_STATEMENT_TEXT:
            problem = f"is {len(value)} characters long; at most {MAX_STATEMENT_TEXT}"
        return problem
    return None


_SINGULAR = {"entries": "entry", "transactions": "transaction", "charges": "charge"}


def _readable(number: int, path: str) -> str:
    """``entries[17].transactions[1].remittance`` as ``statement 1, entry 17, ...``."""
    parts = [f"statement {number}"]
    for piece in path.split("."):
        indexed = re.fullmatch(r"(\w+)\[(\d+)\]", piece)
        if indexed and indexed[1] in _SINGULAR:
            parts.append(f"{_SINGULAR[indexed[1]]} {indexed[2]}")
        else:
            parts.append(piece)
    return ", ".join(parts)


def _fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


_FIELDS: dict[type, tuple[str, ...]] = {}


_ENTRY_TEXT = attrgetter("bank_reference", "customer_reference", "counterparty_name",
                         "counterparty_account", "counterparty_bic", "end_to_end_id",
                         "mandate_id", "remittance", "creditor_reference", "additional_info")
_ENTRY_NESTED = attrgetter("bank_transaction_code", "fx", "charges", "transactions")


def _any_problem(value: Any) -> bool:
    """Whether anything in a model object has a problem: the quick pass over a large
    statement, before the slow one that names the places."""
    if isinstance(value, Statement):
        entries = value.entries
        value = dataclasses.replace(value, entries=())
        for entry in entries:
            texts = [t for t in _ENTRY_TEXT(entry) if t]
            joined = "\x1f".join(texts)
            if (_UNSTORABLE.search(joined) or abs(entry.amount.amount) >= MAX_AMOUNT
                    or any(len(t) > MAX_STATEMENT_TEXT for t in texts)
                    or (any(_ENTRY_NESTED(entry)) and _any_problem(_ENTRY_NESTED(entry)))):
                return True
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STATEMENT_TEXT or _UNSTORABLE.search(item):
                return True
        elif isinstance(item, Money):
            if abs(item.amount) >= MAX_AMOUNT or not item.amount.is_finite():
                return True
        elif isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, Decimal):
            if not item.is_finite():
                return True
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, name) for name in _fields(type(item)))
    return False


def statement_problems(statements: Iterable[Any]) -> list[tuple[str, str, str]]:
    """Every (place, field, problem) in parsed statements that could not be stored faithfully.

    Places name the statement and entry as a reader counts them, from one:
    ``statement 2, entry 17, remittance``. Amounts are checked for size only (the parser
    already holds them to the currency).
    """
    found = []
    for number, statement in enumerate(statements, 1):
        if not _any_problem(statement):
            continue
        for path, value in _walk(statement, ""):
            problem = _statement_leaf_problem(value)
            if problem:
                field = path.rsplit(".", 1)[-1]
                found.append((_readable(number, path), field, problem))
    return found


def check_statements(statements: Iterable[Any], *, source: str) -> None:
    """Refuse parsed statements holding a value we would have to cut or could not store.

    Bank data is never shortened silently: the whole document is refused, naming the
    statement, the entry and the field, so the sender can see what is wrong.
    """
    found = statement_problems(statements)
    if found:
        where, field, problem = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ParseError(f"{where}: {problem}{more}; nothing was stored", source=source,
                         field=field)
