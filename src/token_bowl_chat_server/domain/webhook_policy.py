"""Webhook rules (PROTOCOL.md section 7.9, docs/protocol-extensions.md "Webhooks"): who is
notified, which addresses may be called, what counts as delivered, how long to wait between
attempts, how a request is signed and what the owner is told. Pure: no I/O, no clock.

Address rules. A webhook URL is user input, so every request the server makes to it could
reach an internal service or a cloud metadata endpoint (SSRF). :func:`address_refusal` is the
one decision, made on every address a host name resolves to, at delivery time (the transport
in ``services/webhook_transport.py`` connects only to an address it checked):

* always refused: unspecified (``0.0.0.0/8``, ``::``), multicast, broadcast, the IANA
  special-purpose and reserved blocks (documentation, benchmarking, protocol assignments,
  ``240/4``, IPv6 outside ``2000::/3``, Teredo, ...) and the cloud metadata addresses
  (:data:`METADATA_ADDRESSES`), even where one lies inside a public block (Azure's
  ``168.63.129.16``);
* refused unless ``allow_private``: loopback, RFC 1918 private, unique-local ``fc00::/7``,
  site-local ``fec0::/10``, link-local (``169.254/16``, ``fe80::/10``) and CGNAT
  ``100.64/10``;
* IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by that IPv4 address.

The tables are written out here rather than taken from ``ipaddress``'s ``is_global`` /
``is_private``, whose answers changed between Python releases; a test checks that nothing
allowed here is non-global for ``ipaddress``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.permissions import Action, allowed

SIGNATURE_HEADER = "X-Token-Bowl-Signature"
TIMESTAMP_HEADER = "X-Token-Bowl-Timestamp"
DELIVERY_HEADER = "X-Token-Bowl-Delivery"
SIGNATURE_VERSION = "v1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    user_id: str
    url: str


def webhook_targets(message: Message, candidates: Iterable[User]) -> list[WebhookTarget]:
    """The users among ``candidates`` to notify of ``message``, in the given order.

    Room message: every chat user (not a viewer) with a ``webhook_url``, except the sender.
    DM: the recipient, if it has a ``webhook_url``; a DM to oneself notifies nobody. Whether
    a target is connected over WebSocket does not matter.
    """
    if message.is_room:
        wanted = None
    elif message.to_user_id is None or message.to_user_id == message.from_user_id:
        return []
    else:
        wanted = message.to_user_id
    return [
        WebhookTarget(user.id, user.webhook_url)
        for user in candidates
        if user.webhook_url
        and allowed(user.role, Action.RECEIVE_WEBHOOKS)
        and user.id != message.from_user_id
        and (wanted is None or user.id == wanted)
    ]


def is_delivered(status: int) -> bool:
    """A 2xx answer. A 3xx is a failure: redirects are not followed."""
    return 200 <= status < 300


def retry_delay(failed_attempts: int, base: float) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure: base, 2*base, 4*base, ..."""
    return float(base * 2 ** (failed_attempts - 1))


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Token-Bowl-Signature`` value: ``v1=`` and the hex HMAC-SHA256, keyed with the
    UTF-8 bytes of the user's ``secret``, of ``"<timestamp>." + body``.

    ``timestamp`` is the ``X-Token-Bowl-Timestamp`` value (Unix seconds of this attempt). The
    receiver recomputes it over the raw body bytes, compares in constant time, and refuses
    a timestamp too far from its clock (a replay); ``X-Token-Bowl-Delivery`` deduplicates
    retries.
    """
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # every attempt failed: no answer, or not 2xx
    REFUSED_ADDRESS = "refused_address"  # the host resolved to a refused address: not sent


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """What the owner of a webhook can read about one delivery (one message, one target)."""

    id: str  # the X-Token-Bowl-Delivery value, the same on every attempt
    user_id: str
    message_id: str
    url: str  # redacted by :func:`loggable_url`
    outcome: DeliveryOutcome
    attempts: int  # requests made (0 when refused before connecting)
    status_code: int | None  # the last answer's status, if any
    error: str | None  # the last failure's class (``ConnectError``, ``loopback``, ...)
    created_at: int  # microseconds since the epoch: the first attempt
    finished_at: int


def loggable_url(url: str) -> str:
    """Scheme, host and port only. Webhook URLs often carry tokens in their path or query
    (Slack and Discord do), so logs never show more."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}"


# --- addresses ------------------------------------------------------------------------------


class AddressClass(StrEnum):
    """What kind of address a webhook request would go to; only ``PUBLIC`` is always allowed."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"  # RFC 1918, unique-local fc00::/7, site-local fec0::/10
    LINK_LOCAL = "link_local"
    SHARED = "shared"  # CGNAT 100.64.0.0/10 (RFC 6598)
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    RESERVED = "reserved"  # every other special-purpose or unassigned block
    METADATA = "metadata"  # cloud instance metadata and platform endpoints


# What allow_private opens: networks a deployment's own receivers may legitimately live in.
PRIVATE_CLASSES = frozenset(
    {AddressClass.LOOPBACK, AddressClass.PRIVATE, AddressClass.LINK_LOCAL, AddressClass.SHARED}
)

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wireserver (a public address)
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS, IPv6
        "fd00:ec2::23",  # AWS EKS pod identity, IPv6
    )
)

_Rules = tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, "AddressClass"], ...]


def _rules(*pairs: tuple[str, AddressClass]) -> _Rules:
    return tuple((ipaddress.ip_network(net), cls) for net, cls in pairs)


_C = AddressClass
_V4_RULES = _rules(
    ("0.0.0.0/8", _C.UNSPECIFIED),  # "this network"; 0.0.0.0 reaches the local host
    ("10.0.0.0/8", _C.PRIVATE),
    ("100.64.0.0/10", _C.SHARED),
    ("127.0.0.0/8", _C.LOOPBACK),
    ("169.254.0.0/16", _C.LINK_LOCAL),
    ("172.16.0.0/12", _C.PRIVATE),
    ("192.0.0.0/24", _C.RESERVED),  # IETF protocol assignments
    ("192.0.2.0/24", _C.RESERVED),  # TEST-NET-1
    ("192.31.196.0/24", _C.RESERVED),  # AS112
    ("192.52.193.0/24", _C.RESERVED),  # AMT
    ("192.88.99.0/24", _C.RESERVED),  # 6to4 relay anycast (deprecated)
    ("192.168.0.0/16", _C.PRIVATE),
    ("192.175.48.0/24", _C.RESERVED),  # AS112 direct delegation
    ("198.18.0.0/15", _C.RESERVED),  # benchmarking
    ("198.51.100.0/24", _C.RESERVED),  # TEST-NET-2
    ("203.0.113.0/24", _C.RESERVED),  # TEST-NET-3
    ("224.0.0.0/4", _C.MULTICAST),
    ("240.0.0.0/4", _C.RESERVED),  # future use, 255.255.255.255 (broadcast) included
)
_V6_RULES = _rules(
    ("::/128", _C.UNSPECIFIED),
    ("::1/128", _C.LOOPBACK),
    ("64:ff9b:1::/48", _C.RESERVED),  # local-use NAT64: where its IPv4 side goes is unknown
    ("100::/64", _C.RESERVED),  # discard-only
    ("2001::/23", _C.RESERVED),  # IETF protocol assignments, Teredo 2001::/32 included
    ("2001:db8::/32", _C.RESERVED),  # documentation
    ("3fff::/20", _C.RESERVED),  # documentation (RFC 9637)
    ("5f00::/16", _C.RESERVED),  # SRv6 SIDs
    ("fc00::/7", _C.PRIVATE),  # unique-local
    ("fe80::/10", _C.LINK_LOCAL),
    ("fec0::/10", _C.PRIVATE),  # site-local (deprecated)
    ("ff00::/8", _C.MULTICAST),
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to ``address`` ends up at, for the forms that carry one:
    IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``).
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def classify(address: IPAddress) -> AddressClass:
    """The class that decides whether ``address`` may be called (module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        # A zone (fe80::1%eth0) does not change which network an address is in.
        address = ipaddress.IPv6Address(address.packed)
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    if address in METADATA_ADDRESSES:
        return AddressClass.METADATA
    rules = _V6_RULES if isinstance(address, ipaddress.IPv6Address) else _V4_RULES
    for network, cls in rules:
        if address in network:
            return cls
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return AddressClass.RESERVED  # ::/8 (IPv4-compatible included), 4000::/2, ...
    return AddressClass.PUBLIC


def address_refusal(address: IPAddress, allow_private: bool) -> AddressClass | None:
    """``None`` if the server may connect to ``address``, else the class that forbids it."""
    cls = classify(address)
    if cls is AddressClass.PUBLIC or (allow_private and cls in PRIVATE_CLASSES):
        return None
    return cls


def parse_address(text: str) -> IPAddress | None:
    """The IP address ``text`` spells (brackets and an IPv6 zone allowed), else ``None``."""
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def url_refusal(url: str, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a webhook target, as far as can be told without resolving it;
    ``None`` if it may be set.

    Host names are not resolved here (what they resolve to can change at any time), so this
    is only an early "no" for the obvious cases: a scheme other than http(s), a literal
    address that :func:`address_refusal` refuses, and ``localhost`` / ``*.localhost`` (RFC
    6761: always loopback). Every delivery checks the resolved addresses again.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "the URL cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs can receive webhooks"
    if not host:
        return "the URL has no host"
    address = parse_address(host)
    if address is not None:
        refused = address_refusal(address, allow_private)
    elif host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
        refused = None if allow_private else AddressClass.LOOPBACK
    else:
        refused = None
    if refused is None:
        return None
    return f"webhooks cannot be sent to {refused.value.replace('_', '-')} addresses"
