"""Typed events of a :class:`~token_bowl_chat.TokenBowlWebSocket`, for ``async for`` consumers.

    async for event in ws.events():
        match event:
            case MessageEvent(message=msg):
                print(msg.from_username, msg.content)
            case TypingEvent(username=who, to_username=None):
                print(who, "is typing in the room")

Each event corresponds to one callback of the constructor, with the same values. None is
dropped: a stream that falls behind slows the client down (see ``TokenBowlWebSocket.events``).
"""

from __future__ import annotations

from dataclasses import dataclass

from token_bowl_chat.protocol.models import MessageResponse, UnreadCountResponse


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A room message or a DM for you (``on_message``). Each message id appears once."""

    message: MessageResponse


@dataclass(frozen=True, slots=True)
class MessageEditedEvent:
    """A message you can see was edited (``on_message_edited``): ``message`` is it as it now
    reads, with ``edited_at`` set. Each edit appears once, in order with the messages, also
    when it happened while you were disconnected (replayed on resume)."""

    message: MessageResponse


@dataclass(frozen=True, slots=True)
class MessageDeletedEvent:
    """A message you can see was deleted (``on_message_deleted``); drop it from what you
    show. Also what ``TokenBowlWebSocket.delete_message`` returns."""

    message_id: str
    deleted_at: str | None = None


@dataclass(frozen=True, slots=True)
class ReadReceiptEvent:
    """Someone read a message you sent (``on_read_receipt``)."""

    message_id: str
    read_by: str


@dataclass(frozen=True, slots=True)
class UnreadCountEvent:
    """An unread count arrived (``on_unread_count``)."""

    count: UnreadCountResponse


@dataclass(frozen=True, slots=True)
class TypingEvent:
    """``username`` is typing to the room (``to_username`` is ``None``) or to a user."""

    username: str
    to_username: str | None


@dataclass(frozen=True, slots=True)
class TypingStoppedEvent:
    """``username`` stopped typing: sent the message, went quiet, or disconnected
    (``on_typing_stopped``)."""

    username: str
    to_username: str | None


@dataclass(frozen=True, slots=True)
class ConnectedEvent:
    """The connection is up (``on_connect``). ``resumed``: a reconnect that replayed what was
    missed, so no message was lost in between."""

    resumed: bool = False


@dataclass(frozen=True, slots=True)
class DisconnectedEvent:
    """The connection dropped or was closed (``on_disconnect``). ``will_reconnect`` tells
    whether the client is about to try again."""

    code: int | None = None
    reason: str = ""
    will_reconnect: bool = False


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something went wrong that no call could raise to you (``on_error``): an error frame for
    a mark or typing request, a callback that raised, a frame that could not be read, a resume
    the server could not serve (``code`` ``resume_gap``), receipts or typing set aside while
    you were behind (``events_skipped``). When the client stops for good by itself it is the
    last event: ``NetworkError`` with code ``reconnect_failed`` once the reconnect attempts
    are used up, ``AuthenticationError`` when the key was rotated."""

    error: Exception


Event = (
    MessageEvent
    | MessageEditedEvent
    | MessageDeletedEvent
    | ReadReceiptEvent
    | UnreadCountEvent
    | TypingEvent
    | TypingStoppedEvent
    | ConnectedEvent
    | DisconnectedEvent
    | ErrorEvent
)

__all__ = [
    "ConnectedEvent",
    "DisconnectedEvent",
    "ErrorEvent",
    "Event",
    "MessageDeletedEvent",
    "MessageEditedEvent",
    "MessageEvent",
    "ReadReceiptEvent",
    "TypingEvent",
    "TypingStoppedEvent",
    "UnreadCountEvent",
]
