"""Which addresses a webhook or JWKS URL may reach: public ones only (pure, no I/O).

A host is read the way the C library's resolver reads it, not the way ``ipaddress`` does:
``inet_aton`` takes ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` and ``0``
as IPv4 addresses, and ``getaddrinfo`` hands them over without asking DNS. A check that
knew only dotted quads would call those names, find nothing wrong, and let a subscriber
aim our requests at our own loopback. So ``ip_literal`` parses every such form, and
``address_problem`` looks through IPv6 forms that carry an IPv4 address inside
(IPv4-mapped and -compatible, NAT64, 6to4, Teredo) before judging it.

Resolving names is I/O and lives with the HTTP client (``gateway.webhook_http``); it judges
each address a name resolves to with ``address_problem`` from here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that never leave the machine or the site, refused before any lookup.
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")

_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def _ipv4_part(text: str) -> int | None:
    """One part of an ``inet_aton`` address: decimal, ``0x`` hex, or ``0`` octal."""
    if text[:2].lower() == "0x":
        digits, base = text[2:], 16
    elif len(text) > 1 and text.startswith("0"):
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    allowed = "0123456789abcdefABCDEF"[: base + (6 if base == 16 else 0)]
    if not digits or not all(c in allowed for c in digits):
        return None
    return int(digits, base)


def ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``inet_aton`` reads from ``host`` (any of its forms), or None.

    One to four parts, separated by dots; every part but the last is one byte, the last
    fills the bytes left (``127.1`` is 127.0.0.1, ``2130706433`` is 127.0.0.1 too).
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    numbers = [v for v in values if v is not None]
    *leading, last = numbers
    if any(v > 255 for v in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, byte in enumerate(leading):
        value += byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` is, if it is one in any form a resolver accepts; else None
    (a name). IPv6 may come with brackets and a zone (``fe80::1%eth0``, ``%25`` in URLs);
    one trailing dot is ignored, as resolvers do."""
    text = host.strip("[]")
    if ":" in text:
        address = text.split("%", 1)[0]
        try:
            return ipaddress.IPv6Address(address)
        except ValueError:
            return None
    return ipv4_literal(text[:-1] if text.endswith(".") else text)


def _ipv4_inside(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address merely spells (IPv4-mapped ``::ffff:a.b.c.d``,
    -compatible ``::a.b.c.d``, -translated ``::ffff:0:a.b.c.d``): a connection to it goes
    to that IPv4 address, so that address alone is judged."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if (int(ip) >> 32 == 0 and int(ip) > 1) or ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _ipv4_behind(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address reaches through a gateway (NAT64, 6to4, Teredo):
    both they and the IPv6 address itself must be public."""
    behind: list[ipaddress.IPv4Address] = []
    if any(ip in net for net in _NAT64):
        behind.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        behind.append(ip.sixtofour)
    if ip.teredo is not None:
        behind.extend(ip.teredo)
    return behind


# Each check with the words that name what it finds; the first that holds is the answer.
_CHECKS: list[tuple[str, Callable[[IPAddress], bool]]] = [
    ("unspecified", lambda ip: ip.is_unspecified or ip in _THIS_NETWORK),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("carrier-grade NAT", lambda ip: ip in _CARRIER_GRADE_NAT),
    ("private", lambda ip: ip.is_private
     or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)),
    ("reserved", lambda ip: ip.is_reserved),
    ("not globally routable", lambda ip: not ip.is_global),
]


def address_problem(address: str | IPAddress) -> str | None:
    """Why an address is not one we may send to (loopback, private, ...), or None."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inside = _ipv4_inside(ip)
        if inside is not None:
            problem = address_problem(inside)
            return f"{problem}, inside an IPv6 address" if problem else None
        for behind in _ipv4_behind(ip):
            problem = address_problem(behind)
            if problem:
                return f"{problem}, behind an IPv6 address"
    for words, holds in _CHECKS:
        if holds(ip):
            return words
    return None


def host_problem(host: str) -> str | None:
    """What is wrong with a URL's host before any lookup: a local name, or an address (in
    any form) that is not public; None for a public address or a name to resolve."""
    name = host.lower()
    if not name or any(c.isspace() or not c.isprintable() for c in name):
        return "host is not a valid host name"
    ip = ip_literal(name)
    if ip is not None:
        problem = address_problem(ip)
        return f"address {host} is not public ({problem})" if problem else None
    bare = name.rstrip(".")
    if bare in _LOCAL_NAMES or bare.endswith(_LOCAL_SUFFIXES):
        return f"host {host} is not public (a local name)"
    return None
