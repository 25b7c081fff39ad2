"""Client-to-server WebSocket frames: one class per ``type`` tag, and the decoder.

A frame without ``type`` is a chat send (upstream's legacy form, which the upstream client
always uses). Every command may carry ``request_id`` (protocol extension); the server echoes it
on the reply, so a client can match replies to requests.

Fields are typed loosely enough that a missing or empty value reaches the service, which
answers it with upstream's exact error text (for example ``Missing content field``); a value of
the wrong JSON type fails here with :class:`FrameError`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
)
from pydantic import ValidationError as PydanticValidationError

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import (
    MAX_CONVERSATION_DESCRIPTION_LENGTH,
    MAX_CONVERSATION_MESSAGES,
    MAX_CONVERSATION_TITLE_LENGTH,
    MAX_CONVERSATIONS_PAGE,
    check_text,
)

# Integers a client may send are kept to a signed 64-bit range: every database and most JSON
# libraries hold that, and a larger one would overflow the query it ends up in.
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)

RequestId = (
    Annotated[str, Field(max_length=128), AfterValidator(check_text)]
    | Annotated[StrictInt, Field(ge=MIN_INT, le=MAX_INT)]
)
# Every client string field: a JSON string without NUL characters or lone surrogates.
Str = Annotated[StrictStr, AfterValidator(check_text)]

DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 1000
MAX_OFFSET = MAX_INT


class Command(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    request_id: RequestId | None = None


class SendMessage(Command):
    TYPE = "message"
    type: Literal["message"] = "message"
    content: Str | None = None
    to_username: Str | None = None
    client_message_id: Annotated[Str, Field(min_length=1, max_length=128)] | None = None


class MarkRead(Command):
    TYPE = "mark_read"
    type: Literal["mark_read"] = "mark_read"
    message_id: Str | None = None


class MarkAllRead(Command):
    TYPE = "mark_all_read"
    type: Literal["mark_all_read"] = "mark_all_read"


class MarkRoomRead(Command):
    TYPE = "mark_room_read"
    type: Literal["mark_room_read"] = "mark_room_read"


class MarkDirectRead(Command):
    TYPE = "mark_direct_read"
    type: Literal["mark_direct_read"] = "mark_direct_read"
    from_username: Str | None = None


class GetUnreadCount(Command):
    TYPE = "get_unread_count"
    type: Literal["get_unread_count"] = "get_unread_count"


class _Page(Command):
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT
    offset: Annotated[StrictInt, Field(ge=0, le=MAX_OFFSET)] = 0


class GetMessages(_Page):
    TYPE = "get_messages"
    type: Literal["get_messages"] = "get_messages"
    since: Str | None = None


class GetDirectMessages(_Page):
    TYPE = "get_direct_messages"
    type: Literal["get_direct_messages"] = "get_direct_messages"
    since: Str | None = None


class GetUnreadMessages(_Page):
    TYPE = "get_unread_messages"
    type: Literal["get_unread_messages"] = "get_unread_messages"


class GetUnreadDirectMessages(_Page):
    TYPE = "get_unread_direct_messages"
    type: Literal["get_unread_direct_messages"] = "get_unread_direct_messages"


class GetUsers(Command):
    TYPE = "get_users"
    type: Literal["get_users"] = "get_users"


class GetOnlineUsers(Command):
    TYPE = "get_online_users"
    type: Literal["get_online_users"] = "get_online_users"


class GetUserProfile(Command):
    TYPE = "get_user_profile"
    type: Literal["get_user_profile"] = "get_user_profile"
    username: Str | None = None


# The same bounds as the REST bodies (protocol.models); over the limit: invalid_frame.
ConversationTitle = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_CONVERSATION_TITLE_LENGTH),
    AfterValidator(check_text),
]
ConversationDescription = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_CONVERSATION_DESCRIPTION_LENGTH),
    AfterValidator(check_text),
]
ConversationMessageIds = Annotated[list[Str], Field(max_length=MAX_CONVERSATION_MESSAGES)]


class CreateConversation(Command):
    TYPE = "create_conversation"
    type: Literal["create_conversation"] = "create_conversation"
    title: ConversationTitle | None = None
    description: ConversationDescription | None = None
    message_ids: ConversationMessageIds | None = None


class GetConversations(Command):
    TYPE = "get_conversations"
    type: Literal["get_conversations"] = "get_conversations"
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_CONVERSATIONS_PAGE)] = DEFAULT_PAGE_LIMIT
    offset: Annotated[StrictInt, Field(ge=0, le=MAX_OFFSET)] = 0


class GetConversation(Command):
    TYPE = "get_conversation"
    type: Literal["get_conversation"] = "get_conversation"
    conversation_id: Str | None = None


class UpdateConversation(Command):
    """``None`` (or absent) leaves a field unchanged, as on REST."""

    TYPE = "update_conversation"
    type: Literal["update_conversation"] = "update_conversation"
    conversation_id: Str | None = None
    title: ConversationTitle | None = None
    description: ConversationDescription | None = None
    message_ids: ConversationMessageIds | None = None


class DeleteConversation(Command):
    TYPE = "delete_conversation"
    type: Literal["delete_conversation"] = "delete_conversation"
    conversation_id: Str | None = None


class Typing(Command):
    TYPE = "typing"
    type: Literal["typing"] = "typing"
    to_username: Str | None = None


class EditMessage(Command):
    """Extension: replace the content of a message (the author's own; an admin's any)."""

    TYPE = "edit_message"
    type: Literal["edit_message"] = "edit_message"
    message_id: Str | None = None
    content: Str | None = None


class DeleteMessage(Command):
    """Upstream's admin-only delete; with us an author may delete their own messages too."""

    TYPE = "delete_message"
    type: Literal["delete_message"] = "delete_message"
    message_id: Str | None = None


class Pong(Command):
    TYPE = "pong"
    type: Literal["pong"] = "pong"


class Ping(Command):
    """Client-initiated liveness check (extension); the server answers ``pong``."""

    TYPE = "ping"
    type: Literal["ping"] = "ping"


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.TYPE: cls
    for cls in (
        SendMessage,
        MarkRead,
        MarkAllRead,
        MarkRoomRead,
        MarkDirectRead,
        GetUnreadCount,
        GetMessages,
        GetDirectMessages,
        GetUnreadMessages,
        GetUnreadDirectMessages,
        GetUsers,
        GetOnlineUsers,
        GetUserProfile,
        CreateConversation,
        GetConversations,
        GetConversation,
        UpdateConversation,
        DeleteConversation,
        Typing,
        Pong,
        Ping,
        EditMessage,
        DeleteMessage,
    )
}


class FrameError(Exception):
    """A frame that cannot become a command. ``request_id`` is echoed when it could be read."""

    def __init__(self, message: str, code: ErrorCode, request_id: str | int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id


_REQUEST_ID: TypeAdapter[str | int] = TypeAdapter(RequestId)
_REQUEST_ID_RULE = "a string of at most 128 characters or a 64-bit integer"

# An unknown ``type`` is quoted in the error at most this long, so the reply stays small.
_MAX_QUOTED = 100


def _request_id_of(data: dict[str, Any]) -> str | int | None:
    """The frame's ``request_id`` when it is valid, so an error can echo it; else ``None``."""
    value = data.get("request_id")
    if value is None or isinstance(value, bool):
        return None
    try:
        return _REQUEST_ID.validate_python(value)
    except PydanticValidationError:
        return None


def _quoted(tag: str) -> str:
    return tag if len(tag) <= _MAX_QUOTED else tag[:_MAX_QUOTED] + "..."


def decode_command(text: str | bytes) -> Command:
    """Parse one text frame into its command, or raise :class:`FrameError`.

    Nothing else escapes for any input: a hostile frame (nesting deeper than the parser's
    recursion limit, an integer of thousands of digits, invalid UTF-8, a lone surrogate in any
    string) is a :class:`FrameError` like any other bad frame.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise FrameError("Invalid JSON: nested too deeply", ErrorCode.INVALID_JSON) from None
    except ValueError as exc:  # also JSONDecodeError, UnicodeDecodeError, too many digits
        raise FrameError(f"Invalid JSON: {exc}", ErrorCode.INVALID_JSON) from None
    if not isinstance(data, dict):
        raise FrameError("A frame must be a JSON object", ErrorCode.INVALID_FRAME)
    request_id = _request_id_of(data)
    tag = data.get("type", "message")
    if tag is None:
        tag = "message"
    if not isinstance(tag, str):
        raise FrameError("Field 'type' must be a string", ErrorCode.INVALID_FRAME, request_id)
    cls = COMMAND_TYPES.get(tag)
    if cls is None:
        # The tag is client text and may hold a lone surrogate: encode_event replaces it.
        raise FrameError(
            f"Unknown message type: {_quoted(tag)}", ErrorCode.UNKNOWN_TYPE, request_id
        )
    try:
        return cls.model_validate({**data, "type": tag})
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        # Commands are flat: the first part of the location is the field (the rest names a
        # union member, as for request_id, which has its own wording).
        where = str(first["loc"][0]) if first["loc"] else "frame"
        why = _REQUEST_ID_RULE if where == "request_id" else first["msg"]
        raise FrameError(
            f"Invalid field '{where}': {why}", ErrorCode.INVALID_FRAME, request_id
        ) from None


def encode_command(command: Command) -> str:
    """The JSON text of a command, without unset optional fields."""
    return command.model_dump_json(exclude_none=True)
