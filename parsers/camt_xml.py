"""Reading camt elements: local names, element paths for errors, typed values.

Everything matches on local names, so it works for every camt namespace and version
(camt.052/053/054.001.01 to .13). Values are read strictly: a bad amount, date, code or
currency is a ``ParseError`` naming the element path (``/Document/BkToCstmrStmt/Stmt[1]/
Ntry[3]/Amt``), the field and what was expected. Only lxml elements come in; only our own
values go out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from lxml import etree

from parsers.errors import ParseError
from parsers.model import Flag
from parsers.money import Money, MoneyError, parse_decimal

Element = etree._Element

# Elements that repeat under their parent: their 1-based index is part of an element path.
REPEATABLE = frozenset({
    "Stmt", "Rpt", "Ntfctn", "Bal", "Ntry", "NtryDtls", "TxDtls", "Chrgs", "Rcrd",
    "Ustrd", "Strd", "AdrLine",
})


def local(tag: object) -> str:
    """The local name of an element tag (``{urn:...}Amt`` -> ``Amt``); "" for comments."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def children(parent: Element, name: str) -> Iterator[Element]:
    """The child elements of ``parent`` with local name ``name``, in document order."""
    for node in parent:
        if local(node.tag) == name:
            yield node


def child(parent: Element | None, *names: str) -> Element | None:
    """The first element down the path of local ``names`` below ``parent``, or None."""
    node = parent
    for name in names:
        if node is None:
            return None
        node = next(children(node, name), None)
    return node


def text(parent: Element | None, *names: str) -> str | None:
    """Stripped text of the element down ``names`` from ``parent``; None if absent or blank."""
    node = child(parent, *names) if names else parent
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def _step(node: Element) -> str:
    name = local(node.tag)
    if name not in REPEATABLE:
        return name
    index = 1 + sum(1 for sib in node.itersiblings(preceding=True) if local(sib.tag) == name)
    return f"{name}[{index}]"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a subtree sits in the document, so errors can name element paths.

    ``root`` is an element whose path ``root_path`` is known; paths of elements below it
    are worked out only when an error is raised.
    """

    source: str
    root: Element
    root_path: str

    def path(self, node: Element) -> str:
        steps: list[str] = []
        current: Element | None = node
        while current is not None and current is not self.root:
            steps.append(_step(current))
            current = current.getparent()
        return self.root_path + "".join(f"/{s}" for s in reversed(steps))

    def error(self, node: Element, message: str, *, field: str | None = None) -> ParseError:
        return ParseError(message, source=self.source, path=self.path(node),
                          field=field or local(node.tag))

    def missing(self, parent: Element, name: str, what: str) -> ParseError:
        return ParseError(f"expected {what} in a {name} element, found none",
                          source=self.source, path=f"{self.path(parent)}/{name}", field=name)


@dataclass(slots=True)
class Notes:
    """Flags for one statement, one per kind: the first place it happened and a count."""

    _seen: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def add(self, code: str, message: str, location: str) -> None:
        first = self._seen.get(code)
        self._seen[code] = (message, location, 1) if first is None else (
            first[0], first[1], first[2] + 1)

    def flags(self) -> tuple[Flag, ...]:
        out = []
        for code, (message, location, count) in self._seen.items():
            more = f" ({count - 1} more like it in this statement)" if count > 1 else ""
            out.append(Flag(code, message + more, location))
        return tuple(out)


def amount(scope: Scope, node: Element) -> Money:
    """An unsigned amount element with its ``Ccy`` attribute, as ``Money``."""
    raw = node.text.strip() if node.text else ""
    try:
        value = parse_decimal(raw)
    except MoneyError:
        raise scope.error(node, f"expected a decimal amount such as 1234.50, found {raw!r}"
                          ) from None
    if value < 0 or raw.startswith(("+", "-")):
        raise scope.error(node, f"expected an unsigned amount (the sign is in CdtDbtInd), "
                                f"found {raw!r}")
    currency = (node.get("Ccy") or "").strip()
    if not currency:
        raise scope.error(node, "expected a Ccy attribute with the ISO 4217 currency code")
    try:
        return Money(value, currency)
    except MoneyError:
        raise scope.error(node, f"expected an ISO 4217 currency code, found {currency!r}",
                          field="Ccy") from None


def signed(money: Money, credit: bool) -> Money:
    """``money`` signed from the account holder's view: debits negative (never -0)."""
    return money if credit or not money.amount else -money


def credit_debit(scope: Scope, parent: Element) -> bool | None:
    """``CdtDbtInd`` under ``parent``: True for CRDT, False for DBIT, None when absent."""
    node = child(parent, "CdtDbtInd")
    if node is None:
        return None
    code = text(node)
    if code == "CRDT":
        return True
    if code == "DBIT":
        return False
    raise scope.error(node, f"expected CRDT or DBIT, found {code!r}")


def boolean(scope: Scope, node: Element) -> bool:
    value = text(node)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise scope.error(node, f"expected true or false, found {value!r}")


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?"
)


def iso_date(scope: Scope, node: Element) -> date:
    """An ISODate element (``2024-03-14``; a time zone suffix is allowed and ignored)."""
    raw = text(node) or ""
    match = _DATE.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise scope.error(node, f"expected a date such as 2024-03-14, found {raw!r}") from None


@dataclass(frozen=True, slots=True)
class Instant:
    """An ISODateTime as written: its local date, the UTC instant, and what was assumed."""

    local_date: date
    utc: datetime
    naive: bool  # no offset in the file: taken as UTC
    truncated: bool  # digits past microseconds that were not zero were dropped


def iso_datetime(scope: Scope, node: Element) -> Instant:
    raw = text(node) or ""
    match = _DATETIME.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        fraction = match[7] or ""
        micro = int((fraction + "000000")[:6])
        tz: timezone = UTC
        if match[8] and match[8] != "Z":
            sign = -1 if match[8][0] == "-" else 1
            hours, minutes = int(match[8][1:3]), int(match[8][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        written = datetime(int(match[1]), int(match[2]), int(match[3]), int(match[4]),
                           int(match[5]), int(match[6]), micro, tzinfo=tz)
    except ValueError:
        raise scope.error(
            node, f"expected a date and time such as 2024-03-14T17:30:00+01:00, found {raw!r}"
        ) from None
    return Instant(written.date(), written.astimezone(UTC), naive=match[8] is None,
                   truncated=fraction[6:].strip("0") != "")


def date_choice(scope: Scope, node: Element) -> date:
    """A ``Dt`` or ``DtTm`` choice below ``node``: the date as written (time dropped)."""
    day = child(node, "Dt")
    if day is not None:
        return iso_date(scope, day)
    moment = child(node, "DtTm")
    if moment is not None:
        return iso_datetime(scope, moment).local_date
    raise scope.missing(node, "Dt", "a date (Dt or DtTm)")


def decimal_value(scope: Scope, node: Element) -> Decimal:
    raw = text(node) or ""
    try:
        return parse_decimal(raw)
    except MoneyError:
        raise scope.error(node, f"expected a decimal number, found {raw!r}") from None


def currency_code(scope: Scope, node: Element) -> str:
    code = text(node) or ""
    try:
        Money(Decimal(0), code)
    except MoneyError:
        raise scope.error(node, f"expected an ISO 4217 currency code, found {code!r}") from None
    return code
