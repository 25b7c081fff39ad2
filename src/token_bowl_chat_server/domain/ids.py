"""Identifier forms. Message ids match exactly their stored form (PROTOCOL.md section 2.1)."""

from __future__ import annotations

import re

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_message_id(value: str) -> bool:
    """Whether ``value`` could name a stored message: a lowercase hyphenated UUID. Anything
    else is not found without asking the database (and never reaches it malformed)."""
    return _CANONICAL_UUID.fullmatch(value) is not None
