"""Sending, history, unread lists and counts, marking read."""

from __future__ import annotations

from fastapi import APIRouter, Response

from token_bowl_chat.protocol.models import (
    MarkAllReadResponse,
    MessageResponse,
    PaginatedMessagesResponse,
    SendMessageRequest,
    UnreadCountResponse,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.pages import DEFAULT_LIMIT, Limit, Offset
from token_bowl_chat_server.api.rest.responses import encoded, errors, sent_message
from token_bowl_chat_server.domain.entities import Message

router = APIRouter(tags=["messages"], responses=errors(401, 422))


def _page(
    messages: list[Message], total: int, limit: int, offset: int
) -> PaginatedMessagesResponse:
    return PaginatedMessagesResponse(
        messages=[render.message(m) for m in messages],
        pagination=render.pagination(len(messages), total, limit, offset),
    )


@router.post(
    "/messages",
    status_code=201,
    response_model=MessageResponse,
    responses=errors(400, 403, 404, 409, 429),
)
async def send_message(
    body: SendMessageRequest, user: CurrentUser, services: ServicesDep
) -> Response:
    outcome = await services.messages.send_for_reply(
        user, body.content, body.to_username, body.client_message_id
    )
    return sent_message(outcome)


@router.get("/messages", responses=errors(400))
async def room_history(
    user: CurrentUser,
    services: ServicesDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    since: str | None = None,
) -> PaginatedMessagesResponse:
    messages, total = await services.messages.room_history(limit, offset, since)
    return _page(messages, total, limit, offset)


@router.get("/messages/direct", responses=errors(400))
async def direct_history(
    user: CurrentUser,
    services: ServicesDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    since: str | None = None,
) -> PaginatedMessagesResponse:
    messages, total = await services.messages.direct_history(
        user, limit, offset, since, all_if_allowed=True
    )
    return _page(messages, total, limit, offset)


@router.get("/messages/unread")
async def unread_room(
    user: CurrentUser, services: ServicesDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[MessageResponse]:
    return [render.message(m) for m in await services.reads.unread_room(user, limit, offset)]


@router.get("/messages/direct/unread")
async def unread_direct(
    user: CurrentUser, services: ServicesDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[MessageResponse]:
    return [render.message(m) for m in await services.reads.unread_direct(user, limit, offset)]


@router.get("/messages/unread/count", response_model=UnreadCountResponse)
async def unread_count(user: CurrentUser, services: ServicesDep) -> Response:
    return encoded(render.unread_counts(await services.reads.unread_counts(user)))


@router.post("/messages/mark-all-read", response_model=MarkAllReadResponse)
async def mark_all_read(user: CurrentUser, services: ServicesDep) -> Response:
    return encoded(MarkAllReadResponse(marked_as_read=await services.reads.mark_all_read(user)))


@router.post("/messages/{message_id}/read", status_code=204, responses=errors(404))
async def mark_read(message_id: str, user: CurrentUser, services: ServicesDep) -> Response:
    await services.reads.mark_read(user, message_id)
    return Response(status_code=204)


@router.get("/messages/{message_id}", responses=errors(404))
async def get_message(message_id: str, user: CurrentUser, services: ServicesDep) -> MessageResponse:
    return render.message(await services.messages.get(user, message_id))
