"""Webhook rules (PROTOCOL.md section 7.9): who is notified, what counts as delivered, how long
to wait between attempts, and how a body is signed. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from token_bowl_chat_server.domain.entities import Message, User

SIGNATURE_HEADER = "X-Token-Bowl-Signature"


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
        and not user.is_viewer
        and user.id != message.from_user_id
        and (wanted is None or user.id == wanted)
    ]


def is_delivered(status: int) -> bool:
    """A 2xx answer. A 3xx is a failure: redirects are not followed."""
    return 200 <= status < 300


def retry_delay(failed_attempts: int, base: float) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure: base, 2*base, 4*base, ..."""
    return float(base * 2 ** (failed_attempts - 1))


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Token-Bowl-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the body.

    Receivers recompute it over the raw body bytes and compare in constant time. It proves
    origin and integrity, not freshness: deduplicate replays by the message ``id``.
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


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
