"""Editing and deleting messages: the author's routes (extension) and upstream's admin ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from token_bowl_chat.protocol.models import (
    AdminMessageUpdate,
    EditMessageRequest,
    MessageResponse,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.permissions import require_admin

router = APIRouter(tags=["messages"], responses=errors(401, 422))


async def _admin(user: CurrentUser) -> User:
    """A dependency, so a non-admin gets 403 before the body is validated (PROTOCOL.md 2.4)."""
    require_admin(user)
    return user


Admin = Annotated[User, Depends(_admin)]


@router.patch("/messages/{message_id}", responses=errors(400, 403, 404))
async def edit_message(
    message_id: str, body: EditMessageRequest, user: CurrentUser, services: ServicesDep
) -> MessageResponse:
    """Replace the content of your own message (an admin: anyone's). Pushed to everyone who
    can see it as ``message_edited``. 404 ``message_deleted`` once it is deleted."""
    event = await services.edits.edit(user, message_id, body.content)
    return render.message(event.message)


@router.delete("/messages/{message_id}", status_code=204, responses=errors(400, 403, 404))
async def delete_message(message_id: str, user: CurrentUser, services: ServicesDep) -> Response:
    """Delete your own message (an admin: anyone's). Pushed as ``message_deleted``; it leaves
    history, unread lists and unread counts. A second delete is 404 ``message_deleted``."""
    await services.edits.delete(user, message_id)
    return Response(status_code=204)


@router.get("/admin/messages/{message_id}", tags=["admin"], responses=errors(403, 404))
async def admin_get_message(
    message_id: str, admin: Admin, services: ServicesDep
) -> MessageResponse:
    return render.message(await services.edits.admin_get(admin, message_id))


@router.patch("/admin/messages/{message_id}", tags=["admin"], responses=errors(403, 404))
async def admin_edit_message(
    message_id: str, body: AdminMessageUpdate, admin: Admin, services: ServicesDep
) -> MessageResponse:
    event = await services.edits.admin_edit(admin, message_id, body.content)
    return render.message(event.message)


@router.delete(
    "/admin/messages/{message_id}", status_code=204, tags=["admin"], responses=errors(403, 404)
)
async def admin_delete_message(message_id: str, admin: Admin, services: ServicesDep) -> Response:
    await services.edits.admin_delete(admin, message_id)
    return Response(status_code=204)
