"""security.addresses: every form a resolver reads as an address is read the same way, and
no form of a non-public address passes.

The C library's own ``inet_aton`` (``socket.inet_aton``) is the reference for IPv4 forms.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security.addresses import address_problem, host_problem, ip_literal, ipv4_literal

NON_PUBLIC_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/29", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")]


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789abcdefxX.", max_size=20))
def test_ipv4_forms_are_read_exactly_as_the_c_library_reads_them(text: str) -> None:
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert ipv4_literal(text) == expected


def render(value: int, data: st.DataObject) -> str:
    """``value`` as an ``inet_aton`` form hypothesis picks: 1-4 parts, each in any base."""
    count = data.draw(st.integers(1, 4))
    parts = [(value >> (8 * (3 - i))) & 0xFF for i in range(count - 1)]
    parts.append(value & (256 ** (5 - count) - 1))
    texts = []
    for part in parts:
        base = data.draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
        texts.append({"dec": str(part), "hex": hex(part), "HEX": f"0X{part:X}",
                      "oct": "0" + oct(part)[2:]}[base])
    return ".".join(texts)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_no_form_of_a_non_public_address_is_ever_accepted(data: st.DataObject) -> None:
    network = data.draw(st.sampled_from(NON_PUBLIC_V4))
    value = int(network.network_address) + data.draw(st.integers(0, network.num_addresses - 1))
    host = render(value, data)
    assert ipv4_literal(host) == ipaddress.IPv4Address(value), host
    assert host_problem(host) is not None, host
    v4 = ipaddress.IPv4Address(value)
    wrapped = data.draw(st.sampled_from([
        f"::ffff:{v4}", f"::{v4}", f"64:ff9b::{v4}", f"::ffff:0:{v4}",
        str(ipaddress.IPv6Address((0x2002 << 112) | (value << 80)))]))
    assert host_problem(wrapped) is not None, wrapped
    assert host_problem(f"[{wrapped}]") is not None, wrapped


@pytest.mark.parametrize(("host", "words"), [
    ("2130706433", "loopback"), ("0x7f000001", "loopback"), ("127.1", "loopback"),
    ("0", "unspecified"), ("017700000001", "loopback"), ("0x7f.1", "loopback"),
    ("127.0.0.1.", "loopback"), ("10.1", "private"), ("100.64.0.1", "carrier-grade NAT"),
    ("169.254.169.254", "link-local"), ("224.0.0.1", "multicast"), ("::", "unspecified"),
    ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:7f00:1", "loopback"),
    ("fe80::1%eth0", "link-local"), ("fe80::1%25eth0", "link-local"), ("fd00::1", "private"),
    ("ff02::1", "multicast"), ("2001:db8::1", "private"), ("localhost", "local name"),
    ("LOCALHOST.", "local name"), ("printer.local", "local name"), ("db.internal", "local name"),
    ("a b", "not a valid host"), ("", "not a valid host")])
def test_hosts_that_are_not_public_are_named_with_the_reason(host: str, words: str) -> None:
    problem = host_problem(host)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize("host", [
    "93.184.215.14", "1572394766", "0x5db8d70e", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    "::ffff:93.184.215.14", "crm.example.com", "08.1.2.3", "1.2.3.4.5", "999.1"])
def test_public_addresses_and_names_pass_before_any_lookup(host: str) -> None:
    assert host_problem(host) is None


def test_address_problem_reads_strings_and_addresses_alike() -> None:
    assert address_problem("127.0.0.1") == "loopback"
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert ip_literal("[::1]") == ipaddress.IPv6Address("::1")
    assert ip_literal("crm.example.com") is None
