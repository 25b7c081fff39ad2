"""Which addresses and URLs a webhook may go to (domain/webhook_policy.py), and its signature."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from token_bowl_chat_server.domain.webhook_policy import (
    METADATA_ADDRESSES,
    PRIVATE_CLASSES,
    AddressClass,
    address_refusal,
    classify,
    embedded_ipv4,
    signature,
    url_refusal,
)

C = AddressClass

# One or more addresses of every class, written in every form that reaches them.
CASES: list[tuple[str, AddressClass]] = [
    # public
    ("8.8.8.8", C.PUBLIC),
    ("1.1.1.1", C.PUBLIC),
    ("93.184.215.14", C.PUBLIC),
    ("2606:4700:4700::1111", C.PUBLIC),
    ("2a00:1450:4001:82b::200e", C.PUBLIC),
    ("::ffff:8.8.8.8", C.PUBLIC),
    ("64:ff9b::808:808", C.PUBLIC),  # NAT64 of 8.8.8.8
    ("2002:808:808::1", C.PUBLIC),  # 6to4 of 8.8.8.8
    ("100.63.255.255", C.PUBLIC),  # just below CGNAT
    ("100.128.0.0", C.PUBLIC),  # just above
    ("172.15.255.255", C.PUBLIC),
    ("172.32.0.0", C.PUBLIC),
    ("223.255.255.255", C.PUBLIC),
    # loopback
    ("127.0.0.1", C.LOOPBACK),
    ("127.255.255.254", C.LOOPBACK),
    ("::1", C.LOOPBACK),
    ("::ffff:127.0.0.1", C.LOOPBACK),
    ("::ffff:7f00:1", C.LOOPBACK),
    ("64:ff9b::7f00:1", C.LOOPBACK),
    ("2002:7f00:1::", C.LOOPBACK),
    # private
    ("10.0.0.1", C.PRIVATE),
    ("10.255.255.255", C.PRIVATE),
    ("172.16.0.1", C.PRIVATE),
    ("172.31.255.255", C.PRIVATE),
    ("192.168.1.1", C.PRIVATE),
    ("::ffff:10.1.2.3", C.PRIVATE),
    ("::ffff:192.168.0.1", C.PRIVATE),
    ("fc00::1", C.PRIVATE),
    ("fd12:3456:789a::1", C.PRIVATE),
    ("fec0::1", C.PRIVATE),
    ("2002:c0a8:101::1", C.PRIVATE),  # 6to4 of 192.168.1.1
    # link-local
    ("169.254.0.1", C.LINK_LOCAL),
    ("169.254.255.255", C.LINK_LOCAL),
    ("fe80::1", C.LINK_LOCAL),
    ("fe80::1%eth0", C.LINK_LOCAL),
    ("febf::1", C.LINK_LOCAL),
    ("::ffff:169.254.1.1", C.LINK_LOCAL),
    # CGNAT
    ("100.64.0.0", C.SHARED),
    ("100.127.255.255", C.SHARED),
    ("::ffff:100.64.0.1", C.SHARED),
    # unspecified
    ("0.0.0.0", C.UNSPECIFIED),
    ("0.1.2.3", C.UNSPECIFIED),
    ("::", C.UNSPECIFIED),
    ("::ffff:0.0.0.0", C.UNSPECIFIED),
    # multicast
    ("224.0.0.1", C.MULTICAST),
    ("239.255.255.250", C.MULTICAST),
    ("ff02::1", C.MULTICAST),
    ("ff05::1:3", C.MULTICAST),
    ("::ffff:224.0.0.251", C.MULTICAST),
    # reserved and special-purpose
    ("255.255.255.255", C.RESERVED),
    ("240.0.0.1", C.RESERVED),
    ("192.0.0.8", C.RESERVED),
    ("192.0.2.1", C.RESERVED),
    ("198.18.0.1", C.RESERVED),
    ("198.19.255.255", C.RESERVED),
    ("198.51.100.7", C.RESERVED),
    ("203.0.113.9", C.RESERVED),
    ("192.88.99.1", C.RESERVED),
    ("2001:db8::1", C.RESERVED),
    ("2001::1", C.RESERVED),  # Teredo
    ("2001:2::1", C.RESERVED),  # benchmarking
    ("3fff::1", C.RESERVED),
    ("100::1", C.RESERVED),
    ("64:ff9b:1::1", C.RESERVED),
    ("::127.0.0.1", C.RESERVED),  # IPv4-compatible (deprecated)
    ("::2", C.RESERVED),
    ("4000::1", C.RESERVED),  # outside 2000::/3
    ("1::", C.RESERVED),
    # cloud metadata
    ("169.254.169.254", C.METADATA),
    ("169.254.170.2", C.METADATA),
    ("100.100.100.200", C.METADATA),
    ("168.63.129.16", C.METADATA),
    ("fd00:ec2::254", C.METADATA),
    ("::ffff:169.254.169.254", C.METADATA),
    ("::ffff:a9fe:a9fe", C.METADATA),
    ("64:ff9b::a9fe:a9fe", C.METADATA),
    ("2002:a9fe:a9fe::", C.METADATA),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_class_in_every_form(text: str, expected: AddressClass) -> None:
    address = ipaddress.ip_address(text)
    assert classify(address) is expected
    allowed_by_default = address_refusal(address, allow_private=False) is None
    allowed_with_private = address_refusal(address, allow_private=True) is None
    assert allowed_by_default == (expected is C.PUBLIC)
    assert allowed_with_private == (expected is C.PUBLIC or expected in PRIVATE_CLASSES)


def test_metadata_stays_refused_even_with_private_allowed() -> None:
    for address in METADATA_ADDRESSES:
        assert address_refusal(address, allow_private=True) is C.METADATA


def test_embedded_ipv4_forms() -> None:
    def v6(text: str) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(text)

    loopback = ipaddress.IPv4Address("127.0.0.1")
    assert embedded_ipv4(v6("::ffff:127.0.0.1")) == loopback
    assert embedded_ipv4(v6("64:ff9b::127.0.0.1")) == loopback
    assert embedded_ipv4(v6("2002:7f00:1:abcd::5")) == loopback
    assert embedded_ipv4(v6("2606:4700::1")) is None


IPV4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
IPV6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def _python_says_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


@given(st.one_of(IPV4, IPV6))
def test_nothing_allowed_is_non_public_for_the_standard_library(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Our tables may be stricter than ``ipaddress``, never looser."""
    if address_refusal(address, allow_private=False) is None:
        target = address
        if isinstance(address, ipaddress.IPv6Address):
            target = embedded_ipv4(address) or address
        assert _python_says_public(target), address


@given(IPV4)
def test_ipv4_mapped_form_is_judged_like_the_ipv4_address(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address((0x64FF9B << 96) | int(address))
    six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80) | 1)
    for form in (mapped, nat64, six_to_four):
        assert classify(form) is classify(address)
        for allow in (False, True):
            assert address_refusal(form, allow) == address_refusal(address, allow)


@given(st.one_of(IPV4, IPV6), st.booleans())
def test_allowing_private_only_ever_opens_the_private_classes(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow: bool
) -> None:
    refused = address_refusal(address, allow)
    cls = classify(address)
    assert (refused is None) == (cls is C.PUBLIC or (allow and cls in PRIVATE_CLASSES))
    assert refused in (None, cls)


# --- URLs at set time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://LOCALHOST:9/",
        "http://localhost./",
        "http://api.localhost/x",
        "http://10.0.0.5/",
        "http://[fd00::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://192.0.2.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http:///nohost",
    ],
)
def test_obviously_bad_urls_are_refused_when_set(url: str) -> None:
    assert url_refusal(url, allow_private=False) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/T0/secret?x=1",
        "http://example.com/",
        "http://8.8.8.8:8080/",
        "https://[2606:4700::1]/",
        # Names are resolved only at delivery: whatever they resolve to is checked then.
        "http://internal.corp.example/",
        "http://localhost.example.com/",
    ],
)
def test_acceptable_urls(url: str) -> None:
    assert url_refusal(url, allow_private=False) is None


def test_allow_private_accepts_local_receivers_but_never_metadata() -> None:
    assert url_refusal("http://127.0.0.1:8080/hook", allow_private=True) is None
    assert url_refusal("http://localhost/", allow_private=True) is None
    assert url_refusal("http://[fd12::1]/", allow_private=True) is None
    assert url_refusal("http://169.254.169.254/", allow_private=True) is not None
    assert url_refusal("http://0.0.0.0/", allow_private=True) is not None


# --- signature ------------------------------------------------------------------------------


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"id":"m1","content":"hi"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_k", 1700000000, body) == f"v1={expected}"
    assert signature("whsec_k", 1700000001, body) != signature("whsec_k", 1700000000, body)
    assert signature("whsec_other", 1700000000, body) != signature("whsec_k", 1700000000, body)


def test_the_receiver_check_in_the_docs_accepts_exactly_our_signatures() -> None:
    """docs/protocol-extensions.md tells receivers how to verify; run that code."""
    docs = Path(__file__).parents[3] / "docs" / "protocol-extensions.md"
    (snippet,) = [
        block.split("```", 1)[0]
        for block in docs.read_text().split("```python\n")[1:]
        if "def is_from_token_bowl" in block
    ]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # our own documentation
    check = namespace["is_from_token_bowl"]
    body = b'{"id":"m1","content":"hi"}'
    now = int(time.time())

    def headers(timestamp: int, secret: str = "whsec_k") -> dict[str, str]:
        return {
            "X-Token-Bowl-Timestamp": str(timestamp),
            "X-Token-Bowl-Signature": signature(secret, timestamp, body),
        }

    assert check("whsec_k", headers(now), body)
    assert not check("whsec_k", headers(now, "whsec_other"), body)
    assert not check("whsec_k", headers(now), body + b" ")
    assert not check("whsec_k", headers(now - 3600), body)  # a replay of an old request
    assert not check("whsec_k", {}, body)  # unsigned
