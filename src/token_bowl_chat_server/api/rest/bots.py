"""Bot accounts (PROTOCOL.md 4.6): create, list one's own, update, delete, rotate the key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from token_bowl_chat.protocol.models import (
    ApiKeyResponse,
    BotProfileResponse,
    CreateBotRequest,
    CreateBotResponse,
    UpdateBotRequest,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.permissions import Action, require

router = APIRouter(tags=["bots"], responses=errors(401, 422))


async def bot_creator(user: CurrentUser) -> User:
    """The caller, if their role may create bots: a dependency, so viewers and bots get 403
    before their body is validated, as upstream answers."""
    require(user, Action.CREATE_BOTS)
    return user


BotCreator = Annotated[User, Depends(bot_creator)]


@router.post("/bots", status_code=201, responses=errors(403, 409, 429))
async def create_bot(
    body: CreateBotRequest, request: Request, user: BotCreator, services: ServicesDep
) -> CreateBotResponse:
    client = request.client.host if request.client else None
    bot, api_key, secret = await services.bots.create(user, body, client)
    return render.created_bot(bot, api_key, secret)


@router.get("/bots/me")
async def my_bots(user: CurrentUser, services: ServicesDep) -> list[BotProfileResponse]:
    return [render.bot_profile(bot) for bot in await services.bots.mine(user)]


@router.patch("/bots/{bot_id}", responses=errors(400, 403, 404))
async def update_bot(
    bot_id: str, body: UpdateBotRequest, user: CurrentUser, services: ServicesDep
) -> BotProfileResponse:
    bot, secret = await services.bots.update(user, bot_id, body)
    return render.bot_profile(bot, secret)


@router.delete("/bots/{bot_id}", status_code=204, responses=errors(400, 403, 404))
async def delete_bot(bot_id: str, user: CurrentUser, services: ServicesDep) -> Response:
    await services.bots.delete(user, bot_id)
    return Response(status_code=204)


@router.post("/bots/{bot_id}/regenerate-api-key", responses=errors(400, 403, 404))
async def regenerate_bot_api_key(
    bot_id: str, user: CurrentUser, services: ServicesDep
) -> ApiKeyResponse:
    key = await services.bots.rotate_key(user, bot_id)
    return ApiKeyResponse(message="Bot API key regenerated successfully", api_key=key)
