"""What nodes say to each other through Redis: frames for local delivery, and commands.

An envelope is two lines: a header of JSON (the sending node, and the audience and seq of a
frame or the name and arguments of a command), then the frame's encoded text as it goes on
the socket (empty for a command), so the text is never encoded twice. One Redis message
carries a batch of envelopes, one after the other. Encoded frames are JSON, where a raw
newline can only be whitespace; one that held any would have it replaced by a space.
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


def _header_start(node: str) -> str:
    """How every header written by ``node`` begins (``json.dumps`` keeps key order)."""
    return json.dumps({"n": node})[:-1] + ","


def encode_frame(node: str, audience: Audience, text: str, seq: int | None) -> str:
    header = json.dumps({"n": node, "a": _audience_fields(audience), "s": seq})
    if "\n" in text:
        text = text.replace("\n", " ")
    return f"{header}\n{text}"


def encode_command(node: str, name: str, **args: Any) -> str:
    return json.dumps({"n": node, "c": name, "a": args}) + "\n"


def encode_batch(envelopes: list[str]) -> bytes:
    return "\n".join(envelopes).encode()


def decode_batch(payload: bytes, skip_node: str | None = None) -> list[Envelope]:
    """The envelopes of a batch, but those of ``skip_node`` (a node hears its own batches
    too: they are left undecoded). Raises BadEnvelope for a payload no node writes."""
    own = _header_start(skip_node) if skip_node is not None else None
    try:
        lines = payload.decode().split("\n")
        if len(lines) % 2:
            raise BadEnvelope("an odd number of lines")
        return [
            _decode(lines[i], lines[i + 1])
            for i in range(0, len(lines), 2)
            if own is None or not lines[i].startswith(own)
        ]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise BadEnvelope(str(exc)) from exc


def _decode(head: str, text: str) -> Envelope:
    header = json.loads(head)
    if "c" in header:
        return CommandEnvelope(header["n"], header["c"], header["a"])
    return FrameEnvelope(header["n"], _audience(header["a"]), text, header["s"])
