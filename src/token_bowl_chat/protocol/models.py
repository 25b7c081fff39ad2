"""Payload shapes shared by REST and WebSocket: users, messages, receipts, unread counts.

Field order is the order upstream emits, so the JSON we produce reads the same.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

LOGOS: tuple[str, ...] = (
    "claude-color.png",
    "deepseek-color.png",
    "gemini-color.png",
    "gemma-color.png",
    "grok.png",
    "kimi-color.png",
    "mistral-color.png",
    "openai.png",
    "qwen-color.png",
)

MAX_CONTENT_LENGTH = 10_000
MAX_USERNAME_LENGTH = 50
MAX_EMOJI_LENGTH = 10
MAX_URL_LENGTH = 2083


def check_text(value: str) -> str:
    """Refuse text that no database can store or no UTF-8 encoder can send.

    PostgreSQL cannot store NUL characters. A lone UTF-16 surrogate (JSON ``"\\ud800"``
    without its pair) decodes to a Python string that cannot be encoded as UTF-8, so it fails
    in the database driver, in a log line or in the reply that echoes it. Both are refused
    here, as a validation error of type ``invalid_text``, before they reach anything else.
    """
    if "\x00" in value:
        raise PydanticCustomError(INVALID_TEXT, "text must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError(
                INVALID_TEXT, "text must not contain lone UTF-16 surrogates"
            ) from None
    return value


INVALID_TEXT = "invalid_text"
"""The validation error type (the ``type`` of a 422 ``detail`` item) :func:`check_text` raises."""

# The JSON schema states the NUL rule as a pattern, so the OpenAPI document does not promise
# more than the validator accepts (lone surrogates cannot be written in a JSON Schema regex).
Text = Annotated[
    str, AfterValidator(check_text), Field(json_schema_extra={"pattern": "^[^\\x00]*$"})
]
"""Every client-supplied string: no NUL characters, no lone surrogates (:func:`check_text`)."""

# Schema-only descriptions of what _check_logo and _check_url accept, for the OpenAPI document.
LogoName = Annotated[Text, WithJsonSchema({"type": "string", "enum": list(LOGOS)})]
WebhookUrl = Annotated[
    Text,
    WithJsonSchema(
        {"type": "string", "format": "iri", "pattern": "^https?://", "maxLength": MAX_URL_LENGTH}
    ),
]

ROOM_DESCRIPTION = "This is a message for the fantasy league's group chat."


def direct_description(from_username: str, to_username: str) -> str:
    return f"This is a direct message from {from_username} to {to_username}."


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    BOT = "bot"


class MessageType(StrEnum):
    ROOM = "room"
    DIRECT = "direct"
    SYSTEM = "system"


class _Wire(BaseModel):
    """Base for every wire model: unknown keys are ignored, as upstream clients expect."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _check_logo(value: str | None) -> str | None:
    if value is not None and value not in LOGOS:
        raise ValueError(f"Logo must be one of: {', '.join(LOGOS)}")
    return value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _check_url(value: str | None) -> str | None:
    """Validate an http(s) URL and return it normalised, as upstream does (``/`` path added)."""
    if value is None:
        return None
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL must be at most {MAX_URL_LENGTH} characters")
    return str(_HTTP_URL.validate_python(value))


# --- messages -------------------------------------------------------------------------------


class MessageResponse(_Wire):
    """A stored chat message, as REST, WebSocket deliveries and history frames carry it.

    ``seq`` is a protocol extension: a server-assigned integer that increases with every stored
    message and is the resume point for gap-free reconnects. Upstream servers omit it.
    """

    id: str
    from_user_id: str
    from_username: str
    from_user_logo: str | None = None
    from_user_emoji: str | None = None
    from_user_bot: bool = False
    to_user_id: str | None = None
    to_username: str | None = None
    content: str
    message_type: MessageType
    description: str = ""
    timestamp: str
    seq: int | None = Field(default=None, exclude_if=lambda v: v is None)
    # Extension: when the content was last edited (same format as ``timestamp``); absent on a
    # message never edited, and from upstream servers.
    edited_at: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def timestamp_dt(self) -> datetime:
        return datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))


class SendMessageRequest(_Wire):
    """``client_message_id`` (extension) makes a retried send idempotent: the same id from the
    same sender stores one message and returns it again."""

    content: Text = Field(min_length=1, max_length=MAX_CONTENT_LENGTH)
    to_username: Text | None = Field(default=None, min_length=1, max_length=MAX_USERNAME_LENGTH)
    client_message_id: Text | None = Field(
        default=None, min_length=1, max_length=128, exclude_if=lambda v: v is None
    )


class EditMessageRequest(_Wire):
    """``PATCH /messages/{id}`` (extension): the author's new content."""

    content: Text = Field(min_length=1, max_length=MAX_CONTENT_LENGTH)


class PaginationMetadata(_Wire):
    total: int
    offset: int
    limit: int
    has_more: bool


class PaginatedMessagesResponse(_Wire):
    messages: list[MessageResponse]
    pagination: PaginationMetadata


class UnreadCountResponse(_Wire):
    unread_room_messages: int
    unread_direct_messages: int
    total_unread: int


class MarkAllReadResponse(_Wire):
    marked_as_read: int


# --- users ----------------------------------------------------------------------------------


class PublicUserProfile(_Wire):
    id: str
    username: str
    role: Role
    logo: str | None = None
    emoji: str | None = None
    bot: bool = False
    viewer: bool = False


class UserSummary(_Wire):
    """The user shape of WebSocket ``users``, ``online_users`` and ``user_profile`` frames."""

    username: str
    role: Role
    logo: str | None = None
    emoji: str | None = None
    bot: bool = False
    viewer: bool = False


class UserRegistration(_Wire):
    # _bots_use_emoji below, stated in the schema too
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["bot", "logo"],
                "properties": {"bot": {"const": True}, "logo": {"type": "string"}},
            }
        }
    )

    username: Text = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)
    webhook_url: WebhookUrl | None = None
    logo: LogoName | None = None
    role: Role | None = None
    viewer: bool = False
    admin: bool = False
    bot: bool = False
    emoji: Annotated[Text, Field(max_length=MAX_EMOJI_LENGTH)] | None = None

    _logo = field_validator("logo")(_check_logo)
    _url = field_validator("webhook_url")(_check_url)

    @model_validator(mode="after")
    def _bots_use_emoji(self) -> UserRegistration:
        if self.bot and self.logo is not None:
            raise ValueError("Bots can only use emoji for avatars, not logos")
        return self

    def resolved_role(self) -> Role:
        """An explicit role wins; otherwise the legacy flags, admin over viewer over bot."""
        if self.role is not None:
            return self.role
        if self.admin:
            return Role.ADMIN
        if self.viewer:
            return Role.VIEWER
        if self.bot:
            return Role.BOT
        return Role.MEMBER


class UserRegistrationResponse(_Wire):
    id: str
    username: str
    api_key: str
    role: Role
    webhook_url: str | None = None
    logo: str | None = None
    viewer: bool = False
    admin: bool = False
    bot: bool = False
    emoji: str | None = None
    # Extension: present only when ``webhook_url`` was given, shown once (as on PATCH
    # /users/me/webhook): the secret that signs requests to it.
    webhook_secret: str | None = None


class UserProfileResponse(_Wire):
    """The caller's own profile. ``api_key`` is masked: the plaintext is shown only once."""

    id: str
    username: str
    role: Role
    email: str | None = None
    api_key: str
    webhook_url: str | None = None
    logo: str | None = None
    viewer: bool = False
    admin: bool = False
    bot: bool = False
    emoji: str | None = None
    created_at: str


class UpdateLogoRequest(_Wire):
    logo: LogoName | None = None

    _logo = field_validator("logo")(_check_logo)


class UpdateWebhookRequest(_Wire):
    webhook_url: WebhookUrl | None = None

    _url = field_validator("webhook_url")(_check_url)


class UpdateUsernameRequest(_Wire):
    username: Text = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)


class LogoUpdateResponse(_Wire):
    message: str
    logo: str


class WebhookUpdateResponse(_Wire):
    message: str
    webhook_url: str
    # Extension: the secret that signs requests to this URL, present only when a URL was
    # set. Shown once; POST /users/me/webhook/secret makes a new one.
    webhook_secret: str | None = None


class WebhookSecretResponse(_Wire):
    """``POST /users/me/webhook/secret``: the new signing secret, shown once."""

    message: str
    webhook_secret: str


class WebhookDeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED_ADDRESS = "refused_address"


class WebhookDelivery(_Wire):
    """One webhook delivery (one message to one webhook) and how it ended."""

    id: str  # the X-Token-Bowl-Delivery header, the same on every attempt
    message_id: str
    url: str  # scheme, host and port only
    outcome: WebhookDeliveryOutcome
    attempts: int  # requests made; 0 when the address was refused
    status_code: int | None = None  # of the last answer, if any
    error: str | None = None  # the last failure: an error class, "HTTP 500", or the address class
    created_at: str  # first attempt, ISO-8601
    finished_at: str


class ApiKeyResponse(_Wire):
    message: str
    api_key: str


class HealthResponse(_Wire):
    status: str


class ErrorBody(_Wire):
    """An application error: ``detail`` as upstream, plus a stable machine-readable ``code``."""

    detail: Any
    code: str


# --- validation errors (422 bodies) ---------------------------------------------------------


class ValidationErrorItem(_Wire):
    """One entry of a 422 body's ``detail`` list (upstream client name: ``ValidationError``).

    ``loc`` starts with where the bad value was (``"body"``, ``"query"`` or ``"path"``), then
    the field path.
    """

    type: str
    loc: list[str | int]
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class HTTPValidationError(_Wire):
    """A 422 body: ``{"detail": [ValidationErrorItem, ...]}``."""

    detail: list[ValidationErrorItem] = Field(default_factory=list)


# --- external identity provider (magic link) ------------------------------------------------


class StytchLoginRequest(_Wire):
    email: Text = Field(min_length=3, max_length=255)
    username: Text | None = Field(default=None, min_length=1, max_length=MAX_USERNAME_LENGTH)


class StytchLoginResponse(_Wire):
    message: str
    email: str


class StytchAuthenticateRequest(_Wire):
    token: Text = Field(min_length=1)


class StytchAuthenticateResponse(_Wire):
    username: str
    session_token: str
    api_key: str


# --- admin ----------------------------------------------------------------------------------


class AdminUpdateUserRequest(_Wire):
    """``PATCH /admin/users/{id}``. An absent field is unchanged. Our server clears
    ``email``, ``webhook_url``, ``logo`` and ``emoji`` sent as ``null``, takes ``role``
    (upstream ignored it) and a legacy flag set to ``false`` (the account becomes a member);
    upstream treated ``null`` as unchanged."""

    username: Text | None = Field(default=None, min_length=1, max_length=MAX_USERNAME_LENGTH)
    role: Role | None = None
    email: Text | None = None
    webhook_url: Text | None = None
    logo: Text | None = None
    viewer: bool | None = None
    admin: bool | None = None
    bot: bool | None = None
    emoji: Annotated[Text, Field(max_length=MAX_EMOJI_LENGTH)] | None = None

    _logo = field_validator("logo")(_check_logo)
    _url = field_validator("webhook_url")(_check_url)

    @model_validator(mode="after")
    def _bots_use_emoji(self) -> AdminUpdateUserRequest:
        if (self.bot or self.role is Role.BOT) and self.logo is not None:
            raise ValueError("Bots can only use emoji for avatars, not logos")
        return self


class AdminMessageUpdate(_Wire):
    content: Text = Field(min_length=1, max_length=MAX_CONTENT_LENGTH)


class AssignRoleRequest(_Wire):
    role: Role


class AssignRoleResponse(_Wire):
    username: str
    role: Role
    message: str


class InviteUserRequest(_Wire):
    email: Text = Field(min_length=3, max_length=255)
    role: Role = Role.MEMBER
    signup_url: Text


class InviteUserResponse(_Wire):
    email: str
    role: Role
    message: str


class WebSocketConnectionInfo(_Wire):
    """One open WebSocket connection, for ``GET /admin/websocket/connections``.

    ``connection_id`` is opaque and unique only while the connection lives; ``is_healthy``
    means a frame came in within the server's heartbeat timeout."""

    username: str
    connection_id: int
    last_activity: str
    last_pong: str
    seconds_since_activity: float
    seconds_since_pong: float
    is_healthy: bool


class WebSocketConnectionsResponse(_Wire):
    total_users: int
    total_connections: int
    connections: list[WebSocketConnectionInfo]


# --- bots -----------------------------------------------------------------------------------


def _no_logo(value: object) -> None:
    if value is not None:
        raise ValueError("Bots can only use emoji for avatars, not logos")
    return None


# A bot has no logo (upstream's rule, which it then let bots bypass, gap 24): a ``logo`` in a
# bot request is refused with 422 rather than silently dropped.
NoLogo = Annotated[None, WithJsonSchema({"type": "null"})]


class CreateBotRequest(_Wire):
    username: Text = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)
    emoji: Annotated[Text, Field(max_length=MAX_EMOJI_LENGTH)] | None = None
    webhook_url: WebhookUrl | None = None
    logo: NoLogo = None

    _url = field_validator("webhook_url")(_check_url)
    _logo = field_validator("logo", mode="before")(_no_logo)


class CreateBotResponse(_Wire):
    """A new bot, with its API key. ``created_by`` is the creator's username."""

    id: str
    username: str
    api_key: str
    created_by_id: str
    created_by: str
    emoji: str | None = None
    webhook_url: str | None = None
    # Extension: the signing secret of the webhook just set (POST /bots, or PATCH with a
    # webhook_url); shown once, absent otherwise.
    webhook_secret: str | None = None


class BotProfileResponse(CreateBotResponse):
    created_at: str


class UpdateBotRequest(_Wire):
    """``PATCH /bots/{id}``. ``None`` means "unchanged"; neither field can be cleared."""

    emoji: Annotated[Text, Field(max_length=MAX_EMOJI_LENGTH)] | None = None
    webhook_url: WebhookUrl | None = None
    logo: NoLogo = None

    _url = field_validator("webhook_url")(_check_url)
    _logo = field_validator("logo", mode="before")(_no_logo)


# --- conversations --------------------------------------------------------------------------

MAX_CONVERSATION_TITLE_LENGTH = 200
# Ours: upstream had no bound on either; one conversation is read whole, so both are kept
# to a size one reply carries comfortably.
MAX_CONVERSATION_DESCRIPTION_LENGTH = 10_000
MAX_CONVERSATION_MESSAGES = 1000
# GET /conversations and WebSocket get_conversations: 1-100 per page (upstream bounded REST
# only).
MAX_CONVERSATIONS_PAGE = 100


def _check_message_ids(value: list[str] | None) -> list[str] | None:
    if value is not None:
        for message_id in value:
            try:
                UUID(message_id)
            except ValueError:
                raise ValueError(f"Invalid UUID format for message_id: {message_id}") from None
    return value


# What _check_message_ids accepts, for the OpenAPI document: UUID strings.
MessageIdList = Annotated[
    list[Text],
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string", "format": "uuid"},
            "maxItems": MAX_CONVERSATION_MESSAGES,
        }
    ),
]


class CreateConversationRequest(_Wire):
    title: Text | None = Field(default=None, min_length=1, max_length=MAX_CONVERSATION_TITLE_LENGTH)
    description: Text | None = Field(
        default=None, min_length=1, max_length=MAX_CONVERSATION_DESCRIPTION_LENGTH
    )
    message_ids: MessageIdList = Field(default_factory=list, max_length=MAX_CONVERSATION_MESSAGES)

    _ids = field_validator("message_ids")(_check_message_ids)


class UpdateConversationRequest(_Wire):
    """``PATCH /conversations/{id}``. ``None`` means "unchanged"; nothing can be cleared."""

    title: Text | None = Field(default=None, min_length=1, max_length=MAX_CONVERSATION_TITLE_LENGTH)
    description: Text | None = Field(
        default=None, min_length=1, max_length=MAX_CONVERSATION_DESCRIPTION_LENGTH
    )
    message_ids: MessageIdList | None = Field(default=None, max_length=MAX_CONVERSATION_MESSAGES)

    _ids = field_validator("message_ids")(_check_message_ids)


class ConversationResponse(_Wire):
    id: str
    title: str | None = None
    description: str | None = None
    message_ids: list[str] = Field(default_factory=list)
    created_by_username: str
    created_at: str


class ConversationListResponse(_Wire):
    """``GET /conversations`` as the server sends it: upstream's nested ``pagination``, plus
    ``total``, ``limit`` and ``offset`` at the top level, the shape the upstream v2.1.1
    client's ``get_conversations`` reads (PROTOCOL.md 6.6 item 10)."""

    conversations: list[ConversationResponse]
    pagination: PaginationMetadata
    total: int
    limit: int
    offset: int


class PaginatedConversationsResponse(_Wire):
    """A page of conversations, newest first.

    The server nests the counts under ``pagination``, like the message lists; the upstream
    v2.1.1 client expected them flat (``total``, ``limit``, ``offset`` beside
    ``conversations``) and so failed on every real answer (gap 32). Both shapes are accepted,
    and the flat names stay readable as properties.
    """

    conversations: list[ConversationResponse]
    pagination: PaginationMetadata

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pagination" not in data and "total" in data:
            data = dict(data)
            total = data.pop("total")
            offset = data.pop("offset", 0)
            limit = data.pop("limit", len(data.get("conversations") or []))
            has_more = data.pop("has_more", None)
            if has_more is None and isinstance(total, int) and isinstance(offset, int):
                has_more = offset + len(data.get("conversations") or []) < total
            data["pagination"] = {
                "total": total,
                "offset": offset,
                "limit": limit,
                "has_more": bool(has_more),
            }
        return data

    @property
    def total(self) -> int:
        return self.pagination.total

    @property
    def limit(self) -> int:
        return self.pagination.limit

    @property
    def offset(self) -> int:
        return self.pagination.offset

    @property
    def has_more(self) -> bool:
        return self.pagination.has_more
