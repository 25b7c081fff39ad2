"""The frames a committed seq carried live, rebuilt from the database for the sequencer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.realtime.sequencer import SeqFrame
from token_bowl_chat_server.services.edits import deleted_frame, edited_frame, event_audience
from token_bowl_chat_server.services.messages import audience_of
from token_bowl_chat_server.storage.edits import EventKind, MessageEvent


class CommittedLog(Protocol):
    async def between(self, first: int, last: int) -> Sequence[Message | MessageEvent]: ...


def frame_of(item: Message | MessageEvent) -> SeqFrame:
    """The frame live delivery published for ``item`` (services/messages.py, edits.py).

    A sender's own copy (``?own_messages=1``) carries no seq and is not rebuilt."""
    if isinstance(item, Message):
        return SeqFrame(item.seq, audience_of(item), encode_event(render.message(item)))
    frame = edited_frame(item) if item.kind is EventKind.EDITED else deleted_frame(item)
    return SeqFrame(item.seq, event_audience(item.message), encode_event(frame))


class SequenceFill:
    def __init__(self, log: CommittedLog) -> None:
        self.log = log

    async def __call__(self, first: int, last: int) -> list[SeqFrame]:
        return [frame_of(item) for item in await self.log.between(first, last)]
