"""The command table: one short handler per client frame type, each a call into a service.

A handler returns the reply for the requesting connection, or ``None`` when the command has
none (``typing``, ``pong``). Domain errors propagate to the endpoint, which turns them into
``error`` frames with the command's ``request_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from token_bowl_chat.protocol import commands as cmd
from token_bowl_chat.protocol import events as ev
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import Services
from token_bowl_chat_server.domain.entities import Message
from token_bowl_chat_server.domain.errors import InvalidInput
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.services.edits import deleted_frame, edited_frame
from token_bowl_chat_server.services.messages import SendOutcome, reply_wire

C = TypeVar("C", bound=cmd.Command)
Handler = Callable[[Services, Connection, Any], Awaitable[ev.Event | None]]

HANDLERS: dict[type[cmd.Command], Handler] = {}


def handles(
    command: type[C],
) -> Callable[[Callable[[Services, Connection, C], Awaitable[ev.Event | None]]], Handler]:
    def register(fn: Callable[[Services, Connection, C], Awaitable[ev.Event | None]]) -> Handler:
        HANDLERS[command] = fn
        return fn

    return register


def _messages(messages: list[Message]) -> list[Any]:
    return [render.message(m) for m in messages]


async def queue_send(
    s: Services, conn: Connection, c: cmd.SendMessage
) -> asyncio.Future[SendOutcome]:
    """``send_message`` is not in the table: the endpoint pipelines it (api/ws/pipeline.py).
    Admits the message and queues it for the next group commit; the future holds the
    outcome, for :func:`message_sent`."""
    return await s.messages.queue(conn.user, c.content, c.to_username, c.client_message_id)


def message_sent(outcome: SendOutcome, request_id: Any) -> ev.Event:
    """The reply to a send once committed; raises the error of a send refused in the commit."""
    return ev.MessageSent(message=reply_wire(outcome), request_id=request_id)


@handles(cmd.MarkRead)
async def mark_read(s: Services, conn: Connection, c: cmd.MarkRead) -> ev.Event:
    await s.reads.mark_read(conn.user, c.message_id)
    return ev.MarkedRead(message_id=c.message_id or "", request_id=c.request_id)


@handles(cmd.MarkAllRead)
async def mark_all_read(s: Services, conn: Connection, c: cmd.MarkAllRead) -> ev.Event:
    count = await s.reads.mark_all_read(conn.user)
    return ev.MarkedAllRead(marked_as_read=count, request_id=c.request_id)


@handles(cmd.MarkRoomRead)
async def mark_room_read(s: Services, conn: Connection, c: cmd.MarkRoomRead) -> ev.Event:
    count = await s.reads.mark_room_read(conn.user)
    return ev.RoomReadConfirmation(count=count, request_id=c.request_id)


@handles(cmd.MarkDirectRead)
async def mark_direct_read(s: Services, conn: Connection, c: cmd.MarkDirectRead) -> ev.Event:
    count = await s.reads.mark_direct_read(conn.user, c.from_username)
    return ev.DirectReadConfirmation(
        from_username=c.from_username or "", count=count, request_id=c.request_id
    )


@handles(cmd.GetUnreadCount)
async def get_unread_count(s: Services, conn: Connection, c: cmd.GetUnreadCount) -> ev.Event:
    return render.unread_count_event(await s.reads.unread_counts(conn.user), c.request_id)


def _page(
    kind: Any, messages: list[Message], total: int, limit: int, offset: int, request_id: Any
) -> ev.Event:
    return ev.MessagesPage(
        type=kind,
        messages=_messages(messages),
        pagination=render.pagination(len(messages), total, limit, offset),
        request_id=request_id,
    )


@handles(cmd.GetMessages)
async def get_messages(s: Services, conn: Connection, c: cmd.GetMessages) -> ev.Event:
    messages, total = await s.messages.room_history(c.limit, c.offset, c.since)
    return _page("messages", messages, total, c.limit, c.offset, c.request_id)


@handles(cmd.GetDirectMessages)
async def get_direct_messages(s: Services, conn: Connection, c: cmd.GetDirectMessages) -> ev.Event:
    messages, total = await s.messages.direct_history(conn.user, c.limit, c.offset, c.since)
    return _page("direct_messages", messages, total, c.limit, c.offset, c.request_id)


@handles(cmd.GetUnreadMessages)
async def get_unread_messages(s: Services, conn: Connection, c: cmd.GetUnreadMessages) -> ev.Event:
    messages = await s.reads.unread_room(conn.user, c.limit, c.offset)
    return ev.UnreadMessages(
        type="unread_messages", messages=_messages(messages), request_id=c.request_id
    )


@handles(cmd.GetUnreadDirectMessages)
async def get_unread_direct_messages(
    s: Services, conn: Connection, c: cmd.GetUnreadDirectMessages
) -> ev.Event:
    messages = await s.reads.unread_direct(conn.user, c.limit, c.offset)
    return ev.UnreadMessages(
        type="unread_direct_messages", messages=_messages(messages), request_id=c.request_id
    )


@handles(cmd.GetUsers)
async def get_users(s: Services, conn: Connection, c: cmd.GetUsers) -> ev.Event:
    users = await s.accounts.chat_users()
    return ev.UserList(
        type="users", users=[render.summary(u) for u in users], request_id=c.request_id
    )


@handles(cmd.GetOnlineUsers)
async def get_online_users(s: Services, conn: Connection, c: cmd.GetOnlineUsers) -> ev.Event:
    users = await s.accounts.online_users()
    return ev.UserList(
        type="online_users", users=[render.summary(u) for u in users], request_id=c.request_id
    )


@handles(cmd.GetUserProfile)
async def get_user_profile(s: Services, conn: Connection, c: cmd.GetUserProfile) -> ev.Event:
    if not c.username:
        raise InvalidInput("Missing username field", ErrorCode.MISSING_FIELD)
    user = await s.accounts.by_username(c.username)
    return ev.UserProfile(user=render.summary(user), request_id=c.request_id)


@handles(cmd.Typing)
async def typing(s: Services, conn: Connection, c: cmd.Typing) -> None:
    await s.typing.typing(conn.user, c.to_username, conn.id)


@handles(cmd.Pong)
async def pong(s: Services, conn: Connection, c: cmd.Pong) -> None:
    conn.last_pong = conn.last_activity


@handles(cmd.Ping)
async def ping(s: Services, conn: Connection, c: cmd.Ping) -> ev.Event:
    return ev.Pong(request_id=c.request_id)


@handles(cmd.CreateConversation)
async def create_conversation(s: Services, conn: Connection, c: cmd.CreateConversation) -> ev.Event:
    created = await s.conversations.create(conn.user, c.title, c.description, c.message_ids)
    return ev.ConversationCreated(
        conversation=render.conversation(created, conn.user), request_id=c.request_id
    )


@handles(cmd.GetConversations)
async def get_conversations(s: Services, conn: Connection, c: cmd.GetConversations) -> ev.Event:
    page, total = await s.conversations.page(conn.user, c.limit, c.offset)
    return ev.ConversationsPage(
        conversations=[render.conversation(conv, conn.user) for conv in page],
        pagination=render.pagination(len(page), total, c.limit, c.offset),
        request_id=c.request_id,
    )


@handles(cmd.GetConversation)
async def get_conversation(s: Services, conn: Connection, c: cmd.GetConversation) -> ev.Event:
    found = await s.conversations.get(conn.user, c.conversation_id)
    return ev.ConversationFound(
        conversation=render.conversation(found, conn.user), request_id=c.request_id
    )


@handles(cmd.UpdateConversation)
async def update_conversation(s: Services, conn: Connection, c: cmd.UpdateConversation) -> ev.Event:
    updated = await s.conversations.update(
        conn.user, c.conversation_id, c.title, c.description, c.message_ids
    )
    return ev.ConversationUpdated(
        conversation=render.conversation(updated, conn.user), request_id=c.request_id
    )


@handles(cmd.DeleteConversation)
async def delete_conversation(s: Services, conn: Connection, c: cmd.DeleteConversation) -> ev.Event:
    deleted = await s.conversations.delete(conn.user, c.conversation_id)
    return ev.ConversationDeleted(conversation_id=deleted, request_id=c.request_id)


@handles(cmd.EditMessage)
async def edit_message(s: Services, conn: Connection, c: cmd.EditMessage) -> ev.Event:
    event = await s.edits.edit(conn.user, c.message_id, c.content)
    return edited_frame(event, c.request_id)


@handles(cmd.DeleteMessage)
async def delete_message(s: Services, conn: Connection, c: cmd.DeleteMessage) -> ev.Event:
    event = await s.edits.delete(conn.user, c.message_id)
    if not conn.extended:  # upstream's reply, exactly
        return ev.MessageDeleted(message_id=event.message.id, request_id=c.request_id)
    return deleted_frame(event, c.request_id)
