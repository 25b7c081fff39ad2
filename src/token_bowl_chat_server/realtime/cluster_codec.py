"""What nodes say to each other through Redis: frames for local delivery, and commands.

One payload is one line of JSON (the header: sending node, and the audience and seq of a
frame or the name and arguments of a command), then, for a frame, a newline and the frame's
encoded text as it goes on the socket, so the text is never encoded twice. Encoded frames
hold no raw newline (JSON escapes it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from token_bowl_chat_server.realtime.audience import Audience, Dialect, OwnCopies, Room, Users


@dataclass(frozen=True, slots=True)
class FrameEnvelope:
    node: str
    audience: Audience
    text: str
    seq: int | None


@dataclass(frozen=True, slots=True)
class CommandEnvelope:
    node: str
    name: str
    args: dict[str, Any]


Envelope = FrameEnvelope | CommandEnvelope


class BadEnvelope(ValueError):
    """A payload no node of this version writes."""


def _audience_fields(audience: Audience) -> list[Any]:
    if isinstance(audience, Room):
        return ["r", audience.exclude_user_id, audience.dialect.value]
    if isinstance(audience, Users):
        return ["u", sorted(audience.user_ids), audience.dialect.value]
    return ["o", audience.user_id, audience.dialect.value]


def _audience(fields: list[Any]) -> Audience:
    kind, who, dialect = fields
    if kind == "r":
        return Room(exclude_user_id=who, dialect=Dialect(dialect))
    if kind == "u":
        return Users(frozenset(who), dialect=Dialect(dialect))
    if kind == "o":
        return OwnCopies(who, dialect=Dialect(dialect))
    raise BadEnvelope(f"unknown audience {kind!r}")


def encode_frame(node: str, audience: Audience, text: str, seq: int | None) -> bytes:
    header = json.dumps({"n": node, "a": _audience_fields(audience), "s": seq})
    return f"{header}\n{text}".encode()


def encode_command(node: str, name: str, **args: Any) -> bytes:
    return json.dumps({"n": node, "c": name, "a": args}).encode()


def decode(payload: bytes) -> Envelope:
    try:
        head, _, text = payload.decode().partition("\n")
        header = json.loads(head)
        if "c" in header:
            return CommandEnvelope(header["n"], header["c"], header["a"])
        return FrameEnvelope(header["n"], _audience(header["a"]), text, header["s"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadEnvelope(str(exc)) from exc
