"""Conversations (PROTOCOL.md 4.7) and their admin delete (4.8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from token_bowl_chat.protocol.models import (
    MAX_CONVERSATIONS_PAGE,
    ConversationListResponse,
    ConversationResponse,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.pages import DEFAULT_LIMIT, Offset
from token_bowl_chat_server.api.rest.responses import errors

router = APIRouter(tags=["conversations"], responses=errors(401, 422))

ConversationsLimit = Annotated[int, Query(ge=1, le=MAX_CONVERSATIONS_PAGE)]


@router.post("/conversations", status_code=201, responses=errors(400, 404))
async def create_conversation(
    body: CreateConversationRequest, user: CurrentUser, services: ServicesDep
) -> ConversationResponse:
    conversation = await services.conversations.create(
        user, body.title, body.description, body.message_ids
    )
    return render.conversation(conversation, user)


@router.get("/conversations")
async def list_conversations(
    user: CurrentUser,
    services: ServicesDep,
    limit: ConversationsLimit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> ConversationListResponse:
    page, total = await services.conversations.page(user, limit, offset)
    return ConversationListResponse(
        conversations=[render.conversation(c, user) for c in page],
        pagination=render.pagination(len(page), total, limit, offset),
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/conversations/{conversation_id}", responses=errors(403, 404))
async def get_conversation(
    conversation_id: str, user: CurrentUser, services: ServicesDep
) -> ConversationResponse:
    conversation = await services.conversations.get(user, conversation_id)
    return render.conversation(conversation, user)


@router.patch("/conversations/{conversation_id}", responses=errors(400, 403, 404))
async def update_conversation(
    conversation_id: str,
    body: UpdateConversationRequest,
    user: CurrentUser,
    services: ServicesDep,
) -> ConversationResponse:
    conversation = await services.conversations.update(
        user, conversation_id, body.title, body.description, body.message_ids
    )
    return render.conversation(conversation, user)


@router.delete("/conversations/{conversation_id}", status_code=204, responses=errors(403, 404))
async def delete_conversation(
    conversation_id: str, user: CurrentUser, services: ServicesDep
) -> Response:
    await services.conversations.delete(user, conversation_id)
    return Response(status_code=204)


@router.delete(
    "/admin/conversations/{conversation_id}",
    status_code=204,
    tags=["admin"],
    responses=errors(403, 404),
)
async def admin_delete_conversation(
    conversation_id: str, user: CurrentUser, services: ServicesDep
) -> Response:
    await services.conversations.admin_delete(user, conversation_id)
    return Response(status_code=204)
