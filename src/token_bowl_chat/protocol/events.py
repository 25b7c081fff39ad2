"""Server-to-client WebSocket frames.

Replies carry the ``request_id`` of the command they answer (protocol extension; omitted when
the command had none). Pushes (deliveries, receipts, typing, pings) carry none.

Three upstream frames have no ``type``: a chat delivery (a bare :class:`MessageResponse`) and
the two bulk-read confirmations. :func:`decode_event` recognises them by shape.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticSerializationError

from token_bowl_chat.protocol.commands import RequestId
from token_bowl_chat.protocol.models import (
    ConversationResponse,
    MessageResponse,
    PaginationMetadata,
    UnreadCountResponse,
    UserSummary,
)


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Reply(Event):
    request_id: RequestId | None = Field(default=None, exclude_if=lambda v: v is None)


class MessageSent(Reply):
    type: Literal["message_sent"] = "message_sent"
    status: str = "sent"
    message: MessageResponse


class ReadReceipt(Event):
    """Pushed to every connection of a message's author when someone newly reads it."""

    type: Literal["read_receipt"] = "read_receipt"
    message_id: str
    read_by: str
    read_at: str | None = Field(default=None, exclude_if=lambda v: v is None)


class ReadUpTo(Event):
    """Extension: the receipt of a bulk mark, one per author per mark however many messages
    it read (a per-message receipt each would let one reader flood a prolific author).

    ``read_by`` has now read every message of the recipient's, in ``scope`` (``room``,
    ``direct``: the recipient's DMs to ``read_by``, or ``all``: both) with ``seq <=
    up_to_seq``. ``count`` of them were newly read by this mark; ``last_message_id`` is the
    one with ``seq == up_to_seq``.
    """

    type: Literal["read_up_to"] = "read_up_to"
    read_by: str
    scope: Literal["room", "direct", "all"]
    up_to_seq: int
    last_message_id: str
    count: int
    read_at: str


class MarkedRead(Reply):
    type: Literal["marked_read"] = "marked_read"
    message_id: str
    status: str = "success"


class MarkedAllRead(Reply):
    type: Literal["marked_all_read"] = "marked_all_read"
    marked_as_read: int
    status: str = "success"


class RoomReadConfirmation(Reply):
    """Reply to ``mark_room_read``. Upstream sends it without ``type``."""

    status: Literal["marked_read"] = "marked_read"
    count: int


class DirectReadConfirmation(Reply):
    """Reply to ``mark_direct_read``. Upstream sends it without ``type``."""

    status: Literal["marked_read"] = "marked_read"
    from_username: str
    count: int


class UnreadCount(Reply, UnreadCountResponse):
    type: Literal["unread_count"] = "unread_count"


class MessagesPage(Reply):
    type: Literal["messages", "direct_messages"]
    messages: list[MessageResponse]
    pagination: PaginationMetadata


class UnreadMessages(Reply):
    type: Literal["unread_messages", "unread_direct_messages"]
    messages: list[MessageResponse]


class UserList(Reply):
    type: Literal["users", "online_users"]
    users: list[UserSummary]


class UserProfile(Reply):
    type: Literal["user_profile"] = "user_profile"
    user: UserSummary


# Replies to the conversation commands (PROTOCOL.md 5.4). Not part of ServerEvent: the SDK
# manages conversations over REST, so it never asks for these.


class ConversationCreated(Reply):
    type: Literal["conversation_created"] = "conversation_created"
    conversation: ConversationResponse


class ConversationsPage(Reply):
    type: Literal["conversations"] = "conversations"
    conversations: list[ConversationResponse]
    pagination: PaginationMetadata


class ConversationFound(Reply):
    type: Literal["conversation"] = "conversation"
    conversation: ConversationResponse


class ConversationUpdated(Reply):
    type: Literal["conversation_updated"] = "conversation_updated"
    conversation: ConversationResponse


class ConversationDeleted(Reply):
    type: Literal["conversation_deleted"] = "conversation_deleted"
    conversation_id: str


class Error(Reply):
    type: Literal["error"] = "error"
    error: str
    code: str


class Ping(Event):
    type: Literal["ping"] = "ping"
    timestamp: str


class Pong(Reply):
    type: Literal["pong"] = "pong"


class Typing(Event):
    type: Literal["typing"] = "typing"
    username: str
    to_username: str | None = None
    timestamp: str | None = Field(default=None, exclude_if=lambda v: v is None)


class TypingStopped(Event):
    """Extension: a typist stopped (sent the message, went quiet for ~5 s, or disconnected)."""

    type: Literal["typing_stopped"] = "typing_stopped"
    username: str
    to_username: str | None = None


class PresenceChanged(Event):
    """Extension: a user came online (their first connection opened) or went offline (their
    last one closed). Sent to the other users' extended connections only; not part of
    :data:`ServerEvent`, so clients that do not show presence read it as an unknown frame."""

    type: Literal["presence"] = "presence"
    user_id: str
    username: str
    online: bool


class Hello(Event):
    """Extension: the first frame on every connection.

    ``last_seq`` is the newest message ``seq`` at connect time: everything after it will be
    delivered live, so a client may resume from it later. It is ``None`` on a resuming
    connection, where :class:`Resumed` carries it once the replay is done.
    """

    type: Literal["hello"] = "hello"
    protocol_version: str
    user_id: str
    username: str
    last_seq: int | None = None
    heartbeat_interval: float


class Resumed(Event):
    """Extension: the replay requested with ``?since_seq=`` is complete; live from here.

    ``replayed`` messages were sent; the client has now seen everything meant for it up to
    ``last_seq``.
    """

    type: Literal["resumed"] = "resumed"
    since_seq: int
    replayed: int
    last_seq: int


class ResumeGap(Event):
    """Extension: the server cannot replay from ``requested_seq`` (it does not know that point,
    for example after a database reset). Nothing was replayed; the connection is live from
    ``last_seq``. Fetch history over REST to fill what may be missing."""

    type: Literal["resume_gap"] = "resume_gap"
    requested_seq: int
    last_seq: int


class MessageEdited(Reply):
    """Extension: a message's content was replaced. Pushed to every extended connection that
    can see the message (room: everyone, the editor's too; DM: both parties), and the reply
    to ``edit_message`` (with its ``request_id``). ``seq`` is the edit's own place in the
    message sequence: a resuming client gets it replayed in order. The message is nested,
    never spread at the top level, where a legacy client would take it for a new message.
    """

    type: Literal["message_edited"] = "message_edited"
    message: MessageResponse
    edited_at: str
    seq: int


class MessageDeleted(Reply):
    """A message was deleted. As upstream's reply to ``delete_message`` it is just
    ``{"type", "message_id"}``; as our push (extension, to every extended connection that
    can see the message, like :class:`MessageEdited`) and our reply to an extended
    connection it also carries the delete's ``seq`` and ``deleted_at``."""

    type: Literal["message_deleted"] = "message_deleted"
    message_id: str
    seq: int | None = Field(default=None, exclude_if=lambda v: v is None)
    deleted_at: str | None = Field(default=None, exclude_if=lambda v: v is None)


ServerEvent = (
    MessageResponse
    | MessageSent
    | ReadReceipt
    | ReadUpTo
    | MarkedRead
    | MarkedAllRead
    | RoomReadConfirmation
    | DirectReadConfirmation
    | UnreadCount
    | MessagesPage
    | UnreadMessages
    | UserList
    | UserProfile
    | Error
    | Ping
    | Pong
    | Typing
    | TypingStopped
    | Hello
    | Resumed
    | ResumeGap
    | MessageEdited
    | MessageDeleted
)

_TYPED: dict[str, type[BaseModel]] = {
    "message_sent": MessageSent,
    "read_receipt": ReadReceipt,
    "read_up_to": ReadUpTo,
    "marked_read": MarkedRead,
    "marked_all_read": MarkedAllRead,
    "unread_count": UnreadCount,
    "messages": MessagesPage,
    "direct_messages": MessagesPage,
    "unread_messages": UnreadMessages,
    "unread_direct_messages": UnreadMessages,
    "users": UserList,
    "online_users": UserList,
    "user_profile": UserProfile,
    "error": Error,
    "ping": Ping,
    "pong": Pong,
    "typing": Typing,
    "typing_stopped": TypingStopped,
    "hello": Hello,
    "resumed": Resumed,
    "resume_gap": ResumeGap,
    "message_edited": MessageEdited,
    "message_deleted": MessageDeleted,
}


def encode_event(event: Event | MessageResponse) -> str:
    """The JSON text of a frame. Encode once and send the same text to every recipient.

    Never fails on text: a frame that echoes client text (an unknown ``type``, an id in an
    error message) may carry a lone UTF-16 surrogate, which UTF-8 cannot encode; each such
    character is sent as U+FFFD instead of failing the frame and the connection with it.
    """
    try:
        return event.model_dump_json()
    except PydanticSerializationError:
        data = _replace_surrogates(event.model_dump(mode="json"))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    return value


def decode_event(text: str | bytes) -> ServerEvent | None:
    """Parse one server frame; ``None`` for a frame this protocol version does not know.

    Raises ``ValueError`` for text that is not a JSON object, and pydantic's
    ``ValidationError`` for a known frame with a wrong shape.
    """
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("server frame is not a JSON object")
    tag = data.get("type")
    if tag is None:
        if "from_username" in data and "content" in data:
            return MessageResponse.model_validate(data)
        if data.get("status") == "marked_read":
            if "from_username" in data:
                return DirectReadConfirmation.model_validate(data)
            return RoomReadConfirmation.model_validate(data)
        return None
    if tag == "error" and "code" not in data:
        data = {**data, "code": "unknown"}
    cls = _TYPED.get(tag)
    if cls is None:
        return None
    return cls.model_validate(data)  # type: ignore[return-value]
