"""Reading camt elements: local names, element paths for errors, typed values.

Everything matches on local names, so it works for every camt namespace and version
(camt.052/053/054.001.01 to .13). Values are read strictly: a bad amount, date, code or
currency is a ``ParseError`` naming the element path (``/Document/BkToCstmrStmt/Stmt[1]/
Ntry[3]/Amt``), the field and what was expected. Only lxml elements come in; only our own
values go out.

Two ways to find elements: ``child``/``children``/``text`` walk from an element, for the
few elements of a statement; ``Subtree`` maps every path below one element at once, for
the many entries of a statement (``Shapes.subtree``: the map's layout is worked out once
per shape of subtree, and entries of a file mostly share a few shapes).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

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


# Elements whose siblings of the same name all count (``Subtree`` numbers them and keeps
# them in ``groups``); the others are found as the first of their name.
GROUPED = REPEATABLE | {"Btch"}

_LOCAL_NAMES: dict[object, str] = {}  # tag -> local name, a bounded cache
_LOCAL_NAMES_MAX = 4096


def local(tag: object) -> str:
    """The local name of an element tag (``{urn:...}Amt`` -> ``Amt``); "" for comments."""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCAL_NAMES) < _LOCAL_NAMES_MAX:
            _LOCAL_NAMES[tag] = name
    return name


@lru_cache(maxsize=512)
def _any_namespace(name: str) -> str:
    return "{*}" + name


def children(parent: Element, name: str) -> Iterator[Element]:
    """The child elements of ``parent`` with local name ``name``, in document order."""
    return parent.iterchildren(_any_namespace(name))  # filtered by libxml2, not in Python


def child(parent: Element | None, *names: str) -> Element | None:
    """The first element down the path of local ``names`` below ``parent``, or None."""
    node = parent
    for name in names:
        if node is None:
            return None
        node = next(node.iterchildren(_any_namespace(name)), None)
    return node


def text(parent: Element | None, *names: str) -> str | None:
    """Stripped text of the element down ``names`` from ``parent``; None if absent or blank."""
    return stripped(child(parent, *names) if names else parent)


def stripped(node: Element | None) -> str | None:
    """Stripped text of ``node``; None if there is no node or it is blank."""
    if node is None:
        return None
    value = node.text
    if value is None:
        return None
    return value.strip() or None


def _step(node: Element) -> str:
    name = local(node.tag)
    if name not in REPEATABLE:
        return name
    index = 1 + sum(1 for sib in node.itersiblings(preceding=True) if local(sib.tag) == name)
    return f"{name}[{index}]"


class Scope:
    """Where a subtree sits in the document, so errors can name element paths.

    ``root`` is an element whose path ``root_path`` is known; paths of elements below it
    are worked out only when an error is raised. (A plain class with slots, not a frozen
    dataclass: one is made for every child of a statement, and a frozen dataclass's
    ``__init__`` costs several times as much.)
    """

    __slots__ = ("root", "root_path", "source")

    def __init__(self, source: str, root: Element, root_path: str) -> None:
        self.source = source
        self.root = root
        self.root_path = root_path

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


_TAG = operator.attrgetter("tag")


class Subtree:
    """One element and everything below it, as a map from relative paths to elements.

    A path is local names joined by ``/`` (``BkTxCd/Domn/Cd``), relative to the root, which
    is ``""``. Each step is the first child of that name, as ``child()`` finds it, except
    for ``GROUPED`` elements: those are numbered from 1 at every step (``NtryDtls[1]/
    TxDtls[2]``), and ``group()`` gives the paths of all of them by their unnumbered path
    (``NtryDtls[1]/TxDtls``).
    """

    __slots__ = ("_groups", "memo", "nodes")

    def __init__(self, nodes: dict[str, Element], groups: dict[str, tuple[str, ...]],
                 memo: dict[str, object] | None = None) -> None:
        self.nodes = nodes
        self._groups = groups
        # What readers work out from the shape alone, kept with the shape's layout.
        self.memo: dict[str, object] = {} if memo is None else memo

    @property
    def root(self) -> Element:
        return self.nodes[""]

    def group(self, path: str) -> tuple[str, ...]:
        """The paths of all elements at ``path`` (a path ending in a ``GROUPED`` name)."""
        return self._groups.get(path, ())


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of the nodes of one shape of subtree, in document order."""

    tags: list[object]  # every node's tag in document order: with the sizes, the shape
    paths: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    memo: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, tags: list[object], sizes: tuple[int, ...]) -> Layout:
        paths = [""]
        groups: dict[str, list[str]] = {}
        prefix, left, seen = "", sizes[0], dict[str, int]()  # the open parent
        parents: list[tuple[str, int, dict[str, int]]] = []
        for tag, size in zip(tags[1:], sizes[1:], strict=True):
            while not left:
                prefix, left, seen = parents.pop()
            left -= 1
            name = local(tag)
            count = seen[name] = seen.get(name, 0) + 1
            if name in GROUPED:
                path = f"{prefix}{name}[{count}]"
                groups.setdefault(prefix + name, []).append(path)
            elif count == 1:
                path = prefix + name
            else:
                path = f"{prefix}{name}~{count}"  # never looked for: child() finds the first
            paths.append(path)
            if size:
                parents.append((prefix, left, seen))
                prefix, left, seen = path + "/", size, {}
        return cls(tags, tuple(paths), {k: tuple(v) for k, v in groups.items()})

    def subtree(self, nodes: list[Element]) -> Subtree:
        """The map of a subtree of this shape whose nodes, in document order, are ``nodes``."""
        return Subtree(dict(zip(self.paths, nodes, strict=True)), self.groups, self.memo)


class Shapes:
    """Finds the layouts of subtrees, keeping the layouts of the shapes met so far.

    A shape is the tags of the nodes in document order with their numbers of children;
    two subtrees of one shape have their nodes at the same paths.
    """

    MAX_SHAPES = 256

    __slots__ = ("_count", "_known")

    def __init__(self) -> None:
        self._known: dict[tuple[int, ...], list[Layout]] = {}  # by sizes
        self._count = 0

    def layout(self, root: Element) -> tuple[list[Element], Layout]:
        """The nodes of ``root``, a whole element, and everything below it, in document
        order, and the layout of their shape."""
        nodes = list(root.iter())
        tags = list(map(_TAG, nodes))
        sizes = tuple(map(len, nodes))
        known = self._known.get(sizes, ())
        for layout in known:
            if layout.tags == tags:
                return nodes, layout
        layout = Layout.of(tags, sizes)
        if self._count < self.MAX_SHAPES:
            self._known[sizes] = [*known, layout]
            self._count += 1
        return nodes, layout

    def subtree(self, root: Element) -> Subtree:
        """The map of ``root``, a whole element, and everything below it."""
        nodes, layout = self.layout(root)
        return layout.subtree(nodes)


_UNSIGNED = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")  # what the checks below let through


def amount(scope: Scope, node: Element) -> Money:
    """An unsigned amount element with its ``Ccy`` attribute, as ``Money``."""
    return signed_amount(scope, node, True)


def signed_amount(scope: Scope, node: Element, credit: bool) -> Money:
    """An unsigned amount element as ``Money`` signed from the account holder's view:
    debits negative (never -0)."""
    raw = node.text
    raw = raw.strip() if raw else ""
    # The usual case is read directly; anything else goes through the checks that explain.
    value = Decimal(raw) if _UNSIGNED.fullmatch(raw) else _unsigned_decimal(scope, node, raw)
    currency = (node.get("Ccy") or "").strip()
    if not currency:
        raise scope.error(node, "expected a Ccy attribute with the ISO 4217 currency code")
    if not credit and value:
        value = -value
    try:
        return Money(value, currency)
    except MoneyError:
        raise scope.error(node, f"expected an ISO 4217 currency code, found {currency!r}",
                          field="Ccy") from None


def _unsigned_decimal(scope: Scope, node: Element, raw: str) -> Decimal:
    try:
        value = parse_decimal(raw)
    except MoneyError:
        raise scope.error(node, f"expected a decimal amount such as 1234.50, found {raw!r}"
                          ) from None
    if value < 0 or raw.startswith(("+", "-")):
        raise scope.error(node, f"expected an unsigned amount (the sign is in CdtDbtInd), "
                                f"found {raw!r}")
    return value


def signed(money: Money, credit: bool) -> Money:
    """``money`` signed from the account holder's view: debits negative (never -0)."""
    return money if credit or not money.amount else -money


def credit_debit(scope: Scope, node: Element | None) -> bool | None:
    """A ``CdtDbtInd`` element: True for CRDT, False for DBIT, None when absent."""
    if node is None:
        return None
    code = stripped(node)
    if code == "CRDT":
        return True
    if code == "DBIT":
        return False
    raise scope.error(node, f"expected CRDT or DBIT, found {code!r}")


def boolean(scope: Scope, node: Element) -> bool:
    value = stripped(node)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise scope.error(node, f"expected true or false, found {value!r}")


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?"
)


def iso_date(scope: Scope, node: Element) -> date:
    """An ISODate element (``2024-03-14``; a time zone suffix is allowed and ignored)."""
    raw = stripped(node) or ""
    try:
        if _PLAIN_DATE.fullmatch(raw):  # the usual case
            return date.fromisoformat(raw)
        match = _DATE.fullmatch(raw)
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
    raw = stripped(node) or ""
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
    raw = stripped(node) or ""
    try:
        return parse_decimal(raw)
    except MoneyError:
        raise scope.error(node, f"expected a decimal number, found {raw!r}") from None


def currency_code(scope: Scope, node: Element) -> str:
    code = stripped(node) or ""
    try:
        Money(Decimal(0), code)
    except MoneyError:
        raise scope.error(node, f"expected an ISO 4217 currency code, found {code!r}") from None
    return code
