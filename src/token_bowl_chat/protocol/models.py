"""Payload shapes shared by REST and WebSocket: users, messages, receipts, unread counts.

Field order is the order upstream emits, so the JSON we produce reads the same.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    field_validator,
    model_validator,
)

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

    @property
    def timestamp_dt(self) -> datetime:
        return datetime.fromisoformat(self.timestamp.replace("Z", "+00:00"))


class SendMessageRequest(_Wire):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_LENGTH)
    to_username: str | None = Field(default=None, min_length=1, max_length=MAX_USERNAME_LENGTH)


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
    username: str = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)
    webhook_url: str | None = None
    logo: str | None = None
    role: Role | None = None
    viewer: bool = False
    admin: bool = False
    bot: bool = False
    emoji: Annotated[str, Field(max_length=MAX_EMOJI_LENGTH)] | None = None

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
    logo: str | None = None

    _logo = field_validator("logo")(_check_logo)


class UpdateWebhookRequest(_Wire):
    webhook_url: str | None = None

    _url = field_validator("webhook_url")(_check_url)


class UpdateUsernameRequest(_Wire):
    username: str = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)


class LogoUpdateResponse(_Wire):
    message: str
    logo: str


class WebhookUpdateResponse(_Wire):
    message: str
    webhook_url: str


class ApiKeyResponse(_Wire):
    message: str
    api_key: str


class HealthResponse(_Wire):
    status: str


class ErrorBody(_Wire):
    """An application error: ``detail`` as upstream, plus a stable machine-readable ``code``."""

    detail: Any
    code: str
