"""Domain objects to wire models. The one place that decides how an entity looks on the wire."""

from __future__ import annotations

from token_bowl_chat.protocol.events import UnreadCount
from token_bowl_chat.protocol.models import (
    ROOM_DESCRIPTION,
    BotProfileResponse,
    ConversationResponse,
    CreateBotResponse,
    MessageResponse,
    MessageType,
    PaginationMetadata,
    PublicUserProfile,
    Role,
    UnreadCountResponse,
    UserProfileResponse,
    UserSummary,
    direct_description,
)
from token_bowl_chat_server.domain.bots import Bot
from token_bowl_chat_server.domain.conversations import Conversation
from token_bowl_chat_server.domain.entities import Message, UnreadCounts, User, iso

_MASK = "*" * 60


def message(msg: Message) -> MessageResponse:
    direct = msg.to_username is not None
    return MessageResponse(
        id=msg.id,
        from_user_id=msg.from_user_id or "",
        from_username=msg.from_username,
        from_user_logo=msg.from_user_logo,
        from_user_emoji=msg.from_user_emoji,
        from_user_bot=msg.from_user_bot,
        to_user_id=msg.to_user_id,
        to_username=msg.to_username,
        content=msg.content,
        message_type=MessageType.DIRECT if direct else MessageType.ROOM,
        description=(
            direct_description(msg.from_username, msg.to_username or "")
            if direct
            else ROOM_DESCRIPTION
        ),
        timestamp=iso(msg.created_at),
        seq=msg.seq,
        edited_at=iso(msg.edited_at) if msg.edited_at is not None else None,
    )


def pagination(page_size: int, total: int, limit: int, offset: int) -> PaginationMetadata:
    """``offset`` and ``limit`` echo the request; more remain when this page ends early."""
    return PaginationMetadata(
        total=total, offset=offset, limit=limit, has_more=offset + page_size < total
    )


def unread_counts(counts: UnreadCounts) -> UnreadCountResponse:
    return UnreadCountResponse(
        unread_room_messages=counts.room,
        unread_direct_messages=counts.direct,
        total_unread=counts.total,
    )


def unread_count_event(counts: UnreadCounts, request_id: str | int | None = None) -> UnreadCount:
    """The ``unread_count`` frame: a reply when ``request_id`` is given, else a push."""
    return UnreadCount(**unread_counts(counts).model_dump(), request_id=request_id)


def public_profile(user: User) -> PublicUserProfile:
    return PublicUserProfile(
        id=user.id,
        username=user.username,
        role=user.role,
        logo=user.logo,
        emoji=user.emoji,
        bot=user.role is Role.BOT,
        viewer=user.role is Role.VIEWER,
    )


def summary(user: User) -> UserSummary:
    return UserSummary(
        username=user.username,
        role=user.role,
        logo=user.logo,
        emoji=user.emoji,
        bot=user.role is Role.BOT,
        viewer=user.role is Role.VIEWER,
    )


def masked_key(user: User) -> str:
    """The plaintext key is shown once (registration, rotation); afterwards only its tail."""
    return _MASK + user.api_key_hint


def private_profile(user: User) -> UserProfileResponse:
    return UserProfileResponse(
        id=user.id,
        username=user.username,
        role=user.role,
        email=user.email,
        api_key=masked_key(user),
        webhook_url=user.webhook_url,
        logo=user.logo,
        viewer=user.role is Role.VIEWER,
        admin=user.role is Role.ADMIN,
        bot=user.role is Role.BOT,
        emoji=user.emoji,
        created_at=iso(user.created_at),
    )


def created_bot(bot: Bot, api_key: str, webhook_secret: str | None = None) -> CreateBotResponse:
    """``POST /bots``: the only answer that carries the bot's key in plaintext (and its
    webhook's signing secret, when it got a webhook)."""
    return CreateBotResponse(
        id=bot.user.id,
        username=bot.user.username,
        api_key=api_key,
        created_by_id=bot.owner_id or "",
        created_by=bot.owner_username or bot.owner_id or "",
        emoji=bot.user.emoji,
        webhook_url=bot.user.webhook_url,
        webhook_secret=webhook_secret,
    )


def bot_profile(bot: Bot, webhook_secret: str | None = None) -> BotProfileResponse:
    """A bot as ``GET /bots/me`` and ``PATCH /bots/{id}`` show it: the key masked (upstream
    showed it in plaintext, gap 2); ``created_by`` falls back to the owner's id once that
    account is gone."""
    return BotProfileResponse(
        **created_bot(bot, masked_key(bot.user), webhook_secret).model_dump(),
        created_at=iso(bot.user.created_at),
    )


def conversation(conv: Conversation, reader: User) -> ConversationResponse:
    """As ``reader`` is shown it: only the message ids they may see."""
    return ConversationResponse(
        id=conv.id,
        title=conv.title,
        description=conv.description,
        message_ids=conv.message_ids_for(reader),
        created_by_username=conv.created_by_username,
        created_at=iso(conv.created_at),
    )
